package dev.silhouette.spark;

import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructType;

/**
 * A Spark ML {@link Transformer} that classifies a DataFrame of images with a Silhouette model (and
 * quantization plan): each row's image column ({@code array<float>}, {@code array<double>} or
 * {@code binary} unsigned bytes) gets a prediction, optionally the silhouette's mean and maximum, and
 * an error column that names the row id and what is wrong when the row cannot be scored.
 *
 * <pre>{@code
 * Dataset<Row> scored = new SilhouetteClassifier().setModel("model.safetensors").setPlan("plan.json")
 *         .setImageColumn("image").setIdColumn("id").transform(images);
 * }</pre>
 *
 * The model is loaded once per executor JVM ({@link Scoring}), on the GPU Spark's resource
 * scheduling assigned to the task when there is one.
 */
public final class SilhouetteClassifier extends Transformer {
    private final String uid;
    // Spark finds a stage's params by its public no-argument methods returning a Param, so each has one below.
    private final Param<String> model, plan, imageColumn, idColumn, predictionColumn, errorColumn;
    private final IntParam batchSize;
    private final BooleanParam statistics, failOnMalformed;

    public SilhouetteClassifier() {
        this(Identifiable$.MODULE$.randomUID("silhouette"));
    }

    /** The constructor Spark's {@code defaultCopy} calls. */
    public SilhouetteClassifier(String uid) {
        // Params read uid() when made, so they are made here, after it is set.
        this.uid = uid;
        model = new Param<>(this, "model", "what Model.load takes: a catalog name, bundled, or a model file the executors can read (or shipped with --files)");
        plan = new Param<>(this, "plan", "quantization plan JSON (silhouette-plan-1) the executors can read (or shipped with --files); unset: FP32");
        imageColumn = new Param<>(this, "imageColumn", "image column: array<float>, array<double> or binary (unsigned bytes / 255)");
        idColumn = new Param<>(this, "idColumn", "column naming each row in error messages");
        predictionColumn = new Param<>(this, "predictionColumn", "predicted class column (int); statistics columns take it as prefix");
        errorColumn = new Param<>(this, "errorColumn", "why a row was not scored (null when it was)");
        batchSize = new IntParam(this, "batchSize", "rows per model call");
        statistics = new BooleanParam(this, "statistics", "add the silhouette's mean and maximum per image");
        failOnMalformed = new BooleanParam(this, "failOnMalformed", "fail the job on the first malformed row instead of reporting it");
        setDefault(model, "bundled");
        setDefault(imageColumn, "image");
        setDefault(idColumn, "id");
        setDefault(predictionColumn, "prediction");
        setDefault(errorColumn, "error");
        setDefault(batchSize, 64);
        setDefault(statistics, false);
        setDefault(failOnMalformed, false);
    }

    @Override
    public String uid() {
        return uid;
    }

    public Param<String> model() { return model; }
    public Param<String> plan() { return plan; }
    public Param<String> imageColumn() { return imageColumn; }
    public Param<String> idColumn() { return idColumn; }
    public Param<String> predictionColumn() { return predictionColumn; }
    public Param<String> errorColumn() { return errorColumn; }
    public IntParam batchSize() { return batchSize; }
    public BooleanParam statistics() { return statistics; }
    public BooleanParam failOnMalformed() { return failOnMalformed; }

    public SilhouetteClassifier setModel(String v) { set(model, v); return this; }
    public SilhouetteClassifier setPlan(String v) { set(plan, v); return this; }
    public SilhouetteClassifier setImageColumn(String v) { set(imageColumn, v); return this; }
    public SilhouetteClassifier setIdColumn(String v) { set(idColumn, v); return this; }
    public SilhouetteClassifier setPredictionColumn(String v) { set(predictionColumn, v); return this; }
    public SilhouetteClassifier setErrorColumn(String v) { set(errorColumn, v); return this; }
    public SilhouetteClassifier setBatchSize(int v) { set(batchSize, v); return this; }
    public SilhouetteClassifier setStatistics(boolean v) { set(statistics, v); return this; }
    public SilhouetteClassifier setFailOnMalformed(boolean v) { set(failOnMalformed, v); return this; }

    Scoring.Settings settings() {
        return new Scoring.Settings($(model), isDefined(plan) ? $(plan) : null, $(imageColumn), $(idColumn), $(predictionColumn), $(errorColumn),
                (Integer) $(batchSize), (Boolean) $(statistics), (Boolean) $(failOnMalformed));
    }

    @Override
    public StructType transformSchema(StructType schema) {
        return settings().outputSchema(schema);
    }

    @Override
    public Dataset<Row> transform(Dataset<?> dataset) {
        Scoring.Settings s = settings();
        StructType in = dataset.schema(), out = s.outputSchema(in);
        return dataset.toDF().mapPartitions((MapPartitionsFunction<Row, Row>) rows -> Scoring.score(rows, s, in), Encoders.row(out));
    }

    @Override
    public SilhouetteClassifier copy(ParamMap extra) {
        return defaultCopy(extra);
    }
}
