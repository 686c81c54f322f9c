package dev.silhouette.backend.cuda;

import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.JCudaDriver;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuInit;

/**
 * The device's primary context, retained for the lifetime of this object. The primary context (not a
 * context of our own) is the one the runtime API uses, so cuDNN and cuBLAS see our allocations and
 * streams. Every thread that issues work makes it current with {@link #makeCurrent()}.
 */
public final class CudaContext implements AutoCloseable {
    private final int ordinal;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final String name;
    private boolean closed;

    public CudaContext(int ordinal) {
        JCudaDriver.setExceptionsEnabled(false);
        Driver.check(cuInit(0), "cuInit");
        int[] count = new int[1];
        Driver.check(cuDeviceGetCount(count), "cuDeviceGetCount");
        if (ordinal < 0 || ordinal >= count[0]) {
            throw new CudaException("device " + ordinal + " does not exist: this machine has " + count[0] + " CUDA device(s)");
        }
        this.ordinal = ordinal;
        Driver.check(cuDeviceGet(device, ordinal), "cuDeviceGet(" + ordinal + ")");
        Driver.check(cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain(" + ordinal + ")");
        byte[] nameBytes = new byte[256];
        Driver.check(cuDeviceGetName(nameBytes, nameBytes.length, device), "cuDeviceGetName");
        this.name = new String(nameBytes, 0, indexOfZero(nameBytes)).trim();
        makeCurrent();
    }

    private static int indexOfZero(byte[] b) {
        for (int i = 0; i < b.length; i++) if (b[i] == 0) return i;
        return b.length;
    }

    public void makeCurrent() {
        Driver.check(cuCtxSetCurrent(context), "cuCtxSetCurrent(device " + ordinal + ")");
    }

    public int ordinal() {
        return ordinal;
    }

    public String deviceName() {
        return name;
    }

    CUdevice device() {
        return device;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Driver.check(cuDevicePrimaryCtxRelease(device), "cuDevicePrimaryCtxRelease(" + ordinal + ")");
    }
}
