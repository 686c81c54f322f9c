package dev.silhouette.backend.cuda;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.BackendProvider;

import java.util.Optional;

public final class CudaBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "cuda";
    }

    /** Preferred over the CPU whenever it can run. */
    @Override
    public int rank() {
        return 10;
    }

    @Override
    public Optional<String> unavailableReason() {
        Optional<String> reason = CudaAvailability.unavailableReason();
        if (reason.isPresent()) return reason;
        if (CudaBackendProvider.class.getResource(KernelModule.RESOURCE) == null) {
            return Optional.of("CUDA kernels were not built into this jar (nvcc was missing at build time)");
        }
        return Optional.empty();
    }

    @Override
    public Backend create(int device) {
        return new CudaBackend(device);
    }
}
