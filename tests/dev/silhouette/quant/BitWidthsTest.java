package dev.silhouette.quant;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.train.QuantMode;
import dev.silhouette.train.SteQuantizers;
import org.testng.annotations.Test;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** One set of limits, refused in one form of words by every place that takes a width. */
public class BitWidthsTest {

    @Test
    public void activationsAndCodesTakeOneToEightBitsWeightsTwoToEight() {
        for (int bits = 1; bits <= 8; bits++) {
            assertEquals(BitWidths.activation(bits, "a"), bits);
            assertEquals(BitWidths.code(bits, "c"), bits);
        }
        for (int bits = 2; bits <= 8; bits++) assertEquals(BitWidths.weight(bits, "w"), bits);
        assertEquals(expectThrows(IllegalArgumentException.class, () -> BitWidths.activation(9, "PACT")).getMessage(),
                "PACT bits 9 outside the supported 1..8");
        assertEquals(expectThrows(IllegalArgumentException.class, () -> BitWidths.code(0, "dense layout")).getMessage(),
                "dense layout bits 0 outside the supported 1..8");
        String weight = expectThrows(IllegalArgumentException.class, () -> BitWidths.weight(1, "conv1")).getMessage();
        assertEquals(weight, "conv1 bits 1 outside the supported 2..8 (a symmetric weight grid needs 2 bits for a zero and a level each side; 1 bit is the sign grid)");
    }

    @Test
    public void everyCallerRefusesWithTheSameWords() {
        Tensor w = Tensor.filled(Shape.of(2), 1f);
        assertEquals(expectThrows(IllegalArgumentException.class, () -> new Op.PactQuantize(9, 1f)).getMessage(),
                "PACT quantization bits 9 outside the supported 1..8");
        assertEquals(expectThrows(IllegalArgumentException.class, () -> RegionPolicy.parse("2:50,9:50")).getMessage(),
                "region policy '2:50,9:50': region 2 bits 9 outside the supported 1..8");
        assertEquals(expectThrows(IllegalArgumentException.class, () -> new QuantMode.PactMode(4, 9)).getMessage(),
                "--quant pact: activation bits 9 outside the supported 1..8");
        assertEquals(expectThrows(IllegalArgumentException.class, () -> Quantizers.symmetric(w, 9, new float[] {1f})).getMessage(),
                "symmetric quantizer bits 9 outside the supported 1..8");
        // Symmetric weights stop at 8 bits like every other width (the region quantizer's grid used to allow 16).
        assertTrue(expectThrows(IllegalArgumentException.class, () -> RegionQuantizer.weightLimit(9)).getMessage()
                .startsWith("symmetric weight bits 9 outside the supported 2..8"));
        assertTrue(expectThrows(IllegalArgumentException.class, () -> new SteQuantizers.SymmetricWeights(1)).getMessage()
                .startsWith("symmetric weight quantizer bits 1 outside the supported 2..8"));
    }
}
