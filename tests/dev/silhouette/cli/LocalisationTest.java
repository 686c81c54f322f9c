package dev.silhouette.cli;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** The localisation share on silhouettes whose answer is known by counting. */
public class LocalisationTest {

    /** A 1 x 1 x h x w silhouette: {@code inside} in the box, {@code outside} elsewhere. */
    private static Tensor map(int h, int w, Localisation.Box b, float inside, float outside) {
        float[] v = new float[h * w];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) v[y * w + x] = x >= b.x() && x < b.x() + b.width() && y >= b.y() && y < b.y() + b.height() ? inside : outside;
        return new Tensor(Shape.of(1, 1, h, w), v);
    }

    @Test
    public void countsTheTopPixelsInsideTheBox() {
        Localisation.Box big = new Localisation.Box(2, 2, 6, 5);   // 30 of 100 pixels
        assertEquals(Localisation.share(map(10, 10, big, 0.9f, 0.1f), 0, 10, 10, big, 0.2), 1.0, 0, "all 20 top pixels in a 30-pixel box");
        assertEquals(Localisation.share(map(10, 10, big, 0.1f, 0.9f), 0, 10, 10, big, 0.2), 0.0, 0, "the box lowest");
        Localisation.Box small = new Localisation.Box(0, 0, 5, 2);   // 10 of 100: only half the top 20 fit
        assertEquals(Localisation.share(map(10, 10, small, 0.9f, 0.1f), 0, 10, 10, small, 0.2), 0.5, 0);
        // A flat map ties everywhere: the lower pixel indices come first, i.e. the top two rows, which this box holds.
        assertEquals(Localisation.share(map(10, 10, small, 0.5f, 0.5f), 0, 10, 10, small, 0.2), 0.5, 0);
        Localisation.Box top = new Localisation.Box(0, 0, 10, 2);
        assertEquals(Localisation.share(map(10, 10, small, 0.5f, 0.5f), 0, 10, 10, top, 0.2), 1.0, 0);
    }

    @Test
    public void aCoarserSilhouetteIsResizedToTheImage() {
        // 5x5 silhouette over a 10x10 image: pixel (y, x) of the image reads (y / 2, x / 2).
        Localisation.Box coarse = new Localisation.Box(1, 1, 3, 2), fine = new Localisation.Box(2, 2, 6, 4);
        Tensor s = map(5, 5, coarse, 1f, 0f);
        assertEquals(Localisation.share(s, 0, 10, 10, fine, 0.2), 1.0, 0, "24 lit image pixels, the top 20 all in the box");
        Localisation.Box half = new Localisation.Box(2, 2, 6, 2);
        assertEquals(Localisation.share(s, 0, 10, 10, half, 0.2), 12 / 20.0, 0, "12 of the box's pixels among the top 20, by index order");
        assertEquals(Localisation.chance(List.of(fine, half), 2, 10, 10), (24 + 12) / 200.0, 1e-12);
    }

    @Test
    public void readsTheBoxFileAndRefusesAMalformedOne() throws Exception {
        Path dir = Files.createTempDirectory("boxes");
        Path ok = Files.writeString(dir.resolve("ok.csv"), "index,label,x,y,width,height,frame_x,frame_y\n0,9,1,2,3,4,0,0\n1,0,5,6,7,8,1,1\n");
        assertEquals(Localisation.read(ok), List.of(new Localisation.Box(1, 2, 3, 4), new Localisation.Box(5, 6, 7, 8)));
        Path bad = Files.writeString(dir.resolve("bad.csv"), "index,label,x,y,width,height\n0,9,1,2,3,4\n2,0,5,6,7,8\n");
        String message = expectThrows(IllegalArgumentException.class, () -> Localisation.read(bad)).getMessage();
        assertTrue(message.contains("bad.csv line 3") && message.contains("index 1 expected"), message);
        Path other = Files.writeString(dir.resolve("other.csv"), "a,b\n");
        assertTrue(expectThrows(IllegalArgumentException.class, () -> Localisation.read(other)).getMessage().contains("not a box file"));
    }
}
