package dev.silhouette.backend.cuda;

import jcuda.Pointer;
import jcuda.Sizeof;

import java.util.ArrayDeque;
import java.util.Deque;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

/**
 * Device memory for one synchronous call of a low-bit kernel from host arrays (the conformance tests,
 * the benchmark's setup): typed copies on the legacy default stream, every allocation freed on close.
 * Addresses are raw longs, the form the kernels' glue takes; 0 means "none". Not for inference, which
 * keeps its tensors in {@link DeviceAllocator}'s buffers.
 */
public final class DeviceScratch implements AutoCloseable {
    private final Deque<DevicePointer> owned = new ArrayDeque<>();
    private boolean closed;

    public DeviceScratch(CudaContext context) {
        context.makeCurrent();
    }

    /** Uninitialized device memory of at least one byte. */
    public long allocate(long bytes, String what) {
        if (closed) throw new IllegalStateException("device scratch is closed");
        if (bytes < 0) throw new IllegalArgumentException(what + ": negative size " + bytes);
        DevicePointer p = new DevicePointer();
        Driver.check(cuMemAlloc(p, Math.max(bytes, 1)), "cuMemAlloc(" + what + ", " + bytes + " bytes)");
        owned.push(p);
        return p.address();
    }

    public long upload(float[] data, String what) {
        return copyIn(Pointer.to(data), (long) data.length * Sizeof.FLOAT, what);
    }

    public long upload(int[] data, String what) {
        return copyIn(Pointer.to(data), (long) data.length * Sizeof.INT, what);
    }

    public long upload(long[] data, String what) {
        return copyIn(Pointer.to(data), (long) data.length * Sizeof.LONG, what);
    }

    public long upload(byte[] data, String what) {
        return copyIn(Pointer.to(data), data.length, what);
    }

    /** Waits for every queued kernel, so that a fault surfaces here, named, rather than at a copy. */
    public void synchronize(String after) {
        Driver.check(cuCtxSynchronize(), "cuCtxSynchronize after " + after);
    }

    public float[] downloadFloats(long address, int count, String what) {
        float[] out = new float[count];
        copyOut(Pointer.to(out), address, (long) count * Sizeof.FLOAT, what);
        return out;
    }

    public int[] downloadInts(long address, int count, String what) {
        int[] out = new int[count];
        copyOut(Pointer.to(out), address, (long) count * Sizeof.INT, what);
        return out;
    }

    public long[] downloadLongs(long address, int count, String what) {
        long[] out = new long[count];
        copyOut(Pointer.to(out), address, (long) count * Sizeof.LONG, what);
        return out;
    }

    public byte[] downloadBytes(long address, int count, String what) {
        byte[] out = new byte[count];
        copyOut(Pointer.to(out), address, count, what);
        return out;
    }

    private long copyIn(Pointer host, long bytes, String what) {
        long address = allocate(bytes, what);
        if (bytes > 0) Driver.check(cuMemcpyHtoD(at(address), host, bytes), "cuMemcpyHtoD(" + what + ", " + bytes + " bytes)");
        return address;
    }

    private void copyOut(Pointer host, long address, long bytes, String what) {
        if (bytes > 0) Driver.check(cuMemcpyDtoH(host, at(address), bytes), "cuMemcpyDtoH(" + what + ", " + bytes + " bytes)");
    }

    private DevicePointer at(long address) {
        for (DevicePointer p : owned) if (p.address() == address) return p;
        throw new IllegalArgumentException("address " + Long.toHexString(address) + " was not allocated by this scratch");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        while (!owned.isEmpty()) Driver.check(cuMemFree(owned.pop()), "cuMemFree(device scratch)");
    }
}
