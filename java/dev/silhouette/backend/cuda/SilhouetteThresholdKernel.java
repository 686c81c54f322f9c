package dev.silhouette.backend.cuda;

import dev.silhouette.quant.SilhouetteThresholds;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

/**
 * Runs {@code silhouette_cut_keys} and {@code silhouette_region_map} (cuda/silhouette_threshold.cu) on
 * a host silhouette and brings both results back; the results equal {@link SilhouetteThresholds}'s bit
 * for bit. Self-contained and synchronous: {@link DeviceScratch} memory, freed before returning, and the
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
        if (batch == 0) return new Result(new long[0], new byte[0]);
        try (DeviceScratch scratch = new DeviceScratch(context)) {
            long input = scratch.upload(silhouette.data(), "silhouette");
            long cutKeys = scratch.allocate((long) batch * count * Long.BYTES, "cut keys");
            long map = scratch.allocate(silhouette.size(), "region map");
            if (count > 0) {
                long shareTable = scratch.upload(shares, "region shares");
                module.launch(CUT_KEYS, batch, 1, SELECT_BLOCK, 0, null, input, batch, pixels, shareTable, shares.length, cutKeys);
            }
            int blocks = (int) Math.min(MAX_REGION_BLOCKS, ((long) silhouette.size() + BLOCK - 1) / BLOCK);
            module.launch(REGION_MAP, blocks, 1, BLOCK, 0, null, input, batch, pixels, cutKeys, count, map);
            scratch.synchronize(CUT_KEYS + " and " + REGION_MAP + " on " + s);
            return new Result(scratch.downloadLongs(cutKeys, batch * count, "cut keys"), scratch.downloadBytes(map, silhouette.size(), "region map"));
        }
    }
}
