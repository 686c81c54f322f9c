package dev.silhouette.train;

import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.backend.cpu.Gemm;
import dev.silhouette.backend.cpu.Im2col;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.backend.cpu.Workers;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.apache.commons.math3.stat.ranking.NaNStrategy;
import org.apache.commons.math3.stat.ranking.NaturalRanking;
import org.apache.commons.math3.stat.ranking.TiesStrategy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Backward passes of the IR's ops on the CPU (and BatchNorm's training-mode forward, whose batch
 * statistics the backward needs). Each takes the forward's inputs (or outputs, where cheaper) and the
 * gradient of the loss with respect to the op's output, and returns the gradients of its inputs and
 * parameters. Work is split over the batch in a fixed number of chunks, so results do not depend on
 * thread scheduling or the core count: training is bitwise reproducible from a seed.
 */
public final class OpGradients {
    private OpGradients() {}

    /** Batch chunks for parameter-gradient partial sums; fixed so the summation order never changes. */
    static final int CHUNKS = 16;

    private static final Gemm.Epilogue OVERWRITE = Gemm.Epilogue.overwrite(null, 0, null, 0, false);

    public record ConvGrads(Tensor input, Tensor weight, Tensor bias) {}

    /**
     * Convolution backward as GEMMs per image and group, on the forward's im2col matrix:
     * dW += dY * col^T and dcol = W^T * dY, then col2im scatters dcol into dX.
     *
     * @param needInput      false for the first layer, whose input gradient nobody reads
     * @param needParameters false for a frozen layer: its weight and bias gradients come back null
     */
    public static ConvGrads conv2d(Tensor x, Tensor weight, Tensor dy, Op.Conv2d op, boolean needInput, boolean needParameters) {
        Shape in = x.shape();
        Window win = op.window();
        int oh = win.outH(in.h()), ow = win.outW(in.w());
        int groups = op.groups();
        int cg = op.inPerGroup(), og = op.outPerGroup(), k = op.taps();
        int pixels = oh * ow;
        int batch = in.n();
        float[] w = weight.data();
        // At stride 1 the input gradient is itself a convolution: of dy with the weights flipped in space and transposed
        // per group, padded by the window's reach less the forward padding. It runs on the forward's kernel for the whole
        // batch instead of a GEMM into columns and their scatter back (col2im).
        Tensor transposed = needInput ? transposedConvolution(dy, weight, op, in) : null;
        boolean scatter = needInput && transposed == null;
        float[] dx = scatter ? new float[x.size()] : null;
        // W^T per group, [k x og], formed once.
        float[] wt = scatter ? new float[groups * k * og] : null;
        for (int g = 0; scatter && g < groups; g++)
            for (int o = 0; o < og; o++)
                for (int j = 0; j < k; j++) wt[g * k * og + j * og + o] = w[(g * og + o) * k + j];
        int chunks = Math.min(CHUNKS, batch);
        float[][] partialW = new float[chunks][];
        float[][] partialB = new float[chunks][];
        Workers.run(chunks, (chunk, worker) -> {
            float[] dw = needParameters ? new float[w.length] : null;
            float[] db = needParameters && op.bias() ? new float[op.outChannels()] : null;
            // The worker's own buffers: nothing is allocated per chunk but the partial sums it returns.
            float[] col = needParameters ? Workers.scratch(Workers.Scratch.COLUMNS, pixels * k) : null;
            float[] dcol = scatter ? Workers.scratch(Workers.Scratch.GRADIENT, k * pixels) : null;
            for (int n = chunk * batch / chunks; n < (chunk + 1) * batch / chunks; n++) {
                for (int g = 0; g < groups; g++) {
                    int dyOff = (n * op.outChannels() + g * og) * pixels;
                    if (needParameters) {
                        // col^T is read by the GEMM's packing from the tap-row matrix (contiguous copies to build).
                        Im2col.fill(x.data(), in, n, g * cg, cg, win, ow, 0, pixels, col);
                        Gemm.multiplyTransposedB(og, k, pixels, dy.data(), dyOff, pixels, col, 0, pixels, dw, g * og * k, k, false);
                    }
                    if (scatter) {
                        Gemm.multiply(k, pixels, og, wt, g * k * og, og, dy.data(), dyOff, pixels, dcol, 0, pixels, OVERWRITE, false);
                        col2im(dcol, in, n, g * cg, cg, win, oh, ow, dx);
                    }
                }
                if (db != null) {
                    for (int o = 0; o < op.outChannels(); o++) {
                        double s = 0;
                        int off = (n * op.outChannels() + o) * pixels;
                        for (int p = 0; p < pixels; p++) s += dy.data()[off + p];
                        db[o] += (float) s;
                    }
                }
            }
            partialW[chunk] = dw;
            partialB[chunk] = db;
        });
        return new ConvGrads(needInput ? (scatter ? new Tensor(in, dx) : transposed) : null, needParameters ? new Tensor(weight.shape(), sum(partialW)) : null,
                needParameters && op.bias() ? new Tensor(Shape.of(op.outChannels()), sum(partialB)) : null);
    }

    /**
     * dL/dx of a stride-1 convolution as the convolution of dy with the weights flipped in space, input and output channels
     * swapped within each group, and padding (kernel - 1) x dilation - pad, which gives back the input's size; null where
     * that padding would be negative (more padding than the window reaches) or the stride is not 1.
     */
    static Tensor transposedConvolution(Tensor dy, Tensor weight, Op.Conv2d op, Shape in) {
        Window win = op.window();
        int kh = win.kernelH(), kw = win.kernelW();
        int padH = (kh - 1) * win.dilationH() - win.padH(), padW = (kw - 1) * win.dilationW() - win.padW();
        if (win.strideH() != 1 || win.strideW() != 1 || padH < 0 || padW < 0) return null;
        int groups = op.groups(), cg = op.inPerGroup(), og = op.outPerGroup();
        float[] w = weight.data(), flipped = new float[w.length];
        // Forward weight [g * og + o][c][ky][kx] becomes [g * cg + c][o][kh - 1 - ky][kw - 1 - kx].
        for (int g = 0; g < groups; g++)
            for (int o = 0; o < og; o++)
                for (int c = 0; c < cg; c++)
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            flipped[(((g * cg + c) * og + o) * kh + kh - 1 - ky) * kw + kw - 1 - kx] = w[(((g * og + o) * cg + c) * kh + ky) * kw + kx];
                        }
        Op.Conv2d back = new Op.Conv2d(op.outChannels(), op.inChannels(), new Window(kh, kw, 1, 1, padH, padW, win.dilationH(), win.dilationW()), groups, false);
        Tensor dx = CpuOps.conv2d(dy, new Tensor(Shape.of(op.inChannels(), og, kh, kw), flipped), null, back, null, false);
        if (!dx.shape().equals(in)) throw new IllegalStateException("transposed convolution gave " + dx.shape() + " for input " + in);
        return dx;
    }

    /** The adjoint of im2col: adds every tap's column gradient to the input pixel it read. */
    static void col2im(float[] col, Shape in, int n, int c0, int channels, Window win, int oh, int ow, float[] dx) {
        int kh = win.kernelH(), kw = win.kernelW();
        for (int c = 0; c < channels; c++) {
            int plane = (n * in.c() + c0 + c) * in.h() * in.w();
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++) {
                    int row = ((c * kh + ky) * kw + kx) * oh * ow;
                    // The output columns whose input column is inside the image, [lo, hi): no test per pixel,
                    // and at unit stride a loop C2 vectorises. Same additions in the same order as testing each.
                    int shift = kx * win.dilationW() - win.padW(), sw = win.strideW();
                    int lo = Math.max(0, Math.ceilDiv(-shift, sw)), hi = Math.min(ow, Math.floorDiv(in.w() - 1 - shift, sw) + 1);
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = win.inputY(oy, ky);
                        if (iy < 0 || iy >= in.h()) continue;
                        int dst = plane + iy * in.w() + shift, src = row + oy * ow;
                        if (sw == 1) {
                            for (int ox = lo; ox < hi; ox++) dx[dst + ox] += col[src + ox];
                        } else {
                            for (int ox = lo; ox < hi; ox++) dx[dst + ox * sw] += col[src + ox];
                        }
                    }
                }
        }
    }

    /** Batch statistics of a training-mode BatchNorm: per-channel mean and 1/sqrt(biased var + eps). */
    public record BatchStats(float[] mean, float[] invStd, float[] unbiasedVar) {}

    /** Mean and variance over N, H, W per channel, accumulated in double. */
    public static BatchStats batchStats(Tensor x, float eps) {
        int batch = x.shape().dim(0), channels = x.shape().dim(1), plane = planeSize(x.shape());
        float[] data = x.data();
        float[] mean = new float[channels], invStd = new float[channels], unbiased = new float[channels];
        long count = (long) batch * plane;
        Workers.forEach(channels, c -> {
            // Four partial sums in double break the chain of dependent additions (its latency bounded the loop); a double
            // sum of floats rounded to float once hardly ever depends on the order.
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int n = 0; n < batch; n++) {
                int off = (n * channels + c) * plane, i = 0;
                for (; i + 4 <= plane; i += 4) {
                    s0 += data[off + i];
                    s1 += data[off + i + 1];
                    s2 += data[off + i + 2];
                    s3 += data[off + i + 3];
                }
                for (; i < plane; i++) s0 += data[off + i];
            }
            double s = (s0 + s1) + (s2 + s3);
            double m = s / count, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
            for (int n = 0; n < batch; n++) {
                int off = (n * channels + c) * plane, i = 0;
                for (; i + 4 <= plane; i += 4) {
                    double d0 = data[off + i] - m, d1 = data[off + i + 1] - m, d2 = data[off + i + 2] - m, d3 = data[off + i + 3] - m;
                    q0 += d0 * d0;
                    q1 += d1 * d1;
                    q2 += d2 * d2;
                    q3 += d3 * d3;
                }
                for (; i < plane; i++) {
                    double d = data[off + i] - m;
                    q0 += d * d;
                }
            }
            double ss = (q0 + q1) + (q2 + q3);
            double var = ss / count;
            mean[c] = (float) m;
            invStd[c] = (float) (1 / Math.sqrt(var + eps));
            unbiased[c] = (float) (count > 1 ? ss / (count - 1) : var);
        });
        return new BatchStats(mean, invStd, unbiased);
    }

    /** y = (x - mean) * invStd * gamma + beta with the batch's statistics. */
    public static Tensor batchNormTrain(Tensor x, Tensor gamma, Tensor beta, BatchStats stats) {
        int channels = x.shape().dim(1), plane = planeSize(x.shape());
        float[] in = x.data(), out = new float[in.length];
        Workers.forEach(in.length / plane, p -> {
            int c = p % channels;
            float scale = stats.invStd()[c] * gamma.data()[c], shift = beta.data()[c] - stats.mean()[c] * scale;
            for (int i = p * plane; i < (p + 1) * plane; i++) out[i] = in[i] * scale + shift;
        });
        return new Tensor(x.shape(), out);
    }

    /** PyTorch's update: running = (1 - momentum) * running + momentum * batch (unbiased variance). */
    public static void updateRunningStats(Tensor runningMean, Tensor runningVar, BatchStats stats, float momentum) {
        for (int c = 0; c < runningMean.size(); c++) {
            runningMean.data()[c] = (1 - momentum) * runningMean.data()[c] + momentum * stats.mean()[c];
            runningVar.data()[c] = (1 - momentum) * runningVar.data()[c] + momentum * stats.unbiasedVar()[c];
        }
    }

    public record BatchNormGrads(Tensor input, Tensor gamma, Tensor beta) {}

    /**
     * Training-mode BatchNorm backward (the batch statistics depend on x):
     * dx = gamma * invStd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)), M = N * H * W.
     */
    public static BatchNormGrads batchNormTrain(Tensor x, Tensor gamma, BatchStats stats, Tensor dy) {
        int batch = x.shape().dim(0), channels = x.shape().dim(1), plane = planeSize(x.shape());
        float[] in = x.data(), g = dy.data(), dx = new float[in.length];
        float[] dGamma = new float[channels], dBeta = new float[channels];
        long count = (long) batch * plane;
        Workers.forEach(channels, c -> {
            // Partial sums in pairs, as batchStats: two independent chains each.
            double dy0 = 0, dy1 = 0, dx0 = 0, dx1 = 0;
            float mean = stats.mean()[c], invStd = stats.invStd()[c];
            for (int n = 0; n < batch; n++) {
                int off = (n * channels + c) * plane, i = 0;
                for (; i + 2 <= plane; i += 2) {
                    dy0 += g[off + i];
                    dx0 += g[off + i] * ((in[off + i] - mean) * invStd);
                    dy1 += g[off + i + 1];
                    dx1 += g[off + i + 1] * ((in[off + i + 1] - mean) * invStd);
                }
                for (; i < plane; i++) {
                    dy0 += g[off + i];
                    dx0 += g[off + i] * ((in[off + i] - mean) * invStd);
                }
            }
            double sumDy = dy0 + dy1, sumDyXhat = dx0 + dx1;
            dGamma[c] = (float) sumDyXhat;
            dBeta[c] = (float) sumDy;
            float scale = gamma.data()[c] * invStd;
            float meanDy = (float) (sumDy / count), meanDyXhat = (float) (sumDyXhat / count);
            for (int n = 0; n < batch; n++) {
                int off = (n * channels + c) * plane;
                for (int i = 0; i < plane; i++) {
                    float xhat = (in[off + i] - mean) * invStd;
                    dx[off + i] = scale * (g[off + i] - meanDy - xhat * meanDyXhat);
                }
            }
        });
        return new BatchNormGrads(new Tensor(x.shape(), dx), new Tensor(Shape.of(channels), dGamma), new Tensor(Shape.of(channels), dBeta));
    }

    /** Inference-mode BatchNorm backward (fixed running statistics): an affine map per channel. */
    public static BatchNormGrads batchNormEval(Tensor x, Tensor gamma, Tensor mean, Tensor var, float eps, Tensor dy) {
        int channels = x.shape().dim(1);
        float[] invStd = new float[channels];
        for (int c = 0; c < channels; c++) invStd[c] = (float) (1 / Math.sqrt((double) var.data()[c] + eps));
        int batch = x.shape().dim(0), plane = planeSize(x.shape());
        float[] dx = new float[x.size()], dGamma = new float[channels], dBeta = new float[channels];
        for (int c = 0; c < channels; c++) {
            double sg = 0, sb = 0;
            for (int n = 0; n < batch; n++) {
                int off = (n * channels + c) * plane;
                for (int i = 0; i < plane; i++) {
                    float d = dy.data()[off + i];
                    sb += d;
                    sg += d * (x.data()[off + i] - mean.data()[c]) * invStd[c];
                    dx[off + i] = d * gamma.data()[c] * invStd[c];
                }
            }
            dGamma[c] = (float) sg;
            dBeta[c] = (float) sb;
        }
        return new BatchNormGrads(new Tensor(x.shape(), dx), new Tensor(Shape.of(channels), dGamma), new Tensor(Shape.of(channels), dBeta));
    }

    /** ReLU passes the gradient where its output is positive (x > 0). */
    public static Tensor relu(Tensor y, Tensor dy) {
        float[] out = y.data(), g = dy.data(), dx = new float[g.length];
        var species = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;
        Workers.forEach(chunksOf(g.length), ch -> {
            int i = ch * ELEMENT_CHUNK, to = Math.min(g.length, (ch + 1) * ELEMENT_CHUNK);
            // Vectorised: a scalar branch on the sign mispredicts on half the activations.
            var zero = jdk.incubator.vector.FloatVector.zero(species);
            for (int end = i + species.loopBound(to - i); i < end; i += species.length()) {
                var y0 = jdk.incubator.vector.FloatVector.fromArray(species, out, i);
                zero.blend(jdk.incubator.vector.FloatVector.fromArray(species, g, i), y0.compare(jdk.incubator.vector.VectorOperators.GT, 0f)).intoArray(dx, i);
            }
            for (; i < to; i++) dx[i] = out[i] > 0f ? g[i] : 0f;
        });
        return new Tensor(dy.shape(), dx);
    }

    /** Clamp passes the gradient inside [min, max] (PyTorch's clamp convention at the bounds). */
    public static Tensor clip(Tensor x, Tensor dy, Op.Clip op) {
        float[] in = x.data(), g = dy.data(), dx = new float[g.length];
        for (int i = 0; i < g.length; i++) dx[i] = in[i] >= op.min() && in[i] <= op.max() ? g[i] : 0f;
        return new Tensor(dy.shape(), dx);
    }

    /** Gradients of a PACT or region quantizer: to its input, and to its clip levels (one per region). */
    public record QuantizerGrads(Tensor input, Tensor clipLevels) {}

    /**
     * PACT quantization's straight-through gradients. To x: 1 where the input lies in the clip range
     * (0 <= x < alpha), 0 where it was clipped (below 0 or at/above alpha). To alpha (Choi et al.): the
     * output is alpha wherever the input is at or above it, so d alpha collects dy there; inside the range
     * rounding is straight-through and alpha gets nothing ({@link Network} adds PACT's L2 term).
     */
    public static QuantizerGrads pactQuantize(Tensor x, Tensor dy, Op.PactQuantize op) {
        float[] in = x.data(), g = dy.data(), dx = new float[g.length];
        float alpha = op.alpha();
        double dAlpha = 0;
        for (int i = 0; i < g.length; i++) {
            if (in[i] >= alpha) dAlpha += g[i];
            else if (in[i] >= 0f) dx[i] = g[i];
        }
        return new QuantizerGrads(new Tensor(dy.shape(), dx), new Tensor(Shape.of(1), new float[] {(float) dAlpha}));
    }

    /**
     * Region quantization's straight-through gradients: per pixel the PACT rules with that pixel's region
     * clip level, region r's level collecting dy where its pixels' inputs are at or above it; pixels the op
     * zeroes (another region under {@code onlyRegion}) pass nothing. The region map is recomputed from the
     * silhouette exactly as the forward found it, once for both gradients. The silhouette itself gets no
     * gradient here: it only selects regions through hard thresholds.
     */
    public static QuantizerGrads regionQuantize(Tensor x, Tensor silhouette, Tensor dy, Op.RegionQuantize op) {
        Shape s = x.shape();
        byte[] region = RegionOps.regionMap(silhouette, s, op);
        float[] in = x.data(), g = dy.data(), dx = new float[g.length];
        float[] alphas = new float[op.alphas().size()];
        for (int r = 0; r < alphas.length; r++) alphas[r] = op.alphas().get(r);
        double[] dAlphas = new double[alphas.length];
        int plane = s.h() * s.w();
        for (int p = 0; p < s.n() * s.c(); p++) {
            int mapOffset = p / s.c() * plane;
            for (int i = 0; i < plane; i++) {
                int r = region[mapOffset + i];
                if (op.onlyRegion() >= 0 && r != op.onlyRegion()) continue;
                float v = in[p * plane + i];
                if (v >= alphas[r]) dAlphas[r] += g[p * plane + i];
                else if (v >= 0f) dx[p * plane + i] = g[p * plane + i];
            }
        }
        float[] clipLevels = new float[alphas.length];
        for (int r = 0; r < alphas.length; r++) clipLevels[r] = (float) dAlphas[r];
        return new QuantizerGrads(new Tensor(dy.shape(), dx), new Tensor(Shape.of(alphas.length), clipLevels));
    }

    /**
     * The silhouette's training signal through a region quantizer (docs/REGION_QUANTIZATION.md, "Fine-tuning").
     * The hard masks pass the silhouette no gradient, so the op gives it the gradient of an auxiliary loss:
     * {@code weight / 2} times the mean over images and silhouette pixels of {@code (s - t)^2}, where {@code t} is
     * the pixel's percentile rank, within its image, of the importance of the activations it decides. A layer
     * pixel's importance is the first-order loss change of moving it from the lowest to the highest region
     * width, {@code sum_c |dy * (Q_high(x) - Q_low(x))|}; the resize's adjoint sums it onto the silhouette
     * pixels that decide it. Only the ranks matter because the masks cut each image at ranks.
     * Ties share their average rank; a one-pixel silhouette aims at 0.5.
     */
    public static Tensor silhouetteImportance(Tensor x, Tensor silhouette, Tensor dy, Op.RegionQuantize op, float weight) {
        Shape s = x.shape(), sil = silhouette.shape();
        int regions = op.policy().regions().size();
        int lowBits = op.policy().bits(0), highBits = op.policy().bits(regions - 1);
        float lowAlpha = op.alphas().getFirst(), highAlpha = op.alphas().getLast();
        int plane = s.h() * s.w();
        float[] in = x.data(), g = dy.data(), importance = new float[s.n() * plane];
        for (int n = 0; n < s.n(); n++) {
            for (int c = 0; c < s.c(); c++) {
                int base = (n * s.c() + c) * plane;
                for (int i = 0; i < plane; i++) {
                    float v = in[base + i];
                    float change = RegionQuantizer.pactValue(v, highAlpha, highBits) - RegionQuantizer.pactValue(v, lowAlpha, lowBits);
                    importance[n * plane + i] += Math.abs(g[base + i] * change);
                }
            }
        }
        Tensor atLayer = new Tensor(Shape.of(s.n(), 1, s.h(), s.w()), importance);
        boolean sameSize = sil.h() == s.h() && sil.w() == s.w();
        float[] atSilhouette = sameSize ? importance : interpolate(sil, atLayer, new Op.Interpolate(op.resize(), s.h(), s.w())).data();
        int pixels = sil.h() * sil.w();
        float[] values = silhouette.data(), ds = new float[values.length];
        NaturalRanking ranking = new NaturalRanking(NaNStrategy.FAILED, TiesStrategy.AVERAGE);
        float scale = weight / ((float) sil.n() * pixels);
        for (int n = 0; n < sil.n(); n++) {
            double[] image = new double[pixels];
            for (int i = 0; i < pixels; i++) image[i] = atSilhouette[n * pixels + i];
            double[] ranks = ranking.rank(image);
            for (int i = 0; i < pixels; i++) {
                float target = pixels == 1 ? 0.5f : (float) ((ranks[i] - 1) / (pixels - 1));
                ds[n * pixels + i] = scale * (values[n * pixels + i] - target);
            }
        }
        return new Tensor(sil, ds);
    }

    /** d sigmoid = y (1 - y), from the output. */
    public static Tensor sigmoid(Tensor y, Tensor dy) {
        float[] out = y.data(), g = dy.data(), dx = new float[g.length];
        for (int i = 0; i < g.length; i++) dx[i] = g[i] * out[i] * (1 - out[i]);
        return new Tensor(dy.shape(), dx);
    }

    /** Gradients of {@link dev.silhouette.graph.Op.LogitBlend}: main, aux and the gate scalar. */
    public record BlendGrads(Tensor main, Tensor aux, Tensor gate) {}

    /** dmain = g dy, daux = (1 - g) dy, dw = g (1 - g) sum dy (main - aux), with g = sigmoid(w). */
    public static BlendGrads logitBlend(Tensor main, Tensor aux, Tensor gate, Tensor dy) {
        double g = 1.0 / (1.0 + Math.exp(-gate.data()[0]));
        float[] m = main.data(), a = aux.data(), d = dy.data(), dm = new float[d.length], da = new float[d.length];
        double dw = 0;
        for (int i = 0; i < d.length; i++) {
            dm[i] = (float) (g * d[i]);
            da[i] = (float) ((1 - g) * d[i]);
            dw += (double) d[i] * (m[i] - a[i]);
        }
        return new BlendGrads(new Tensor(main.shape(), dm), new Tensor(aux.shape(), da),
                new Tensor(gate.shape(), new float[] {(float) (dw * g * (1 - g))}));
    }

    /** Softmax over axis 1: dx = y * (dy - sum_c dy * y), per position. */
    public static Tensor softmax(Tensor y, Tensor dy) {
        Shape s = y.shape();
        int classes = s.dim(1), inner = s.size() / (s.dim(0) * classes);
        float[] out = y.data(), g = dy.data(), dx = new float[g.length];
        for (int n = 0; n < s.dim(0); n++)
            for (int i = 0; i < inner; i++) {
                int base = n * classes * inner + i;
                double dot = 0;
                for (int c = 0; c < classes; c++) dot += (double) g[base + c * inner] * out[base + c * inner];
                for (int c = 0; c < classes; c++) dx[base + c * inner] = (float) (out[base + c * inner] * (g[base + c * inner] - dot));
            }
        return new Tensor(s, dx);
    }

    /** Max pooling routes each output's gradient to the first input that attained the maximum. */
    public static Tensor maxPool(Tensor x, Tensor dy, Op.MaxPool op) {
        Shape s = x.shape();
        Window win = op.window();
        int oh = win.outH(s.h()), ow = win.outW(s.w());
        float[] in = x.data(), g = dy.data(), dx = new float[in.length];
        Workers.forEach(s.n() * s.c(), p -> {
            int src = p * s.h() * s.w(), dst = p * oh * ow;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float best = Float.NEGATIVE_INFINITY;
                    int arg = -1;
                    for (int ky = 0; ky < win.kernelH(); ky++) {
                        int iy = win.inputY(oy, ky);
                        if (iy < 0 || iy >= s.h()) continue;
                        for (int kx = 0; kx < win.kernelW(); kx++) {
                            int ix = win.inputX(ox, kx);
                            if (ix < 0 || ix >= s.w()) continue;
                            float v = in[src + iy * s.w() + ix];
                            if (arg < 0 || v > best) {
                                best = v;
                                arg = src + iy * s.w() + ix;
                            }
                        }
                    }
                    if (arg >= 0) dx[arg] += g[dst + oy * ow + ox];
                }
        });
        return new Tensor(s, dx);
    }

    /** Average pooling spreads each output's gradient evenly over its divisor's taps. */
    public static Tensor avgPool(Tensor x, Tensor dy, Op.AvgPool op) {
        Shape s = x.shape();
        Window win = op.window();
        int oh = win.outH(s.h()), ow = win.outW(s.w());
        float[] g = dy.data(), dx = new float[x.size()];
        Workers.forEach(s.n() * s.c(), p -> {
            int src = p * s.h() * s.w(), dst = p * oh * ow;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    int taps = 0;
                    for (int ky = 0; ky < win.kernelH(); ky++) {
                        int iy = win.inputY(oy, ky);
                        for (int kx = 0; kx < win.kernelW(); kx++) {
                            int ix = win.inputX(ox, kx);
                            if (iy >= 0 && iy < s.h() && ix >= 0 && ix < s.w()) taps++;
                        }
                    }
                    float share = g[dst + oy * ow + ox] / (op.countIncludePad() ? win.taps() : taps);
                    for (int ky = 0; ky < win.kernelH(); ky++) {
                        int iy = win.inputY(oy, ky);
                        if (iy < 0 || iy >= s.h()) continue;
                        for (int kx = 0; kx < win.kernelW(); kx++) {
                            int ix = win.inputX(ox, kx);
                            if (ix >= 0 && ix < s.w()) dx[src + iy * s.w() + ix] += share;
                        }
                    }
                }
        });
        return new Tensor(s, dx);
    }

    /** Global average pooling: every pixel of a plane gets the plane's gradient / (H * W). */
    public static Tensor globalAvgPool(Shape inShape, Tensor dy) {
        int plane = inShape.h() * inShape.w();
        float[] g = dy.data(), dx = new float[inShape.size()];
        for (int p = 0; p < g.length; p++) Arrays.fill(dx, p * plane, (p + 1) * plane, g[p] / plane);
        return new Tensor(inShape, dx);
    }

    public record LinearGrads(Tensor input, Tensor weight, Tensor bias) {}

    /** y = x W^T + b: dx = dy W, dW = dy^T x, db = column sums of dy. */
    public static LinearGrads linear(Tensor x, Tensor weight, Tensor dy, Op.Linear op, boolean needInput) {
        int batch = x.shape().dim(0), in = op.inFeatures(), out = op.outFeatures();
        float[] dyT = new float[out * batch];
        for (int n = 0; n < batch; n++)
            for (int o = 0; o < out; o++) dyT[o * batch + n] = dy.data()[n * out + o];
        float[] dw = new float[out * in];
        Gemm.multiply(out, in, batch, dyT, 0, batch, x.data(), 0, in, dw, 0, in);
        Tensor dx = null;
        if (needInput) {
            float[] d = new float[batch * in];
            Gemm.multiply(batch, in, out, dy.data(), 0, out, weight.data(), 0, in, d, 0, in);
            dx = new Tensor(x.shape(), d);
        }
        Tensor db = null;
        if (op.bias()) {
            float[] b = new float[out];
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int n = 0; n < batch; n++) s += dyT[o * batch + n];
                b[o] = (float) s;
            }
            db = new Tensor(Shape.of(out), b);
        }
        return new LinearGrads(dx, new Tensor(weight.shape(), dw), db);
    }

    /** The adjoint of {@code CpuOps.interpolate}: each output's gradient goes back to the taps it read, with their weights. */
    public static Tensor interpolate(Shape inShape, Tensor dy, Op.Interpolate op) {
        Shape s = inShape;
        int oh = op.outH(), ow = op.outW();
        float[] g = dy.data(), dx = new float[s.size()];
        double sy = (double) s.h() / oh, sx = (double) s.w() / ow;
        Workers.forEach(s.n() * s.c(), p -> {
            int src = p * s.h() * s.w(), dst = p * oh * ow;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float d = g[dst + oy * ow + ox];
                    if (op.mode() == Op.Interpolate.Mode.NEAREST) {
                        int iy = Math.min((int) Math.floor(oy * sy), s.h() - 1);
                        int ix = Math.min((int) Math.floor(ox * sx), s.w() - 1);
                        dx[src + iy * s.w() + ix] += d;
                    } else {
                        double fy = Math.max(0, (oy + 0.5) * sy - 0.5), fx = Math.max(0, (ox + 0.5) * sx - 0.5);
                        int y0 = Math.min((int) fy, s.h() - 1), x0 = Math.min((int) fx, s.w() - 1);
                        int y1 = Math.min(y0 + 1, s.h() - 1), x1 = Math.min(x0 + 1, s.w() - 1);
                        double ly = fy - y0, lx = fx - x0;
                        dx[src + y0 * s.w() + x0] += (float) (d * (1 - ly) * (1 - lx));
                        dx[src + y0 * s.w() + x1] += (float) (d * (1 - ly) * lx);
                        dx[src + y1 * s.w() + x0] += (float) (d * ly * (1 - lx));
                        dx[src + y1 * s.w() + x1] += (float) (d * ly * lx);
                    }
                }
        });
        return new Tensor(s, dx);
    }

    /** Concat backward: the output gradient cut back into the inputs' slices along the axis. */
    public static List<Tensor> concat(List<Shape> inShapes, Tensor dy, Op.Concat op) {
        Shape outShape = dy.shape();
        int axis = op.axis();
        int outer = 1;
        for (int d = 0; d < axis; d++) outer *= outShape.dim(d);
        int inner = outShape.size() / outer / outShape.dim(axis);
        int rowLength = outShape.dim(axis) * inner;
        List<Tensor> grads = new ArrayList<>();
        int offset = 0;
        for (Shape s : inShapes) {
            int chunk = s.dim(axis) * inner;
            float[] d = new float[s.size()];
            for (int o = 0; o < outer; o++) System.arraycopy(dy.data(), o * rowLength + offset, d, o * chunk, chunk);
            grads.add(new Tensor(s, d));
            offset += chunk;
        }
        return grads;
    }

    /** Adds b into a, in place. */
    static void accumulate(float[] a, float[] b) {
        for (int i = 0; i < a.length; i++) a[i] += b[i];
    }

    /** Sum of per-chunk partials, in chunk order (deterministic). */
    private static float[] sum(float[][] parts) {
        float[] total = parts[0].clone();
        for (int i = 1; i < parts.length; i++) accumulate(total, parts[i]);
        return total;
    }

    private static int planeSize(Shape s) {
        return s.rank() > 2 ? s.size() / (s.dim(0) * s.dim(1)) : 1;
    }

    private static final int ELEMENT_CHUNK = 1 << 15;

    private static int chunksOf(int length) {
        return Math.max(1, (length + ELEMENT_CHUNK - 1) / ELEMENT_CHUNK);
    }
}
