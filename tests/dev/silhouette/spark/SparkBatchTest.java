package dev.silhouette.spark;

import dev.silhouette.api.Model;
import dev.silhouette.api.Session;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.io.Idx;
import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.pipeline.TestPlans;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Tensor;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.testng.SkipException;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertNull;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/**
 * Batch scoring on Spark in local[2] (one session for the class: a start costs seconds) against the same
 * model run in this process through the API: the whole Fashion-MNIST test split as Parquet, image for
 * image; a quantization plan; malformed rows; one model load per executor JVM and key.
 */
public class SparkBatchTest {
    static final Path FASHION = Path.of("/usr/share/datasets/fashion-mnist");
    /**
     * Test images scored: the first 2,000 by default, to keep CI's time small; -Dsilhouette.spark.images=10000 scores
     * the whole split (run so and recorded in docs/results/spark.md).
     */
    static final int IMAGES = Integer.getInteger("silhouette.spark.images", 2_000);
    private SparkSession spark;
    private Path work;
    private Idx.Array images;
    private int[] labels;

    @BeforeClass
    public void start() throws Exception {
        Path file = FASHION.resolve("t10k-images-idx3-ubyte.gz");
        if (!Files.exists(file)) throw new SkipException("needs Debian's dataset-fashion-mnist (" + file + "); .ci/run installs it");
        images = Idx.read(file);
        labels = Idx.readLabels(FASHION.resolve("t10k-labels-idx1-ubyte.gz"));
        work = Files.createTempDirectory("silhouette-spark");
        spark = SparkSession.builder().master("local[2]").appName("SparkBatchTest").config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "4").config("spark.driver.host", "127.0.0.1").getOrCreate();
    }

    @AfterClass(alwaysRun = true)
    public void stop() {
        if (spark != null) spark.stop();
    }

    /** The test images as the model's input, [from, to). */
    private Tensor tensor(int from, int to) {
        int per = 28 * 28;
        float[] v = new float[(to - from) * per];
        for (int i = 0; i < v.length; i++) v[i] = (images.data()[from * per + i] & 0xff) / 255f;
        return new Tensor(dev.silhouette.tensor.Shape.of(to - from, 1, 28, 28), v);
    }

    /** Predictions and silhouette means of one process, in batches of 100 (Spark's are 64). */
    private static void single(Session session, Tensor all, int[] predictions, double[] means) {
        int n = all.shape().dim(0);
        for (int from = 0; from < n; from += 100) {
            int to = Math.min(n, from + 100);
            Map<String, Tensor> out = session.run(Map.of("input", all.slice(from, to)), List.of(Models.LOGITS, Models.SILHOUETTE));
            float[] logits = out.get(Models.LOGITS).data(), s = out.get(Models.SILHOUETTE).data();
            int per = s.length / (to - from);
            for (int i = 0; i < to - from; i++) {
                int best = 0;
                for (int c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
                predictions[from + i] = best;
                if (means != null) {
                    double sum = 0;
                    for (int j = i * per; j < (i + 1) * per; j++) sum += s[j];
                    means[from + i] = sum / per;
                }
            }
        }
    }

    @Test
    public void theWholeTestSplitAsParquetMatchesOneProcess() throws Exception {
        Path parquet = work.resolve("t10k.parquet"), scored = work.resolve("scored.parquet");
        int n = Math.min(IMAGES, labels.length);
        ImageTables.fromIdx(spark, FASHION.resolve("t10k-images-idx3-ubyte.gz"), FASHION.resolve("t10k-labels-idx1-ubyte.gz"), 8, n)
                .write().parquet(parquet.toString());
        BatchScore job = new BatchScore();
        new picocli.CommandLine(job).parseArgs("--input", parquet.toString(), "--output", scored.toString(), "--statistics");
        BatchScore.Summary summary = job.run(spark);
        assertEquals(summary, new BatchScore.Summary(n, 0));
        // Eight tasks on two threads in one executor JVM (local mode), after the other tests' jobs on the same model: one load.
        assertEquals(Scoring.loads(ModelLoader.BUNDLED, null), 1, "loads of the bundled model in one executor JVM");

        int[] expected = new int[n];
        double[] means = new double[n];
        try (Session session = Model.load(ModelLoader.BUNDLED).session("cpu")) {
            single(session, tensor(0, n), expected, means);
        }
        List<Row> rows = spark.read().parquet(scored.toString()).select("id", "label", "prediction", "prediction_silhouette_mean", "error").collectAsList();
        assertEquals(rows.size(), n);
        boolean[] seen = new boolean[n];
        int correct = 0, expectedCorrect = 0;
        for (Row r : rows) {
            int id = Math.toIntExact(r.getLong(0));
            assertTrue(!seen[id], "id " + id + " twice");
            seen[id] = true;
            assertEquals(r.getInt(1), labels[id]);
            assertEquals(r.getInt(2), expected[id], "image " + id);
            assertEquals(r.getDouble(3), means[id], 1e-5, "silhouette mean of image " + id);
            assertTrue(r.isNullAt(4));
            if (r.getInt(2) == labels[id]) correct++;
        }
        for (int i = 0; i < n; i++) if (expected[i] == labels[i]) expectedCorrect++;
        assertEquals(correct, expectedCorrect);
        assertTrue(correct > 0.9 * n, "accuracy " + correct + " / " + n);
    }

    @Test
    public void aPlanScoresAsTheQuantizedModelDoes() throws Exception {
        Model fp32 = Model.load(ModelLoader.BUNDLED);
        Path plan = work.resolve("region.json");
        QuantPlanJson.save(TestPlans.plan(Passes.foldBatchNorm(fp32.graph()), new Plans.Receiving.Region(RegionPolicy.parse("2:50,3:30,4:20"), false, 4,
                Op.Interpolate.Mode.NEAREST, Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD), (v, b) -> 4f), plan);
        int n = 64;
        List<Row> rows = new ArrayList<>();
        Tensor t = tensor(0, n);
        int per = 28 * 28;
        for (int i = 0; i < n; i++) {
            List<Float> pixels = new ArrayList<>(per);
            for (int j = 0; j < per; j++) pixels.add(t.data()[i * per + j]);
            rows.add(RowFactory.create("img-" + i, pixels));
        }
        StructType schema = new StructType().add("name", DataTypes.StringType).add("pixels", DataTypes.createArrayType(DataTypes.FloatType));
        Dataset<Row> table = spark.createDataFrame(rows, schema).repartition(3);
        List<Row> out = new SilhouetteClassifier().setPlan(plan.toString()).setImageColumn("pixels").setIdColumn("name").setPredictionColumn("class")
                .setBatchSize(16).transform(table).select("name", "class", "error").collectAsList();
        int[] expected = new int[n];
        try (Session session = fp32.withPlan(plan).session("cpu")) {
            single(session, t, expected, null);
        }
        int differentFromFp32 = 0;
        int[] fp32Predictions = new int[n];
        try (Session session = fp32.session("cpu")) {
            single(session, t, fp32Predictions, null);
        }
        assertEquals(out.size(), n);
        for (Row r : out) {
            int i = Integer.parseInt(r.getString(0).substring(4));
            assertEquals(r.getInt(1), expected[i], r.getString(0));
            assertNull(r.get(2));
            if (expected[i] != fp32Predictions[i]) differentFromFp32++;
        }
        // The plan was applied: the 2/3/4-bit model disagrees with FP32 on some images.
        assertTrue(differentFromFp32 > 0, "the quantized predictions equal FP32's on all " + n + " images");
        assertEquals(Scoring.loads(ModelLoader.BUNDLED, plan.toString()), 1, "three partitions, one load of the model with its plan");
    }

    @Test
    public void malformedRowsAreReportedByIdAndFailTheJobOnlyWhenAsked() {
        int per = 28 * 28;
        Tensor t = tensor(0, 2);
        List<Float> good0 = new ArrayList<>(), good1 = new ArrayList<>();
        for (int j = 0; j < per; j++) {
            good0.add(t.data()[j]);
            good1.add(t.data()[per + j]);
        }
        List<Float> withNull = new ArrayList<>(good0);
        withNull.set(100, null);
        List<Row> rows = List.of(RowFactory.create(10L, good0), RowFactory.create(11L, good0.subList(0, per - 1)), RowFactory.create(12L, null),
                RowFactory.create(13L, withNull), RowFactory.create(14L, good1));
        StructType schema = new StructType().add("id", DataTypes.LongType).add("image", DataTypes.createArrayType(DataTypes.FloatType, true));
        Dataset<Row> table = spark.createDataFrame(rows, schema).coalesce(1);
        Map<Long, Row> byId = new HashMap<>();
        for (Row r : new SilhouetteClassifier().setBatchSize(4).transform(table).collectAsList()) byId.put(r.getLong(0), r);
        int[] expected = new int[2];
        try (Session session = Model.load(ModelLoader.BUNDLED).session("cpu")) {
            single(session, t, expected, null);
        }
        assertEquals(byId.get(10L).getInt(2), expected[0]);
        assertEquals(byId.get(14L).getInt(2), expected[1], "the row after the malformed ones, in the next batch");
        for (long id : new long[] {10, 14}) assertNull(byId.get(id).get(3));
        Map<Long, String> reasons = Map.of(11L, "783 values, not 784", 12L, "the image is null", 13L, "value 100 of the image is null");
        reasons.forEach((id, reason) -> {
            Row r = byId.get(id);
            assertTrue(r.isNullAt(2), "row " + id + " has no prediction");
            assertTrue(r.getString(3).contains("row id=" + id + ": ") && r.getString(3).contains(reason), r.getString(3));
        });
        // However many jobs ran on this model in this JVM, it was loaded once.
        assertEquals(Scoring.loads(ModelLoader.BUNDLED, null), 1);

        Exception failed = expectThrows(Exception.class, () -> new SilhouetteClassifier().setFailOnMalformed(true).transform(table).collectAsList());
        String chain = "";
        for (Throwable e = failed; e != null; e = e.getCause()) chain += e.getMessage() + "\n";
        assertTrue(chain.contains("malformed row in column 'image': row id=11: the image has 783 values, not 784"), chain);
    }

    @Test
    public void columnsAreCheckedBeforeAnyTaskRuns() {
        StructType schema = new StructType().add("id", DataTypes.LongType).add("image", DataTypes.StringType);
        Dataset<Row> table = spark.createDataFrame(List.of(RowFactory.create(1L, "x")), schema);
        assertEquals(expectThrows(IllegalArgumentException.class, () -> new SilhouetteClassifier().transform(table)).getMessage(),
                "image column 'image' is string; expected array<float>, array<double> or binary (unsigned bytes)");
        assertTrue(expectThrows(IllegalArgumentException.class, () -> new SilhouetteClassifier().setIdColumn("key").transform(table)).getMessage()
                .startsWith("row id column 'key' is not in the input"));
        Dataset<Row> bytes = spark.createDataFrame(List.of(RowFactory.create(1L, new byte[784])),
                new StructType().add("id", DataTypes.LongType).add("image", DataTypes.BinaryType));
        assertEquals(expectThrows(IllegalArgumentException.class, () -> new SilhouetteClassifier().setErrorColumn("id").transform(bytes)).getMessage(),
                "output column 'id' is already in the input; choose another prediction or error column");
    }

    @Test
    public void aTaskTakesTheGpuSparkAssignedIt() {
        assertEquals(Scoring.Placement.of(Map.of()), new Scoring.Placement("cpu", 0));
        assertEquals(Scoring.Placement.of(Map.of("gpu", new ResourceInformation("gpu", new String[] {"3"}))), new Scoring.Placement("cuda", 3));
        assertEquals(Scoring.Placement.of(Map.of("fpga", new ResourceInformation("fpga", new String[] {"0"}))), new Scoring.Placement("cpu", 0));
        assertTrue(expectThrows(IllegalArgumentException.class, () -> Scoring.Placement.of(Map.of("gpu", new ResourceInformation("gpu", new String[] {"GPU-5f2a"}))))
                .getMessage().contains("GPU-5f2a"));
    }
}
