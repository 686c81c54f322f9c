package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

/**
 * Per-image region cuts of a silhouette: the CPU specification that the CUDA kernels
 * ({@code cuda/silhouette_threshold.cu}, {@code cuda/region_masks.cu}) match bit for bit.
 *
 * <p>Every pixel of an image gets a distinct rank: pixels are ordered by silhouette value in the float
 * total order (-0.0 before +0.0), and equal values by pixel index (row-major), so the order is a
 * stable sort. A policy with integer shares s_1..s_R (total T, cumulative sums S_j) splits an image of
 * n pixels at the cut ranks {@code c_j = ceil(n S_j / T)} (j = 1..R-1, exact integer arithmetic):
 * region j holds the ranks [c_j, c_(j+1)), with c_0 = 0 and c_R = n. Rounding up puts the fractional
 * pixel in the lower region, so with widths that never decrease an image never averages more bits
 * than the policy; it falls short by less than one pixel's width difference per cut.
 *
 * <p>The original research code thresholds at linear-interpolated quantiles and sends a pixel equal
 * to a threshold up. On distinct values that is within one pixel of the cuts here, but on ties it lets
 * a whole plateau (a flat background) change region, overspending the budget; the ranks here keep it.
 *
 * <p>The ranks are found by selection, not by sorting: the key of pixel i with value v is
 * {@code orderKey(v) << 32 | i} (unsigned, {@link #pixelKey}), and each cut is the key at rank c_j
 * ({@link #ABOVE_ALL} for c_j = n). A pixel is in region j when its key is at least cut j and below
 * cut j+1. NaN silhouettes are outside the contract (a sigmoid never produces them).
 */
public final class SilhouetteThresholds {
    /** Region indices are stored in a byte, as by the kernel. */
    public static final int MAX_REGIONS = 256;
    /** The cut key at rank n (an empty region above it): above every pixel key, which has an index below 2^31. */
    public static final long ABOVE_ALL = -1L;

    private SilhouetteThresholds() {}

    /**
     * Checks region shares: 1 to {@link #MAX_REGIONS} positive integers (percent or any unit) whose sum
     * fits an int, so every {@code n S_j} of {@link #cutRanks} is exact in 64 bits.
     *
     * @return their sum
     */
    public static long validateShares(int[] shares) {
        if (shares.length < 1 || shares.length > MAX_REGIONS) {
            throw new IllegalArgumentException("a policy has 1 to " + MAX_REGIONS + " regions, got " + shares.length);
        }
        long total = 0;
        for (int share : shares) {
            if (share <= 0) throw new IllegalArgumentException("region share " + share + " is not positive");
            total += share;
        }
        if (total > Integer.MAX_VALUE) throw new IllegalArgumentException("region shares sum to " + total + ", more than 2^31 - 1");
        return total;
    }

    /** The cut ranks {@code ceil(n S_j / T)} of an image of {@code pixels} pixels: shares.length - 1 of them, ascending. */
    public static int[] cutRanks(int[] shares, int pixels) {
        long total = validateShares(shares);
        if (pixels < 0) throw new IllegalArgumentException("an image has " + pixels + " pixels");
        int[] ranks = new int[shares.length - 1];
        long sum = 0;
        for (int j = 0; j < ranks.length; j++) {
            sum += shares[j];
            ranks[j] = (int) (((long) pixels * sum + total - 1) / total);
        }
        return ranks;
    }

    /**
     * Checks a B x 1 x H x W silhouette with at least one pixel against the shares; the CUDA path checks
     * its arguments with this too.
     *
     * @return the pixels of one image
     */
    public static int validate(Shape silhouette, int[] shares) {
        if (silhouette.rank() != 4 || silhouette.c() != 1) {
            throw new IllegalArgumentException("a silhouette is B x 1 x H x W, got " + silhouette);
        }
        validateShares(shares);
        int pixels = silhouette.h() * silhouette.w();
        if (pixels < 1) throw new IllegalArgumentException("silhouette " + silhouette + " has no pixels");
        return pixels;
    }

    /** @return B x (shares.length - 1) cut keys (unsigned, as the kernel writes them), row-major: image b's j-th cut at b * count + j */
    public static long[] cutKeys(Tensor silhouette, int[] shares) {
        Shape s = silhouette.shape();
        int pixels = validate(s, shares);
        int[] ranks = cutRanks(shares, pixels);
        int count = ranks.length;
        float[] data = silhouette.data();
        long[] out = new long[s.n() * count];
        long[] keys = new long[pixels];
        for (int b = 0; b < s.n(); b++) {
            // Selection runs on signed keys (the unsigned key with its top bit flipped), which order alike.
            for (int i = 0; i < pixels; i++) keys[i] = pixelKey(data[b * pixels + i], i) ^ Long.MIN_VALUE;
            for (int j = 0; j < count; j++) {
                out[b * count + j] = ranks[j] == pixels ? ABOVE_ALL : select(keys, ranks[j]) ^ Long.MIN_VALUE;
            }
        }
        return out;
    }

    /**
     * Region index of every pixel, B x H x W row-major: the number of its image's cuts at or below its
     * key, so region j holds the ranks [c_j, c_(j+1)).
     *
     * @param cutKeys B x (regions - 1) keys from {@link #cutKeys}
     * @param regions regions of the policy (cuts per image + 1)
     */
    public static byte[] regionMap(Tensor silhouette, long[] cutKeys, int regions) {
        Shape s = silhouette.shape();
        if (s.rank() != 4 || s.c() != 1) throw new IllegalArgumentException("a silhouette is B x 1 x H x W, got " + s);
        if (regions < 1 || regions > MAX_REGIONS) throw new IllegalArgumentException("a policy has 1 to " + MAX_REGIONS + " regions, got " + regions);
        int count = regions - 1;
        if (cutKeys.length != s.n() * count) {
            throw new IllegalArgumentException(s.n() + " images of " + regions + " regions need " + s.n() * count
                    + " cut keys, got " + cutKeys.length);
        }
        int pixels = s.h() * s.w();
        float[] data = silhouette.data();
        byte[] region = new byte[data.length];
        for (int i = 0; i < region.length; i++) {
            long key = pixelKey(data[i], i % pixels);
            int row = i / pixels * count;
            int r = 0;
            for (int j = 0; j < count; j++) if (Long.compareUnsigned(key, cutKeys[row + j]) >= 0) r++;
            region[i] = (byte) r;
        }
        return region;
    }

    /** The unsigned 64-bit rank key of pixel {@code index} (row-major within its image) with silhouette {@code value}. */
    public static long pixelKey(float value, int index) {
        return (long) (orderKey(value) ^ 0x80000000) << 32 | index;
    }

    /** The silhouette value of a cut (the value of the first pixel of the region above it); NaN for {@link #ABOVE_ALL}. */
    public static float cutValue(long cutKey) {
        return cutKey == ABOVE_ALL ? Float.NaN : keyValue((int) (cutKey >>> 32) ^ 0x80000000);
    }

    /**
     * Signed-int key whose order is the float total order: the unsigned key of the kernels
     * (positives with the sign bit set, negatives inverted) shifted by 2^31 into signed range.
     */
    static int orderKey(float f) {
        int bits = Float.floatToRawIntBits(f);
        int unsigned = bits < 0 ? ~bits : bits | 0x80000000;
        return unsigned ^ 0x80000000;
    }

    static float keyValue(int key) {
        int unsigned = key ^ 0x80000000;
        return Float.intBitsToFloat(unsigned < 0 ? unsigned & 0x7fffffff : ~unsigned);
    }

    /**
     * The rank-k key, by quickselect with a median-of-three pivot. Permutes {@code keys} but keeps the
     * multiset, so later calls on the same array stay valid. Keys are distinct (they carry the pixel
     * index), so the partition always shrinks.
     */
    static long select(long[] keys, int k) {
        int lo = 0, hi = keys.length - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (keys[mid] < keys[lo]) swap(keys, mid, lo);
            if (keys[hi] < keys[lo]) swap(keys, hi, lo);
            if (keys[hi] < keys[mid]) swap(keys, hi, mid);
            long pivot = keys[mid];
            int i = lo, j = hi;
            while (i <= j) {
                while (keys[i] < pivot) i++;
                while (keys[j] > pivot) j--;
                if (i <= j) swap(keys, i++, j--);
            }
            if (k <= j) hi = j;
            else if (k >= i) lo = i;
            else return keys[k];
        }
        return keys[k];
    }

    private static void swap(long[] a, int i, int j) {
        long t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
