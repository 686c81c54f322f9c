package dev.silhouette.cli;

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.silhouette.quant.BitWidths;

import java.util.Map;
import java.util.TreeMap;

/**
 * Clip levels learned by `silhouette finetune`, carried in the model file's metadata as
 * {@code {"value": {"bits": alpha}}}: for those values and widths they replace the calibrated ones
 * (dev.silhouette.pipeline.Calibration#adopt), wherever the main job or a later fine-tuning quantizes them.
 */
final class LearnedClipLevels {
    static final String KEY = "silhouette.clip_levels";

    private LearnedClipLevels() {}

    static String json(Map<String, Map<Integer, Float>> levels) {
        return new Gson().toJson(levels);
    }

    /** The model's learned clip levels (empty when it has none); a malformed entry is refused by name. */
    static Map<String, Map<Integer, Float>> read(Map<String, String> metadata, String model) {
        Map<String, Map<Integer, Float>> out = new TreeMap<>();
        String text = metadata.get(KEY);
        if (text == null) return out;
        String where = "model " + model + ": metadata '" + KEY + "'";
        JsonObject root;
        try {
            root = JsonParser.parseString(text).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(where + " is not a JSON object of {value: {bits: clip level}}");
        }
        for (Map.Entry<String, JsonElement> value : root.entrySet()) {
            if (!value.getValue().isJsonObject()) throw new IllegalArgumentException(where + ": '" + value.getKey() + "' is not an object of {bits: clip level}");
            Map<Integer, Float> byBits = new TreeMap<>();
            for (Map.Entry<String, JsonElement> e : value.getValue().getAsJsonObject().entrySet()) {
                int bits;
                float alpha;
                try {
                    bits = Integer.parseInt(e.getKey());
                    alpha = e.getValue().getAsFloat();
                } catch (RuntimeException ex) {
                    throw new IllegalArgumentException(where + ": '" + value.getKey() + "' entry " + e.getKey() + " = " + e.getValue()
                            + " is not a width and a clip level");
                }
                BitWidths.activation(bits, where + ": '" + value.getKey() + "'");
                if (!(alpha > 0) || Float.isInfinite(alpha)) {
                    throw new IllegalArgumentException(where + ": '" + value.getKey() + "' at " + bits + " bits has clip level " + alpha
                            + "; clip levels are positive and finite");
                }
                byBits.put(bits, alpha);
            }
            out.put(value.getKey(), byBits);
        }
        return out;
    }
}
