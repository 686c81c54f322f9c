package dev.silhouette.backend.cuda;

import dev.silhouette.tensor.Window;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** The benchmark's host side (options, layer lists, report files); its timing needs a GPU and has never run. */
public class LowBitBenchmarkTest {
    @Test
    public void optionsAndRefusals() {
        LowBitBenchmark.Settings s = LowBitBenchmark.parse(new String[] {"--batches", "1, 8", "--runs", "5", "--network", "resnet50", "--out", "x"});
        assertEquals(s.batches(), List.of(1, 8));
        assertEquals(s.runs(), 5);
        assertEquals(s.layers(), LowBitBenchmark.RESNET50);
        LowBitBenchmark.Settings defaults = LowBitBenchmark.parse(new String[0]);
        assertEquals(defaults.batches(), List.of(1, 32, 128));
        assertEquals(defaults.layers().size(), LowBitBenchmark.RESNET18.size() + LowBitBenchmark.RESNET50.size());
        assertTrue(expectThrows(IllegalArgumentException.class, () -> LowBitBenchmark.parse(new String[] {"--network", "vgg"})).getMessage().contains("vgg"));
        assertTrue(expectThrows(IllegalArgumentException.class, () -> LowBitBenchmark.parse(new String[] {"--runs", "0"})).getMessage().contains("--runs"));
        assertTrue(expectThrows(IllegalArgumentException.class, () -> LowBitBenchmark.parse(new String[] {"--batches"})).getMessage().contains("needs a value"));
        assertTrue(expectThrows(IllegalArgumentException.class, () -> LowBitBenchmark.parse(new String[] {"--fast"})).getMessage().contains("unknown option --fast"));
    }

    /** The layers are ResNet's: each stage's feature map follows from the previous stage's stride. */
    @Test
    public void layerListsChainLikeResNet() {
        for (List<LowBitBenchmark.Layer> net : List.of(LowBitBenchmark.RESNET18, LowBitBenchmark.RESNET50)) {
            for (LowBitBenchmark.Layer l : net) {
                Window w = l.window();
                assertTrue(w.outH(l.h()) >= 7 && w.outW(l.w()) >= 7, l + " output");
                assertTrue(List.of(224, 56, 28, 14, 7).contains(l.h()), l + " input size");
                assertTrue(l.supported(1), l + " is supported by the packed kernel");
            }
        }
        LowBitBenchmark.Layer layer1 = LowBitBenchmark.RESNET18.get(1);
        assertEquals(layer1.macs(1), 64L * 56 * 56 * 64 * 9);
        assertEquals(LowBitBenchmark.RESNET18.getFirst().window().outH(224), 112);
    }

    @Test
    public void reportsNameTheDeviceAndEveryRow() throws Exception {
        LowBitBenchmark.Layer l = LowBitBenchmark.RESNET18.get(1);
        List<LowBitBenchmark.Row> rows = List.of(new LowBitBenchmark.Row(l, 32, "w4a4", 123.4, 120.0, 1.5, 300.0, 1000),
                new LowBitBenchmark.Row(l, 32, "cudnn-fp32", 456.7, 450.0, 2.5, 900.0, 2000));
        Path dir = Files.createTempDirectory("lowbit-bench");
        LowBitBenchmark.write(dir, "NVIDIA Test GPU", LowBitBenchmark.parse(new String[0]), rows);
        String md = Files.readString(dir.resolve("lowbit-kernels-nvidia-test-gpu.md"));
        assertTrue(md.contains("Device: NVIDIA Test GPU"), md);
        assertTrue(md.contains("| resnet18 | layer1.conv | 32 | w4a4 | 123.4 | 120.0 | 1.50 | 300.0 | 1000 |"), md);
        String json = Files.readString(dir.resolve("lowbit-kernels-nvidia-test-gpu.json"));
        assertTrue(json.contains("\"device\": \"NVIDIA Test GPU\""), json);
        assertTrue(json.contains("\"c\": 64, \"h\": 56, \"w\": 56, \"o\": 64, \"k\": 3, \"stride\": 1, \"pad\": 1, \"batch\": 32, \"variant\": \"cudnn-fp32\""), json);
    }
}
