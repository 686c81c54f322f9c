package dev.silhouette.graph;

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

    public int outH(int inH) {
        return Math.floorDiv(inH + 2 * padH - dilationH * (kernelH - 1) - 1, strideH) + 1;
    }

    public int outW(int inW) {
        return Math.floorDiv(inW + 2 * padW - dilationW * (kernelW - 1) - 1, strideW) + 1;
    }

    @Override
    public String toString() {
        String s = kernelH + "x" + kernelW + "/s" + strideH + (strideW != strideH ? "x" + strideW : "")
                + "/p" + padH + (padW != padH ? "x" + padW : "");
        return dilationH == 1 && dilationW == 1 ? s : s + "/d" + dilationH + (dilationW != dilationH ? "x" + dilationW : "");
    }
}
