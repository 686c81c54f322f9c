package dev.silhouette.pipeline;

import dev.silhouette.graph.Op;
import dev.silhouette.quant.BitWidths;
import dev.silhouette.quant.BiasCorrection;
import dev.silhouette.quant.Quantizers;
import dev.silhouette.quant.RegionPolicy;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * "This model, quantized this way": the one description every command builds or reads. It is keyed to
 * one (BatchNorm-folded) graph by that graph's fingerprint and says, per receiving layer (a Conv2d or
 * Linear, by name), how its weights and the activations it reads are quantized; layers it does not name
 * stay in float. Clip levels, DRQ thresholds and bit allocations are choices made once, on calibration
 * data, and stored here, so that a later run, a server or another command applies exactly the same
 * quantization. {@link QuantPlanJson} reads and writes it.
 *
 * @param model       the model's name, for messages
 * @param fingerprint the fingerprint of the graph the plan was made for
 * @param label       a short name for tables, e.g. "W4A4" or "2:50,3:30,4:20 W4"
 * @param silhouette  where region schemes take their silhouette from
 */
public record QuantPlan(String model, String fingerprint, String label, SilhouetteSource silhouette, List<LayerPlan> layers) {
    public static final String FORMAT = "silhouette-plan-1";

    public QuantPlan {
        layers = List.copyOf(layers);
        Set<String> seen = new LinkedHashSet<>();
        for (LayerPlan l : layers) {
            if (!seen.add(l.layer())) throw new IllegalArgumentException("plan '" + label + "' names layer '" + l.layer() + "' twice");
        }
    }

    /** The plan of a layer, or null when the layer stays in float. */
    public LayerPlan layer(String name) {
        for (LayerPlan l : layers) if (l.layer().equals(name)) return l;
        return null;
    }

    public boolean usesSilhouette() {
        return layers.stream().anyMatch(l -> l.activations() instanceof Activations.Region);
    }

    /**
     * One receiving layer: the value it reads ({@code input}, checked against the graph when the plan is
     * applied), its weight scheme and its input activation scheme.
     */
    public record LayerPlan(String layer, String input, Weights weights, Activations activations) {
        public LayerPlan {
            if (layer == null || layer.isBlank()) throw new IllegalArgumentException("a layer plan needs the layer's name");
            if (input == null || input.isBlank()) throw new IllegalArgumentException("layer '" + layer + "': the plan needs the value it reads");
            boolean perRegionActivations = activations instanceof Activations.Drq
                    || activations instanceof Activations.Region r && r.perRegionWeights();
            if (perRegionActivations && !(weights instanceof Weights.PerRegion)) {
                throw new IllegalArgumentException("layer '" + layer + "': one convolution per region needs the per-region weight scheme");
            }
            if (weights instanceof Weights.PerRegion && !perRegionActivations) {
                throw new IllegalArgumentException("layer '" + layer + "': per-region weights need DRQ or per-region region activations");
            }
        }
    }

    /** How a layer's weights are quantized. */
    public sealed interface Weights {
        /** Kept in float. */
        record Float() implements Weights {}

        /**
         * Signed symmetric ({@link Quantizers#symmetric}) per group: one group, or one per output channel,
         * each at {@code bits[g]} (1 bit is the binary sign grid at scale mean |w|) and clipped at
         * {@code clip[g]}; {@code clip} null clips every group at its own max |w| (its mean |w| at 1 bit),
         * computed from the weights when the plan is applied. With {@code biasCorrection} each output
         * channel's mean and spread are restored ({@link BiasCorrection}).
         */
        record Symmetric(int[] bits, float[] clip, boolean biasCorrection) implements Weights {
            public Symmetric {
                if (bits == null || bits.length == 0) throw new IllegalArgumentException("symmetric weights need bits for at least one group");
                for (int b : bits) BitWidths.code(b, "weight");
                if (clip != null) {
                    if (clip.length != bits.length) {
                        throw new IllegalArgumentException("symmetric weights have " + bits.length + " bit widths but " + clip.length + " clips");
                    }
                    for (float c : clip) {
                        if (!(c >= 0) || java.lang.Float.isInfinite(c)) throw new IllegalArgumentException("weight clip " + c + " must be finite and >= 0");
                    }
                }
            }

            /** One width for the whole tensor, or for every output channel, clipped at max |w|. */
            public static Symmetric uniform(int bits, int groups) {
                int[] b = new int[groups];
                java.util.Arrays.fill(b, bits);
                return new Symmetric(b, null, false);
            }

            public double averageBits() {
                return java.util.Arrays.stream(bits).average().orElseThrow();
            }
        }

        /** One convolution per region (or DRQ width), its weights symmetric per output channel at that region's width. */
        record PerRegion() implements Weights {}
    }

    /** How the activations a layer reads are quantized. */
    public sealed interface Activations {
        /** Kept in float. */
        record Float() implements Activations {}

        /** PACT: clip to [0, alpha] on the grid alpha / (2^bits - 1). */
        record Pact(int bits, float alpha) implements Activations {
            public Pact {
                BitWidths.activation(bits, "activation");
                checkClip(alpha, "PACT clip level");
            }
        }

        /**
         * Unsigned affine over [lo, hi] ({@link Quantizers#affine}); with {@code channelBits} not null,
         * channel c of axis 1 over [channelLo[c], channelHi[c]] at channelBits[c] ({@code bits} is then their average).
         */
        record Affine(int bits, float lo, float hi, int[] channelBits, float[] channelLo, float[] channelHi) implements Activations {
            public Affine {
                BitWidths.activation(bits, "activation");
                checkRange(lo, hi, "activation range");
                if (channelBits != null) {
                    if (channelLo == null || channelHi == null || channelLo.length != channelBits.length || channelHi.length != channelBits.length) {
                        throw new IllegalArgumentException("per-channel activations need one lo and one hi per channel width");
                    }
                    for (int c = 0; c < channelBits.length; c++) {
                        BitWidths.activation(channelBits[c], "channel " + c + " activation");
                        checkRange(channelLo[c], channelHi[c], "channel " + c + " range");
                    }
                } else if (channelLo != null || channelHi != null) {
                    throw new IllegalArgumentException("per-channel ranges need per-channel widths");
                }
            }

            public Affine(int bits, float lo, float hi) {
                this(bits, lo, hi, null, null, null);
            }
        }

        /**
         * Region-based: each pixel at the bits of its silhouette region (policy), region j clipped at
         * {@code alphas[j]}; masks made at the layer's size by {@code resize} and {@code order}. With
         * {@code perRegionWeights}, the original code's form: one convolution per region reading that
         * region only, weights at its width, outputs summed.
         */
        record Region(RegionPolicy policy, List<java.lang.Float> alphas, Op.Interpolate.Mode resize, Op.RegionQuantize.MaskOrder order,
                      boolean perRegionWeights) implements Activations {
            public Region {
                alphas = List.copyOf(alphas);
                if (alphas.size() != policy.regions().size()) {
                    throw new IllegalArgumentException("region policy " + policy + " has " + policy.regions().size() + " regions but "
                            + alphas.size() + " clip levels");
                }
                for (float a : alphas) checkClip(a, "region clip level");
                if (resize == null || order == null) throw new IllegalArgumentException("region activations need a resize mode and a mask order");
                if (perRegionWeights) {
                    for (int r = 0; r < policy.regions().size(); r++) {
                        if (policy.bits(r) < 2) {
                            throw new IllegalArgumentException("region policy " + policy + " with per-region weights: region " + (r + 1)
                                    + " has " + policy.bits(r) + " bit, symmetric weights need at least 2; use the shared-weight form");
                        }
                    }
                }
            }
        }

        /** DRQ: a pixel is sensitive when its channel's block mean reaches {@code threshold}; one convolution per width. */
        record Drq(int lowBits, int highBits, int block, float threshold, float lowAlpha, float highAlpha) implements Activations {
            public Drq {
                BitWidths.activation(lowBits, "DRQ low");
                BitWidths.activation(highBits, "DRQ high");
                if (lowBits < 2) throw new IllegalArgumentException("DRQ low width " + lowBits + " bits: its weights need at least 2");
                if (block < 1) throw new IllegalArgumentException("DRQ block " + block + " must be at least 1");
                if (!java.lang.Float.isFinite(threshold)) throw new IllegalArgumentException("DRQ threshold " + threshold + " must be finite");
                checkClip(lowAlpha, "DRQ low clip level");
                checkClip(highAlpha, "DRQ high clip level");
            }
        }
    }

    /** Where region schemes read the silhouette: the model's own branch, a channel squeeze of a feature map, or noise (a control). */
    public sealed interface SilhouetteSource {
        record Learned() implements SilhouetteSource {}

        record Squeeze(String featureMap, Op.ChannelSqueeze.Squeeze mode, int k) implements SilhouetteSource {
            public Squeeze {
                if (featureMap == null || featureMap.isBlank()) throw new IllegalArgumentException("a squeezed silhouette needs a feature map");
                new Op.ChannelSqueeze(mode, k);
            }
        }

        record Noise(String featureMap, long seed) implements SilhouetteSource {
            public Noise {
                if (featureMap == null || featureMap.isBlank()) throw new IllegalArgumentException("a noise silhouette needs a feature map");
            }
        }
    }

    private static void checkClip(float alpha, String what) {
        if (!(alpha > 0) || Float.isInfinite(alpha)) throw new IllegalArgumentException(what + " " + alpha + " must be positive and finite");
    }

    private static void checkRange(float lo, float hi, String what) {
        if (!(lo <= hi) || Float.isInfinite(lo) || Float.isInfinite(hi)) {
            throw new IllegalArgumentException(what + " [" + lo + ", " + hi + "] is not a finite interval");
        }
    }
}
