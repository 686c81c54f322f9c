package dev.silhouette.onnx;

import dev.silhouette.onnx.proto.Onnx.NodeProto;

/** Maps one ONNX node onto IR nodes, or folds it into a constant where its inputs are constants. */
@FunctionalInterface
interface OnnxOpConverter {
    /** @param out the node's first output, the ONNX value the converter defines */
    void convert(ImportContext ctx, NodeProto n, Attributes a, String out);
}
