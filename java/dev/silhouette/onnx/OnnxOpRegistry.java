package dev.silhouette.onnx;

import dev.silhouette.graph.Op;

import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;

import static java.util.Map.entry;

/**
 * The converter of every ONNX op (default domain) the importer maps, by op type, as ONNX Runtime registers
 * its kernels. This is the one list of supported ops: the importer refuses any other before converting.
 */
final class OnnxOpRegistry {
    private OnnxOpRegistry() {}

    static final Map<String, OnnxOpConverter> CONVERTERS = Map.ofEntries(
            entry("Constant", ConstantConverters::constant),
            entry("ConstantOfShape", ConstantConverters::constantOfShape),
            entry("Identity", ConstantConverters::identity),
            entry("Dropout", ConstantConverters::dropout),
            entry("Cast", ConstantConverters::cast),
            entry("Shape", ConstantConverters::shape),
            entry("Gather", ConstantConverters::gather),
            entry("Transpose", ConstantConverters::transpose),
            entry("Slice", ConstantConverters::slice),

            entry("Reshape", ReshapeConverters::reshape),
            entry("Flatten", ReshapeConverters::flatten),
            entry("Unsqueeze", ReshapeConverters::unsqueeze),
            entry("Squeeze", ReshapeConverters::squeeze),
            entry("Concat", ReshapeConverters::concat),

            entry("Add", ArithmeticConverters.of(Op.Arithmetic.ADD)),
            entry("Sub", ArithmeticConverters.of(Op.Arithmetic.SUB)),
            entry("Mul", ArithmeticConverters.of(Op.Arithmetic.MUL)),
            entry("Div", ArithmeticConverters.of(Op.Arithmetic.DIV)),

            entry("Relu", ActivationConverters::relu),
            entry("Sigmoid", ActivationConverters::sigmoid),
            entry("HardSigmoid", ActivationConverters::hardSigmoid),
            entry("HardSwish", ActivationConverters::hardSwish),
            entry("Clip", ActivationConverters::clip),
            entry("Softmax", ActivationConverters::softmax),

            entry("Conv", ConvPoolConverters::conv),
            entry("BatchNormalization", ConvPoolConverters::batchNorm),
            entry("MaxPool", ConvPoolConverters::maxPool),
            entry("AveragePool", ConvPoolConverters::averagePool),
            entry("GlobalAveragePool", ConvPoolConverters::globalAveragePool),
            entry("ReduceMean", ConvPoolConverters::reduceMean),

            entry("Gemm", LinearConverters::gemm),
            entry("MatMul", LinearConverters::matMul),

            entry("Resize", ResizePadConverters::resize),
            entry("Upsample", ResizePadConverters::resize),
            entry("Pad", ResizePadConverters::pad));

    /** The converter of a default-domain op type, or null where Silhouette does not map it. */
    static OnnxOpConverter converter(String opType) {
        return CONVERTERS.get(opType);
    }

    static SortedSet<String> supportedOps() {
        return new TreeSet<>(CONVERTERS.keySet());
    }
}
