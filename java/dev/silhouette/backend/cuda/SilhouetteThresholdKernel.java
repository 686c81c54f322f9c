package dev.silhouette.backend.cuda;

import dev.silhouette.quant.SilhouetteThresholds;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUdeviceptr;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

/**
 * Runs {@code silhouette_thresholds} and {@code silhouette_region_map} (cuda/silhouette_threshold.cu) on
 * a host silhouette and brings both results back; the results equal {@link SilhouetteThresholds}'s bit
 * for bit. Self-contained and synchronous: private device memory, freed before returning, and the
 * legacy default stream, so nothing else queued in the context can race with it. Not for the hot path
 * of inference, which keeps the silhouette on the device.
 */
public final class SilhouetteThresholdKernel {
    public static final String THRESHOLDS = "silhouette_thresholds";
    public static final String REGION_MAP = "silhouette_region_map";
    /**
     * Threads per block of the selection kernel (whole warps, at most its launch bound): one block
     * selects one image's ranks alone, so the widest block is fastest (cuda/silhouette_threshold.cu).
     */
    public static final int SELECT_BLOCK = 1024;
    /** Threads per block of the region map. */
    public static final int BLOCK = 256;
    /** Grid cap of the grid-stride region map: 2M threads fill any current GPU. */
    static final int MAX_REGION_BLOCKS = 8192;

    /** Thresholds B x (regions - 1) and region indices B x H x W, both row-major. */
    public record Result(float[] thresholds, byte[] regions) {}

    private final CudaContext context;
    private final KernelModule module;

    public SilhouetteThresholdKernel(CudaContext context, KernelModule module) {
        if (context == null || module == null) throw new IllegalArgumentException("context and kernel module are required");
        this.context = context;
        this.module = module;
    }

    /** Thresholds of every image at the interior cumulative fractions, and the region of every pixel. */
    public Result run(Tensor silhouette, double[] cumulativeFractions) {
        Shape s = silhouette.shape();
        int pixels = SilhouetteThresholds.validate(s, cumulativeFractions);
        int batch = s.n();
        int count = cumulativeFractions.length;
        float[] thresholds = new float[batch * count];
        byte[] regions = new byte[silhouette.size()];
        if (batch == 0) return new Result(thresholds, regions);
        context.makeCurrent();
        try (Allocation input = new Allocation((long) silhouette.size() * Sizeof.FLOAT, "silhouette");
             Allocation fractions = new Allocation((long) count * Sizeof.DOUBLE, "cumulative fractions");
             Allocation output = new Allocation((long) thresholds.length * Sizeof.FLOAT, "thresholds");
             Allocation map = new Allocation(regions.length, "region map")) {
            Driver.check(cuMemcpyHtoD(input.pointer, Pointer.to(silhouette.data()), input.bytes), "cuMemcpyHtoD(silhouette, " + input.bytes + " bytes)");
            if (count > 0) {
                Driver.check(cuMemcpyHtoD(fractions.pointer, Pointer.to(cumulativeFractions), fractions.bytes),
                        "cuMemcpyHtoD(cumulative fractions, " + fractions.bytes + " bytes)");
                module.launch(THRESHOLDS, batch, 1, SELECT_BLOCK, 0, null, input.pointer, batch, pixels, fractions.pointer, count, output.pointer);
            }
            int blocks = (int) Math.min(MAX_REGION_BLOCKS, ((long) silhouette.size() + BLOCK - 1) / BLOCK);
            module.launch(REGION_MAP, blocks, 1, BLOCK, 0, null, input.pointer, batch, pixels, output.pointer, count, map.pointer);
            // A fault inside either kernel surfaces here, named, rather than at the copy below.
            Driver.check(cuCtxSynchronize(), "cuCtxSynchronize after " + THRESHOLDS + " and " + REGION_MAP + " on " + s);
            if (count > 0) {
                Driver.check(cuMemcpyDtoH(Pointer.to(thresholds), output.pointer, output.bytes), "cuMemcpyDtoH(thresholds, " + output.bytes + " bytes)");
            }
            Driver.check(cuMemcpyDtoH(Pointer.to(regions), map.pointer, map.bytes), "cuMemcpyDtoH(region map, " + map.bytes + " bytes)");
        }
        return new Result(thresholds, regions);
    }

    /** Device memory freed on close; {@code bytes} is the useful size (the driver gets at least one byte). */
    private static final class Allocation implements AutoCloseable {
        final CUdeviceptr pointer = new CUdeviceptr();
        final long bytes;
        private final String what;

        Allocation(long bytes, String what) {
            this.bytes = bytes;
            this.what = what;
            Driver.check(cuMemAlloc(pointer, Math.max(bytes, 1)), "cuMemAlloc(" + what + ", " + bytes + " bytes)");
        }

        @Override
        public void close() {
            Driver.check(cuMemFree(pointer), "cuMemFree(" + what + ")");
        }
    }
}
