package dev.silhouette.backend.cuda;

import jcuda.driver.CUstream;

/**
 * How the low-bit kernels' glue launches: {@link KernelModule#launch} in production; in host tests a
 * recorder, which checks every launch's argument list against the kernel's parameters in cuda/ without
 * a GPU.
 */
@FunctionalInterface
interface KernelLauncher {
    void launch(String kernel, int gridX, int gridY, int blockX, int sharedBytes, CUstream stream, Object... args);

    /** The resize that RESIZE_THEN_THRESHOLD borrows from the built-in kernels (BuiltinKernels.interpolate's signature). */
    @FunctionalInterface
    interface Resize {
        void interpolate(long x, long y, int planes, int h, int w, int oh, int ow, boolean bilinear, CudaStream s);
    }
}
