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
 * Runs {@code silhouette_cut_keys} and {@code silhouette_region_map} (cuda/silhouette_threshold.cu) on
 * a host silhouette and brings both results back; the results equal {@link SilhouetteThresholds}'s bit
 * for bit. Self-contained and synchronous: private device memory, freed before returning, and the
 * legacy default stream, so nothing else queued in the context can race with it. Not for the hot path
 * of inference, which keeps the silhouette on the device.
 */
public final class SilhouetteThresholdKernel {
    public static final String CUT_KEYS = "silhouette_cut_keys";
    public static final String REGION_MAP = "silhouette_region_map";
    /**
     * Threads per block of the selection kernel (whole warps, at most its launch bound): one block
     * selects one image's cuts alone, so the widest block is fastest (cuda/silhouette_threshold.cu).
     */
    public static final int SELECT_BLOCK = 1024;
    /** Threads per block of the region map. */
    public static final int BLOCK = 256;
    /** Grid cap of the grid-stride region map: 2M threads fill any current GPU. */
    static final int MAX_REGION_BLOCKS = 8192;

    /** Cut keys B x (regions - 1) and region indices B x H x W, both row-major. */
    public record Result(long[] cutKeys, byte[] regions) {}

    private final CudaContext context;
    private final KernelModule module;

    public SilhouetteThresholdKernel(CudaContext context, KernelModule module) {
        if (context == null || module == null) throw new IllegalArgumentException("context and kernel module are required");
        this.context = context;
        this.module = module;
    }

    /** The cut keys of every image for the policy's region shares, and the region of every pixel. */
    public Result run(Tensor silhouette, int[] shares) {
        Shape s = silhouette.shape();
        int pixels = SilhouetteThresholds.validate(s, shares);
        int batch = s.n();
        int count = shares.length - 1;
        long[] cutKeys = new long[batch * count];
        byte[] regions = new byte[silhouette.size()];
        if (batch == 0) return new Result(cutKeys, regions);
        context.makeCurrent();
        try (Allocation input = new Allocation((long) silhouette.size() * Sizeof.FLOAT, "silhouette");
             Allocation shareTable = new Allocation((long) shares.length * Sizeof.INT, "region shares");
             Allocation output = new Allocation((long) cutKeys.length * Sizeof.LONG, "cut keys");
             Allocation map = new Allocation(regions.length, "region map")) {
            Driver.check(cuMemcpyHtoD(input.pointer, Pointer.to(silhouette.data()), input.bytes), "cuMemcpyHtoD(silhouette, " + input.bytes + " bytes)");
            if (count > 0) {
                Driver.check(cuMemcpyHtoD(shareTable.pointer, Pointer.to(shares), shareTable.bytes), "cuMemcpyHtoD(region shares, " + shareTable.bytes + " bytes)");
                module.launch(CUT_KEYS, batch, 1, SELECT_BLOCK, 0, null, input.pointer, batch, pixels, shareTable.pointer, shares.length, output.pointer);
            }
            int blocks = (int) Math.min(MAX_REGION_BLOCKS, ((long) silhouette.size() + BLOCK - 1) / BLOCK);
            module.launch(REGION_MAP, blocks, 1, BLOCK, 0, null, input.pointer, batch, pixels, output.pointer, count, map.pointer);
            // A fault inside either kernel surfaces here, named, rather than at the copy below.
            Driver.check(cuCtxSynchronize(), "cuCtxSynchronize after " + CUT_KEYS + " and " + REGION_MAP + " on " + s);
            if (count > 0) {
                Driver.check(cuMemcpyDtoH(Pointer.to(cutKeys), output.pointer, output.bytes), "cuMemcpyDtoH(cut keys, " + output.bytes + " bytes)");
            }
            Driver.check(cuMemcpyDtoH(Pointer.to(regions), map.pointer, map.bytes), "cuMemcpyDtoH(region map, " + map.bytes + " bytes)");
        }
        return new Result(cutKeys, regions);
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
