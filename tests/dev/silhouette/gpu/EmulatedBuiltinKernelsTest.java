package dev.silhouette.gpu;

import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.backend.cpu.Reference;
import dev.silhouette.backend.cuda.BuiltinKernels;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;

/**
 * The built-in kernels of ops_elementwise.cu, ops_pool.cu and ops_fallback.cu (which no GPU has run) through
 * BuiltinKernels' own glue, executed by the hardened host emulation (blocks shuffled, shared memory
 * poisoned), against the CPU backend with the same contracts as BuiltinKernelsGpuTest: bit-exact where the
 * kernel keeps the CPU's order, within one float ulp where exp differs, within an accumulation bound where
 * the kernel sums in another order. Small shapes: the emulation runs every thread as a coroutine.
 */
public class EmulatedBuiltinKernelsTest {
    private HostEmulator emu;
    private BuiltinKernels kernels;

    @BeforeClass(alwaysRun = true)
    public void open() {
        emu = new HostEmulator();
        kernels = new BuiltinKernels(emu);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (emu != null) emu.close();
    }

    private long out(int floats) {
        return emu.allocate((long) floats * Float.BYTES);
    }

    @Test
    public void elementwise() {
        Tensor x = Tensor.uniform(Shape.of(3, 5, 7, 11), -4, 4, 1), b = Tensor.uniform(x.shape(), -4, 4, 2);
        int n = x.size();
        long in = emu.put(x.data()), y = out(n);
        kernels.relu(in, y, n, null);
        BuiltinKernelsGpuTest.assertExact("relu", emu.floats(y, n), CpuOps.relu(x).data());
        kernels.add(in, emu.put(b.data()), y, n, null);
        BuiltinKernelsGpuTest.assertExact("add", emu.floats(y, n), CpuOps.add(x, b).data());
        kernels.hardSwish(in, y, n, null);
        BuiltinKernelsGpuTest.assertExact("hardSwish", emu.floats(y, n), CpuOps.hardSwish(x).data());
        kernels.sigmoid(in, y, n, null);
        BuiltinKernelsGpuTest.assertUlps("sigmoid", emu.floats(y, n), CpuOps.sigmoid(x).data(), BuiltinKernelsGpuTest.EXP_FLOAT_ULPS);
    }

    @Test
    public void pools() {
        Tensor x = Tensor.uniform(Shape.of(2, 3, 9, 8), -2, 2, 3);
        Window w = new Window(3, 2, 2, 1, 1, 1, 1, 2);
        int oh = w.outH(9), ow = w.outW(8), n = 2 * 3 * oh * ow;
        long in = emu.put(x.data()), y = out(n);
        kernels.maxPool(in, y, 2, 3, 9, 8, w, oh, ow, null);
        BuiltinKernelsGpuTest.assertExact("maxPool", emu.floats(y, n), CpuOps.maxPool(x, new Op.MaxPool(w)).data());
        for (boolean includePad : new boolean[] {false, true}) {
            kernels.avgPool(in, y, 2, 3, 9, 8, w, includePad, oh, ow, null);
            BuiltinKernelsGpuTest.assertExact("avgPool " + includePad, emu.floats(y, n), CpuOps.avgPool(x, new Op.AvgPool(w, includePad)).data());
        }
        long g = out(6);
        kernels.globalAvgPool(in, g, 6, 72, null);
        float[] expected = CpuOps.globalAvgPool(x).data();
        double[] bound = new double[6];
        for (int q = 0; q < 6; q++) bound[q] = Math.ulp(Math.abs(expected[q])) + 72 * BuiltinKernelsGpuTest.REORDERED_DOUBLE_SUM_PER_TERM * 2;
        BuiltinKernelsGpuTest.assertWithin("globalAvgPool", emu.floats(g, 6), expected, bound);
    }

    /** Both softmax kernels: one thread per position (many positions) and one block per position (few positions, many classes). */
    @Test
    public void softmax() {
        for (Shape s : new Shape[] {Shape.of(3, 10, 4, 4), Shape.of(2, 300)}) {
            Tensor x = Tensor.uniform(s, -6, 6, s.size());
            int inner = s.size() / (s.dim(0) * s.dim(1));
            long y = out(s.size());
            kernels.softmax(emu.put(x.data()), y, s.dim(0), s.dim(1), inner, null);
            BuiltinKernelsGpuTest.assertUlps("softmax " + s, emu.floats(y, s.size()), CpuOps.softmax(x).data(), 1);
        }
    }

    /** The direct convolution (grouped, strided, dilated) and the shared-memory-tiled SGEMM, against the double references. */
    @Test
    public void convolutionAndGemm() {
        Op.Conv2d conv = new Op.Conv2d(6, 4, new Window(3, 3, 2, 1, 1, 2, 1, 2), 2, true);
        Shape in = Shape.of(2, 6, 7, 9);
        Tensor x = Tensor.uniform(in, -1, 1, 5), w = Tensor.uniform(Shape.of(4, 3, 3, 3), -1, 1, 6), b = Tensor.uniform(Shape.of(4), -1, 1, 7);
        int oh = conv.window().outH(7), ow = conv.window().outW(9), n = 2 * 4 * oh * ow;
        long y = out(n);
        kernels.conv2dDirect(emu.put(x.data()), emu.put(w.data()), emu.put(b.data()), y, in, conv, oh, ow, null);
        within("conv2dDirect", emu.floats(y, n), Reference.conv2d(x, w, b, conv).data(), Reference.conv2d(x.abs(), w.abs(), b.abs(), conv).data());

        Op.Linear linear = new Op.Linear(70, 90, true);   // 90 outputs: two column tiles, the second partial; k past one step of 16
        Tensor a = Tensor.uniform(Shape.of(5, 70), -1, 1, 8), wl = Tensor.uniform(Shape.of(90, 70), -1, 1, 9), bl = Tensor.uniform(Shape.of(90), -1, 1, 10);
        long c = out(5 * 90);
        kernels.linear(emu.put(a.data()), emu.put(wl.data()), emu.put(bl.data()), c, 5, 70, 90, null);
        within("linear", emu.floats(c, 5 * 90), Reference.linear(a, wl, bl, linear).data(), Reference.linear(a.abs(), wl.abs(), bl.abs(), linear).data());
    }

    private static void within(String what, float[] actual, float[] expected, float[] magnitude) {
        double[] bound = new double[magnitude.length];
        for (int i = 0; i < bound.length; i++) bound[i] = BuiltinKernelsGpuTest.FLOAT_ACCUMULATION_RELATIVE * magnitude[i];
        BuiltinKernelsGpuTest.assertWithin(what, actual, expected, bound);
    }
}
