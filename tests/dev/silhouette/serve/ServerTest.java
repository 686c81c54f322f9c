package dev.silhouette.serve;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.ByteString;
import dev.silhouette.api.Model;
import dev.silhouette.api.Session;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.TestPlans;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import inference.GRPCInferenceServiceGrpc;
import inference.OpenInferenceGrpc.InferTensorContents;
import inference.OpenInferenceGrpc.ModelInferRequest;
import inference.OpenInferenceGrpc.ModelInferResponse;
import inference.OpenInferenceGrpc.ModelMetadataRequest;
import inference.OpenInferenceGrpc.ModelMetadataResponse;
import inference.OpenInferenceGrpc.ModelReadyRequest;
import inference.OpenInferenceGrpc.ServerLiveRequest;
import inference.OpenInferenceGrpc.ServerMetadataRequest;
import inference.OpenInferenceGrpc.ServerReadyRequest;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;


/**
 * A server on ephemeral ports against clients that know nothing of Silhouette: the JDK's HttpClient
 * speaking the protocol's JSON, and the grpc-java stub generated from the protocol's proto. Results are
 * compared bit for bit with {@link Session#run} on the same model.
 */
public class ServerTest {
    static final long BODY_LIMIT = 1 << 20;
    static final Model FP32 = Model.load(ModelLoader.BUNDLED);
    static final Model REGION = FP32.withPlan(TestPlans.plan(Passes.foldBatchNorm(FP32.graph()), new Plans.Receiving.Region(RegionPolicy.parse("2:50,3:30,4:20"),
            false, 4, Op.Interpolate.Mode.NEAREST, Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD), (v, b) -> 4f));
    static final BatchConfig BATCHING = new BatchConfig(8, true, Duration.ofMillis(1), 64, Duration.ofSeconds(30), 1);

    Server server;
    HttpClient http;
    ManagedChannel channel;
    GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub grpc;
    Session fp32, region;

    @BeforeClass
    public void start() {
        server = Server.start(new Server.Options(0, 0, 0, BODY_LIMIT), List.of(new Server.ModelSpec("fp", FP32, "cpu", 0, BATCHING),
                new Server.ModelSpec("rq", REGION, "cpu", 0, BATCHING)));
        http = HttpClient.newHttpClient();
        channel = NettyChannelBuilder.forAddress("localhost", server.grpcPort()).usePlaintext().build();
        grpc = GRPCInferenceServiceGrpc.newBlockingStub(channel);
        fp32 = FP32.session("cpu");
        region = REGION.session("cpu");
    }

    @AfterClass(alwaysRun = true)
    public void stop() {
        if (channel != null) channel.shutdownNow();
        if (server != null) server.close();
        if (fp32 != null) fp32.close();
        if (region != null) region.close();
    }

    record Reply(int status, byte[] body, java.net.http.HttpHeaders headers) {
        JsonObject json() {
            return JsonParser.parseString(new String(body, StandardCharsets.UTF_8)).getAsJsonObject();
        }

        String error() {
            return json().get("error").getAsString();
        }
    }

    Reply get(String path) throws Exception {
        HttpResponse<byte[]> r = http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + server.httpPort() + path)).GET().build(),
                HttpResponse.BodyHandlers.ofByteArray());
        return new Reply(r.statusCode(), r.body(), r.headers());
    }

    Reply post(String path, byte[] body, String... headers) throws Exception {
        return post(server.httpPort(), path, body, headers);
    }

    Reply post(int port, String path, byte[] body, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://localhost:" + port + path)).POST(HttpRequest.BodyPublishers.ofByteArray(body));
        for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        HttpResponse<byte[]> r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
        return new Reply(r.statusCode(), r.body(), r.headers());
    }

    static Tensor images(int n, long seed) {
        return Tensor.uniform(Shape.of(n, 1, 28, 28), 0, 1, seed);
    }

    static String jsonRequest(String id, Tensor x, String outputs) {
        StringBuilder data = new StringBuilder();
        for (float v : x.data()) data.append(data.isEmpty() ? "" : ",").append(v);
        return "{\"id\":\"" + id + "\",\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":" + Arrays.toString(x.shape().dims())
                + ",\"data\":[" + data + "]}]" + (outputs == null ? "" : ",\"outputs\":" + outputs) + "}";
    }

    static float[] floats(JsonArray a) {
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = Float.parseFloat(a.get(i).getAsString());
        return out;
    }

    static List<Long> shape(JsonElement e) {
        List<Long> s = new ArrayList<>();
        for (JsonElement d : e.getAsJsonArray()) s.add(d.getAsLong());
        return s;
    }

    static List<Long> dims(Tensor t) {
        List<Long> s = new ArrayList<>();
        for (int d : t.shape().dims()) s.add((long) d);
        return s;
    }

    @Test
    public void restHealthAndMetadata() throws Exception {
        Reply live = get("/v2/health/live"), ready = get("/v2/health/ready");
        assertEquals(live.status(), 200);
        assertTrue(live.json().get("live").getAsBoolean());
        assertEquals(ready.status(), 200);
        JsonObject meta = get("/v2").json();
        assertEquals(meta.get("name").getAsString(), "silhouette");
        assertTrue(meta.get("extensions").getAsJsonArray().contains(new com.google.gson.JsonPrimitive("binary_tensor_data")));
        Reply model = get("/v2/models/rq");
        assertEquals(model.status(), 200);
        JsonObject m = model.json();
        assertEquals(m.get("name").getAsString(), "rq");
        JsonObject in = m.get("inputs").getAsJsonArray().get(0).getAsJsonObject();
        assertEquals(in.get("name").getAsString(), "input");
        assertEquals(in.get("datatype").getAsString(), "FP32");
        assertEquals(shape(in.get("shape")), List.of(-1L, 1L, 28L, 28L));
        List<String> outputs = new ArrayList<>();
        for (JsonElement o : m.get("outputs").getAsJsonArray()) {
            JsonObject t = o.getAsJsonObject();
            outputs.add(t.get("name").getAsString());
            assertEquals(shape(t.get("shape")), REGION.outputs().stream().filter(i -> i.name().equals(t.get("name").getAsString())).findFirst().orElseThrow().shape());
        }
        assertEquals(outputs, REGION.graph().outputs());
        assertEquals(get("/v2/models/fp/ready").status(), 200);
        assertEquals(get("/v2/models/fp/versions/1/ready").status(), 200);
    }

    @Test
    public void restJsonInferenceIsSessionRunBitForBit() throws Exception {
        for (Map.Entry<String, Session> e : Map.of("fp", fp32, "rq", region).entrySet()) {
            Tensor x = images(3, 7);
            Reply r = post("/v2/models/" + e.getKey() + "/infer", jsonRequest("req-42", x, null).getBytes(StandardCharsets.UTF_8));
            assertEquals(r.status(), 200, new String(r.body(), StandardCharsets.UTF_8));
            JsonObject body = r.json();
            assertEquals(body.get("id").getAsString(), "req-42");
            assertEquals(body.get("model_name").getAsString(), e.getKey());
            Map<String, Tensor> expected = e.getValue().run(Map.of("input", x));
            JsonArray outputs = body.get("outputs").getAsJsonArray();
            assertEquals(outputs.size(), expected.size());
            for (JsonElement o : outputs) {
                JsonObject t = o.getAsJsonObject();
                Tensor want = expected.get(t.get("name").getAsString());
                assertEquals(t.get("datatype").getAsString(), "FP32");
                assertEquals(shape(t.get("shape")), dims(want));
                assertEquals(floats(t.get("data").getAsJsonArray()), want.data(), e.getKey() + " " + t.get("name"));
            }
        }
        // Only the silhouette, asked by name.
        Tensor x = images(2, 8);
        Reply r = post("/v2/models/rq/infer", jsonRequest("s", x, "[{\"name\":\"silhouette\"}]").getBytes(StandardCharsets.UTF_8));
        JsonArray outputs = r.json().get("outputs").getAsJsonArray();
        assertEquals(outputs.size(), 1);
        assertEquals(floats(outputs.get(0).getAsJsonObject().get("data").getAsJsonArray()), region.run(Map.of("input", x)).get("silhouette").data());
    }

    @Test
    public void restBinaryTensorDataBothWays() throws Exception {
        Tensor x = images(2, 9);
        byte[] header = ("{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[2,1,28,28],\"parameters\":{\"binary_data_size\":" + 4 * x.size()
                + "}}],\"outputs\":[{\"name\":\"fc\",\"parameters\":{\"binary_data\":true}},{\"name\":\"silhouette\"}]}").getBytes(StandardCharsets.UTF_8);
        ByteBuffer body = ByteBuffer.allocate(header.length + 4 * x.size()).order(ByteOrder.LITTLE_ENDIAN);
        body.put(header);
        for (float v : x.data()) body.putFloat(v);
        Reply r = post("/v2/models/fp/infer", body.array(), "Inference-Header-Content-Length", Integer.toString(header.length));
        assertEquals(r.status(), 200, new String(r.body(), StandardCharsets.UTF_8));
        int jsonLength = Integer.parseInt(r.headers().firstValue("Inference-Header-Content-Length").orElseThrow());
        JsonObject json = JsonParser.parseString(new String(r.body(), 0, jsonLength, StandardCharsets.UTF_8)).getAsJsonObject();
        Map<String, Tensor> expected = fp32.run(Map.of("input", x));
        JsonObject fc = json.get("outputs").getAsJsonArray().get(0).getAsJsonObject();
        assertEquals(fc.get("name").getAsString(), "fc");
        int size = fc.get("parameters").getAsJsonObject().get("binary_data_size").getAsInt();
        assertEquals(size, 4 * expected.get("fc").size());
        assertEquals(r.body().length, jsonLength + size);
        float[] got = new float[size / 4];
        ByteBuffer.wrap(r.body(), jsonLength, size).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(got);
        assertEquals(got, expected.get("fc").data());
        JsonObject sil = json.get("outputs").getAsJsonArray().get(1).getAsJsonObject();
        assertEquals(floats(sil.get("data").getAsJsonArray()), expected.get("silhouette").data(), "the output not asked as binary comes as JSON");
    }

    @Test
    public void otherNumericDatatypesAreConvertedToFp32() throws Exception {
        // Whole-number pixels as UINT8 (JSON) and as FP64 (binary) give what the same values give as FP32.
        Tensor x = Tensor.zeros(1, 1, 28, 28);
        for (int i = 0; i < x.size(); i++) x.data()[i] = (i * 37) % 256;
        StringBuilder data = new StringBuilder();
        for (float v : x.data()) data.append(data.isEmpty() ? "" : ",").append((int) v);
        String uint8 = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"UINT8\",\"shape\":[1,1,28,28],\"data\":[" + data + "]}],\"outputs\":[{\"name\":\"fc\"}]}";
        Reply r = post("/v2/models/fp/infer", uint8.getBytes(StandardCharsets.UTF_8));
        assertEquals(r.status(), 200, new String(r.body(), StandardCharsets.UTF_8));
        float[] want = fp32.run(Map.of("input", x)).get("fc").data();
        assertEquals(floats(r.json().get("outputs").getAsJsonArray().get(0).getAsJsonObject().get("data").getAsJsonArray()), want);
        byte[] header = ("{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP64\",\"shape\":[1,1,28,28],\"parameters\":{\"binary_data_size\":" + 8 * x.size()
                + "}}],\"outputs\":[{\"name\":\"fc\"}]}").getBytes(StandardCharsets.UTF_8);
        ByteBuffer body = ByteBuffer.allocate(header.length + 8 * x.size()).order(ByteOrder.LITTLE_ENDIAN).put(header);
        for (float v : x.data()) body.putDouble(v);
        r = post("/v2/models/fp/infer", body.array(), "Inference-Header-Content-Length", Integer.toString(header.length));
        assertEquals(r.status(), 200, new String(r.body(), StandardCharsets.UTF_8));
        assertEquals(floats(r.json().get("outputs").getAsJsonArray().get(0).getAsJsonObject().get("data").getAsJsonArray()), want);
    }

    /** One malformed request, the status it must get and words its error must hold. */
    record Bad(String what, String path, byte[] body, String[] headers, int status, String message) {
        static Bad json(String what, String path, String body, int status, String message) {
            return new Bad(what, path, body.getBytes(StandardCharsets.UTF_8), new String[0], status, message);
        }
    }

    static String input(String fields) {
        return "{\"inputs\":[{" + fields + "}]}";
    }

    static final String ONE_IMAGE = "\"data\":" + Arrays.toString(new float[784]);

    static List<Bad> malformed() {
        String infer = "/v2/models/fp/infer";
        byte[] header = input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28],\"parameters\":{\"binary_data_size\":3136}").getBytes(StandardCharsets.UTF_8);
        byte[] lying = Arrays.copyOf(header, header.length + 1000);
        List<Bad> bad = new ArrayList<>(List.of(
                Bad.json("truncated JSON", infer, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,1,", 400, "not valid JSON"),
                Bad.json("not an object", infer, "[1,2,3]", 400, "not a JSON object"),
                Bad.json("empty body", infer, "", 400, "not valid JSON"),
                Bad.json("two documents", infer, "{} {}", 400, "not valid JSON"),
                Bad.json("no inputs", infer, "{\"id\":\"x\"}", 400, "inputs is missing"),
                Bad.json("inputs not an array", infer, "{\"inputs\":{}}", 400, "inputs is begin_object; it must be an array"),
                Bad.json("no name", infer, input("\"datatype\":\"FP32\",\"shape\":[1,1,28,28]," + ONE_IMAGE), 400, "inputs[0].name is missing"),
                Bad.json("unknown input", infer, input("\"name\":\"image\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28]," + ONE_IMAGE), 400,
                        "inputs[0].name 'image' is not an input of model fp; inputs are [input]"),
                Bad.json("no shape", infer, input("\"name\":\"input\",\"datatype\":\"FP32\"," + ONE_IMAGE), 400, "inputs[0].shape is missing"),
                Bad.json("wrong shape", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,27]," + ONE_IMAGE), 400,
                        "inputs[0].shape [1, 1, 28, 27] does not fit input 'input', which takes [-1, 1, 28, 28]"),
                Bad.json("wrong rank", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,784]," + ONE_IMAGE), 400, "inputs[0].shape [1, 784] does not fit"),
                Bad.json("negative dimension", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,-1,28,28]," + ONE_IMAGE), 400, "dimensions are 0 or more"),
                Bad.json("fractional dimension", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1.5,1,28,28]," + ONE_IMAGE), 400, "not a whole number"),
                Bad.json("huge declared batch", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1000000000000,1,28,28]," + ONE_IMAGE), 400,
                        "batch 1000000000000 is outside 1 to model fp's max_batch_size 8"),
                Bad.json("huge dimension", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[99999999999999999999999,1,28,28]," + ONE_IMAGE), 400,
                        "not a whole number of at most 19 digits"),
                Bad.json("no datatype", infer, input("\"name\":\"input\",\"shape\":[1,1,28,28]," + ONE_IMAGE), 400, "inputs[0].datatype is missing"),
                Bad.json("BYTES", infer, input("\"name\":\"input\",\"datatype\":\"BYTES\",\"shape\":[1,1,28,28]," + ONE_IMAGE), 400,
                        "inputs[0].datatype BYTES cannot feed a float32 model input"),
                Bad.json("unknown datatype", infer, input("\"name\":\"input\",\"datatype\":\"FLOAT\",\"shape\":[1,1,28,28]," + ONE_IMAGE), 400,
                        "inputs[0].datatype 'FLOAT' is not a datatype of the protocol"),
                Bad.json("too few values", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28],\"data\":[1,2,3]"), 400,
                        "inputs[0].data holds 3 values; shape [1, 1, 28, 28] needs 784"),
                Bad.json("too many values", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28],\"data\":" + Arrays.toString(new float[785])), 400,
                        "holds more than the 784 values"),
                Bad.json("string value", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28],\"data\":[\"a\"]"), 400,
                        "inputs[0].data holds string where a FP32 number belongs"),
                Bad.json("null data", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28],\"data\":null"), 400, "inputs[0].data is null"),
                Bad.json("INT8 out of range", infer, input("\"name\":\"input\",\"datatype\":\"INT8\",\"shape\":[1,1,28,28],\"data\":[300" + ",0".repeat(783) + "]"), 400,
                        "inputs[0].data holds 300.0, which is not a INT8 value"),
                Bad.json("no data", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28]"), 400, "has neither data nor parameters.binary_data_size"),
                Bad.json("input twice", infer, "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28]," + ONE_IMAGE
                        + "},{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28]," + ONE_IMAGE + "}]}", 400, "inputs[1].name 'input' is given twice"),
                Bad.json("unknown output", infer, "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28]," + ONE_IMAGE
                        + "}],\"outputs\":[{\"name\":\"nope\"}]}", 400, "outputs[0].name 'nope' is not an output of model fp; outputs are [fc, silhouette]"),
                Bad.json("classification", infer, "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28]," + ONE_IMAGE
                        + "}],\"outputs\":[{\"name\":\"fc\",\"parameters\":{\"classification\":3}}]}", 400, "classification extension is not served"),
                Bad.json("inputs twice", infer, "{\"inputs\":[],\"inputs\":[]}", 400, "the request object has 'inputs' twice"),
                Bad.json("data twice", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28]," + ONE_IMAGE + "," + ONE_IMAGE), 400,
                        "inputs[0] has 'data' twice"),
                Bad.json("id not a string", infer, "{\"id\":5,\"inputs\":[]}", 400, "id is number; it must be a string"),
                Bad.json("unknown model", "/v2/models/nope/infer", input("\"name\":\"input\""), 404, "model 'nope' is not served; models: [fp, rq]"),
                Bad.json("unknown version", "/v2/models/fp/versions/7/infer", input("\"name\":\"input\""), 404, "model 'fp' has no version '7'"),
                Bad.json("path-like name", "/v2/models/..%2F..%2Fetc%2Fpasswd/infer", "{}", 400, "is not a model name"),
                Bad.json("dot-dot name", "/v2/models/%2E%2E/infer", "{}", 400, "'..' is not a model name"),
                Bad.json("unknown endpoint", "/v2/models/fp/explain", "{}", 404, "no such endpoint"),
                Bad.json("not the protocol", "/v1/models/fp:predict", "{}", 404, "under /v2"),
                new Bad("binary lengths that lie", infer, lying, new String[]{"Inference-Header-Content-Length", Integer.toString(header.length)}, 400,
                        "add up to 3136 bytes, but 1000 bytes follow the " + header.length + "-byte JSON header"),
                new Bad("binary size against the shape", infer, input("\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28],\"parameters\":{\"binary_data_size\":100}")
                        .getBytes(StandardCharsets.UTF_8), new String[0], 400, "binary_data_size 100 does not match shape [1, 1, 28, 28] of FP32, which needs 3136 bytes"),
                new Bad("header length past the body", infer, "{}".getBytes(StandardCharsets.UTF_8), new String[]{"Inference-Header-Content-Length", "99"}, 400,
                        "Inference-Header-Content-Length 99 is outside the body's 2 bytes"),
                new Bad("header length not a number", infer, "{}".getBytes(StandardCharsets.UTF_8), new String[]{"Inference-Header-Content-Length", "lots"}, 400,
                        "Inference-Header-Content-Length 'lots' is not a byte count"),
                new Bad("body over the limit", infer, new byte[(int) BODY_LIMIT + 1], new String[0], 413, "over the request body limit of " + BODY_LIMIT + " bytes")));
        return bad;
    }

    @Test
    public void everyMalformedRequestGetsA4xxNamingItsFault() throws Exception {
        for (Bad b : malformed()) {
            Reply r = post(b.path(), b.body(), b.headers());
            assertEquals(r.status(), b.status(), b.what() + ": " + new String(r.body(), StandardCharsets.UTF_8));
            assertTrue(r.error().contains(b.message()), b.what() + ": '" + b.message() + "' missing from: " + r.error());
        }
        assertEquals(get("/v2/models/fp/infer").status(), 405);
        // And the server keeps serving.
        Tensor x = images(1, 3);
        Reply ok = post("/v2/models/fp/infer", jsonRequest("after", x, "[{\"name\":\"fc\"}]").getBytes(StandardCharsets.UTF_8));
        assertEquals(ok.status(), 200);
        assertEquals(floats(ok.json().get("outputs").getAsJsonArray().get(0).getAsJsonObject().get("data").getAsJsonArray()),
                fp32.run(Map.of("input", x)).get("fc").data());
        String metrics = get(server.metricsPort(), "/metrics");
        // Every refusal that named model fp is counted, whether the codec or the server refused it.
        long fpFaults = malformed().stream().filter(b -> b.path().equals("/v2/models/fp/infer")).count();
        java.util.regex.Matcher invalid = java.util.regex.Pattern.compile("silhouette_request_failure_total\\{model=\"fp\",reason=\"invalid\"} (\\d+)").matcher(metrics);
        java.util.regex.Matcher tooLarge = java.util.regex.Pattern.compile("silhouette_request_failure_total\\{model=\"fp\",reason=\"too_large\"} (\\d+)").matcher(metrics);
        assertTrue(invalid.find() && tooLarge.find(), metrics);
        assertTrue(Long.parseLong(invalid.group(1)) + Long.parseLong(tooLarge.group(1)) >= fpFaults, metrics);
    }

    @Test
    public void generatedMalformedRequestsOfEveryKindAreRefusedWithA4xx() {
        List<Malformed.Request> requests = Malformed.generate(8 * 40, 5, "fp", FP32.inputs().getFirst());
        LoadTest.MalformedResult r = LoadTest.malformed(server.httpPort(), requests, 8);
        assertEquals(r.notRefusedProperly(), 0, r.firstBadAnswer());
        assertEquals(r.statusesByKind().keySet(), new java.util.TreeSet<>(Malformed.KINDS));
        for (var e : r.statusesByKind().entrySet()) {
            for (int status : e.getValue().keySet()) assertTrue(status >= 400 && status < 500, e.getKey() + " got " + status);
        }
        assertTrue(LoadTest.restMatchesSession(server.httpPort(), "fp", fp32), "the server still answers exactly");
    }

    String get(int port, String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + port + path)).GET().build(), HttpResponse.BodyHandlers.ofString()).body();
    }

    @Test
    public void grpcMetadataAndInferenceBitForBit() {
        assertTrue(grpc.serverLive(ServerLiveRequest.getDefaultInstance()).getLive());
        assertTrue(grpc.serverReady(ServerReadyRequest.getDefaultInstance()).getReady());
        assertEquals(grpc.serverMetadata(ServerMetadataRequest.getDefaultInstance()).getName(), "silhouette");
        assertTrue(grpc.modelReady(ModelReadyRequest.newBuilder().setName("rq").build()).getReady());
        ModelMetadataResponse meta = grpc.modelMetadata(ModelMetadataRequest.newBuilder().setName("rq").build());
        assertEquals(meta.getInputs(0).getName(), "input");
        assertEquals(meta.getInputs(0).getDatatype(), "FP32");
        assertEquals(meta.getInputs(0).getShapeList(), List.of(-1L, 1L, 28L, 28L));
        assertEquals(meta.getOutputsList().stream().map(ModelMetadataResponse.TensorMetadata::getName).toList(), REGION.graph().outputs());

        Tensor x = images(2, 11);
        ByteBuffer raw = ByteBuffer.allocate(4 * x.size()).order(ByteOrder.LITTLE_ENDIAN);
        raw.asFloatBuffer().put(x.data());
        ModelInferRequest.InferInputTensor.Builder in = ModelInferRequest.InferInputTensor.newBuilder().setName("input").setDatatype("FP32").addAllShape(dims(x));
        ModelInferRequest rawRequest = ModelInferRequest.newBuilder().setModelName("rq").setId("g1").addInputs(in)
                .addRawInputContents(ByteString.copyFrom(raw.array())).build();
        InferTensorContents.Builder contents = InferTensorContents.newBuilder();
        for (float v : x.data()) contents.addFp32Contents(v);
        ModelInferRequest typedRequest = ModelInferRequest.newBuilder().setModelName("rq").setId("g2").addInputs(in.clone().setContents(contents))
                .addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName("silhouette")).build();
        Map<String, Tensor> expected = region.run(Map.of("input", x));

        ModelInferResponse r = grpc.modelInfer(rawRequest);
        assertEquals(r.getId(), "g1");
        assertEquals(r.getOutputsCount(), expected.size());
        for (int i = 0; i < r.getOutputsCount(); i++) {
            Tensor want = expected.get(r.getOutputs(i).getName());
            assertEquals(r.getOutputs(i).getShapeList(), dims(want));
            assertEquals(decode(r.getRawOutputContents(i)), want.data(), r.getOutputs(i).getName());
        }
        ModelInferResponse typed = grpc.modelInfer(typedRequest);
        assertEquals(typed.getOutputsCount(), 1);
        assertEquals(typed.getOutputs(0).getName(), "silhouette");
        assertEquals(decode(typed.getRawOutputContents(0)), expected.get("silhouette").data());
    }

    static float[] decode(ByteString bytes) {
        float[] out = new float[bytes.size() / 4];
        bytes.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    @Test
    public void grpcErrorsCarryTheProtocolsCodes() {
        ModelInferRequest.InferInputTensor.Builder in = ModelInferRequest.InferInputTensor.newBuilder().setName("input").setDatatype("FP32").addAllShape(List.of(1L, 1L, 28L, 28L));
        assertCode(() -> grpc.modelInfer(ModelInferRequest.newBuilder().setModelName("nope").addInputs(in).build()), Status.Code.NOT_FOUND, "model 'nope' is not served");
        assertCode(() -> grpc.modelMetadata(ModelMetadataRequest.newBuilder().setName("../fp").build()), Status.Code.INVALID_ARGUMENT, "is not a model name");
        assertCode(() -> grpc.modelInfer(ModelInferRequest.newBuilder().setModelName("fp").addInputs(in.clone().clearShape().addAllShape(List.of(1L, 28L, 28L))).build()),
                Status.Code.INVALID_ARGUMENT, "inputs[0].shape [1, 28, 28] does not fit input 'input'");
        assertCode(() -> grpc.modelInfer(ModelInferRequest.newBuilder().setModelName("fp").addInputs(in).addRawInputContents(ByteString.copyFrom(new byte[12])).build()),
                Status.Code.INVALID_ARGUMENT, "12 bytes of FP32 data, the shape needs 784 x 4 = 3136 bytes");
        assertCode(() -> grpc.modelInfer(ModelInferRequest.newBuilder().setModelName("fp").addInputs(in.clone().setContents(InferTensorContents.newBuilder().addFp32Contents(1))).build()),
                Status.Code.INVALID_ARGUMENT, "inputs[0].contents.fp32_contents holds 1 values; the shape needs 784");
        assertCode(() -> grpc.modelInfer(ModelInferRequest.newBuilder().setModelName("fp").addInputs(in.clone().setDatatype("BOOL")).build()),
                Status.Code.INVALID_ARGUMENT, "inputs[0].datatype BOOL cannot feed a float32 model input");
        assertCode(() -> grpc.modelInfer(ModelInferRequest.newBuilder().setModelName("fp").addInputs(in)
                        .addRawInputContents(ByteString.copyFrom(new byte[3136])).addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName("x")).build()),
                Status.Code.INVALID_ARGUMENT, "outputs[0].name 'x' is not an output");
        assertCode(() -> grpc.modelInfer(ModelInferRequest.newBuilder().setModelName("fp").addInputs(in).addRawInputContents(ByteString.copyFrom(new byte[(int) BODY_LIMIT + 8])).build()),
                Status.Code.RESOURCE_EXHAUSTED, "");
    }

    static void assertCode(Runnable call, Status.Code code, String message) {
        StatusRuntimeException e = expectThrows(StatusRuntimeException.class, call::run);
        assertEquals(e.getStatus().getCode(), code, String.valueOf(e.getStatus().getDescription()));
        assertTrue(String.valueOf(e.getStatus().getDescription()).contains(message), "'" + message + "' missing from: " + e.getStatus().getDescription());
    }

    @Test
    public void aFullQueueAnswers503AndUnavailableAtOnceThenDrainRunsTheRest() throws Exception {
        HeldBackend held = new HeldBackend();
        BatchConfig one = new BatchConfig(8, true, Duration.ZERO, 1, Duration.ofMinutes(5), 1);
        try (Server s = Server.start(new Server.Options(0, 0, -1, BODY_LIMIT), List.of(new Server.ModelSpec("h", FP32, "cpu", 0, one)), AccessLog.OFF,
                spec -> spec.model().session(held));
             var ch = new Closing(NettyChannelBuilder.forAddress("localhost", s.grpcPort()).usePlaintext().build())) {
            Tensor a = images(1, 1), b = images(1, 2);
            CompletableFuture<HttpResponse<String>> first = http.sendAsync(request(s, a), HttpResponse.BodyHandlers.ofString());
            held.awaitEntered();
            CompletableFuture<HttpResponse<String>> second = http.sendAsync(request(s, b), HttpResponse.BodyHandlers.ofString());
            Batcher batcher = s.find("h", null, "test").batcher;
            while (batcher.pending() < 1) Thread.onSpinWait();
            HttpResponse<String> refused = http.send(request(s, a), HttpResponse.BodyHandlers.ofString());
            assertEquals(refused.statusCode(), 503, refused.body());
            assertTrue(refused.body().contains("queue is full (queue_size 1)"), refused.body());
            var stub = GRPCInferenceServiceGrpc.newBlockingStub(ch.channel);
            ByteBuffer raw = ByteBuffer.allocate(3136).order(ByteOrder.LITTLE_ENDIAN);
            assertCode(() -> stub.modelInfer(ModelInferRequest.newBuilder().setModelName("h").addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("input")
                    .setDatatype("FP32").addAllShape(List.of(1L, 1L, 28L, 28L))).addRawInputContents(ByteString.copyFrom(raw.array())).build()),
                    Status.Code.UNAVAILABLE, "queue is full");
            // SIGTERM's path: not ready at once, new requests refused, what was accepted still answered.
            CompletableFuture<Boolean> drained = CompletableFuture.supplyAsync(() -> s.drain(Duration.ofMinutes(1)));
            while (s.ready()) Thread.onSpinWait();
            HttpResponse<String> late = http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + s.httpPort() + "/v2/health/ready")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(late.statusCode(), 503);
            held.open();
            assertTrue(drained.join());
            for (var f : List.of(first, second)) assertEquals(f.join().statusCode(), 200, f.join().body());
            assertEquals(floats(JsonParser.parseString(second.join().body()).getAsJsonObject().get("outputs").getAsJsonArray().get(0).getAsJsonObject()
                    .get("data").getAsJsonArray()), fp32.run(Map.of("input", b)).get("fc").data());
        }
    }

    @Test
    public void notReadyWhileLoadingThenReady() throws Exception {
        try (Server s = Server.open(new Server.Options(0, -1, -1, BODY_LIMIT), AccessLog.OFF)) {
            String base = "http://localhost:" + s.httpPort();
            HttpResponse<String> ready = http.send(HttpRequest.newBuilder(URI.create(base + "/v2/health/ready")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(ready.statusCode(), 503);
            assertEquals(http.send(HttpRequest.newBuilder(URI.create(base + "/v2/health/live")).build(), HttpResponse.BodyHandlers.ofString()).statusCode(), 200);
            HttpResponse<String> early = http.send(HttpRequest.newBuilder(URI.create(base + "/v2/models/fp/infer"))
                    .POST(HttpRequest.BodyPublishers.ofString(jsonRequest("e", images(1, 0), null))).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(early.statusCode(), 503, early.body());
            assertTrue(early.body().contains("not loaded yet"), early.body());
            s.load(List.of(new Server.ModelSpec("fp", FP32, "cpu", 0, BATCHING)));
            assertEquals(http.send(HttpRequest.newBuilder(URI.create(base + "/v2/health/ready")).build(), HttpResponse.BodyHandlers.ofString()).statusCode(), 200);
        }
    }

    record Closing(ManagedChannel channel) implements AutoCloseable {
        @Override
        public void close() {
            channel.shutdownNow();
        }
    }

    static HttpRequest request(Server s, Tensor x) {
        return HttpRequest.newBuilder(URI.create("http://localhost:" + s.httpPort() + "/v2/models/h/infer"))
                .POST(HttpRequest.BodyPublishers.ofString(jsonRequest("q", x, "[{\"name\":\"fc\"}]"))).build();
    }

    @Test
    public void concurrentRequestsAreAnsweredEachWithItsOwnResult() throws Exception {
        List<Tensor> inputs = new ArrayList<>();
        List<CompletableFuture<HttpResponse<String>>> replies = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            Tensor x = images(1 + i % 2, 300 + i);
            inputs.add(x);
            replies.add(http.sendAsync(HttpRequest.newBuilder(URI.create("http://localhost:" + server.httpPort() + "/v2/models/rq/infer"))
                    .POST(HttpRequest.BodyPublishers.ofString(jsonRequest("c" + i, x, "[{\"name\":\"fc\"}]"))).build(), HttpResponse.BodyHandlers.ofString()));
        }
        for (int i = 0; i < inputs.size(); i++) {
            JsonObject body = JsonParser.parseString(replies.get(i).join().body()).getAsJsonObject();
            assertEquals(body.get("id").getAsString(), "c" + i);
            assertEquals(floats(body.get("outputs").getAsJsonArray().get(0).getAsJsonObject().get("data").getAsJsonArray()),
                    region.run(Map.of("input", inputs.get(i))).get("fc").data(), "request " + i);
        }
        String metrics = get(server.metricsPort(), "/metrics");
        assertTrue(metrics.contains("# TYPE silhouette_batch_size histogram"), metrics);
        assertFalse(metrics.contains("silhouette_request_success_total{model=\"rq\"} 0\n"), metrics);
    }

}
