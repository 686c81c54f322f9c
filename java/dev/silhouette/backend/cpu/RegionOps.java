package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Op;
import dev.silhouette.quant.QuantizedTensor;
import dev.silhouette.quant.Quantizers;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.quant.SilhouetteThresholds;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * The CPU specification of region-based quantization: region maps from a silhouette, per-pixel PACT
 * quantization at each region's width, the DRQ baseline's masks, and training-free silhouettes by
 * channel squeezing. Plain loops; the CLI's accounting and pictures call the same functions, so what
 * is counted and drawn is what was computed.
 */
public final class RegionOps {
    private RegionOps() {}

    /**
     * Region index (0 = lowest silhouette values) of every pixel of an N x 1 x h x w silhouette at
     * size H x W, N x H x W row-major. RESIZE_THEN_THRESHOLD resizes the silhouette with {@code resize}
     * and splits it at the new size (the per-image rank cuts of {@link SilhouetteThresholds}).
     * THRESHOLD_THEN_RESIZE splits at the silhouette's own size, resizes each region's 0/1 mask with
     * {@code resize}, and gives every pixel the region of the largest resized mask, the higher region on
     * ties (so nearest resizing simply copies the source pixel's region).
     */
    public static byte[] regionMap(Tensor silhouette, RegionPolicy policy, int outH, int outW, Op.Interpolate.Mode resize,
                                   Op.RegionQuantize.MaskOrder order) {
        Shape s = silhouette.shape();
        int[] shares = policy.percents();
        SilhouetteThresholds.validate(s, shares);
        int regions = policy.regions().size();
        boolean sameSize = s.h() == outH && s.w() == outW;
        if (order == Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD || sameSize) {
            Tensor resized = sameSize ? silhouette : CpuOps.interpolate(silhouette, new Op.Interpolate(resize, outH, outW));
            return SilhouetteThresholds.regionMap(resized, SilhouetteThresholds.cutKeys(resized, shares), regions);
        }
        byte[] source = SilhouetteThresholds.regionMap(silhouette, SilhouetteThresholds.cutKeys(silhouette, shares), regions);
        int pixels = s.h() * s.w();
        float[] oneHot = new float[s.n() * regions * pixels];
        for (int i = 0; i < source.length; i++) {
            int n = i / pixels;
            oneHot[(n * regions + source[i]) * pixels + i % pixels] = 1f;
        }
        Tensor masks = CpuOps.interpolate(new Tensor(Shape.of(s.n(), regions, s.h(), s.w()), oneHot), new Op.Interpolate(resize, outH, outW));
        int outPixels = outH * outW;
        float[] m = masks.data();
        byte[] out = new byte[s.n() * outPixels];
        for (int n = 0; n < s.n(); n++)
            for (int p = 0; p < outPixels; p++) {
                int best = 0;
                for (int r = 1; r < regions; r++) if (m[(n * regions + r) * outPixels + p] >= m[(n * regions + best) * outPixels + p]) best = r;
                out[n * outPixels + p] = (byte) best;
            }
        return out;
    }

    /** Op.RegionMap: the region index of every pixel at the op's size, as an N x 1 x H x W tensor. */
    public static Tensor regionMapTensor(Tensor silhouette, Op.RegionMap op) {
        byte[] map = regionMap(silhouette, op.policy(), op.height(), op.width(), op.resize(), op.order());
        float[] out = new float[map.length];
        for (int i = 0; i < map.length; i++) out[i] = map[i];
        return new Tensor(Shape.of(silhouette.shape().n(), 1, op.height(), op.width()), out);
    }

    /** The region map of {@code op} for activations of shape {@code x} (N x C x H x W). */
    public static byte[] regionMap(Tensor silhouette, Shape x, Op.RegionQuantize op) {
        if (silhouette.shape().rank() != 4 || silhouette.shape().n() != x.n()) {
            throw new IllegalArgumentException("silhouette " + silhouette.shape() + " does not match activations " + x);
        }
        return regionMap(silhouette, op.policy(), x.h(), x.w(), op.resize(), op.order());
    }

    /** Every activation PACT-quantized at its pixel's region width and clip level; other regions zero when the op selects one. */
    public static Tensor regionQuantize(Tensor x, Tensor silhouette, Op.RegionQuantize op) {
        Shape s = x.shape();
        byte[] region = regionMap(silhouette, s, op);
        int regions = op.policy().regions().size();
        int[] bits = new int[regions];
        float[] alphas = new float[regions];
        for (int r = 0; r < regions; r++) {
            bits[r] = op.policy().bits(r);
            alphas[r] = op.alphas().get(r);
        }
        int plane = s.h() * s.w();
        float[] in = x.data(), out = new float[in.length];
        IntStream.range(0, s.n() * s.c()).parallel().forEach(p -> {
            int mapOffset = p / s.c() * plane;
            for (int i = 0; i < plane; i++) {
                int r = region[mapOffset + i];
                if (op.onlyRegion() >= 0 && r != op.onlyRegion()) continue;
                out[p * plane + i] = RegionQuantizer.pactValue(in[p * plane + i], alphas[r], bits[r]);
            }
        });
        return new Tensor(s, out);
    }

    /** Uniform PACT quantization of every activation. */
    public static Tensor pactQuantize(Tensor x, Op.PactQuantize op) {
        float[] in = x.data(), out = new float[in.length];
        float alpha = op.alpha();
        int bits = op.bits();
        inChunks(in.length, (from, to) -> {
            for (int i = from; i < to; i++) out[i] = RegionQuantizer.pactValue(in[i], alpha, bits);
        });
        return new Tensor(x.shape(), out);
    }

    /**
     * Op.AffineQuantize: every value replaced by its dequantized affine code, per tensor or per channel
     * (axis 1) with that channel's width and range; the codes are {@link Quantizers#affine}'s.
     */
    public static Tensor affineQuantize(Tensor x, Op.AffineQuantize op) {
        int groups = op.bits().size();
        Shape s = x.shape();
        if (groups > 1 && (s.rank() < 2 || s.dim(1) != groups)) {
            throw new IllegalArgumentException("affine quantization of " + groups + " channels cannot read a value of shape " + s);
        }
        float[] in = x.data(), out = new float[in.length];
        int channels = groups == 1 ? 1 : s.dim(1), plane = in.length / Math.max(1, s.dim(0)) / channels;
        IntStream.range(0, in.length / plane).parallel().forEach(p -> {
            int g = groups == 1 ? 0 : p % channels;
            int from = p * plane;
            Tensor slice = new Tensor(Shape.of(plane), java.util.Arrays.copyOfRange(in, from, from + plane));
            QuantizedTensor q = Quantizers.affine(slice, op.bits().get(g), new float[] {op.lo().get(g)}, new float[] {op.hi().get(g)});
            System.arraycopy(q.dequantize().data(), 0, out, from, plane);
        });
        return new Tensor(s, out);
    }

    /**
     * DRQ's sensitivity of every activation (1 sensitive, 0 not), N x C x H x W: the mean of its
     * channel's block x block tile (tiles from the top-left corner; an edge tile averages its in-bounds
     * pixels), summed in double and rounded to float, is at or above {@code threshold}.
     */
    public static byte[] drqMap(Tensor x, int block, float threshold) {
        Shape s = x.shape();
        int tilesH = (s.h() + block - 1) / block, tilesW = (s.w() + block - 1) / block;
        float[] means = drqBlockMeans(x, block);
        byte[] out = new byte[s.size()];
        int h = s.h(), w = s.w();
        IntStream.range(0, s.n() * s.c()).parallel().forEach(p -> {
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) {
                    out[(p * h + y) * w + xx] = (byte) (means[(p * tilesH + y / block) * tilesW + xx / block] >= threshold ? 1 : 0);
                }
        });
        return out;
    }

    /** The DRQ block means of every tile, in tile order per plane: what calibration picks thresholds from. */
    public static float[] drqBlockMeans(Tensor x, int block) {
        Shape s = x.shape();
        int tilesH = (s.h() + block - 1) / block, tilesW = (s.w() + block - 1) / block;
        float[] in = x.data();
        float[] out = new float[s.n() * s.c() * tilesH * tilesW];
        int plane = s.h() * s.w();
        IntStream.range(0, s.n() * s.c()).parallel().forEach(p -> {
            for (int ty = 0; ty < tilesH; ty++)
                for (int tx = 0; tx < tilesW; tx++) {
                    int y1 = Math.min(s.h(), (ty + 1) * block), x1 = Math.min(s.w(), (tx + 1) * block);
                    double sum = 0;
                    for (int y = ty * block; y < y1; y++) for (int xx = tx * block; xx < x1; xx++) sum += in[p * plane + y * s.w() + xx];
                    out[(p * tilesH + ty) * tilesW + tx] = (float) (sum / ((y1 - ty * block) * (x1 - tx * block)));
                }
        });
        return out;
    }

    public static Tensor drqQuantize(Tensor x, Op.DrqQuantize op) {
        byte[] sensitive = drqMap(x, op.block(), op.threshold());
        float[] in = x.data(), out = new float[in.length];
        inChunks(in.length, (from, to) -> {
            for (int i = from; i < to; i++) {
                int r = sensitive[i];
                if (op.onlyRegion() >= 0 && r != op.onlyRegion()) continue;
                out[i] = r == 1 ? RegionQuantizer.pactValue(in[i], op.highAlpha(), op.highBits())
                        : RegionQuantizer.pactValue(in[i], op.lowAlpha(), op.lowBits());
            }
        });
        return new Tensor(x.shape(), out);
    }

    /**
     * The training-free silhouette of {@link Op.ChannelSqueeze}. Channel statistics are per image, in
     * double; top-k ranks channels by the statistic, the lower channel index first on ties.
     */
    public static Tensor channelSqueeze(Tensor x, Op.ChannelSqueeze op) {
        Shape s = x.shape();
        int plane = s.h() * s.w(), channels = s.c();
        if ((op.mode() == Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN || op.mode() == Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD) && op.k() > channels) {
            throw new IllegalArgumentException("channel squeeze top-" + op.k() + " of a feature map with " + channels + " channels; k must be at most " + channels);
        }
        float[] in = x.data(), out = new float[s.n() * plane];
        IntStream.range(0, s.n()).parallel().forEach(n -> {
            int[] chosen = switch (op.mode()) {
                case MAX, MEAN -> IntStream.range(0, channels).toArray();
                case TOP_K_BY_MEAN, TOP_K_BY_STD -> topChannels(in, n, channels, plane, op.k(), op.mode() == Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD);
            };
            float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < plane; i++) {
                double acc = op.mode() == Op.ChannelSqueeze.Squeeze.MAX ? Double.NEGATIVE_INFINITY : 0;
                for (int c : chosen) {
                    float v = in[(n * channels + c) * plane + i];
                    acc = op.mode() == Op.ChannelSqueeze.Squeeze.MAX ? Math.max(acc, v) : acc + v;
                }
                float v = (float) (op.mode() == Op.ChannelSqueeze.Squeeze.MAX ? acc : acc / chosen.length);
                out[n * plane + i] = v;
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
            }
            float range = hi - lo;
            for (int i = 0; i < plane; i++) out[n * plane + i] = range > 0f ? (out[n * plane + i] - lo) / range : 0f;
        });
        return new Tensor(Shape.of(s.n(), 1, s.h(), s.w()), out);
    }

    /** The control silhouette of {@link Op.NoiseSilhouette}: SplittableRandom(seed ^ hash of the image's values) per image. */
    public static Tensor noiseSilhouette(Tensor x, Op.NoiseSilhouette op) {
        return noiseSilhouette(x, x, op);
    }

    /** The noise at {@code x}'s size, each image's draw seeded by the hash of that image's values in {@code seedSource}. */
    public static Tensor noiseSilhouette(Tensor x, Tensor seedSource, Op.NoiseSilhouette op) {
        Shape s = x.shape();
        int plane = s.h() * s.w(), perImage = seedSource.shape().sampleSize();
        float[] out = new float[s.n() * plane];
        for (int n = 0; n < s.n(); n++) {
            int hash = Arrays.hashCode(Arrays.copyOfRange(seedSource.data(), n * perImage, (n + 1) * perImage));
            java.util.SplittableRandom rnd = new java.util.SplittableRandom(op.seed() ^ hash);
            for (int i = 0; i < plane; i++) out[n * plane + i] = (float) rnd.nextDouble();
        }
        return new Tensor(Shape.of(s.n(), 1, s.h(), s.w()), out);
    }

    private static int[] topChannels(float[] in, int n, int channels, int plane, int k, boolean byStd) {
        double[] score = new double[channels];
        for (int c = 0; c < channels; c++) {
            int base = (n * channels + c) * plane;
            double sum = 0, sumSq = 0;
            for (int i = 0; i < plane; i++) {
                sum += in[base + i];
                sumSq += (double) in[base + i] * in[base + i];
            }
            double mean = sum / plane;
            score[c] = byStd ? Math.sqrt(Math.max(0, sumSq / plane - mean * mean)) : mean;
        }
        Integer[] order = IntStream.range(0, channels).boxed().toArray(Integer[]::new);
        Arrays.sort(order, (a, b) -> score[a] != score[b] ? Double.compare(score[b], score[a]) : Integer.compare(a, b));
        int[] top = new int[k];
        for (int i = 0; i < k; i++) top[i] = order[i];
        return top;
    }

    private interface Range {
        void run(int from, int to);
    }

    private static final int CHUNK = 1 << 14;

    private static void inChunks(int length, Range body) {
        int chunks = (length + CHUNK - 1) / CHUNK;
        IntStream.range(0, chunks).parallel().forEach(c -> body.run(c * CHUNK, Math.min(length, (c + 1) * CHUNK)));
    }
}
