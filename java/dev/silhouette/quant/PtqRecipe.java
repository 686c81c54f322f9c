package dev.silhouette.quant;

/**
 * A post-training quantization recipe. Weights of every Conv2d and Linear are quantized signed
 * symmetric (per tensor or per output channel), clipped at max |w| or at the ACIQ clip of
 * {@code weightAciq}; the value each of them reads is quantized unsigned affine over its calibrated
 * range ([min, max], or the ACIQ range of {@code activationAciq}). Null priors mean min/max clipping.
 * Banner et al. clip activations analytically and treat weights with per-channel scales and bias
 * correction; on the bundled model ACIQ clipping of weights loses accuracy (docs/QUANTIZATION.md). {@code firstLastBits} (0: no exception) keeps the first layer and the last one (weights
 * and input) at that width, as is usual in PTQ studies: the image and the logits layer are tiny in cost
 * and large in error. With {@code channelBits} the weight width is allocated per output channel
 * ({@link BitAllocation}) under an average of {@code weightBits}; with {@code activationChannelBits} the
 * width of each quantized activation is allocated per channel (axis 1) under an average of
 * {@code activationBits}, from per-channel calibration statistics.
 */
public record PtqRecipe(int weightBits, int activationBits, boolean perChannel, Aciq.Prior activationAciq, Aciq.Prior weightAciq, boolean biasCorrection,
                        boolean channelBits, boolean activationChannelBits, int firstLastBits) {
    public PtqRecipe {
        BitWidths.code(weightBits, "weight");
        BitWidths.activation(activationBits, "activation");
        if (firstLastBits != 0) BitWidths.code(firstLastBits, "first/last layer");
        if (channelBits && !perChannel) throw new IllegalArgumentException("per-channel bit allocation needs per-channel weight scales (--per-channel)");
    }

    /** A short name for tables, e.g. "W4A4 per-channel ACIQ(laplace) bias-corrected". */
    public String label() {
        StringBuilder s = new StringBuilder("W" + weightBits + "A" + activationBits);
        s.append(perChannel ? " per-channel" : " per-tensor");
        if (activationAciq != null) s.append(" ACIQ-A(").append(activationAciq.name().toLowerCase()).append(')');
        if (weightAciq != null) s.append(" ACIQ-W(").append(weightAciq.name().toLowerCase()).append(')');
        if (biasCorrection) s.append(" bias-corrected");
        if (channelBits) s.append(" channel-bits");
        if (activationChannelBits) s.append(" activation-channel-bits");
        if (firstLastBits != 0) s.append(" first/last ").append(firstLastBits).append("b");
        return s.toString();
    }
}
