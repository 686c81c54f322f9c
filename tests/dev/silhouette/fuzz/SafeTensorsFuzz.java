package dev.silhouette.fuzz;

import dev.silhouette.io.SafeTensors;

import java.nio.file.Path;

/** A safetensors file (header length, JSON header with shapes, dtypes and offsets, data), read whole and as metadata. */
public final class SafeTensorsFuzz {
    private SafeTensorsFuzz() {}

    public static void fuzzerInitialize() {
        Findings.warmUp(SafeTensorsFuzz::fuzzerTestOneInput, "SafeTensorsFuzz");
    }

    public static void fuzzerTestOneInput(byte[] data) {
        Path file = Findings.write("fuzzed.safetensors", data);
        try {
            SafeTensors.read(file);
        } catch (RuntimeException e) {
            Findings.refusal(e, file.toString());
            return;
        }
        // What reads whole must also read as metadata alone.
        SafeTensors.readMetadata(file);
    }
}
