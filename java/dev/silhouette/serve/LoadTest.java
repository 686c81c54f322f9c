package dev.silhouette.serve;

import com.google.protobuf.ByteString;
import dev.silhouette.api.Session;
import dev.silhouette.api.TensorInfo;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import inference.GRPCInferenceServiceGrpc;
import inference.OpenInferenceGrpc.ModelInferRequest;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;

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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A closed-loop load generator in the style of Triton's perf_analyzer: {@code concurrency} clients each
 * send one request, wait for its answer and send the next, for a fixed time; reports throughput and
 * latency percentiles. Targets a server's REST (binary tensor data) or gRPC (raw contents) endpoint, or
 * a {@link Session} in process, the ceiling.
 */
public final class LoadTest {
    private LoadTest() {}

    /** One level's figures: answers per second (samples per second = that times the request batch), latency percentiles in ms, errors by count. */
    public record Level(String target, int concurrency, int requestBatch, long requests, long errors, double seconds, double requestsPerSecond,
                        double samplesPerSecond, double p50Ms, double p90Ms, double p99Ms, double maxMs, String firstError) {}

    /** What one client does per request: run it and throw on a failed answer. */
    private interface Call {
        void run() throws Exception;
    }

    /** Load on a served model over REST. */
    public static Level rest(int port, String model, TensorInfo input, int batch, int concurrency, Duration duration) {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        byte[] body = restBody(input, batch);
        int header = restHeaderLength(input, batch);
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/v2/models/" + model + "/infer"))
                .header(RestEndpoint.HEADER_LENGTH, Integer.toString(header)).POST(HttpRequest.BodyPublishers.ofByteArray(body)).build();
        return run("rest", batch, concurrency, duration, () -> () -> {
            HttpResponse<byte[]> r = http.send(request, HttpResponse.BodyHandlers.ofByteArray());
            if (r.statusCode() != 200) throw new IllegalStateException("HTTP " + r.statusCode() + ": " + new String(r.body(), StandardCharsets.UTF_8));
        });
    }

    /** Load on a served model over gRPC (one channel, as a client process would hold). */
    public static Level grpc(int port, String model, TensorInfo input, int batch, int concurrency, Duration duration) {
        ManagedChannel channel = NettyChannelBuilder.forAddress("localhost", port).usePlaintext().build();
        try {
            var stub = GRPCInferenceServiceGrpc.newBlockingStub(channel);
            ModelInferRequest request = ModelInferRequest.newBuilder().setModelName(model)
                    .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName(input.name()).setDatatype("FP32").addAllShape(shape(input, batch)))
                    .addRawInputContents(ByteString.copyFrom(raw(input, batch))).build();
            return run("grpc", batch, concurrency, duration, () -> () -> stub.modelInfer(request));
        } finally {
            channel.shutdownNow();
        }
    }

    /** How the server answered malformed requests: statuses by kind, and those that were not a 4xx with an error message. */
    public record MalformedResult(int requests, Map<String, Map<Integer, Integer>> statusesByKind, int notRefusedProperly, String firstBadAnswer, double seconds) {}

    /** Sends every request ({@link Malformed}) from {@code concurrency} clients; each must get a 4xx with {@code {"error": "..."}}. */
    public static MalformedResult malformed(int port, List<Malformed.Request> requests, int concurrency) {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        Map<String, Map<Integer, Integer>> statuses = new java.util.concurrent.ConcurrentHashMap<>();
        java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger(), bad = new java.util.concurrent.atomic.AtomicInteger();
        String[] first = {null};
        long start = System.nanoTime();
        CountDownLatch done = new CountDownLatch(concurrency);
        for (int t = 0; t < concurrency; t++) {
            Thread.ofPlatform().daemon().start(() -> {
                try {
                    for (int i = next.getAndIncrement(); i < requests.size(); i = next.getAndIncrement()) {
                        Malformed.Request r = requests.get(i);
                        int status;
                        String body;
                        try {
                            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://localhost:" + port + r.path())).POST(HttpRequest.BodyPublishers.ofByteArray(r.body()));
                            for (int h = 0; h < r.headers().size(); h += 2) b.header(r.headers().get(h), r.headers().get(h + 1));
                            HttpResponse<String> reply = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
                            status = reply.statusCode();
                            body = reply.body();
                        } catch (Exception e) {
                            status = -1;
                            body = String.valueOf(e);
                        }
                        statuses.computeIfAbsent(r.kind(), k -> new java.util.concurrent.ConcurrentHashMap<>()).merge(status, 1, Integer::sum);
                        boolean proper = status >= 400 && status < 500 && body.startsWith("{\"error\":\"") && body.length() > 14;
                        if (!proper && bad.getAndIncrement() == 0) first[0] = r.kind() + " " + r.path() + " -> " + status + " " + body;
                    }
                } finally {
                    done.countDown();
                }
            });
        }
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
        Map<String, Map<Integer, Integer>> sorted = new java.util.TreeMap<>();
        statuses.forEach((k, v) -> sorted.put(k, new java.util.TreeMap<>(v)));
        return new MalformedResult(requests.size(), sorted, bad.get(), first[0], (System.nanoTime() - start) / 1e9);
    }

    /** One REST request (binary in and out) answered exactly as {@code reference} answers it. */
    public static boolean restMatchesSession(int port, String model, Session reference) {
        TensorInfo input = reference.inputs().getFirst();
        try {
            HttpResponse<byte[]> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/v2/models/" + model + "/infer"))
                    .header(RestEndpoint.HEADER_LENGTH, Integer.toString(restHeaderLength(input, 2))).POST(HttpRequest.BodyPublishers.ofByteArray(restBody(input, 2))).build(),
                    HttpResponse.BodyHandlers.ofByteArray());
            if (r.statusCode() != 200) return false;
            int header = Integer.parseInt(r.headers().firstValue(RestEndpoint.HEADER_LENGTH).orElse("-1"));
            Map<String, Tensor> want = reference.run(Map.of(input.name(), images(input, 2)));
            int at = header;
            for (Tensor t : want.values()) {
                float[] got = new float[t.size()];
                ByteBuffer.wrap(r.body(), at, 4 * t.size()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(got);
                if (!Arrays.equals(got, t.data())) return false;
                at += 4 * t.size();
            }
            return at == r.body().length;
        } catch (Exception e) {
            return false;
        }
    }

    /** The ceiling: the same requests straight into a session, no protocol, no queue. */
    public static Level session(Session session, int batch, int concurrency, Duration duration) {
        TensorInfo input = session.inputs().getFirst();
        Tensor x = images(input, batch);
        return run("session", batch, concurrency, duration, () -> () -> session.run(Map.of(input.name(), x)));
    }

    private static Level run(String target, int batch, int concurrency, Duration duration, java.util.function.Supplier<Call> calls) {
        // A short warm-up so that the figures are of compiled code.
        runFor(calls, Math.min(concurrency, 4), Duration.ofMillis(Math.min(1000, duration.toMillis() / 4)), null);
        long[][] latencies = new long[concurrency][];
        AtomicLong errors = new AtomicLong();
        String[] firstError = {null};
        long start = System.nanoTime();
        int[] counts = runFor(calls, concurrency, duration, new Recorder(latencies, errors, firstError));
        double seconds = (System.nanoTime() - start) / 1e9;
        int total = 0;
        for (int c : counts) total += c;
        long[] all = new long[total];
        int at = 0;
        for (int i = 0; i < concurrency; i++) {
            System.arraycopy(latencies[i], 0, all, at, counts[i]);
            at += counts[i];
        }
        Arrays.sort(all);
        long ok = total - errors.get();
        return new Level(target, concurrency, batch, total, errors.get(), seconds, ok / seconds, ok * batch / seconds, percentile(all, 0.50), percentile(all, 0.90),
                percentile(all, 0.99), all.length == 0 ? 0 : all[all.length - 1] / 1e6, firstError[0]);
    }

    private record Recorder(long[][] latencies, AtomicLong errors, String[] firstError) {}

    private static int[] runFor(java.util.function.Supplier<Call> calls, int concurrency, Duration duration, Recorder recorder) {
        long end = System.nanoTime() + duration.toNanos();
        int[] counts = new int[concurrency];
        CountDownLatch done = new CountDownLatch(concurrency);
        for (int i = 0; i < concurrency; i++) {
            int me = i;
            Thread.ofPlatform().daemon().name("loadtest-" + i).start(() -> {
                Call call = calls.get();
                long[] mine = new long[1024];
                int n = 0;
                try {
                    while (System.nanoTime() < end) {
                        long t0 = System.nanoTime();
                        try {
                            call.run();
                        } catch (Exception e) {
                            if (recorder != null && recorder.errors.getAndIncrement() == 0) recorder.firstError[0] = String.valueOf(e.getMessage());
                        }
                        if (n == mine.length) mine = Arrays.copyOf(mine, 2 * n);
                        mine[n++] = System.nanoTime() - t0;
                    }
                } finally {
                    counts[me] = n;
                    if (recorder != null) recorder.latencies[me] = mine;
                    done.countDown();
                }
            });
        }
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
        return counts;
    }

    private static double percentile(long[] sorted, double q) {
        if (sorted.length == 0) return 0;
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))] / 1e6;
    }

    static Tensor images(TensorInfo input, int batch) {
        int[] sample = input.sampleDims();
        int[] dims = new int[sample.length + 1];
        dims[0] = batch;
        System.arraycopy(sample, 0, dims, 1, sample.length);
        return Tensor.uniform(Shape.of(dims), 0, 1, 1);
    }

    private static List<Long> shape(TensorInfo input, int batch) {
        List<Long> s = new ArrayList<>(input.shape());
        s.set(0, (long) batch);
        return s;
    }

    private static byte[] raw(TensorInfo input, int batch) {
        Tensor x = images(input, batch);
        ByteBuffer b = ByteBuffer.allocate(4 * x.size()).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(x.data());
        return b.array();
    }

    private static byte[] restHeader(TensorInfo input, int batch) {
        int bytes = 4 * images(input, batch).size();
        return ("{\"inputs\":[{\"name\":\"" + input.name() + "\",\"datatype\":\"FP32\",\"shape\":" + shape(input, batch)
                + ",\"parameters\":{\"binary_data_size\":" + bytes + "}}],\"parameters\":{\"binary_data_output\":true}}").getBytes(StandardCharsets.UTF_8);
    }

    private static int restHeaderLength(TensorInfo input, int batch) {
        return restHeader(input, batch).length;
    }

    private static byte[] restBody(TensorInfo input, int batch) {
        byte[] header = restHeader(input, batch), raw = raw(input, batch);
        byte[] body = Arrays.copyOf(header, header.length + raw.length);
        System.arraycopy(raw, 0, body, header.length, raw.length);
        return body;
    }
}
