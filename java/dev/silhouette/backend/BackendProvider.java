package dev.silhouette.backend;

import java.util.Optional;

/**
 * A way to make a backend, found through {@link java.util.ServiceLoader}. Providers report why they
 * cannot run (no driver, no device) instead of failing, so the next one in rank order is used.
 */
public interface BackendProvider {

    /** Its name prefix: "cpu", "cuda". */
    String name();

    /** Higher ranks are preferred when the user does not choose. */
    int rank();

    /** Empty when usable here; otherwise the reason, e.g. "libcuda.so.1 not found". */
    Optional<String> unavailableReason();

    /** @param device device index for backends with several devices, ignored otherwise */
    Backend create(int device);
}
