package dev.silhouette.conformance;

import dev.silhouette.conformance.ConformanceCase.Codes;
import dev.silhouette.conformance.ConformanceCase.Convolution;
import dev.silhouette.conformance.ConformanceCase.LowBit;
import dev.silhouette.conformance.ConformanceCase.MapKind;
import dev.silhouette.conformance.ConformanceCase.SingleOp;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Op.Interpolate.Mode;
import dev.silhouette.graph.Op.RegionQuantize.MaskOrder;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The named problem lists the tests and {@code silhouette conformance} share: awkward shapes first (the
 * ones that break indexing, padding and tiling), then random ones, then real ResNet layers. Every list is
 * the same on every run and machine, except the convolution stretches sized by the core count.
 */
public final class Problems {
    private Problems() {}

    /** Region maps a low-bit case may read; 3 regions. */
    public static final int REGIONS = 3;

    /** Float convolutions: 14 named shapes and 220 random ones with groups, stride, dilation and padding. */
    public static List<Convolution> convolutions() {
        List<Convolution> list = new ArrayList<>();
        list.add(new Convolution("1x1 single pixel", 1, 1, 1, 1, new Op.Conv2d(1, 1, Window.square(1, 1, 0), 1, false)));
        list.add(new Convolution("1x1 direct path", 2, 5, 7, 9, new Op.Conv2d(5, 7, Window.square(1, 1, 0), 1, true)));
        list.add(new Convolution("kernel equals input", 1, 3, 5, 5, new Op.Conv2d(3, 2, Window.square(5, 1, 0), 1, true)));
        list.add(new Convolution("padding wider than input", 1, 2, 2, 2, new Op.Conv2d(2, 3, Window.square(3, 1, 2), 1, false)));
        list.add(new Convolution("depthwise", 2, 8, 11, 13, new Op.Conv2d(8, 8, Window.square(3, 2, 1), 8, false)));
        list.add(new Convolution("dilated asymmetric", 1, 4, 17, 10, new Op.Conv2d(4, 6, new Window(3, 2, 2, 1, 2, 1, 2, 3), 2, true)));
        list.add(new Convolution("K above one block", 1, 40, 6, 6, new Op.Conv2d(40, 9, Window.square(3, 1, 1), 1, false)));
        // Two images per core, so each image is convolved on one core a stretch of pixels at a time;
        // these stretches (768 and 256 pixels) end mid-row, one strided, one padded at unit stride.
        int perCore = 2 * Runtime.getRuntime().availableProcessors();
        list.add(new Convolution("stretches, 7x7/2 stem", perCore, 3, 62, 62, new Op.Conv2d(3, 5, Window.square(7, 2, 3), 1, true)));
        list.add(new Convolution("stretches, 3x3 unit stride", perCore, 64, 19, 19, new Op.Conv2d(64, 6, Window.square(3, 1, 1), 1, false)));
        // Real layers (batch 1 or 2, smaller spatial size where the reference would be slow).
        list.add(new Convolution("resnet18 conv1", 1, 3, 64, 64, new Op.Conv2d(3, 64, Window.square(7, 2, 3), 1, false)));
        list.add(new Convolution("resnet18 layer2.0.conv1", 1, 64, 28, 28, new Op.Conv2d(64, 128, Window.square(3, 2, 1), 1, false)));
        list.add(new Convolution("resnet18 layer4 3x3", 1, 512, 7, 7, new Op.Conv2d(512, 512, Window.square(3, 1, 1), 1, false)));
        list.add(new Convolution("resnet50 bottleneck 1x1", 2, 256, 14, 14, new Op.Conv2d(256, 64, Window.square(1, 1, 0), 1, false)));
        list.add(new Convolution("resnet50 downsample 1x1/2", 1, 256, 28, 28, new Op.Conv2d(256, 512, Window.square(1, 2, 0), 1, false)));
        SplittableRandom rnd = new SplittableRandom(20261122);
        for (int i = 0; i < 220; i++) {
            int groups = rnd.nextInt(4) == 0 ? 1 + rnd.nextInt(4) : 1;
            int in = groups * (1 + rnd.nextInt(12)), out = groups * (1 + rnd.nextInt(12));
            int kh = 1 + rnd.nextInt(5), kw = 1 + rnd.nextInt(5);
            int dh = 1 + rnd.nextInt(3) / 2, dw = 1 + rnd.nextInt(3) / 2;
            Window w = new Window(kh, kw, 1 + rnd.nextInt(3), 1 + rnd.nextInt(3), rnd.nextInt(3), rnd.nextInt(3), dh, dw);
            int h = Math.max(1, dh * (kh - 1) + 1 - 2 * w.padH()) + rnd.nextInt(14);
            int width = Math.max(1, dw * (kw - 1) + 1 - 2 * w.padW()) + rnd.nextInt(14);
            list.add(new Convolution("random " + i, 1 + rnd.nextInt(3), in, h, width, new Op.Conv2d(in, out, w, groups, rnd.nextBoolean())));
        }
        return List.copyOf(list);
    }

    /** Fully connected layers: one unit, odd sizes, K over one GEMM block, and classifier heads. */
    public static List<ConformanceCase.Linear> linears() {
        List<ConformanceCase.Linear> list = new ArrayList<>();
        list.add(new ConformanceCase.Linear("single unit", 1, new Op.Linear(1, 1, false)));
        list.add(new ConformanceCase.Linear("odd sizes", 3, new Op.Linear(37, 11, true)));
        list.add(new ConformanceCase.Linear("K above one block", 5, new Op.Linear(300, 17, true)));
        SplittableRandom rnd = new SplittableRandom(20261208);
        for (int i = 0; i < 20; i++) {
            list.add(new ConformanceCase.Linear("random " + i, 1 + rnd.nextInt(9), new Op.Linear(1 + rnd.nextInt(70), 1 + rnd.nextInt(40), rnd.nextBoolean())));
        }
        list.add(new ConformanceCase.Linear("fmnist-resnet fc", 16, new Op.Linear(64, 10, true)));
        list.add(new ConformanceCase.Linear("resnet18 fc", 2, new Op.Linear(512, 1000, true)));
        return List.copyOf(list);
    }

    /**
     * Packed low-bit convolutions. Each convolution shape once with region codes, the width pairs walking
     * all of 1..8 x 1..8 and the map kinds cycling (every third with one weight set per region); then
     * every width pair on every map kind on one small awkward shape. A fifth of them again on an affine
     * grid with a zero point, another fifth on each DRQ class.
     */
    public static List<LowBit> lowBits() {
        List<LowBit> regions = new ArrayList<>();
        int i = 0;
        for (Convolution p : convolutions()) {
            int pair = i * 29 % 64;   // 29 is coprime with 64: consecutive shapes walk every width pair
            regions.add(new LowBit(p, Codes.REGIONS, 1 + pair / 8, 1 + pair % 8, MapKind.values()[i % MapKind.values().length], i % 3 == 0));
            i++;
        }
        var small = new Convolution("every width pair", 2, 6, 7, 5, new Op.Conv2d(6, 4, new Window(3, 2, 2, 1, 1, 1, 1, 2), 2, true));
        for (int a = 1; a <= 8; a++)
            for (int w = 1; w <= 8; w++)
                for (MapKind m : MapKind.values()) regions.add(new LowBit(small, Codes.REGIONS, a, w, m, (a + w) % 2 == 0));
        List<LowBit> all = new ArrayList<>(regions);
        for (LowBit c : regions) {
            if (c.map() == MapKind.RANDOM) all.add(new LowBit(c.problem(), Codes.GRID_WITH_ZERO_POINT, c.activationBits(), c.weightBits(), MapKind.RANDOM, false));
        }
        for (LowBit c : regions) {
            if (c.map() != MapKind.CHECKERBOARD) continue;
            for (Codes drq : List.of(Codes.DRQ_INSENSITIVE, Codes.DRQ_SENSITIVE)) {
                all.add(new LowBit(c.problem(), drq, c.activationBits(), c.weightBits(), MapKind.CHECKERBOARD, false));
            }
        }
        return List.copyOf(all);
    }

    /** The region map of a low-bit case: region indices 0 (low) to {@link #REGIONS} - 1 (high), N x H x W. */
    public static byte[] regionMap(MapKind kind, int n, int h, int w, SplittableRandom rnd) {
        byte[] m = new byte[n * h * w];
        for (int i = 0; i < m.length; i++) {
            int y = i / w % h, x = i % w;
            m[i] = (byte) switch (kind) {
                case ALL_LOW -> 0;
                case ALL_HIGH -> REGIONS - 1;
                case ONE_PIXEL -> (y == h / 2 && x == w / 2) ? REGIONS - 1 : 0;
                case CHECKERBOARD -> (x + y) % 2 == 0 ? REGIONS - 1 : 0;
                case RANDOM -> rnd.nextInt(REGIONS);
            };
        }
        return m;
    }

    /**
     * Every op of the IR that a backend executes, as one-node graphs: awkward shapes, then real layers;
     * the region-quantization ops on the main policy, its edge cases (one pixel, more regions than pixels)
     * and both mask orders.
     */
    public static List<SingleOp> singleOps() {
        Tolerance acc = Tolerance.DEVICE_ACCUMULATION, exact = Tolerance.EXACT, elementwise = Tolerance.ELEMENTWISE;
        RegionPolicy main = RegionPolicy.parse("2:50,3:30,4:20"), oneBit = RegionPolicy.parse("1:60,2:20,4:20");
        List<SingleOp> p = new ArrayList<>();
        p.add(new SingleOp("conv 1x1 single pixel", new Op.Conv2d(1, 1, Window.square(1, 1, 0), 1, false), new int[][] {{1, 1, 1, 1}}, acc));
        p.add(new SingleOp("conv 3x3 odd", new Op.Conv2d(3, 5, Window.square(3, 1, 1), 1, true), new int[][] {{2, 3, 7, 9}}, acc));
        p.add(new SingleOp("conv dilated grouped", new Op.Conv2d(8, 12, new Window(3, 3, 2, 1, 2, 1, 2, 1), 4, true), new int[][] {{1, 8, 13, 11}}, acc));
        p.add(new SingleOp("conv depthwise", new Op.Conv2d(32, 32, Window.square(3, 2, 1), 32, false), new int[][] {{2, 32, 15, 15}}, acc));
        p.add(new SingleOp("resnet18 conv1", new Op.Conv2d(3, 64, Window.square(7, 2, 3), 1, false), new int[][] {{2, 3, 224, 224}}, acc));
        p.add(new SingleOp("resnet18 layer3 3x3", new Op.Conv2d(256, 256, Window.square(3, 1, 1), 1, false), new int[][] {{4, 256, 14, 14}}, acc));
        p.add(new SingleOp("resnet50 1x1/2", new Op.Conv2d(512, 1024, Window.square(1, 2, 0), 1, true), new int[][] {{2, 512, 28, 28}}, acc));
        p.add(new SingleOp("batchnorm", new Op.BatchNorm(7, 1e-5f), new int[][] {{3, 7, 5, 9}}, exact));
        p.add(new SingleOp("relu", new Op.Relu(), new int[][] {{3, 5, 17, 19}}, exact));
        p.add(new SingleOp("clip", new Op.Clip(-0.25f, 0.5f), new int[][] {{1, 1, 1, 1031}}, exact));
        p.add(new SingleOp("sigmoid", new Op.Sigmoid(), new int[][] {{2, 1, 56, 56}}, exact));
        p.add(new SingleOp("add", new Op.Add(), new int[][] {{2, 64, 56, 56}, {2, 64, 56, 56}}, exact));
        p.add(new SingleOp("maxpool 3x3/2/1", new Op.MaxPool(Window.square(3, 2, 1)), new int[][] {{2, 64, 112, 112}}, exact));
        p.add(new SingleOp("maxpool odd", new Op.MaxPool(new Window(2, 3, 2, 1, 1, 1, 1, 1)), new int[][] {{1, 3, 7, 5}}, exact));
        p.add(new SingleOp("avgpool incl pad", new Op.AvgPool(Window.square(3, 2, 1), true), new int[][] {{1, 5, 9, 9}}, elementwise));
        p.add(new SingleOp("avgpool excl pad", new Op.AvgPool(Window.square(3, 1, 1), false), new int[][] {{2, 3, 6, 7}}, elementwise));
        p.add(new SingleOp("global avgpool", new Op.GlobalAvgPool(), new int[][] {{4, 512, 7, 7}}, elementwise));
        p.add(new SingleOp("linear", new Op.Linear(512, 1000, true), new int[][] {{5, 512}}, acc));
        p.add(new SingleOp("linear odd", new Op.Linear(37, 11, false), new int[][] {{3, 37}}, acc));
        p.add(new SingleOp("flatten", new Op.Flatten(), new int[][] {{3, 4, 2, 2}}, exact));
        p.add(new SingleOp("softmax classes", new Op.Softmax(), new int[][] {{4, 1000}}, elementwise));
        p.add(new SingleOp("softmax channels", new Op.Softmax(), new int[][] {{2, 10, 3, 5}}, elementwise));
        p.add(new SingleOp("nearest up", new Op.Interpolate(Mode.NEAREST, 56, 56), new int[][] {{2, 1, 28, 28}}, exact));
        p.add(new SingleOp("nearest odd", new Op.Interpolate(Mode.NEAREST, 5, 9), new int[][] {{1, 2, 7, 4}}, exact));
        p.add(new SingleOp("bilinear up", new Op.Interpolate(Mode.BILINEAR, 56, 40), new int[][] {{2, 1, 28, 28}}, elementwise));
        p.add(new SingleOp("concat channels", new Op.Concat(1), new int[][] {{2, 3, 5, 5}, {2, 1, 5, 5}, {2, 4, 5, 5}}, exact));
        p.add(new SingleOp("broadcast mul per channel", new Op.Elementwise(Op.Arithmetic.MUL), new int[][] {{2, 16, 7, 9}, {2, 16, 1, 1}}, exact));
        p.add(new SingleOp("broadcast sub rows", new Op.Elementwise(Op.Arithmetic.SUB), new int[][] {{2, 3, 5, 6}, {2, 1, 5, 1}}, exact));
        p.add(new SingleOp("constant first div", new Op.ElementwiseConstant(Op.Arithmetic.DIV, Shape.of(3, 1, 1), true), new int[][] {{2, 3, 4, 5}}, exact));
        p.add(new SingleOp("constant add last axis", new Op.ElementwiseConstant(Op.Arithmetic.ADD, Shape.of(5), false), new int[][] {{2, 3, 4, 5}}, exact));
        p.add(new SingleOp("hard sigmoid", new Op.HardSigmoid(1f / 6, 0.5f), new int[][] {{2, 8, 9, 9}}, exact));
        p.add(new SingleOp("hard swish", new Op.HardSwish(), new int[][] {{2, 8, 9, 9}}, exact));
        p.add(new SingleOp("reshape", new Op.Reshape(Shape.of(36)), new int[][] {{2, 4, 3, 3}}, exact));
        p.add(new SingleOp("pad asymmetric", new Op.Pad(1, 0, 2, 1, -1.5f), new int[][] {{2, 3, 5, 7}}, exact));
        p.add(new SingleOp("logit blend", new Op.LogitBlend(), new int[][] {{4, 10}, {4, 10}}, exact));
        // Quantizers and masks: codes are integers, so these are exact wherever the kernels round as the CPU does.
        p.add(new SingleOp("pact 1 bit", new Op.PactQuantize(1, 0.8f), new int[][] {{2, 3, 5, 7}}, exact));
        p.add(new SingleOp("pact 4 bits", new Op.PactQuantize(4, 1.5f), new int[][] {{2, 16, 14, 14}}, exact));
        p.add(new SingleOp("affine per tensor", new Op.AffineQuantize(List.of(4), List.of(-0.7f), List.of(1.3f)), new int[][] {{2, 3, 6, 5}}, exact));
        p.add(new SingleOp("affine per channel", new Op.AffineQuantize(List.of(2, 8, 5), List.of(0f, -1f, -0.2f), List.of(1f, 1f, 2f)),
                new int[][] {{2, 3, 4, 4}}, exact));
        for (MaskOrder order : MaskOrder.values()) {
            String o = order == MaskOrder.RESIZE_THEN_THRESHOLD ? "resize first" : "threshold first";
            p.add(new SingleOp("region quantize " + o, new Op.RegionQuantize(main, List.of(0.9f, 1.2f, 1.6f), Mode.NEAREST, order, -1),
                    new int[][] {{2, 16, 14, 14}, {2, 1, 7, 7}}, exact));
            p.add(new SingleOp("region map 14x14 " + o, new Op.RegionMap(main, Mode.BILINEAR, order, 14, 14), new int[][] {{2, 1, 28, 28}}, exact));
        }
        p.add(new SingleOp("region quantize one region only", new Op.RegionQuantize(oneBit, List.of(0.5f, 1f, 2f), Mode.BILINEAR,
                MaskOrder.RESIZE_THEN_THRESHOLD, 1), new int[][] {{1, 4, 9, 11}, {1, 1, 9, 11}}, exact));
        p.add(new SingleOp("region map single pixel", new Op.RegionMap(main, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD, 1, 1), new int[][] {{3, 1, 1, 1}}, exact));
        p.add(new SingleOp("region map odd resize", new Op.RegionMap(oneBit, Mode.BILINEAR, MaskOrder.RESIZE_THEN_THRESHOLD, 5, 9), new int[][] {{2, 1, 7, 4}}, exact));
        p.add(new SingleOp("region map resnet18 56x56", new Op.RegionMap(main, Mode.BILINEAR, MaskOrder.RESIZE_THEN_THRESHOLD, 56, 56),
                new int[][] {{8, 1, 56, 56}}, exact));
        p.add(new SingleOp("drq 4x4 blocks", new Op.DrqQuantize(4, 0.2f, 2, 4, 1f, 1.5f, -1), new int[][] {{2, 8, 13, 10}}, exact));
        p.add(new SingleOp("drq sensitive only", new Op.DrqQuantize(2, 0f, 1, 8, 0.5f, 2f, 1), new int[][] {{1, 3, 5, 5}}, exact));
        for (Op.ChannelSqueeze.Squeeze s : Op.ChannelSqueeze.Squeeze.values()) {
            p.add(new SingleOp("channel squeeze " + s.name().toLowerCase(), new Op.ChannelSqueeze(s, 3), new int[][] {{2, 8, 9, 7}}, elementwise));
        }
        p.add(new SingleOp("noise silhouette", new Op.NoiseSilhouette(7), new int[][] {{3, 4, 6, 6}}, exact));
        return List.copyOf(p);
    }

    /** The graph with BatchNorm statistics, biases and elementwise constants at random values (builders start them at fixed ones). */
    public static Graph randomParameters(Graph g) {
        Map<String, Tensor> params = new HashMap<>(g.parameters());
        params.replaceAll((k, v) -> k.endsWith("running_var") ? Tensor.uniform(v.shape(), 0.5f, 2f, k.hashCode())
                : k.endsWith("running_mean") || k.endsWith(".bias") ? Tensor.uniform(v.shape(), -0.5f, 0.5f, k.hashCode())
                : k.endsWith(".constant") ? Tensor.uniform(v.shape(), 0.5f, 2f, k.hashCode()) : v);
        return g.withParameters(params);
    }
}
