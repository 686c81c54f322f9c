package dev.silhouette.cli;

import dev.silhouette.io.Machine;
import com.google.gson.Gson;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.io.Progress;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.train.Batches;
import dev.silhouette.train.Network;
import dev.silhouette.train.Optimizer;
import dev.silhouette.train.QuantMode;
import dev.silhouette.train.Schedule;
import dev.silhouette.train.Trainer;
import dev.silhouette.train.TrainingCurve;
import dev.silhouette.train.TrainingData;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Trains a catalog model on IDX image data (Fashion-MNIST by default) on the CPU, with checkpoints and resume.")
final class TrainCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", defaultValue = "fmnist-resnet", description = "catalog model to train (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--data", description = "folder with train-/t10k- images and labels in IDX, of the model's image size (e.g. from data cluttered; "
            + "default: /usr/share/datasets/fashion-mnist)")
    Path data = TrainingData.FASHION_MNIST;

    @Option(names = "--epochs", defaultValue = "15", description = "epochs (default: ${DEFAULT-VALUE})")
    int epochs;

    @Option(names = "--batch", defaultValue = "128", description = "batch size (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--optimizer", defaultValue = "sgd", description = "sgd or adamw (default: ${DEFAULT-VALUE})")
    String optimizer;

    @Option(names = "--lr", defaultValue = "0.1", description = "peak learning rate (default: ${DEFAULT-VALUE})")
    double lr;

    @Option(names = "--momentum", defaultValue = "0.9", description = "SGD momentum / AdamW beta1 (default: ${DEFAULT-VALUE}; one-cycle cycles it between 0.85 and 0.95)")
    double momentum;

    @Option(names = "--nesterov", defaultValue = "true", negatable = true, description = "Nesterov momentum for SGD (default: ${DEFAULT-VALUE})")
    boolean nesterov;

    @Option(names = "--weight-decay", defaultValue = "5e-4", description = "weight decay (default: ${DEFAULT-VALUE})")
    double weightDecay;

    @Option(names = "--schedule", defaultValue = "onecycle", description = "onecycle, cosine, step or constant (default: ${DEFAULT-VALUE})")
    String schedule;

    @Option(names = "--pct-start", defaultValue = "0.15", description = "one-cycle: fraction of steps rising to the peak (default: ${DEFAULT-VALUE})")
    double pctStart;

    @Option(names = "--step-epochs", defaultValue = "5", description = "step schedule: epochs between decays by 10x (default: ${DEFAULT-VALUE})")
    int stepEpochs;

    @Option(names = "--warmup", defaultValue = "0", description = "linear warm-up steps on top of cosine/step/constant (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--no-augment", description = "train without random crop and flip")
    boolean noAugment;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the initial weights, data order and augmentation (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--quant", defaultValue = "fp32", description = "fp32, pact:W/A (e.g. pact:4/4) or binary (default: ${DEFAULT-VALUE})")
    String quant;

    @Option(names = "--branch", defaultValue = "1x1", description = "silhouette branch: 1x1 (the method's), attention-max or attention-mean "
            + "(the original code's attention branch, which learns through its auxiliary logits blended into the prediction) (default: ${DEFAULT-VALUE})")
    String branch;

    @Option(names = "--init", description = "start from this model file's weights (or 'bundled'), matched by parameter name; parameters it lacks "
            + "(e.g. a new branch) keep the seeded initialisation")
    String init;

    @Option(names = "--checkpoint", description = "checkpoint file, written every --checkpoint-every steps and after each epoch")
    Path checkpoint;

    @Option(names = "--checkpoint-every", defaultValue = "100", description = "steps between checkpoints (default: ${DEFAULT-VALUE})")
    int checkpointEvery;

    @Option(names = "--resume", description = "continue from --checkpoint (same settings)")
    boolean resume;

    @Option(names = "--out", required = true, description = "trained model file (.safetensors) to write")
    Path out;

    @Option(names = "--curve", description = "training curve PNG (default: the --out path with .png)")
    Path curve;

    @Option(names = "--limit", description = "use only the first N training images (quick runs)")
    Integer limit;

    @Override
    public Integer call() {
        validate();
        PrintWriter err = spec.commandLine().getErr(), out = spec.commandLine().getOut();
        TrainingData d = TrainingData.load(data);
        var train = limit == null ? d.train() : d.train().first(limit);
        Models.Options defaults = Models.defaults(model);
        Graph graph = Models.build(model, new Models.Options(defaults.numClasses(), defaults.inputSize(), defaults.silhouetteAfter(), seed,
                Models.parseBranch(branch)));
        d.requireInput(graph, model);
        int classes = graph.inferShapes(1).get(Models.LOGITS).dim(1);
        for (int[] labels : new int[][] {train.labels(), d.test().labels()}) {
            for (int label : labels) {
                if (label < 0 || label >= classes) throw new IllegalArgumentException("label " + label + " in " + data + " is outside the model's " + classes + " classes");
            }
        }
        QuantMode q = QuantMode.parse(quant);
        QuantPlan plan = q.plan(graph, model);
        ModelLoader.Loaded initial = init == null ? null : ModelLoader.load(init);
        String initialPlan = initial == null ? null : initial.metadata().get(QuantCommands.PLAN_METADATA_KEY);
        // A model trained with a plan continues from its learned clip levels, as from its weights.
        if (initialPlan != null) plan = QuantMode.startingFrom(plan, QuantPlanJson.read(initialPlan, initial.source()));
        Network network = QuantMode.network(graph, plan);
        if (initial != null) initialise(network, initial, initialPlan != null && !plan.layers().isEmpty(), out);
        Trainer.Config config = new Trainer.Config(epochs, batch, seed, noAugment ? Batches.Augmentation.NONE : Batches.Augmentation.CROP_FLIP, Models.logits(graph));
        long total = Trainer.totalSteps(train.labels().length, config);
        Optimizer opt = switch (optimizer) {
            case "sgd" -> new Optimizer.Sgd(momentum, nesterov, weightDecay);
            case "adamw" -> new Optimizer.AdamW(momentum, 0.999, 1e-8, weightDecay);
            default -> throw new IllegalArgumentException("--optimizer " + optimizer + ": expected sgd or adamw");
        };
        int perEpoch = Batches.batchesPerEpoch(train.labels().length, batch);
        Schedule sched = switch (schedule) {
            case "onecycle" -> Schedule.OneCycle.of(lr, total, pctStart);
            case "cosine" -> new Schedule.Cosine(lr, 0, total);
            case "step" -> new Schedule.StepDecay(lr, (long) stepEpochs * perEpoch, 0.1);
            case "constant" -> new Schedule.Constant(lr);
            default -> throw new IllegalArgumentException("--schedule " + schedule + ": expected onecycle, cosine, step or constant");
        };
        if (warmup > 0) {
            if (sched instanceof Schedule.OneCycle) throw new IllegalArgumentException("--warmup: one-cycle has its own warm-up (--pct-start)");
            sched = new Schedule.Warmup(sched, warmup);
        }
        Trainer trainer = new Trainer(network, opt, sched, train, config);
        Map<String, String> meta = metadata(graph);
        if (resume) {
            trainer.resume(checkpoint);
            err.printf("resumed from %s at epoch %d, step %d%n", checkpoint, trainer.epoch() + 1, trainer.step());
        }
        out.printf("training %s on %s (%,d images, %,d test), %d epochs of %d batches of %d, %s, %s, quant %s, seed %d%n",
                model, data, train.labels().length, d.test().labels().length, epochs, perEpoch, batch, opt.name(), schedule, quant, seed);
        out.flush();
        long start = System.nanoTime();
        long startStep = trainer.step();
        while (!trainer.finished()) {
            int epoch = trainer.epoch();
            long epochStart = System.nanoTime();
            long epochFirstStep = trainer.step();
            double[] running = new double[3];   // loss sum, correct, samples over this session's part of the epoch
            try (Progress bar = Progress.start("epoch " + (epoch + 1) + "/" + epochs, perEpoch, "batches")) {
                bar.startFrom(trainer.step() - (long) epoch * perEpoch);
                Trainer.EpochRecord r = trainer.runEpoch(d.test(), (e, b, of, loss, correct, size) -> {
                    running[0] += loss * size;
                    running[1] += correct;
                    running[2] += size;
                    double secs = (System.nanoTime() - epochStart) / 1e9;
                    bar.stepTo(b);
                    bar.setExtraMessage(String.format(" loss %.4f acc %.2f%% %.0f img/s", running[0] / running[2], 100 * running[1] / running[2],
                            (trainer.step() - epochFirstStep) * (double) batch / secs));
                }, s -> {
                    if (checkpoint != null && (s % checkpointEvery == 0 || s % perEpoch == 0)) trainer.save(checkpoint, meta);
                });
                bar.close();
                double secs = (System.nanoTime() - epochStart) / 1e9;
                out.printf("epoch %d/%d loss %.4f train accuracy %.4f test loss %.4f test accuracy %.4f (%.1f s, %.0f images/s)%n",
                        r.epoch(), epochs, r.trainLoss(), r.trainAccuracy(), r.testLoss(), r.testAccuracy(), secs,
                        (trainer.step() - epochFirstStep) * (double) batch / secs);
                out.flush();
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        List<Trainer.EpochRecord> history = trainer.history();
        Trainer.EpochRecord last = history.getLast();
        Map<String, Object> training = new LinkedHashMap<>();
        training.put("command", "silhouette " + String.join(" ", spec.commandLine().getParseResult().originalArgs()));
        training.put("seed", seed);
        training.put("epochs", epochs);
        training.put("test_accuracy", last.testAccuracy());
        training.put("seconds_this_session", Math.round(seconds * 10) / 10.0);
        training.put("images_per_second", Math.round((trainer.step() - startStep) * (double) batch / seconds));
        training.put("machine", Machine.current().toString());
        meta.put("silhouette.trained_by", "silhouette train");
        meta.put("silhouette.training", new Gson().toJson(training));
        // The trained quantization (learned PACT clip levels included) is a plan, in the model file as quantize --out-model writes it
        // (eval applies it) and beside it for run --plan; the model file keeps exactly the graph's tensors.
        QuantPlan trained = plan.layers().isEmpty() ? null : QuantMode.trained(network, graph, plan);
        Path planFile = Path.of(this.out.toString().replaceAll("\\.safetensors$", "") + ".plan.json");
        if (trained != null) meta.put(QuantCommands.PLAN_METADATA_KEY, QuantPlanJson.write(trained));
        Trainer.saveModel(network, this.out, meta);
        if (trained != null) QuantPlanJson.save(trained, planFile);
        Path png = curve != null ? curve : Path.of(this.out.toString().replaceAll("\\.safetensors$", "") + ".png");
        TrainingCurve.write(history, model + " on " + data.getFileName() + ": " + String.format("%.2f%%", 100 * last.testAccuracy()) + " test accuracy", png);
        out.printf("wrote %s (test accuracy %.2f%%) and %s; %.1f s, %.0f images/s on %s%n", this.out, 100 * last.testAccuracy(), png, seconds,
                (trainer.step() - startStep) * (double) batch / seconds, Machine.current());
        if (trained != null) {
            out.printf("plan '%s' in its metadata and in %s; evaluate what was trained with: bin/silhouette eval --model %s%n", trained.label(), planFile, this.out);
        }
        out.flush();
        return 0;
    }

    private void validate() {
        if (!Models.CATALOG.containsKey(model)) {
            throw new IllegalArgumentException("--model " + model + ": not a catalog model; known: " + String.join(", ", new java.util.TreeSet<>(Models.CATALOG.keySet())));
        }
        if (epochs < 1 || epochs > 10_000) throw new IllegalArgumentException("--epochs " + epochs + " must be between 1 and 10000");
        if (batch < 1 || batch > 65_536) throw new IllegalArgumentException("--batch " + batch + " must be between 1 and 65536");
        if (checkpointEvery < 1) throw new IllegalArgumentException("--checkpoint-every " + checkpointEvery + " must be at least 1");
        if (resume && checkpoint == null) throw new IllegalArgumentException("--resume needs --checkpoint FILE");
        if (resume && !Files.isRegularFile(checkpoint)) throw new IllegalArgumentException("--resume: checkpoint " + checkpoint + " does not exist");
        if (limit != null && limit < 1) throw new IllegalArgumentException("--limit " + limit + " must be at least 1");
        if (!out.getFileName().toString().endsWith(".safetensors")) throw new IllegalArgumentException("--out " + out + " must end in .safetensors");
    }

    /**
     * Copies the --init model's parameters of the same name and shape; says which of the model's it did not have (the
     * clip levels are not among them: the network was built from the plan they started from).
     */
    private static void initialise(Network network, ModelLoader.Loaded init, boolean withPlan, PrintWriter out) {
        Map<String, dev.silhouette.tensor.Tensor> from = init.graph().parameters(), shared = new LinkedHashMap<>();
        List<String> kept = new java.util.ArrayList<>();
        for (var e : network.parameters().entrySet()) {
            if (!network.graph().parameters().containsKey(e.getKey())) continue;
            dev.silhouette.tensor.Tensor t = from.get(e.getKey());
            if (t != null && t.shape().equals(e.getValue().shape())) shared.put(e.getKey(), t);
            else kept.add(e.getKey());
        }
        if (shared.isEmpty()) throw new IllegalArgumentException("--init " + init.source() + " shares no parameter (by name and shape) with the model being trained");
        network.load(shared);
        out.printf("initialised %d parameters from %s%s; seeded initialisation kept for %s%n", shared.size(), init.source(),
                withPlan ? " and the clip levels of its plan" : "", kept);
    }

    private Map<String, String> metadata(Graph graph) {
        Models.Options o = Models.defaults(model);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(ModelLoader.META_MODEL, model);
        if (o.silhouetteAfter() != null) meta.put(ModelLoader.META_SILHOUETTE_AFTER, o.silhouetteAfter());
        if (!branch.equals("1x1")) meta.put(ModelLoader.META_BRANCH, branch);
        meta.put(ModelLoader.META_CLASSES, Integer.toString(o.numClasses()));
        meta.put(ModelLoader.META_INPUT_SIZE, Integer.toString(o.inputSize()));
        return meta;
    }
}
