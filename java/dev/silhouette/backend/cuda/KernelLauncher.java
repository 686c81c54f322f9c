package dev.silhouette.backend.cuda;

/**
 * How the low-bit kernels' glue launches: {@link KernelModule#launch} in production. Without a GPU,
 * tests put a recorder here (checking every launch's arguments against the kernel's parameters in cuda/)
 * or the host emulation of native-build/emulate (running the kernels' code on the CPU on host memory).
 */
@FunctionalInterface
public interface KernelLauncher {
    void launch(String kernel, int gridX, int gridY, int blockX, int sharedBytes, CudaStream stream, Object... args);

    /** The resize that RESIZE_THEN_THRESHOLD borrows from the built-in kernels (BuiltinKernels.interpolate's signature). */
    @FunctionalInterface
    public interface Resize {
        void interpolate(long x, long y, int planes, int h, int w, int oh, int ow, boolean bilinear, CudaStream s);
    }
}
