package dev.silhouette.cli;

import dev.silhouette.io.Machine;
import com.google.gson.Gson;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.pipeline.Calibration;
import dev.silhouette.pipeline.Plans;
import dev.silhouette.quant.BitWidths;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.io.Progress;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.train.Batches;
import dev.silhouette.train.Network;
import dev.silhouette.train.Optimizer;
import dev.silhouette.train.RegionFinetune;
import dev.silhouette.train.Schedule;
import dev.silhouette.train.Trainer;
import dev.silhouette.train.TrainingData;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "finetune", mixinStandardHelpOptions = true,
        description = "Quantization-aware fine-tuning with region quantization in the loop: the main job's region pass and clip levels "
                + "(calibrated on training images), straight-through gradients, weights fake-quantized at the policy's shared width; "
                + "writes a model file for `silhouette run --model FILE`.")
final class FinetuneCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", defaultValue = ModelLoader.BUNDLED, description = "model file with a silhouette branch (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--policy", defaultValue = "2:50,3:30,4:20", description = "region policy trained for, bits:percent lowest silhouette first (default: ${DEFAULT-VALUE})")
    String policy;

    @Option(names = "--data", description = "folder with train-/t10k- images and labels in IDX, of the model's image size (e.g. from data cluttered; "
            + "default: /usr/share/datasets/fashion-mnist)")
    Path data = TrainingData.FASHION_MNIST;

    @Option(names = "--epochs", defaultValue = "1", description = "epochs (default: ${DEFAULT-VALUE})")
    int epochs;

    @Option(names = "--batch", defaultValue = "128", description = "batch size (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--lr", defaultValue = "0.01", description = "initial learning rate, cosine to 0 (default: ${DEFAULT-VALUE})")
    double lr;

    @Option(names = "--momentum", defaultValue = "0.9", description = "SGD (Nesterov) momentum (default: ${DEFAULT-VALUE})")
    double momentum;

    @Option(names = "--weight-decay", defaultValue = "5e-4", description = "weight decay (default: ${DEFAULT-VALUE})")
    double weightDecay;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the data order and augmentation (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--calibration", defaultValue = "500", description = "training images for the clip levels, as the main job (default: ${DEFAULT-VALUE})")
    int calibrationImages;

    @Option(names = "--resize", defaultValue = "NEAREST", description = "how each layer resizes the silhouette: NEAREST or BILINEAR (default: ${DEFAULT-VALUE})")
    Op.Interpolate.Mode resize;

    @Option(names = "--mask-order", defaultValue = "RESIZE_THEN_THRESHOLD", description = "RESIZE_THEN_THRESHOLD or THRESHOLD_THEN_RESIZE (default: ${DEFAULT-VALUE})")
    Op.RegionQuantize.MaskOrder maskOrder;

    @Option(names = "--silhouette-weight", defaultValue = "10", description = "weight of the silhouette branch's importance loss "
            + "(docs/REGION_QUANTIZATION.md, Fine-tuning); 0 leaves the branch untrained (default: ${DEFAULT-VALUE})")
    float silhouetteWeight;

    @Option(names = "--learn-clip-levels", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "learn the PACT and region clip levels (PACT's gradient), starting from the calibrated ones, and store them in the model "
                    + "file for the main job; --no-learn-clip-levels keeps them calibrated (default: ${DEFAULT-VALUE})")
    boolean learnClipLevels;

    @Option(names = "--branch-only", description = "train only the silhouette branch (importance loss) on the quantized model as it is: "
            + "every other weight, BatchNorm statistic and clip level stays bit for bit, so the other rows of the main job do not move")
    boolean branchOnly;

    @Option(names = "--uniform", paramLabel = "BITS", description = "fine-tune the uniform baseline instead: every receiving convolution's "
            + "activations at BITS, weights at the policy's shared width (the main job's W4A2/W4A3 rows for 2:50,3:30,4:20)")
    Integer uniformBits;

    @Option(names = "--distill", paramLabel = "WEIGHT", defaultValue = "0", description = "share of the loss taken by knowledge distillation "
            + "from the model as loaded, in full precision (0 to 1; 0 trains on the labels alone) (default: ${DEFAULT-VALUE})")
    float distillWeight;

    @Option(names = "--distill-temperature", defaultValue = "1", description = "softmax temperature of the distillation (default: ${DEFAULT-VALUE})")
    float distillTemperature;

    @Option(names = "--validation", paramLabel = "N", defaultValue = "0", description = "hold out the last N training images: they are not "
            + "trained on, and the accuracy in the loop is measured on them instead of the test split, for choosing settings without "
            + "looking at the test split (default: ${DEFAULT-VALUE})")
    int validation;

    @Option(names = "--limit", description = "use only the first N training images (quick runs)")
    Integer limit;

    @Option(names = "--out", required = true, description = "fine-tuned model file (.safetensors) to write")
    Path out;

    @Override
    public Integer call() {
        if (epochs < 1 || epochs > 1_000) throw new IllegalArgumentException("--epochs " + epochs + " must be between 1 and 1000");
        if (batch < 1 || batch > 65_536) throw new IllegalArgumentException("--batch " + batch + " must be between 1 and 65536");
        if (!(lr > 0)) throw new IllegalArgumentException("--lr " + lr + " must be positive");
        if (!(distillWeight >= 0 && distillWeight <= 1)) throw new IllegalArgumentException("--distill " + distillWeight + " must be between 0 and 1");
        if (!(distillTemperature > 0) || Float.isInfinite(distillTemperature)) {
            throw new IllegalArgumentException("--distill-temperature " + distillTemperature + " must be positive and finite");
        }
        if (limit != null && limit < 1) throw new IllegalArgumentException("--limit " + limit + " must be at least 1");
        if (!out.getFileName().toString().endsWith(".safetensors")) throw new IllegalArgumentException("--out " + out + " must end in .safetensors");
        RegionPolicy parsed = RegionPolicy.parse(policy);
        PrintWriter stdout = spec.commandLine().getOut();
        ModelLoader.Loaded loaded = ModelLoader.load(model);
        Graph graph = loaded.graph();
        TrainingData d = TrainingData.load(data);
        int available = d.train().labels().length;
        if (validation < 0 || validation >= available) {
            throw new IllegalArgumentException("--validation " + validation + " must be at least 0 and leave training images (the training split holds " + available + ")");
        }
        var trainable = d.train().slice(0, available - validation);
        var train = limit == null ? trainable : trainable.first(limit);
        var heldOut = validation > 0 ? d.train().slice(available - validation, available) : d.test();
        String heldOutName = validation > 0 ? "validation" : "test";
        int n = train.labels().length;
        d.requireInput(graph, loaded.architecture());

        // The main job's calibration on the folded graph (the graph it evaluates); the values it names are the same unfolded.
        Graph folded = Passes.foldBatchNorm(graph);
        if (!folded.outputs().contains(dev.silhouette.graph.Models.SILHOUETTE)) {
            throw new IllegalArgumentException("fine-tuning for region quantization needs a model with a silhouette branch; '" + model + "' has outputs "
                    + folded.outputs());
        }
        FashionMnist calibration = FashionMnist.trainingSubset(data, calibrationImages);
        Calibration clips = Calibration.collect(new CpuBackend(), folded, loaded.architecture(), calibration.images(), 100, Plans.convolutionInputs(folded),
                java.util.Set.of(), MainJob.DRQ_BLOCK, Progress.none());
        clips.adopt(LearnedClipLevels.read(loaded.metadata(), model));
        int weightBits = MainJob.sharedWeightBits(parsed);
        if (branchOnly && uniformBits != null) throw new IllegalArgumentException("--branch-only trains the silhouette, which --uniform does not use");
        if (branchOnly && !(silhouetteWeight > 0)) throw new IllegalArgumentException("--branch-only needs a positive --silhouette-weight, not " + silhouetteWeight);
        boolean learnClips = learnClipLevels && !branchOnly;
        if (uniformBits != null) BitWidths.activation(uniformBits, "--uniform");
        Plans.Receiving scheme = uniformBits == null ? new Plans.Receiving.Region(parsed, false, weightBits, resize, maskOrder)
                : new Plans.Receiving.Uniform(uniformBits, weightBits);
        String trainedFor = uniformBits != null ? "uniform W" + weightBits + "A" + uniformBits
                : (branchOnly ? "the silhouette branch only, under region policy " : "region policy ") + parsed;
        QuantPlan plan = Plans.of(folded, loaded.architecture(), trainedFor, new QuantPlan.SilhouetteSource.Learned(), scheme, Plans.PRE_BRANCH_BITS, clips::alpha);
        Network network = RegionFinetune.network(graph, plan, new Network.RegionTraining(silhouetteWeight, learnClips, branchOnly));

        String logits = dev.silhouette.graph.Models.logits(graph);
        Trainer.Config config = new Trainer.Config(epochs, batch, seed, Batches.Augmentation.CROP_FLIP, logits);
        long steps = Trainer.totalSteps(n, config);
        Trainer.Distillation distillation = null;
        if (distillWeight > 0) {
            Network teacher = new Network(graph);
            String input = graph.inputs().getFirst().name();
            distillation = new Trainer.Distillation(images -> teacher.forward(Map.of(input, images), false).value(logits), distillWeight, distillTemperature);
        }
        Trainer trainer = new Trainer(network, new Optimizer.Sgd(momentum, true, weightDecay), new Schedule.Cosine(lr, 0, steps), train, config, distillation);
        int perEpoch = trainer.batchesPerEpoch();
        Trainer.Evaluation before = Trainer.evaluate(network, heldOut, 500, logits);
        stdout.printf("fine-tuning %s for %s (shared W%d, pre-branch W%dA%d) on %,d training images, %d epochs of %d batches of %d, "
                        + "SGD lr %s cosine, silhouette weight %s, clip levels %s, %s, seed %d; before: %s accuracy %.2f%% in the loop%n",
                loaded.architecture(), trainedFor, weightBits, MainJob.PRE_BRANCH_BITS, MainJob.PRE_BRANCH_BITS, n, epochs, perEpoch, batch, lr, silhouetteWeight, learnClips ? "learned" : "calibrated",
                distillation == null ? "labels only" : distillation + " from the full-precision model", seed,
                heldOutName, 100 * before.accuracy());
        stdout.flush();
        long start = System.nanoTime();
        Trainer.EpochRecord last = null;
        while (!trainer.finished()) {
            int epoch = trainer.epoch();
            long epochStart = System.nanoTime();
            try (Progress bar = Progress.start("epoch " + (epoch + 1) + "/" + epochs, perEpoch, "batches")) {
                last = trainer.runEpoch(heldOut, (e, b, of, loss, correct, size) -> {
                    double secs = (System.nanoTime() - epochStart) / 1e9;
                    bar.stepTo(b);
                    bar.setExtraMessage(String.format(" loss %.4f %.0f img/s", loss, b * (double) batch / secs));
                }, s -> {});
            }
            stdout.printf("epoch %d/%d loss %.4f train accuracy %.4f %s accuracy %.4f in the loop (%.1f s)%n", last.epoch(), epochs, last.trainLoss(),
                    last.trainAccuracy(), heldOutName, last.testAccuracy(), (System.nanoTime() - epochStart) / 1e9);
            stdout.flush();
        }
        double seconds = (System.nanoTime() - start) / 1e9;

        Map<String, String> meta = new LinkedHashMap<>(loaded.metadata());
        Map<String, Object> finetune = new LinkedHashMap<>();
        finetune.put("command", "silhouette " + String.join(" ", spec.commandLine().getParseResult().originalArgs()));
        finetune.put("from", loaded.source());
        finetune.put("policy", uniformBits == null ? parsed.toString() : trainedFor);
        finetune.put(heldOutName + "_accuracy_in_loop_before", before.accuracy());
        finetune.put(heldOutName + "_accuracy_in_loop", last.testAccuracy());
        finetune.put("seconds", Math.round(seconds * 10) / 10.0);
        finetune.put("images_per_second", Math.round((double) trainer.step() * batch / seconds));
        finetune.put("machine", Machine.current().toString());
        meta.put("silhouette.trained_by", "silhouette finetune");
        if (learnClips) meta.put(LearnedClipLevels.KEY, LearnedClipLevels.json(network.clipLevels()));
        meta.put("silhouette.finetune", new Gson().toJson(finetune));
        Trainer.saveModel(network, out, meta);
        stdout.printf("wrote %s (%s accuracy in the loop %.2f%% -> %.2f%%); %.1f s, %.0f images/s on %s%nevaluate it with: bin/silhouette run --model %s --policy '%s'%n",
                out, heldOutName, 100 * before.accuracy(), 100 * last.testAccuracy(), seconds, (double) trainer.step() * batch / seconds, Machine.current(), out, parsed);
        stdout.flush();
        return 0;
    }
}
