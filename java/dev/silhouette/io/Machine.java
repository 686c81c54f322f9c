package dev.silhouette.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What a measurement ran on, recorded beside every benchmark figure. */
public record Machine(String cpu, int cores, String os, String jvm, long maxHeapBytes) {
    public static Machine current() {
        String cpu = System.getProperty("os.arch");
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(cpu);
        } catch (IOException | RuntimeException e) {
            // Not Linux: the architecture name stands in for the CPU model.
        }
        return new Machine(cpu, Runtime.getRuntime().availableProcessors(), System.getProperty("os.name") + " " + System.getProperty("os.version"),
                System.getProperty("java.vm.name") + " " + System.getProperty("java.version"), Runtime.getRuntime().maxMemory());
    }

    @Override
    public String toString() {
        return cpu + ", " + cores + " cores, " + os + ", " + jvm;
    }
}
