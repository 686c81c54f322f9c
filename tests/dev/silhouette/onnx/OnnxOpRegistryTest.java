package dev.silhouette.onnx;

import org.testng.annotations.Test;

import java.util.List;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;

/** The importer's refusal of unsupported ops and the converter registry agree on what is supported. */
public class OnnxOpRegistryTest {

    /** The refusal names every unsupported node and lists exactly the registry's ops as supported. */
    @Test
    public void refusalNamesEveryUnsupportedNodeAndListsTheRegistry() {
        byte[] bytes = new TestModel(13).input("x", 1, 2, 4, 4).node("Relu", List.of("x"), "a")
                .node("Tanh", List.of("a"), "b").node("Relu", List.of("b"), "c").node("Erf", List.of("c"), "d").output("d").bytes();
        OnnxException refused = OnnxBadInputTest.rejected(bytes);
        OnnxBadInputTest.assertMentions(refused, "2 node(s)", "Tanh (node 'b_node')", "Erf (node 'd_node')");
        String message = refused.getMessage();
        String supported = message.substring(message.indexOf("Supported ops: ") + "Supported ops: ".length());
        assertEquals(supported, String.join(", ", OnnxOpRegistry.supportedOps()));
        assertFalse(OnnxOpRegistry.CONVERTERS.containsKey("Tanh"));
    }

    /** Every registered op gets past the refusal to its converter (which may still refuse what it is given). */
    @Test
    public void everyRegisteredOpReachesItsConverter() {
        for (String op : OnnxOpRegistry.supportedOps()) {
            byte[] bytes = new TestModel(13).input("x", 1, 2, 4, 4).node(op, List.of("x"), "y").output("y").bytes();
            try {
                OnnxImporter.read(bytes, null, "model.onnx", OnnxImporter.Options.defaults());
            } catch (OnnxException e) {
                assertFalse(e.getMessage().contains("cannot import"), op + " was refused as unsupported: " + e.getMessage());
                assertTrue(e.getMessage().contains(op + " node 'y_node'") || e.getMessage().startsWith("model.onnx: graph output"),
                        op + " should fail in its own converter: " + e.getMessage());
            }
        }
    }
}
