package dev.silhouette.pipeline;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import dev.silhouette.graph.Op;
import dev.silhouette.io.AtomicFiles;
import dev.silhouette.io.Limit;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.pipeline.QuantPlan.Activations;
import dev.silhouette.pipeline.QuantPlan.LayerPlan;
import dev.silhouette.pipeline.QuantPlan.SilhouetteSource;
import dev.silhouette.pipeline.QuantPlan.Weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link QuantPlan} as versioned JSON ({@value QuantPlan#FORMAT}). Every object carries a "kind"; a
 * malformed file is refused with one message naming the file and the field (e.g.
 * {@code layers[3].activations.bits}), never half-read.
 */
public final class QuantPlanJson {
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().create();

    private QuantPlanJson() {}

    public static String write(QuantPlan plan) {
        JsonObject root = new JsonObject();
        root.addProperty("format", QuantPlan.FORMAT);
        root.addProperty("model", plan.model());
        root.addProperty("fingerprint", plan.fingerprint());
        root.addProperty("label", plan.label());
        root.add("silhouette", silhouette(plan.silhouette()));
        JsonArray layers = new JsonArray();
        for (LayerPlan l : plan.layers()) {
            JsonObject o = new JsonObject();
            o.addProperty("layer", l.layer());
            o.addProperty("input", l.input());
            o.add("weights", weights(l.weights()));
            o.add("activations", activations(l.activations()));
            layers.add(o);
        }
        root.add("layers", layers);
        return GSON.toJson(root);
    }

    public static void save(QuantPlan plan, Path file) {
        try {
            AtomicFiles.write(file, tmp -> Files.writeString(tmp, write(plan), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write quantization plan " + file + ": " + e.getMessage(), e);
        }
    }

    public static QuantPlan load(Path file) {
        String text;
        try {
            long size = Files.size(file);
            if (!Limit.PLAN_BYTES.allows(size)) throw new IllegalArgumentException(Limit.PLAN_BYTES.refusal("quantization plan " + file + " has bytes:", size));
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read quantization plan " + file + ": " + e.getMessage(), e);
        }
        return read(text, file.toString());
    }

    /** Parses a plan; {@code source} names it in errors. */
    public static QuantPlan read(String json, String source) {
        if (!Limit.PLAN_BYTES.allows(json.length())) throw new IllegalArgumentException(Limit.PLAN_BYTES.refusal("quantization plan " + source + " has characters:", json.length()));
        JsonElement root;
        try {
            root = JsonParser.parseString(json);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("quantization plan " + source + " is not valid JSON: " + e.getMessage());
        }
        Field top = new Field(source, "", root);
        String format = top.string("format");
        if (!QuantPlan.FORMAT.equals(format)) {
            throw top.bad("format", "is '" + format + "'; this version reads " + QuantPlan.FORMAT);
        }
        List<LayerPlan> layers = new ArrayList<>();
        Field list = top.get("layers");
        JsonArray array = list.array();
        for (int i = 0; i < array.size(); i++) {
            Field l = list.at(i);
            layers.add(l.build(() -> new LayerPlan(l.string("layer"), l.string("input"), weights(l.get("weights")), activations(l.get("activations")))));
        }
        return top.build(() -> new QuantPlan(top.string("model"), top.string("fingerprint"), top.string("label"), silhouette(top.get("silhouette")), layers));
    }

    private static JsonObject kind(String kind) {
        JsonObject o = new JsonObject();
        o.addProperty("kind", kind);
        return o;
    }

    private static JsonObject silhouette(SilhouetteSource s) {
        return switch (s) {
            case SilhouetteSource.Learned l -> kind("learned");
            case SilhouetteSource.Squeeze q -> {
                JsonObject o = kind("squeeze");
                o.addProperty("featureMap", q.featureMap());
                o.addProperty("mode", q.mode().name());
                o.addProperty("k", q.k());
                yield o;
            }
            case SilhouetteSource.Noise n -> {
                JsonObject o = kind("noise");
                o.addProperty("featureMap", n.featureMap());
                o.addProperty("seed", n.seed());
                yield o;
            }
        };
    }

    private static SilhouetteSource silhouette(Field f) {
        return switch (f.string("kind")) {
            case "learned" -> new SilhouetteSource.Learned();
            case "squeeze" -> f.build(() -> new SilhouetteSource.Squeeze(f.string("featureMap"), f.enumValue("mode", Op.ChannelSqueeze.Squeeze.class), f.integer("k")));
            case "noise" -> f.build(() -> new SilhouetteSource.Noise(f.string("featureMap"), f.get("seed").primitive().getAsLong()));
            default -> throw f.bad("kind", "is '" + f.string("kind") + "'; expected learned, squeeze or noise");
        };
    }

    private static JsonObject weights(Weights w) {
        return switch (w) {
            case Weights.Float f -> kind("float");
            case Weights.PerRegion p -> kind("per-region");
            case Weights.Symmetric s -> {
                JsonObject o = kind("symmetric");
                o.add("bits", GSON.toJsonTree(s.bits()));
                if (s.clip() != null) o.add("clip", GSON.toJsonTree(s.clip()));
                o.addProperty("biasCorrection", s.biasCorrection());
                yield o;
            }
        };
    }

    private static Weights weights(Field f) {
        return switch (f.string("kind")) {
            case "float" -> new Weights.Float();
            case "per-region" -> new Weights.PerRegion();
            case "symmetric" -> f.build(() -> new Weights.Symmetric(f.ints("bits"), f.has("clip") ? f.floats("clip") : null, f.bool("biasCorrection")));
            default -> throw f.bad("kind", "is '" + f.string("kind") + "'; expected float, symmetric or per-region");
        };
    }

    private static JsonObject activations(Activations a) {
        return switch (a) {
            case Activations.Float f -> kind("float");
            case Activations.Pact p -> {
                JsonObject o = kind("pact");
                o.addProperty("bits", p.bits());
                o.addProperty("alpha", p.alpha());
                yield o;
            }
            case Activations.Affine af -> {
                JsonObject o = kind("affine");
                o.addProperty("bits", af.bits());
                o.addProperty("lo", af.lo());
                o.addProperty("hi", af.hi());
                if (af.channelBits() != null) {
                    o.add("channelBits", GSON.toJsonTree(af.channelBits()));
                    o.add("channelLo", GSON.toJsonTree(af.channelLo()));
                    o.add("channelHi", GSON.toJsonTree(af.channelHi()));
                }
                yield o;
            }
            case Activations.Region r -> {
                JsonObject o = kind("region");
                o.addProperty("policy", r.policy().toString());
                o.add("alphas", GSON.toJsonTree(r.alphas()));
                o.addProperty("resize", r.resize().name());
                o.addProperty("order", r.order().name());
                o.addProperty("perRegionWeights", r.perRegionWeights());
                yield o;
            }
            case Activations.Drq d -> {
                JsonObject o = kind("drq");
                o.addProperty("lowBits", d.lowBits());
                o.addProperty("highBits", d.highBits());
                o.addProperty("block", d.block());
                o.addProperty("threshold", d.threshold());
                o.addProperty("lowAlpha", d.lowAlpha());
                o.addProperty("highAlpha", d.highAlpha());
                yield o;
            }
        };
    }

    private static Activations activations(Field f) {
        return switch (f.string("kind")) {
            case "float" -> new Activations.Float();
            case "pact" -> f.build(() -> new Activations.Pact(f.integer("bits"), f.number("alpha")));
            case "affine" -> f.build(() -> f.has("channelBits")
                    ? new Activations.Affine(f.integer("bits"), f.number("lo"), f.number("hi"), f.ints("channelBits"), f.floats("channelLo"), f.floats("channelHi"))
                    : new Activations.Affine(f.integer("bits"), f.number("lo"), f.number("hi")));
            case "region" -> f.build(() -> {
                float[] alphas = f.floats("alphas");
                List<Float> list = new ArrayList<>();
                for (float x : alphas) list.add(x);
                RegionPolicy policy = f.build("policy", () -> RegionPolicy.parse(f.string("policy")));
                return new Activations.Region(policy, list, f.enumValue("resize", Op.Interpolate.Mode.class),
                        f.enumValue("order", Op.RegionQuantize.MaskOrder.class), f.bool("perRegionWeights"));
            });
            case "drq" -> f.build(() -> new Activations.Drq(f.integer("lowBits"), f.integer("highBits"), f.integer("block"), f.number("threshold"),
                    f.number("lowAlpha"), f.number("highAlpha")));
            default -> throw f.bad("kind", "is '" + f.string("kind") + "'; expected float, pact, affine, region or drq");
        };
    }

    /** A JSON value at a path of a named file, whose readers refuse a missing or mistyped field by its path. */
    private record Field(String source, String path, JsonElement value) {
        IllegalArgumentException bad(String field, String problem) {
            return new IllegalArgumentException("quantization plan " + source + ": " + join(field) + " " + problem);
        }

        private String join(String field) {
            if (field.isEmpty()) return path.isEmpty() ? "(top level)" : path;
            return path.isEmpty() ? field : path + "." + field;
        }

        JsonObject object() {
            if (value == null || !value.isJsonObject()) throw bad("", "is not a JSON object");
            return value.getAsJsonObject();
        }

        JsonArray array() {
            if (value == null || !value.isJsonArray()) throw bad("", "is not a JSON array");
            return value.getAsJsonArray();
        }

        JsonPrimitive primitive() {
            if (value == null || !value.isJsonPrimitive()) throw bad("", "is missing or not a number, string or boolean");
            return value.getAsJsonPrimitive();
        }

        boolean has(String field) {
            return object().has(field) && !object().get(field).isJsonNull();
        }

        Field get(String field) {
            JsonElement v = object().get(field);
            if (v == null || v.isJsonNull()) throw bad(field, "is missing");
            return new Field(source, join(field), v);
        }

        Field at(int index) {
            return new Field(source, path + "[" + index + "]", array().get(index));
        }

        String string(String field) {
            JsonPrimitive p = get(field).primitive();
            if (!p.isString()) throw bad(field, "is not a string");
            return p.getAsString();
        }

        boolean bool(String field) {
            JsonPrimitive p = get(field).primitive();
            if (!p.isBoolean()) throw bad(field, "is not true or false");
            return p.getAsBoolean();
        }

        float number(String field) {
            JsonPrimitive p = get(field).primitive();
            if (!p.isNumber()) throw bad(field, "is not a number");
            return p.getAsFloat();
        }

        int integer(String field) {
            JsonPrimitive p = get(field).primitive();
            if (!p.isNumber()) throw bad(field, "is not a whole number");
            double d = p.getAsDouble();
            if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) throw bad(field, "is " + p + ", not a whole number");
            return (int) d;
        }

        int[] ints(String field) {
            Field f = get(field);
            JsonArray a = f.array();
            int[] out = new int[a.size()];
            for (int i = 0; i < out.length; i++) {
                JsonElement e = a.get(i);
                if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber() || e.getAsDouble() != Math.rint(e.getAsDouble())) {
                    throw bad(field + "[" + i + "]", "is not a whole number");
                }
                out[i] = e.getAsInt();
            }
            return out;
        }

        float[] floats(String field) {
            Field f = get(field);
            JsonArray a = f.array();
            float[] out = new float[a.size()];
            for (int i = 0; i < out.length; i++) {
                JsonElement e = a.get(i);
                if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) throw bad(field + "[" + i + "]", "is not a number");
                out[i] = e.getAsFloat();
            }
            return out;
        }

        <E extends Enum<E>> E enumValue(String field, Class<E> type) {
            String s = string(field);
            try {
                return Enum.valueOf(type, s);
            } catch (IllegalArgumentException e) {
                throw bad(field, "is '" + s + "'; expected one of " + java.util.Arrays.toString(type.getEnumConstants()));
            }
        }

        /** Runs a constructor; a value it refuses is reported at this field's path. */
        <T> T build(java.util.function.Supplier<T> make) {
            return build("", make);
        }

        <T> T build(String field, java.util.function.Supplier<T> make) {
            try {
                return make.get();
            } catch (IllegalArgumentException e) {
                if (e.getMessage() != null && e.getMessage().startsWith("quantization plan ")) throw e;
                throw bad(field, e.getMessage() == null ? "is not valid" : "is not valid: " + e.getMessage());
            }
        }
    }
}
