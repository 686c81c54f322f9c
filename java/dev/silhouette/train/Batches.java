package dev.silhouette.train;

import dev.silhouette.io.Idx;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.SplittableRandom;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * The mini-batches of one epoch, assembled on a background thread while the caller trains on the
 * previous ones. The order is a permutation drawn from (seed, epoch) and each batch's augmentation from
 * (seed, epoch, batch index), so any batch can be reproduced on its own: a run resumed mid-epoch sees
 * exactly the batches an uninterrupted run would have.
 */
public final class Batches implements Iterator<Batches.Batch>, AutoCloseable {
    public record Batch(int index, Tensor images, int[] labels) {}

    /** Random crop after zero padding, and horizontal flip with probability 1/2 (the bundled model's recipe). */
    public record Augmentation(int padding, boolean flip) {
        public static final Augmentation NONE = new Augmentation(0, false);
        public static final Augmentation CROP_FLIP = new Augmentation(2, true);

        public Augmentation {
            if (padding < 0) throw new IllegalArgumentException("crop padding " + padding + " must not be negative");
        }
    }

    private static final Batch END = new Batch(-1, null, null);

    private final BlockingQueue<Batch> queue = new ArrayBlockingQueue<>(3);
    private final Thread producer;
    private volatile RuntimeException failure;
    private Batch next;

    /**
     * @param firstBatch batches before it are skipped (resuming mid-epoch)
     */
    public Batches(Idx.Dataset data, int batchSize, long seed, int epoch, int firstBatch, boolean shuffle, Augmentation aug) {
        int count = batchesPerEpoch(data.labels().length, batchSize);
        int[] order = order(data.labels().length, seed, epoch, shuffle);
        producer = Thread.ofPlatform().daemon().name("batches-epoch-" + epoch).start(() -> {
            try {
                for (int b = firstBatch; b < count; b++) queue.put(assemble(data, order, b, batchSize, mix(seed, epoch, b), aug));
                queue.put(END);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (RuntimeException e) {
                failure = e;
                queue.offer(END);
            }
        });
    }

    /** Full batches only (the last partial batch is dropped, as PyTorch's recipe does). */
    public static int batchesPerEpoch(int samples, int batchSize) {
        if (batchSize < 1) throw new IllegalArgumentException("batch size " + batchSize + " must be at least 1");
        if (samples < batchSize) throw new IllegalArgumentException("batch size " + batchSize + " is larger than the " + samples + " training samples");
        return samples / batchSize;
    }

    /** Fisher-Yates permutation from (seed, epoch), or the identity. */
    static int[] order(int n, long seed, int epoch, boolean shuffle) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        if (!shuffle) return order;
        SplittableRandom rnd = new SplittableRandom(mix(seed, epoch, -1));
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        return order;
    }

    static long mix(long seed, int epoch, int batch) {
        return new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch * 0xBF58476D1CE4E5B9L + batch).nextLong();
    }

    static Batch assemble(Idx.Dataset data, int[] order, int b, int batchSize, long seed, Augmentation aug) {
        Shape s = data.images().shape();
        int c = s.c(), h = s.h(), w = s.w(), per = c * h * w;
        float[] src = data.images().data(), out = new float[batchSize * per];
        int[] labels = new int[batchSize];
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < batchSize; i++) {
            int sample = order[b * batchSize + i];
            labels[i] = data.labels()[sample];
            int dy = aug.padding() > 0 ? rnd.nextInt(2 * aug.padding() + 1) - aug.padding() : 0;
            int dx = aug.padding() > 0 ? rnd.nextInt(2 * aug.padding() + 1) - aug.padding() : 0;
            boolean flip = aug.flip() && rnd.nextBoolean();
            // Output pixel (y, x) reads input (y + dy, x' + dx) with x' = w - 1 - x when flipped; zero outside.
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++) {
                        int iy = y + dy, ix = (flip ? w - 1 - x : x) + dx;
                        out[i * per + (ch * h + y) * w + x] = iy < 0 || iy >= h || ix < 0 || ix >= w ? 0f
                                : src[sample * per + (ch * h + iy) * w + ix];
                    }
        }
        return new Batch(b, new Tensor(Shape.of(batchSize, c, h, w), out), labels);
    }

    @Override
    public boolean hasNext() {
        if (next == null) {
            try {
                next = queue.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the next batch", e);
            }
        }
        if (next == END && failure != null) throw failure;
        return next != END;
    }

    @Override
    public Batch next() {
        if (!hasNext()) throw new NoSuchElementException();
        Batch b = next;
        next = null;
        return b;
    }

    @Override
    public void close() {
        producer.interrupt();
    }
}
