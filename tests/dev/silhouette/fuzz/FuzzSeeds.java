package dev.silhouette.fuzz;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.io.Idx;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.onnx.OnnxExporter;
import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

/**
 * Writes the seed corpora of tests/fuzz/ (run once; the files are committed): each one written by the
 * product's own writers or cut from the real files it ships (the bundled model, the bundled Fashion-MNIST
 * images and labels), kept small so that mutations stay fast.
 * <pre>java -cp target/classes:target/test-classes:$(cat cp.txt) dev.silhouette.fuzz.FuzzSeeds tests/fuzz</pre>
 */
public final class FuzzSeeds {
    private FuzzSeeds() {}

    public static void main(String[] args) throws IOException {
        Path root = Path.of(args.length > 0 ? args[0] : "tests/fuzz");
        onnx(root);
        safetensors(root.resolve("SafeTensorsFuzz"));
        idx(root.resolve("IdxFuzz"));
        plans(root.resolve("QuantPlanFuzz"));
        policies(root.resolve("RegionPolicyFuzz"));
        metadata(root.resolve("ModelMetadataFuzz"));
    }

    /** A small network of every exported op kind: a residual block, the silhouette branch, pooling, a classifier. */
    static Graph tinyNetwork() {
        GraphBuilder b = new GraphBuilder(3);
        String x = b.input("input", 2, 8, 8);
        x = b.relu("relu0", b.batchNorm("bn0", b.conv("conv0", x, 4, Window.square(3, 1, 1), 1, false)));
        String y = b.batchNorm("bn1", b.conv("conv1", x, 4, Window.square(3, 1, 1), 2, false));
        x = b.relu("relu1", b.add("add1", new Op.Add(), y, x));
        String s = b.batchNorm(Models.SILHOUETTE + ".bn", b.conv(Models.SILHOUETTE + ".conv", x, 1, Window.square(1, 1, 0), 1, true));
        b.add(Models.SILHOUETTE, new Op.Sigmoid(), s);
        x = b.add("avgpool", new Op.GlobalAvgPool(), x);
        x = b.add("flatten", new Op.Flatten(), x);
        b.output(b.linear("fc", x, 3));
        b.output(Models.SILHOUETTE);
        return b.build();
    }

    private static void onnx(Path root) throws IOException {
        Graph g = tinyNetwork();
        write(root.resolve("OnnxModelFuzz/tiny-opset17.onnx"), OnnxExporter.toModel(g, 17, "tiny").toByteArray());
        write(root.resolve("OnnxModelFuzz/tiny-opset13.onnx"), OnnxExporter.toModel(g, 13, "tiny").toByteArray());
        for (var m : dev.silhouette.onnx.OnnxFuzzSeeds.opModels().entrySet()) write(root.resolve("OnnxModelFuzz/op-" + m.getKey() + ".onnx"), m.getValue());
        Path dir = Files.createTempDirectory("silhouette-seeds");
        Path model = dir.resolve("model.onnx");
        OnnxExporter.write(g, 17, model, true);
        byte[] data = Files.readAllBytes(dir.resolve(OnnxExternalDataFuzz.DATA)), bytes = Files.readAllBytes(model);
        if (data.length > 0xffff) throw new IllegalStateException("external data of " + data.length + " bytes does not fit the 2-byte length");
        ByteBuffer seed = ByteBuffer.allocate(2 + data.length + bytes.length);
        seed.put((byte) data.length).put((byte) (data.length >> 8)).put(data).put(bytes);
        write(root.resolve("OnnxExternalDataFuzz/tiny-external.bin"), seed.array());
    }

    private static void safetensors(Path dir) throws IOException {
        Path bundled = Files.createTempFile("bundled", ".safetensors");
        try (InputStream in = ModelLoader.class.getResourceAsStream("/dev/silhouette/models/fmnist-resnet.safetensors")) {
            Files.copy(in, bundled, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        Map<String, Tensor> all = SafeTensors.read(bundled);
        Map<String, Tensor> some = new LinkedHashMap<>();
        for (String name : List.of("bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "fc.bias")) some.put(name, all.get(name));
        Path f32 = dir.resolve("bundled-excerpt-f32.safetensors"), f16 = dir.resolve("bundled-excerpt-f16.safetensors");
        Files.createDirectories(dir);
        SafeTensors.write(f32, some, Map.of(ModelLoader.META_MODEL, "fmnist-resnet"));
        SafeTensors.write(f16, Map.of("w", Tensor.uniform(dev.silhouette.tensor.Shape.of(2, 3), -1, 1, 1)), Map.of(), SafeTensors.DType.F16);
        Files.delete(bundled);
    }

    private static void idx(Path dir) throws IOException {
        byte[] images = gunzip("train-first500-images-idx3-ubyte.gz"), labels = gunzip("train-first500-labels-idx1-ubyte.gz");
        byte[] fourImages = recount(images, 3, 4), fourLabels = recount(labels, 1, 4);
        write(dir.resolve("images-plain.bin"), prefix(1, fourImages));
        write(dir.resolve("images-gzip.bin"), prefix(5, fourImages));
        write(dir.resolve("images-real-gzip.bin"), prefix(1, IdxFuzz.gzip(fourImages)));
        write(dir.resolve("labels-plain.bin"), prefix(2, fourLabels));
        write(dir.resolve("labels-gzip.bin"), prefix(6, fourLabels));
        ByteBuffer doubles = ByteBuffer.allocate(4 + 8 + 48).putInt(0x00000E02).putInt(2).putInt(3);
        for (int i = 0; i < 6; i++) doubles.putDouble(i - 2.5);
        write(dir.resolve("doubles-plain.bin"), prefix(0, doubles.array()));
        Idx.read(new java.io.ByteArrayInputStream(fourImages), "check");   // the cut files are valid IDX
    }

    private static void plans(Path dir) throws IOException {
        Graph g = QuantPlanFuzz.MODEL;
        Plans.ClipLevels clips = (value, bits) -> 1.5f + bits / 8f;
        RegionPolicy policy = RegionPolicy.parse("2:50,3:30,4:20");
        Map<String, Float> thresholds = new LinkedHashMap<>();
        for (String in : Plans.receivingInputs(g)) thresholds.put(in, 0.25f);
        var learned = new QuantPlan.SilhouetteSource.Learned();
        List<QuantPlan> plans = List.of(
                Plans.of(g, "bundled", "W4A4", learned, new Plans.Receiving.Uniform(4), 8, clips),
                Plans.of(g, "bundled", "region shared", learned,
                        new Plans.Receiving.Region(policy, false, 4, Op.Interpolate.Mode.NEAREST, Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD), 8, clips),
                Plans.of(g, "bundled", "region per-region", new QuantPlan.SilhouetteSource.Squeeze("layer1.0.relu", Op.ChannelSqueeze.Squeeze.MEAN, 1),
                        new Plans.Receiving.Region(policy, true, 32, Op.Interpolate.Mode.BILINEAR, Op.RegionQuantize.MaskOrder.THRESHOLD_THEN_RESIZE), 32, clips),
                Plans.of(g, "bundled", "DRQ 4/2", new QuantPlan.SilhouetteSource.Noise("layer1.0.relu", 7), new Plans.Receiving.Drq(2, 4, 2, thresholds), 8, clips));
        for (QuantPlan p : plans) write(dir.resolve(p.label().replace(' ', '-').replace('/', '-') + ".json"), QuantPlanJson.write(p).getBytes(StandardCharsets.UTF_8));
    }

    private static void policies(Path dir) throws IOException {
        String[] seeds = {"2:50,3:30,4:20", "2bit 50%, 3bit 30%, 4bit 20%", "4:100", "1:10,2:20,3:30,8:40"};
        for (int i = 0; i < seeds.length; i++) write(dir.resolve("policy-" + i + ".txt"), seeds[i].getBytes(StandardCharsets.UTF_8));
    }

    private static void metadata(Path dir) throws IOException {
        Path bundled = Files.createTempFile("bundled", ".safetensors");
        try (InputStream in = ModelLoader.class.getResourceAsStream("/dev/silhouette/models/fmnist-resnet.safetensors")) {
            Files.copy(in, bundled, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        StringBuilder real = new StringBuilder();
        for (var e : SafeTensors.readMetadata(bundled).entrySet()) {
            if (e.getKey().startsWith("silhouette.")) real.append(e.getKey()).append('=').append(e.getValue()).append('\n');
        }
        Files.delete(bundled);
        write(dir.resolve("bundled.txt"), real.toString().getBytes(StandardCharsets.UTF_8));
        write(dir.resolve("attention.txt"), (real + ModelLoader.META_BRANCH + "=attention-max\n" + ModelLoader.META_SILHOUETTE_AFTER + "=layer2\n")
                .getBytes(StandardCharsets.UTF_8));
        write(dir.resolve("dropped.txt"), (real + ModelLoader.META_CLASSES + "=10\n" + ModelLoader.META_INPUT_SIZE + "=32\n-fc.bias\n")
                .getBytes(StandardCharsets.UTF_8));
    }

    private static byte[] gunzip(String resource) throws IOException {
        try (InputStream in = new GZIPInputStream(FuzzSeeds.class.getResourceAsStream("/dev/silhouette/data/fashion-mnist/" + resource))) {
            return in.readAllBytes();
        }
    }

    /** The first {@code n} items of an IDX file of {@code rank} dimensions: the header with the count set, and their bytes. */
    private static byte[] recount(byte[] idx, int rank, int n) {
        ByteBuffer b = ByteBuffer.wrap(idx);
        int itemBytes = 1;
        for (int i = 1; i < rank; i++) itemBytes *= b.getInt(4 + 4 * i);
        byte[] out = Arrays.copyOf(idx, 4 + 4 * rank + n * itemBytes);
        ByteBuffer.wrap(out).putInt(4, n);
        return out;
    }

    private static byte[] prefix(int mode, byte[] bytes) {
        byte[] out = new byte[bytes.length + 1];
        out[0] = (byte) mode;
        System.arraycopy(bytes, 0, out, 1, bytes.length);
        return out;
    }

    private static void write(Path file, byte[] bytes) throws IOException {
        Files.createDirectories(file.getParent());
        Files.write(file, bytes);
    }
}
