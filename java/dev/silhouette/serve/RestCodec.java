package dev.silhouette.serve;

import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.google.gson.stream.JsonWriter;
import com.google.gson.stream.MalformedJsonException;
import dev.silhouette.tensor.Tensor;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The REST endpoint's request and response bodies: the protocol's JSON objects, with the binary tensor
 * data extension (a JSON header of {@code Inference-Header-Content-Length} bytes followed by raw
 * tensors; {@code binary_data_size} on inputs, {@code binary_data} on requested outputs,
 * {@code binary_data_output} for all of them). The JSON is read as a stream, twice: once for names,
 * datatypes and shapes, checked against the model, and once for the data, straight into float arrays
 * of the size the checked shapes allow, so that no declared size is ever allocated unchecked.
 */
final class RestCodec {
    private RestCodec() {}

    /** A decoded request and which outputs go back as binary data. */
    record Decoded(InferRequest request, Map<String, Boolean> binaryOutputs, boolean binaryByDefault) {
        boolean binary(String output) {
            return binaryOutputs.getOrDefault(output, binaryByDefault);
        }
    }

    /** What the first pass learns about an input. */
    private static final class InputHead {
        String name, datatype;
        List<Long> shape;
        Long binarySize;
        boolean hasData;
        int count;
    }

    /** @param headerLength the JSON header's length when the binary extension is used, else the body's length */
    static Decoded decode(ServedModel model, String urlModel, byte[] body, int headerLength) {
        List<InputHead> heads = new ArrayList<>();
        List<String> outputs = new ArrayList<>();
        Map<String, Boolean> binaryOutputs = new LinkedHashMap<>();
        String[] id = {""};
        boolean[] binaryDefault = {false};
        parse(body, headerLength, r -> head(r, model, heads, outputs, binaryOutputs, id, binaryDefault));
        if (heads.isEmpty()) throw InferenceError.invalid("inputs is missing or empty; model " + model.name + " takes " + model.inputs.keySet());
        long binaryTotal = 0;
        for (int i = 0; i < heads.size(); i++) {
            InputHead h = heads.get(i);
            String field = "inputs[" + i + "]";
            if (h.datatype == null) throw InferenceError.invalid(field + ".datatype is missing; the model takes FP32");
            int size = Datatypes.size(h.datatype, field);
            h.count = model.checkInput(field, h.name, h.shape);
            if (h.binarySize != null) {
                if (h.hasData) throw InferenceError.invalid(field + " has both data and parameters.binary_data_size; send one");
                if (h.binarySize != (long) h.count * size) {
                    throw InferenceError.invalid(field + ".parameters.binary_data_size " + h.binarySize + " does not match shape " + h.shape + " of " + h.datatype
                            + ", which needs " + (long) h.count * size + " bytes");
                }
                binaryTotal += h.binarySize;
            } else if (!h.hasData) {
                throw InferenceError.invalid(field + " has neither data nor parameters.binary_data_size");
            }
        }
        long binaryBytes = body.length - (long) headerLength;
        if (binaryTotal != binaryBytes) {
            throw InferenceError.invalid("the binary_data_size of the inputs add up to " + binaryTotal + " bytes, but " + binaryBytes
                    + " bytes follow the " + headerLength + "-byte JSON header (Inference-Header-Content-Length)");
        }
        float[][] data = new float[heads.size()][];
        parse(body, headerLength, r -> data(r, heads, data));
        int offset = headerLength;
        List<InferRequest.Input> inputs = new ArrayList<>();
        for (int i = 0; i < heads.size(); i++) {
            InputHead h = heads.get(i);
            if (h.binarySize != null) {
                data[i] = Datatypes.decode(h.datatype, ByteBuffer.wrap(body, offset, h.binarySize.intValue()), h.count, "inputs[" + i + "]");
                offset += h.binarySize.intValue();
            }
            inputs.add(new InferRequest.Input(h.name, h.shape, data[i]));
        }
        return new Decoded(new InferRequest(urlModel, null, id[0], inputs, outputs), binaryOutputs, binaryDefault[0]);
    }

    private interface Reader {
        void read(JsonReader r) throws IOException;
    }

    private static void parse(byte[] body, int length, Reader reader) {
        try (JsonReader r = new JsonReader(new InputStreamReader(new ByteArrayInputStream(body, 0, length), StandardCharsets.UTF_8))) {
            r.setStrictness(Strictness.STRICT);
            if (r.peek() != JsonToken.BEGIN_OBJECT) throw InferenceError.invalid("the request body is not a JSON object");
            reader.read(r);
            if (r.peek() != JsonToken.END_DOCUMENT) throw InferenceError.invalid("the request body holds more than one JSON value");
        } catch (EOFException e) {
            throw InferenceError.invalid("the request body is not valid JSON: it ends early (" + length + " bytes of JSON)");
        } catch (MalformedJsonException | IllegalStateException | NumberFormatException e) {
            throw InferenceError.invalid("the request body is not valid JSON: " + e.getMessage());
        } catch (IOException e) {
            throw InferenceError.invalid("the request body cannot be read: " + e.getMessage());
        }
    }

    private static void head(JsonReader r, ServedModel model, List<InputHead> heads, List<String> outputs, Map<String, Boolean> binaryOutputs,
                             String[] id, boolean[] binaryDefault) throws IOException {
        r.beginObject();
        java.util.Set<String> seen = new java.util.HashSet<>();
        while (r.hasNext()) {
            String member = r.nextName();
            // A repeated key would make the data pass read another array than the one checked.
            if (!seen.add(member)) throw InferenceError.invalid("the request object has '" + ServedModel.abbreviate(member) + "' twice");
            switch (member) {
                case "id" -> id[0] = string(r, "id");
                case "parameters" -> parameters(r, "parameters", (key, reader) -> {
                    if (key.equals("binary_data_output")) binaryDefault[0] = bool(reader, "parameters.binary_data_output");
                    else reader.skipValue();
                });
                case "inputs" -> {
                    expect(r, JsonToken.BEGIN_ARRAY, "inputs", "an array of tensors");
                    r.beginArray();
                    while (r.hasNext()) {
                        String field = "inputs[" + heads.size() + "]";
                        if (heads.size() >= 64) throw InferenceError.invalid("inputs holds more than 64 tensors; model " + model.name + " takes " + model.inputs.size());
                        InputHead h = new InputHead();
                        expect(r, JsonToken.BEGIN_OBJECT, field, "an object");
                        r.beginObject();
                        java.util.Set<String> keys = new java.util.HashSet<>();
                        while (r.hasNext()) {
                            String inputMember = r.nextName();
                            if (!keys.add(inputMember)) throw InferenceError.invalid(field + " has '" + ServedModel.abbreviate(inputMember) + "' twice");
                            switch (inputMember) {
                                case "name" -> h.name = string(r, field + ".name");
                                case "datatype" -> h.datatype = string(r, field + ".datatype");
                                case "shape" -> h.shape = shape(r, field + ".shape");
                                case "parameters" -> parameters(r, field + ".parameters", (key, reader) -> {
                                    if (key.equals("binary_data_size")) {
                                        expect(reader, JsonToken.NUMBER, field + ".parameters.binary_data_size", "a byte count");
                                        long v = reader.nextLong();
                                        if (v < 0) throw InferenceError.invalid(field + ".parameters.binary_data_size " + v + " is negative");
                                        h.binarySize = v;
                                    } else reader.skipValue();
                                });
                                case "data" -> {
                                    h.hasData = true;
                                    r.skipValue();
                                }
                                default -> r.skipValue();
                            }
                        }
                        r.endObject();
                        heads.add(h);
                    }
                    r.endArray();
                }
                case "outputs" -> {
                    expect(r, JsonToken.BEGIN_ARRAY, "outputs", "an array of requested outputs");
                    r.beginArray();
                    while (r.hasNext()) {
                        String field = "outputs[" + outputs.size() + "]";
                        if (outputs.size() >= 64) throw InferenceError.invalid("outputs holds more than 64 names; model " + model.name + " has " + model.outputs.size());
                        expect(r, JsonToken.BEGIN_OBJECT, field, "an object");
                        r.beginObject();
                        String name = null;
                        Boolean binary = null;
                        while (r.hasNext()) {
                            switch (r.nextName()) {
                                case "name" -> name = string(r, field + ".name");
                                case "parameters" -> {
                                    Boolean[] b = {null};
                                    parameters(r, field + ".parameters", (key, reader) -> {
                                        switch (key) {
                                            case "binary_data" -> b[0] = bool(reader, field + ".parameters.binary_data");
                                            case "classification" -> throw InferenceError.invalid(field + ".parameters.classification: the classification extension is not served");
                                            default -> reader.skipValue();
                                        }
                                    });
                                    binary = b[0];
                                }
                                default -> r.skipValue();
                            }
                        }
                        r.endObject();
                        if (name == null) throw InferenceError.invalid(field + ".name is missing");
                        outputs.add(name);
                        if (binary != null) binaryOutputs.put(name, binary);
                    }
                    r.endArray();
                }
                default -> r.skipValue();
            }
        }
        r.endObject();
    }

    private static void data(JsonReader r, List<InputHead> heads, float[][] data) throws IOException {
        r.beginObject();
        while (r.hasNext()) {
            if (!r.nextName().equals("inputs")) {
                r.skipValue();
                continue;
            }
            r.beginArray();
            for (int i = 0; r.hasNext(); i++) {
                InputHead h = heads.get(i);
                r.beginObject();
                while (r.hasNext()) {
                    if (!r.nextName().equals("data")) {
                        r.skipValue();
                        continue;
                    }
                    String field = "inputs[" + i + "]";
                    float[] values = new float[h.count];
                    int n = values(r, h.datatype, field, values, 0, 0);
                    if (n != h.count) throw InferenceError.invalid(field + ".data holds " + n + " values; shape " + h.shape + " needs " + h.count);
                    data[i] = values;
                }
                r.endObject();
            }
            r.endArray();
        }
        r.endObject();
    }

    /** Reads a (nested) array of numbers row-major into {@code out} from {@code at}; returns where it ended. */
    private static int values(JsonReader r, String datatype, String field, float[] out, int at, int depth) throws IOException {
        if (depth > 16) throw InferenceError.invalid(field + ".data nests arrays more than 16 deep");
        expect(r, JsonToken.BEGIN_ARRAY, field + ".data", "an array of numbers");
        r.beginArray();
        while (r.hasNext()) {
            JsonToken t = r.peek();
            if (t == JsonToken.BEGIN_ARRAY) at = values(r, datatype, field, out, at, depth + 1);
            else if (t == JsonToken.NUMBER) {
                if (at >= out.length) throw InferenceError.invalid(field + ".data holds more than the " + out.length + " values its shape needs");
                out[at++] = Datatypes.fromJson(datatype, r.nextDouble(), field);
            } else throw InferenceError.invalid(field + ".data holds " + t.toString().toLowerCase(java.util.Locale.ROOT) + " where a " + datatype + " number belongs");
        }
        r.endArray();
        return at;
    }

    private interface Parameter {
        void read(String key, JsonReader r) throws IOException;
    }

    private static void parameters(JsonReader r, String field, Parameter each) throws IOException {
        expect(r, JsonToken.BEGIN_OBJECT, field, "an object");
        r.beginObject();
        while (r.hasNext()) each.read(r.nextName(), r);
        r.endObject();
    }

    private static List<Long> shape(JsonReader r, String field) throws IOException {
        expect(r, JsonToken.BEGIN_ARRAY, field, "an array of dimensions");
        List<Long> dims = new ArrayList<>();
        r.beginArray();
        while (r.hasNext()) {
            if (dims.size() >= 16) throw InferenceError.invalid(field + " has more than 16 dimensions");
            expect(r, JsonToken.NUMBER, field, "an array of whole numbers");
            String text = r.nextString();
            long d;
            try {
                d = Long.parseLong(text);
            } catch (NumberFormatException e) {
                throw InferenceError.invalid(field + " holds " + ServedModel.abbreviate(text) + ", which is not a whole number of at most 19 digits");
            }
            if (d < 0) throw InferenceError.invalid(field + " holds " + d + "; dimensions are 0 or more");
            dims.add(d);
        }
        r.endArray();
        return dims;
    }

    private static String string(JsonReader r, String field) throws IOException {
        expect(r, JsonToken.STRING, field, "a string");
        String s = r.nextString();
        if (s.length() > 1024) throw InferenceError.invalid(field + " is " + s.length() + " characters long; the limit is 1024");
        return s;
    }

    private static boolean bool(JsonReader r, String field) throws IOException {
        expect(r, JsonToken.BOOLEAN, field, "true or false");
        return r.nextBoolean();
    }

    private static void expect(JsonReader r, JsonToken token, String field, String what) throws IOException {
        JsonToken t = r.peek();
        if (t != token) throw InferenceError.invalid(field + " is " + t.toString().toLowerCase(java.util.Locale.ROOT) + "; it must be " + what);
    }

    /** A response body: the JSON header, then the binary outputs in order; {@code headerLength} says where the JSON ends (-1: no binary part). */
    record Encoded(byte[] body, int headerLength) {}

    static Encoded encode(Server.Result result, Decoded decoded) {
        ByteArrayOutputStream json = new ByteArrayOutputStream();
        List<Tensor> binary = new ArrayList<>();
        try (JsonWriter w = new JsonWriter(new OutputStreamWriter(json, StandardCharsets.UTF_8))) {
            w.setStrictness(Strictness.LENIENT); // NaN and infinities as JavaScript writes them rather than a failure
            w.beginObject();
            w.name("model_name").value(result.model().name);
            w.name("model_version").value(ServedModel.VERSION);
            if (!result.id().isEmpty()) w.name("id").value(result.id());
            w.name("outputs").beginArray();
            for (Map.Entry<String, Tensor> e : result.outputs().entrySet()) {
                Tensor t = e.getValue();
                w.beginObject().name("name").value(e.getKey()).name("datatype").value("FP32").name("shape").beginArray();
                for (int d : t.shape().dims()) w.value(d);
                w.endArray();
                if (decoded.binary(e.getKey())) {
                    w.name("parameters").beginObject().name("binary_data_size").value(4L * t.size()).endObject();
                    binary.add(t);
                } else {
                    w.name("data").beginArray();
                    for (float v : t.data()) w.jsonValue(Float.toString(v));
                    w.endArray();
                }
                w.endObject();
            }
            w.endArray().endObject();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        if (binary.isEmpty()) return new Encoded(json.toByteArray(), -1);
        int header = json.size();
        long total = header;
        for (Tensor t : binary) total += 4L * t.size();
        ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(total)).order(ByteOrder.LITTLE_ENDIAN);
        out.put(json.toByteArray());
        // asFloatBuffer does not move the parent's position: place each tensor by hand.
        int at = header;
        for (Tensor t : binary) {
            out.position(at);
            out.asFloatBuffer().put(t.data());
            at += 4 * t.size();
        }
        return new Encoded(out.array(), header);
    }

    static byte[] error(String message) {
        return json(w -> w.name("error").value(message));
    }

    interface Fields {
        void write(JsonWriter w) throws IOException;
    }

    /** A small JSON object. */
    static byte[] json(Fields fields) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonWriter w = new JsonWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8))) {
            w.beginObject();
            fields.write(w);
            w.endObject();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return out.toByteArray();
    }
}
