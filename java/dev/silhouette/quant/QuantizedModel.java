package dev.silhouette.quant;

import dev.silhouette.io.AtomicFiles;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonParseException;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's per-layer quantization configuration: the recipe and, per weighted layer, the bit widths,
 * clips, scales and offsets, per quantized activation its bits and range. It is keyed to the model by
 * the fingerprint of the (BatchNorm-folded) graph it was made for. The weight codes are not stored: they
 * are a deterministic function of the weights and the stored clips and widths
 * ({@link #quantizeWeights}), recomputed on load.
 */
public record QuantizedModel(String format, String fingerprint, String model, PtqRecipe recipe, List<Layer> layers,
                             List<Activation> activations) {
    public static final String FORMAT = "silhouette-quantized-1";
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create();

    /**
     * One weighted layer. bits and alpha are per group (one, or one per output channel); scales and
     * offsets are per output channel, after bias correction (scales = step, offsets = 0 without it).
     */
    public record Layer(String name, int[] bits, float[] alpha, float[] scales, float[] offsets, long weights,
                        double averageBits, double entropyBits, double huffmanBits) {}

    /**
     * A value read by a weighted layer, quantized unsigned affine over [lo, hi] at {@code bits}; or, when
     * channelBits is not null, channel c of axis 1 over [channelLo[c], channelHi[c]] at channelBits[c]
     * (bits is then their average, exactly).
     */
    public record Activation(String value, int bits, float lo, float hi, int[] channelBits, float[] channelLo, float[] channelHi) {}

    /** The weights of a layer quantized and dequantized, with their codes (for entropy). */
    public record QuantizedWeights(Tensor values, int[] codes, float[] scales, float[] offsets) {}

    /** Weighted layers (Conv2d, Linear) in graph order. */
    public static List<Node> weightedLayers(Graph graph) {
        return graph.nodes().stream().filter(n -> n.op() instanceof Op.Conv2d || n.op() instanceof Op.Linear).toList();
    }

    /** Applies {@code recipe} to a BatchNorm-folded graph using calibration statistics of that graph. */
    public static QuantizedModel build(Graph folded, String model, PtqRecipe recipe, Calibration calibration) {
        String fingerprint = Calibration.fingerprint(folded);
        if (!fingerprint.equals(calibration.fingerprint())) {
            throw new IllegalArgumentException("calibration statistics were collected on another model ('" + calibration.model() + "')");
        }
        List<Node> weighted = weightedLayers(folded);
        if (weighted.isEmpty()) throw new IllegalArgumentException("model '" + model + "' has no Conv2d or Linear layer to quantize");
        String first = weighted.getFirst().name(), last = weighted.getLast().name();
        List<Layer> layers = new ArrayList<>();
        Map<String, Activation> activations = new LinkedHashMap<>();
        for (Node node : weighted) {
            boolean edge = recipe.firstLastBits() != 0 && (node.name().equals(first) || node.name().equals(last));
            int wBits = edge ? recipe.firstLastBits() : recipe.weightBits();
            int aBits = edge ? recipe.firstLastBits() : recipe.activationBits();
            Tensor w = folded.parameter(node, "weight");
            int channels = w.shape().dim(0), groups = recipe.perChannel() ? channels : 1;
            int[] bits = new int[groups];
            Arrays.fill(bits, wBits);
            if (recipe.channelBits() && !edge) {
                double[] ranges = new double[channels];
                float[] a = recipe.weightAciq() != null ? Aciq.symmetricAlpha(w, wBits, recipe.weightAciq(), channels) : Quantizers.maxAbs(w, channels);
                for (int o = 0; o < channels; o++) ranges[o] = a[o];
                bits = BitAllocation.allocate(ranges, wBits);
            }
            float[] alpha = clips(w, bits, recipe.weightAciq());
            QuantizedWeights q = quantizeWeights(w, bits, alpha, recipe.biasCorrection());
            Entropy.Report entropy = Entropy.of(q.codes());
            double avg = Arrays.stream(bits).average().orElseThrow();
            layers.add(new Layer(node.name(), bits, alpha, q.scales(), q.offsets(), w.size(), avg, entropy.entropyBits(), entropy.huffmanBits()));
            String input = node.inputs().getFirst();
            ActivationStats s = calibration.layer(input);
            Aciq.Prior prior = recipe.activationAciq();
            float[] range = prior != null ? s.aciqRange(prior, aBits) : new float[] {(float) s.min(), (float) s.max()};
            Activation activation = new Activation(input, aBits, range[0], range[1], null, null, null);
            if (recipe.activationChannelBits() && !edge && !s.channels().isEmpty()) {
                activation = perChannel(input, aBits, range, s.channels(), prior);
            }
            // A value read by several layers is stored once; it takes the widest width asked of it.
            Activation previous = activations.get(input);
            if (previous == null || previous.bits() < aBits) activations.put(input, activation);
        }
        return new QuantizedModel(FORMAT, fingerprint, model, recipe, layers, List.copyOf(activations.values()));
    }

    /** Channel widths allocated by clip width under an average of {@code bits}, each channel clipped at its own width. */
    private static Activation perChannel(String value, int bits, float[] range, List<ActivationStats.ChannelStats> channels, Aciq.Prior prior) {
        int c = channels.size();
        double[] widths = new double[c];
        for (int i = 0; i < c; i++) {
            ActivationStats.ChannelStats cs = channels.get(i);
            float[] r = prior != null ? cs.aciqRange(prior, bits) : new float[] {(float) cs.min(), (float) cs.max()};
            widths[i] = r[1] - r[0];
        }
        int[] channelBits = BitAllocation.allocate(widths, bits);
        float[] lo = new float[c], hi = new float[c];
        for (int i = 0; i < c; i++) {
            ActivationStats.ChannelStats cs = channels.get(i);
            float[] r = prior != null ? cs.aciqRange(prior, channelBits[i]) : new float[] {(float) cs.min(), (float) cs.max()};
            lo[i] = r[0];
            hi[i] = r[1];
        }
        return new Activation(value, bits, range[0], range[1], channelBits, lo, hi);
    }

    /** Clip per group: ACIQ or max |w| at each group's width; 1-bit groups use the binary scale mean |w|. */
    private static float[] clips(Tensor w, int[] bits, Aciq.Prior prior) {
        int groups = bits.length, per = w.size() / groups;
        float[] alpha = new float[groups];
        for (int g = 0; g < groups; g++) {
            Tensor slice = new Tensor(Shape.of(per), Arrays.copyOfRange(w.data(), g * per, (g + 1) * per));
            if (bits[g] == 1) {
                double sum = 0;
                for (float v : slice.data()) sum += Math.abs(v);
                alpha[g] = (float) (sum / per);
            } else {
                alpha[g] = prior != null ? Aciq.symmetricAlpha(slice, bits[g], prior, 1)[0] : Quantizers.maxAbs(slice, 1)[0];
            }
        }
        return alpha;
    }

    /**
     * Quantizes weights [out, ...] group by group (one group, or one per output channel with its own
     * width), signed symmetric at the given clips, then optionally bias-corrects per output channel.
     */
    public static QuantizedWeights quantizeWeights(Tensor w, int[] bits, float[] alpha, boolean biasCorrection) {
        int channels = w.shape().dim(0), groups = bits.length;
        if (groups != 1 && groups != channels) throw new IllegalArgumentException(groups + " weight groups for " + channels + " output channels");
        int perGroup = w.size() / groups;
        float[] values = new float[w.size()];
        int[] codes = new int[w.size()];
        float[] scales = new float[channels], offsets = new float[channels];
        for (int g = 0; g < groups; g++) {
            int channelsInGroup = channels / groups;
            Tensor slice = new Tensor(Shape.of(channelsInGroup, perGroup / channelsInGroup), Arrays.copyOfRange(w.data(), g * perGroup, (g + 1) * perGroup));
            QuantizedTensor q = Quantizers.symmetric(slice, bits[g], new float[] {alpha[g]});
            Tensor deq;
            if (biasCorrection) {
                BiasCorrection.Corrected c = BiasCorrection.correct(slice, q);
                deq = c.dequantize();
                for (int k = 0; k < channelsInGroup; k++) {
                    scales[g * channelsInGroup + k] = c.quantized().scales()[k];
                    offsets[g * channelsInGroup + k] = c.offsets()[k];
                }
            } else {
                deq = q.dequantize();
                for (int k = 0; k < channelsInGroup; k++) scales[g * channelsInGroup + k] = q.scales()[0];
            }
            System.arraycopy(deq.data(), 0, values, g * perGroup, perGroup);
            System.arraycopy(q.codes(), 0, codes, g * perGroup, perGroup);
        }
        return new QuantizedWeights(new Tensor(w.shape(), values), codes, scales, offsets);
    }

    /** The folded graph with every weighted layer's weights replaced by their quantized values. */
    public Graph applyWeights(Graph folded) {
        checkFingerprint(folded);
        Map<String, Tensor> params = new LinkedHashMap<>(folded.parameters());
        for (Layer layer : layers) {
            Node node = folded.node(layer.name());
            Tensor w = folded.parameter(node, "weight");
            params.put(layer.name() + ".weight", quantizeWeights(w, layer.bits(), layer.alpha(), recipe.biasCorrection()).values());
        }
        return folded.withParameters(params);
    }

    public void checkFingerprint(Graph folded) {
        String expected = Calibration.fingerprint(folded);
        if (!expected.equals(fingerprint)) {
            throw new IllegalArgumentException("quantized model configuration was made for another model ('" + model + "'), not this one");
        }
    }

    /** Average weight bits over all weights of the quantized layers. */
    public double averageWeightBits() {
        double bits = 0;
        long count = 0;
        for (Layer l : layers) {
            bits += l.averageBits() * l.weights();
            count += l.weights();
        }
        return bits / count;
    }

    /** Model-file metadata key under which {@link #toJson()} is stored beside the weights. */
    public static final String METADATA_KEY = "silhouette.quantization";

    public String toJson() {
        return GSON.toJson(this);
    }

    /** Parses a configuration (from a file or a model's metadata, named by {@code source}) and checks it fits {@code folded}. */
    public static QuantizedModel fromJson(String json, String source, Graph folded) {
        QuantizedModel q;
        try {
            q = GSON.fromJson(json, QuantizedModel.class);
        } catch (JsonParseException e) {
            throw new IllegalArgumentException("quantized model " + source + " is not valid JSON: " + e.getMessage());
        } catch (RuntimeException e) {
            // Gson builds records through their constructors; a value they refuse arrives wrapped.
            if (e.getCause() instanceof IllegalArgumentException bad) throw new IllegalArgumentException("quantized model " + source + ": " + bad.getMessage());
            throw e;
        }
        return validated(q, source, folded);
    }

    public void save(Path file) {
        try {
            AtomicFiles.write(file, tmp -> Files.writeString(tmp, toJson(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write quantized model " + file + ": " + e.getMessage(), e);
        }
    }

    public static QuantizedModel load(Path file, Graph folded) {
        try {
            return fromJson(Files.readString(file, StandardCharsets.UTF_8), file.toString(), folded);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read quantized model " + file + ": " + e.getMessage(), e);
        }
    }

    private static QuantizedModel validated(QuantizedModel q, String file, Graph folded) {
        if (q == null || !FORMAT.equals(q.format()) || q.layers() == null || q.activations() == null || q.recipe() == null) {
            throw new IllegalArgumentException("quantized model " + file + " is not a " + FORMAT + " file");
        }
        q.checkFingerprint(folded);
        return q;
    }
}
