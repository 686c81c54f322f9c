package dev.silhouette.train;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.HashMap;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertThrows;

/** Optimizer updates and schedules against the formulas worked by hand (torch.optim's definitions). */
public class OptimizerTest {

    private static Map<String, Tensor> one(float v) {
        Map<String, Tensor> m = new HashMap<>();
        m.put("p", new Tensor(Shape.of(1), new float[] {v}));
        return m;
    }

    @Test
    public void sgdNesterovWithWeightDecayTwoSteps() {
        Optimizer sgd = new Optimizer.Sgd(0.9, true, 0.1);
        Map<String, Tensor> p = one(1f);
        sgd.step(p, one(0.5f), 0.1, 0.9);
        // d = 0.5 + 0.1*1 = 0.6; buf = 0.6; nesterov d = 0.6 + 0.9*0.6 = 1.14; p = 1 - 0.114 = 0.886
        assertEquals(p.get("p").data()[0], 0.886f, 1e-6);
        sgd.step(p, one(0.5f), 0.1, 0.9);
        // d = 0.5 + 0.0886 = 0.5886; buf = 0.54 + 0.5886 = 1.1286; d = 0.5886 + 1.01574 = 1.60434; p = 0.886 - 0.160434
        assertEquals(p.get("p").data()[0], 0.886f - 0.160434f, 1e-6);
    }

    @Test
    public void sgdWithoutNesterovUsesTheBuffer() {
        Optimizer sgd = new Optimizer.Sgd(0.5, false, 0);
        Map<String, Tensor> p = one(0f);
        sgd.step(p, one(1f), 1, 0.5);   // buf 1, p = -1
        sgd.step(p, one(1f), 1, 0.5);   // buf 1.5, p = -2.5
        assertEquals(p.get("p").data()[0], -2.5f, 1e-6);
    }

    @Test
    public void adamwFirstStepMovesByTheLearningRate() {
        Optimizer adam = new Optimizer.AdamW(0.9, 0.999, 1e-8, 0.01);
        Map<String, Tensor> p = one(2f);
        adam.step(p, one(-3f), 0.1, 0.9);
        // decoupled decay 2*(1-0.001) = 1.998; bias-corrected m/sqrt(v) = -3/3 = -1; p = 1.998 + 0.1
        assertEquals(p.get("p").data()[0], 2.098f, 1e-5);
        Map<String, Tensor> state = adam.state();
        assertEquals(state.get("step.p").data()[0], 1f);
        Optimizer restored = new Optimizer.AdamW(0.9, 0.999, 1e-8, 0.01);
        restored.loadState(state);
        Map<String, Tensor> q = one(2.098f);
        adam.step(p, one(1f), 0.1, 0.9);
        restored.step(q, one(1f), 0.1, 0.9);
        assertEquals(q.get("p").data()[0], p.get("p").data()[0]);
    }

    @Test
    public void parametersWithoutGradientAreLeftAlone() {
        Optimizer sgd = new Optimizer.Sgd(0.9, false, 0.5);
        Map<String, Tensor> p = one(1f);
        p.put("untouched", new Tensor(Shape.of(1), new float[] {3f}));
        sgd.step(p, one(0f), 0.1, 0.9);
        assertEquals(p.get("untouched").data()[0], 3f);
        assertEquals(p.get("p").data()[0], 0.95f, 1e-7);
    }

    @Test
    public void oneCycleMatchesPyTorchAtItsCorners() {
        Schedule.OneCycle s = Schedule.OneCycle.of(0.1, 1000, 0.15);
        assertEquals(s.lr(0), 0.1 / 25, 1e-12);
        assertEquals(s.momentum(0, 0.9), 0.95, 1e-12);
        assertEquals(s.lr(149), 0.1, 1e-12);          // peak at pct_start * total - 1
        assertEquals(s.momentum(149, 0.9), 0.85, 1e-12);
        assertEquals(s.lr(999), 0.1 / 25 / 1e4, 1e-15);
        assertEquals(s.momentum(999, 0.9), 0.95, 1e-12);
        // Half way up the cosine warm-up (peak at step 150 here) the rate is the mean of its two ends.
        Schedule.OneCycle t = Schedule.OneCycle.of(0.1, 1000, 0.151);
        assertEquals(t.lr(75), (0.1 / 25 + 0.1) / 2, 1e-9);
        assertEquals(t.momentum(75, 0.9), 0.9, 1e-9);
    }

    @Test
    public void cosineStepAndWarmup() {
        Schedule.Cosine c = new Schedule.Cosine(0.2, 0, 100);
        assertEquals(c.lr(0), 0.2, 1e-12);
        assertEquals(c.lr(50), 0.1, 1e-12);
        assertEquals(c.lr(100), 0, 1e-12);
        Schedule.StepDecay st = new Schedule.StepDecay(1, 10, 0.1);
        assertEquals(st.lr(9), 1, 1e-12);
        assertEquals(st.lr(10), 0.1, 1e-12);
        assertEquals(st.lr(25), 0.01, 1e-12);
        Schedule.Warmup w = new Schedule.Warmup(new Schedule.Constant(0.4), 4);
        assertEquals(w.lr(0), 0.1, 1e-12);
        assertEquals(w.lr(3), 0.4, 1e-12);
        assertEquals(w.lr(50), 0.4, 1e-12);
        assertThrows(IllegalArgumentException.class, () -> new Schedule.Constant(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> new Optimizer.Sgd(1.5, false, 0));
    }
}
