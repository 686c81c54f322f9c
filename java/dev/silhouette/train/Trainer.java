package dev.silhouette.train;

import com.google.gson.Gson;
import com.google.gson.reflect.TypeToken;
import dev.silhouette.graph.Graph;
import dev.silhouette.io.Idx;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.tensor.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The training loop: mini-batch SGD over epochs with a schedule per step, evaluation after each epoch,
 * checkpoints (weights, optimizer state, position and history) and exact resume. Given the same seed,
 * data and settings, two runs produce bitwise the same weights, interrupted or not.
 *
 * <p>The loss is cross-entropy on the logits output only. The 1x1 silhouette branch of the zoo's models is
 * therefore not trained here (no gradient reaches it, so the optimizer skips it; its BatchNorm running
 * statistics still follow the data); the attention branch is, through its auxiliary logits blended into
 * the prediction ({@link dev.silhouette.graph.Op.LogitBlend}). Region fine-tuning ({@link RegionFinetune}) routes its mask into the
 * forward, but through hard thresholds, which pass no gradient either.
 */
public final class Trainer {
    /** One finished epoch: mean training loss and accuracy over its batches, test accuracy after it. */
    public record EpochRecord(int epoch, double trainLoss, double trainAccuracy, double testLoss, double testAccuracy, double seconds) {}

    /** Everything a run is started with; a checkpoint made under other settings is refused on resume. */
    public record Config(int epochs, int batchSize, long seed, Batches.Augmentation augmentation, String logitsOutput) {
        public Config {
            if (epochs < 1) throw new IllegalArgumentException("epochs " + epochs + " must be at least 1");
            if (batchSize < 1) throw new IllegalArgumentException("batch size " + batchSize + " must be at least 1");
        }
    }

    /**
     * Knowledge distillation from a teacher (the full-precision model a quantized one is fine-tuned from): the
     * teacher sees the same augmented batch, and {@link Loss#distillation} mixes its softened predictions into
     * the loss.
     */
    public record Distillation(java.util.function.UnaryOperator<Tensor> teacher, float weight, float temperature) {
        public Distillation {
            if (!(weight > 0 && weight <= 1)) throw new IllegalArgumentException("distillation weight " + weight + " must be above 0 and at most 1");
            if (!(temperature > 0) || Float.isInfinite(temperature)) throw new IllegalArgumentException("distillation temperature " + temperature + " must be positive and finite");
        }

        @Override
        public String toString() {
            return "distillation weight " + weight + " temperature " + temperature;
        }
    }

    /** Called after every step (for progress bars). */
    public interface Listener {
        void step(int epoch, int batchInEpoch, int batchesInEpoch, double loss, int correct, int batchSize);
    }

    static final String META_EPOCH = "silhouette.train.epoch", META_STEP = "silhouette.train.step",
            META_OPTIMIZER = "silhouette.train.optimizer", META_CONFIG = "silhouette.train.config", META_RECIPE = "silhouette.train.recipe", META_HISTORY = "silhouette.train.history";
    private static final String PARAM = "param.", OPTIM = "optimizer.";

    private final Network network;
    private final Optimizer optimizer;
    private final Schedule schedule;
    private final Config config;
    private final Idx.Dataset train;
    private final int batchesPerEpoch;
    private final Distillation distillation;
    private long step;
    private final List<EpochRecord> history = new ArrayList<>();
    // Sums over the epoch in progress (restored on resume so a resumed epoch reports the same means).
    private double epochLossSum;
    private long epochCorrect;

    public Trainer(Network network, Optimizer optimizer, Schedule schedule, Idx.Dataset train, Config config) {
        this(network, optimizer, schedule, train, config, null);
    }

    /** @param distillation the teacher and its share of the loss; null trains on the labels alone */
    public Trainer(Network network, Optimizer optimizer, Schedule schedule, Idx.Dataset train, Config config, Distillation distillation) {
        this.distillation = distillation;
        this.network = network;
        this.optimizer = optimizer;
        this.schedule = schedule;
        this.config = config;
        this.train = train;
        this.batchesPerEpoch = Batches.batchesPerEpoch(train.labels().length, config.batchSize());
    }

    public static long totalSteps(int samples, Config config) {
        return (long) Batches.batchesPerEpoch(samples, config.batchSize()) * config.epochs();
    }

    public Network network() { return network; }
    public long step() { return step; }
    public int batchesPerEpoch() { return batchesPerEpoch; }
    public List<EpochRecord> history() { return List.copyOf(history); }

    /** The epoch the next step belongs to (0-based). */
    public int epoch() {
        return (int) (step / batchesPerEpoch);
    }

    public boolean finished() {
        return epoch() >= config.epochs();
    }

    /** One optimizer step on one batch; returns the loss and the number of correct predictions. */
    public Loss.Result trainStep(Tensor images, int[] labels) {
        Network.Pass pass = network.forward(Map.of(network.graph().inputs().getFirst().name(), images), true);
        Tensor logits = pass.value(config.logitsOutput());
        Loss.Result loss = distillation == null ? Loss.softmaxCrossEntropy(logits, labels)
                : Loss.distillation(logits, distillation.teacher().apply(images), labels, distillation.weight(), distillation.temperature());
        if (!Double.isFinite(loss.loss())) {
            throw new IllegalStateException("the training loss became " + loss.loss() + " at epoch " + (epoch() + 1) + ", step " + step
                    + " (learning rate " + schedule.lr(step) + "); lower the learning rate or resume from the last checkpoint with other settings");
        }
        Map<String, Tensor> grads = network.backward(pass, Map.of(config.logitsOutput(), loss.grad()));
        optimizer.step(network.parameters(), grads, schedule.lr(step), schedule.momentum(step, optimizer.baseMomentum()));
        step++;
        return loss;
    }

    /**
     * Trains until the end of the current epoch (from mid-epoch after a resume), then evaluates.
     * {@code afterStep} runs with the step count after every step but the epoch's last, and after the
     * epoch's record is added (so a checkpoint taken there holds the finished epoch's record).
     */
    public EpochRecord runEpoch(Idx.Dataset test, Listener listener, java.util.function.LongConsumer afterStep) {
        int epoch = epoch();
        int first = (int) (step - (long) epoch * batchesPerEpoch);
        long start = System.nanoTime();
        try (Batches batches = new Batches(train, config.batchSize(), config.seed(), epoch, first, true, config.augmentation())) {
            while (batches.hasNext()) {
                Batches.Batch b = batches.next();
                Loss.Result r = trainStep(b.images(), b.labels());
                epochLossSum += r.loss();
                epochCorrect += r.correct();
                if (listener != null) listener.step(epoch, b.index() + 1, batchesPerEpoch, r.loss(), r.correct(), b.labels().length);
                if (b.index() + 1 < batchesPerEpoch) afterStep.accept(step);
            }
        }
        Evaluation eval = evaluate(network, test, 500, config.logitsOutput());
        EpochRecord record = new EpochRecord(epoch + 1, epochLossSum / batchesPerEpoch,
                (double) epochCorrect / ((long) batchesPerEpoch * config.batchSize()), eval.loss(), eval.accuracy(), (System.nanoTime() - start) / 1e9);
        history.add(record);
        epochLossSum = 0;
        epochCorrect = 0;
        afterStep.accept(step);
        return record;
    }

    public record Evaluation(double loss, double accuracy, int correct, int total) {}

    /** Inference-mode accuracy and mean loss (BatchNorm with running statistics). */
    public static Evaluation evaluate(Network network, Idx.Dataset data, int batch, String logits) {
        int n = data.labels().length, correct = 0;
        double lossSum = 0;
        String input = network.graph().inputs().getFirst().name();
        for (int from = 0; from < n; from += batch) {
            int to = Math.min(n, from + batch);
            Tensor out = network.forward(Map.of(input, data.images().slice(from, to)), false).value(logits);
            Loss.Result r = Loss.softmaxCrossEntropy(out, java.util.Arrays.copyOfRange(data.labels(), from, to));
            lossSum += r.loss() * (to - from);
            correct += r.correct();
        }
        return new Evaluation(lossSum / n, (double) correct / n, correct, n);
    }

    /** Writes a checkpoint: all parameters, the optimizer state, the position and the history. */
    public void save(Path path, Map<String, String> modelMetadata) {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        network.parameters().forEach((name, t) -> tensors.put(PARAM + name, t));
        optimizer.state().forEach((name, t) -> tensors.put(OPTIM + name, t));
        Map<String, String> meta = new LinkedHashMap<>(modelMetadata);
        meta.put(META_EPOCH, Integer.toString(epoch()));
        meta.put(META_STEP, Long.toString(step));
        meta.put(META_OPTIMIZER, optimizer.name());
        meta.put(META_CONFIG, new Gson().toJson(config));
        meta.put(META_RECIPE, recipe());
        meta.put(META_HISTORY, new Gson().toJson(new Object[] {history, epochLossSum, epochCorrect}));
        SafeTensors.write(path, tensors, meta);
    }

    /** Restores a checkpoint written by {@link #save} under the same settings. */
    public void resume(Path path) {
        if (!Files.isRegularFile(path)) throw new IllegalArgumentException("checkpoint " + path + " does not exist");
        Map<String, String> meta = SafeTensors.readMetadata(path);
        if (!meta.containsKey(META_STEP)) throw new IllegalArgumentException(path + " is not a training checkpoint (no '" + META_STEP + "' metadata)");
        if (!optimizer.name().equals(meta.get(META_OPTIMIZER))) {
            throw new IllegalArgumentException("checkpoint " + path + " was made with optimizer " + meta.get(META_OPTIMIZER) + ", this run uses " + optimizer.name());
        }
        String saved = meta.get(META_CONFIG), mine = new Gson().toJson(config);
        if (!mine.equals(saved)) {
            throw new IllegalArgumentException("checkpoint " + path + " was made with settings " + saved + ", this run has " + mine + "; resume with the same settings");
        }
        if (!recipe().equals(meta.get(META_RECIPE))) {
            throw new IllegalArgumentException("checkpoint " + path + " was made with " + meta.get(META_RECIPE) + ", this run has " + recipe() + "; resume with the same settings");
        }
        Map<String, Tensor> tensors = SafeTensors.read(path);
        Map<String, Tensor> params = new LinkedHashMap<>(), state = new LinkedHashMap<>();
        tensors.forEach((name, t) -> {
            if (name.startsWith(PARAM)) params.put(name.substring(PARAM.length()), t);
            else if (name.startsWith(OPTIM)) state.put(name.substring(OPTIM.length()), t);
        });
        for (String name : network.parameters().keySet()) {
            if (!params.containsKey(name)) throw new IllegalArgumentException("checkpoint " + path + " lacks parameter '" + name + "' of this network");
        }
        network.load(params);
        optimizer.loadState(state);
        step = Long.parseLong(meta.get(META_STEP));
        history.clear();
        Object[] h = new Gson().fromJson(meta.get(META_HISTORY), Object[].class);
        List<EpochRecord> records = new Gson().fromJson(new Gson().toJson(h[0]), new TypeToken<List<EpochRecord>>() {}.getType());
        history.addAll(records);
        epochLossSum = ((Number) h[1]).doubleValue();
        epochCorrect = ((Number) h[2]).longValue();
    }

    /** Optimizer, schedule and quantizers: what besides the config must match for an exact resume. */
    private String recipe() {
        return optimizer.describe() + " " + schedule + " quantizers " + network.quantization() + (distillation == null ? "" : " " + distillation);
    }

    /** The trained weights as a model file ModelLoader reads (graph parameters only, with the model's metadata). */
    public static void saveModel(Network network, Path path, Map<String, String> metadata) {
        Graph g = network.toGraph();
        SafeTensors.write(path, g.parameters(), metadata);
    }
}
