package dev.silhouette.backend.cuda;

import dev.silhouette.graph.Op;
import dev.silhouette.quant.SilhouetteThresholds;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

/**
 * The region map of a layer on the device: a silhouette B x 1 x h x w brought to the layer's H x W and
 * split into regions by each image's rank cuts (docs/REGION_QUANTIZATION.md section 3): the device form of
 * {@code RegionOps.regionMap}, in the IR's two orders of thresholding and resizing.
 * <ul>
 *   <li>{@link Op.RegionQuantize.MaskOrder#RESIZE_THEN_THRESHOLD}: the built-in interpolation kernel (ops_resize.cu) resizes
 *       the silhouette, then {@code silhouette_cut_keys} and {@code silhouette_region_map}
 *       (silhouette_threshold.cu, through {@link SilhouetteThresholdKernel}'s launch sizes) split it
 *       at the layer's size; at equal sizes the resize is skipped.</li>
 *   <li>{@link Op.RegionQuantize.MaskOrder#THRESHOLD_THEN_RESIZE}: cuts at the silhouette's own size, then one fused pass
 *       ({@code region_map_threshold_then_resize}, region_masks.cu) that splits the source pixels and
 *       resizes the regions' 0/1 masks on the fly, writing only the byte map.</li>
 * </ul>
 */
public final class RegionMaskKernel {
    public static final String FUSED = "region_map_threshold_then_resize";
    static final int BLOCK = 256;
    static final int MAX_BLOCKS = 8192;

    private final KernelLauncher launcher;
    private final KernelLauncher.Resize builtins;

    public RegionMaskKernel(KernelModule module) {
        if (module == null) throw new IllegalArgumentException("kernel module is required");
        this.launcher = module::launch;
        this.builtins = new BuiltinKernels(module)::interpolate;
    }

    /** Launches through {@code launcher} and {@code resize} instead of a kernel module (tests: recording, host emulation). */
    public RegionMaskKernel(KernelLauncher launcher, KernelLauncher.Resize resize) {
        this.launcher = launcher;
        this.builtins = resize;
    }

    /** Checks sizes and returns the pixels of one output map. */
    public static int validate(Shape silhouette, int[] shares, int outH, int outW) {
        SilhouetteThresholds.validate(silhouette, shares);
        if (outH < 1 || outW < 1) throw new IllegalArgumentException("region map size " + outH + "x" + outW + " must be positive");
        long pixels = (long) outH * outW;
        KernelSupport.all(KernelSupport.indexable("region map pixels", pixels),
                KernelSupport.indexable("region map of the batch", pixels * silhouette.n())).require("region masks");
        return (int) pixels;
    }

    /** Floats of device work memory {@link #launch} needs: the resized silhouette, when it is resized before thresholding. */
    public static long workFloats(Shape silhouette, int outH, int outW, Op.RegionQuantize.MaskOrder order) {
        boolean resized = order == Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD && (silhouette.h() != outH || silhouette.w() != outW);
        return resized ? (long) silhouette.n() * outH * outW : 0;
    }

    /**
     * Queues the region map on {@code stream}. Device addresses: {@code silhouette} B x h x w floats,
     * {@code shareTable} the policy's region shares (ints, {@code shares.length} of them), {@code work} of
     * {@link #workFloats} floats (0 when that is 0), {@code cutKeys} B x (regions - 1) 64-bit keys,
     * {@code region} B x outH x outW bytes.
     */
    public void launch(Shape silhouette, long address, int[] shares, long shareTable, int outH, int outW, Op.Interpolate.Mode resize,
                       Op.RegionQuantize.MaskOrder order, long work, long cutKeys, long region, CudaStream stream) {
        validate(silhouette, shares, outH, outW);
        int batch = silhouette.n(), h = silhouette.h(), w = silhouette.w(), regions = shares.length, count = regions - 1;
        if (batch == 0) return;
        KernelSupport.addresses(FUSED, "silhouette", address, "cut keys", cutKeys, "region map", region);
        if (count > 0) KernelSupport.addresses(SilhouetteThresholdKernel.CUT_KEYS, "region shares", shareTable);
        if (workFloats(silhouette, outH, outW, order) > 0) KernelSupport.addresses("silhouette resize", "work", work);
        boolean sameSize = h == outH && w == outW;
        if (order == Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD || sameSize) {
            long source = address;
            if (!sameSize) {
                builtins.interpolate(address, work, batch, h, w, outH, outW, resize == Op.Interpolate.Mode.BILINEAR, stream);
                source = work;
            }
            int pixels = outH * outW;
            if (count > 0) {
                launcher.launch(SilhouetteThresholdKernel.CUT_KEYS, batch, 1, SilhouetteThresholdKernel.SELECT_BLOCK, 0, stream,
                        source, batch, pixels, shareTable, regions, cutKeys);
            }
            long total = (long) batch * pixels;
            int blocks = (int) Math.min(SilhouetteThresholdKernel.MAX_REGION_BLOCKS, (total + SilhouetteThresholdKernel.BLOCK - 1) / SilhouetteThresholdKernel.BLOCK);
            launcher.launch(SilhouetteThresholdKernel.REGION_MAP, blocks, 1, SilhouetteThresholdKernel.BLOCK, 0, stream,
                    source, batch, pixels, cutKeys, count, region);
            return;
        }
        if (count > 0) {
            launcher.launch(SilhouetteThresholdKernel.CUT_KEYS, batch, 1, SilhouetteThresholdKernel.SELECT_BLOCK, 0, stream,
                    address, batch, h * w, shareTable, regions, cutKeys);
        }
        long total = (long) batch * outH * outW;
        int blocks = (int) Math.min(MAX_BLOCKS, (total + BLOCK - 1) / BLOCK);
        launcher.launch(FUSED, blocks, 1, BLOCK, 0, stream, address, batch, h, w, cutKeys, count, outH, outW,
                resize == Op.Interpolate.Mode.BILINEAR ? 1 : 0, region);
    }

    /** The region map B x outH x outW of a host silhouette, synchronously (tests and tools). */
    public byte[] run(CudaContext context, Tensor silhouette, int[] shares, int outH, int outW, Op.Interpolate.Mode resize, Op.RegionQuantize.MaskOrder order) {
        Shape s = silhouette.shape();
        int pixels = validate(s, shares, outH, outW);
        if (s.n() == 0) return new byte[0];
        try (DeviceScratch scratch = new DeviceScratch(context); CudaStream stream = new CudaStream()) {
            long input = scratch.upload(silhouette.data(), "silhouette");
            long shareTable = scratch.upload(shares, "region shares");
            long work = scratch.allocate(workFloats(s, outH, outW, order) * Float.BYTES, "resized silhouette");
            long cutKeys = scratch.allocate((long) s.n() * (shares.length - 1) * Long.BYTES, "cut keys");
            long region = scratch.allocate((long) s.n() * pixels, "region map");
            launch(s, input, shares, shareTable, outH, outW, resize, order, work, cutKeys, region, stream);
            scratch.synchronize("region masks on " + s + " to " + outH + "x" + outW);
            return scratch.downloadBytes(region, s.n() * pixels, "region map");
        }
    }
}
