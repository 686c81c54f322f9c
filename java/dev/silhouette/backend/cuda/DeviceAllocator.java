package dev.silhouette.backend.cuda;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

/**
 * A caching allocator: sizes round up to a size class (256-byte granules below 1 MiB, then 1/8 steps of
 * the power of two), and released blocks wait in a free list per class. After the first batch of a
 * given shape, steady-state inference finds every block in the cache and never calls cuMemAlloc.
 * Not thread-safe: one allocator belongs to one backend, which serialises its work.
 */
public final class DeviceAllocator implements AutoCloseable {
    private final CudaContext context;
    private final Map<Long, ArrayDeque<DevicePointer>> free = new HashMap<>();
    private long bytesInUse, bytesCached, driverAllocations;

    public DeviceAllocator(CudaContext context) {
        this.context = context;
    }

    public DeviceBuffer allocate(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("negative allocation " + bytes);
        long size = sizeClass(Math.max(bytes, 1));
        ArrayDeque<DevicePointer> list = free.get(size);
        DevicePointer p = list == null ? null : list.poll();
        if (p != null) {
            bytesCached -= size;
        } else {
            p = new DevicePointer();
            int result = cuMemAlloc(p, size);
            if (result != jcuda.driver.CUresult.CUDA_SUCCESS && bytesCached > 0) {
                trim();   // out of memory with blocks cached: give them back and try once more
                result = cuMemAlloc(p, size);
            }
            Driver.check(result, "cuMemAlloc(" + size + " bytes) on " + context.deviceName());
            driverAllocations++;
        }
        bytesInUse += size;
        return new DeviceBuffer(this, p, size, bytes);
    }

    void release(DeviceBuffer buffer) {
        bytesInUse -= buffer.capacity();
        bytesCached += buffer.capacity();
        free.computeIfAbsent(buffer.capacity(), k -> new ArrayDeque<>()).push(buffer.pointer());
    }

    /** Frees every cached block back to the driver. */
    public void trim() {
        for (ArrayDeque<DevicePointer> list : free.values()) {
            for (DevicePointer p : list) Driver.check(cuMemFree(p), "cuMemFree");
            list.clear();
        }
        bytesCached = 0;
    }

    static long sizeClass(long bytes) {
        if (bytes <= 1 << 20) return (bytes + 255) / 256 * 256;
        long power = Long.highestOneBit(bytes - 1);
        long step = power / 8;
        return (bytes + step - 1) / step * step;
    }

    public long bytesInUse() {
        return bytesInUse;
    }

    public long bytesCached() {
        return bytesCached;
    }

    /** How many times cuMemAlloc was called: flat in steady state. */
    public long driverAllocations() {
        return driverAllocations;
    }

    @Override
    public void close() {
        trim();
    }
}
