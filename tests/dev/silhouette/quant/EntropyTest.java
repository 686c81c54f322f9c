package dev.silhouette.quant;

import org.testng.annotations.Test;

import java.util.Random;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

public class EntropyTest {

    @Test
    public void dyadicDistributionsAreCodedAtTheirEntropy() {
        // p = 1/2, 1/4, 1/8, 1/8: H = 1.75 bits and the Huffman code (1, 2, 3, 3 bits) reaches it.
        int[] codes = new int[800];
        for (int i = 0; i < 800; i++) codes[i] = i < 400 ? 0 : i < 600 ? 5 : i < 700 ? -3 : 7;
        Entropy.Report r = Entropy.of(codes);
        assertEquals(r.distinctCodes(), 4);
        assertEquals(r.entropyBits(), 1.75, 1e-12);
        assertEquals(r.huffmanBits(), 1.75, 1e-12);
    }

    @Test
    public void uniformCodesNeedAllTheirBitsAndOneSymbolNeedsOne() {
        int[] codes = new int[16 * 10];
        for (int i = 0; i < codes.length; i++) codes[i] = i % 16;
        Entropy.Report r = Entropy.of(codes);
        assertEquals(r.entropyBits(), 4, 1e-12);
        assertEquals(r.huffmanBits(), 4, 1e-12);
        Entropy.Report one = Entropy.of(new int[] {3, 3, 3});
        assertEquals(one.entropyBits(), 0, 0);
        assertEquals(one.huffmanBits(), 1, 0);
    }

    @Test
    public void huffmanIsWithinOneBitOfEntropyAndMatchesAKnownCode() {
        // Counts 1, 1, 2, 3, 5 -> code lengths 4, 4, 3, 2, 1 (sum of merged weights 2 + 4 + 7 + 12 = 25).
        assertEquals(Entropy.huffmanAverageLength(new long[] {1, 1, 2, 3, 5}), 25.0 / 12, 1e-12);
        Random rnd = new Random(3);
        for (int trial = 0; trial < 50; trial++) {
            int[] codes = new int[500];
            for (int i = 0; i < codes.length; i++) codes[i] = (int) Math.round(rnd.nextGaussian() * (1 + trial % 6));
            Entropy.Report r = Entropy.of(codes);
            assertTrue(r.huffmanBits() >= r.entropyBits() - 1e-12 && r.huffmanBits() < r.entropyBits() + 1, r.toString());
        }
    }
}
