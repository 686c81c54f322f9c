package dev.silhouette.gpu;

import dev.silhouette.Tolerances;
import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.backend.cpu.Reference;
import dev.silhouette.backend.cuda.BuiltinKernels;
import dev.silhouette.backend.cuda.CudaAvailability;
import dev.silhouette.backend.cuda.CudaContext;
import dev.silhouette.backend.cuda.CudaStream;
import dev.silhouette.backend.cuda.DeviceAllocator;
import dev.silhouette.backend.cuda.DeviceBuffer;
import dev.silhouette.backend.cuda.KernelModule;
import dev.silhouette.backend.cuda.PinnedBuffer;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.SkipException;
import org.testng.annotations.AfterClass;
import org.testng.annotations.AfterMethod;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.BeforeMethod;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.LongConsumer;

import static org.testng.Assert.fail;

/**
 * Every built-in kernel (cuda/ops_*.cu through BuiltinKernels) against the CPU op on named problems:
 * awkward shapes (1x1, one pixel, sizes off the block size, windows wholly in padding, grids past their
 * caps) and real ResNet layers. Each output lies between two guard regions filled with a canary NaN that
 * no kernel writes, and its body starts as the canary too, so an out-of-bounds write fails on the guard
 * and a missed output fails the NaN/Inf check that precedes every comparison.
 */
@Test(groups = "gpu")
public class BuiltinKernelsGpuTest {
    /** A quiet NaN with a payload no arithmetic produces: fills guards and unwritten outputs. */
    static final int CANARY = 0x7fc0dead;
    /** Guard floats on each side of an output: 1 KiB, past any off-by-a-block overrun of a 256-thread block. */
    static final int GUARD = 256;
    /**
     * Sigmoid and softmax evaluate exp in double on both sides; CUDA's exp and Java's Math.exp are each
     * within 1 double ulp of exact, so the doubles may differ in the last bits and the floats, rounded
     * from them, by at most one ulp (the reordered softmax sums add a relative 2^-40 at most, far below).
     */
    static final int EXP_FLOAT_ULPS = 1;
    /**
     * Two double sums of the same K floats in different orders differ by at most 2 (K - 1) 2^-53 of the sum
     * of magnitudes (each order's error bound); global average pooling's warp reduction against the CPU's
     * left fold, divided by K, therefore differs by at most K 2^-52 mean|x|, plus the float rounding.
     */
    static final double REORDERED_DOUBLE_SUM_PER_TERM = 0x1p-52;
    /**
     * Direct convolution and the SGEMM accumulate K products in float with fmaf: random rounding errors
     * grow as sqrt(K) 2^-24 of sum |x w| (under 5e-6 for K = 4608, ResNet's largest), within the suite's
     * float accumulation tolerance with margin, while one missing or wrong tap moves an output by about
     * sum |x w| / K (over 2e-4 at that K).
     */
    static final double FLOAT_ACCUMULATION_RELATIVE = Tolerances.ACCUMULATION_RELATIVE;

    private CudaContext context;
    private CudaStream stream;
    private DeviceAllocator allocator;
    private KernelModule module;
    private BuiltinKernels kernels;
    private PinnedBuffer staging;
    private final List<DeviceBuffer> buffers = new ArrayList<>();

    @BeforeClass
    public void open() {
        CudaAvailability.unavailableReason().ifPresent(reason -> {
            throw new SkipException("CUDA unavailable: " + reason);
        });
        context = new CudaContext(0);
        stream = new CudaStream();
        allocator = new DeviceAllocator(context);
        module = new KernelModule(context);
        kernels = new BuiltinKernels(module);
    }

    @BeforeMethod
    public void current() {
        if (context != null) context.makeCurrent();
    }

    @AfterMethod(alwaysRun = true)
    public void releaseBuffers() {
        for (DeviceBuffer b : buffers) b.close();
        buffers.clear();
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (stream != null) stream.synchronize("test end");
        if (staging != null) staging.close();
        if (module != null) module.close();
        if (allocator != null) allocator.close();
        if (stream != null) stream.close();
        if (context != null) context.close();
    }

    // Device data.

    private PinnedBuffer staging(int floats) {
        long bytes = Math.max(4L, 4L * floats);
        if (staging == null || staging.bytes() < bytes) {
            if (staging != null) staging.close();
            staging = new PinnedBuffer(Math.max(bytes, 1 << 20));
        }
        return staging;
    }

    private long upload(float[] data) {
        DeviceBuffer b = allocator.allocate(Math.max(1, data.length) * 4L);
        buffers.add(b);
        if (data.length > 0) b.upload(data, staging(data.length), stream);
        return b.address();
    }

    /** An output of {@code count} floats between two guards; starts as {@code initial}, or the canary if null. */
    private final class Guarded {
        private final DeviceBuffer buffer;
        private final int count;

        Guarded(int count, float[] initial) {
            this.count = count;
            float[] host = new float[count + 2 * GUARD];
            Arrays.fill(host, Float.intBitsToFloat(CANARY));
            if (initial != null) System.arraycopy(initial, 0, host, GUARD, count);
            buffer = allocator.allocate(4L * host.length);
            buffers.add(buffer);
            buffer.upload(host, staging(host.length), stream);
        }

        long address() {
            return buffer.address() + 4L * GUARD;
        }

        /** Waits for the stream, checks both guards, and returns the output. */
        float[] read(String problem) {
            float[] host = new float[count + 2 * GUARD];
            buffer.download(host, staging(host.length), stream);
            for (int i = 0; i < host.length; i++) {
                if (i == GUARD) i += count;
                if (i < host.length && Float.floatToRawIntBits(host[i]) != CANARY) {
                    String where = i < GUARD ? (GUARD - i) + " floats before" : (i - GUARD - count + 1) + " floats after";
                    fail(problem + ": guard word " + where + " the output was overwritten with " + bits(host[i]));
                }
            }
            return Arrays.copyOfRange(host, GUARD, GUARD + count);
        }
    }

    private float[] run(String problem, int count, LongConsumer launch) {
        Guarded out = new Guarded(count, null);
        launch.accept(out.address());
        return out.read(problem);
    }

    // Comparisons: shapes first, then non-finite GPU values where the CPU is finite, then values.

    private static String bits(float v) {
        return v + " (0x" + Integer.toHexString(Float.floatToRawIntBits(v)) + ")";
    }

    private static void checkFinite(String problem, float[] actual, float[] expected) {
        if (actual.length != expected.length) fail(problem + ": GPU gave " + actual.length + " values, CPU " + expected.length);
        for (int i = 0; i < actual.length; i++) {
            if (!Float.isFinite(actual[i]) && Float.isFinite(expected[i])) {
                String unwritten = Float.floatToRawIntBits(actual[i]) == CANARY ? ", never written" : "";
                fail(problem + ": element " + i + " is " + bits(actual[i]) + unwritten + " on the GPU where the CPU has " + bits(expected[i]));
            }
        }
    }

    /** Same bits, or both NaN: Java leaves NaN payloads unspecified (x86 and the GPU make different ones). */
    static void assertExact(String problem, float[] actual, float[] expected) {
        checkFinite(problem, actual, expected);
        for (int i = 0; i < actual.length; i++) {
            boolean same = Float.floatToRawIntBits(actual[i]) == Float.floatToRawIntBits(expected[i])
                    || Float.isNaN(actual[i]) && Float.isNaN(expected[i]);
            if (!same) fail(problem + ": element " + i + " is " + bits(actual[i]) + " on the GPU, " + bits(expected[i]) + " on the CPU (exact expected)");
        }
    }

    static void assertUlps(String problem, float[] actual, float[] expected, int ulps) {
        checkFinite(problem, actual, expected);
        int differing = 0;
        for (int i = 0; i < actual.length; i++) {
            float a = actual[i], e = expected[i];
            if (Float.floatToRawIntBits(a) == Float.floatToRawIntBits(e) || Float.isNaN(a) && Float.isNaN(e)) continue;
            differing++;
            double diff = Math.abs((double) a - e);
            if (!(diff <= ulps * (double) Math.ulp(Math.max(Math.abs(a), Math.abs(e))))) {
                fail(problem + ": element " + i + " is " + bits(a) + " on the GPU, " + bits(e) + " on the CPU (more than " + ulps + " ulp apart)");
            }
        }
        System.out.printf("%s: %d of %d elements one ulp off the CPU%n", problem, differing, actual.length);
    }

    /** |actual - expected| <= bound[i] for every element; logs the largest error as a fraction of its bound. */
    static void assertWithin(String problem, float[] actual, float[] expected, double[] bound) {
        checkFinite(problem, actual, expected);
        double worst = 0;
        for (int i = 0; i < actual.length; i++) {
            double diff = Math.abs((double) actual[i] - expected[i]);
            if (!(diff <= bound[i])) {
                fail(problem + ": element " + i + " is " + bits(actual[i]) + " on the GPU, " + bits(expected[i]) + " on the CPU (|diff| " + diff
                        + " over the bound " + bound[i] + ")");
            }
            if (bound[i] > 0) worst = Math.max(worst, diff / bound[i]);
        }
        System.out.printf("%s: largest error %.3f of its bound%n", problem, worst);
    }

    // Inputs.

    /** Values every elementwise problem starts with: signed zeros, NaN, infinities, subnormals, extremes. */
    private static final float[] SPECIALS = {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE,
            -Float.MIN_VALUE, 1e-40f, -1e-40f, Float.MAX_VALUE, -Float.MAX_VALUE, 88.8f, -88.8f, 745.2f, -745.2f, 0.5f, -0.25f, 6f, 1f};

    private static float[] random(Shape shape, float lo, float hi, String seed) {
        return Tensor.uniform(shape, lo, hi, seed.hashCode()).data();
    }

    private static float[] withSpecials(float[] data) {
        System.arraycopy(SPECIALS, 0, data, 0, Math.min(SPECIALS.length, data.length));
        return data;
    }

    private static Object[][] rows(List<?> problems) {
        return problems.stream().map(p -> new Object[] {p}).toArray(Object[][]::new);
    }

    // Elementwise.

    record Count(String name, int count) {
        @Override
        public String toString() {
            return name + " (" + count + ")";
        }
    }

    @DataProvider
    public Object[][] counts() {
        return rows(List.of(
                new Count("one element", 1),
                new Count("one warp minus one", 31),
                new Count("one block plus one", BuiltinKernels.BLOCK + 1),
                new Count("odd", 1031),
                new Count("resnet18 layer1 activation 2x64x56x56", 2 * 64 * 56 * 56),
                new Count("twice the flat grid cap plus 33 (grid-stride)", 2 * BuiltinKernels.MAX_FLAT_BLOCKS * BuiltinKernels.BLOCK + 33)));
    }

    @Test(dataProvider = "counts")
    public void relu(Count p) {
        Tensor x = new Tensor(Shape.of(p.count()), withSpecials(random(Shape.of(p.count()), -4, 4, "relu" + p)));
        long in = upload(x.data());
        assertExact("relu " + p, run("relu " + p, p.count(), y -> kernels.relu(in, y, p.count(), stream)), CpuOps.relu(x).data());
    }

    @Test(dataProvider = "counts")
    public void reluInPlace(Count p) {
        Tensor x = new Tensor(Shape.of(p.count()), withSpecials(random(Shape.of(p.count()), -4, 4, "relu in place" + p)));
        Guarded out = new Guarded(p.count(), x.data());
        kernels.relu(out.address(), out.address(), p.count(), stream);
        assertExact("relu in place " + p, out.read("relu in place " + p), CpuOps.relu(x).data());
    }

    @Test(dataProvider = "counts")
    public void clip(Count p) {
        Tensor x = new Tensor(Shape.of(p.count()), withSpecials(random(Shape.of(p.count()), -8, 8, "clip" + p)));
        long in = upload(x.data());
        for (Op.Clip op : List.of(new Op.Clip(-0.25f, 0.5f), new Op.Clip(0f, 6f), new Op.Clip(-0f, 0f), new Op.Clip(1f, 1f))) {
            String name = "clip [" + op.min() + ", " + op.max() + "] " + p;
            assertExact(name, run(name, p.count(), y -> kernels.clip(in, y, p.count(), op.min(), op.max(), stream)), CpuOps.clip(x, op).data());
        }
    }

    @Test(dataProvider = "counts")
    public void sigmoid(Count p) {
        Tensor x = new Tensor(Shape.of(p.count()), withSpecials(random(Shape.of(p.count()), -20, 20, "sigmoid" + p)));
        long in = upload(x.data());
        assertUlps("sigmoid " + p, run("sigmoid " + p, p.count(), y -> kernels.sigmoid(in, y, p.count(), stream)), CpuOps.sigmoid(x).data(), EXP_FLOAT_ULPS);
    }

    @Test(dataProvider = "counts")
    public void add(Count p) {
        Shape s = Shape.of(p.count());
        Tensor a = new Tensor(s, withSpecials(random(s, -4, 4, "add a" + p)));
        float[] bd = random(s, -4, 4, "add b" + p);
        // Reversed specials against a's: inf + -inf, NaN + x, subnormal sums, -0 + 0.
        for (int i = 0; i < Math.min(SPECIALS.length, bd.length); i++) bd[i] = SPECIALS[SPECIALS.length - 1 - i];
        Tensor b = new Tensor(s, bd);
        long da = upload(a.data()), db = upload(b.data());
        assertExact("add " + p, run("add " + p, p.count(), y -> kernels.add(da, db, y, p.count(), stream)), CpuOps.add(a, b).data());
    }

    // Per-channel: BatchNorm and bias.

    record Channels(String name, int... dims) {
        Shape shape() {
            return Shape.of(dims);
        }

        int plane() {
            return shape().size() / (dims[0] * dims[1]);
        }

        @Override
        public String toString() {
            return name + " " + Arrays.toString(dims);
        }
    }

    @DataProvider
    public Object[][] channelShapes() {
        return rows(List.of(
                new Channels("one pixel one channel", 1, 1, 1, 1),
                new Channels("odd", 3, 7, 5, 9),
                new Channels("BatchNorm1d features", 5, 10),
                new Channels("rank 3", 2, 5, 33),
                new Channels("long row", 1, 3, 1, 1031),
                new Channels("resnet18 layer1", 2, 64, 56, 56),
                new Channels("resnet18 layer4", 4, 512, 7, 7)));
    }

    @Test(dataProvider = "channelShapes")
    public void batchNorm(Channels p) {
        Shape s = p.shape();
        int c = s.dim(1);
        Tensor x = new Tensor(s, withSpecials(random(s, -3, 3, "bn x" + p)));
        Tensor gamma = Tensor.uniform(Shape.of(c), 0.5f, 1.5f, 1), beta = Tensor.uniform(Shape.of(c), -0.5f, 0.5f, 2);
        Tensor mean = Tensor.uniform(Shape.of(c), -0.5f, 0.5f, 3), var = Tensor.uniform(Shape.of(c), 0.5f, 2f, 4);
        Op.BatchNorm op = new Op.BatchNorm(c, 1e-5f);
        float[][] f = BuiltinKernels.batchNormScaleShift(gamma.data(), beta.data(), mean.data(), var.data(), op.eps());
        long in = upload(x.data()), scale = upload(f[0]), shift = upload(f[1]);
        float[] expected = CpuOps.batchNorm(x, gamma, beta, mean, var, op).data();
        assertExact("batchNorm " + p, run("batchNorm " + p, s.size(), y -> kernels.batchNorm(in, y, scale, shift, s.dim(0), c, p.plane(), stream)), expected);
        Guarded inPlace = new Guarded(s.size(), x.data());
        kernels.batchNorm(inPlace.address(), inPlace.address(), scale, shift, s.dim(0), c, p.plane(), stream);
        assertExact("batchNorm in place " + p, inPlace.read("batchNorm in place " + p), expected);
    }

    @Test(dataProvider = "channelShapes")
    public void biasAdd(Channels p) {
        Shape s = p.shape();
        int c = s.dim(1), plane = p.plane();
        Tensor x = new Tensor(s, withSpecials(random(s, -3, 3, "bias x" + p)));
        float[] bias = random(Shape.of(c), -1, 1, "bias" + p);
        float[] broadcast = new float[s.size()];
        for (int i = 0; i < broadcast.length; i++) broadcast[i] = bias[i / plane % c];
        Tensor sum = CpuOps.add(x, new Tensor(s, broadcast));
        long in = upload(x.data()), b = upload(bias);
        for (boolean relu : new boolean[] {false, true}) {
            String name = "biasAdd" + (relu ? "+relu " : " ") + p;
            float[] expected = relu ? CpuOps.relu(sum).data() : sum.data();
            assertExact(name, run(name, s.size(), y -> kernels.biasAdd(in, b, y, s.dim(0), c, plane, relu, stream)), expected);
            Guarded inPlace = new Guarded(s.size(), x.data());
            kernels.biasAdd(inPlace.address(), b, inPlace.address(), s.dim(0), c, plane, relu, stream);
            assertExact(name + " in place", inPlace.read(name + " in place"), expected);
        }
    }

    // Pooling.

    record Pool(String name, Window window, int... dims) {
        @Override
        public String toString() {
            return name + " " + window + " on " + Arrays.toString(dims);
        }
    }

    @DataProvider
    public Object[][] pools() {
        return rows(List.of(
                new Pool("single pixel", Window.square(1, 1, 0), 1, 1, 1, 1),
                new Pool("windows wholly in padding", new Window(1, 1, 1, 1, 1, 1, 1, 1), 1, 2, 1, 1),
                new Pool("odd 2x3 stride 2x1", new Window(2, 3, 2, 1, 1, 1, 1, 1), 1, 3, 7, 5),
                new Pool("dilated", new Window(3, 3, 2, 2, 2, 2, 2, 2), 1, 5, 17, 13),
                new Pool("2x2/2 on odd sizes", Window.square(2, 2, 0), 3, 7, 9, 11),
                new Pool("planes beyond grid y", Window.square(2, 1, 1), 7, 10007, 2, 3),
                new Pool("plane wider than the grid", Window.square(3, 1, 1), 1, 1, 300, 301),
                new Pool("resnet18 stem maxpool", Window.square(3, 2, 1), 2, 64, 112, 112),
                new Pool("7x7 head", Window.square(7, 1, 0), 2, 512, 7, 7)));
    }

    private static Tensor poolInput(Pool p, String seed) {
        Shape s = Shape.of(p.dims());
        // Inputs from few values so that windows hold ties and signed zeros.
        float[] d = random(s, -4, 4, seed + p);
        for (int i = 0; i < d.length; i += 7) d[i] = (i & 8) == 0 ? 0f : -0f;
        return new Tensor(s, d);
    }

    @Test(dataProvider = "pools")
    public void maxPool(Pool p) {
        Tensor x = poolInput(p, "max");
        Shape s = x.shape();
        Window w = p.window();
        int oh = w.outH(s.h()), ow = w.outW(s.w());
        long in = upload(x.data());
        float[] actual = run("maxPool " + p, s.n() * s.c() * oh * ow, y -> kernels.maxPool(in, y, s.n(), s.c(), s.h(), s.w(), w, oh, ow, stream));
        assertExact("maxPool " + p, actual, CpuOps.maxPool(x, new Op.MaxPool(w)).data());
    }

    @Test(dataProvider = "pools")
    public void avgPool(Pool p) {
        Tensor x = poolInput(p, "avg");
        Shape s = x.shape();
        Window w = p.window();
        int oh = w.outH(s.h()), ow = w.outW(s.w());
        long in = upload(x.data());
        for (boolean includePad : new boolean[] {true, false}) {
            String name = "avgPool " + (includePad ? "counting padding " : "without padding ") + p;
            float[] actual = run(name, s.n() * s.c() * oh * ow, y -> kernels.avgPool(in, y, s.n(), s.c(), s.h(), s.w(), w, includePad, oh, ow, stream));
            assertExact(name, actual, CpuOps.avgPool(x, new Op.AvgPool(w, includePad)).data());
        }
    }

    @DataProvider
    public Object[][] globalPools() {
        return rows(List.of(
                new Channels("one pixel", 1, 1, 1, 1),
                new Channels("one row of 33", 3, 5, 1, 33),
                new Channels("resnet18 head", 4, 512, 7, 7),
                new Channels("resnet50 head", 2, 2048, 7, 7),
                new Channels("large plane", 1, 3, 224, 224),
                new Channels("planes beyond the grid cap (grid-stride)", 1, 300_000, 1, 2),
                new Channels("mean far from zero", 2, 3, 17, 19)));
    }

    @Test(dataProvider = "globalPools")
    public void globalAvgPool(Channels p) {
        Shape s = p.shape();
        float lo = p.name().startsWith("mean far") ? 1000 : -2;
        Tensor x = new Tensor(s, random(s, lo, lo + 4, "gap" + p));
        int planes = s.n() * s.c(), plane = s.h() * s.w();
        long in = upload(x.data());
        float[] actual = run("globalAvgPool " + p, planes, y -> kernels.globalAvgPool(in, y, planes, plane, stream));
        float[] expected = CpuOps.globalAvgPool(x).data();
        double[] bound = new double[planes];
        for (int q = 0; q < planes; q++) {
            double meanAbs = 0;
            for (int i = q * plane; i < (q + 1) * plane; i++) meanAbs += Math.abs(x.data()[i]);
            meanAbs /= plane;
            bound[q] = Math.ulp(Math.abs(expected[q])) + plane * REORDERED_DOUBLE_SUM_PER_TERM * meanAbs;
        }
        assertWithin("globalAvgPool " + p, actual, expected, bound);
    }

    // Softmax.

    record Softmax(String name, float scale, int... dims) {
        @Override
        public String toString() {
            return name + " " + Arrays.toString(dims) + " x" + scale;
        }
    }

    @DataProvider
    public Object[][] softmaxes() {
        return rows(List.of(
                new Softmax("single class (thread per position)", 2, 3, 1),
                new Softmax("odd classes (thread per position)", 2, 2, 37),
                new Softmax("channels at every pixel (thread per position)", 2, 2, 10, 3, 5),
                new Softmax("segmentation logits (thread per position)", 8, 1, 21, 64, 64),
                new Softmax("imagenet logits (block per position)", 4, 4, 1000),
                new Softmax("large logits, max-shifted (block per position)", 60, 4, 1000),
                new Softmax("rank 4 logits (block per position)", 4, 1, 1000, 1, 1),
                new Softmax("classes beyond a block (block per position)", 4, 3, 5000),
                new Softmax("strided classes (block per position)", 4, 2, 64, 3, 3)));
    }

    @Test(dataProvider = "softmaxes")
    public void softmax(Softmax p) {
        Shape s = Shape.of(p.dims());
        Tensor x = new Tensor(s, random(s, -p.scale(), p.scale(), "softmax" + p));
        int n = s.dim(0), classes = s.dim(1), inner = s.size() / (n * classes);
        long in = upload(x.data());
        float[] actual = run("softmax " + p, s.size(), y -> kernels.softmax(in, y, n, classes, inner, stream));
        assertUlps("softmax " + p, actual, CpuOps.softmax(x).data(), EXP_FLOAT_ULPS);
    }

    // Interpolation and concatenation.

    record Resize(String name, int outH, int outW, int... dims) {
        @Override
        public String toString() {
            return name + " " + Arrays.toString(dims) + " to " + outH + "x" + outW;
        }
    }

    @DataProvider
    public Object[][] resizes() {
        return rows(List.of(
                new Resize("one pixel up", 3, 2, 1, 1, 1, 1),
                new Resize("identity", 5, 5, 1, 3, 5, 5),
                new Resize("2x up", 56, 56, 2, 1, 28, 28),
                new Resize("odd, down and up", 5, 9, 1, 2, 7, 4),
                new Resize("down", 4, 6, 2, 3, 17, 13),
                new Resize("planes beyond grid y", 3, 3, 1, 70_000, 2, 2),
                new Resize("large plane", 517, 411, 1, 1, 300, 200),
                new Resize("decoder 2x up", 28, 28, 2, 256, 14, 14)));
    }

    @Test(dataProvider = "resizes")
    public void interpolate(Resize p) {
        Shape s = Shape.of(p.dims());
        Tensor x = new Tensor(s, random(s, -2, 2, "resize" + p));
        long in = upload(x.data());
        for (Op.Interpolate.Mode mode : Op.Interpolate.Mode.values()) {
            String name = mode + " " + p;
            float[] actual = run(name, s.n() * s.c() * p.outH() * p.outW(),
                    y -> kernels.interpolate(in, y, s.n() * s.c(), s.h(), s.w(), p.outH(), p.outW(), mode == Op.Interpolate.Mode.BILINEAR, stream));
            assertExact(name, actual, CpuOps.interpolate(x, new Op.Interpolate(mode, p.outH(), p.outW())).data());
        }
    }

    record Concat(String name, int axis, int[]... shapes) {
        @Override
        public String toString() {
            return name + " axis " + axis + " of " + Arrays.deepToString(shapes);
        }
    }

    @DataProvider
    public Object[][] concats() {
        return rows(List.of(
                new Concat("one input", 1, new int[] {1, 1, 1, 1}),
                new Concat("channels", 1, new int[] {2, 3, 5, 5}, new int[] {2, 1, 5, 5}, new int[] {2, 4, 5, 5}),
                new Concat("batch", 0, new int[] {1, 3, 4, 4}, new int[] {2, 3, 4, 4}),
                new Concat("last axis", 3, new int[] {2, 3, 4, 1}, new int[] {2, 3, 4, 5}),
                new Concat("features", 1, new int[] {3, 7}, new int[] {3, 1}),
                new Concat("resnet-sized channels", 1, new int[] {2, 64, 56, 56}, new int[] {2, 64, 56, 56})));
    }

    @Test(dataProvider = "concats")
    public void concat(Concat p) {
        List<Tensor> xs = new ArrayList<>();
        int along = 0;
        for (int i = 0; i < p.shapes().length; i++) {
            Shape s = Shape.of(p.shapes()[i]);
            xs.add(new Tensor(s, random(s, -2, 2, "concat" + i + p)));
            along += s.dim(p.axis());
        }
        Shape outShape = xs.getFirst().shape().withDim(p.axis(), along);
        int outer = 1;
        for (int d = 0; d < p.axis(); d++) outer *= outShape.dim(d);
        int rowLength = outShape.size() / outer, outerCount = outer;
        long[] in = xs.stream().mapToLong(t -> upload(t.data())).toArray();
        float[] actual = run("concat " + p, outShape.size(), y -> {
            int offset = 0;
            for (int i = 0; i < xs.size(); i++) {
                int chunk = xs.get(i).size() / outerCount;
                kernels.copyStrided(in[i], y, outerCount, chunk, chunk, rowLength, offset, stream);
                offset += chunk;
            }
        });
        assertExact("concat " + p, actual, CpuOps.concat(xs, outShape, new Op.Concat(p.axis())).data());
    }

    // Fallback convolution and GEMM.

    record Conv(String name, Op.Conv2d op, int... dims) {
        @Override
        public String toString() {
            return name + " " + op.inChannels() + "->" + op.outChannels() + " " + op.window() + " g" + op.groups()
                    + (op.bias() ? " +bias" : "") + " on " + Arrays.toString(dims);
        }
    }

    @DataProvider
    public Object[][] convolutions() {
        return rows(List.of(
                new Conv("1x1 single pixel", new Op.Conv2d(1, 1, Window.square(1, 1, 0), 1, false), 1, 1, 1, 1),
                new Conv("3x3 odd", new Op.Conv2d(3, 5, Window.square(3, 1, 1), 1, true), 2, 3, 7, 9),
                new Conv("dilated grouped strided", new Op.Conv2d(8, 12, new Window(3, 3, 2, 1, 2, 1, 2, 1), 4, true), 1, 8, 13, 11),
                new Conv("depthwise 3x3/2", new Op.Conv2d(32, 32, Window.square(3, 2, 1), 32, false), 2, 32, 15, 15),
                new Conv("padding wider than the kernel", new Op.Conv2d(2, 3, Window.square(1, 1, 2), 1, true), 1, 2, 3, 3),
                new Conv("planes beyond grid y", new Op.Conv2d(1, 1000, Window.square(1, 1, 0), 1, true), 70, 1, 3, 3),
                new Conv("resnet18 conv1 7x7/2", new Op.Conv2d(3, 64, Window.square(7, 2, 3), 1, false), 1, 3, 224, 224),
                new Conv("resnet18 layer3 3x3", new Op.Conv2d(256, 256, Window.square(3, 1, 1), 1, false), 1, 256, 14, 14),
                new Conv("resnet18 layer4 3x3", new Op.Conv2d(512, 512, Window.square(3, 1, 1), 1, false), 1, 512, 7, 7),
                new Conv("resnet50 1x1/2 downsample", new Op.Conv2d(512, 1024, Window.square(1, 2, 0), 1, true), 1, 512, 28, 28)));
    }

    @Test(dataProvider = "convolutions")
    public void conv2dDirect(Conv p) {
        Op.Conv2d op = p.op();
        Shape s = Shape.of(p.dims());
        Tensor x = new Tensor(s, random(s, -1, 1, "conv x" + p));
        Op.Parameter wp = op.parameters().getFirst();
        Tensor w = new Tensor(Shape.of(wp.dims()), random(Shape.of(wp.dims()), -1, 1, "conv w" + p));
        Tensor b = op.bias() ? new Tensor(Shape.of(op.outChannels()), random(Shape.of(op.outChannels()), -1, 1, "conv b" + p)) : null;
        int oh = op.window().outH(s.h()), ow = op.window().outW(s.w());
        long dx = upload(x.data()), dw = upload(w.data()), db = b == null ? 0 : upload(b.data());
        float[] actual = run("conv " + p, s.n() * op.outChannels() * oh * ow, y -> kernels.conv2dDirect(dx, dw, db, y, s, op, oh, ow, stream));
        float[] expected = Reference.conv2d(x, w, b, op).data();
        float[] magnitude = Reference.conv2d(x.abs(), w.abs(), b == null ? null : b.abs(), op).data();
        double[] bound = new double[magnitude.length];
        for (int i = 0; i < bound.length; i++) bound[i] = FLOAT_ACCUMULATION_RELATIVE * magnitude[i];
        assertWithin("conv " + p, actual, expected, bound);
    }

    record Gemm(String name, int batch, int in, int out, boolean bias) {
        @Override
        public String toString() {
            return name + " " + batch + "x" + in + " -> " + out + (bias ? " +bias" : "");
        }
    }

    @DataProvider
    public Object[][] linears() {
        return rows(List.of(
                new Gemm("1x1x1", 1, 1, 1, true),
                new Gemm("odd", 3, 37, 11, false),
                new Gemm("k not a multiple of the step", 2, 17, 3, true),
                new Gemm("tile edges", 67, 129, 65, true),
                new Gemm("resnet18 fc", 5, 512, 1000, true),
                new Gemm("resnet50 fc", 1, 2048, 1000, true),
                new Gemm("row tiles beyond grid y", BuiltinKernels.MAX_GRID_Y * BuiltinKernels.GEMM_TILE + 5, 1, 1, true)));
    }

    @Test(dataProvider = "linears")
    public void linear(Gemm p) {
        Op.Linear op = new Op.Linear(p.in(), p.out(), p.bias());
        Tensor x = new Tensor(Shape.of(p.batch(), p.in()), random(Shape.of(p.batch(), p.in()), -1, 1, "fc x" + p));
        Tensor w = new Tensor(Shape.of(p.out(), p.in()), random(Shape.of(p.out(), p.in()), -1, 1, "fc w" + p));
        Tensor b = p.bias() ? new Tensor(Shape.of(p.out()), random(Shape.of(p.out()), -1, 1, "fc b" + p)) : null;
        long dx = upload(x.data()), dw = upload(w.data()), db = b == null ? 0 : upload(b.data());
        float[] actual = run("linear " + p, p.batch() * p.out(), y -> kernels.linear(dx, dw, db, y, p.batch(), p.in(), p.out(), stream));
        float[] expected = Reference.linear(x, w, b, op).data();
        float[] magnitude = Reference.linear(x.abs(), w.abs(), b == null ? null : b.abs(), op).data();
        double[] bound = new double[magnitude.length];
        for (int i = 0; i < bound.length; i++) bound[i] = FLOAT_ACCUMULATION_RELATIVE * magnitude[i];
        assertWithin("linear " + p, actual, expected, bound);
    }

    /** Leading dimensions past the row length: the gaps between C's rows must keep their canary. */
    @Test
    public void gemmWithLeadingDimensions() {
        int m = 70, n = 66, k = 35, lda = k + 5, ldb = k + 2, ldc = n + 7;
        float[] a = random(Shape.of(m * lda), -1, 1, "lda"), bt = random(Shape.of(n * ldb), -1, 1, "ldb");
        float[] bias = random(Shape.of(n), -1, 1, "ld bias");
        long da = upload(a), db = upload(bt), dbias = upload(bias);
        float[] c = run("gemm with leading dimensions", m * ldc, y -> kernels.gemmNt(da, db, dbias, y, m, n, k, lda, ldb, ldc, stream));
        for (int r = 0; r < m; r++) {
            for (int j = 0; j < ldc; j++) {
                float v = c[r * ldc + j];
                if (j >= n) {
                    if (Float.floatToRawIntBits(v) != CANARY) fail("gemm with leading dimensions: gap element " + r + "," + j + " overwritten with " + bits(v));
                    continue;
                }
                double exact = bias[j], magnitude = Math.abs(bias[j]);
                for (int i = 0; i < k; i++) {
                    exact += (double) a[r * lda + i] * bt[j * ldb + i];
                    magnitude += Math.abs((double) a[r * lda + i] * bt[j * ldb + i]);
                }
                if (!(Math.abs(v - exact) <= FLOAT_ACCUMULATION_RELATIVE * magnitude)) {
                    fail("gemm with leading dimensions: element " + r + "," + j + " is " + bits(v) + " on the GPU, " + exact + " in double");
                }
            }
        }
    }
}
