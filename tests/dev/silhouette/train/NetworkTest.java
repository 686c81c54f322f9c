package dev.silhouette.train;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import org.testng.annotations.Test;

import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

public class NetworkTest {

    @Test
    public void aGraphWithOpsThatHaveNoBackwardIsRefusedUpFrontNamingThem() {
        GraphBuilder b = new GraphBuilder(1);
        String x = b.input("x", 1, 8, 8);
        String conv = b.add("conv", new Op.Conv2d(1, 4, Window.square(3, 1, 1), 1, true), x);
        String act = b.add("act", new Op.HardSwish(), conv);
        b.output(b.add("quant", new Op.DrqQuantize(2, 0.5f, 2, 4, 1f, 2f, -1), act));
        Graph g = b.build();
        String message = expectThrows(IllegalArgumentException.class, () -> new Network(g)).getMessage();
        assertTrue(message.contains("act (HardSwish)") && message.contains("quant (DrqQuantize)") && !message.contains("conv ("), message);
    }
}
