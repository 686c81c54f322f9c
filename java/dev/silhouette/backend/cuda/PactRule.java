package dev.silhouette.backend.cuda;

/**
 * The two PACT code rules of the CPU specification, as the kernels' {@code rule} argument
 * (lowbit_common.cuh). With L = 2^b - 1:
 * <ul>
 *   <li>{@link #QUANTIZER}: {@code dev.silhouette.quant.Quantizers.pact} (docs/QUANTIZATION.md section 2),
 *       code = clamp(rint(x / (alpha / L)), 0, L), round half to even, NaN to 0;</li>
 *   <li>{@link #REGION}: region quantization's per-pixel PACT (docs/REGION_QUANTIZATION.md section 4),
 *       code = round half up of min(max(x, 0), alpha) * L / alpha evaluated left to right, NaN as 0.</li>
 * </ul>
 * They differ on exact halves and by the order of rounding, so a kernel must be told which it matches.
 */
public enum PactRule {
    QUANTIZER(0),
    REGION(1);

    private final int id;

    PactRule(int id) {
        this.id = id;
    }

    /** The value of the kernels' {@code rule} argument (lowbit::PACT_QUANTIZER, lowbit::PACT_REGION). */
    public int id() {
        return id;
    }
}
