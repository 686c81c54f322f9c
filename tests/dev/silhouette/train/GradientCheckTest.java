package dev.silhouette.train;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/**
 * Every op's backward against central finite differences of its forward, on random small shapes.
 *
 * <p>The check runs in float32 with a tolerance justified as follows. The scalar probed is
 * L = sum r_i y_i (r fixed random), summed in double. Outputs the perturbation does not touch are
 * bitwise identical in L(x+h) and L(x-h) (the forward is deterministic), so the float32 rounding noise
 * of the difference comes only from touched outputs: about 1e-7 relative each, i.e. below 1e-5 after
 * dividing by 2h = 2e-2 (BatchNorm touches every output of a channel: still below 1e-4). The truncation
 * error of a central difference is h^2/6 |f'''| = 2e-5 |f'''|, zero for the ops that are linear in the
 * probed value (conv, linear, pooling, interpolation, add, concat). Hence |fd - analytic| <= 1e-3 + 1e-2
 * max(|fd|, |analytic|) holds with a wide margin, while a wrong index, a missing term or a factor of 2
 * breaks it. Non-smooth ops are probed away from their kinks (inputs at least 0.05 > h from them).
 */
public class GradientCheckTest {
    private static final float H = 1e-2f;
    private static final double ABS = 1e-3, REL = 1e-2;
    private static final int PROBES = 40;
    private static final float NETWORK_H = 1e-3f;

    /** A graph of one op on the given inputs, with every parameter set to random values. */
    private static Network single(Op op, int[]... inputShapes) {
        GraphBuilder b = new GraphBuilder(1);
        String[] names = new String[inputShapes.length];
        for (int i = 0; i < inputShapes.length; i++) names[i] = b.input("x" + i, inputShapes[i]);
        b.output(b.add("y", op, names));
        Network net = new Network(b.build());
        randomize(net, 7);
        return net;
    }

    private static void randomize(Network net, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        net.parameters().forEach((name, t) -> {
            for (int i = 0; i < t.size(); i++) {
                double u = rnd.nextDouble(-1, 1);
                // BatchNorm scales near 1 and variances positive, so both signs of gradients are exercised sensibly.
                t.data()[i] = (float) (name.endsWith("running_var") ? 1 + 0.5 * Math.abs(u) : name.contains("bn") && name.endsWith("weight") ? 1 + 0.5 * u : u);
            }
        });
    }

    private static Tensor random(long seed, int... sampleAndBatch) {
        return Tensor.uniform(Shape.of(sampleAndBatch), -1, 1, seed);
    }

    /** Values whose distance to every kink in {@code kinks} and to each other is at least 0.05. */
    private static Tensor awayFromKinks(long seed, float lo, float hi, float[] kinks, int... dims) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Tensor t = Tensor.zeros(dims);
        for (int i = 0; i < t.size(); i++) {
            float v;
            boolean ok;
            do {
                v = (float) rnd.nextDouble(lo, hi);
                ok = true;
                for (float k : kinks) ok &= Math.abs(v - k) >= 0.05f;
            } while (!ok);
            t.data()[i] = v;
        }
        return t;
    }

    /** Distinct values spaced 0.05 apart in random order: max pooling never has a near tie. */
    private static Tensor distinct(long seed, int... dims) {
        Tensor t = Tensor.zeros(dims);
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < t.size(); i++) order.add(i);
        java.util.Collections.shuffle(order, new java.util.Random(seed));
        for (int i = 0; i < t.size(); i++) t.data()[i] = (order.get(i) - t.size() / 2f) * 0.05f;
        return t;
    }

    private static Map<String, Tensor> inputs(Tensor... xs) {
        Map<String, Tensor> m = new HashMap<>();
        for (int i = 0; i < xs.length; i++) m.put("x" + i, xs[i]);
        return m;
    }

    /** Checks d(sum r*y)/d(every input and parameter) of the network's single output against finite differences. */
    private static void check(Network net, Map<String, Tensor> in, String what) {
        String out = net.graph().outputs().getFirst();
        Tensor y = net.forward(in, true).value(out);
        float[] r = random(99, y.size()).data();
        Network.Pass pass = net.forward(in, true);
        Map<String, Tensor> grads = net.backward(pass, Map.of(out, new Tensor(y.shape(), r)), true);
        Map<String, Tensor> probed = new HashMap<>(in);
        for (String p : net.trainable()) probed.put(p, net.parameters().get(p));
        int checked = 0;
        for (var e : probed.entrySet()) {
            Tensor g = grads.get(e.getKey());
            assertTrue(g != null, what + ": no gradient for " + e.getKey());
            assertEquals(g.shape(), e.getValue().shape(), what + ": gradient shape of " + e.getKey());
            float[] v = e.getValue().data();
            SplittableRandom pick = new SplittableRandom(e.getKey().hashCode());
            for (int probe = 0; probe < Math.min(PROBES, v.length); probe++) {
                int i = v.length <= PROBES ? probe : pick.nextInt(v.length);
                double fd = centralDifference(() -> probe(net, in, out, r), v, i);
                double an = g.data()[i];
                assertTrue(Math.abs(fd - an) <= ABS + REL * Math.max(Math.abs(fd), Math.abs(an)),
                        what + ": d/d " + e.getKey() + "[" + i + "] analytic " + an + " vs finite difference " + fd);
                checked++;
            }
        }
        assertTrue(checked > 0);
    }

    private interface Probe {
        double value();
    }

    private static double centralDifference(Probe f, float[] v, int i) {
        float saved = v[i];
        float up = saved + H, down = saved - H;
        v[i] = up;
        double lp = f.value();
        v[i] = down;
        double lm = f.value();
        v[i] = saved;
        // The float steps actually taken, not the nominal 2h.
        return (lp - lm) / ((double) up - down);
    }

    private static double probe(Network net, Map<String, Tensor> in, String out, float[] r) {
        float[] y = net.forward(in, true).value(out).data();
        double s = 0;
        for (int i = 0; i < y.length; i++) s += (double) r[i] * y[i];
        return s;
    }

    @Test
    public void conv2dAllWindowShapes() {
        record Case(int n, int cin, int cout, int h, int w, Window win, int groups, boolean bias) {}
        List<Case> cases = List.of(
                new Case(2, 3, 4, 6, 5, Window.square(3, 1, 1), 1, false),
                new Case(2, 2, 3, 7, 7, Window.square(3, 2, 0), 1, true),
                new Case(1, 4, 6, 6, 6, Window.square(3, 1, 1), 2, true),
                new Case(2, 4, 4, 5, 5, Window.square(3, 1, 1), 4, false),
                new Case(2, 3, 2, 8, 7, new Window(3, 2, 1, 2, 2, 1, 2, 1), 1, true),
                new Case(3, 3, 5, 6, 6, Window.square(1, 2, 0), 1, false));
        for (Case c : cases) {
            Op.Conv2d op = new Op.Conv2d(c.cin(), c.cout(), c.win(), c.groups(), c.bias());
            Network net = single(op, new int[] {c.cin(), c.h(), c.w()});
            check(net, inputs(random(3, c.n(), c.cin(), c.h(), c.w())), "conv " + c);
        }
    }

    @Test
    public void batchNormTrainingModeOverImagesAndVectors() {
        check(single(new Op.BatchNorm(3, 1e-5f), new int[] {3, 4, 5}), inputs(random(4, 3, 3, 4, 5)), "batchnorm NCHW");
        check(single(new Op.BatchNorm(5, 1e-5f), new int[] {5}), inputs(random(5, 6, 5)), "batchnorm NC");
    }

    @Test
    public void batchNormUpdatesRunningStatisticsLikePyTorch() {
        Network net = single(new Op.BatchNorm(2, 1e-5f), new int[] {2, 3, 3});
        Tensor x = random(6, 4, 2, 3, 3);
        float[] mean0 = net.parameters().get("y.running_mean").data().clone(), var0 = net.parameters().get("y.running_var").data().clone();
        net.forward(inputs(x), true);
        for (int c = 0; c < 2; c++) {
            List<Double> values = new ArrayList<>();
            for (int n = 0; n < 4; n++) for (int i = 0; i < 9; i++) values.add((double) x.get(n, c, i / 3, i % 3));
            double mean = values.stream().mapToDouble(Double::doubleValue).average().orElseThrow();
            double unbiased = new org.apache.commons.math3.stat.descriptive.moment.Variance(true)
                    .evaluate(values.stream().mapToDouble(Double::doubleValue).toArray());
            assertEquals(net.parameters().get("y.running_mean").data()[c], 0.9 * mean0[c] + 0.1 * mean, 1e-6);
            assertEquals(net.parameters().get("y.running_var").data()[c], 0.9 * var0[c] + 0.1 * unbiased, 1e-6);
        }
        // Evaluation mode leaves them alone.
        float[] after = net.parameters().get("y.running_mean").data().clone();
        net.forward(inputs(x), false);
        assertEquals(net.parameters().get("y.running_mean").data(), after);
    }

    @Test
    public void elementwise() {
        int[] s = {3, 4, 4};
        check(single(new Op.Relu(), s), inputs(awayFromKinks(1, -1, 1, new float[] {0}, 2, 3, 4, 4)), "relu");
        check(single(new Op.Clip(-0.5f, 0.5f), s), inputs(awayFromKinks(2, -1, 1, new float[] {-0.5f, 0.5f}, 2, 3, 4, 4)), "clip");
        check(single(new Op.Sigmoid(), s), inputs(Tensor.uniform(Shape.of(2, 3, 4, 4), -3, 3, 3)), "sigmoid");
        check(single(new Op.Add(), s, s), inputs(random(4, 2, 3, 4, 4), random(5, 2, 3, 4, 4)), "add");
        check(single(new Op.Softmax(), new int[] {5}), inputs(Tensor.uniform(Shape.of(3, 5), -2, 2, 6)), "softmax over classes");
        check(single(new Op.Softmax(), new int[] {4, 2, 3}), inputs(Tensor.uniform(Shape.of(2, 4, 2, 3), -2, 2, 7)), "softmax over channels");
        check(single(new Op.Flatten(), s), inputs(random(8, 2, 3, 4, 4)), "flatten");
    }

    @Test
    public void pooling() {
        int[] s = {2, 7, 6};
        check(single(new Op.MaxPool(Window.square(3, 2, 1)), s), inputs(distinct(1, 2, 2, 7, 6)), "maxpool 3/2/1");
        check(single(new Op.MaxPool(Window.square(2, 2, 0)), s), inputs(distinct(2, 2, 2, 7, 6)), "maxpool 2/2/0");
        check(single(new Op.AvgPool(Window.square(3, 2, 1), true), s), inputs(random(3, 2, 2, 7, 6)), "avgpool include pad");
        check(single(new Op.AvgPool(Window.square(3, 2, 1), false), s), inputs(random(4, 2, 2, 7, 6)), "avgpool exclude pad");
        check(single(new Op.AvgPool(new Window(2, 3, 1, 2, 0, 1, 1, 1), false), s), inputs(random(5, 2, 2, 7, 6)), "avgpool rectangular");
        check(single(new Op.GlobalAvgPool(), s), inputs(random(6, 2, 2, 7, 6)), "global avgpool");
    }

    @Test
    public void linear() {
        check(single(new Op.Linear(6, 4, true), new int[] {6}), inputs(random(1, 5, 6)), "linear with bias");
        check(single(new Op.Linear(3, 7, false), new int[] {3}), inputs(random(2, 2, 3)), "linear without bias");
    }

    @Test
    public void interpolate() {
        int[] s = {2, 5, 4};
        for (Op.Interpolate.Mode mode : Op.Interpolate.Mode.values()) {
            check(single(new Op.Interpolate(mode, 9, 11), s), inputs(random(1, 2, 2, 5, 4)), mode + " upscale");
            check(single(new Op.Interpolate(mode, 3, 2), s), inputs(random(2, 2, 2, 5, 4)), mode + " downscale");
            check(single(new Op.Interpolate(mode, 7, 4), s), inputs(random(3, 2, 2, 5, 4)), mode + " mixed");
        }
    }

    @Test
    public void logitBlend() {
        Network net = single(new Op.LogitBlend(), new int[] {5}, new int[] {5});
        check(net, inputs(random(1, 3, 5), random(2, 3, 5)), "logit blend, random gate");
        // The initial gate (g = 0.95), where the auxiliary logits get only a twentieth of the gradient.
        net.parameters().get("y.gate").data()[0] = Op.LogitBlend.INITIAL_GATE;
        check(net, inputs(random(3, 4, 5), random(4, 4, 5)), "logit blend, initial gate");
    }

    @Test
    public void concat() {
        check(single(new Op.Concat(1), new int[] {2, 3, 3}, new int[] {1, 3, 3}, new int[] {3, 3, 3}),
                inputs(random(1, 2, 2, 3, 3), random(2, 2, 1, 3, 3), random(3, 2, 3, 3, 3)), "concat channels");
        check(single(new Op.Concat(3), new int[] {2, 3, 2}, new int[] {2, 3, 4}), inputs(random(4, 2, 2, 3, 2), random(5, 2, 2, 3, 4)), "concat width");
    }

    @Test
    public void softmaxCrossEntropyGradient() {
        Tensor logits = Tensor.uniform(Shape.of(4, 6), -3, 3, 1);
        int[] labels = {0, 5, 2, 2};
        Loss.Result r = Loss.softmaxCrossEntropy(logits, labels);
        for (int i = 0; i < logits.size(); i++) {
            double fd = centralDifference(() -> Loss.softmaxCrossEntropy(logits, labels).loss(), logits.data(), i);
            assertEquals(r.grad().data()[i], fd, ABS / 10 + REL * Math.abs(fd), "d loss / d logit " + i);
        }
        // Independently: loss of uniform logits is log(classes).
        assertEquals(Loss.softmaxCrossEntropy(Tensor.zeros(2, 6), new int[] {1, 3}).loss(), Math.log(6), 1e-12);
    }

    @Test
    public void distillationGradient() {
        Tensor logits = Tensor.uniform(Shape.of(4, 6), -3, 3, 1), teacher = Tensor.uniform(Shape.of(4, 6), -3, 3, 2);
        int[] labels = {0, 5, 2, 2};
        Loss.Result r = Loss.distillation(logits, teacher, labels, 0.7f, 2f);
        for (int i = 0; i < logits.size(); i++) {
            double fd = centralDifference(() -> Loss.distillation(logits, teacher, labels, 0.7f, 2f).loss(), logits.data(), i);
            assertEquals(r.grad().data()[i], fd, ABS / 10 + REL * Math.abs(fd), "d loss / d logit " + i);
        }
        // Independently: a student that already predicts as its teacher has nothing to learn from it,
        // and weight 0 is plain cross-entropy.
        Loss.Result same = Loss.distillation(teacher, teacher, labels, 1f, 3f);
        assertEquals(same.loss(), 0, 1e-12);
        for (float g : same.grad().data()) assertEquals(g, 0f, 1e-7f);
        assertEquals(Loss.distillation(logits, teacher, labels, 0f, 2f).loss(), Loss.softmaxCrossEntropy(logits, labels).loss(), 1e-12);
    }

    /**
     * A small residual network end to end (conv, BatchNorm, ReLU, add, average pooling, linear) through the
     * cross-entropy loss. ReLU kinks cannot be placed by hand here, so probes whose +-h perturbation
     * flips any ReLU input's sign are skipped (they measure the kink, not the gradient); at least
     * half of the probes must remain. BatchNorm couples every value of a channel, so the step is
     * smaller here (1e-3): the loss is one float32-rounded logit difference away from exact, about
     * 1e-7 / 2e-3 = 5e-5 of noise, still well inside the tolerance.
     */
    @Test
    public void residualNetworkThroughTheLoss() {
        GraphBuilder b = new GraphBuilder(3);
        String x = b.input("x0", 2, 8, 8);
        String c1 = b.relu("relu1", b.batchNorm("bn1", b.conv("conv1", x, 4, Window.square(3, 1, 1), 1, false)));
        String c2 = b.batchNorm("bn2", b.conv("conv2", c1, 4, Window.square(3, 1, 1), 1, false));
        String sc = b.conv("short", x, 4, Window.square(1, 1, 0), 1, true);
        String add = b.relu("relu2", b.add("add", new Op.Add(), c2, sc));
        String pooled = b.add("flatten", new Op.Flatten(), b.add("gap", new Op.GlobalAvgPool(), b.add("pool", new Op.AvgPool(Window.square(2, 2, 0), true), add)));
        b.output(b.linear("fc", pooled, 3));
        Network net = new Network(b.build());
        randomize(net, 11);
        Tensor input = random(12, 3, 2, 8, 8);
        int[] labels = {2, 0, 1};
        Map<String, Tensor> in = inputs(input);
        Network.Pass pass = net.forward(in, true);
        Map<String, Tensor> grads = net.backward(pass, Map.of("fc", Loss.softmaxCrossEntropy(pass.value("fc"), labels).grad()), true);
        int checked = 0, skipped = 0;
        Map<String, Tensor> probed = new HashMap<>(in);
        for (String p : net.trainable()) probed.put(p, net.parameters().get(p));
        for (var e : probed.entrySet()) {
            float[] v = e.getValue().data();
            SplittableRandom pick = new SplittableRandom(e.getKey().hashCode());
            for (int probe = 0; probe < Math.min(12, v.length); probe++) {
                int i = pick.nextInt(v.length);
                float saved = v[i];
                v[i] = saved + NETWORK_H;
                Network.Pass up = net.forward(in, true);
                v[i] = saved - NETWORK_H;
                Network.Pass down = net.forward(in, true);
                v[i] = saved;
                if (kinkCrossed(net, up, down)) {
                    skipped++;
                    continue;
                }
                double fd = (Loss.softmaxCrossEntropy(up.value("fc"), labels).loss() - Loss.softmaxCrossEntropy(down.value("fc"), labels).loss())
                        / ((double) (saved + NETWORK_H) - (saved - NETWORK_H));
                double an = grads.get(e.getKey()).data()[i];
                assertTrue(Math.abs(fd - an) <= ABS + REL * Math.max(Math.abs(fd), Math.abs(an)),
                        "network: d loss / d " + e.getKey() + "[" + i + "] analytic " + an + " vs finite difference " + fd);
                checked++;
            }
        }
        assertTrue(checked >= (checked + skipped) / 2, "too many probes crossed a ReLU kink: " + skipped + " of " + (checked + skipped));
    }

    private static boolean kinkCrossed(Network net, Network.Pass a, Network.Pass b) {
        for (Node node : net.graph().nodes()) {
            if (!(node.op() instanceof Op.Relu)) continue;
            float[] x = a.value(node.inputs().getFirst()).data(), y = b.value(node.inputs().getFirst()).data();
            for (int i = 0; i < x.length; i++) if ((x[i] > 0) != (y[i] > 0)) return true;
        }
        return false;
    }

    @Test
    public void parametersNoLossReachesGetNoGradient() {
        GraphBuilder b = new GraphBuilder(4);
        String x = b.input("x0", 2, 4, 4);
        String trunk = b.conv("trunk", x, 3, Window.square(3, 1, 1), 1, false);
        b.add("side", new Op.Sigmoid(), b.conv("branch", trunk, 1, Window.square(1, 1, 0), 1, false));
        b.output(b.linear("fc", b.add("flatten", new Op.Flatten(), b.add("gap", new Op.GlobalAvgPool(), trunk)), 2));
        b.output("side");
        Network net = new Network(b.build());
        Network.Pass pass = net.forward(inputs(random(1, 2, 2, 4, 4)), true);
        Map<String, Tensor> grads = net.backward(pass, Map.of("fc", Tensor.filled(Shape.of(2, 2), 1f)));
        assertTrue(grads.containsKey("trunk.weight") && grads.containsKey("fc.weight"));
        assertTrue(!grads.containsKey("branch.weight"), "the branch feeds no loss, so it must get no gradient");
    }
}
