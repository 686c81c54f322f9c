package dev.silhouette.spark;

import dev.silhouette.io.Idx;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Image tables for batch scoring: an IDX image file and its labels as a DataFrame (id, label, image as unsigned bytes). */
public final class ImageTables {
    private ImageTables() {}

    public static final StructType SCHEMA = new StructType()
            .add("id", DataTypes.LongType, false).add("label", DataTypes.IntegerType, false).add("image", DataTypes.BinaryType, false);

    /** Rows in file order, id = index in the file, split into {@code partitions}. */
    public static Dataset<Row> fromIdx(SparkSession spark, Path images, Path labels, int partitions) throws IOException {
        return fromIdx(spark, images, labels, partitions, Integer.MAX_VALUE);
    }

    /** The first {@code limit} images only. */
    public static Dataset<Row> fromIdx(SparkSession spark, Path images, Path labels, int partitions, int limit) throws IOException {
        Idx.Array a = Idx.read(images);
        if (a.type() != Idx.Type.UNSIGNED_BYTE || a.dims().length < 2) {
            throw new IllegalArgumentException(images + ": expected unsigned-byte images [N, H, W], found " + a.type() + " " + Arrays.toString(a.dims()));
        }
        int[] l = Idx.readLabels(labels);
        int n = a.dims()[0], per = a.data().length / Math.max(1, n);
        if (l.length != n) throw new IllegalArgumentException(images + " holds " + n + " images but " + labels + " " + l.length + " labels");
        if (limit < 1) throw new IllegalArgumentException("image limit " + limit + " must be at least 1");
        int count = Math.min(n, limit);
        List<Row> rows = new ArrayList<>(count);
        for (int i = 0; i < count; i++) rows.add(RowFactory.create((long) i, l[i], Arrays.copyOfRange(a.data(), i * per, (i + 1) * per)));
        return spark.createDataFrame(rows, SCHEMA).repartition(partitions);
    }
}
