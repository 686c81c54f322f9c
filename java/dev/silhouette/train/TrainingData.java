package dev.silhouette.train;

import dev.silhouette.io.Idx;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A train and a test split in IDX files, named as MNIST and Fashion-MNIST name them
 * ({@code train-images-idx3-ubyte}, {@code t10k-labels-idx1-ubyte}, ..., gzipped or not). Pixels are
 * value / 255, the only normalisation the bundled model's recipe uses.
 */
public record TrainingData(Idx.Dataset train, Idx.Dataset test, Path source) {
    public static final Path FASHION_MNIST = Path.of("/usr/share/datasets/fashion-mnist");

    public static TrainingData load(Path dir) {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException("data folder " + dir + " does not exist");
        return new TrainingData(split(dir, "train"), split(dir, "t10k"), dir);
    }

    /** Refuses a model whose input is not this data's image shape, naming both ({@code model} names the model). */
    public void requireInput(dev.silhouette.graph.Graph graph, String model) {
        dev.silhouette.tensor.Shape sample = graph.inputs().getFirst().sampleShape(), images = train.images().shape();
        dev.silhouette.tensor.Shape image = dev.silhouette.tensor.Shape.of(images.c(), images.h(), images.w());
        if (!sample.equals(image)) {
            throw new IllegalArgumentException("model '" + model + "' takes input " + sample + ", the images in " + source + " are " + image);
        }
    }

    private static Idx.Dataset split(Path dir, String prefix) {
        Path images = existing(dir, prefix + "-images-idx3-ubyte"), labels = existing(dir, prefix + "-labels-idx1-ubyte");
        try {
            return Idx.Dataset.load(images, labels);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + images + " / " + labels + ": " + e.getMessage(), e);
        }
    }

    private static Path existing(Path dir, String name) {
        for (Path p : new Path[] {dir.resolve(name + ".gz"), dir.resolve(name)}) if (Files.isRegularFile(p)) return p;
        throw new IllegalArgumentException("data folder " + dir + " has no " + name + "(.gz)");
    }
}
