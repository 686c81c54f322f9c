package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.DeviceScratch;

/**
 * Where a kernel check puts its buffers: host memory of the emulation or device memory of a GPU, so one
 * check (its problem, its launches through the glue, its CPU answer) runs on both.
 */
interface KernelMemory {
    long put(byte[] a);

    long put(int[] a);

    long put(long[] a);

    long put(float[] a);

    long allocate(long bytes);

    byte[] bytes(long address, int n);

    int[] ints(long address, int n);

    float[] floats(long address, int n);

    /** The emulation's host memory (launches run synchronously there). */
    static KernelMemory of(HostEmulator emu) {
        return new KernelMemory() {
            public long put(byte[] a) { return emu.put(a); }
            public long put(int[] a) { return emu.put(a); }
            public long put(long[] a) { return emu.put(a); }
            public long put(float[] a) { return emu.put(a); }
            public long allocate(long bytes) { return emu.allocate(bytes); }
            public byte[] bytes(long address, int n) { return emu.bytes(address, n); }
            public int[] ints(long address, int n) { return emu.ints(address, n); }
            public float[] floats(long address, int n) { return emu.floats(address, n); }
        };
    }

    /** A GPU's memory; every read waits for the queued kernels first, so a fault surfaces named. */
    static KernelMemory of(DeviceScratch scratch) {
        return new KernelMemory() {
            public long put(byte[] a) { return scratch.upload(a, "input"); }
            public long put(int[] a) { return scratch.upload(a, "input"); }
            public long put(long[] a) { return scratch.upload(a, "input"); }
            public long put(float[] a) { return scratch.upload(a, "input"); }
            public long allocate(long bytes) { return scratch.allocate(bytes, "output"); }
            public byte[] bytes(long address, int n) {
                scratch.synchronize("the kernels");
                return scratch.downloadBytes(address, n, "output");
            }
            public int[] ints(long address, int n) {
                scratch.synchronize("the kernels");
                return scratch.downloadInts(address, n, "output");
            }
            public float[] floats(long address, int n) {
                scratch.synchronize("the kernels");
                return scratch.downloadFloats(address, n, "output");
            }
        };
    }
}
