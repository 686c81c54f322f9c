package dev.silhouette.conformance;

import dev.silhouette.graph.Op;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * One named check of one op on given shapes. Inputs are drawn from a seed derived from the case's
 * text, so a case named in a failure report reproduces exactly.
 */
public sealed interface ConformanceCase {

    /** The op's name in the IR ("Conv2d", "LowBitConv2d", ...): what {@code --ops} matches. */
    String op();

    /** The case's name in its problem list, e.g. "resnet18 conv1" or "random 17". */
    String name();

    /** Input shapes and the op's settings, for the report line. */
    String shape();

    /** A float convolution: the CPU's GEMM path against the seven-loop reference, a device's against the CPU. */
    record Convolution(String name, int n, int c, int h, int w, Op.Conv2d conv) implements ConformanceCase {
        public String op() {
            return "Conv2d";
        }

        public String shape() {
            return n + "x" + c + "x" + h + "x" + w + " " + conv.inChannels() + "->" + conv.outChannels() + " " + conv.window() + " g" + conv.groups()
                    + (conv.bias() ? " bias" : "");
        }

        long seed() {
            return (name + " " + shape()).hashCode();
        }
    }

    /** A fully connected layer: the CPU's GEMM against the reference loop. */
    record Linear(String name, int n, Op.Linear linear) implements ConformanceCase {
        public String op() {
            return "Linear";
        }

        public String shape() {
            return n + "x" + linear.inFeatures() + " ->" + linear.outFeatures() + (linear.bias() ? " bias" : "");
        }
    }

    /** How the activations of a low-bit case are coded. */
    enum Codes {
        /** Three regions at widths a, a-1, a-2 (at least 1) read from a region map. */
        REGIONS,
        /** One affine grid whose zero point is above 0: padding must still read real 0. */
        GRID_WITH_ZERO_POINT,
        /** One DRQ sensitivity class, the insensitive one: only those activations keep codes. */
        DRQ_INSENSITIVE,
        /** The sensitive DRQ class. */
        DRQ_SENSITIVE
    }

    /** The region map a low-bit case reads (the kinds that break mask logic first). */
    enum MapKind { ALL_LOW, ALL_HIGH, ONE_PIXEL, CHECKERBOARD, RANDOM }

    /**
     * A packed low-bit convolution: every formulation's exact integer accumulators against
     * the plain-loop specification, and (regions, weights of 2 bits and more) accumulators and outputs
     * against an independent oracle that quantizes float weights and activations itself.
     */
    record LowBit(Convolution problem, Codes codes, int activationBits, int weightBits, MapKind map, boolean perRegionWeights)
            implements ConformanceCase {
        public String op() {
            return "LowBitConv2d";
        }

        public String name() {
            return problem.name();
        }

        public String shape() {
            return problem.shape() + " " + codes.name().toLowerCase() + " a" + activationBits + " w" + weightBits
                    + (codes == Codes.REGIONS ? " " + map.name().toLowerCase() : "") + (perRegionWeights ? " per-region weights" : "");
        }

        long seed() {
            return (name() + " " + shape()).hashCode();
        }
    }

    /**
     * One op as a single-node graph over random inputs of the given shapes (batch first): a device
     * backend against the CPU backend.
     */
    record SingleOp(String name, Op graphOp, int[][] inputs, Tolerance tolerance) implements ConformanceCase {
        public SingleOp {
            inputs = Arrays.stream(inputs).map(int[]::clone).toArray(int[][]::new);
        }

        public String op() {
            return graphOp.getClass().getSimpleName();
        }

        public String shape() {
            return Arrays.stream(inputs).map(d -> Arrays.stream(d).mapToObj(Integer::toString).collect(Collectors.joining("x")))
                    .collect(Collectors.joining(", "));
        }

        List<int[]> inputShapes() {
            return List.of(inputs);
        }
    }
}
