package dev.silhouette.conformance;

import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.backend.cpu.LowBitConv;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Tensor;

import java.util.List;

/**
 * The CPU's fast kernels that the suite checks against the reference kernels ({@code Reference}): the
 * GEMM convolution and linear layer, and every formulation of the packed low-bit convolution. A caller
 * may substitute one (a test plants a fault this way) without touching the suite.
 */
public record CpuKernels(Convolution convolution, Linear linear, LowBit lowBit) {

    public interface Convolution {
        Tensor conv2d(Tensor x, Tensor weight, Tensor bias, Op.Conv2d op);
    }

    public interface Linear {
        Tensor linear(Tensor x, Tensor weight, Tensor bias, Op.Linear op);
    }

    public interface LowBit {
        /** Every formulation that runs this layer exactly here. */
        List<LowBitConv.Formulation> formulations(Op.LowBitConv2d op);

        /** The exact int32 accumulators A_r, ((n, o, oy, ox), r). */
        int[] accumulators(Tensor x, Tensor map, Op.LowBitConv2d op, LowBitConv.Formulation formulation);

        /** The layer's float output through the formulation the engine chooses. */
        Tensor output(Tensor x, Tensor map, Tensor bias, Op.LowBitConv2d op);
    }

    public CpuKernels {
        if (convolution == null || linear == null || lowBit == null) throw new IllegalArgumentException("every CPU kernel must be given");
    }

    /** The kernels the CPU backend runs. */
    public static CpuKernels standard() {
        return new CpuKernels(CpuOps::conv2d, CpuOps::linear, new LowBit() {
            public List<LowBitConv.Formulation> formulations(Op.LowBitConv2d op) {
                return LowBitConv.formulations(op);
            }

            public int[] accumulators(Tensor x, Tensor map, Op.LowBitConv2d op, LowBitConv.Formulation formulation) {
                return LowBitConv.accumulate(x, map, op, formulation).products();
            }

            public Tensor output(Tensor x, Tensor map, Tensor bias, Op.LowBitConv2d op) {
                return LowBitConv.run(x, map, bias, op);
            }
        });
    }

    /** These kernels with the low-bit convolution replaced. */
    public CpuKernels withLowBit(LowBit replacement) {
        return new CpuKernels(convolution, linear, replacement);
    }

    /** These kernels with the float convolution replaced. */
    public CpuKernels withConvolution(Convolution replacement) {
        return new CpuKernels(replacement, linear, lowBit);
    }
}
