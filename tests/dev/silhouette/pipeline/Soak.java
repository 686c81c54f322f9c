package dev.silhouette.pipeline;

import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs an inference many times and samples memory every so often: the heap in use after a full
 * collection (what stays reachable), the JVM's direct and mapped buffers (native memory it hands out),
 * and the process's resident set (everything, JIT code and allocator slack included; reported, not judged).
 */
final class Soak {
    record Sample(int done, long heapBytes, long bufferBytes, long residentBytes) {
        @Override
        public String toString() {
            return "%6d inferences: heap %8.2f MiB, buffers %7.3f MiB, resident %8.1f MiB".formatted(done, heapBytes / 1048576.0,
                    bufferBytes / 1048576.0, residentBytes / 1048576.0);
        }
    }

    /** The samples, the first taken after {@code every} inferences; {@code inference} gets the call's index. */
    static List<Sample> run(java.util.function.IntConsumer inference, int total, int every) {
        List<Sample> samples = new ArrayList<>();
        for (int i = 0; i < total; i++) {
            inference.accept(i);
            if ((i + 1) % every == 0) samples.add(sample(i + 1));
        }
        return samples;
    }

    /** Growth of the heap after GC between the sample at warm-up's end and the largest later one. */
    static long heapGrowth(List<Sample> samples, int warmUpSamples) {
        long base = samples.get(warmUpSamples - 1).heapBytes();
        return samples.subList(warmUpSamples, samples.size()).stream().mapToLong(Sample::heapBytes).max().orElse(base) - base;
    }

    static long bufferGrowth(List<Sample> samples, int warmUpSamples) {
        long base = samples.get(warmUpSamples - 1).bufferBytes();
        return samples.subList(warmUpSamples, samples.size()).stream().mapToLong(Sample::bufferBytes).max().orElse(base) - base;
    }

    static Sample sample(int done) {
        // Twice: the first collection may leave objects that the second frees (finalizable references, caches cleared late).
        System.gc();
        System.gc();
        long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        long buffers = 0;
        for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) buffers += pool.getMemoryUsed();
        return new Sample(done, heap, buffers, resident());
    }

    /** VmRSS from /proc (Linux); 0 elsewhere. */
    private static long resident() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
        return 0;
    }
}
