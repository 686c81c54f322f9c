package dev.silhouette.backend.cuda;

import jcuda.Sizeof;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

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

    /**
     * Copies host floats to the device through pinned staging, ordered on {@code stream}; returns when the
     * staging area may be reused.
     */
    public void upload(float[] data, PinnedBuffer staging, CudaStream stream) {
        requireOpen();
        long n = (long) data.length * Sizeof.FLOAT;
        checkFits(n);
        if (n > staging.bytes()) throw new IllegalArgumentException("upload of " + n + " bytes through " + staging.bytes() + " bytes of staging");
        staging.floats().put(data);
        Driver.check(cuMemcpyHtoDAsync(pointer, staging.pointer(), n, stream), "cuMemcpyHtoDAsync(" + n + " bytes)");
        stream.synchronize("upload");
    }

    /** Copies host bytes to the device through pinned staging, as {@link #upload(float[], PinnedBuffer, CudaStream)}. */
    public void upload(byte[] data, PinnedBuffer staging, CudaStream stream) {
        requireOpen();
        long n = data.length;
        checkFits(n);
        if (n > staging.bytes()) throw new IllegalArgumentException("upload of " + n + " bytes through " + staging.bytes() + " bytes of staging");
        staging.byteView().put(data);
        Driver.check(cuMemcpyHtoDAsync(pointer, staging.pointer(), n, stream), "cuMemcpyHtoDAsync(" + n + " bytes)");
        stream.synchronize("upload");
    }

    /** Copies the first {@code data.length} floats back to the host, waiting for all work queued on the stream. */
    public void download(float[] data, PinnedBuffer staging, CudaStream stream) {
        requireOpen();
        long n = (long) data.length * Sizeof.FLOAT;
        checkFits(n);
        if (n > staging.bytes()) throw new IllegalArgumentException("download of " + n + " bytes through " + staging.bytes() + " bytes of staging");
        Driver.check(cuMemcpyDtoHAsync(staging.pointer(), pointer, n, stream), "cuMemcpyDtoHAsync(" + n + " bytes)");
        stream.synchronize("download");
        staging.floats().get(data);
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
