package dev.silhouette.gpu;

import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.backend.cuda.RegionOpKernels;
import dev.silhouette.graph.Op;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.testng.Assert.fail;

/**
 * The region-quantization graph ops of cuda/region_ops.cu, launched by their glue (RegionOpKernels) on the
 * CPU through the host emulation (native-build/emulate: the kernels' own source compiled by g++), against
 * the CPU backend's RegionOps and CpuOps.logitBlend, bit for bit, with guard bytes after every output.
 * RegionQuantize runs its whole device sequence (silhouette resize, region map, quantization) except the
 * radix-select threshold kernel, whose launch is answered by its CPU specification (shared memory and
 * block barriers are not emulated). This runs the kernels' code, not a GPU.
 */
public class EmulatedRegionOpsTest {
    private static final int GUARD = LowBitDevice.Emulated.GUARD;
    private static final String[] SILHOUETTES = {"all-low", "all-high", "single pixel", "checkerboard", "random", "constant", "saturated"};

    private HostEmulator emu;
    private RegionOpKernels kernels;

    @BeforeClass(alwaysRun = true)
    public void open() {
        emu = new HostEmulator();
        kernels = new RegionOpKernels(emu, emu::interpolate);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (emu != null) emu.close();
    }

    private long work(long bytes, String what) {
        return emu.allocate(bytes);
    }

    /**
     * Activations around [0, alpha]: negatives, values past alpha, exact half steps of the 2-, 3- and 4-bit
     * grids (where rounding half to even decides), -0, and a few NaN and infinities.
     */
    static Tensor activations(Shape s, float alpha, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] d = new float[s.size()];
        for (int i = 0; i < d.length; i++) {
            int kind = rnd.nextInt(40);
            d[i] = switch (kind) {
                case 0 -> Float.NaN;
                case 1 -> Float.POSITIVE_INFINITY;
                case 2 -> Float.NEGATIVE_INFINITY;
                case 3 -> -0f;
                case 4, 5, 6, 7, 8, 9 -> {
                    int levels = (1 << (2 + kind % 3)) - 1;
                    float step = alpha / levels;
                    yield (rnd.nextInt(levels) + 0.5f) * step;
                }
                default -> (float) (alpha * (rnd.nextDouble() * 1.5 - 0.25));
            };
        }
        return new Tensor(s, d);
    }

    /** A device output of {@code floats} with guard bytes after it. */
    private long output(int floats) {
        return emu.allocate((long) floats * Float.BYTES + GUARD);
    }

    private void check(String what, long address, Tensor expected) {
        float[] e = expected.data(), a = emu.floats(address, e.length);
        for (int i = 0; i < e.length; i++) {
            boolean same = Float.floatToRawIntBits(a[i]) == Float.floatToRawIntBits(e[i]) || Float.isNaN(a[i]) && Float.isNaN(e[i]);
            if (!same) fail(what + ": element " + i + " of " + expected.shape() + " is " + a[i] + ", the CPU says " + e[i]);
        }
        for (byte b : emu.bytes(address + (long) e.length * Float.BYTES, GUARD)) {
            if (b != (byte) 0xA5) fail(what + ": written past the end of the output");
        }
    }

    // ---- PactQuantize ----

    @DataProvider
    public Object[][] pactProblems() {
        List<Object[]> cases = new ArrayList<>();
        Shape[] shapes = {Shape.of(1, 1, 1, 1), Shape.of(1, 3, 5, 7), Shape.of(4, 16, 14, 14), Shape.of(2, 1, 1, 1031)};
        float[] alphas = {1f, 0.37f, 6.5f};
        for (int bits = 1; bits <= 8; bits++) {
            for (Shape s : shapes) cases.add(new Object[] {s, bits, alphas[(bits + cases.size()) % alphas.length], (long) cases.size()});
        }
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "pactProblems")
    public void pactQuantize(Shape s, int bits, float alpha, long seed) {
        Tensor x = activations(s, alpha, seed);
        Op.PactQuantize op = new Op.PactQuantize(bits, alpha);
        long y = output(s.size());
        kernels.pactQuantize(emu.put(x.data()), y, s.size(), op, null);
        check("PACT " + bits + " bits alpha " + alpha + " on " + s, y, RegionOps.pactQuantize(x, op));
    }

    // ---- RegionQuantize ----

    @DataProvider
    public Object[][] regionProblems() {
        List<Object[]> cases = new ArrayList<>();
        // {silhouette h, w, activations H, W}: same size, down to the network's feature maps, up, odd, and
        // maps with fewer pixels than the policy has regions (1x1 and 1x2 silhouettes, 1x1 and 2x1 layers).
        int[][] sizes = {{14, 14, 14, 14}, {28, 28, 14, 14}, {28, 28, 7, 7}, {7, 7, 28, 28}, {13, 31, 7, 5}, {1, 1, 4, 4}, {1, 2, 1, 1}, {5, 3, 2, 1}};
        RegionPolicy[] policies = {RegionPolicy.parse("2:50,3:30,4:20"), RegionPolicy.parse("1:10,2:20,3:30,4:40"), RegionPolicy.parse("8:100"),
                RegionPolicy.parse("1:10,1:10,2:10,2:10,3:10,4:10,5:10,6:10,7:10,8:10")};
        for (String name : SILHOUETTES) {
            for (int[] size : sizes) {
                for (Op.Interpolate.Mode mode : Op.Interpolate.Mode.values()) {
                    for (Op.RegionQuantize.MaskOrder order : Op.RegionQuantize.MaskOrder.values()) {
                        int i = cases.size();
                        RegionPolicy policy = policies[i % policies.length];
                        int regions = policy.regions().size();
                        int batch = i % 3 == 0 ? 1 : 2 + i % 5;
                        int onlyRegion = i % 4 == 1 ? i % regions : -1;
                        int channels = new int[] {1, 3, 8}[i % 3];
                        cases.add(new Object[] {name, Shape.of(batch, 1, size[0], size[1]), Shape.of(batch, channels, size[2], size[3]), mode, order, policy,
                                onlyRegion, (long) i});
                    }
                }
            }
        }
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "regionProblems")
    public void regionQuantize(String name, Shape ss, Shape xs, Op.Interpolate.Mode mode, Op.RegionQuantize.MaskOrder order, RegionPolicy policy,
                               int onlyRegion, long seed) {
        Tensor silhouette = RegionMaskKernelTest.silhouette(name, ss);
        List<Float> alphas = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int r = 0; r < policy.regions().size(); r++) alphas.add((float) (0.25 + rnd.nextDouble() * 2));
        Op.RegionQuantize op = new Op.RegionQuantize(policy, alphas, mode, order, onlyRegion);
        Tensor x = activations(xs, alphas.getLast(), seed);
        byte[][] bytes = RegionOpKernels.tableBytes(op);   // as the backend uploads them
        var table = new RegionOpKernels.RegionTable(emu.put(bytes[0]), emu.put(bytes[1]), emu.put(bytes[2]));
        long y = output(xs.size());
        kernels.regionQuantize(emu.put(x.data()), xs, emu.put(silhouette.data()), ss, op, table, this::work, y, null);
        check(name + " " + ss + " -> " + xs + " " + mode + " " + order + " " + policy + " only " + onlyRegion, y,
                RegionOps.regionQuantize(x, silhouette, op));
    }

    // ---- DrqQuantize ----

    @DataProvider
    public Object[][] drqProblems() {
        List<Object[]> cases = new ArrayList<>();
        Shape[] shapes = {Shape.of(1, 1, 1, 1), Shape.of(2, 3, 5, 7), Shape.of(1, 4, 28, 28), Shape.of(3, 2, 14, 14), Shape.of(1, 2, 3, 1)};
        int[] blocks = {1, 2, 3, 8};
        String[] thresholds = {"median", "below all", "above all", "equal to a mean"};
        int[][] widths = {{4, 8}, {2, 4}, {1, 8}};
        for (Shape s : shapes) {
            for (int block : blocks) {
                for (String threshold : thresholds) {
                    int i = cases.size();
                    int[] w = widths[i % widths.length];
                    cases.add(new Object[] {s, block, threshold, w[0], w[1], i % 3 - 1, (long) i});
                }
            }
        }
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "drqProblems")
    public void drqQuantize(Shape s, int block, String thresholdKind, int lowBits, int highBits, int onlyRegion, long seed) {
        Tensor x = activations(s, 2f, seed);
        // Means of the finite data (NaN and infinities would leave no threshold to place between blocks).
        float[] finite = x.data().clone();
        for (int i = 0; i < finite.length; i++) if (!Float.isFinite(finite[i])) finite[i] = (float) ((i % 7) * 0.3);
        x = new Tensor(s, finite);
        float[] means = RegionOps.drqBlockMeans(x, block).clone();
        java.util.Arrays.sort(means);
        float threshold = switch (thresholdKind) {
            case "median" -> means[means.length / 2] + 1e-3f;
            case "below all" -> means[0] - 1f;
            case "above all" -> means[means.length - 1] + 1f;
            default -> means[means.length / 3];
        };
        Op.DrqQuantize op = new Op.DrqQuantize(block, threshold, lowBits, highBits, 0.7f, 2.3f, onlyRegion);
        long y = output(s.size());
        kernels.drqQuantize(emu.put(x.data()), s, op, this::work, y, null);
        check("DRQ " + lowBits + "/" + highBits + " block " + block + " threshold " + thresholdKind + " only " + onlyRegion + " on " + s, y,
                RegionOps.drqQuantize(x, op));
    }

    // ---- ChannelSqueeze ----

    /** Feature maps with the squeeze's hard cases: tied channel statistics, constant and hot-pixel maps, signed zeros, NaN. */
    static Tensor featureMap(String kind, Shape s, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] d = new float[s.size()];
        int plane = s.h() * s.w();
        for (int i = 0; i < d.length; i++) {
            int c = i / plane % s.c(), p = i % plane, y = p / s.w(), x = p % s.w();
            d[i] = switch (kind) {
                case "constant" -> 0.75f;
                case "single hot pixel" -> y == s.h() / 2 && x == s.w() / 2 && c == s.c() - 1 ? 5f : 0f;
                case "checkerboard" -> (y + x + c) % 2 == 0 ? 1f : -1f;
                case "tied channels" -> (float) ((p % 5) * 0.25);                    // every channel identical: all statistics tie
                case "signed zeros" -> rnd.nextBoolean() ? -0f : 0f;
                case "with NaN" -> p == 0 && c == 0 ? Float.NaN : (float) rnd.nextGaussian();
                default -> (float) (rnd.nextGaussian() * (1 + c % 3)) + c * 0.01f;
            };
        }
        return new Tensor(s, d);
    }

    @DataProvider
    public Object[][] squeezeProblems() {
        List<Object[]> cases = new ArrayList<>();
        Shape[] shapes = {Shape.of(1, 1, 1, 1), Shape.of(1, 3, 1, 1), Shape.of(2, 5, 7, 7), Shape.of(3, 16, 14, 14), Shape.of(1, 64, 7, 7)};
        String[] kinds = {"random", "constant", "single hot pixel", "checkerboard", "tied channels", "signed zeros", "with NaN"};
        for (Shape s : shapes) {
            for (String kind : kinds) {
                for (Op.ChannelSqueeze.Squeeze mode : Op.ChannelSqueeze.Squeeze.values()) {
                    boolean topK = mode == Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN || mode == Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD;
                    int[] ks = topK ? new int[] {1, Math.min(3, s.c()), s.c()} : new int[] {1};
                    for (int k : ks) cases.add(new Object[] {kind, s, mode, k, (long) cases.size()});
                }
            }
        }
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "squeezeProblems")
    public void channelSqueeze(String kind, Shape s, Op.ChannelSqueeze.Squeeze mode, int k, long seed) {
        Tensor x = featureMap(kind, s, seed);
        Op.ChannelSqueeze op = new Op.ChannelSqueeze(mode, k);
        int outputs = s.n() * s.h() * s.w();
        long y = output(outputs);
        kernels.channelSqueeze(emu.put(x.data()), s, op, this::work, y, null);
        check(kind + " " + mode + " k=" + k + " on " + s, y, RegionOps.channelSqueeze(x, op));
    }

    // ---- NoiseSilhouette ----

    @DataProvider
    public Object[][] noiseProblems() {
        List<Object[]> cases = new ArrayList<>();
        Shape[] shapes = {Shape.of(1, 1, 1, 1), Shape.of(1, 3, 5, 7), Shape.of(6, 16, 14, 14), Shape.of(2, 64, 7, 7)};
        long[] seeds = {0, 1, -1, Long.MIN_VALUE, Long.MAX_VALUE, 0x5eedL};
        String[] kinds = {"random", "with NaN", "signed zeros", "constant"};
        for (Shape s : shapes) for (long seed : seeds) cases.add(new Object[] {kinds[cases.size() % kinds.length], s, seed});
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "noiseProblems")
    public void noiseSilhouette(String kind, Shape s, long seed) {
        Tensor x = featureMap(kind, s, seed ^ 77);
        if (kind.equals("with NaN")) x.data()[x.data().length - 1] = Float.intBitsToFloat(0x7fa00001);  // a non-canonical NaN: hashed as the canonical one
        Op.NoiseSilhouette op = new Op.NoiseSilhouette(seed);
        long y = output(s.n() * s.h() * s.w());
        kernels.noiseSilhouette(emu.put(x.data()), s, op, this::work, y, null);
        check("noise seed " + seed + " " + kind + " on " + s, y, RegionOps.noiseSilhouette(x, op));
    }

    // ---- LogitBlend ----

    @DataProvider
    public Object[][] blendProblems() {
        List<Object[]> cases = new ArrayList<>();
        float[] gates = {Op.LogitBlend.INITIAL_GATE, 0f, -0f, -20f, 20f, 0.731f, -3.3f, 100f};
        Shape[] shapes = {Shape.of(1, 10), Shape.of(7, 10), Shape.of(128, 10), Shape.of(3, 1000)};
        for (Shape s : shapes) for (float g : gates) cases.add(new Object[] {s, g, (long) cases.size()});
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "blendProblems")
    public void logitBlend(Shape s, float gate, long seed) {
        Tensor main = Tensor.uniform(s, -8, 8, seed), aux = Tensor.uniform(s, -8, 8, seed + 1000);
        long y = output(s.size());
        kernels.logitBlend(emu.put(main.data()), emu.put(aux.data()), y, s.size(), gate, null);
        check("logit blend gate " + gate + " on " + s, y, CpuOps.logitBlend(main, aux, new Tensor(Shape.of(1), new float[] {gate})));
    }
}
