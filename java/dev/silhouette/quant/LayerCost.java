package dev.silhouette.quant;

import dev.silhouette.tensor.Window;

/**
 * Running cost totals of one convolution over the images it processed, for the accounting of the
 * main job (docs/REGION_QUANTIZATION.md, "Accounting"). Every multiply-accumulate is charged at the
 * width of the activation it reads and of the weight it multiplies: bit operations are
 * sum over MACs of (activation bits x weight bits). Taps that fall in the zero padding read nothing and
 * cost nothing, so a layer's MAC count here is out channels x (in-bounds taps), a little below the
 * padded count of {@code GraphStats}. Packed activation storage is the input's codes at their widths
 * plus the region mask (bits given by the caller), rounded up to whole bytes per image.
 */
public final class LayerCost {
    private final String name;
    private final int channels, plane, outChannels;
    private final int[] taps;
    private final long tapsPerImage;
    private double activationBitTaps, activationBitValues, bitOps, packedBytes;
    private long images;

    /**
     * @param taps for each input pixel (row-major H x W), how many (output position, kernel tap) pairs
     *             of one output channel read it; see {@link #tapCounts(int, int, Window)}
     */
    public LayerCost(String name, int channels, int outChannels, int[] taps) {
        if (channels < 1 || outChannels < 1 || taps.length < 1) throw new IllegalArgumentException("layer " + name + " has no channels or pixels");
        this.name = name;
        this.channels = channels;
        this.outChannels = outChannels;
        this.plane = taps.length;
        this.taps = taps.clone();
        long t = 0;
        for (int v : taps) t += v;
        this.tapsPerImage = t * channels;
    }

    /** {@link #tapCounts(int, int, Window)} with the window's fields one by one, as cli/MainJob passes them. */
    public static int[] tapCounts(int h, int w, int kernelH, int kernelW, int strideH, int strideW, int padH, int padW, int dilationH, int dilationW) {
        return tapCounts(h, w, new Window(kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW));
    }

    /**
     * How often each input pixel of an {@code h x w} plane is read by a convolution window, per output
     * channel: the number of output positions and kernel taps that land on it.
     */
    public static int[] tapCounts(int h, int w, Window win) {
        int oh = win.outH(h), ow = win.outW(w);
        int[] counts = new int[h * w];
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int ky = 0; ky < win.kernelH(); ky++)
                    for (int kx = 0; kx < win.kernelW(); kx++) {
                        int iy = win.inputY(oy, ky), ix = win.inputX(ox, kx);
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w) counts[iy * w + ix]++;
                    }
        return counts;
    }

    /** Every activation at one width, every weight at one width (32 and 32 for FP32), {@code count} images. */
    public void addUniform(int activationBits, int weightBits, long count) {
        activationBitTaps += (double) tapsPerImage * activationBits * count;
        activationBitValues += (double) channels * plane * activationBits * count;
        bitOps += (double) tapsPerImage * outChannels * activationBits * weightBits * count;
        packedBytes += Math.ceil((double) channels * plane * activationBits / 8) * count;
        images += count;
    }

    /**
     * One image whose activations take widths by region: element (c, p) is in region
     * {@code regions[offset + (perChannel ? c * plane + p : p)]}, which has {@code activationBits[r]}
     * and, for its MACs, weights of {@code weightBits[r]}; {@code maskBits} is the size of the stored mask.
     */
    public void addImage(byte[] regions, int offset, boolean perChannel, int[] activationBits, int[] weightBits, long maskBits) {
        double act = 0, ops = 0, stored = 0;
        for (int c = 0; c < (perChannel ? channels : 1); c++) {
            int base = offset + c * plane;
            for (int p = 0; p < plane; p++) {
                int r = regions[base + p];
                act += (double) taps[p] * activationBits[r];
                ops += (double) taps[p] * activationBits[r] * weightBits[r];
                stored += activationBits[r];
            }
        }
        int repeat = perChannel ? 1 : channels;
        activationBitTaps += act * repeat;
        activationBitValues += stored * repeat;
        bitOps += ops * repeat * outChannels;
        packedBytes += Math.ceil((stored * repeat + maskBits) / 8);
        images++;
    }

    public String name() {
        return name;
    }

    public long images() {
        return images;
    }

    /** MACs per image over in-bounds taps. */
    public long macsPerImage() {
        return tapsPerImage * outChannels;
    }

    /**
     * Activation bits averaged over the input's values (channels x pixels), each counted once: what a
     * region policy's shares fix, and what the packed layout stores.
     */
    public double averageActivationBits() {
        return images == 0 ? 0 : activationBitValues / ((double) valuesPerImage() * images);
    }

    /**
     * Activation bits averaged over the MACs (each MAC weighted by the activation it reads). Differs from
     * {@link #averageActivationBits} where the window reads pixels unequally: padding borders are read
     * less, and a stride-2 3x3 window reads odd rows and columns twice as often as even ones.
     */
    public double activationBitsPerMac() {
        return images == 0 ? 0 : activationBitTaps / ((double) tapsPerImage * images);
    }

    public double bitOpsPerImage() {
        return images == 0 ? 0 : bitOps / images;
    }

    public double packedBytesPerImage() {
        return images == 0 ? 0 : packedBytes / images;
    }

    /** The totals, for sums over layers. */
    public double activationBitTaps() {
        return activationBitTaps;
    }

    public double activationBitValues() {
        return activationBitValues;
    }

    public long valuesPerImage() {
        return (long) channels * plane;
    }

    public long tapsPerImage() {
        return tapsPerImage;
    }
}
