package dev.silhouette.backend.cuda;

import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;

import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

/** A non-blocking stream; its raw handle is the cudaStream_t that cuDNN and cuBLAS take. */
public final class CudaStream extends CUstream implements AutoCloseable {
    private boolean closed;

    public CudaStream() {
        Driver.check(cuStreamCreate(this, CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    }

    public long handle() {
        return getNativePointer();
    }

    public void synchronize(String what) {
        Driver.check(cuStreamSynchronize(this), "cuStreamSynchronize (" + what + ")");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Driver.check(cuStreamDestroy(this), "cuStreamDestroy");
    }
}
