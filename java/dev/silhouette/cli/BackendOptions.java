package dev.silhouette.cli;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.Backends;
import picocli.CommandLine.Option;

/** The backend choice every command that computes shares: {@code --backend} and {@code --device}. */
final class BackendOptions {
    @Option(names = "--backend", defaultValue = "auto", description = "auto (the best usable), cpu or cuda (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--device", defaultValue = "0", description = "GPU index for the cuda backend (default: ${DEFAULT-VALUE})")
    int device;

    Backend open() {
        return Backends.create(backend, device);
    }
}
