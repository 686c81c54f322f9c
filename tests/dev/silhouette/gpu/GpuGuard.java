package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.CudaAvailability;
import org.testng.SkipException;

/** The one guard of the gpu group: skips with the reason CUDA is unusable here. */
public final class GpuGuard {
    private GpuGuard() {}

    public static void requireCuda() {
        CudaAvailability.unavailableReason().ifPresent(reason -> {
            throw new SkipException("CUDA unavailable: " + reason);
        });
    }
}
