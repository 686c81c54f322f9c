package dev.silhouette.quant;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Per-channel bit widths under an average-bit budget, in the closed form of Banner et al. (2019):
 * channel i gets M_i = c + log2(alpha_i^(2/3)), wide channels more bits. Their derivation minimises the
 * rounding noise sum_i alpha_i^2 / 4^(M_i) under a quota on the total number of bins sum_i 2^(M_i); here
 * the quota is the number of bits sum_i M_i = N * average (what memory and bit operations pay for), and c
 * is chosen so that it holds. Widths are clamped to 1..8 (c found by bisection so the clamped real
 * widths still sum to the budget), then made integers by largest remainders, so the budget holds
 * exactly.
 */
public final class BitAllocation {
    private BitAllocation() {}

    public static int[] allocate(double[] alphas, double averageBits) {
        int n = alphas.length;
        if (n == 0) throw new IllegalArgumentException("bit allocation needs at least one channel");
        if (!(averageBits >= BitWidths.MIN)) {
            throw new IllegalArgumentException("average bit budget " + averageBits + " is below the minimum of " + BitWidths.MIN + " bit per channel");
        }
        if (averageBits > BitWidths.MAX) {
            throw new IllegalArgumentException("average bit budget " + averageBits + " is above the maximum of " + BitWidths.MAX + " bits per channel");
        }
        double exactTotal = averageBits * n;
        long total = Math.round(exactTotal);
        if (Math.abs(exactTotal - total) > 1e-9) {
            throw new IllegalArgumentException("average bit budget " + averageBits + " over " + n + " channels is " + exactTotal + " bits, not a whole number");
        }
        double[] logs = new double[n];
        for (int i = 0; i < n; i++) {
            if (!(alphas[i] >= 0) || Double.isInfinite(alphas[i])) throw new IllegalArgumentException("clipping range " + alphas[i] + " of channel " + i + " must be finite and >= 0");
            // A zero range (dead channel) is the narrowest possible: it gets the minimum unless the budget forces more.
            logs[i] = 2.0 / 3.0 * Math.log(Math.max(alphas[i], 1e-30)) / Math.log(2);
        }
        double lo = -200, hi = 200;
        for (int iter = 0; iter < 200; iter++) {
            double c = (lo + hi) / 2;
            if (clampedSum(logs, c) < total) lo = c;
            else hi = c;
        }
        double c = (lo + hi) / 2;
        int[] bits = new int[n];
        long assigned = 0;
        double[] remainder = new double[n];
        for (int i = 0; i < n; i++) {
            double r = clamp(c + logs[i]);
            bits[i] = (int) Math.floor(r);
            remainder[i] = r - bits[i];
            assigned += bits[i];
        }
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < n; i++) order.add(i);
        order.sort(Comparator.comparingDouble((Integer i) -> -remainder[i]).thenComparingInt(i -> i));
        for (int k = 0; assigned < total; k = (k + 1) % n) {
            int i = order.get(k);
            if (bits[i] < BitWidths.MAX) {
                bits[i]++;
                assigned++;
            }
        }
        for (int k = n - 1; assigned > total; k = (k - 1 + n) % n) {
            int i = order.get(k);
            if (bits[i] > BitWidths.MIN) {
                bits[i]--;
                assigned--;
            }
        }
        return bits;
    }

    private static double clampedSum(double[] logs, double c) {
        double s = 0;
        for (double l : logs) s += clamp(c + l);
        return s;
    }

    private static double clamp(double bits) {
        return Math.max(BitWidths.MIN, Math.min(BitWidths.MAX, bits));
    }
}
