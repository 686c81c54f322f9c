package dev.silhouette.backend.cuda;

import dev.silhouette.quant.PackedLayout;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

/**
 * Quantize-and-pack ({@code quantize_pack_bitplanes}, quantize_pack.cu): float NCHW activations to
 * unsigned PACT codes ({@code RegionQuantizer.pactCode}) at each pixel's region width and clip level, written as
 * {@link PackedLayout.BitPlanes} with the widest region's width as the plane count (a narrower pixel's
 * upper planes are 0). The result equals {@code BitSerialConv.packActivations} of the CPU codes.
 */
public final class QuantizePackKernel {
    public static final String KERNEL = "quantize_pack_bitplanes";
    static final int BLOCK = 256;
    static final int MAX_BLOCKS = 8192;

    private final KernelLauncher launcher;

    public QuantizePackKernel(KernelModule module) {
        if (module == null) throw new IllegalArgumentException("kernel module is required");
        this.launcher = module::launch;
    }

    /** Launches through {@code launcher} instead of a kernel module (tests: recording, host emulation). */
    public QuantizePackKernel(KernelLauncher launcher) {
        this.launcher = launcher;
    }

    /** Why not, or YES: regions in the packed argument, counts within 32 bits. */
    public static KernelSupport supports(Shape x, RegionWidths widths) {
        checkShape(x);
        long words = (long) x.n() * x.h() * x.w() * new PackedLayout.BitPlanes(widths.planeBits(), x.c()).wordsPerPosition();
        return KernelSupport.all(widths.supported(), KernelSupport.indexable("packed words", words));
    }

    /** Words of the packed output. */
    public static long outputWords(Shape x, RegionWidths widths) {
        return (long) x.n() * x.h() * x.w() * new PackedLayout.BitPlanes(widths.planeBits(), x.c()).wordsPerPosition();
    }

    /**
     * Queues the kernel. Device addresses: {@code x} NCHW floats, {@code region} N x H x W bytes or 0
     * (every pixel in region 0), {@code alphas} one float per region, {@code out} {@link #outputWords} words.
     */
    public void launch(Shape xs, long x, long region, RegionWidths widths, long alphas, long out, CudaStream stream) {
        supports(xs, widths).require(KERNEL);
        KernelSupport.addresses(KERNEL, "activations", x, "clip levels", alphas, "packed output", out);
        if (region == 0 && widths.regions() != 1) throw new IllegalArgumentException(KERNEL + ": " + widths.regions() + " regions need a region map");
        long threads = (long) xs.n() * xs.h() * xs.w() * new PackedLayout.BitPlanes(1, xs.c()).words();
        if (threads == 0) return;
        int blocks = (int) Math.min(MAX_BLOCKS, (threads + BLOCK - 1) / BLOCK);
        launcher.launch(KERNEL, blocks, 1, BLOCK, 0, stream, x, xs.n(), xs.c(), xs.h(), xs.w(), region, widths.packed(), alphas,
                widths.planeBits(), out);
    }

    /** Packed bit planes of host activations; {@code regionMap} N x H x W or null for one region. */
    public long[] run(CudaContext context, Tensor x, byte[] regionMap, RegionWidths widths) {
        Shape s = x.shape();
        checkRegionMap(s, regionMap, widths);
        supports(s, widths).require(KERNEL);
        int words = (int) outputWords(s, widths);
        try (DeviceScratch scratch = new DeviceScratch(context); CudaStream stream = new CudaStream()) {
            long in = scratch.upload(x.data(), "activations");
            long region = regionMap == null ? 0 : scratch.upload(regionMap, "region map");
            long alphas = scratch.upload(widths.alphas(), "clip levels");
            long out = scratch.allocate((long) words * Long.BYTES, "packed activations");
            launch(s, in, region, widths, alphas, out, stream);
            scratch.synchronize(KERNEL + " on " + s);
            return scratch.downloadLongs(out, words, "packed activations");
        }
    }

    static void checkShape(Shape x) {
        if (x.rank() != 4 || x.c() < 1) throw new IllegalArgumentException("activations must be N x C x H x W with C >= 1, got " + x);
    }

    /** A region map matches the activations' pixels and names only regions that exist. */
    static void checkRegionMap(Shape x, byte[] regionMap, RegionWidths widths) {
        checkShape(x);
        if (regionMap == null) {
            if (widths.regions() != 1) throw new IllegalArgumentException(widths.regions() + " regions need a region map");
            return;
        }
        int pixels = x.n() * x.h() * x.w();
        if (regionMap.length != pixels) throw new IllegalArgumentException("region map has " + regionMap.length + " entries; " + x + " has " + pixels + " pixels");
        for (int i = 0; i < regionMap.length; i++) {
            int r = Byte.toUnsignedInt(regionMap[i]);
            if (r >= widths.regions()) throw new IllegalArgumentException("region map entry " + i + " is region " + r + "; there are " + widths.regions());
        }
    }
}
