package dev.silhouette.backend;

import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

public class BackendsTest {

    @Test
    public void providersAreRankedBestFirst() {
        List<BackendProvider> providers = Backends.providers();
        List<String> names = providers.stream().map(BackendProvider::name).toList();
        assertTrue(names.contains("cpu") && names.contains("cuda"), names.toString());
        for (int i = 1; i < providers.size(); i++) {
            assertTrue(providers.get(i - 1).rank() >= providers.get(i).rank(), names + " out of rank order");
        }
        assertTrue(names.indexOf("cuda") < names.indexOf("cpu"), names.toString());
    }

    @Test
    public void autoTakesTheBestUsableBackendAndSaysOnceWhyBetterOnesWereSkipped() {
        List<String> logged = new ArrayList<>();
        Logger log = Logger.getLogger(Backends.class.getName());
        Handler capture = new Handler() {
            @Override public void publish(LogRecord r) { logged.add(r.getMessage()); }
            @Override public void flush() {}
            @Override public void close() {}
        };
        log.addHandler(capture);
        try {
            BackendProvider expected = Backends.providers().stream().filter(p -> p.unavailableReason().isEmpty()).findFirst().orElseThrow();
            for (int i = 0; i < 3; i++) {
                try (Backend b = Backends.create("auto", 0)) {
                    assertTrue(b.name().startsWith(expected.name()), b.name() + " instead of " + expected.name());
                }
            }
        } finally {
            log.removeHandler(capture);
        }
        for (BackendProvider p : Backends.providers()) {
            long mentions = logged.stream().filter(m -> m.startsWith("backend " + p.name() + " unavailable: ")).count();
            assertTrue(mentions <= 1, p.name() + " reported " + mentions + " times: " + logged);
        }
    }

    @Test
    public void anUnusableBackendAskedForByNameIsAnErrorWithTheReason() {
        for (BackendProvider p : Backends.providers()) {
            var reason = p.unavailableReason();
            if (reason.isEmpty()) continue;
            String message = expectThrows(IllegalStateException.class, () -> Backends.create(p.name(), 0)).getMessage();
            assertEquals(message, "backend '" + p.name() + "' is unavailable: " + reason.get());
        }
    }

    @Test
    public void unknownNamesAndNegativeDevicesAreRefused() {
        String unknown = expectThrows(IllegalArgumentException.class, () -> Backends.create("tpu", 0)).getMessage();
        assertTrue(unknown.startsWith("unknown backend 'tpu'; known: auto, ") && unknown.contains("cpu") && unknown.contains("cuda"), unknown);
        String device = expectThrows(IllegalArgumentException.class, () -> Backends.create("cpu", -1)).getMessage();
        assertTrue(device.contains("--device -1"), device);
    }
}
