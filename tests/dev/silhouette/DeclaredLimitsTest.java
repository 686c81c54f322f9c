package dev.silhouette;

import com.google.protobuf.ByteString;
import dev.silhouette.graph.GraphException;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.io.Idx;
import dev.silhouette.io.IdxException;
import dev.silhouette.io.Limit;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.io.SafeTensorsException;
import dev.silhouette.onnx.OnnxException;
import dev.silhouette.onnx.OnnxImporter;
import dev.silhouette.onnx.proto.Onnx.GraphProto;
import dev.silhouette.onnx.proto.Onnx.ModelProto;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.onnx.proto.Onnx.OperatorSetIdProto;
import dev.silhouette.onnx.proto.Onnx.TensorProto;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.AfterClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/**
 * Each {@link Limit} refuses a tiny input that declares more than it allows, with the parser's typed
 * error naming the input and the limit, before anything the size of the declaration is allocated: the
 * bytes this thread allocates during the call are measured and must stay small (the declarations ask
 * for gigabytes to terabytes).
 */
public class DeclaredLimitsTest {
    /** What one refusal may allocate: parsing the small input itself, the exception and its message. */
    private static final long SMALL = 16L << 20;

    private final Path dir;

    public DeclaredLimitsTest() throws IOException {
        dir = Files.createTempDirectory("declared-limits");
    }

    @AfterClass(alwaysRun = true)
    public void clean() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) Files.delete(f);
        }
        Files.delete(dir);
    }

    /** A crafted input: the limit it exceeds, a name for the report, the call, the error type, what the message must name. */
    record Case(Limit limit, String name, Runnable call, Class<? extends IllegalArgumentException> error, long maxAllocated, String... mentions) {
        @Override
        public String toString() {
            return limit + ": " + name;
        }
    }

    private List<Case> cases() throws IOException {
        List<Case> c = new ArrayList<>();
        // The example: a 20-byte IDX file declaring 2^40 unsigned bytes.
        byte[] idx20 = idx(0x08, new int[] {1 << 20, 1 << 20}, 8);
        assertEquals(idx20.length, 20);
        c.add(new Case(Limit.TENSOR_BYTES, "20-byte IDX of 2^40 bytes", () -> readIdx(idx20, "idx-2^40"), IdxException.class, SMALL,
                "idx-2^40", "Limit.TENSOR_BYTES"));
        Path st = safetensors("elements", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],\"data_offsets\":[0,4]}}", 4);
        c.add(new Case(Limit.TENSOR_ELEMENTS, "safetensors of 2^40 floats", () -> SafeTensors.read(st), SafeTensorsException.class, SMALL,
                st.toString(), "Limit.TENSOR_ELEMENTS"));
        byte[] onnxElements = model(GraphProto.newBuilder().addInitializer(TensorProto.newBuilder().setName("w").setDataType(TensorProto.DataType.FLOAT_VALUE)
                .addDims(1 << 20).addDims(1 << 20).setRawData(ByteString.copyFrom(new byte[4]))));
        c.add(new Case(Limit.TENSOR_ELEMENTS, "ONNX initializer of 2^40 floats", () -> importOnnx(onnxElements, "init-2^40.onnx"), OnnxException.class, SMALL,
                "init-2^40.onnx", "tensor 'w'", "Limit.TENSOR_ELEMENTS"));
        Path rank = safetensors("rank", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4);
        c.add(new Case(Limit.RANK, "safetensors of rank 17", () -> SafeTensors.read(rank), SafeTensorsException.class, SMALL, rank.toString(), "Limit.RANK"));
        byte[] idxRank = idx(0x08, new int[] {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 1);
        c.add(new Case(Limit.RANK, "IDX of rank 20", () -> readIdx(idxRank, "idx-rank"), IdxException.class, SMALL, "idx-rank", "Limit.RANK"));
        Path sparseOnnx = sparse("huge.onnx", Limit.ONNX_FILE_BYTES.value() + 1);
        c.add(new Case(Limit.ONNX_FILE_BYTES, "2 GiB sparse ONNX file", () -> OnnxImporter.read(sparseOnnx), OnnxException.class, SMALL,
                sparseOnnx.toString(), "Limit.ONNX_FILE_BYTES"));
        // Empty nodes and initializers cost two bytes each: the file holds what it declares, so protobuf's
        // parse of it is allocated; the import's own structures are not.
        GraphProto.Builder nodes = GraphProto.newBuilder();
        for (int i = 0; i <= Limit.ONNX_NODES.value(); i++) nodes.addNode(NodeProto.getDefaultInstance());
        byte[] manyNodes = model(nodes);
        c.add(new Case(Limit.ONNX_NODES, "ONNX graph of 100,001 empty nodes", () -> importOnnx(manyNodes, "nodes.onnx"), OnnxException.class, 64L << 20,
                "nodes.onnx", "Limit.ONNX_NODES"));
        GraphProto.Builder inits = GraphProto.newBuilder().addNode(NodeProto.newBuilder().setOpType("Relu").addInput("x").addOutput("y"));
        for (int i = 0; i <= Limit.ONNX_INITIALIZERS.value(); i++) inits.addInitializer(TensorProto.getDefaultInstance());
        byte[] manyInits = model(inits);
        c.add(new Case(Limit.ONNX_INITIALIZERS, "ONNX graph of 100,001 empty initializers", () -> importOnnx(manyInits, "inits.onnx"), OnnxException.class,
                64L << 20, "inits.onnx", "Limit.ONNX_INITIALIZERS"));
        Path header = dir.resolve("header.safetensors");
        Files.write(header, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).array());
        c.add(new Case(Limit.SAFETENSORS_HEADER_BYTES, "16-byte safetensors declaring a 1 TiB header", () -> SafeTensors.read(header),
                SafeTensorsException.class, SMALL, header.toString(), "1099511627776", "Limit.SAFETENSORS_HEADER_BYTES"));
        byte[] wide = idx(0x08, new int[] {1, 1, 20_000}, 0);
        c.add(new Case(Limit.IMAGE_SIDE, "IDX images 20,000 pixels wide", () -> readImages(wide, "wide-images"), IdxException.class, SMALL,
                "wide-images", "1 x 20000", "Limit.IMAGE_SIDE"));
        c.add(new Case(Limit.IMAGE_SIDE, "model metadata input_size 20,000", () -> ModelLoader.fromContents("wide.safetensors",
                Map.of(ModelLoader.META_MODEL, "resnet50", ModelLoader.META_INPUT_SIZE, "20000"), Map.of()), IllegalArgumentException.class, SMALL,
                "wide.safetensors", ModelLoader.META_INPUT_SIZE, "Limit.IMAGE_SIDE"));
        c.add(new Case(Limit.MODEL_CLASSES, "model metadata of 10^9 classes", () -> ModelLoader.fromContents("classes.safetensors",
                Map.of(ModelLoader.META_MODEL, "resnet50", ModelLoader.META_CLASSES, "1000000000"), Map.of()), IllegalArgumentException.class, SMALL,
                "classes.safetensors", ModelLoader.META_CLASSES, "Limit.MODEL_CLASSES"));
        Path plan = sparse("plan.json", Limit.PLAN_BYTES.value() + 1);
        c.add(new Case(Limit.PLAN_BYTES, "64 MiB sparse plan file", () -> QuantPlanJson.load(plan), IllegalArgumentException.class, SMALL,
                plan.toString(), "Limit.PLAN_BYTES"));
        String policy = "1:1,".repeat(99) + "1:1";
        c.add(new Case(Limit.POLICY_CHARS, "region policy of 399 characters", () -> RegionPolicy.parse(policy), IllegalArgumentException.class, SMALL,
                "region policy", "399", "Limit.POLICY_CHARS"));
        return c;
    }

    @DataProvider
    public Object[][] oversized() throws IOException {
        return cases().stream().map(c -> new Object[] {c}).toArray(Object[][]::new);
    }

    @Test(dataProvider = "oversized")
    public void refusesBeforeAllocating(Case c) {
        expectThrows(c.error(), c.call()::run);   // once unmeasured, so class loading is not counted
        long before = allocated();
        IllegalArgumentException e = expectThrows(c.error(), c.call()::run);
        long used = allocated() - before;
        assertEquals(e.getClass(), c.error(), c + ": " + e);
        for (String m : c.mentions()) assertTrue(e.getMessage().contains(m), c + ": the message should name '" + m + "': " + e.getMessage());
        assertTrue(used < c.maxAllocated(), c + ": refusing allocated " + used + " bytes, more than " + c.maxAllocated());
    }

    /** Every limit has at least one crafted input above. */
    @Test
    public void everyLimitIsExercised() throws IOException {
        Set<Limit> covered = EnumSet.noneOf(Limit.class);
        for (Case c : cases()) covered.add(c.limit());
        assertEquals(covered, EnumSet.allOf(Limit.class));
    }

    /**
     * Within the metadata limit but inconsistent with the file: 90,000 classes would allocate ResNet-50's
     * 2048 x 90,000 classifier (737 MB) before the tensors were compared; the file's own 10-row
     * classifier refuses it first.
     */
    @Test
    public void classesAreCheckedAgainstTheClassifierBeforeBuilding() {
        Map<String, Tensor> tensors = Map.of("fc.weight", Tensor.zeros(10, 2048));
        long before = allocated();
        GraphException e = expectThrows(GraphException.class, () -> ModelLoader.fromContents("mismatch.safetensors",
                Map.of(ModelLoader.META_MODEL, "resnet50", ModelLoader.META_CLASSES, "90000"), tensors));
        long used = allocated() - before;
        assertTrue(e.getMessage().contains("mismatch.safetensors") && e.getMessage().contains("90000") && e.getMessage().contains("10 rows"), e.getMessage());
        assertTrue(used < SMALL, "refusing allocated " + used + " bytes");
    }

    private static long allocated() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    private static void readIdx(byte[] bytes, String source) {
        try {
            Idx.read(new ByteArrayInputStream(bytes), source);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static void readImages(byte[] bytes, String source) {
        try {
            Idx.readImages(new ByteArrayInputStream(bytes), source);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static void importOnnx(byte[] bytes, String source) {
        OnnxImporter.read(bytes, null, source, OnnxImporter.Options.defaults());
    }

    private static byte[] idx(int type, int[] dims, int dataBytes) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * dims.length + dataBytes).putInt(type << 8 | dims.length);
        for (int d : dims) b.putInt(d);
        return b.array();
    }

    private static byte[] model(GraphProto.Builder graph) {
        return ModelProto.newBuilder().setIrVersion(8).addOpsetImport(OperatorSetIdProto.newBuilder().setVersion(17))
                .setGraph(graph.addOutput(dev.silhouette.onnx.proto.Onnx.ValueInfoProto.newBuilder().setName("y"))).build().toByteArray();
    }

    private Path safetensors(String name, String header, int dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        Path f = dir.resolve(name + ".safetensors");
        Files.write(f, ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).put(json).array());
        return f;
    }

    /** A file of {@code size} bytes that occupies almost no disk. */
    private Path sparse(String name, long size) throws IOException {
        Path f = dir.resolve(name);
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.setLength(size);
        }
        return f;
    }
}
