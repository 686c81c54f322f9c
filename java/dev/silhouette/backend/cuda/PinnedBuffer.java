package dev.silhouette.backend.cuda;

import jcuda.Pointer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

import static jcuda.driver.JCudaDriver.cuMemAllocHost;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;

/**
 * Page-locked host memory: the staging area of every upload and download, so copies run
 * asynchronously on the backend's stream (the driver cannot DMA from the Java heap).
 */
public final class PinnedBuffer implements AutoCloseable {
    private final Pointer pointer = new Pointer();
    private final long bytes;
    private final FloatBuffer floats;
    private boolean closed;

    public PinnedBuffer(long bytes) {
        if (bytes < 4 || bytes > Integer.MAX_VALUE) throw new IllegalArgumentException("pinned buffer of " + bytes + " bytes");
        Driver.check(cuMemAllocHost(pointer, bytes), "cuMemAllocHost(" + bytes + " bytes)");
        this.bytes = bytes;
        this.floats = pointer.getByteBuffer(0, bytes).order(ByteOrder.nativeOrder()).asFloatBuffer();
    }

    Pointer pointer() {
        return pointer;
    }

    public long bytes() {
        return bytes;
    }

    FloatBuffer floats() {
        return floats.clear();
    }

    /** The whole buffer as bytes (raw uploads: the caller lays out multi-byte values as the device reads them). */
    ByteBuffer byteView() {
        return pointer.getByteBuffer(0, bytes);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Driver.check(cuMemFreeHost(pointer), "cuMemFreeHost");
    }
}
