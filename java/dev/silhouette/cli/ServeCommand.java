package dev.silhouette.cli;

import dev.silhouette.api.Model;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Op;
import dev.silhouette.io.Progress;
import dev.silhouette.pipeline.Calibration;
import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.serve.AccessLog;
import dev.silhouette.serve.BatchConfig;
import dev.silhouette.serve.ModelRepository;
import dev.silhouette.serve.Server;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serves models over the Open Inference Protocol v2 (KServe v2, as Triton speaks it): REST on --http-port, gRPC on --grpc-port, "
                + "Prometheus metrics on --metrics-port, with dynamic batching. Without --repository: the bundled model in FP32 (fmnist-resnet) "
                + "and region-quantized (fmnist-resnet-region, the main job's main policy with the learned silhouette).")
final class ServeCommand implements Callable<Integer> {
    /** The default region-quantized model's policy: the main job's main one. */
    static final String REGION_POLICY = "2:50,3:30,4:20";
    static final String FP32_NAME = "fmnist-resnet", REGION_NAME = "fmnist-resnet-region";

    @Spec
    CommandSpec spec;

    @Option(names = "--repository", description = "model repository: one folder per model with config.json (see the README)")
    Path repository;

    @Option(names = "--model-control", defaultValue = "none", description = "none, or explicit: load, unload and index over the protocol's repository extension "
            + "(POST /v2/repository/...; needs --repository) (default: ${DEFAULT-VALUE})")
    String modelControl;

    @Option(names = "--http-port", defaultValue = "" + Server.Options.HTTP_PORT, description = "REST port, 0 for any free one, -1 off (default: ${DEFAULT-VALUE})")
    int httpPort;

    @Option(names = "--grpc-port", defaultValue = "" + Server.Options.GRPC_PORT, description = "gRPC port, 0 for any free one, -1 off (default: ${DEFAULT-VALUE})")
    int grpcPort;

    @Option(names = "--metrics-port", defaultValue = "" + Server.Options.METRICS_PORT, description = "Prometheus metrics port, 0 for any free one, -1 off (default: ${DEFAULT-VALUE})")
    int metricsPort;

    @Option(names = "--max-body", defaultValue = "67108864", description = "largest request body in bytes, refused before it is read (default: ${DEFAULT-VALUE}, 64 MiB)")
    long maxBody;

    @Option(names = "--backend", defaultValue = "auto", description = "backend of the default models: auto, cpu or cuda (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--device", defaultValue = "0", description = "GPU index for the cuda backend (default: ${DEFAULT-VALUE})")
    int device;

    @Option(names = "--max-batch-size", description = "default models: most samples per batch (default: 32)")
    Integer maxBatchSize;

    @Option(names = "--max-queue-delay-ms", description = "default models: longest a batch waits to fill (default: 2)")
    Integer maxQueueDelayMs;

    @Option(names = "--queue-size", description = "default models: most requests waiting; more get 503 / UNAVAILABLE at once (default: 256)")
    Integer queueSize;

    @Option(names = "--timeout-ms", description = "default models: longest a request waits in the queue (default: 10000)")
    Integer timeoutMs;

    @Option(names = "--no-dynamic-batching", description = "default models: run each request alone")
    boolean noDynamicBatching;

    @Option(names = "--drain-seconds", defaultValue = "30", description = "on SIGTERM, how long queued requests may take before the rest are refused (default: ${DEFAULT-VALUE})")
    int drainSeconds;

    @Option(names = "--access-log", description = "structured access log: one JSON line per request on stderr")
    boolean accessLog;

    @Override
    public Integer call() {
        if (drainSeconds < 0 || drainSeconds > 3600) throw new IllegalArgumentException("--drain-seconds " + drainSeconds + " must be between 0 and 3600");
        if (!modelControl.equals("none") && !modelControl.equals("explicit")) throw new IllegalArgumentException("--model-control '" + modelControl + "' must be none or explicit");
        if (modelControl.equals("explicit") && repository == null) throw new IllegalArgumentException("--model-control explicit needs --repository DIR");
        Server.Options options = new Server.Options(httpPort, grpcPort, metricsPort, maxBody);
        BatchConfig batching = batching();
        // Endpoints first: the health probes answer (live, not ready) while the models load and calibrate.
        Server server = Server.open(options, accessLog ? AccessLog.jsonLines(System.err) : AccessLog.OFF);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> server.drain(Duration.ofSeconds(drainSeconds)), "silhouette-drain"));
        PrintWriter out = spec.commandLine().getOut();
        out.printf("listening: REST on %s, gRPC on %s, metrics on %s; loading models%n", port(server.httpPort()), port(server.grpcPort()), port(server.metricsPort()));
        out.flush();
        try {
            if (modelControl.equals("explicit")) server.enableModelControl(repository);
            server.load(repository != null ? ModelRepository.read(repository) : defaults(batching, backend, device));
        } catch (RuntimeException e) {
            server.close();
            throw e;
        }
        out.printf("ready: serving %s%n", server.modelNames());
        out.flush();
        server.awaitTermination();
        return 0;
    }

    private static String port(int p) {
        return p < 0 ? "off" : Integer.toString(p);
    }

    private BatchConfig batching() {
        BatchConfig d = BatchConfig.DEFAULT;
        return new BatchConfig(maxBatchSize == null ? d.maxBatchSize() : maxBatchSize, !noDynamicBatching,
                maxQueueDelayMs == null ? d.maxQueueDelay() : Duration.ofMillis(maxQueueDelayMs), queueSize == null ? d.queueSize() : queueSize,
                timeoutMs == null ? d.timeout() : Duration.ofMillis(timeoutMs), d.instances());
    }

    /** The embedded default: the bundled model in FP32 and region-quantized. */
    static List<Server.ModelSpec> defaults(BatchConfig batching, String backend, int device) {
        Model fp32 = Model.load(ModelLoader.BUNDLED);
        Model region = fp32.withPlan(regionPlan(fp32));
        return List.of(new Server.ModelSpec(FP32_NAME, fp32, backend, device, batching), new Server.ModelSpec(REGION_NAME, region, backend, device, batching));
    }

    /**
     * The main job's region row for the main policy with the learned silhouette, shared 4-bit weights:
     * clip levels calibrated on the first 500 training images as the main job does, and the clip levels
     * the model file carries from fine-tuning in their place.
     */
    static QuantPlan regionPlan(Model fp32) {
        Graph folded = fp32.foldBatchNorm().graph();
        FashionMnist calibration = FashionMnist.trainingSubset(null, FashionMnist.BUNDLED_TRAINING_IMAGES);
        Calibration c;
        try (Progress bar = Progress.start("calibrating " + REGION_NAME, 2L * calibration.labels().length, "img")) {
            c = Calibration.collect(new CpuBackend(), folded, fp32.name(), calibration.images(), 100, Plans.convolutionInputs(folded),
                    Plans.receivingInputs(folded), MainJob.DRQ_BLOCK, bar);
        }
        c.adopt(LearnedClipLevels.read(fp32.metadata(), fp32.name()));
        RegionPolicy policy = RegionPolicy.parse(REGION_POLICY);
        Plans.Receiving.Region scheme = new Plans.Receiving.Region(policy, false, Plans.sharedWeightBits(policy), Op.Interpolate.Mode.NEAREST,
                Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD);
        return Plans.of(folded, fp32.name(), policy + " W" + Plans.sharedWeightBits(policy), new QuantPlan.SilhouetteSource.Learned(), scheme,
                Plans.PRE_BRANCH_BITS, c::alpha);
    }
}
