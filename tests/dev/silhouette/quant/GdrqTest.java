package dev.silhouette.quant;

import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

public class GdrqTest {

    @Test
    public void scaleClipMapsUniformDataOntoTheUnitIntervalAndClipsTails() {
        Tensor u = Tensor.uniform(Shape.of(1, 100_000), -3, 3, 1);
        Tensor r = Gdrq.scaleClip(u, 2, 1);
        for (int i = 0; i < u.size(); i++) assertEquals(r.data()[i], u.data()[i] / 3, 0.01, "uniform value " + i);
        Tensor heavy = Tensor.normal(Shape.of(1, 10_000), 1, 2);
        heavy.data()[0] = 50;
        Tensor rh = Gdrq.scaleClip(heavy, 2, 1);
        assertEquals(rh.data()[0], 1f);
        for (float v : rh.data()) assertTrue(v >= -1 && v <= 1);
    }

    @Test
    public void groupsGetTheirOwnStepsAndFoldedEqualsUnfolded() {
        SplittableRandom rnd = new SplittableRandom(3);
        int in = 6, out = 8, groups = 4;
        Tensor w = Tensor.normal(Shape.of(out, in, 3, 3), 1, 4);
        for (int i = 0; i < w.size(); i++) w.data()[i] *= (float) Math.pow(4, i / (w.size() / groups)) * 0.01f;
        Tensor x = Tensor.uniform(Shape.of(2, in, 7, 6), 0, 1, 5);
        float[] bias = new float[out], gamma = new float[out], beta = new float[out], mean = new float[out], var = new float[out];
        for (int o = 0; o < out; o++) {
            bias[o] = (float) rnd.nextGaussian();
            gamma[o] = (float) (rnd.nextDouble() * 2 - 0.5);
            beta[o] = (float) rnd.nextGaussian();
            mean[o] = (float) rnd.nextGaussian();
            var[o] = (float) (0.1 + rnd.nextDouble());
        }
        for (int bits = 2; bits <= 8; bits++) {
            Gdrq.GroupQuantized q = Gdrq.quantize(w, bits, groups, 2);
            for (int g = 1; g < groups; g++) assertTrue(q.groupScales()[g] > q.groupScales()[g - 1] * 2, "group steps follow group ranges");
            Op.Conv2d conv = new Op.Conv2d(in, out, Window.square(3, 1, 1), 1, true);
            Tensor unfolded = CpuOps.batchNorm(CpuOps.conv2d(x, q.dequantize(), new Tensor(Shape.of(out), bias), conv),
                    new Tensor(Shape.of(out), gamma), new Tensor(Shape.of(out), beta), new Tensor(Shape.of(out), mean),
                    new Tensor(Shape.of(out), var), new Op.BatchNorm(out, 1e-5f));
            Tensor acc = CpuOps.conv2d(x, q.codesAsWeights(), null, new Op.Conv2d(in, out, Window.square(3, 1, 1), 1, false));
            Tensor folded = Gdrq.fold(q, bias, gamma, beta, mean, var, 1e-5f).apply(acc);
            for (int i = 0; i < folded.size(); i++) {
                float u = unfolded.data()[i];
                assertEquals(folded.data()[i], u, 1e-4f * Math.max(1, Math.abs(u)), bits + " bits, output " + i);
            }
        }
    }

    @Test
    public void groupsMustDivideTheChannels() {
        var e = org.testng.Assert.expectThrows(IllegalArgumentException.class, () -> Gdrq.quantize(Tensor.zeros(6, 2), 4, 4, 2));
        assertEquals(e.getMessage(), "GDRQ groups 4 must divide the 6 output channels");
    }
}
