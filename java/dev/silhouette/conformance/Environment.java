package dev.silhouette.conformance;

import dev.silhouette.backend.cpu.NativeLowBitConv;
import dev.silhouette.backend.cuda.CudaDevices;
import dev.silhouette.io.Machine;
import jdk.incubator.vector.FloatVector;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the suite ran on: the machine, the CPU's vector extensions, the Java vector width, the native CPU
 * kernels, and the NVIDIA driver, CUDA, cuDNN and cuBLAS found (or why not), so that a report taken
 * before and after an upgrade says what changed.
 */
public record Environment(Machine machine, List<String> cpuExtensions, int javaVectorBits, String nativeCpuKernels, CudaDevices.Report cuda) {

    private static final List<String> EXTENSIONS = List.of("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni");

    public static Environment current() {
        String nativeKernels = NativeLowBitConv.isa() == NativeLowBitConv.Isa.NONE
                ? "unavailable: " + NativeLowBitConv.unavailable() : String.valueOf(NativeLowBitConv.isas());
        return new Environment(Machine.current(), extensions(), FloatVector.SPECIES_PREFERRED.vectorBitSize(), nativeKernels, CudaDevices.report());
    }

    private static List<String> extensions() {
        List<String> found = new ArrayList<>();
        try {
            String flags = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("flags")).findFirst().orElse("");
            List<String> words = List.of(flags.substring(flags.indexOf(':') + 1).trim().split("\\s+"));
            for (String e : EXTENSIONS) if (words.contains(e)) found.add(e);
        } catch (IOException | RuntimeException e) {
            // Not Linux: the report says nothing of the extensions; the Java vector width still shows.
        }
        return List.copyOf(found);
    }

    /** The report's header lines. */
    public List<String> lines() {
        List<String> l = new ArrayList<>();
        l.add("machine: " + machine);
        l.add("cpu extensions: " + (cpuExtensions.isEmpty() ? "(none found)" : String.join(" ", cpuExtensions)) + "; Java vectors " + javaVectorBits + " bits");
        l.add("native cpu kernels: " + nativeCpuKernels);
        l.add("cuda: " + cuda.status() + (cuda.driverCudaVersion() == null ? "" : ", driver supports CUDA " + cuda.driverCudaVersion()));
        for (CudaDevices.Device d : cuda.devices()) {
            l.add("  gpu " + d.ordinal() + ": " + d.name() + ", compute " + d.computeCapability() + ", " + d.memoryBytes() / (1L << 20) + " MiB, "
                    + d.multiprocessors() + " SMs");
        }
        l.add("cudnn: " + cuda.cudnn());
        l.add("cublas: " + cuda.cublas());
        return l;
    }
}
