package dev.silhouette.quant;

import java.util.PriorityQueue;
import java.util.TreeMap;

/**
 * How compressible quantized codes are: the Shannon entropy of their empirical distribution (the bound
 * no lossless code beats) and the average length of an actual Huffman code built from the same counts
 * (what one would really store; H <= L < H + 1).
 */
public final class Entropy {
    private Entropy() {}

    public record Report(long count, int distinctCodes, double entropyBits, double huffmanBits) {}

    public static Report of(int[] codes) {
        if (codes.length == 0) throw new IllegalArgumentException("entropy of an empty set of codes is undefined");
        TreeMap<Integer, Long> counts = new TreeMap<>();
        for (int c : codes) counts.merge(c, 1L, Long::sum);
        return ofCounts(counts.values().stream().mapToLong(Long::longValue).toArray());
    }

    /** Entropy and Huffman length from a histogram of codes (counts of each code, zeros allowed). */
    public static Report ofCounts(long[] counts) {
        long n = 0;
        int distinct = 0;
        double entropy = 0;
        for (long k : counts) {
            n += k;
            if (k > 0) distinct++;
        }
        if (n == 0) throw new IllegalArgumentException("entropy of an empty set of codes is undefined");
        for (long k : counts) if (k > 0) entropy -= (double) k / n * (Math.log((double) k / n) / Math.log(2));
        return new Report(n, distinct, Math.max(0, entropy), huffmanAverageLength(counts));
    }

    /**
     * Average code length of a Huffman code for these symbol counts. Merging the two lightest subtrees
     * adds one bit to every symbol below them, so the total length is the sum of all merged weights. A
     * single symbol still needs one bit.
     */
    public static double huffmanAverageLength(long[] counts) {
        PriorityQueue<Long> heap = new PriorityQueue<>();
        long total = 0;
        for (long c : counts) {
            if (c < 0) throw new IllegalArgumentException("negative count " + c);
            if (c > 0) heap.add(c);
            total += c;
        }
        if (heap.isEmpty()) throw new IllegalArgumentException("no symbol has a count");
        if (heap.size() == 1) return 1;
        long bits = 0;
        while (heap.size() > 1) {
            long merged = heap.poll() + heap.poll();
            bits += merged;
            heap.add(merged);
        }
        return (double) bits / total;
    }
}
