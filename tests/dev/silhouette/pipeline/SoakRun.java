package dev.silhouette.pipeline;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The bundled model's soak, recorded in docs/results/soak.txt: single-image inferences through the Java
 * API on the CPU, alternately FP32 and region-quantized, memory sampled as in {@link SoakTest}.
 * <pre>java --add-modules jdk.incubator.vector -Xmx1g -cp target/classes:target/test-classes:CP dev.silhouette.pipeline.SoakRun 10000 docs/results/soak.txt</pre>
 */
public final class SoakRun {
    private SoakRun() {}

    public static void main(String[] args) throws IOException {
        int total = Integer.parseInt(args[0]);
        Graph fp32 = RegionQuantizationTest.MODEL, quantized = SoakTest.regionQuantized(fp32);
        CpuBackend cpu = new CpuBackend();
        Tensor x = Tensor.uniform(Shape.of(1, 1, 28, 28), 0, 1, 3);
        long start = System.nanoTime();
        List<Soak.Sample> samples = Soak.run(i -> cpu.run(i % 2 == 0 ? fp32 : quantized, Map.of("input", x)), total, total / 10);
        double seconds = (System.nanoTime() - start) / 1e9;
        StringBuilder s = new StringBuilder("Soak of the bundled model (fmnist-resnet, BatchNorms folded), batch 1, alternately FP32 and\n"
                + "region-quantized (2:50,3:30,4:20, 4-bit shared weights), CPU backend, " + total + " inferences in " + Math.round(seconds) + " s\n"
                + "(heap after two full GCs; buffers: direct and mapped; resident: VmRSS). Machine: " + Runtime.getRuntime().availableProcessors()
                + " cores, " + System.getProperty("os.name") + " " + System.getProperty("os.version") + ", " + ManagementFactory.getRuntimeMXBean().getVmName()
                + " " + System.getProperty("java.version") + ", -Xmx" + (Runtime.getRuntime().maxMemory() >> 20) + "m.\n\n");
        for (Soak.Sample sample : samples) s.append(sample).append('\n');
        s.append("\nAfter warm-up (the first two samples): heap grew ").append(Soak.heapGrowth(samples, 2)).append(" bytes, buffers ")
                .append(Soak.bufferGrowth(samples, 2)).append(" bytes.\n");
        System.out.print(s);
        if (args.length > 1) Files.writeString(Path.of(args[1]), s);
    }
}
