package dev.silhouette.serve;

import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/** Prometheus's scrape endpoint, {@code GET /metrics}, on its own port (as Triton's 8002). */
final class MetricsEndpoint implements AutoCloseable {
    private final HttpServer http;
    private final ExecutorService threads = Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().name("silhouette-metrics").factory());

    MetricsEndpoint(Metrics metrics, int port) throws IOException {
        http = HttpServer.create(new InetSocketAddress(port), 16);
        http.createContext("/", exchange -> {
            try (exchange) {
                boolean ok = exchange.getRequestURI().getPath().equals(Metrics.PATH) && exchange.getRequestMethod().equals("GET");
                byte[] body = (ok ? metrics.render() : "not found: GET " + Metrics.PATH + "\n").getBytes(StandardCharsets.UTF_8);
                exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
                exchange.sendResponseHeaders(ok ? 200 : 404, body.length);
                try (OutputStream out = exchange.getResponseBody()) {
                    out.write(body);
                }
            }
        });
        http.setExecutor(threads);
        http.start();
    }

    int port() {
        return http.getAddress().getPort();
    }

    @Override
    public void close() {
        http.stop(0);
        threads.shutdownNow();
    }
}
