package dev.silhouette.onnx;

import com.google.protobuf.ByteString;
import dev.silhouette.onnx.proto.Onnx.AttributeProto;
import dev.silhouette.onnx.proto.Onnx.GraphProto;
import dev.silhouette.onnx.proto.Onnx.ModelProto;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.onnx.proto.Onnx.OperatorSetIdProto;
import dev.silhouette.onnx.proto.Onnx.TensorProto;
import dev.silhouette.onnx.proto.Onnx.TensorShapeProto;
import dev.silhouette.onnx.proto.Onnx.TypeProto;
import dev.silhouette.onnx.proto.Onnx.ValueInfoProto;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Writes small ONNX models op by op for the tests, independently of the product's exporter. */
final class TestModel {
    private final int opset;
    private final GraphProto.Builder g = GraphProto.newBuilder().setName("test");
    final Map<String, Shape> inputs = new LinkedHashMap<>();

    TestModel(int opset) {
        this.opset = opset;
    }

    /** A float input; the first dim is written as the symbolic batch "N" when {@code symbolicBatch}. */
    TestModel input(String name, boolean symbolicBatch, int... dims) {
        TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
        for (int i = 0; i < dims.length; i++) {
            s.addDim(i == 0 && symbolicBatch ? TensorShapeProto.Dimension.newBuilder().setDimParam("N")
                    : TensorShapeProto.Dimension.newBuilder().setDimValue(dims[i]));
        }
        g.addInput(ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
                TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE).setShape(s))));
        try {
            inputs.put(name, Shape.of(dims));
        } catch (IllegalArgumentException e) {
            // Declared on purpose beyond what a tensor can hold (bad-input tests); nothing to feed.
        }
        return this;
    }

    TestModel input(String name, int... dims) {
        return input(name, false, dims);
    }

    TestModel weights(String name, Tensor t) {
        g.addInitializer(OnnxTensors.encode(name, t));
        return this;
    }

    TestModel typedFloats(String name, long[] dims, float... values) {
        g.addInitializer(OnnxTensors.encodeFloats(name, dims, values));
        return this;
    }

    TestModel int64s(String name, long... values) {
        g.addInitializer(OnnxTensors.encodeInts(name, values));
        return this;
    }

    /** A rank-0 int64 initializer. */
    TestModel scalar(String name, long value) {
        g.addInitializer(TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.INT64_VALUE).addInt64Data(value));
        return this;
    }

    TestModel initializer(TensorProto t) {
        g.addInitializer(t);
        return this;
    }

    TestModel node(String op, List<String> in, List<String> out, AttributeProto... attrs) {
        g.addNode(NodeProto.newBuilder().setOpType(op).setName(out.getFirst() + "_node").addAllInput(in).addAllOutput(out).addAllAttribute(List.of(attrs)));
        return this;
    }

    TestModel node(String op, List<String> in, String out, AttributeProto... attrs) {
        return node(op, in, List.of(out), attrs);
    }

    TestModel output(String name) {
        g.addOutput(ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
                TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE))));
        return this;
    }

    ModelProto model() {
        return ModelProto.newBuilder().setIrVersion(8).setProducerName("silhouette-tests")
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset)).setGraph(g).build();
    }

    byte[] bytes() {
        return model().toByteArray();
    }

    static AttributeProto i(String name, long v) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(v).build();
    }

    static AttributeProto f(String name, float v) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOAT).setF(v).build();
    }

    static AttributeProto s(String name, String v) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.STRING).setS(ByteString.copyFromUtf8(v)).build();
    }

    static AttributeProto ints(String name, long... v) {
        AttributeProto.Builder b = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INTS);
        for (long x : v) b.addInts(x);
        return b.build();
    }

    static AttributeProto floats(String name, float... v) {
        AttributeProto.Builder b = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOATS);
        for (float x : v) b.addFloats(x);
        return b.build();
    }

    static AttributeProto tensor(String name, TensorProto t) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.TENSOR).setT(t).build();
    }
}
