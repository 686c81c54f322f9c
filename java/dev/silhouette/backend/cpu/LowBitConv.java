package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Op;
import dev.silhouette.graph.Op.LowBitConv2d.ActivationCodes;
import dev.silhouette.quant.LowBitWeights;
import dev.silhouette.quant.Quantizers;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;


/**
 * The packed path's convolution on the CPU ({@link Op.LowBitConv2d}), in three steps:
 * <ol>
 *   <li><b>quantize and pack</b>: the float input becomes codes (code - zero point, so padding is 0),
 *   pixel-major with channels innermost inside a zero border of the convolution's padding, so every tap
 *   of every output reads in bounds without a branch; each pixel keeps its region index;</li>
 *   <li><b>integer accumulation</b>: per output pixel and region, A_r = sum over the taps in region r of
 *   sum_c weightCode x activationCode, exact in int32. Formulation {@link Formulation#SHORT_LANES}
 *   multiplies a vector of output channels' 16-bit weight codes by one broadcast activation code and sums
 *   a tap's channels in 16-bit lanes (exact while channels x max|a| x max|w| fits in 15 bits, checked per
 *   layer), widening to int32 once per tap; {@link Formulation#INT_LANES} does the same in 32-bit lanes
 *   for wide codes;</li>
 *   <li><b>epilogue</b>: y = bias + sum_r step_r (scale_(o,r) A_r + offset_(o,r) S_r) in double, rounded
 *   once to float.</li>
 * </ol>
 * {@link Reference#lowBitAccumulators} is the plain-loop specification the accumulators are tested against.
 */
public final class LowBitConv {
    private LowBitConv() {}

    /**
     * SHORT_LANES and INT_LANES: Java (Vector API), the specification. NATIVE_*: the x86 kernel of
     * {@link NativeLowBitConv} (VNNI or AVX2 8-bit multiply-adds), same codes and accumulators.
     */
    public enum Formulation {
        SHORT_LANES, INT_LANES, NATIVE_AVX512_VNNI, NATIVE_AVX2;

        NativeLowBitConv.Isa isa() {
            return switch (this) {
                case NATIVE_AVX512_VNNI -> NativeLowBitConv.Isa.AVX512_VNNI;
                case NATIVE_AVX2 -> NativeLowBitConv.Isa.AVX2;
                default -> NativeLowBitConv.Isa.NONE;
            };
        }

        /** The native formulation of an instruction set. */
        public static Formulation of(NativeLowBitConv.Isa isa) {
            return isa == NativeLowBitConv.Isa.AVX512_VNNI ? NATIVE_AVX512_VNNI : NATIVE_AVX2;
        }
    }

    /** Codes and regions of one layer's input, laid out for the kernel. */
    record Codes(int channels, int paddedH, int paddedW, short[] codes, byte[] region, int[] codeSums, int groups) {}

    /** Accumulators of one call: A_r (and S_r) per (image, output channel, output pixel, region). */
    public record Accumulators(int regions, int[] products, int[] codeSums) {}

    public static Tensor run(Tensor x, Tensor map, Tensor bias, Op.LowBitConv2d op) {
        return run(x, map, bias, op, choose(op));
    }

    public static Tensor run(Tensor x, Tensor map, Tensor bias, Op.LowBitConv2d op, Formulation formulation) {
        Shape in = x.shape();
        Window win = op.conv().window();
        int oh = win.outH(in.h()), ow = win.outW(in.w());
        int outC = op.conv().outChannels(), og = op.conv().outPerGroup(), regions = op.codes().regions();
        float[] out = new float[in.n() * outC * oh * ow];
        if (formulation.isa() != NativeLowBitConv.Isa.NONE) {
            NativeLowBitConv.run(x, map, bias, op, formulation.isa(), null, out);
            return new Tensor(Shape.of(in.n(), outC, oh, ow), out);
        }
        LowBitWeights w = op.weights();
        int stride = w.outStride();
        double[] steps = new double[regions];
        for (int r = 0; r < regions; r++) steps[r] = op.codes().step(r);
        float[] b = bias == null ? null : bias.data();
        boolean offsets = w.hasOffsets();
        // Step 3, per pixel as its accumulators complete: y = bias + sum_r step_r (scale_(o,r) A_r + offset_(o,r) S_r), in double.
        convolve(x, map, op, formulation, (n, g, oy, ox, acc, sums) -> {
            for (int o = 0; o < og; o++) {
                int oc = g * og + o;
                double y = b == null ? 0 : b[oc];
                for (int r = 0; r < regions; r++) {
                    int set = w.regions() == 1 ? 0 : r;
                    double term = (double) w.scales().get(set)[oc] * acc[r * stride + o];
                    if (offsets) term += (double) w.offsets().get(set)[oc] * sums[r];
                    y += steps[r] * term;
                }
                out[((n * outC + oc) * oh + oy) * ow + ox] = (float) y;
            }
        });
        return new Tensor(Shape.of(in.n(), outC, oh, ow), out);
    }

    /** The formulation that holds this layer's products exactly and runs fastest (16-bit lanes when they fit). */
    public static Formulation choose(Op.LowBitConv2d op) {
        if (NativeLowBitConv.supports(op)) return Formulation.of(NativeLowBitConv.isa());
        return javaFormulation(op);
    }

    /** Every formulation that holds this layer's products exactly here: the Java ones, then each native instruction set that loaded. */
    public static java.util.List<Formulation> formulations(Op.LowBitConv2d op) {
        java.util.List<Formulation> all = new java.util.ArrayList<>(javaFormulation(op) == Formulation.SHORT_LANES
                ? java.util.List.of(Formulation.SHORT_LANES, Formulation.INT_LANES) : java.util.List.of(Formulation.INT_LANES));
        if (NativeLowBitConv.supports(op)) for (var isa : NativeLowBitConv.isas()) all.add(Formulation.of(isa));
        return java.util.List.copyOf(all);
    }

    /** The Java formulation that holds this layer's products exactly: 16-bit lanes when a tap's sum fits. */
    public static Formulation javaFormulation(Op.LowBitConv2d op) {
        LowBitWeights w = op.weights();
        long worst = 0;
        for (int r = 0; r < w.regions(); r++) worst = Math.max(worst, (long) w.maxAbsCode(r));
        long perTap = (long) w.inPerGroup() * maxAbsActivation(op.codes()) * worst;
        return perTap <= Short.MAX_VALUE ? Formulation.SHORT_LANES : Formulation.INT_LANES;
    }

    private static int maxAbsActivation(ActivationCodes codes) {
        int max = 0;
        for (int r = 0; r < codes.regions(); r++) max = Math.max(max, Math.max(codes.zeroPoint(), (1 << codes.bits(r)) - 1 - codes.zeroPoint()));
        return max;
    }

    /** Step 1: the input's codes inside a zero border, channels innermost, with each pixel's region. */
    static Codes quantize(Tensor x, Tensor map, Op.LowBitConv2d op) {
        Shape s = x.shape();
        Window win = op.conv().window();
        int ph = s.h() + 2 * win.padH(), pw = s.w() + 2 * win.padW(), c = s.c(), plane = s.h() * s.w();
        short[] codes = new short[s.n() * ph * pw * c];
        byte[] region = new byte[s.n() * ph * pw];
        float[] in = x.data();
        byte[] drq = op.codes() instanceof ActivationCodes.DrqClass d ? RegionOps.drqMap(x, d.block(), d.threshold()) : null;
        float[] regionOfPixel = map == null ? null : map.data();
        if (map != null && (map.shape().n() != s.n() || map.shape().h() != s.h() || map.shape().w() != s.w())) {
            throw new IllegalArgumentException("region map " + map.shape() + " does not match activations " + s);
        }
        Workers.forEach(s.n() * s.h(), row -> {
            int n = row / s.h(), y = row % s.h();
            for (int xx = 0; xx < s.w(); xx++) {
                int pixel = (n * ph + y + win.padH()) * pw + xx + win.padW();
                int src = n * c * plane + y * s.w() + xx;
                switch (op.codes()) {
                    case ActivationCodes.Grid g -> {
                        int qmax = (1 << g.bits()) - 1;
                        for (int ch = 0; ch < c; ch++) {
                            codes[pixel * c + ch] = (short) (Quantizers.code(in[src + ch * plane], g.step(), g.zeroPoint(), 0, qmax) - g.zeroPoint());
                        }
                    }
                    case ActivationCodes.Regions r -> {
                        int k = (int) regionOfPixel[(n * s.h() + y) * s.w() + xx];
                        region[pixel] = (byte) k;
                        int qmax = (1 << r.bits().get(k)) - 1;
                        float step = r.steps().get(k);
                        for (int ch = 0; ch < c; ch++) codes[pixel * c + ch] = (short) Quantizers.code(in[src + ch * plane], step, 0, 0, qmax);
                    }
                    case ActivationCodes.DrqClass d -> {
                        int qmax = (1 << d.bits()) - 1, wanted = d.sensitive() ? 1 : 0;
                        for (int ch = 0; ch < c; ch++) {
                            int i = src + ch * plane;
                            if (drq[i] == wanted) codes[pixel * c + ch] = (short) Quantizers.code(in[i], d.step(), 0, 0, qmax);
                        }
                    }
                }
            }
        });
        int groups = op.conv().groups(), cg = c / groups;
        int[] sums = null;
        if (op.weights().hasOffsets()) {
            sums = new int[region.length * groups];
            for (int p = 0; p < region.length; p++)
                for (int g = 0; g < groups; g++) {
                    int sum = 0;
                    for (int ch = g * cg; ch < (g + 1) * cg; ch++) sum += codes[p * c + ch];
                    sums[p * groups + g] = sum;
                }
        }
        return new Codes(c, ph, pw, codes, region, sums, groups);
    }

    /** Receives one output pixel's accumulators: {@code acc[r * stride + o]} for region r and output o of group g. */
    interface PixelSink {
        void accept(int n, int g, int oy, int ox, int[] acc, int[] codeSums);
    }

    /** Steps 1 and 2: the exact integer accumulators of the layer, A_r at ((n, oc, oy, ox), r) and S_r at ((n, g, oy, ox), r). */
    public static Accumulators accumulate(Tensor x, Tensor map, Op.LowBitConv2d op, Formulation formulation) {
        Window win = op.conv().window();
        Shape s = x.shape();
        int oh = win.outH(s.h()), ow = win.outW(s.w());
        int regions = op.codes().regions(), outC = op.conv().outChannels(), groups = op.conv().groups(), og = op.conv().outPerGroup();
        int[] products = new int[s.n() * outC * oh * ow * regions];
        int[] codeSums = op.weights().hasOffsets() ? new int[s.n() * groups * oh * ow * regions] : null;
        int stride = op.weights().outStride();
        if (formulation.isa() != NativeLowBitConv.Isa.NONE) {
            NativeLowBitConv.run(x, map, null, op, formulation.isa(), products, null);
            return new Accumulators(regions, products, null);
        }
        convolve(x, map, op, formulation, (n, g, oy, ox, acc, sums) -> {
            for (int r = 0; r < regions; r++) {
                for (int o = 0; o < og; o++) products[(((n * outC + g * og + o) * oh + oy) * ow + ox) * regions + r] = acc[r * stride + o];
                if (codeSums != null) codeSums[(((n * groups + g) * oh + oy) * ow + ox) * regions + r] = sums[r];
            }
        });
        return new Accumulators(regions, products, codeSums);
    }

    /** Quantizes, then walks every output pixel (rows in parallel) and hands its accumulators to {@code sink}. */
    static void convolve(Tensor x, Tensor map, Op.LowBitConv2d op, Formulation formulation, PixelSink sink) {
        Codes q = quantize(x, map, op);
        Window win = op.conv().window();
        Shape s = x.shape();
        int oh = win.outH(s.h()), ow = win.outW(s.w());
        int regions = op.codes().regions(), taps = win.taps();
        LowBitWeights w = op.weights();
        int[] tapOffset = new int[taps];   // pixel offset of each tap from the window's top-left corner
        for (int t = 0; t < taps; t++) tapOffset[t] = (t / win.kernelW()) * win.dilationH() * q.paddedW() + (t % win.kernelW()) * win.dilationW();
        Workers.forEach(s.n() * oh, row -> {
            int n = row / oh, oy = row % oh;
            int[] acc = new int[regions * w.outStride()];
            int[] sums = new int[regions];
            int[] pixel = new int[taps];
            for (int g = 0; g < op.conv().groups(); g++)
                for (int ox = 0; ox < ow; ox++) {
                    java.util.Arrays.fill(acc, 0);
                    int corner = (n * q.paddedH() + oy * win.strideH()) * q.paddedW() + ox * win.strideW();
                    for (int t = 0; t < taps; t++) pixel[t] = corner + tapOffset[t];
                    switch (formulation) {
                        case SHORT_LANES -> {
                            if (w.outPerGroup() <= 16) pixelShort16(q, w, g, pixel, acc);
                            else pixelShort(q, w, g, pixel, acc);
                        }
                        case INT_LANES -> pixelInt(q, w, g, pixel, acc);
                        case NATIVE_AVX512_VNNI, NATIVE_AVX2 -> throw new IllegalStateException("the native kernel runs whole layers");
                    }
                    if (q.codeSums() != null) {
                        java.util.Arrays.fill(sums, 0);
                        for (int p : pixel) sums[q.region()[p]] += q.codeSums()[p * q.groups() + g];
                    }
                    sink.accept(n, g, oy, ox, acc, sums);
                }
        });
    }

    private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
    /** Shorts as many as INTS has lanes, for widening one weight row into 32-bit lanes. */
    private static final VectorSpecies<Short> HALF_SHORTS = VectorSpecies.of(short.class, jdk.incubator.vector.VectorShape.forBitSize(INTS.vectorBitSize() / 2));
    private static final VectorSpecies<Short> SHORTS = ShortVector.SPECIES_PREFERRED;
    /** 16 lanes: groups of 16 outputs or fewer (the bundled model's first stage) would leave half of a 512-bit vector idle. */
    private static final VectorSpecies<Short> SHORTS_16 = ShortVector.SPECIES_256;

    /*
     * One output pixel in 16-bit lanes (the caller checked that a tap's sum fits): each tap's channels summed
     * in shorts, widened once per tap into the int32 accumulator of the tap's region. Two copies that differ
     * only in the species, because the Vector API compiles to vector instructions only for constant species.
     */

    private static void pixelShort(Codes q, LowBitWeights w, int g, int[] pixel, int[] acc) {
        int cg = w.inPerGroup(), stride = w.outStride(), c = q.channels();
        short[] codes = q.codes();
        byte[] region = q.region();
        int lanes = SHORTS.length(), parts = lanes / INTS.length();
        for (int t = 0; t < pixel.length; t++) {
            int p = pixel[t], r = region[p];
            short[] wr = w.codes().get(w.regions() == 1 ? 0 : r);
            int base = p * c + g * cg, rowStart = w.row(g, t, 0);
            for (int o = 0; o < w.outPerGroup(); o += lanes) {
                ShortVector sum = ShortVector.zero(SHORTS);
                int row = rowStart + o;
                for (int ch = 0; ch < cg; ch++, row += stride) {
                    short a = codes[base + ch];
                    sum = sum.add(ShortVector.fromArray(SHORTS, wr, row).mul(a));
                }
                for (int part = 0; part < parts; part++) {
                    int at = r * stride + o + part * INTS.length();
                    ((IntVector) sum.convertShape(VectorOperators.S2I, INTS, part)).add(IntVector.fromArray(INTS, acc, at)).intoArray(acc, at);
                }
            }
        }
    }

    private static void pixelShort16(Codes q, LowBitWeights w, int g, int[] pixel, int[] acc) {
        int cg = w.inPerGroup(), stride = w.outStride(), c = q.channels();
        short[] codes = q.codes();
        byte[] region = q.region();
        int lanes = SHORTS_16.length(), parts = lanes / INTS.length();
        for (int t = 0; t < pixel.length; t++) {
            int p = pixel[t], r = region[p];
            short[] wr = w.codes().get(w.regions() == 1 ? 0 : r);
            int base = p * c + g * cg, rowStart = w.row(g, t, 0);
            for (int o = 0; o < w.outPerGroup(); o += lanes) {
                ShortVector sum = ShortVector.zero(SHORTS_16);
                int row = rowStart + o;
                for (int ch = 0; ch < cg; ch++, row += stride) {
                    short a = codes[base + ch];
                    sum = sum.add(ShortVector.fromArray(SHORTS_16, wr, row).mul(a));
                }
                for (int part = 0; part < parts; part++) {
                    int at = r * stride + o + part * INTS.length();
                    ((IntVector) sum.convertShape(VectorOperators.S2I, INTS, part)).add(IntVector.fromArray(INTS, acc, at)).intoArray(acc, at);
                }
            }
        }
    }

    /** One output pixel in 32-bit lanes: for codes whose per-tap sums could overflow 16 bits. */
    private static void pixelInt(Codes q, LowBitWeights w, int g, int[] pixel, int[] acc) {
        int cg = w.inPerGroup(), stride = w.outStride(), c = q.channels();
        short[] codes = q.codes();
        int lanes = INTS.length();
        for (int t = 0; t < pixel.length; t++) {
            int p = pixel[t];
            int r = q.region()[p];
            short[] wr = w.codes().get(w.regions() == 1 ? 0 : r);
            int base = p * c + g * cg, accBase = r * stride, rowStart = w.row(g, t, 0);
            for (int o = 0; o < w.outPerGroup(); o += lanes) {
                IntVector sum = IntVector.fromArray(INTS, acc, accBase + o);
                int row = rowStart + o;
                for (int ch = 0; ch < cg; ch++, row += stride) {
                    int a = codes[base + ch];
                    IntVector wv = (IntVector) ShortVector.fromArray(HALF_SHORTS, wr, row).convertShape(VectorOperators.S2I, INTS, 0);
                    sum = sum.add(wv.mul(a));
                }
                sum.intoArray(acc, accBase + o);
            }
        }
    }
}
