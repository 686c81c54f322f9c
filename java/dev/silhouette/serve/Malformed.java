package dev.silhouette.serve;

import dev.silhouette.api.TensorInfo;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Malformed inference requests for a model, reproducible from a seed, each of which the server must
 * answer with a 4xx naming the fault: truncated JSON, wrong shapes, wrong datatypes, huge declared sizes,
 * binary lengths that lie, unknown models and outputs, path-like model names. Used by the load tool's
 * malformed phase and by the tests.
 */
public final class Malformed {
    private Malformed() {}

    /** One request: where it goes, its headers (name, value, ...), its body and which fault it carries. */
    public record Request(String kind, String path, List<String> headers, byte[] body) {}

    public static final List<String> KINDS = List.of("truncated-json", "wrong-shape", "wrong-datatype", "huge-declared-size", "lying-binary-length",
            "unknown-model", "unknown-output", "path-like-name");

    /** {@code count} requests cycling through {@link #KINDS}, for model {@code model} whose input is {@code input}. */
    public static List<Request> generate(int count, long seed, String model, TensorInfo input) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int[] sample = input.sampleDims();
        int values = 1;
        for (int d : sample) values *= d;
        String infer = "/v2/models/" + model + "/infer";
        String valid = json(input.name(), "FP32", shape(1, sample), values, rnd);
        List<Request> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            String kind = KINDS.get(i % KINDS.size());
            out.add(switch (kind) {
                case "truncated-json" -> {
                    byte[] b = valid.getBytes(StandardCharsets.UTF_8);
                    yield new Request(kind, infer, List.of(), Arrays.copyOf(b, rnd.nextInt(b.length - 1)));
                }
                case "wrong-shape" -> {
                    int[] dims = shape(1, sample);
                    int axis = 1 + rnd.nextInt(dims.length - 1);
                    dims[axis] += 1 + rnd.nextInt(5);
                    yield new Request(kind, infer, List.of(), bytes(json(input.name(), "FP32", dims, values, rnd)));
                }
                case "wrong-datatype" -> {
                    String[] bad = {"BYTES", "BOOL", "BF16", "FLOAT", "fp32", "", "STRING"};
                    yield new Request(kind, infer, List.of(), bytes(json(input.name(), bad[rnd.nextInt(bad.length)], shape(1, sample), values, rnd)));
                }
                case "huge-declared-size" -> {
                    long batch = 1L << (20 + rnd.nextInt(40));
                    String body = "{\"inputs\":[{\"name\":\"" + input.name() + "\",\"datatype\":\"FP32\",\"shape\":" + Arrays.toString(shape(1, sample)).replaceFirst("1", Long.toString(batch))
                            + ",\"parameters\":{\"binary_data_size\":" + batch * 4 * values + "}}]}";
                    yield new Request(kind, infer, List.of(RestEndpoint.HEADER_LENGTH, Integer.toString(bytes(body).length)), bytes(body));
                }
                case "lying-binary-length" -> {
                    byte[] header = bytes("{\"inputs\":[{\"name\":\"" + input.name() + "\",\"datatype\":\"FP32\",\"shape\":" + Arrays.toString(shape(1, sample))
                            + ",\"parameters\":{\"binary_data_size\":" + 4 * values + "}}]}");
                    int delta = (1 + rnd.nextInt(4 * values - 1)) * (rnd.nextBoolean() ? 1 : -1);
                    byte[] body = Arrays.copyOf(header, header.length + 4 * values + delta);
                    yield new Request(kind, infer, List.of(RestEndpoint.HEADER_LENGTH, Integer.toString(header.length)), body);
                }
                case "unknown-model" -> new Request(kind, "/v2/models/no-such-model-" + rnd.nextInt(1_000_000) + "/infer", List.of(), bytes(valid));
                case "unknown-output" -> new Request(kind, infer, List.of(),
                        bytes(valid.substring(0, valid.length() - 1) + ",\"outputs\":[{\"name\":\"no_such_output_" + rnd.nextInt(1000) + "\"}]}"));
                case "path-like-name" -> {
                    String[] names = {"..", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%2F..%2F..%2Fb", "%2E%2E", ".hidden", "x%00y", "%5C..%5Cwindows"};
                    yield new Request(kind, "/v2/models/" + names[rnd.nextInt(names.length)] + "/infer", List.of(), bytes(valid));
                }
                default -> throw new IllegalStateException(kind);
            });
        }
        return out;
    }

    private static int[] shape(int batch, int[] sample) {
        int[] dims = new int[sample.length + 1];
        dims[0] = batch;
        System.arraycopy(sample, 0, dims, 1, sample.length);
        return dims;
    }

    private static String json(String input, String datatype, int[] shape, int values, SplittableRandom rnd) {
        StringBuilder data = new StringBuilder();
        for (int i = 0; i < values; i++) data.append(i == 0 ? "" : ",").append(rnd.nextInt(256) / 255f);
        return "{\"inputs\":[{\"name\":\"" + input + "\",\"datatype\":\"" + datatype + "\",\"shape\":" + Arrays.toString(shape) + ",\"data\":[" + data + "]}]}";
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
