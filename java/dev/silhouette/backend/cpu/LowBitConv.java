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

import java.util.stream.IntStream;

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

    public enum Formulation { SHORT_LANES, INT_LANES }

    /** Codes and regions of one layer's input, laid out for the kernel. */
    record Codes(int n, int channels, int paddedH, int paddedW, short[] codes, byte[] region, int[] codeSums, int groups) {}

    /** Accumulators of one call: A_r (and S_r) per (image, output channel, output pixel, region). */
    record Accumulators(int regions, int[] products, int[] codeSums) {}

    public static Tensor run(Tensor x, Tensor map, Tensor bias, Op.LowBitConv2d op) {
        return run(x, map, bias, op, choose(op));
    }

    public static Tensor run(Tensor x, Tensor map, Tensor bias, Op.LowBitConv2d op, Formulation formulation) {
        Shape in = x.shape();
        Window win = op.conv().window();
        int oh = win.outH(in.h()), ow = win.outW(in.w());
        Accumulators acc = accumulate(x, map, op, formulation);
        return epilogue(acc, bias, op, in.n(), oh, ow);
    }

    /** The formulation that holds this layer's products exactly and runs fastest (16-bit lanes when they fit). */
    public static Formulation choose(Op.LowBitConv2d op) {
        LowBitWeights w = op.weights();
        long worst = 0;
        for (int r = 0; r < w.regions(); r++) worst = Math.max(worst, (long) w.maxAbsCode(r));
        long perTap = (long) w.inPerGroup() * maxAbsActivation(op.codes()) * worst;
        return perTap <= Short.MAX_VALUE ? Formulation.SHORT_LANES : Formulation.INT_LANES;
    }

    private static int maxAbsActivation(ActivationCodes codes) {
        return switch (codes) {
            case ActivationCodes.Grid g -> Math.max(g.zeroPoint(), (1 << g.bits()) - 1 - g.zeroPoint());
            case ActivationCodes.Regions r -> (1 << r.bits().stream().mapToInt(Integer::intValue).max().orElseThrow()) - 1;
            case ActivationCodes.DrqClass d -> (1 << d.bits()) - 1;
        };
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
        IntStream.range(0, s.n() * s.h()).parallel().forEach(row -> {
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
        return new Codes(s.n(), c, ph, pw, codes, region, sums, groups);
    }

    /** Steps 1 and 2: the exact integer accumulators of the layer. */
    public static Accumulators accumulate(Tensor x, Tensor map, Op.LowBitConv2d op, Formulation formulation) {
        Codes q = quantize(x, map, op);
        Window win = op.conv().window();
        Shape s = x.shape();
        int oh = win.outH(s.h()), ow = win.outW(s.w());
        int regions = op.codes().regions(), outC = op.conv().outChannels();
        int[] products = new int[s.n() * outC * oh * ow * regions];
        int[] codeSums = q.codeSums() == null ? null : new int[s.n() * op.conv().groups() * oh * ow * regions];
        LowBitWeights w = op.weights();
        IntStream.range(0, s.n() * oh).parallel().forEach(row -> {
            int n = row / oh, oy = row % oh;
            int[] rowAcc = new int[regions * w.outStride()];
            for (int g = 0; g < op.conv().groups(); g++)
                for (int ox = 0; ox < ow; ox++) {
                    java.util.Arrays.fill(rowAcc, 0);
                    switch (formulation) {
                        case SHORT_LANES -> pixelShort(q, w, win, n, g, oy, ox, regions, rowAcc);
                        case INT_LANES -> pixelInt(q, w, win, n, g, oy, ox, regions, rowAcc);
                    }
                    for (int r = 0; r < regions; r++)
                        for (int o = 0; o < w.outPerGroup(); o++) {
                            int oc = g * w.outPerGroup() + o;
                            products[(((n * outC + oc) * oh + oy) * ow + ox) * regions + r] = rowAcc[r * w.outStride() + o];
                        }
                    if (codeSums != null) {
                        for (int t = 0; t < win.taps(); t++) {
                            int p = tapPixel(q, win, n, oy, ox, t);
                            codeSums[(((n * op.conv().groups() + g) * oh + oy) * ow + ox) * regions + q.region()[p]] += q.codeSums()[p * q.groups() + g];
                        }
                    }
                }
        });
        return new Accumulators(regions, products, codeSums);
    }

    private static int tapPixel(Codes q, Window win, int n, int oy, int ox, int tap) {
        int ky = tap / win.kernelW(), kx = tap % win.kernelW();
        int iy = oy * win.strideH() + ky * win.dilationH(), ix = ox * win.strideW() + kx * win.dilationW();
        return (n * q.paddedH() + iy) * q.paddedW() + ix;
    }

    private static final VectorSpecies<Short> SHORTS = ShortVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
    /** Shorts as many as INTS has lanes, for widening one weight row into 32-bit lanes. */
    private static final VectorSpecies<Short> HALF_SHORTS = VectorSpecies.of(short.class, jdk.incubator.vector.VectorShape.forBitSize(INTS.vectorBitSize() / 2));

    /** One output pixel, 16-bit lanes: each tap's channel sum in shorts, widened into the tap's region accumulator. */
    private static void pixelShort(Codes q, LowBitWeights w, Window win, int n, int g, int oy, int ox, int regions, int[] acc) {
        int cg = w.inPerGroup(), stride = w.outStride(), c = q.channels();
        short[] codes = q.codes();
        int lanes = SHORTS.length();
        for (int t = 0; t < win.taps(); t++) {
            int p = tapPixel(q, win, n, oy, ox, t);
            int r = q.region()[p];
            short[] wr = w.codes().get(w.regions() == 1 ? 0 : r);
            int base = p * c + g * cg, accBase = r * stride;
            for (int o = 0; o < w.outPerGroup(); o += lanes) {
                ShortVector sum = ShortVector.zero(SHORTS);
                int row = w.row(g, t, 0) + o;
                for (int ch = 0; ch < cg; ch++, row += stride) {
                    short a = codes[base + ch];
                    if (a == 0) continue;   // zero codes (ReLU's zeros, low-bit regions' small values) cost nothing
                    sum = sum.add(ShortVector.fromArray(SHORTS, wr, row).mul(a));
                }
                for (int part = 0; part < lanes / INTS.length(); part++) {
                    IntVector wide = (IntVector) sum.convertShape(VectorOperators.S2I, INTS, part);
                    int at = accBase + o + part * INTS.length();
                    if (at >= accBase + stride) break;
                    wide.add(IntVector.fromArray(INTS, acc, at)).intoArray(acc, at);
                }
            }
        }
    }

    /** One output pixel, 32-bit lanes: for codes whose per-tap sums could overflow 16 bits. */
    private static void pixelInt(Codes q, LowBitWeights w, Window win, int n, int g, int oy, int ox, int regions, int[] acc) {
        int cg = w.inPerGroup(), stride = w.outStride(), c = q.channels();
        short[] codes = q.codes();
        int lanes = INTS.length();
        for (int t = 0; t < win.taps(); t++) {
            int p = tapPixel(q, win, n, oy, ox, t);
            int r = q.region()[p];
            short[] wr = w.codes().get(w.regions() == 1 ? 0 : r);
            int base = p * c + g * cg, accBase = r * stride;
            for (int o = 0; o < w.outPerGroup(); o += lanes) {
                IntVector sum = IntVector.fromArray(INTS, acc, accBase + o);
                int row = w.row(g, t, 0) + o;
                for (int ch = 0; ch < cg; ch++, row += stride) {
                    int a = codes[base + ch];
                    if (a == 0) continue;
                    IntVector wv = (IntVector) ShortVector.fromArray(HALF_SHORTS, wr, row)
                            .convertShape(VectorOperators.S2I, INTS, 0);
                    sum = sum.add(wv.mul(a));
                }
                sum.intoArray(acc, accBase + o);
            }
        }
    }

    /** Step 3: y = bias + sum_r step_r (scale_(o,r) A_r + offset_(o,r) S_r), in double. */
    static Tensor epilogue(Accumulators acc, Tensor bias, Op.LowBitConv2d op, int n, int oh, int ow) {
        int outC = op.conv().outChannels(), regions = acc.regions(), groups = op.conv().groups();
        int og = outC / groups, pixels = oh * ow;
        LowBitWeights w = op.weights();
        double[] steps = steps(op.codes());
        float[] out = new float[n * outC * pixels];
        IntStream.range(0, n * outC).parallel().forEach(plane -> {
            int oc = plane % outC, image = plane / outC, g = oc / og;
            double b = bias == null ? 0 : bias.data()[oc];
            for (int p = 0; p < pixels; p++) {
                int index = plane * pixels + p;
                double y = b;
                for (int r = 0; r < regions; r++) {
                    int set = w.regions() == 1 ? 0 : r;
                    double term = (double) w.scales().get(set)[oc] * acc.products()[index * regions + r];
                    if (acc.codeSums() != null) term += (double) w.offsets().get(set)[oc] * acc.codeSums()[((image * groups + g) * pixels + p) * regions + r];
                    y += steps[r] * term;
                }
                out[index] = (float) y;
            }
        });
        return new Tensor(Shape.of(n, outC, oh, ow), out);
    }

    private static double[] steps(ActivationCodes codes) {
        return switch (codes) {
            case ActivationCodes.Grid g -> new double[] {g.step()};
            case ActivationCodes.Regions r -> r.steps().stream().mapToDouble(Float::doubleValue).toArray();
            case ActivationCodes.DrqClass d -> new double[] {d.step()};
        };
    }
}
