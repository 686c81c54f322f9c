package dev.silhouette.onnx;

import dev.silhouette.backend.cuda.BuiltinKernels;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;
import org.testng.annotations.Test;

import java.util.List;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/** The ops added for ONNX import have no CUDA kernels yet: the support check says so by op name. */
public class CudaRefusesImportedOpsTest {
    @Test
    public void builtinKernelsReportNotYet() {
        Shape x = Shape.of(2, 3, 4, 4);
        List<Op> ops = List.of(new Op.Elementwise(Op.Arithmetic.MUL), new Op.ElementwiseConstant(Op.Arithmetic.ADD, Shape.of(3, 1, 1), false),
                new Op.HardSigmoid(0.2f, 0.5f), new Op.HardSwish(), new Op.Reshape(Shape.of(48)), new Op.Pad(1, 0, 0, 1, 0f));
        for (Op op : ops) {
            var why = BuiltinKernels.supports(op, op.arity() == 2 ? List.of(x, x) : List.of(x));
            assertTrue(why.isPresent(), op.toString());
            assertEquals(why.get().limit(), BuiltinKernels.Limit.NOT_YET);
            assertTrue(why.get().detail().contains(op.getClass().getSimpleName() + " not supported on cuda yet"), why.get().detail());
        }
    }
}
