package dev.silhouette.backend.cuda;

import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUstream;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

/**
 * Device memory owned by whoever holds it; closing returns it to its allocator's cache (idempotent).
 * Capacity may exceed the requested size: the allocator rounds sizes up to reuse blocks.
 */
public final class DeviceBuffer implements AutoCloseable {
    private final DeviceAllocator owner;
    private final DevicePointer pointer;
    private final long capacity;
    private final long bytes;
    private boolean closed;

    DeviceBuffer(DeviceAllocator owner, DevicePointer pointer, long capacity, long bytes) {
        this.owner = owner;
        this.pointer = pointer;
        this.capacity = capacity;
        this.bytes = bytes;
    }

    DevicePointer pointer() {
        requireOpen();
        return pointer;
    }

    /** Raw device address, for library calls and kernel arguments (as a long). */
    public long address() {
        requireOpen();
        return pointer.address();
    }

    /** Requested size in bytes. */
    public long bytes() {
        return bytes;
    }

    long capacity() {
        return capacity;
    }

    /** Asynchronous upload of floats on the stream (the source array must not change until the stream syncs). */
    public void upload(float[] data, CUstream stream) {
        requireOpen();
        checkFits((long) data.length * Sizeof.FLOAT);
        Driver.check(cuMemcpyHtoDAsync(pointer, Pointer.to(data), (long) data.length * Sizeof.FLOAT, stream), "cuMemcpyHtoDAsync");
    }

    /** Download of floats, waiting for the stream. */
    public void download(float[] data, CUstream stream) {
        requireOpen();
        checkFits((long) data.length * Sizeof.FLOAT);
        Driver.check(cuMemcpyDtoHAsync(Pointer.to(data), pointer, (long) data.length * Sizeof.FLOAT, stream), "cuMemcpyDtoHAsync");
        Driver.check(cuStreamSynchronize(stream), "cuStreamSynchronize after download");
    }

    public void download(byte[] data, CUstream stream) {
        requireOpen();
        checkFits(data.length);
        Driver.check(cuMemcpyDtoHAsync(Pointer.to(data), pointer, data.length, stream), "cuMemcpyDtoHAsync");
        Driver.check(cuStreamSynchronize(stream), "cuStreamSynchronize after download");
    }

    private void checkFits(long n) {
        if (n > bytes) throw new IllegalArgumentException("copy of " + n + " bytes into a device buffer of " + bytes);
    }

    private void requireOpen() {
        if (closed) throw new IllegalStateException("device buffer used after close");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        owner.release(this);
    }
}
