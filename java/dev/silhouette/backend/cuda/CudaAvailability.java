package dev.silhouette.backend.cuda;

import jcuda.driver.JCudaDriver;

import java.util.Optional;

/** Whether CUDA can run here, and if not, why: found once per process. */
public final class CudaAvailability {
    /** JCuda 12.6 is built against the CUDA 12 driver API. */
    private static final int MIN_DRIVER_CUDA_VERSION = 12000;
    private static volatile Optional<String> reason;

    private CudaAvailability() {}

    /** Empty when a driver and at least one device are usable; otherwise the reason in words. */
    public static Optional<String> unavailableReason() {
        Optional<String> r = reason;
        if (r == null) {
            synchronized (CudaAvailability.class) {
                if (reason == null) reason = probe();
                r = reason;
            }
        }
        return r;
    }

    private static Optional<String> probe() {
        try {
            JCudaDriver.setExceptionsEnabled(false);
            int init = JCudaDriver.cuInit(0);
            if (init == jcuda.driver.CUresult.CUDA_ERROR_NO_DEVICE) return Optional.of("no CUDA device (cuInit: CUDA_ERROR_NO_DEVICE)");
            if (init != jcuda.driver.CUresult.CUDA_SUCCESS) return Optional.of("cuInit failed: " + jcuda.driver.CUresult.stringFor(init));
            int[] version = new int[1];
            int versionResult = JCudaDriver.cuDriverGetVersion(version);
            if (versionResult != jcuda.driver.CUresult.CUDA_SUCCESS) return Optional.of("cuDriverGetVersion failed: " + jcuda.driver.CUresult.stringFor(versionResult));
            if (version[0] < MIN_DRIVER_CUDA_VERSION) {
                return Optional.of("the NVIDIA driver supports CUDA " + version[0] / 1000 + "." + version[0] % 1000 / 10
                        + "; Silhouette's JCuda needs CUDA 12.0 or newer");
            }
            int[] count = new int[1];
            int result = JCudaDriver.cuDeviceGetCount(count);
            if (result != jcuda.driver.CUresult.CUDA_SUCCESS) return Optional.of("cuDeviceGetCount failed: " + jcuda.driver.CUresult.stringFor(result));
            if (count[0] == 0) return Optional.of("no CUDA device");
            return Optional.empty();
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            // JCuda's native library links libcuda.so.1, which only the NVIDIA driver installs.
            return Optional.of("no NVIDIA driver: libcuda.so.1 could not be loaded (" + firstLine(e.getMessage()) + ")");
        } catch (jcuda.CudaException e) {
            // JCuda's own unchecked error: a probe must answer with a reason, never throw.
            return Optional.of("CUDA driver probe failed: " + firstLine(e.getMessage()));
        }
    }

    private static String firstLine(String s) {
        if (s == null) return "no detail";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
