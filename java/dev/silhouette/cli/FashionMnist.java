package dev.silhouette.cli;

import dev.silhouette.io.Idx;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Finds the Fashion-MNIST test split: a folder given by the user, Debian's dataset-fashion-mnist
 * package, or the copy bundled in the jar (so the main job runs on a fresh machine without root).
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

    /**
     * The first {@code count} images of the training split (calibration must not see the test images),
     * from {@code dir} or Debian's dataset folder; the jar bundles only the test split.
     */
    static Tensor trainImages(Path dir, int count) {
        if (count < 1) throw new IllegalArgumentException("the calibration set is empty: statistics need at least one image (got " + count + ")");
        Path folder = dir != null ? dir : SYSTEM_DIR;
        Path images = existing(folder, "train-images-idx3-ubyte");
        try {
            Tensor all = Idx.readImages(images);
            if (count > all.shape().dim(0)) throw new IllegalArgumentException(count + " calibration images asked, " + images + " holds " + all.shape().dim(0));
            return all.slice(0, count);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read Fashion-MNIST training images from " + folder + ": " + e.getMessage(), e);
        }
    }

    private static FashionMnist fromDir(Path dir) {
        Path images = existing(dir, IMAGES), labels = existing(dir, LABELS);
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
