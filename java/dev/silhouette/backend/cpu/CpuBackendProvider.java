package dev.silhouette.backend.cpu;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.BackendProvider;

import java.util.Optional;

public final class CpuBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "cpu";
    }

    /** Lowest rank: used when no accelerator is available. */
    @Override
    public int rank() {
        return 0;
    }

    @Override
    public Optional<String> unavailableReason() {
        return Optional.empty();
    }

    @Override
    public Backend create(int device) {
        return new CpuBackend();
    }
}
