package dev.silhouette.onnx;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.google.protobuf.ByteString;
import dev.silhouette.Tolerances;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.onnx.proto.Onnx.TensorProto;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/** The file format side: files another writer produced, every tensor encoding, the silhouette naming. */
public class OnnxFormatTest {

    /**
     * ONNX Runtime serializes the graph it loaded (after its basic optimizations: constant folding,
     * Conv+BatchNorm fusion) with its own protobuf code; Silhouette reads that file and computes what ONNX
     * Runtime computes on the original.
     */
    @Test
    public void readsModelsWrittenByOnnxRuntime() throws IOException, OrtException {
        Path dir = Files.createTempDirectory("onnx-ort-written");
        try {
            Path original = dir.resolve("mobile.onnx"), rewritten = dir.resolve("mobile.ort.onnx");
            Graph g = OnnxModelsPeerTest.randomized(OnnxModelsPeerTest.mobileNetStyle(21), 22);
            OnnxExporter.write(g, 17, original, false);
            try (OrtSession.SessionOptions o = OrtPeer.options(OrtSession.SessionOptions.OptLevel.BASIC_OPT)) {
                o.setOptimizedModelFilePath(rewritten.toString());
                OrtEnvironment.getEnvironment().createSession(original.toString(), o).close();
            }
            assertTrue(Files.size(rewritten) > 0);
            OnnxImporter.Imported imported = OnnxImporter.read(rewritten);
            assertTrue(!java.util.Arrays.equals(Files.readAllBytes(original), Files.readAllBytes(rewritten)), "ONNX Runtime wrote its own file");
            long batchNorms = imported.graph().nodes().stream().filter(n -> n.op() instanceof Op.BatchNorm).count();
            assertEquals(batchNorms, 0L, "ONNX Runtime fused every BatchNorm into its convolution");
            Map<String, Tensor> in = Map.of("image", Tensor.uniform(Shape.of(3, 3, 32, 32), -1, 1, 4));
            Map<String, Tensor> expected;
            try (OrtPeer ort = OrtPeer.open(original)) {
                expected = ort.run(in);
            }
            Map<String, Tensor> actual = new CpuBackend().run(imported.graph(), in);
            OnnxOpsPeerTest.assertClose(actual.get("probabilities"), expected.get("probabilities"), Tolerances.NETWORK_RELATIVE, "ORT-written model");
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) Files.delete(p);
            }
            Files.delete(dir);
        }
    }

    @Test
    public void decodesEveryTensorEncoding() {
        float[] values = {1.5f, -2.25f, 0f, 65504f};
        // float16 and bfloat16 raw and typed (bit patterns in int32_data), double raw and typed, int types.
        ByteBuffer half = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN), bf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN),
                dbl = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        TensorProto.Builder halfTyped = TensorProto.newBuilder().setDataType(TensorProto.DataType.FLOAT16_VALUE).addDims(4);
        TensorProto.Builder dblTyped = TensorProto.newBuilder().setDataType(TensorProto.DataType.DOUBLE_VALUE).addDims(4);
        for (float v : values) {
            half.putShort(Float.floatToFloat16(v));
            halfTyped.addInt32Data(Float.floatToFloat16(v) & 0xFFFF);
            bf.putShort((short) (Float.floatToIntBits(v) >>> 16));
            dbl.putDouble(v);
            dblTyped.addDoubleData(v);
        }
        float[] bfExpected = {1.5f, -2.25f, 0f, Float.intBitsToFloat(Float.floatToIntBits(65504f) & 0xFFFF0000)};
        assertEquals(decode(TensorProto.DataType.FLOAT16, half).floats(), values);
        assertEquals(OnnxTensors.decode(halfTyped.build(), null).floats(), values);
        assertEquals(decode(TensorProto.DataType.BFLOAT16, bf).floats(), bfExpected);
        assertEquals(decode(TensorProto.DataType.DOUBLE, dbl).floats(), values);
        assertEquals(OnnxTensors.decode(dblTyped.build(), null).floats(), values);
        ByteBuffer i32 = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(-3).putInt(7).putInt(Integer.MAX_VALUE).putInt(0);
        assertEquals(decode(TensorProto.DataType.INT32, i32).ints(), new long[] {-3, 7, Integer.MAX_VALUE, 0});
        ByteBuffer u8 = ByteBuffer.allocate(4).put((byte) 255).put((byte) 0).put((byte) 128).put((byte) 1);
        assertEquals(decode(TensorProto.DataType.UINT8, u8).ints(), new long[] {255, 0, 128, 1});
        TensorProto i64 = TensorProto.newBuilder().setDataType(TensorProto.DataType.INT64_VALUE).addDims(2).addDims(1).addInt64Data(-1).addInt64Data(1L << 40).build();
        Constant c = OnnxTensors.decode(i64, null);
        assertEquals(c.ints(), new long[] {-1, 1L << 40});
        assertEquals(c.dims(), new long[] {2, 1});
        TensorProto strings = TensorProto.newBuilder().setName("s").setDataType(TensorProto.DataType.STRING_VALUE).addDims(1).addStringData(ByteString.copyFromUtf8("x")).build();
        assertTrue(expectMessage(() -> OnnxTensors.decode(strings, null)).contains("STRING"));
    }

    private static Constant decode(TensorProto.DataType type, ByteBuffer bytes) {
        return OnnxTensors.decode(TensorProto.newBuilder().setDataType(type.getNumber()).addDims(4).setRawData(ByteString.copyFrom(bytes.array())).build(), null);
    }

    private static String expectMessage(Runnable r) {
        try {
            r.run();
        } catch (OnnxException e) {
            return e.getMessage();
        }
        throw new AssertionError("expected an OnnxException");
    }

    /** A branch not shaped like the usual one is marked when the user names it; structure alone finds the usual one. */
    @Test
    public void silhouetteBranchIsRecognisedOrNamed() {
        Graph fm = Models.build("fmnist-resnet", Models.defaults("fmnist-resnet"));
        byte[] bytes = OnnxExporter.toModel(fm, 13, "fm").toByteArray();
        OnnxImporter.Imported found = OnnxImporter.read(bytes, null, "fm", OnnxImporter.Options.defaults());
        assertEquals(found.silhouette(), Models.SILHOUETTE);

        // Same model, its ONNX values renamed the way another exporter would: recognition still finds it and renames it back.
        var model = OnnxExporter.toModel(fm, 13, "fm").toBuilder();
        var g = model.getGraphBuilder();
        for (int i = 0; i < g.getNodeCount(); i++) {
            var n = g.getNodeBuilder(i);
            for (int k = 0; k < n.getInputCount(); k++) if (n.getInput(k).equals(Models.SILHOUETTE)) n.setInput(k, "/aux/Sigmoid_output_0");
            for (int k = 0; k < n.getOutputCount(); k++) if (n.getOutput(k).equals(Models.SILHOUETTE)) n.setOutput(k, "/aux/Sigmoid_output_0");
        }
        for (int i = 0; i < g.getOutputCount(); i++) {
            if (g.getOutput(i).getName().equals(Models.SILHOUETTE)) g.setOutput(i, g.getOutput(i).toBuilder().setName("/aux/Sigmoid_output_0"));
        }
        OnnxImporter.Imported renamed = OnnxImporter.read(model.build().toByteArray(), null, "renamed", OnnxImporter.Options.defaults());
        assertEquals(renamed.silhouette(), "/aux/Sigmoid_output_0");
        assertTrue(renamed.graph().outputs().contains(Models.SILHOUETTE));
        assertEquals(renamed.outputNames().get("/aux/Sigmoid_output_0"), Models.SILHOUETTE);
        assertEquals(renamed.graph().node(Models.SILHOUETTE).op(), new Op.Sigmoid());

        // A model without the branch: nothing marked unless named; naming a computed N x 1 x H x W value marks it.
        byte[] plain = new TestModel(13).input("x", 1, 3, 8, 8).weights("w", Tensor.uniform(Shape.of(1, 3, 3, 3), -1, 1, 1))
                .node("Conv", List.of("x", "w"), "mask_logits", TestModel.ints("pads", 1, 1, 1, 1)).node("Relu", List.of("mask_logits"), "mask")
                .output("mask").bytes();
        assertEquals(OnnxImporter.read(plain, null, "plain", OnnxImporter.Options.defaults()).silhouette(), null);
        OnnxImporter.Imported named = OnnxImporter.read(plain, null, "plain", new OnnxImporter.Options("mask"));
        assertEquals(named.silhouette(), "mask");
        assertEquals(named.graph().outputs(), List.of(Models.SILHOUETTE));
        assertTrue(expectMessage(() -> OnnxImporter.read(plain, null, "plain", new OnnxImporter.Options("nope"))).contains("'nope'"));
    }
}
