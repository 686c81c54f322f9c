package dev.silhouette.backend.cpu;

import dev.silhouette.Tolerances;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.List;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/** Every non-convolution op against values worked out by hand or by an independent formula. */
public class CpuOpsTest {

    static Tensor t(int[] dims, float... values) {
        return new Tensor(Shape.of(dims), values);
    }

    static void assertClose(Tensor actual, float[] expected, double tol, String what) {
        assertEquals(actual.size(), expected.length, what + ": size");
        for (int i = 0; i < expected.length; i++) {
            assertTrue(Math.abs(actual.data()[i] - expected[i]) <= tol,
                    what + ": element " + i + " is " + actual.data()[i] + ", expected " + expected[i]);
        }
    }

    @Test
    public void reluClipSigmoid() {
        Tensor x = t(new int[] {1, 5}, -2f, -0f, 0.5f, 3f, 7f);
        assertClose(CpuOps.relu(x), new float[] {0, 0, 0.5f, 3, 7}, 0, "relu");
        assertClose(CpuOps.clip(x, new Op.Clip(0, 6)), new float[] {0, 0, 0.5f, 3, 6}, 0, "relu6");
        assertClose(CpuOps.sigmoid(x), new float[] {0.11920292f, 0.5f, 0.62245933f, 0.95257413f, 0.99908895f}, 1e-7, "sigmoid");
    }

    @Test
    public void reluOverManyParallelChunksKeepsPositivesAndZeroesTheRest() {
        // Large enough to split into many parallel chunks, with a length that is not a multiple of a chunk.
        Tensor x = Tensor.uniform(Shape.of(3, 7, 61, 53), -1, 1, 5);
        float[] expected = new float[x.size()];
        for (int i = 0; i < expected.length; i++) expected[i] = Math.max(0f, x.data()[i]);
        assertClose(CpuOps.relu(x), expected, 0, "relu");
        Tensor nan = t(new int[] {1, 2}, Float.NaN, -Float.MIN_VALUE);
        assertClose(CpuOps.relu(nan), new float[] {0, 0}, 0, "relu of NaN and the smallest negative");
    }

    @Test
    public void addIsElementwiseOverLargeTensors() {
        Tensor a = Tensor.uniform(Shape.of(3, 7, 50, 50), -1, 1, 1), b = Tensor.uniform(Shape.of(3, 7, 50, 50), -1, 1, 2);
        Tensor sum = CpuOps.add(a, b);
        for (int i = 0; i < a.size(); i += 997) assertEquals(sum.data()[i], a.data()[i] + b.data()[i], "element " + i);
    }

    @Test
    public void softmaxOverChannelsAtEveryPixel() {
        Tensor x = t(new int[] {1, 3, 1, 2}, 1, 0, 2, 0, 3, 0);
        Tensor y = CpuOps.softmax(x);
        double d0 = Math.exp(1) + Math.exp(2) + Math.exp(3);
        assertClose(y, new float[] {(float) (Math.exp(1) / d0), 1 / 3f, (float) (Math.exp(2) / d0), 1 / 3f, (float) (Math.exp(3) / d0), 1 / 3f}, 1e-7, "softmax");
        Tensor big = CpuOps.softmax(t(new int[] {1, 2}, 1000f, 999f));
        assertTrue(Float.isFinite(big.data()[0]), "softmax overflowed on large logits: " + big.data()[0]);
    }

    @Test
    public void maxPoolIgnoresPadding() {
        Tensor x = t(new int[] {1, 1, 3, 3}, -1, -2, -3, -4, -5, -6, -7, -8, -9);
        Tensor y = CpuOps.maxPool(x, new Op.MaxPool(Window.square(3, 2, 1)));
        assertEquals(y.shape(), Shape.of(1, 1, 2, 2));
        assertClose(y, new float[] {-1, -2, -4, -5}, 0, "maxpool 3x3/s2/p1 on negatives");
    }

    @Test
    public void avgPoolWithAndWithoutPaddingInDivisor() {
        Tensor x = t(new int[] {1, 1, 2, 2}, 1, 2, 3, 4);
        Window w = Window.square(2, 1, 1);
        assertClose(CpuOps.avgPool(x, new Op.AvgPool(w, true)), new float[] {0.25f, 0.75f, 0.5f, 1f, 2.5f, 1.5f, 0.75f, 1.75f, 1f}, 1e-7, "avgpool incl pad");
        assertClose(CpuOps.avgPool(x, new Op.AvgPool(w, false)), new float[] {1f, 1.5f, 2f, 2f, 2.5f, 3f, 3f, 3.5f, 4f}, 1e-7, "avgpool excl pad");
    }

    @Test
    public void globalAvgPoolAndFlatten() {
        Tensor x = t(new int[] {2, 2, 1, 2}, 1, 3, 5, 7, -1, -3, 0, 10);
        Tensor g = CpuOps.globalAvgPool(x);
        assertEquals(g.shape(), Shape.of(2, 2, 1, 1));
        assertClose(g, new float[] {2, 6, -2, 5}, 0, "gap");
        assertEquals(CpuOps.flatten(g).shape(), Shape.of(2, 2));
    }

    @Test
    public void linearMatchesReference() {
        Op.Linear op = new Op.Linear(37, 11, true);
        Tensor x = Tensor.uniform(Shape.of(5, 37), -1, 1, 3), w = Tensor.uniform(Shape.of(11, 37), -1, 1, 4), b = Tensor.uniform(Shape.of(11), -1, 1, 5);
        Tensor expected = Reference.linear(x, w, b, op);
        assertClose(CpuOps.linear(x, w, b, op), expected.data(), 1e-5, "linear");
        assertClose(Reference.linear(t(new int[] {1, 2}, 1, 2), t(new int[] {1, 2}, 3, 4), t(new int[] {1}, 0.5f), new Op.Linear(2, 1, true)),
                new float[] {11.5f}, 0, "reference linear by hand");
    }

    @Test
    public void batchNormFormula() {
        Tensor x = t(new int[] {1, 2, 1, 2}, 1, 2, 3, 4);
        Tensor y = CpuOps.batchNorm(x, t(new int[] {2}, 2, 1), t(new int[] {2}, 0.5f, -1), t(new int[] {2}, 1, 3), t(new int[] {2}, 4, 0.25f), new Op.BatchNorm(2, 0));
        assertClose(y, new float[] {0.5f, 1.5f, -1f, 1f}, Tolerances.ELEMENTWISE_ABS, "batchnorm");
    }

    @Test
    public void nearestInterpolation() {
        Tensor x = t(new int[] {1, 1, 2, 2}, 1, 2, 3, 4);
        assertClose(CpuOps.interpolate(x, new Op.Interpolate(Op.Interpolate.Mode.NEAREST, 3, 4)),
                new float[] {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4}, 0, "nearest 2x2->3x4");
        assertClose(CpuOps.interpolate(t(new int[] {1, 1, 1, 4}, 1, 2, 3, 4), new Op.Interpolate(Op.Interpolate.Mode.NEAREST, 1, 2)),
                new float[] {1, 3}, 0, "nearest downsample");
    }

    /** Values from torch.nn.functional.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False). */
    @Test
    public void bilinearInterpolationMatchesPyTorchConvention() {
        Tensor x = t(new int[] {1, 1, 2, 2}, 1, 2, 3, 4);
        assertClose(CpuOps.interpolate(x, new Op.Interpolate(Op.Interpolate.Mode.BILINEAR, 4, 4)), new float[] {
                1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f},
                Tolerances.ELEMENTWISE_ABS, "bilinear 2x2->4x4");
    }

    @Test
    public void concatAlongChannels() {
        Tensor a = t(new int[] {2, 1, 1, 2}, 1, 2, 3, 4), b = t(new int[] {2, 2, 1, 2}, 5, 6, 7, 8, 9, 10, 11, 12);
        Tensor y = CpuOps.concat(List.of(a, b), Shape.of(2, 3, 1, 2), new Op.Concat(1));
        assertClose(y, new float[] {1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12}, 0, "concat axis 1");
    }
}
