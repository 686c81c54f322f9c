package dev.silhouette.backend.cuda;

import jcuda.driver.CUresult;

/** Checks driver-API results; the single place where a CUresult becomes an exception. */
final class Driver {
    private Driver() {}

    /** Throws unless {@code result} is CUDA_SUCCESS; {@code call} names the driver function and what it was for. */
    static void check(int result, String call) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new CudaException(call + " failed: " + CUresult.stringFor(result) + " (" + result + ")");
        }
    }
}
