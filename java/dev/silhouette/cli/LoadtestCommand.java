package dev.silhouette.cli;

import dev.silhouette.io.Machine;
import dev.silhouette.api.Model;
import dev.silhouette.api.Session;
import dev.silhouette.api.TensorInfo;
import dev.silhouette.io.AtomicFiles;
import dev.silhouette.serve.AccessLog;
import dev.silhouette.serve.BatchConfig;
import dev.silhouette.serve.LoadTest;
import dev.silhouette.serve.Malformed;
import dev.silhouette.serve.Server;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "loadtest", mixinStandardHelpOptions = true,
        description = "Measures silhouette serve as Triton's perf_analyzer does: closed-loop clients over REST and gRPC at each concurrency, "
                + "with dynamic batching on and off, beside the in-process Session (the ceiling) and under 10x overload; "
                + "throughput and p50/p90/p99 latency per level, written with the machine to --out.")
final class LoadtestCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", defaultValue = "bundled", description = "model to serve (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--plan", description = "quantization plan to apply to the model")
    Path plan;

    @Option(names = "--concurrency", split = ",", defaultValue = "1,4,16,32,64", description = "client counts (default: ${DEFAULT-VALUE})")
    List<Integer> concurrency;

    @Option(names = "--seconds", defaultValue = "4", description = "seconds per level (default: ${DEFAULT-VALUE})")
    double seconds;

    @Option(names = "--max-batch-size", defaultValue = "32", description = "server max batch size with batching on (default: ${DEFAULT-VALUE})")
    int maxBatch;

    @Option(names = "--max-queue-delay-ms", defaultValue = "2", description = "server batching delay (default: ${DEFAULT-VALUE})")
    int delayMs;

    @Option(names = "--malformed", defaultValue = "10000", description = "malformed requests to send after the sweep, each to be refused with a 4xx (default: ${DEFAULT-VALUE})")
    int malformed;

    @Option(names = "--out", defaultValue = "loadtest.json", description = "results file (default: ${DEFAULT-VALUE})")
    Path out;

    record Report(String model, String plan, List<LoadTest.Level> batching, List<LoadTest.Level> noBatching, LoadTest.Level sessionCeiling,
                  LoadTest.Level overload, LoadTest.Level afterOverload, LoadTest.MalformedResult malformed, boolean servesBitForBitAfterMalformed,
                  int overloadQueueSize, int overloadTimeoutMs, double batchingSpeedupRestAt32,
                  double batchingSpeedupGrpcAt32, double saturationVsSession, long peakRssKiB, String loadAverageBefore, String loadAverageAfter, String note,
                  Machine machine) {}

    @Override
    public Integer call() throws Exception {
        if (malformed < 0 || malformed > 1_000_000) throw new IllegalArgumentException("--malformed " + malformed + " must be between 0 and 1000000");
        if (seconds <= 0 || seconds > 600) throw new IllegalArgumentException("--seconds " + seconds + " must be above 0 and at most 600");
        for (int c : concurrency) if (c < 1 || c > 4096) throw new IllegalArgumentException("--concurrency " + c + " must be between 1 and 4096");
        Model m = Model.load(model);
        if (plan != null) m = m.withPlan(plan);
        Duration level = Duration.ofMillis((long) (seconds * 1000));
        String loadBefore = loadAverage();
        PrintWriter pw = spec.commandLine().getOut();
        BatchConfig on = new BatchConfig(maxBatch, true, Duration.ofMillis(delayMs), 1024, Duration.ofSeconds(30), 1);
        List<LoadTest.Level> batching = sweep(m, on, level, pw);
        List<LoadTest.Level> noBatching = sweep(m, on.withDynamicBatching(false), level, pw);
        LoadTest.Level ceiling;
        try (Session s = m.session("cpu")) {
            ceiling = LoadTest.session(s, maxBatch, 1, level);
        }
        print(pw, "session", ceiling);
        // 10x overload: ten times more clients than the queue holds, each request with a 2 s queue timeout.
        int queue = 32, timeoutMs = 2000;
        BatchConfig bounded = on.withQueue(queue, Duration.ofMillis(timeoutMs));
        LoadTest.Level overload, after;
        LoadTest.MalformedResult bad;
        boolean stillExact;
        try (Server server = Server.start(new Server.Options(0, -1, -1, Server.Options.BODY_LIMIT), List.of(new Server.ModelSpec("m", m, "cpu", 0, bounded)), AccessLog.OFF);
             Session reference = m.session("cpu")) {
            TensorInfo input = m.inputs().getFirst();
            overload = LoadTest.rest(server.httpPort(), "m", input, 1, 10 * queue, level);
            print(pw, "overload", overload);
            after = LoadTest.rest(server.httpPort(), "m", input, 1, 1, level);
            print(pw, "after", after);
            bad = LoadTest.malformed(server.httpPort(), Malformed.generate(malformed, 0, "m", input), 16);
            pw.printf("malformed  %d requests in %.1f s: %d not refused with a 4xx and an error%s; statuses by kind %s%n", bad.requests(), bad.seconds(),
                    bad.notRefusedProperly(), bad.firstBadAnswer() == null ? "" : " (first: " + bad.firstBadAnswer() + ")", bad.statusesByKind());
            stillExact = LoadTest.restMatchesSession(server.httpPort(), "m", reference);
            pw.printf("after the malformed requests the server %s%n", stillExact ? "answers bit for bit as the session" : "DOES NOT answer as the session");
        }
        double speedRest = at32(batching, "rest") / at32(noBatching, "rest"), speedGrpc = at32(batching, "grpc") / at32(noBatching, "grpc");
        double best = batching.stream().mapToDouble(LoadTest.Level::samplesPerSecond).max().orElse(0);
        Report r = new Report(m.name(), m.plan(), batching, noBatching, ceiling, overload, after, bad, stillExact, queue, timeoutMs, speedRest, speedGrpc,
                best / ceiling.samplesPerSecond(), peakRss(), loadBefore, loadAverage(),
                "clients and server share this process and its cores; single-image requests; errors under overload are 503s (queue full or timed out)",
                Machine.current());
        String json = new com.google.gson.GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create().toJson(r);
        AtomicFiles.write(out, tmp -> Files.writeString(tmp, json));
        pw.printf("batching speed-up at concurrency 32: REST %.2fx, gRPC %.2fx; best served %.0f samples/s = %.0f%% of the session's %.0f at batch %d; peak RSS %,d KiB%n",
                speedRest, speedGrpc, best, 100 * r.saturationVsSession(), ceiling.samplesPerSecond(), maxBatch, r.peakRssKiB());
        pw.printf("wrote %s%n", out);
        pw.flush();
        return 0;
    }

    private List<LoadTest.Level> sweep(Model m, BatchConfig config, Duration level, PrintWriter pw) {
        List<LoadTest.Level> levels = new ArrayList<>();
        try (Server server = Server.start(new Server.Options(0, 0, -1, Server.Options.BODY_LIMIT), List.of(new Server.ModelSpec("m", m, "cpu", 0, config)), AccessLog.OFF)) {
            TensorInfo input = m.inputs().getFirst();
            for (int c : concurrency) {
                LoadTest.Level rest = LoadTest.rest(server.httpPort(), "m", input, 1, c, level);
                print(pw, config.dynamicBatching() ? "batching" : "one-by-one", rest);
                LoadTest.Level grpc = LoadTest.grpc(server.grpcPort(), "m", input, 1, c, level);
                print(pw, config.dynamicBatching() ? "batching" : "one-by-one", grpc);
                levels.add(rest);
                levels.add(grpc);
            }
        }
        return levels;
    }

    private static double at32(List<LoadTest.Level> levels, String target) {
        return levels.stream().filter(l -> l.target().equals(target) && l.concurrency() == 32).mapToDouble(LoadTest.Level::samplesPerSecond).findFirst().orElse(Double.NaN);
    }

    private static void print(PrintWriter pw, String config, LoadTest.Level l) {
        pw.printf("%-10s %-7s c=%-4d %8.0f samples/s  p50 %7.2f  p90 %7.2f  p99 %7.2f  max %7.2f ms  errors %d%s%n", config, l.target(), l.concurrency(),
                l.samplesPerSecond(), l.p50Ms(), l.p90Ms(), l.p99Ms(), l.maxMs(), l.errors(), l.firstError() == null ? "" : " (" + l.firstError() + ")");
        pw.flush();
    }

    /** The machine's load averages (1, 5, 15 minutes), to judge how far other work disturbed the figures. */
    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (java.io.IOException | RuntimeException e) {
            return "unknown";
        }
    }

    /** The process's peak resident set (VmHWM), or -1 where /proc does not tell. */
    static long peakRss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        } catch (java.io.IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
