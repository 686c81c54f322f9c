package dev.silhouette.cli;

import dev.silhouette.io.Idx;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Labelled images of one split, from any folder of IDX files laid out as Fashion-MNIST's
 * ({@code t10k-images-idx3-ubyte}, {@code train-labels-idx1-ubyte}, ..., gzipped or not; images of any size, such
 * as the cluttered sets of {@code silhouette data cluttered}), by default Fashion-MNIST itself: Debian's
 * dataset-fashion-mnist package, or the copy bundled in the jar (so the main job runs on a fresh machine without root).
 */
record FashionMnist(Tensor images, int[] labels, String source) {
    static final Path SYSTEM_DIR = Path.of("/usr/share/datasets/fashion-mnist");
    private static final String RESOURCE_DIR = "/dev/silhouette/data/fashion-mnist/";
    private static final String IMAGES = "t10k-images-idx3-ubyte", LABELS = "t10k-labels-idx1-ubyte";

    static final String[] CLASS_NAMES = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

    static FashionMnist testSplit(Path dir) {
        if (dir != null) return fromDir(dir);
        if (Files.exists(SYSTEM_DIR.resolve(IMAGES + ".gz"))) return fromDir(SYSTEM_DIR);
        try (InputStream images = FashionMnist.class.getResourceAsStream(RESOURCE_DIR + IMAGES + ".gz");
             InputStream labels = FashionMnist.class.getResourceAsStream(RESOURCE_DIR + LABELS + ".gz")) {
            if (images == null || labels == null) throw new IllegalStateException("the bundled Fashion-MNIST test split is missing from the jar");
            return of(Idx.readImages(images, "bundled " + IMAGES), Idx.readLabels(labels, "bundled " + LABELS), "bundled copy");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the bundled Fashion-MNIST test split", e);
        }
    }

    private static final String TRAIN_IMAGES = "train-images-idx3-ubyte", TRAIN_LABELS = "train-labels-idx1-ubyte";
    /** The first images of the training split ship in the jar, for calibration on a machine without the dataset. */
    static final int BUNDLED_TRAINING_IMAGES = 500;

    /**
     * The first {@code count} images of the training split (calibration data, never the test split):
     * from {@code dir} or the system folder when they hold the training files, else the bundled first
     * {@value #BUNDLED_TRAINING_IMAGES}.
     */
    static FashionMnist trainingSubset(Path dir, int count) {
        if (count < 1) throw new IllegalArgumentException("the calibration set is empty: statistics need at least one image (got " + count + ")");
        if (dir != null && hasTrainingSplit(dir)) return first(fromDir(dir, TRAIN_IMAGES, TRAIN_LABELS), count, "training split in " + dir);
        FashionMnist fallback = hasTrainingSplit(SYSTEM_DIR) ? first(fromDir(SYSTEM_DIR, TRAIN_IMAGES, TRAIN_LABELS), count, "training split in " + SYSTEM_DIR)
                : bundledTrainingSubset(count);
        // Say why a given folder's own images are not the ones calibrated on, for the size check that may follow.
        return dir == null ? fallback : new FashionMnist(fallback.images(), fallback.labels(), fallback.source() + ", as " + dir + " has no " + TRAIN_IMAGES + "(.gz)");
    }

    private static boolean hasTrainingSplit(Path dir) {
        return Files.exists(dir.resolve(TRAIN_IMAGES + ".gz")) || Files.exists(dir.resolve(TRAIN_IMAGES));
    }

    /** The first {@code count} of the training images bundled in the jar. */
    static FashionMnist bundledTrainingSubset(int count) {
        if (count > BUNDLED_TRAINING_IMAGES) {
            throw new IllegalArgumentException(count + " calibration images requested but only the bundled " + BUNDLED_TRAINING_IMAGES
                    + " training images are available; install the training split (" + TRAIN_IMAGES + ".gz) in " + SYSTEM_DIR + " or --data");
        }
        try (InputStream images = FashionMnist.class.getResourceAsStream(RESOURCE_DIR + "train-first500-images-idx3-ubyte.gz");
             InputStream labels = FashionMnist.class.getResourceAsStream(RESOURCE_DIR + "train-first500-labels-idx1-ubyte.gz")) {
            if (images == null || labels == null) throw new IllegalStateException("the bundled Fashion-MNIST training images are missing from the jar");
            return first(of(Idx.readImages(images, "bundled training images"), Idx.readLabels(labels, "bundled training labels"),
                    "bundled first " + BUNDLED_TRAINING_IMAGES + " training images"), count, "bundled training images");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the bundled Fashion-MNIST training images", e);
        }
    }

    /**
     * The whole training split of {@code dir}; without a folder, that of the system's Fashion-MNIST, else the
     * {@value #BUNDLED_TRAINING_IMAGES} training images bundled in the jar.
     */
    static FashionMnist trainSplit(Path dir) {
        if (dir != null) return fromDir(dir, TRAIN_IMAGES, TRAIN_LABELS);
        if (hasTrainingSplit(SYSTEM_DIR)) return fromDir(SYSTEM_DIR, TRAIN_IMAGES, TRAIN_LABELS);
        return bundledTrainingSubset(BUNDLED_TRAINING_IMAGES);
    }

    /**
     * Refuses a model whose input is not these images' shape, naming both: {@code role} says which images
     * ("test", "calibration") and where they came from is the source.
     */
    void requireInput(dev.silhouette.tensor.Shape sample, String model, String role) {
        dev.silhouette.tensor.Shape s = images.shape(), image = dev.silhouette.tensor.Shape.of(s.c(), s.h(), s.w());
        if (!sample.equals(image)) {
            int wanted = sample.dim(sample.rank() - 1);   // a square model larger than Fashion-MNIST: cluttered data fits it
            throw new IllegalArgumentException("model '" + model + "' takes input " + sample + ", the " + role + " images (" + source + ") are " + image
                    + " (" + s.h() + "x" + s.w() + ")" + (wanted > 28 && s.h() == 28
                    ? "; give --data DIR with images of its size, e.g. from: silhouette data cluttered --size " + wanted + " --out DIR" : ""));
        }
    }

    /** The images as the unsigned bytes they were read from (row-major, image after image). */
    byte[] pixelBytes() {
        float[] v = images.data();
        byte[] b = new byte[v.length];
        // Exact: every pixel was read as byte / 255f, and round(byte / 255f * 255) is that byte again.
        for (int i = 0; i < v.length; i++) b[i] = (byte) Math.round(v[i] * 255f);
        return b;
    }

    private static FashionMnist first(FashionMnist all, int count, String source) {
        int n = Math.min(count, all.labels().length);
        return new FashionMnist(all.images().slice(0, n), java.util.Arrays.copyOf(all.labels(), n), "first " + n + " of the " + source);
    }

    private static FashionMnist fromDir(Path dir) {
        return fromDir(dir, IMAGES, LABELS);
    }

    private static FashionMnist fromDir(Path dir, String imagesName, String labelsName) {
        Path images = existing(dir, imagesName), labels = existing(dir, labelsName);
        try (InputStream i = Files.newInputStream(images); InputStream l = Files.newInputStream(labels)) {
            return of(Idx.readImages(i, images.toString()), Idx.readLabels(l, labels.toString()), dir.toString());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read Fashion-MNIST from " + dir + ": " + e.getMessage(), e);
        }
    }

    private static FashionMnist of(Tensor images, int[] labels, String source) {
        if (images.shape().dim(0) != labels.length) {
            throw new IllegalArgumentException("Fashion-MNIST from " + source + ": " + images.shape().dim(0) + " images but " + labels.length + " labels");
        }
        return new FashionMnist(images, labels, source);
    }

    /** The gzipped file, or the raw one when only that exists. */
    private static Path existing(Path dir, String name) {
        for (Path p : new Path[] {dir.resolve(name + ".gz"), dir.resolve(name)}) if (Files.exists(p)) return p;
        throw new IllegalArgumentException("no " + name + "(.gz) in " + dir);
    }
}
