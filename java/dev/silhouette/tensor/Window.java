package dev.silhouette.tensor;

/**
 * The sliding window of a convolution or pooling op: kernel size, stride, padding (same on both sides)
 * and dilation, per spatial axis.
 */
public record Window(int kernelH, int kernelW, int strideH, int strideW, int padH, int padW,
                     int dilationH, int dilationW) {

    public Window {
        if (kernelH < 1 || kernelW < 1) throw new IllegalArgumentException("kernel " + kernelH + "x" + kernelW + " must be at least 1x1");
        if (strideH < 1 || strideW < 1) throw new IllegalArgumentException("stride " + strideH + "x" + strideW + " must be at least 1");
        if (padH < 0 || padW < 0) throw new IllegalArgumentException("padding " + padH + "x" + padW + " must not be negative");
        if (dilationH < 1 || dilationW < 1) throw new IllegalArgumentException("dilation " + dilationH + "x" + dilationW + " must be at least 1");
    }

    /** A square window: k x k kernel, stride s, padding p, no dilation. */
    public static Window square(int k, int s, int p) {
        return new Window(k, k, s, s, p, p, 1, 1);
    }

    /**
     * Output length along one axis: floor((in + 2 pad - dilation (kernel - 1) - 1) / stride) + 1, below 1
     * when the window does not fit. Floor, not truncation, so a window too large by less than a stride is
     * not taken for one output.
     */
    public static int outputSize(int in, int kernel, int stride, int pad, int dilation) {
        return Math.floorDiv(in + 2 * pad - dilation * (kernel - 1) - 1, stride) + 1;
    }

    public int outH(int inH) {
        return outputSize(inH, kernelH, strideH, padH, dilationH);
    }

    public int outW(int inW) {
        return outputSize(inW, kernelW, strideW, padW, dilationW);
    }

    /** The input row kernel row {@code ky} reads for output row {@code oy}; outside 0 to H - 1 it is padding. */
    public int inputY(int oy, int ky) {
        return oy * strideH - padH + ky * dilationH;
    }

    /** The input column kernel column {@code kx} reads for output column {@code ox}; outside 0 to W - 1 it is padding. */
    public int inputX(int ox, int kx) {
        return ox * strideW - padW + kx * dilationW;
    }

    /** Kernel positions: kernelH x kernelW. */
    public int taps() {
        return kernelH * kernelW;
    }

    @Override
    public String toString() {
        String s = kernelH + "x" + kernelW + "/s" + strideH + (strideW != strideH ? "x" + strideW : "")
                + "/p" + padH + (padW != padH ? "x" + padW : "");
        return dilationH == 1 && dilationW == 1 ? s : s + "/d" + dilationH + (dilationW != dilationH ? "x" + dilationW : "");
    }
}
