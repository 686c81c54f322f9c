package dev.silhouette.train;

import dev.silhouette.io.Idx;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertNotEquals;
import static org.testng.Assert.assertTrue;

public class BatchesTest {

    /** Image i has pixel values i * 1000 + position, and label i % 10: both identify the sample. */
    private static Idx.Dataset indexed(int n, int size) {
        float[] px = new float[n * size * size];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i % 10;
            for (int p = 0; p < size * size; p++) px[i * size * size + p] = i * 1000 + p + 1;
        }
        return new Idx.Dataset(new Tensor(Shape.of(n, 1, size, size), px), labels);
    }

    private static List<Batches.Batch> all(Batches b) {
        List<Batches.Batch> out = new ArrayList<>();
        try (b) {
            while (b.hasNext()) out.add(b.next());
        }
        return out;
    }

    @Test
    public void anEpochVisitsEverySampleOnceInShuffledFullBatches() {
        Idx.Dataset data = indexed(50, 4);
        List<Batches.Batch> batches = all(new Batches(data, 8, 1, 0, 0, true, Batches.Augmentation.NONE));
        assertEquals(batches.size(), 6, "50 / 8, the partial batch dropped");
        Set<Integer> seen = new HashSet<>();
        List<Integer> order = new ArrayList<>();
        for (Batches.Batch b : batches) {
            for (int i = 0; i < 8; i++) {
                int sample = (int) (b.images().data()[i * 16] - 1) / 1000;
                assertEquals(b.labels()[i], sample % 10, "label travels with its image");
                assertTrue(seen.add(sample), "sample " + sample + " twice");
                order.add(sample);
            }
        }
        assertNotEquals(order.subList(0, 8), List.of(0, 1, 2, 3, 4, 5, 6, 7), "shuffled");
    }

    @Test
    public void orderAndAugmentationAreReproducibleAndResumable() {
        Idx.Dataset data = indexed(40, 6);
        List<Batches.Batch> a = all(new Batches(data, 8, 7, 2, 0, true, Batches.Augmentation.CROP_FLIP));
        List<Batches.Batch> b = all(new Batches(data, 8, 7, 2, 3, true, Batches.Augmentation.CROP_FLIP));
        assertEquals(b.size(), 2);
        assertEquals(b.getFirst().index(), 3);
        assertEquals(b.getFirst().images().data(), a.get(3).images().data(), "batch 3 alone equals batch 3 of the full epoch");
        List<Batches.Batch> other = all(new Batches(data, 8, 7, 3, 0, true, Batches.Augmentation.CROP_FLIP));
        assertNotEquals(other.getFirst().labels(), a.getFirst().labels(), "another epoch, another order");
    }

    @Test
    public void cropAndFlipAreShiftsAndMirrorsOfTheOriginal() {
        int size = 6;
        Idx.Dataset data = indexed(32, size);
        int flips = 0, shifts = 0;
        for (Batches.Batch b : all(new Batches(data, 8, 3, 0, 0, true, Batches.Augmentation.CROP_FLIP))) {
            for (int i = 0; i < 8; i++) {
                float[] img = java.util.Arrays.copyOfRange(b.images().data(), i * size * size, (i + 1) * size * size);
                float max = 0;
                for (float v : img) max = Math.max(max, v);
                int sample = (int) (max - 1) / 1000;
                boolean matched = false;
                for (int dy = -2; dy <= 2 && !matched; dy++)
                    for (int dx = -2; dx <= 2 && !matched; dx++)
                        for (boolean flip : new boolean[] {false, true}) {
                            boolean ok = true;
                            for (int y = 0; y < size && ok; y++)
                                for (int x = 0; x < size && ok; x++) {
                                    int iy = y + dy, ix = (flip ? size - 1 - x : x) + dx;
                                    float expected = iy < 0 || iy >= size || ix < 0 || ix >= size ? 0 : sample * 1000 + iy * size + ix + 1;
                                    ok = img[y * size + x] == expected;
                                }
                            if (ok) {
                                matched = true;
                                if (flip) flips++;
                                if (dx != 0 || dy != 0) shifts++;
                                break;
                            }
                        }
                assertTrue(matched, "image " + i + " is no crop/flip of sample " + sample);
            }
        }
        assertTrue(flips > 4 && flips < 28, "about half flipped: " + flips + " of 32");
        assertTrue(shifts > 16, "most shifted: " + shifts + " of 32");
    }
}
