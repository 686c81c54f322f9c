package dev.silhouette.backend.cpu;

import dev.silhouette.Tolerances;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.fail;

/** The GEMM convolution against the seven-loop reference, on awkward, random and real ResNet shapes. */
public class ConvolutionConformanceTest {

    record Problem(String name, int n, int c, int h, int w, Op.Conv2d op) {
        @Override
        public String toString() {
            return name + " x" + List.of(n, c, h, w) + " " + op.inChannels() + "->" + op.outChannels() + " " + op.window() + " g" + op.groups();
        }
    }

    @DataProvider(parallel = false)
    public Object[][] problems() {
        List<Problem> list = new ArrayList<>();
        // Awkward shapes first: 1x1, single pixel, sizes off the 16-column panel and 4-row tile, depthwise.
        list.add(new Problem("1x1 single pixel", 1, 1, 1, 1, new Op.Conv2d(1, 1, Window.square(1, 1, 0), 1, false)));
        list.add(new Problem("1x1 direct path", 2, 5, 7, 9, new Op.Conv2d(5, 7, Window.square(1, 1, 0), 1, true)));
        list.add(new Problem("kernel equals input", 1, 3, 5, 5, new Op.Conv2d(3, 2, Window.square(5, 1, 0), 1, true)));
        list.add(new Problem("padding wider than input", 1, 2, 2, 2, new Op.Conv2d(2, 3, Window.square(3, 1, 2), 1, false)));
        list.add(new Problem("depthwise", 2, 8, 11, 13, new Op.Conv2d(8, 8, Window.square(3, 2, 1), 8, false)));
        list.add(new Problem("dilated asymmetric", 1, 4, 17, 10, new Op.Conv2d(4, 6, new Window(3, 2, 2, 1, 2, 1, 2, 3), 2, true)));
        list.add(new Problem("K above one block", 1, 40, 6, 6, new Op.Conv2d(40, 9, Window.square(3, 1, 1), 1, false)));
        // Two images per core, so each image is convolved on one core a stretch of pixels at a time;
        // these stretches (768 and 256 pixels) end mid-row, one strided, one padded at unit stride.
        int perCore = 2 * Runtime.getRuntime().availableProcessors();
        list.add(new Problem("stretches, 7x7/2 stem", perCore, 3, 62, 62, new Op.Conv2d(3, 5, Window.square(7, 2, 3), 1, true)));
        list.add(new Problem("stretches, 3x3 unit stride", perCore, 64, 19, 19, new Op.Conv2d(64, 6, Window.square(3, 1, 1), 1, false)));
        // Real layers (batch 1, smaller spatial size where the reference would be slow).
        list.add(new Problem("resnet18 conv1", 1, 3, 64, 64, new Op.Conv2d(3, 64, Window.square(7, 2, 3), 1, false)));
        list.add(new Problem("resnet18 layer2.0.conv1", 1, 64, 28, 28, new Op.Conv2d(64, 128, Window.square(3, 2, 1), 1, false)));
        list.add(new Problem("resnet18 layer4 3x3", 1, 512, 7, 7, new Op.Conv2d(512, 512, Window.square(3, 1, 1), 1, false)));
        list.add(new Problem("resnet50 bottleneck 1x1", 2, 256, 14, 14, new Op.Conv2d(256, 64, Window.square(1, 1, 0), 1, false)));
        list.add(new Problem("resnet50 downsample 1x1/2", 1, 256, 28, 28, new Op.Conv2d(256, 512, Window.square(1, 2, 0), 1, false)));
        SplittableRandom rnd = new SplittableRandom(20261122);
        for (int i = 0; i < 220; i++) {
            int groups = rnd.nextInt(4) == 0 ? 1 + rnd.nextInt(4) : 1;
            int in = groups * (1 + rnd.nextInt(12)), out = groups * (1 + rnd.nextInt(12));
            int kh = 1 + rnd.nextInt(5), kw = 1 + rnd.nextInt(5);
            int dh = 1 + rnd.nextInt(3) / 2, dw = 1 + rnd.nextInt(3) / 2;
            Window w = new Window(kh, kw, 1 + rnd.nextInt(3), 1 + rnd.nextInt(3), rnd.nextInt(3), rnd.nextInt(3), dh, dw);
            int h = Math.max(1, dh * (kh - 1) + 1 - 2 * w.padH()) + rnd.nextInt(14);
            int width = Math.max(1, dw * (kw - 1) + 1 - 2 * w.padW()) + rnd.nextInt(14);
            list.add(new Problem("random " + i, 1 + rnd.nextInt(3), in, h, width, new Op.Conv2d(in, out, w, groups, rnd.nextBoolean())));
        }
        return list.stream().map(p -> new Object[] {p}).toArray(Object[][]::new);
    }

    @Test(dataProvider = "problems")
    public void gemmConvolutionMatchesReference(Problem p) {
        long seed = p.toString().hashCode();
        Tensor x = Tensor.uniform(Shape.of(p.n(), p.c(), p.h(), p.w()), -1, 1, seed);
        Tensor w = Tensor.uniform(Shape.of(p.op().parameters().getFirst().dims()), -1, 1, seed + 1);
        Tensor b = p.op().bias() ? Tensor.uniform(Shape.of(p.op().outChannels()), -1, 1, seed + 2) : null;
        Tensor expected = Reference.conv2d(x, w, b, p.op());
        Tensor actual = CpuOps.conv2d(x, w, b, p.op());
        assertEquals(actual.shape(), expected.shape(), p + ": output shape");
        // Scale of each output: the reference over |x| and |w| is the sum of absolute terms.
        Tensor scale = Reference.conv2d(abs(x), abs(w), b == null ? null : abs(b), p.op());
        for (int i = 0; i < expected.size(); i++) {
            float e = expected.data()[i], a = actual.data()[i];
            double limit = Tolerances.ACCUMULATION_RELATIVE * scale.data()[i] + 1e-7;
            if (!(Math.abs(e - a) <= limit)) {
                fail(p + ": output " + i + " is " + a + ", reference " + e + " (|diff| " + Math.abs(e - a) + " > " + limit + ")");
            }
        }
    }

    static Tensor abs(Tensor t) {
        float[] d = t.data().clone();
        for (int i = 0; i < d.length; i++) d[i] = Math.abs(d[i]);
        return new Tensor(t.shape(), d);
    }
}
