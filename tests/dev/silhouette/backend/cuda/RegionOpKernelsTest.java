package dev.silhouette.backend.cuda;

import dev.silhouette.graph.Op;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import org.testng.annotations.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/**
 * The region-op glue without a GPU: the launch sequence of every op, each launch's arguments against the
 * kernel's parameter list in cuda/ (a recorder stands in for the driver), temporaries sized for what the
 * kernels write, bad input refused with its name, and the backend's support answers. The kernels'
 * arithmetic is checked by EmulatedRegionOpsTest (host emulation) and, on a GPU, RegionOpsGpuTest.
 */
public class RegionOpKernelsTest {
    /** Temporaries handed out at fake addresses, remembered by name and size. */
    static final class Work implements RegionOpKernels.Work {
        final List<String> allocations = new ArrayList<>();
        private long next = 0x100000;

        @Override
        public long allocate(long bytes, String what) {
            allocations.add(what + " " + bytes);
            long at = next;
            next += (bytes + 255) / 256 * 256 + 256;
            return at;
        }
    }

    private static List<String> kernels(LowBitKernelsTest.Recorder r) {
        return r.launches.stream().map(LowBitKernelsTest.Launch::kernel).toList();
    }

    @Test
    public void everyEntryPointOfRegionOpsIsLaunchedAndBuilt() throws IOException {
        Map<String, String> entries = BuiltinKernelsTest.entryPoints();
        List<String> defined = entries.entrySet().stream().filter(e -> e.getValue().equals("region_ops.cu")).map(Map.Entry::getKey).sorted().toList();
        assertEquals(defined, RegionOpKernels.KERNELS.stream().sorted().toList());
        // With nvcc the build put the fatbin in the classpath; without it there is nothing more to check here.
        try (InputStream in = KernelModule.class.getResourceAsStream(KernelModule.RESOURCE)) {
            if (in == null) return;
            String image = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
            for (String k : RegionOpKernels.KERNELS) assertTrue(image.contains(".entry " + k + "("), k + " has no PTX .entry in the fatbin");
        }
    }

    @Test
    public void regionQuantizeMapsThenQuantizes() throws IOException {
        LowBitKernelsTest.Recorder r = new LowBitKernelsTest.Recorder();
        RegionOpKernels k = new RegionOpKernels(r, r::resize);
        Op.RegionQuantize op = new Op.RegionQuantize(RegionPolicy.parse("2:50,3:30,4:20"), List.of(1f, 2f, 3f), Op.Interpolate.Mode.BILINEAR,
                Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD, 2);
        Work work = new Work();
        var table = new RegionOpKernels.RegionTable(0x10, 0x20, 0x30);
        k.regionQuantize(0x1000, Shape.of(4, 64, 14, 14), 0x2000, Shape.of(4, 1, 28, 28), op, table, work, 0x3000, null);
        assertEquals(r.resizes, List.of("4x28x28->14x14 bilinear"));
        assertEquals(kernels(r), List.of(SilhouetteThresholdKernel.CUT_KEYS, SilhouetteThresholdKernel.REGION_MAP, RegionOpKernels.BY_MAP));
        assertEquals(work.allocations, List.of("region map " + 4 * 14 * 14, "cut keys " + 4 * 2 * 8, "resized silhouette " + 4 * 14 * 14 * 4));
        assertEquals(r.launches.getFirst().args().subList(3, 5), List.of(0x10L, 3), "the table's shares, three regions");
        List<Object> quantize = r.launches.getLast().args();
        assertEquals(quantize.subList(1, 4), List.of(4, 64, 14 * 14), "n, c, plane");
        assertEquals(quantize.get(4), r.launches.get(1).args().get(5), "the region map just written");
        assertEquals(quantize.subList(5, 9), List.of(0x20L, 0x30L, 2, 0x3000L), "widths, clip levels, the selected region, output");
        LowBitKernelsTest.checkLaunches(r, 3);

        r.launches.clear();
        Op.RegionQuantize same = new Op.RegionQuantize(RegionPolicy.parse("4:100"), List.of(1f), Op.Interpolate.Mode.NEAREST,
                Op.RegionQuantize.MaskOrder.THRESHOLD_THEN_RESIZE, -1);
        Work none = new Work();
        k.regionQuantize(0x1000, Shape.of(1, 3, 7, 7), 0x2000, Shape.of(1, 1, 7, 7), same, table, none, 0x3000, null);
        assertEquals(kernels(r), List.of(SilhouetteThresholdKernel.REGION_MAP, RegionOpKernels.BY_MAP), "one region at the same size: no cuts, no resize");
        assertEquals(none.allocations, List.of("region map 49", "cut keys 8"));
    }

    @Test
    public void theOtherOpsLaunchTheirSequences() throws IOException {
        LowBitKernelsTest.Recorder r = new LowBitKernelsTest.Recorder();
        RegionOpKernels k = new RegionOpKernels(r, r::resize);
        Shape x = Shape.of(3, 16, 7, 9);
        k.pactQuantize(0x1000, 0x2000, x.size(), new Op.PactQuantize(3, 1.5f), null);
        assertEquals(r.launches.getLast().args().subList(1, 4), List.of((long) x.size(), 3, 1.5f));

        Work drqWork = new Work();
        k.drqQuantize(0x1000, x, new Op.DrqQuantize(2, 0.25f, 4, 8, 1f, 2f, 1), drqWork, 0x2000, null);
        assertEquals(drqWork.allocations, List.of("DRQ block means " + 3 * 16 * 4 * 5 * 4), "4 x 5 tiles of 2 x 2 per plane");
        assertEquals(r.launches.getLast().args().subList(2, 12), List.of(48, 7, 9, 2, 0.25f, 4, 1f, 8, 2f, 1));

        Work top = new Work();
        k.channelSqueeze(0x1000, x, new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD, 5), top, 0x2000, null);
        assertEquals(top.allocations, List.of("channel scores " + 3 * 16 * 8, "chosen channels " + 3 * 5 * 4, "value ranges " + 3 * 2 * 4));
        Work max = new Work();
        k.channelSqueeze(0x1000, x, new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MAX, 5), max, 0x2000, null);
        List<Object> squeeze = r.launches.get(r.launches.size() - 3).args();
        assertEquals(squeeze.subList(4, 7), List.of(0L, 16, 1), "MAX: every channel in order, k ignored");

        Work noise = new Work();
        k.noiseSilhouette(0x1000, x, new Op.NoiseSilhouette(-7), noise, 0x2000, null);
        assertEquals(r.launches.getLast().args().subList(1, 4), List.of(3, 63, -7L));
        k.logitBlend(0x1000, 0x1100, 0x2000, 30, 3f, null);
        assertEquals(r.launches.getLast().args().get(3), RegionOpKernels.gate(3f));

        assertEquals(kernels(r), List.of(RegionOpKernels.PACT, RegionOpKernels.DRQ_MEANS, RegionOpKernels.DRQ,
                RegionOpKernels.SCORES, RegionOpKernels.TOP, RegionOpKernels.SQUEEZE, RegionOpKernels.RANGE, RegionOpKernels.RESCALE,
                RegionOpKernels.SQUEEZE, RegionOpKernels.RANGE, RegionOpKernels.RESCALE, RegionOpKernels.HASH, RegionOpKernels.NOISE, RegionOpKernels.BLEND));
        LowBitKernelsTest.checkLaunches(r, 14);
    }

    /** CpuOps.logitBlend's gate at the initial w = 3: sigmoid(3) = 0.9525741268224334 rounded to float. */
    @Test
    public void gateIsTheSigmoidRoundedOnce() {
        assertEquals(RegionOpKernels.gate(3f), (float) 0.9525741268224334);
        assertEquals(RegionOpKernels.gate(0f), 0.5f);
    }

    @Test
    public void invalidInputIsRefusedWithItsName() {
        LowBitKernelsTest.Recorder r = new LowBitKernelsTest.Recorder();
        RegionOpKernels k = new RegionOpKernels(r, r::resize);
        Op.RegionQuantize op = new Op.RegionQuantize(RegionPolicy.parse("2:50,4:50"), List.of(1f, 2f), Op.Interpolate.Mode.NEAREST,
                Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD, -1);
        var table = new RegionOpKernels.RegionTable(1, 2, 3);
        message(() -> k.regionQuantize(1, Shape.of(2, 3, 4, 4), 1, Shape.of(3, 1, 4, 4), op, table, new Work(), 1, null), "silhouette [3, 1, 4, 4]");
        message(() -> k.regionQuantize(1, Shape.of(2, 3, 4, 4), 1, Shape.of(2, 2, 4, 4), op, table, new Work(), 1, null), "B x 1 x H x W");
        message(() -> k.regionQuantize(1, Shape.of(2, 3, 4, 4), 1, Shape.of(2, 1, 4, 4), op, table, new Work(), 0, null), "output");
        message(() -> k.channelSqueeze(1, Shape.of(1, 4, 3, 3), new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN, 5), new Work(), 1, null),
                "k must be at most 4");
        message(() -> k.drqQuantize(1, Shape.of(4, 16), new Op.DrqQuantize(2, 0f, 4, 8, 1f, 1f, -1), new Work(), 1, null), "N x C x H x W");
        message(() -> k.logitBlend(1, 0, 1, 10, 3f, null), "auxiliary logits");
        assertEquals(r.launches.size(), 0, "nothing launched for refused input");
    }

    private static void message(Runnable call, String expected) {
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, call::run);
        assertTrue(e.getMessage().contains(expected), "'" + e.getMessage() + "' should name " + expected);
    }

    @Test
    public void backendSupportAnswersForTheRegionOps() {
        Shape x = Shape.of(2, 8, 14, 14), s = Shape.of(2, 1, 28, 28);
        Op.RegionQuantize region = new Op.RegionQuantize(RegionPolicy.parse("2:50,3:30,4:20"), List.of(1f, 2f, 3f), Op.Interpolate.Mode.NEAREST,
                Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD, -1);
        for (Op op : List.<Op>of(new Op.PactQuantize(4, 1f), new Op.DrqQuantize(2, 0f, 4, 8, 1f, 1f, -1), new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MAX, 1),
                new Op.NoiseSilhouette(0))) {
            assertEquals(BuiltinKernels.supports(op, List.of(x)), Optional.empty(), op.toString());
        }
        assertEquals(BuiltinKernels.supports(region, List.of(x, s)), Optional.empty());
        assertEquals(BuiltinKernels.supports(new Op.LogitBlend(), List.of(Shape.of(4, 10), Shape.of(4, 10))), Optional.empty());
        assertEquals(BuiltinKernels.supports(region, List.of(x, Shape.of(3, 1, 28, 28))).orElseThrow().limit(), BuiltinKernels.Limit.SHAPE);
        assertEquals(BuiltinKernels.supports(new Op.LogitBlend(), List.of(Shape.of(4, 10), Shape.of(4, 11))).orElseThrow().limit(), BuiltinKernels.Limit.SHAPE);
        assertEquals(BuiltinKernels.supports(new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD, 9), List.of(x)).orElseThrow().limit(),
                BuiltinKernels.Limit.SHAPE);
    }
}
