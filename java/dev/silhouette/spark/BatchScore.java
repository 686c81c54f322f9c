package dev.silhouette.spark;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * The spark-submit entry point: scores a Parquet table of images (or an IDX folder laid out as
 * Fashion-MNIST's) with {@link SilhouetteClassifier} and writes the predictions as Parquet, without the
 * image column. Malformed rows are written with their error and counted on stderr.
 *
 * <pre>
 * spark-submit --class dev.silhouette.spark.BatchScore ... target/silhouette.jar --input images.parquet --output scored.parquet --model bundled
 * </pre>
 */
@Command(name = "silhouette-batch-score", mixinStandardHelpOptions = true, description = "Scores a table of images on Spark with a Silhouette model and plan.")
public final class BatchScore implements Callable<Integer> {
    @Option(names = "--input", description = "Parquet table with an id column and an image column (array<float>, array<double> or binary)") String input;
    @Option(names = "--idx", description = "instead of --input: a folder with t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz)") Path idx;
    @Option(names = "--partitions", defaultValue = "8", description = "partitions of an --idx table (default: ${DEFAULT-VALUE})") int partitions;
    @Option(names = "--output", required = true, description = "Parquet folder to write (must not exist)") String output;
    @Option(names = "--model", defaultValue = "bundled", description = "what Model.load takes, readable on the executors or shipped with --files (default: ${DEFAULT-VALUE})") String model;
    @Option(names = "--plan", description = "quantization plan JSON, readable on the executors or shipped with --files") String plan;
    @Option(names = "--image-column", defaultValue = "image") String imageColumn;
    @Option(names = "--id-column", defaultValue = "id") String idColumn;
    @Option(names = "--batch", defaultValue = "64", description = "rows per model call (default: ${DEFAULT-VALUE})") int batch;
    @Option(names = "--statistics", description = "add the silhouette's mean and maximum per image") boolean statistics;
    @Option(names = "--fail-on-malformed", description = "fail the job on the first malformed row instead of reporting it") boolean failOnMalformed;

    /** What a run wrote: rows, and how many of them could not be scored. */
    public record Summary(long rows, long malformed) {}

    public static void main(String[] args) {
        System.exit(new CommandLine(new BatchScore()).execute(args));
    }

    @Override
    public Integer call() {
        SparkSession spark = SparkSession.builder().appName("silhouette-batch-score").getOrCreate();
        try {
            Summary s = run(spark);
            System.err.printf("silhouette-batch-score: %d rows scored into %s, %d malformed (see the error column)%n", s.rows(), output, s.malformed());
            return 0;
        } finally {
            spark.stop();
        }
    }

    /** Scores and writes on an open session (the test's, or spark-submit's). */
    public Summary run(SparkSession spark) {
        if ((input == null) == (idx == null)) throw new IllegalArgumentException("give exactly one of --input (Parquet) and --idx (IDX folder)");
        Dataset<Row> images;
        try {
            images = input != null ? spark.read().parquet(input)
                    : ImageTables.fromIdx(spark, existing(idx, "t10k-images-idx3-ubyte"), existing(idx, "t10k-labels-idx1-ubyte"), partitions);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + idx + ": " + e.getMessage(), e);
        }
        SilhouetteClassifier classifier = new SilhouetteClassifier().setModel(model).setImageColumn(imageColumn).setIdColumn(idColumn)
                .setBatchSize(batch).setStatistics(statistics).setFailOnMalformed(failOnMalformed);
        if (plan != null) classifier.setPlan(plan);
        classifier.transform(images).drop(imageColumn).write().parquet(output);
        // Counted from what was written (a cheap column read), not by scoring twice.
        Row counts = spark.read().parquet(output).agg(functions.count(functions.lit(1)), functions.count(functions.col("error"))).first();
        return new Summary(counts.getLong(0), counts.getLong(1));
    }

    private static Path existing(Path dir, String name) {
        for (Path p : new Path[] {dir.resolve(name + ".gz"), dir.resolve(name)}) if (p.toFile().exists()) return p;
        throw new IllegalArgumentException("no " + name + "(.gz) in " + dir);
    }
}
