package dev.silhouette.onnx;

import dev.silhouette.onnx.proto.Onnx.AttributeProto;
import dev.silhouette.onnx.proto.Onnx.NodeProto;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Typed access to a node's attributes with ONNX defaults; a wrong type is an error naming the node. */
final class Attributes {
    private final String node;
    private final Map<String, AttributeProto> byName = new HashMap<>();

    Attributes(NodeProto n, String nodeDescription) {
        this.node = nodeDescription;
        for (AttributeProto a : n.getAttributeList()) byName.put(a.getName(), a);
    }

    boolean has(String name) {
        return byName.containsKey(name);
    }

    long getInt(String name, long fallback) {
        AttributeProto a = byName.get(name);
        if (a == null) return fallback;
        if (a.hasType() && a.getType() != AttributeProto.AttributeType.INT) throw wrongType(a, "an int");
        return a.getI();
    }

    float getFloat(String name, float fallback) {
        AttributeProto a = byName.get(name);
        if (a == null) return fallback;
        if (a.hasType() && a.getType() != AttributeProto.AttributeType.FLOAT) throw wrongType(a, "a float");
        return a.getF();
    }

    String getString(String name, String fallback) {
        AttributeProto a = byName.get(name);
        if (a == null) return fallback;
        if (a.hasType() && a.getType() != AttributeProto.AttributeType.STRING) throw wrongType(a, "a string");
        return a.getS().toStringUtf8();
    }

    /** The ints, or null when absent. */
    long[] getInts(String name) {
        AttributeProto a = byName.get(name);
        if (a == null) return null;
        if (a.hasType() && a.getType() != AttributeProto.AttributeType.INTS) throw wrongType(a, "a list of ints");
        List<Long> l = a.getIntsList();
        long[] v = new long[l.size()];
        for (int i = 0; i < v.length; i++) v[i] = l.get(i);
        return v;
    }

    /** The floats, or null when absent. */
    float[] getFloats(String name) {
        AttributeProto a = byName.get(name);
        if (a == null) return null;
        if (a.hasType() && a.getType() != AttributeProto.AttributeType.FLOATS) throw wrongType(a, "a list of floats");
        float[] v = new float[a.getFloatsCount()];
        for (int i = 0; i < v.length; i++) v[i] = a.getFloats(i);
        return v;
    }

    AttributeProto get(String name) {
        return byName.get(name);
    }

    private OnnxException wrongType(AttributeProto a, String expected) {
        return new OnnxException(node + ": attribute '" + a.getName() + "' should be " + expected + ", it is " + a.getType());
    }
}
