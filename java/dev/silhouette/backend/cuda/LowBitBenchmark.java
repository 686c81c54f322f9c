package dev.silhouette.backend.cuda;

import dev.silhouette.graph.Op;
import dev.silhouette.quant.LowBitWeights;

import dev.silhouette.tensor.Window;
import dev.silhouette.io.Progress;
import dev.silhouette.quant.PackedLayout;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import jcuda.driver.CUevent;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;

/**
 * Times the low-bit kernels against cuDNN FP32 on the convolution layers of ResNet-18 and ResNet-50
 * (224 x 224) at batches 1, 32 and 128 and writes a Markdown table and a JSON file naming the device.
 * Run by native-build/gpu-bench.sh on a machine with a GPU; it has never run (no GPU was available to
 * the session that wrote it).
 *
 * <p>Method: every buffer is allocated and filled before timing; inputs rotate over {@code ROTATIONS}
 * copies so that no run finds the previous run's input in L2; {@code warm-up} untimed launches, then
 * {@code runs} launches each timed alone by CUDA events on the stream; the median is reported with the
 * minimum. Per layer: microseconds, effective TOPS (2 x MACs / time; for the low-bit kernels these are
 * integer bit-serial operations counted as MACs), GB/s of activations and weights moved, and the ideal
 * activation bytes (input read once plus output written once, at the variant's width; for a region
 * policy the planes actually read, i.e. the average width). Variants:
 * <ul>
 *   <li>{@code cudnn-fp32}: cudnnConvolutionForward through {@link Cudnn} (its algorithm choice);</li>
 *   <li>{@code quantize-pack-a4}: FP32 input to 4-bit planes, the cost of entering the packed domain;</li>
 *   <li>{@code w4a4}: packed conv, uniform 4-bit activations, 4-bit weights, requantized 4-bit packed output;</li>
 *   <li>{@code w4-region}: packed conv under 2:50,3:30,4:20 (random region map with those shares), region
 *       combination and requantization to the same policy;</li>
 *   <li>{@code w1a1}: binary conv, frozen BatchNorm, 1-bit packed output;</li>
 *   <li>{@code igemm-codes}, {@code igemm-w4-region}, {@code igemm-w4a4}: the tensor-core packed convolution's
 *       quantization to u8 codes and its INT8 IMMA convolution with float output (LowBitIgemmKernel);</li>
 *   <li>{@code binary-mma-sums}: the XNOR sums on single-bit tensor cores (BinaryMmaKernel).</li>
 * </ul>
 */
public final class LowBitBenchmark {
    /** A convolution layer of the benchmark: input C x H x W, O filters, k x k, stride, padding. */
    public record Layer(String network, String name, int c, int h, int w, int o, int k, int stride, int pad) {
        Window window() {
            return Window.square(k, stride, pad);
        }

        /** Whether the packed kernels take the layer's variants at this batch (the benchmark's problems). */
        boolean supported(int batch) {
            Shape in = Shape.of(batch, c, h, w), weights = Shape.of(o, c, k, k);
            return PackedConvKernel.supports(new PackedConvKernel.Problem(in, weights, window(), RegionWidths.of(POLICY, new float[] {1, 1, 1}), 4, true),
                    PackedConvKernel.Epilogue.Kind.REGION_COMBINE) instanceof KernelSupport.Supported
                    && BinaryConvKernel.supports(in, weights, window()) instanceof KernelSupport.Supported;
        }

        long macs(int batch) {
            Window win = window();
            return (long) batch * o * win.outH(h) * win.outW(w) * c * k * k;
        }
    }

    /** The distinct conv shapes of ResNet-18 (torchvision, 224 x 224). */
    public static final List<Layer> RESNET18 = List.of(
            new Layer("resnet18", "conv1", 3, 224, 224, 64, 7, 2, 3),
            new Layer("resnet18", "layer1.conv", 64, 56, 56, 64, 3, 1, 1),
            new Layer("resnet18", "layer2.0.conv1", 64, 56, 56, 128, 3, 2, 1),
            new Layer("resnet18", "layer2.0.downsample", 64, 56, 56, 128, 1, 2, 0),
            new Layer("resnet18", "layer2.conv", 128, 28, 28, 128, 3, 1, 1),
            new Layer("resnet18", "layer3.0.conv1", 128, 28, 28, 256, 3, 2, 1),
            new Layer("resnet18", "layer3.0.downsample", 128, 28, 28, 256, 1, 2, 0),
            new Layer("resnet18", "layer3.conv", 256, 14, 14, 256, 3, 1, 1),
            new Layer("resnet18", "layer4.0.conv1", 256, 14, 14, 512, 3, 2, 1),
            new Layer("resnet18", "layer4.0.downsample", 256, 14, 14, 512, 1, 2, 0),
            new Layer("resnet18", "layer4.conv", 512, 7, 7, 512, 3, 1, 1));

    /** The distinct conv shapes of ResNet-50 v1.5 (stride in the 3x3). */
    public static final List<Layer> RESNET50 = List.of(
            new Layer("resnet50", "conv1", 3, 224, 224, 64, 7, 2, 3),
            new Layer("resnet50", "layer1.0.conv1", 64, 56, 56, 64, 1, 1, 0),
            new Layer("resnet50", "layer1.conv2", 64, 56, 56, 64, 3, 1, 1),
            new Layer("resnet50", "layer1.conv3", 64, 56, 56, 256, 1, 1, 0),
            new Layer("resnet50", "layer1.conv1", 256, 56, 56, 64, 1, 1, 0),
            new Layer("resnet50", "layer2.0.conv1", 256, 56, 56, 128, 1, 1, 0),
            new Layer("resnet50", "layer2.0.conv2", 128, 56, 56, 128, 3, 2, 1),
            new Layer("resnet50", "layer2.0.downsample", 256, 56, 56, 512, 1, 2, 0),
            new Layer("resnet50", "layer2.conv2", 128, 28, 28, 128, 3, 1, 1),
            new Layer("resnet50", "layer2.conv3", 128, 28, 28, 512, 1, 1, 0),
            new Layer("resnet50", "layer2.conv1", 512, 28, 28, 128, 1, 1, 0),
            new Layer("resnet50", "layer3.conv2", 256, 14, 14, 256, 3, 1, 1),
            new Layer("resnet50", "layer3.conv3", 256, 14, 14, 1024, 1, 1, 0),
            new Layer("resnet50", "layer3.conv1", 1024, 14, 14, 256, 1, 1, 0),
            new Layer("resnet50", "layer4.conv2", 512, 7, 7, 512, 3, 1, 1),
            new Layer("resnet50", "layer4.conv3", 512, 7, 7, 2048, 1, 1, 0),
            new Layer("resnet50", "layer4.conv1", 2048, 7, 7, 512, 1, 1, 0));

    public static final RegionPolicy POLICY = RegionPolicy.parse("2:50,3:30,4:20");
    static final int ROTATIONS = 3;

    public record Row(Layer layer, int batch, String variant, double medianUs, double minUs, double tops, double gbPerS, long activationBytes) {}

    public record Settings(List<Integer> batches, int warmup, int runs, List<Layer> layers, Path outDir) {}

    public static void main(String[] args) {
        Settings s = parse(args);
        CudaAvailability.unavailableReason().ifPresent(reason -> {
            System.err.println("silhouette: low-bit benchmark needs a GPU: " + reason);
            System.exit(2);
        });
        List<Row> rows;
        String device;
        try (CudaContext context = new CudaContext(0); KernelModule module = new KernelModule(context)) {
            device = context.deviceName();
            rows = run(context, module, s);
        }
        write(s.outDir(), device, s, rows);
    }

    static Settings parse(String[] args) {
        List<Integer> batches = List.of(1, 32, 128);
        int warmup = 10, runs = 50;
        List<Layer> layers = new ArrayList<>(RESNET18);
        layers.addAll(RESNET50);
        Path out = Path.of("docs/results");
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--batches" -> batches = Arrays.stream(require(value, "--batches").split(",")).map(String::strip).map(Integer::valueOf).toList();
                case "--warmup" -> warmup = Integer.parseInt(require(value, "--warmup"));
                case "--runs" -> runs = Integer.parseInt(require(value, "--runs"));
                case "--network" -> layers = switch (require(value, "--network")) {
                    case "resnet18" -> RESNET18;
                    case "resnet50" -> RESNET50;
                    default -> throw new IllegalArgumentException("--network " + value + ": resnet18 or resnet50");
                };
                case "--out" -> out = Path.of(require(value, "--out"));
                default -> throw new IllegalArgumentException("unknown option " + args[i] + "; options: --batches 1,32,128 --warmup N --runs N --network resnet18|resnet50 --out DIR");
            }
            i++;
        }
        if (runs < 1 || warmup < 0) throw new IllegalArgumentException("--runs must be at least 1 and --warmup at least 0");
        for (int b : batches) if (b < 1) throw new IllegalArgumentException("batch " + b + " must be positive");
        return new Settings(batches, warmup, runs, layers, out);
    }

    private static String require(String value, String option) {
        if (value == null) throw new IllegalArgumentException(option + " needs a value");
        return value;
    }

    /** One timed launch; {@code rotation} picks the input copy. */
    @FunctionalInterface
    interface Launch {
        void run(int rotation);
    }

    static List<Row> run(CudaContext context, KernelModule module, Settings s) {
        List<Row> rows = new ArrayList<>();
        boolean cudnnAvailable = Cudnn.unavailableReason().isEmpty();
        long steps = (long) s.layers().size() * s.batches().size();
        try (CudaStream stream = new CudaStream(); Cudnn cudnn = cudnnAvailable ? new Cudnn(stream.handle()) : null;
             Timer timer = new Timer(stream);
             Progress bar = Progress.start("low-bit kernels", steps, "shapes")) {
            for (Layer layer : s.layers()) {
                for (int batch : s.batches()) {
                    try (DeviceScratch scratch = new DeviceScratch(context)) {
                        rows.addAll(layer(module, cudnn, stream, timer, scratch, layer, batch, s));
                    }
                    bar.step();
                }
            }
        }
        return rows;
    }

    private static List<Row> layer(KernelModule module, Cudnn cudnn, CudaStream stream, Timer timer, DeviceScratch scratch, Layer l, int batch, Settings s) {
        SplittableRandom rnd = new SplittableRandom(l.name().hashCode() * 31L + batch);
        Window win = l.window();
        int oh = win.outH(l.h()), ow = win.outW(l.w());
        Shape in = Shape.of(batch, l.c(), l.h(), l.w()), weights = Shape.of(l.o(), l.c(), l.k(), l.k()), out = Shape.of(batch, l.o(), oh, ow);
        long inPixels = (long) batch * l.h() * l.w(), outPixels = (long) batch * oh * ow;
        int inWords = new PackedLayout.BitPlanes(1, l.c()).words(), outWords = new PackedLayout.BitPlanes(1, l.o()).words();
        long weightsFp32 = (long) weights.size() * Float.BYTES;
        List<Row> rows = new ArrayList<>();

        long[] xFloat = new long[ROTATIONS], xPacked4 = new long[ROTATIONS], xPacked1 = new long[ROTATIONS], xRegion = new long[ROTATIONS];
        for (int r = 0; r < ROTATIONS; r++) {
            xFloat[r] = scratch.upload(randomFloats(rnd, in.size()), "fp32 input");
            xPacked4[r] = scratch.upload(randomWords(rnd, inPixels * 4 * inWords), "4-plane input");
            xPacked1[r] = scratch.upload(randomWords(rnd, inPixels * inWords), "1-plane input");
            xRegion[r] = scratch.upload(regionMap(rnd, inPixels), "input region map");
        }
        long outRegion = scratch.upload(regionMap(rnd, outPixels), "output region map");
        long yFloat = scratch.allocate((long) out.size() * Float.BYTES, "fp32 output");
        long yPacked = scratch.allocate(outPixels * 4 * outWords * Long.BYTES, "packed output");
        long wFloat = scratch.upload(randomFloats(rnd, weights.size()), "fp32 weights");
        long w4 = scratch.upload(randomWords(rnd, (long) l.o() * l.k() * l.k() * 4 * inWords), "4-bit weights");
        long w1 = scratch.upload(randomWords(rnd, (long) l.o() * l.k() * l.k() * inWords), "1-bit weights");
        long scale = scratch.upload(randomFloats(rnd, l.o()), "channel scales"), shift = scratch.upload(randomFloats(rnd, l.o()), "channel shifts");
        int[] thresholds = new int[l.o()];
        long threshold = scratch.upload(thresholds, "binary thresholds"), flip = scratch.upload(new int[l.o()], "binary flips");
        RegionWidths a4 = RegionWidths.uniform(4, 1f), region = RegionWidths.of(POLICY, new float[] {1f, 1f, 1f});
        long alphas = scratch.upload(new float[] {1f, 1f, 1f}, "clip levels"), regionSteps = scratch.upload(region.steps(), "region steps");
        long workspace = scratch.allocate(Cudnn.WORKSPACE_LIMIT, "cuDNN workspace");
        long macs = l.macs(batch);
        double averageBits = POLICY.averageBits();

        if (cudnn != null) {
            rows.add(time(timer, s, l, batch, "cudnn-fp32", macs, (long) in.size() * 4 + (long) out.size() * 4, weightsFp32,
                    r -> cudnn.conv2d(l.name(), batch, l.c(), l.h(), l.w(), l.o(), l.k(), l.k(), l.pad(), l.pad(), l.stride(), l.stride(), 1, 1, 1,
                            xFloat[r], wFloat, 0, yFloat, bytes -> workspace)));
        }
        QuantizePackKernel pack = new QuantizePackKernel(module);
        rows.add(time(timer, s, l, batch, "quantize-pack-a4", 0, (long) in.size() * 4 + inPixels * 4 * inWords * 8, 0,
                r -> pack.launch(in, xFloat[r], 0, a4, alphas, xPacked4[(r + 1) % ROTATIONS], stream)));
        PackedConvKernel conv = new PackedConvKernel(module);
        long w4Bytes = (long) l.o() * l.k() * l.k() * 4 * inWords * 8;
        PackedConvKernel.Problem uniform = new PackedConvKernel.Problem(in, weights, win, a4, 4, true);
        rows.add(time(timer, s, l, batch, "w4a4", macs, inPixels * 4 * inWords * 8 + outPixels * 4 * outWords * 8, w4Bytes,
                r -> conv.launch(uniform, xPacked4[r], 0, w4, new PackedConvKernel.Target.Packed(PackedConvKernel.Epilogue.Kind.CHANNEL_AFFINE, scale, shift,
                        regionSteps, a4, 0, alphas, yPacked), stream)));
        PackedConvKernel.Problem regional = new PackedConvKernel.Problem(in, weights, win, region, 4, true);
        rows.add(time(timer, s, l, batch, "w4-region " + POLICY, macs,
                (long) Math.ceil(inPixels * averageBits * inWords * 8 + outPixels * averageBits * outWords * 8 + inPixels + outPixels), w4Bytes,
                r -> conv.launch(regional, xPacked4[r], xRegion[r], w4, new PackedConvKernel.Target.Packed(PackedConvKernel.Epilogue.Kind.REGION_COMBINE, scale,
                        shift, regionSteps, region, outRegion, alphas, yPacked), stream)));
        BinaryConvKernel binary = new BinaryConvKernel(module);
        rows.add(time(timer, s, l, batch, "w1a1", macs, inPixels * inWords * 8 + outPixels * outWords * 8, (long) l.o() * l.k() * l.k() * inWords * 8,
                r -> binary.launchFrozen(in, weights, win, xPacked1[r], w1, threshold, flip, yPacked, stream)));
        tensorCoreRows(module, stream, timer, scratch, l, batch, s, rnd, xFloat, xRegion, xPacked1, yFloat, rows);
        return rows;
    }

    /**
     * The tensor-core kernels: lowbit_codes (float input to u8 codes at the policy's regions), lowbit_igemm_conv
     * (INT8 IMMA, float output) under the region policy and uniform 4-bit, and binary_mma_conv's XNOR sums.
     */
    private static void tensorCoreRows(KernelModule module, CudaStream stream, Timer timer, DeviceScratch scratch, Layer l, int batch, Settings s,
                                       SplittableRandom rnd, long[] xFloat, long[] xRegion, long[] xPacked1, long yFloat, List<Row> rows) {
        Window win = l.window();
        Shape in = Shape.of(batch, l.c(), l.h(), l.w()), weights = Shape.of(l.o(), l.c(), l.k(), l.k());
        long macs = l.macs(batch), outFloats = (long) batch * l.o() * win.outH(l.h()) * win.outW(l.w());
        LowBitWeights w4 = randomWeights(rnd, l, 4);
        Op.Conv2d conv = new Op.Conv2d(l.c(), l.o(), win, 1, false);
        List<Float> steps = List.of(1f / 3, 1f / 7, 1f / 15);
        Op.LowBitConv2d regional = new Op.LowBitConv2d(conv, new Op.LowBitConv2d.ActivationCodes.Regions(List.of(2, 3, 4), steps), w4);
        Op.LowBitConv2d uniform = new Op.LowBitConv2d(conv, new Op.LowBitConv2d.ActivationCodes.Grid(4, 1f / 15, 0), w4);
        LowBitIgemmKernel igemm = new LowBitIgemmKernel(module);
        long codes = scratch.allocate(LowBitIgemmKernel.codeBytes(in), "u8 codes");
        for (Op.LowBitConv2d op : List.of(regional, uniform)) {
            if (!(LowBitIgemmKernel.supports(op, in) instanceof KernelSupport.Supported)) continue;
            LowBitIgemmKernel.Prepared p = LowBitIgemmKernel.prepare(op);
            long[] stepBits = new long[p.steps().length];
            for (int i = 0; i < stepBits.length; i++) stepBits[i] = Double.doubleToRawLongBits(p.steps()[i]);
            var constants = new LowBitIgemmKernel.Constants(scratch.upload(p.weights(), "weight tiles"), scratch.upload(p.weightSums(), "weight sums"),
                    scratch.upload(p.scales(), "scales"), scratch.upload(stepBits, "steps"), 0);
            long codeSteps = scratch.upload(p.codeSteps(), "code steps"), levels = scratch.upload(p.levels(), "levels");
            boolean region = op == regional;
            String name = region ? "igemm-w4-region " + POLICY : "igemm-w4a4";
            if (region) {
                rows.add(time(timer, s, l, batch, "igemm-codes " + POLICY, 0, (long) in.size() * 5 + in.n() * (long) l.h() * l.w(), 0,
                        r -> igemm.launchCodes(in, xFloat[r], xRegion[r], codeSteps, levels, 0, codes, stream)));
            }
            rows.add(time(timer, s, l, batch, name, macs, (long) in.size() + outFloats * Float.BYTES + (region ? (long) batch * l.h() * l.w() : 0),
                    p.weights().length, r -> igemm.launchConv(op, in, p, constants, codes, region ? xRegion[r] : 0, 0, yFloat, stream)));
        }
        if (BinaryMmaKernel.supports(in, weights, win) instanceof KernelSupport.Supported) {
            long[] w = new long[(int) ((long) l.o() * l.k() * l.k() * new PackedLayout.BitPlanes(1, l.c()).words())];
            for (int i = 0; i < w.length; i++) w[i] = rnd.nextLong() & (l.c() % 64 == 0 ? -1L : ~(-1L << (l.c() % 64)));
            long tiles = scratch.upload(BinaryMmaKernel.tiles(w, weights, win), "binary weight tiles");
            rows.add(time(timer, s, l, batch, "binary-mma-sums", macs, (long) batch * l.h() * l.w() * l.c() / 8 + outFloats * 4, (long) w.length * 8,
                    r -> new BinaryMmaKernel(module).launchSums(in, weights, win, xPacked1[r], tiles, yFloat, stream)));
        }
    }

    /** Random signed weight codes of {@code bits} bits in LowBitWeights' layout, scales 1 (the kernels' speed does not depend on them). */
    private static LowBitWeights randomWeights(SplittableRandom rnd, Layer l, int bits) {
        int taps = l.k() * l.k(), stride = (l.o() + LowBitWeights.LANE_MULTIPLE - 1) / LowBitWeights.LANE_MULTIPLE * LowBitWeights.LANE_MULTIPLE;
        short[] codes = new short[taps * l.c() * stride];
        int max = (1 << (bits - 1)) - 1;
        for (int row = 0; row < taps * l.c(); row++) for (int o = 0; o < l.o(); o++) codes[row * stride + o] = (short) (rnd.nextInt(2 * max + 1) - max);
        float[] ones = new float[l.o()];
        Arrays.fill(ones, 1f);
        return new LowBitWeights(1, l.c(), l.o(), taps, new int[] {bits}, List.of(codes), List.of(ones), List.of(new float[l.o()]));
    }

    private static Row time(Timer timer, Settings s, Layer l, int batch, String variant, long macs, long activationBytes, long weightBytes, Launch launch) {
        for (int i = 0; i < s.warmup(); i++) launch.run(i % ROTATIONS);
        double[] us = new double[s.runs()];
        for (int i = 0; i < s.runs(); i++) us[i] = timer.microseconds(launch, i % ROTATIONS);
        Arrays.sort(us);
        double median = us.length % 2 == 1 ? us[us.length / 2] : (us[us.length / 2 - 1] + us[us.length / 2]) / 2;
        return new Row(l, batch, variant, median, us[0], macs == 0 ? 0 : 2.0 * macs / (median * 1e6),
                (activationBytes + weightBytes) / (median * 1e3), activationBytes);
    }

    /** CUDA events around one launch on the stream. */
    static final class Timer implements AutoCloseable {
        private final CudaStream stream;
        private final CUevent start = new CUevent(), stop = new CUevent();

        Timer(CudaStream stream) {
            this.stream = stream;
            Driver.check(cuEventCreate(start, 0), "cuEventCreate");
            Driver.check(cuEventCreate(stop, 0), "cuEventCreate");
        }

        double microseconds(Launch launch, int rotation) {
            Driver.check(cuEventRecord(start, stream), "cuEventRecord(start)");
            launch.run(rotation);
            Driver.check(cuEventRecord(stop, stream), "cuEventRecord(stop)");
            Driver.check(cuEventSynchronize(stop), "cuEventSynchronize");
            float[] ms = new float[1];
            Driver.check(cuEventElapsedTime(ms, start, stop), "cuEventElapsedTime");
            return ms[0] * 1000.0;
        }

        @Override
        public void close() {
            Driver.check(cuEventDestroy(start), "cuEventDestroy");
            Driver.check(cuEventDestroy(stop), "cuEventDestroy");
        }
    }

    private static float[] randomFloats(SplittableRandom rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (rnd.nextDouble() * 2);
        return a;
    }

    private static long[] randomWords(SplittableRandom rnd, long n) {
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("benchmark buffer of " + n + " words is too large for one host array");
        long[] a = new long[(int) n];
        for (int i = 0; i < a.length; i++) a[i] = rnd.nextLong();
        return a;
    }

    /** Regions 0, 1, 2 with the policy's shares 50, 30, 20 %, placed at random. */
    private static byte[] regionMap(SplittableRandom rnd, long pixels) {
        byte[] map = new byte[Math.toIntExact(pixels)];
        for (int i = 0; i < map.length; i++) {
            int p = rnd.nextInt(100);
            map[i] = (byte) (p < 50 ? 0 : p < 80 ? 1 : 2);
        }
        return map;
    }

    static String markdown(String device, Settings s, List<Row> rows) {
        StringBuilder md = new StringBuilder();
        md.append("# Low-bit kernels vs cuDNN FP32\n\n");
        md.append("Device: ").append(device).append(". Written ").append(Instant.now()).append(" by `native-build/gpu-bench.sh` (")
                .append(s.warmup()).append(" warm-up launches, median of ").append(s.runs()).append(" timed launches, CUDA events, ")
                .append(ROTATIONS).append(" rotated inputs).\n\n");
        md.append("| network | layer | batch | variant | median us | min us | eff. TOPS | GB/s | activation bytes |\n|---|---|---|---|---|---|---|---|---|\n");
        for (Row r : rows) {
            md.append(String.format(Locale.ROOT, "| %s | %s | %d | %s | %.1f | %.1f | %.2f | %.1f | %d |%n", r.layer().network(), r.layer().name(), r.batch(), r.variant(),
                    r.medianUs(), r.minUs(), r.tops(), r.gbPerS(), r.activationBytes()));
        }
        return md.toString();
    }

    static String json(String device, Settings s, List<Row> rows) {
        StringBuilder j = new StringBuilder("{\n  \"device\": \"" + device.replace("\"", "'") + "\",\n  \"warmup\": " + s.warmup() + ",\n  \"runs\": " + s.runs()
                + ",\n  \"rotations\": " + ROTATIONS + ",\n  \"rows\": [\n");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            Layer l = r.layer();
            j.append(String.format(Locale.ROOT, "    {\"network\": \"%s\", \"layer\": \"%s\", \"c\": %d, \"h\": %d, \"w\": %d, \"o\": %d, \"k\": %d, "
                            + "\"stride\": %d, \"pad\": %d, \"batch\": %d, \"variant\": \"%s\", \"median_us\": %.3f, \"min_us\": %.3f, "
                            + "\"tops\": %.4f, \"gb_per_s\": %.3f, \"activation_bytes\": %d}%s%n", l.network(), l.name(), l.c(), l.h(), l.w(), l.o(), l.k(),
                    l.stride(), l.pad(), r.batch(), r.variant(), r.medianUs(), r.minUs(), r.tops(), r.gbPerS(), r.activationBytes(), i + 1 < rows.size() ? "," : ""));
        }
        return j.append("  ]\n}\n").toString();
    }

    static void write(Path dir, String device, Settings s, List<Row> rows) {
        String slug = device.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "-").replaceAll("(^-|-$)", "");
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("lowbit-kernels-" + slug + ".md"), markdown(device, s, rows));
            Files.writeString(dir.resolve("lowbit-kernels-" + slug + ".json"), json(device, s, rows));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the benchmark results to " + dir, e);
        }
        System.out.println("silhouette: wrote " + dir.resolve("lowbit-kernels-" + slug + ".md") + " and .json (" + rows.size() + " rows, " + device + ")");
    }
}
