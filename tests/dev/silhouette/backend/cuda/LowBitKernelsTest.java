package dev.silhouette.backend.cuda;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.quant.BinaryNet;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertThrows;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/**
 * What can be checked of the low-bit kernels without a GPU: every launch the glue makes passes exactly
 * the kernel's parameters in order and type (a recorder stands in for the driver and the parameter
 * lists are read from cuda/), the grids respect the kernels' launch contracts, constants shared by the
 * kernels and the glue agree, and supports() refuses with typed reasons.
 */
public class LowBitKernelsTest {
    record Launch(String kernel, int gridX, int gridY, int block, List<Object> args) {}

    static final class Recorder implements KernelLauncher {
        final List<Launch> launches = new ArrayList<>();
        final List<String> resizes = new ArrayList<>();

        @Override
        public void launch(String kernel, int gridX, int gridY, int blockX, int sharedBytes, CudaStream stream, Object... args) {
            launches.add(new Launch(kernel, gridX, gridY, blockX, Arrays.asList(args)));
        }

        void resize(long x, long y, int planes, int h, int w, int oh, int ow, boolean bilinear, CudaStream s) {
            resizes.add(planes + "x" + h + "x" + w + "->" + oh + "x" + ow + (bilinear ? " bilinear" : " nearest"));
        }
    }

    private static final Pattern KERNEL = Pattern.compile(
            "extern\\s+\"C\"\\s+__global__\\s+(?:__launch_bounds__\\s*\\([^)]*\\)\\s*)?void\\s+(?:__launch_bounds__\\s*\\([^)]*\\)\\s*)?(\\w+)\\s*\\(([^)]*)\\)");

    /** Kernel name to the Java class of each parameter as KernelModule passes it (pointer: Long). */
    static Map<String, List<Class<?>>> parameters() throws IOException {
        Map<String, List<Class<?>>> out = new HashMap<>();
        try (Stream<Path> files = Files.list(BuiltinKernelsTest.root().resolve("cuda"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".cu")).toList()) {
                String text = Files.readString(f).replaceAll("(?s)/\\*.*?\\*/", "").replaceAll("//[^\n]*", "");
                Matcher m = KERNEL.matcher(text);
                while (m.find()) {
                    List<Class<?>> types = new ArrayList<>();
                    for (String p : m.group(2).split(",")) {
                        String t = p.strip();
                        types.add(t.contains("*") ? Long.class : t.startsWith("double") ? Double.class : t.startsWith("float") ? Float.class
                                : t.startsWith("long long") ? Long.class : Integer.class);
                    }
                    out.put(m.group(1), types);
                }
            }
        }
        return out;
    }

    static void checkLaunches(Recorder r, int expected) throws IOException {
        Map<String, List<Class<?>>> params = parameters();
        assertEquals(r.launches.size(), expected, "launches " + r.launches);
        for (Launch l : r.launches) {
            List<Class<?>> types = params.get(l.kernel());
            assertTrue(types != null, l.kernel() + " is not an extern \"C\" __global__ of cuda/");
            assertEquals(l.args().size(), types.size(), l.kernel() + ": argument count");
            for (int i = 0; i < types.size(); i++) {
                assertEquals(l.args().get(i).getClass(), types.get(i), l.kernel() + " argument " + i + " (" + l.args().get(i) + ")");
            }
            assertTrue(l.gridX() >= 1 && l.gridY() >= 1 && l.gridY() <= 65535, l.kernel() + " grid " + l.gridX() + "x" + l.gridY());
            assertTrue(l.block() % 32 == 0 && l.block() <= 1024, l.kernel() + " block " + l.block());
        }
    }

    @Test
    public void quantizePackPassesItsParameters() throws IOException {
        Recorder r = new Recorder();
        RegionWidths widths = new RegionWidths(new int[] {2, 3, 4}, new float[] {1, 2, 3});
        new QuantizePackKernel(r).launch(Shape.of(2, 70, 5, 3), 0x1000, 0x2000, widths, 0x3000, 0x4000, null);
        checkLaunches(r, 1);
        List<Object> a = r.launches.getFirst().args();
        assertEquals(a.get(6), 0x432, "packed widths");
        assertEquals(a.get(8), 4, "planes: the widest region");
        assertEquals(a.get(9), 0x4000L, "packed output");
        // One thread per (pixel, word): 30 pixels x 2 words.
        assertEquals(r.launches.getFirst().gridX(), 1);
        assertThrows(IllegalArgumentException.class, () -> new QuantizePackKernel(r).launch(Shape.of(1, 8, 2, 2), 1, 0, widths, 1, 1, null));
    }

    @Test
    public void packedConvPassesItsParametersForEveryTarget() throws IOException {
        Recorder r = new Recorder();
        PackedConvKernel k = new PackedConvKernel(r);
        RegionWidths widths = new RegionWidths(new int[] {2, 3, 4}, new float[] {1, 2, 3});
        PackedConvKernel.Problem p = new PackedConvKernel.Problem(Shape.of(3, 70, 9, 9), Shape.of(100, 70, 3, 3), Window.square(3, 2, 1), widths, 4, true);
        k.launch(p, 0x10, 0x20, 0x30, new PackedConvKernel.Target.Accumulators(0x40), null);
        k.launch(p, 0x10, 0x20, 0x30, new PackedConvKernel.Target.Values(PackedConvKernel.Epilogue.Kind.REGION_COMBINE, 0x50, 0, 0x60, 0x70), null);
        k.launch(p, 0x10, 0x20, 0x30, new PackedConvKernel.Target.Packed(PackedConvKernel.Epilogue.Kind.REGION_COMBINE, 0x50, 0x58, 0x60,
                RegionWidths.uniform(3, 6f), 0, 0x80, 0x90), null);
        checkLaunches(r, 3);
        // 3 x 5 x 5 output pixels, 8 a block; 100 channels = 2 words = 4 warps of 32 on grid y.
        assertEquals(r.launches.getFirst().gridX(), 10);
        assertEquals(r.launches.getFirst().gridY(), 4);
        List<Object> packed = r.launches.get(2).args();
        assertEquals(packed.get(23), 2, "output: packed");
        assertEquals(packed.get(25), 1, "epilogue: region combine");
        assertEquals(packed.get(31), 3, "output planes");
        PackedConvKernel.Problem uniform = new PackedConvKernel.Problem(Shape.of(1, 8, 4, 4), Shape.of(8, 8, 1, 1), Window.square(1, 1, 0),
                RegionWidths.uniform(4, 1f), 4, false);
        expectThrows(IllegalArgumentException.class, () -> k.launch(p, 0x10, 0, 0x30, new PackedConvKernel.Target.Accumulators(0x40), null));
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class,
                () -> k.launch(p, 0x10, 0x20, 0x30, new PackedConvKernel.Target.Values(PackedConvKernel.Epilogue.Kind.CHANNEL_AFFINE, 1, 1, 1, 1), null));
        assertTrue(e.getMessage().contains("EPILOGUE_REGIONS"), e.getMessage());
        k.launch(uniform, 0x10, 0, 0x30, new PackedConvKernel.Target.Values(PackedConvKernel.Epilogue.Kind.CHANNEL_AFFINE, 1, 1, 1, 1), null);
        assertEquals(r.launches.size(), 4);
    }

    @Test
    public void binaryConvPassesItsParameters() throws IOException {
        Recorder r = new Recorder();
        BinaryConvKernel k = new BinaryConvKernel(r);
        Shape in = Shape.of(2, 65, 7, 7), w = Shape.of(33, 65, 3, 3);
        Window win = Window.square(3, 1, 1);
        k.launchSums(in, w, win, 1, 2, 3, null);
        k.launchFolded(in, w, win, 1, 2, 3, 4, 5, null);
        k.launchFrozen(in, w, win, 1, 2, 3, 4, 5, null);
        checkLaunches(r, 3);
        assertEquals(r.launches.getFirst().gridX(), (2 * 49 + 7) / 8);
        assertEquals(r.launches.getFirst().gridY(), 2, "33 channels: one word, both halves");
    }

    @Test
    public void regionMasksLaunchTheRightSequence() throws IOException {
        Recorder r = new Recorder();
        RegionMaskKernel k = new RegionMaskKernel(r, r::resize);
        Shape s = Shape.of(4, 1, 28, 28);
        int[] shares = RegionPolicy.parse("2:50,3:30,4:20").percents();
        k.launch(s, 0x100, shares, 0x200, 14, 14, Op.Interpolate.Mode.BILINEAR, Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD, 0x300, 0x400, 0x500, null);
        assertEquals(r.resizes, List.of("4x28x28->14x14 bilinear"));
        assertEquals(r.launches.stream().map(Launch::kernel).toList(), List.of(SilhouetteThresholdKernel.CUT_KEYS, SilhouetteThresholdKernel.REGION_MAP));
        assertEquals(r.launches.getFirst().args().getFirst(), 0x300L, "cuts of the resized silhouette");
        assertEquals(r.launches.getFirst().args().get(2), 14 * 14);
        r.launches.clear();
        r.resizes.clear();
        k.launch(s, 0x100, shares, 0x200, 28, 28, Op.Interpolate.Mode.BILINEAR, Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD, 0, 0x400, 0x500, null);
        assertEquals(r.resizes, List.of(), "same size: no resize");
        assertEquals(r.launches.getFirst().args().getFirst(), 0x100L);
        r.launches.clear();
        k.launch(s, 0x100, shares, 0x200, 56, 56, Op.Interpolate.Mode.NEAREST, Op.RegionQuantize.MaskOrder.THRESHOLD_THEN_RESIZE, 0, 0x400, 0x500, null);
        assertEquals(r.resizes, List.of());
        assertEquals(r.launches.stream().map(Launch::kernel).toList(), List.of(SilhouetteThresholdKernel.CUT_KEYS, RegionMaskKernel.FUSED));
        assertEquals(r.launches.getFirst().args().get(2), 28 * 28, "cuts at the silhouette's own size");
        checkLaunches(r, 2);
        r.launches.clear();
        k.launch(s, 0x100, new int[] {100}, 0, 7, 7, Op.Interpolate.Mode.NEAREST, Op.RegionQuantize.MaskOrder.THRESHOLD_THEN_RESIZE, 0, 0x400, 0x500, null);
        assertEquals(r.launches.stream().map(Launch::kernel).toList(), List.of(RegionMaskKernel.FUSED), "one region: no cuts");
        assertEquals(RegionMaskKernel.workFloats(s, 14, 14, Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD), 4 * 14 * 14);
        assertEquals(RegionMaskKernel.workFloats(s, 14, 14, Op.RegionQuantize.MaskOrder.THRESHOLD_THEN_RESIZE), 0);
    }

    /** Constants the glue restates from the kernels. */
    @Test
    public void sharedConstantsAgree() throws IOException {
        Path cuda = BuiltinKernelsTest.root().resolve("cuda");
        String conv = Files.readString(cuda.resolve("packed_conv.cu"));
        String binary = Files.readString(cuda.resolve("binary_conv.cu"));
        assertEquals(constant(conv, "PIXELS_PER_BLOCK"), PackedConvKernel.PIXELS_PER_BLOCK);
        assertEquals(constant(binary, "PIXELS_PER_BLOCK"), BinaryConvKernel.PIXELS_PER_BLOCK);
        assertEquals(constant(conv, "CHANNEL_AFFINE"), PackedConvKernel.Epilogue.Kind.CHANNEL_AFFINE.ordinal());
        assertEquals(constant(conv, "REGION_COMBINE"), PackedConvKernel.Epilogue.Kind.REGION_COMBINE.ordinal());
        assertEquals(constant(conv, "ACCUMULATORS"), 0);
        assertEquals(constant(conv, "VALUES"), 1);
        assertEquals(constant(conv, "PACKED"), 2);
        assertEquals(constant(binary, "SUMS"), 0);
        assertEquals(constant(binary, "AFFINE"), 1);
        assertEquals(constant(binary, "FROZEN"), 2);
    }

    private static int constant(String text, String name) {
        Matcher m = Pattern.compile("constexpr\\s+int\\s+" + name + "\\s*=\\s*(\\d+)\\s*;").matcher(text);
        assertTrue(m.find(), "no constexpr int " + name);
        return Integer.parseInt(m.group(1));
    }

    @Test
    public void supportsGivesTypedReasons() {
        Window w3 = Window.square(3, 1, 1);
        RegionWidths a8 = RegionWidths.uniform(8, 1f);
        // ResNet's largest layer at 8/8 bits: 512 x 9 taps x 255 x 128 = 150M < 2^31.
        assertTrue(PackedConvKernel.supports(new PackedConvKernel.Problem(Shape.of(1, 512, 7, 7), Shape.of(512, 512, 3, 3), w3, a8, 8, true), null)
                instanceof KernelSupport.Supported);
        assertEquals(reason(PackedConvKernel.supports(new PackedConvKernel.Problem(Shape.of(1, 8192, 7, 7), Shape.of(8, 8192, 3, 3), w3, a8, 8, true), null)),
                KernelSupport.Reason.ACCUMULATOR_RANGE);
        RegionWidths nine = new RegionWidths(new int[] {1, 2, 2, 3, 3, 4, 4, 5, 8}, new float[] {1, 1, 1, 1, 1, 1, 1, 1, 1});
        assertEquals(reason(PackedConvKernel.supports(new PackedConvKernel.Problem(Shape.of(1, 8, 7, 7), Shape.of(8, 8, 3, 3), w3, nine, 4, true), null)),
                KernelSupport.Reason.TOO_MANY_REGIONS);
        assertEquals(reason(QuantizePackKernel.supports(Shape.of(1, 8, 7, 7), nine)), KernelSupport.Reason.TOO_MANY_REGIONS);
        assertEquals(reason(PackedConvKernel.supports(new PackedConvKernel.Problem(Shape.of(1, 1, 1, 1), Shape.of(1 << 22, 1, 1, 1), Window.square(1, 1, 0),
                RegionWidths.uniform(1, 1f), 1, false), null)), KernelSupport.Reason.GRID_RANGE);
        RegionWidths three = RegionWidths.of(RegionPolicy.parse("2:50,3:30,4:20"), new float[] {1, 2, 3});
        PackedConvKernel.Problem regional = new PackedConvKernel.Problem(Shape.of(1, 8, 7, 7), Shape.of(8, 8, 3, 3), w3, three, 4, true);
        assertEquals(reason(PackedConvKernel.supports(regional, PackedConvKernel.Epilogue.Kind.CHANNEL_AFFINE)), KernelSupport.Reason.EPILOGUE_REGIONS);
        assertTrue(PackedConvKernel.supports(regional, PackedConvKernel.Epilogue.Kind.REGION_COMBINE) instanceof KernelSupport.Supported);
        assertEquals(reason(QuantizePackKernel.supports(Shape.of(1 << 14, 1, 256, 256), a8)), KernelSupport.Reason.INDEX_RANGE);
        assertTrue(BinaryConvKernel.supports(Shape.of(1, 64, 56, 56), Shape.of(64, 64, 3, 3), w3) instanceof KernelSupport.Supported);
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, () -> nine.packed());
        assertTrue(e.getMessage().contains("TOO_MANY_REGIONS") && e.getMessage().contains("9 regions"), e.getMessage());
    }

    private static KernelSupport.Reason reason(KernelSupport s) {
        assertTrue(s instanceof KernelSupport.Unsupported, "expected a refusal, got " + s);
        return ((KernelSupport.Unsupported) s).reason();
    }

    @Test
    public void invalidInputIsRefusedWithItsName() {
        Window w3 = Window.square(3, 1, 1);
        RegionWidths a4 = RegionWidths.uniform(4, 1f);
        assertMessage(() -> new PackedConvKernel.Problem(Shape.of(1, 8, 7, 7), Shape.of(8, 9, 3, 3), w3, a4, 4, true), "9");
        assertMessage(() -> new PackedConvKernel.Problem(Shape.of(1, 8, 7, 7), Shape.of(8, 8, 3, 3), w3, a4, 9, true), "weight bits 9 outside the supported 1..8");
        assertMessage(() -> new PackedConvKernel.Problem(Shape.of(1, 8, 7, 7), Shape.of(8, 8, 5, 5), w3, a4, 4, true), "3x3 window");
        assertMessage(() -> new RegionWidths(new int[] {2, 0}, new float[] {1, 1}), "region 1 bits 0 outside the supported 1..8");
        assertMessage(() -> new RegionWidths(new int[] {2}, new float[] {Float.NaN}), "clip level NaN");
        assertMessage(() -> new RegionWidths(new int[] {2, 3}, new float[] {1}), "2 region widths but 1 clip levels");
        assertMessage(() -> QuantizePackKernel.checkRegionMap(Shape.of(1, 4, 2, 2), new byte[] {0, 1, 3, 0}, new RegionWidths(new int[] {2, 3, 4}, new float[] {1, 1, 1})),
                "entry 2 is region 3");
        assertMessage(() -> QuantizePackKernel.checkRegionMap(Shape.of(1, 4, 2, 2), new byte[3], a4), "has 3 entries");
        assertMessage(() -> new PackedConvKernel.Epilogue(PackedConvKernel.Epilogue.Kind.CHANNEL_AFFINE, new float[2], null), "one shift per scale");
        LowBitKernelsTest.Recorder r = new Recorder();
        assertMessage(() -> new QuantizePackKernel(r).launch(Shape.of(1, 8, 2, 2), 0x10, 0, a4, 0x20, 0, null), "packed output is null");
        PackedConvKernel.Problem p = new PackedConvKernel.Problem(Shape.of(1, 8, 7, 7), Shape.of(8, 8, 3, 3), w3, a4, 4, true);
        assertMessage(() -> new PackedConvKernel(r).launch(p, 0x10, 0, 0x20,
                new PackedConvKernel.Target.Values(PackedConvKernel.Epilogue.Kind.CHANNEL_AFFINE, 0x30, 0, 0, 0x40), null), "shifts is null");
        assertMessage(() -> new BinaryConvKernel(r).launchFrozen(Shape.of(1, 8, 7, 7), Shape.of(8, 8, 3, 3), w3, 1, 2, 3, 0, 5, null), "flips is null");
        assertEquals(r.launches.size(), 0, "nothing launched after a refusal");
    }

    private static void assertMessage(Runnable r, String part) {
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, r::run);
        assertTrue(e.getMessage().contains(part), "message '" + e.getMessage() + "' does not name '" + part + "'");
    }

    @Test
    public void regionWidthsStepsAreThePactGrid() {
        RegionWidths w = RegionWidths.of(RegionPolicy.parse("2:50,3:30,4:20"), new float[] {0.9f, 1.7f, 2.5f});
        assertEquals(w.planeBits(), 4);
        assertEquals(w.packed(), 2 | 3 << 4 | 4 << 8);
        float[] steps = w.steps();
        assertEquals(Float.floatToRawIntBits(steps[0]), Float.floatToRawIntBits(0.9f / 3));
        assertEquals(Float.floatToRawIntBits(steps[1]), Float.floatToRawIntBits(1.7f / 7));
        assertEquals(Float.floatToRawIntBits(steps[2]), Float.floatToRawIntBits(2.5f / 15));
        // The binary layer's problem is the 1-bit case of the packed one.
        int[] ones = new int[48];
        Arrays.fill(ones, 1);
        assertEquals(BinaryConvKernel.problem(Shape.of(1, 3, 4, 4), Shape.of(2, 3, 3, 3), Window.square(3, 1, 1)).activationWords(),
                BinaryNet.packActivations(ones, Shape.of(1, 3, 4, 4)).length);
    }
}
