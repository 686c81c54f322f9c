package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Op;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.quant.Quantizers;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

/**
 * Plain-loop reference implementations of the ops whose fast CPU path is a different algorithm
 * (convolution and linear layers go through GEMM there). Obviously right, slow, accumulating in double;
 * the fast paths are tested against these.
 */
public final class Reference {
    private Reference() {}

    /** Direct convolution: seven nested loops over n, o, oy, ox, c, ky, kx. */
    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, Op.Conv2d op) {
        Shape in = x.shape();
        var win = op.window();
        int oh = win.outH(in.h()), ow = win.outW(in.w());
        int cg = op.inPerGroup(), og = op.outPerGroup();
        float[] xd = x.data(), wd = weight.data();
        float[] out = new float[in.n() * op.outChannels() * oh * ow];
        for (int n = 0; n < in.n(); n++)
            for (int o = 0; o < op.outChannels(); o++) {
                int g = o / og;
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        double acc = bias == null ? 0 : bias.data()[o];
                        for (int c = 0; c < cg; c++)
                            for (int ky = 0; ky < win.kernelH(); ky++)
                                for (int kx = 0; kx < win.kernelW(); kx++) {
                                    int iy = win.inputY(oy, ky);
                                    int ix = win.inputX(ox, kx);
                                    if (iy < 0 || iy >= in.h() || ix < 0 || ix >= in.w()) continue;
                                    acc += (double) xd[((n * in.c() + g * cg + c) * in.h() + iy) * in.w() + ix]
                                            * wd[((o * cg + c) * win.kernelH() + ky) * win.kernelW() + kx];
                                }
                        out[((n * op.outChannels() + o) * oh + oy) * ow + ox] = (float) acc;
                    }
            }
        return new Tensor(Shape.of(in.n(), op.outChannels(), oh, ow), out);
    }

    /** y[n][o] = b[o] + sum_i x[n][i] * W[o][i]. */
    public static Tensor linear(Tensor x, Tensor weight, Tensor bias, Op.Linear op) {
        int batch = x.shape().dim(0);
        float[] out = new float[batch * op.outFeatures()];
        for (int n = 0; n < batch; n++)
            for (int o = 0; o < op.outFeatures(); o++) {
                double acc = bias == null ? 0 : bias.data()[o];
                for (int i = 0; i < op.inFeatures(); i++) {
                    acc += (double) x.data()[n * op.inFeatures() + i] * weight.data()[o * op.inFeatures() + i];
                }
                out[n * op.outFeatures() + o] = (float) acc;
            }
        return new Tensor(Shape.of(batch, op.outFeatures()), out);
    }

    /** The integer form of a region-quantized convolution: per-region accumulators and the combined output. */
    public record RegionConv(int regions, int[] accumulators, Tensor output) {
        /** A_(o,r) of image n at output (oy, ox), as laid out: ((n * out + o) * oh + oy) * ow + ox, then region. */
        public int accumulator(int index, int region) {
            return accumulators[index * regions + region];
        }
    }

    /**
     * Region-quantized convolution in integers, the form a quantized kernel must reproduce exactly
     * (docs/REGION_QUANTIZATION.md, section 6). Input pixel (n, y, x) is in region
     * {@code regionMap[(n * H + y) * W + x]}; its activations become PACT codes at
     * {@code activationBits[r]} and clip {@code alphas[r]}; the weights are quantized per output
     * channel at {@code weightBits[r]} (equal widths: the shared form; a region's own widths: the
     * per-region form). Per output and region, A = sum of weight code x activation code over the taps
     * reading that region, in int32 with overflow refused; then
     * y = bias + sum_r weightScale_(o,r) * alpha_r / (2^bits_r - 1) * A_r, in double, rounded once.
     */
    public static RegionConv regionConv2d(Tensor x, byte[] regionMap, int[] activationBits, float[] alphas, int[] weightBits,
                                          Tensor weight, Tensor bias, Op.Conv2d op) {
        Shape in = x.shape();
        var win = op.window();
        int regions = activationBits.length;
        int oh = win.outH(in.h()), ow = win.outW(in.w());
        int cg = op.inPerGroup(), og = op.outPerGroup(), taps = op.taps();
        float[][] scales = new float[regions][];
        for (int r = 0; r < regions; r++) scales[r] = RegionQuantizer.weightScales(weight.data(), op.outChannels(), weightBits[r]);
        float[] xd = x.data(), wd = weight.data();
        int[] acc = new int[in.n() * op.outChannels() * oh * ow * regions];
        float[] out = new float[in.n() * op.outChannels() * oh * ow];
        for (int n = 0; n < in.n(); n++)
            for (int o = 0; o < op.outChannels(); o++) {
                int g = o / og;
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        int index = ((n * op.outChannels() + o) * oh + oy) * ow + ox;
                        for (int c = 0; c < cg; c++)
                            for (int ky = 0; ky < win.kernelH(); ky++)
                                for (int kx = 0; kx < win.kernelW(); kx++) {
                                    int iy = win.inputY(oy, ky);
                                    int ix = win.inputX(ox, kx);
                                    if (iy < 0 || iy >= in.h() || ix < 0 || ix >= in.w()) continue;
                                    int r = regionMap[(n * in.h() + iy) * in.w() + ix];
                                    int code = RegionQuantizer.pactCode(xd[((n * in.c() + g * cg + c) * in.h() + iy) * in.w() + ix], alphas[r], activationBits[r]);
                                    int w = RegionQuantizer.weightCode(wd[o * taps + (c * win.kernelH() + ky) * win.kernelW() + kx], scales[r][o], weightBits[r]);
                                    acc[index * regions + r] = Math.addExact(acc[index * regions + r], Math.multiplyExact(w, code));
                                }
                        double y = bias == null ? 0 : bias.data()[o];
                        for (int r = 0; r < regions; r++) {
                            y += (double) scales[r][o] * RegionQuantizer.pactStep(alphas[r], activationBits[r]) * acc[index * regions + r];
                        }
                        out[index] = (float) y;
                    }
            }
        return new RegionConv(regions, acc, new Tensor(Shape.of(in.n(), op.outChannels(), oh, ow), out));
    }

    /**
     * The specification of {@link LowBitConv}'s accumulators, in plain loops: for every (image, output
     * channel, output pixel) and region r, A_r = sum over in-bounds taps whose pixel is in region r of
     * weightCode x (activationCode - zeroPoint), in int32 with overflow refused. Activation codes are
     * {@code Quantizers.code} on the op's grid (a DRQ class keeps only its own activations); regions come
     * from {@code map} (N x 1 x H x W region indices) when the grid has them.
     */
    public static int[] lowBitAccumulators(Tensor x, Tensor map, Op.LowBitConv2d op) {
        Shape in = x.shape();
        var win = op.conv().window();
        var w = op.weights();
        int oh = win.outH(in.h()), ow = win.outW(in.w()), outC = op.conv().outChannels();
        int cg = op.conv().inPerGroup(), og = op.conv().outPerGroup(), regions = op.codes().regions();
        byte[] drq = op.codes() instanceof Op.LowBitConv2d.ActivationCodes.DrqClass d ? RegionOps.drqMap(x, d.block(), d.threshold()) : null;
        int[] acc = new int[in.n() * outC * oh * ow * regions];
        for (int n = 0; n < in.n(); n++)
            for (int o = 0; o < outC; o++) {
                int g = o / og;
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++)
                        for (int c = 0; c < cg; c++)
                            for (int ky = 0; ky < win.kernelH(); ky++)
                                for (int kx = 0; kx < win.kernelW(); kx++) {
                                    int iy = win.inputY(oy, ky), ix = win.inputX(ox, kx);
                                    if (iy < 0 || iy >= in.h() || ix < 0 || ix >= in.w()) continue;
                                    int element = ((n * in.c() + g * cg + c) * in.h() + iy) * in.w() + ix;
                                    int r = map == null ? 0 : (int) map.data()[(n * in.h() + iy) * in.w() + ix];
                                    float v = x.data()[element];
                                    int code = switch (op.codes()) {
                                        case Op.LowBitConv2d.ActivationCodes.Grid q -> Quantizers.code(v, q.step(), q.zeroPoint(), 0, (1 << q.bits()) - 1) - q.zeroPoint();
                                        case Op.LowBitConv2d.ActivationCodes.Regions q -> Quantizers.code(v, q.steps().get(r), 0, 0, (1 << q.bits().get(r)) - 1);
                                        case Op.LowBitConv2d.ActivationCodes.DrqClass q ->
                                                drq[element] == (q.sensitive() ? 1 : 0) ? Quantizers.code(v, q.step(), 0, 0, (1 << q.bits()) - 1) : 0;
                                    };
                                    int tap = ky * win.kernelW() + kx;
                                    int weight = w.codes().get(w.regions() == 1 ? 0 : r)[w.row(g, tap, c) + o % og];
                                    int index = (((n * outC + o) * oh + oy) * ow + ox) * regions + r;
                                    acc[index] = Math.addExact(acc[index], Math.multiplyExact(weight, code));
                                }
            }
        return acc;
    }
}
