package dev.silhouette.backend;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;
import java.util.logging.Logger;

/** Discovers backends, ranks them and says once why a better one is unavailable. */
public final class Backends {
    private static final Logger LOG = Logger.getLogger(Backends.class.getName());
    private static volatile List<BackendProvider> providers;
    /** Reasons already logged: a server that opens a backend per request says each one once. */
    private static final java.util.Set<String> REPORTED = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private Backends() {}

    public static List<BackendProvider> providers() {
        List<BackendProvider> p = providers;
        if (p == null) {
            synchronized (Backends.class) {
                if (providers == null) {
                    List<BackendProvider> found = new ArrayList<>();
                    ServiceLoader.load(BackendProvider.class).forEach(found::add);
                    found.sort(Comparator.comparingInt(BackendProvider::rank).reversed());
                    providers = List.copyOf(found);
                }
                p = providers;
            }
        }
        return p;
    }

    /**
     * The backend asked for: "auto" (the best available), "cpu" or "cuda", on GPU {@code device} for
     * backends with several devices. An explicitly requested backend that cannot run is an error naming
     * the reason.
     */
    public static Backend create(String name, int device) {
        if (device < 0) throw new IllegalArgumentException("--device " + device + " must be 0 or more");
        List<String> known = new ArrayList<>();
        for (BackendProvider p : providers()) {
            known.add(p.name());
            var reason = p.unavailableReason();
            if (name.equals("auto")) {
                if (reason.isEmpty()) return p.create(device);
                String notice = "backend " + p.name() + " unavailable: " + reason.get();
                if (REPORTED.add(notice)) LOG.info(notice);
            } else if (p.name().equals(name)) {
                if (reason.isPresent()) throw new IllegalStateException("backend '" + name + "' is unavailable: " + reason.get());
                return p.create(device);
            }
        }
        throw new IllegalArgumentException("unknown backend '" + name + "'; known: auto, " + String.join(", ", known));
    }
}
