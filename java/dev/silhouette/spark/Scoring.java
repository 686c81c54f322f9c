package dev.silhouette.spark;

import dev.silhouette.api.Model;
import dev.silhouette.api.Session;
import dev.silhouette.api.TensorInfo;
import dev.silhouette.graph.Models;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.apache.spark.SparkFiles;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Scores the rows of one Spark partition with a Silhouette model: rows are read in fixed-size batches,
 * each batch's well-formed images run as one {@link Session} call, and every row comes back in its order
 * with the prediction (and, when asked, silhouette statistics) or the reason it could not be scored.
 * The session is loaded once per executor JVM and key (model, plan, device), not once per task: Spark
 * runs many tasks in one executor, and a model load (and a plan's rewrite) costs far more than a batch.
 */
public final class Scoring {
    private Scoring() {}

    /** What the image column may hold: floats or doubles (the model's input values), or unsigned bytes (divided by 255, as IDX pixels). */
    static boolean imageType(DataType t) {
        return t instanceof BinaryType || t instanceof ArrayType a && (a.elementType() instanceof FloatType || a.elementType() instanceof DoubleType);
    }

    /** Everything a task needs, shipped to the executors with the closure. */
    public record Settings(String model, String plan, String imageColumn, String idColumn, String predictionColumn, String errorColumn,
                           int batchSize, boolean statistics, boolean failOnMalformed) implements Serializable {
        public static final int MAX_BATCH = 4096;

        public Settings {
            if (model == null || model.isBlank()) throw new IllegalArgumentException("no model given: a catalog name, bundled, or a model file the executors can read");
            if (batchSize < 1 || batchSize > MAX_BATCH) throw new IllegalArgumentException("batch size " + batchSize + " must be between 1 and " + MAX_BATCH);
        }

        /** The columns added to the input's. */
        List<StructField> added() {
            List<StructField> f = new ArrayList<>(List.of(DataTypes.createStructField(predictionColumn, DataTypes.IntegerType, true)));
            if (statistics) {
                f.add(DataTypes.createStructField(predictionColumn + "_silhouette_mean", DataTypes.DoubleType, true));
                f.add(DataTypes.createStructField(predictionColumn + "_silhouette_max", DataTypes.DoubleType, true));
            }
            f.add(DataTypes.createStructField(errorColumn, DataTypes.StringType, true));
            return f;
        }

        /** The output schema: the input's columns, then {@link #added}; a clash or a missing or mistyped column is refused by name. */
        StructType outputSchema(StructType input) {
            List<String> names = Arrays.asList(input.fieldNames());
            if (!names.contains(imageColumn)) throw new IllegalArgumentException("image column '" + imageColumn + "' is not in the input; columns are " + names);
            if (!names.contains(idColumn)) throw new IllegalArgumentException("row id column '" + idColumn + "' is not in the input; columns are " + names);
            DataType t = input.apply(imageColumn).dataType();
            if (!imageType(t)) {
                throw new IllegalArgumentException("image column '" + imageColumn + "' is " + t.simpleString() + "; expected array<float>, array<double> or binary (unsigned bytes)");
            }
            StructType out = input;
            for (StructField f : added()) {
                if (names.contains(f.name())) throw new IllegalArgumentException("output column '" + f.name() + "' is already in the input; choose another prediction or error column");
                out = out.add(f);
            }
            return out;
        }
    }

    /** Where a task runs: the GPU Spark's resource scheduling gave it ({@code spark.task.resource.gpu.amount}), else the CPU. */
    public record Placement(String backend, int device) implements Serializable {
        static final String GPU = "gpu";

        /** From a task's resources ({@link TaskContext#resourcesJMap()}): the first assigned GPU address, else the CPU. */
        public static Placement of(Map<String, ResourceInformation> resources) {
            ResourceInformation gpu = resources.get(GPU);
            if (gpu == null || gpu.addresses().length == 0) return new Placement("cpu", 0);
            String address = gpu.addresses()[0];
            try {
                return new Placement("cuda", Integer.parseInt(address.trim()));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("GPU address '" + address + "' from Spark's resource scheduling is not a device index (the discovery script must print indices)");
            }
        }

        static Placement ofCurrentTask() {
            TaskContext task = TaskContext.get();
            return task == null ? new Placement("cpu", 0) : of(task.resourcesJMap());
        }
    }

    /** The executor JVM's sessions, one per (model, plan, placement), loaded on first use and kept for the JVM's life. */
    private record Key(String model, String plan, Placement placement) {}

    private static final Map<Key, Loaded> SESSIONS = new ConcurrentHashMap<>();
    private static final Map<List<String>, AtomicInteger> LOADS = new ConcurrentHashMap<>();

    /** A loaded session and what scoring reads from it once. */
    record Loaded(Session session, String input, int[] sample, int values, String logits, String silhouette) {}

    /** Loads of (model, plan) in this JVM since it started, on any device (a task that found its session loaded counts nothing). */
    public static int loads(String model, String plan) {
        AtomicInteger n = LOADS.get(Arrays.asList(model, plan));
        return n == null ? 0 : n.get();
    }

    static Loaded session(Settings s, Placement placement) {
        Loaded loaded = SESSIONS.computeIfAbsent(new Key(s.model(), s.plan(), placement), Scoring::load);
        if (s.statistics() && loaded.silhouette() == null) {
            throw new IllegalArgumentException("silhouette statistics were asked for but model " + s.model() + " has no '" + Models.SILHOUETTE + "' output; outputs are "
                    + loaded.session().outputs().stream().map(TensorInfo::name).toList());
        }
        return loaded;
    }

    private static Loaded load(Key k) {
        LOADS.computeIfAbsent(Arrays.asList(k.model(), k.plan()), x -> new AtomicInteger()).incrementAndGet();
        Model model = Model.load(local(k.model()));
        if (k.plan() != null) model = model.withPlan(Path.of(local(k.plan())));
        List<TensorInfo> inputs = model.inputs();
        if (inputs.size() != 1) throw new IllegalArgumentException("model " + k.model() + " has " + inputs.size() + " inputs; batch scoring takes models with one image input");
        List<String> outputs = model.outputs().stream().map(TensorInfo::name).toList();
        String logits = outputs.contains(Models.logits(model.graph())) ? Models.logits(model.graph()) : outputs.getFirst();
        String silhouette = outputs.contains(Models.SILHOUETTE) ? Models.SILHOUETTE : null;
        int[] sample = inputs.getFirst().sampleDims();
        Session session = model.session(k.placement().backend(), k.placement().device());
        return new Loaded(session, inputs.getFirst().name(), sample, Shape.of(sample).size(), logits, silhouette);
    }

    /** A file shipped with {@code spark-submit --files} is found by its name in the task's work folder; any other spec is used as it is. */
    private static String local(String spec) {
        if (Files.exists(Path.of(spec)) || spec.contains("/") || TaskContext.get() == null) return spec;
        String shipped = SparkFiles.get(spec);
        return Files.exists(Path.of(shipped)) ? shipped : spec;
    }

    /** Scores a partition lazily, one batch at a time (Spark's mapPartitions contract: the iterator is consumed as the rows are written). */
    public static Iterator<Row> score(Iterator<Row> rows, Settings s, StructType inputSchema) {
        int image = inputSchema.fieldIndex(s.imageColumn()), id = inputSchema.fieldIndex(s.idColumn());
        boolean bytes = inputSchema.apply(image).dataType() instanceof BinaryType;
        if (!rows.hasNext()) return Collections.emptyIterator();   // an empty partition loads nothing
        Loaded loaded = session(s, Placement.ofCurrentTask());
        return new Iterator<>() {
            private Iterator<Row> batch = List.<Row>of().iterator();

            @Override
            public boolean hasNext() {
                if (!batch.hasNext() && rows.hasNext()) batch = nextBatch(rows, s, loaded, image, id, bytes).iterator();
                return batch.hasNext();
            }

            @Override
            public Row next() {
                if (!hasNext()) throw new NoSuchElementException();
                return batch.next();
            }
        };
    }

    /** The next batch: up to batchSize rows, the well-formed among them run as one call, all returned in order. */
    private static List<Row> nextBatch(Iterator<Row> rows, Settings s, Loaded loaded, int image, int id, boolean bytes) {
        List<Row> in = new ArrayList<>(s.batchSize());
        List<String> errors = new ArrayList<>(s.batchSize());
        float[] pixels = new float[s.batchSize() * loaded.values()];
        int good = 0;
        while (in.size() < s.batchSize() && rows.hasNext()) {
            Row r = rows.next();
            String error = read(r, image, bytes, loaded.values(), pixels, good * loaded.values());
            if (error != null) {
                error = "row " + s.idColumn() + "=" + r.get(id) + ": " + error + " (model " + s.model() + " takes " + Arrays.toString(loaded.sample()) + ")";
                if (s.failOnMalformed()) throw new IllegalArgumentException("malformed row in column '" + s.imageColumn() + "': " + error);
            } else good++;
            in.add(r);
            errors.add(error);
        }
        int[] predictions = new int[good];
        double[] means = new double[good], maxima = new double[good];
        if (good > 0) {
            int[] dims = new int[loaded.sample().length + 1];
            dims[0] = good;
            System.arraycopy(loaded.sample(), 0, dims, 1, loaded.sample().length);
            List<String> requested = s.statistics() ? List.of(loaded.logits(), loaded.silhouette()) : List.of(loaded.logits());
            Map<String, Tensor> out = loaded.session().run(Map.of(loaded.input(), new Tensor(Shape.of(dims), Arrays.copyOf(pixels, good * loaded.values()))), requested);
            argmax(out.get(loaded.logits()), predictions);
            if (s.statistics()) statistics(out.get(loaded.silhouette()), means, maxima);
        }
        List<Row> result = new ArrayList<>(in.size());
        int k = 0;
        for (int i = 0; i < in.size(); i++) {
            Row r = in.get(i);
            Object[] values = Arrays.copyOf(rowValues(r), r.length() + (s.statistics() ? 4 : 2));
            int at = r.length();
            boolean ok = errors.get(i) == null;
            values[at++] = ok ? predictions[k] : null;
            if (s.statistics()) {
                values[at++] = ok ? means[k] : null;
                values[at++] = ok ? maxima[k] : null;
            }
            values[at] = errors.get(i);
            if (ok) k++;
            result.add(RowFactory.create(values));
        }
        return result;
    }

    private static Object[] rowValues(Row r) {
        Object[] v = new Object[r.length()];
        for (int i = 0; i < v.length; i++) v[i] = r.get(i);
        return v;
    }

    /** Copies a row's image into {@code to} at {@code offset}; returns what is wrong with it instead, or null. */
    static String read(Row r, int column, boolean bytes, int values, float[] to, int offset) {
        if (r.isNullAt(column)) return "the image is null";
        if (bytes) {
            byte[] b = r.getAs(column);
            if (b.length != values) return "the image has " + b.length + " bytes, not " + values;
            for (int i = 0; i < values; i++) to[offset + i] = (b[i] & 0xff) / 255f;
            return null;
        }
        List<Object> list = r.getList(column);
        if (list.size() != values) return "the image has " + list.size() + " values, not " + values;
        for (int i = 0; i < values; i++) {
            Object v = list.get(i);
            if (v == null) return "value " + i + " of the image is null";
            to[offset + i] = ((Number) v).floatValue();
        }
        return null;
    }

    private static void argmax(Tensor logits, int[] into) {
        int classes = logits.shape().dim(1);
        float[] v = logits.data();
        for (int i = 0; i < into.length; i++) {
            int best = 0;
            for (int c = 1; c < classes; c++) if (v[i * classes + c] > v[i * classes + best]) best = c;
            into[i] = best;
        }
    }

    /** Per image: the silhouette's mean and maximum (how much of the image, and how strongly, the branch marks as important). */
    private static void statistics(Tensor silhouette, double[] means, double[] maxima) {
        int per = silhouette.shape().size() / silhouette.shape().dim(0);
        float[] v = silhouette.data();
        for (int i = 0; i < means.length; i++) {
            double sum = 0, max = Double.NEGATIVE_INFINITY;
            for (int j = i * per; j < (i + 1) * per; j++) {
                sum += v[j];
                max = Math.max(max, v[j]);
            }
            means[i] = sum / per;
            maxima[i] = max;
        }
    }
}
