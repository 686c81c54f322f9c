package dev.silhouette.serve;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.silhouette.api.TensorInfo;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The protocol over HTTP/REST (the JDK's HTTP server, one virtual thread per exchange):
 * {@code GET /v2}, {@code /v2/health/live}, {@code /v2/health/ready}, {@code /v2/models/M[/versions/V]},
 * {@code .../ready} and {@code POST .../infer}. Errors are the status of their reason with
 * {@code {"error": "..."}}. A body over the limit is refused from its Content-Length before it is read,
 * or as soon as a chunked one passes the limit.
 */
final class RestEndpoint implements AutoCloseable {
    static final String HEADER_LENGTH = "Inference-Header-Content-Length";

    static {
        // The JDK server closes a connection after its answer once 200 are idle, which a client that pooled it
        // sees as a reset on its next request; under many concurrent clients keep more (the jdk.httpserver
        // module documents the property; a value given on the command line wins).
        if (System.getProperty("sun.net.httpserver.maxIdleConnections") == null) System.setProperty("sun.net.httpserver.maxIdleConnections", "4096");
    }

    private final Server server;
    private final long maxBody;
    private final HttpServer http;
    private final ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();

    RestEndpoint(Server server, int port, long maxBody) throws IOException {
        this.server = server;
        this.maxBody = maxBody;
        http = HttpServer.create(new InetSocketAddress(port), 1024);
        http.createContext("/", this::handle);
        http.setExecutor(threads);
        http.start();
    }

    int port() {
        return http.getAddress().getPort();
    }

    private record Reply(int status, byte[] body, String contentType, int headerLength, String model, String id, String error) {
        static Reply json(int status, byte[] body) {
            return new Reply(status, body, "application/json", -1, null, null, null);
        }
    }

    private void handle(HttpExchange exchange) {
        long start = System.nanoTime();
        Reply reply;
        String call = exchange.getRequestMethod() + " " + ServedModel.abbreviate(exchange.getRequestURI().getRawPath());
        try {
            reply = route(exchange);
        } catch (InferenceError e) {
            reply = new Reply(e.reason().http, RestCodec.error(e.getMessage()), "application/json", -1, null, null, e.getMessage());
        } catch (RuntimeException e) {
            String message = "internal error: " + e;
            reply = new Reply(500, RestCodec.error(message), "application/json", -1, null, null, message);
        }
        try (exchange) {
            // What the client sent beyond what was read is not ours to drain when the answer is a refusal.
            if (reply.status() == 413) exchange.getResponseHeaders().set("Connection", "close");
            exchange.getResponseHeaders().set("Content-Type", reply.contentType());
            if (reply.headerLength() >= 0) exchange.getResponseHeaders().set(HEADER_LENGTH, Integer.toString(reply.headerLength()));
            exchange.sendResponseHeaders(reply.status(), reply.body().length == 0 ? -1 : reply.body().length);
            if (reply.body().length > 0) {
                try (OutputStream out = exchange.getResponseBody()) {
                    out.write(reply.body());
                }
            }
        } catch (IOException e) {
            // The client went away: nothing to answer to.
        }
        server.log().record("http", call, reply.model(), Integer.toString(reply.status()), (System.nanoTime() - start) / 1000, reply.id(), reply.error());
    }

    private Reply route(HttpExchange exchange) {
        String method = exchange.getRequestMethod();
        List<String> path = segments(exchange.getRequestURI().getRawPath());
        if (path.isEmpty() || !path.getFirst().equals("v2")) throw InferenceError.notFound("no such endpoint: the protocol's endpoints are under /v2");
        if (path.size() == 1) {
            get(method);
            return Reply.json(200, RestCodec.json(w -> {
                w.name("name").value(Server.NAME).name("version").value(Server.VERSION).name("extensions").beginArray();
                for (String e : server.extensions()) w.value(e);
                w.endArray();
            }));
        }
        if (path.get(1).equals("health") && path.size() == 3) {
            get(method);
            return switch (path.get(2)) {
                case "live" -> Reply.json(server.live() ? 200 : 503, RestCodec.json(w -> w.name("live").value(server.live())));
                case "ready" -> Reply.json(server.ready() ? 200 : 503, RestCodec.json(w -> w.name("ready").value(server.ready())));
                default -> throw InferenceError.notFound("no such endpoint: " + Server.HEALTH_LIVE + " or " + Server.HEALTH_READY);
            };
        }
        if (path.get(1).equals("repository")) return repository(exchange, path);
        if (!path.get(1).equals("models") || path.size() < 3) throw InferenceError.notFound("no such endpoint under /v2: health, models/NAME");
        String name = path.get(2);
        String version = null;
        int rest = 3;
        if (path.size() >= 5 && path.get(3).equals("versions")) {
            version = path.get(4);
            rest = 5;
        }
        ServedModel model = server.find(name, version, "model name in the URL");
        String action = path.size() == rest ? "" : path.size() == rest + 1 ? path.get(rest) : null;
        if (action == null) throw InferenceError.notFound("no such endpoint under /v2/models/" + name + ": metadata, ready or infer");
        return switch (action) {
            case "" -> {
                get(method);
                yield Reply.json(200, metadata(model));
            }
            case "ready" -> {
                get(method);
                boolean ready = server.modelReady(name, version);
                yield Reply.json(ready ? 200 : 503, RestCodec.json(w -> w.name("name").value(model.name).name("ready").value(ready)));
            }
            case "infer" -> infer(exchange, model);
            default -> throw InferenceError.notFound("no such endpoint under /v2/models/" + name + ": metadata, ready or infer");
        };
    }

    /** The repository extension: POST /v2/repository/index, /v2/repository/models/M/load and .../unload. */
    private Reply repository(HttpExchange exchange, List<String> path) {
        if (!exchange.getRequestMethod().equals("POST")) {
            throw new InferenceError(InferenceError.Reason.METHOD_NOT_ALLOWED, "method " + exchange.getRequestMethod() + " is not allowed for the repository extension; use POST");
        }
        readBody(exchange);
        if (path.size() == 3 && path.get(2).equals("index")) {
            List<java.util.Map<String, String>> rows = server.index();
            java.io.StringWriter out = new java.io.StringWriter();
            new com.google.gson.Gson().toJson(rows, out);
            return Reply.json(200, out.toString().getBytes(StandardCharsets.UTF_8));
        }
        if (path.size() == 5 && path.get(2).equals("models") && (path.get(4).equals("load") || path.get(4).equals("unload"))) {
            if (path.get(4).equals("load")) server.loadFromRepository(path.get(3));
            else server.unload(path.get(3));
            return Reply.json(200, RestCodec.json(w -> {}));
        }
        throw InferenceError.notFound("no such endpoint under /v2/repository: index, models/NAME/load, models/NAME/unload");
    }

    private static void get(String method) {
        if (!method.equals("GET")) throw new InferenceError(InferenceError.Reason.METHOD_NOT_ALLOWED, "method " + method + " is not allowed here; use GET");
    }

    private static byte[] metadata(ServedModel model) {
        return RestCodec.json(w -> {
            w.name("name").value(model.name).name("versions").beginArray().value(ServedModel.VERSION).endArray();
            w.name("platform").value(model.platform());
            for (String kind : List.of("inputs", "outputs")) {
                w.name(kind).beginArray();
                for (TensorInfo t : (kind.equals("inputs") ? model.inputs : model.outputs).values()) {
                    w.beginObject().name("name").value(t.name()).name("datatype").value(t.datatype()).name("shape").beginArray();
                    for (long d : t.shape()) w.value(d);
                    w.endArray().endObject();
                }
                w.endArray();
            }
        });
    }

    private Reply infer(HttpExchange exchange, ServedModel model) {
        if (!exchange.getRequestMethod().equals("POST")) {
            throw new InferenceError(InferenceError.Reason.METHOD_NOT_ALLOWED, "method " + exchange.getRequestMethod() + " is not allowed for infer; use POST");
        }
        RestCodec.Decoded decoded;
        try {
            decoded = decode(exchange, model);
        } catch (InferenceError e) {
            server.refused(model, e);
            throw e;
        }
        Server.Result result;
        try {
            result = server.infer(model, decoded.request()).join();
        } catch (java.util.concurrent.CompletionException e) {
            throw Server.unwrap(e);
        }
        RestCodec.Encoded encoded = RestCodec.encode(result, decoded);
        return new Reply(200, encoded.body(), encoded.headerLength() >= 0 ? "application/octet-stream" : "application/json", encoded.headerLength(),
                model.name, decoded.request().id(), null);
    }

    private RestCodec.Decoded decode(HttpExchange exchange, ServedModel model) {
        byte[] body = readBody(exchange);
        String headerText = exchange.getRequestHeaders().getFirst(HEADER_LENGTH);
        int headerLength = body.length;
        if (headerText != null) {
            try {
                headerLength = Integer.parseInt(headerText.strip());
            } catch (NumberFormatException e) {
                throw InferenceError.invalid(HEADER_LENGTH + " '" + ServedModel.abbreviate(headerText) + "' is not a byte count");
            }
            if (headerLength < 0 || headerLength > body.length) {
                throw InferenceError.invalid(HEADER_LENGTH + " " + headerLength + " is outside the body's " + body.length + " bytes");
            }
        }
        return RestCodec.decode(model, model.name, body, headerLength);
    }

    private byte[] readBody(HttpExchange exchange) {
        String declared = exchange.getRequestHeaders().getFirst("Content-Length");
        String limit = "the request body limit of " + maxBody + " bytes (--max-body)";
        if (declared != null) {
            long n;
            try {
                n = Long.parseLong(declared.strip());
            } catch (NumberFormatException e) {
                throw InferenceError.invalid("Content-Length '" + ServedModel.abbreviate(declared) + "' is not a byte count");
            }
            if (n > maxBody) throw new InferenceError(InferenceError.Reason.TOO_LARGE, "the request body of " + n + " bytes (Content-Length) is over " + limit);
        }
        try (InputStream in = exchange.getRequestBody()) {
            byte[] body = in.readNBytes(Math.toIntExact(maxBody + 1));
            if (body.length > maxBody) throw new InferenceError(InferenceError.Reason.TOO_LARGE, "the request body is over " + limit);
            return body;
        } catch (IOException e) {
            throw InferenceError.invalid("the request body could not be read whole: " + e.getMessage());
        }
    }

    /** The path's segments, each percent-decoded on its own so that an encoded '/' stays inside its segment (and fails the name check). */
    private static List<String> segments(String rawPath) {
        List<String> out = new ArrayList<>();
        for (String s : rawPath.split("/")) {
            if (s.isEmpty()) continue;
            try {
                out.add(URLDecoder.decode(s, StandardCharsets.UTF_8));
            } catch (IllegalArgumentException e) {
                throw InferenceError.invalid("the URL path segment '" + ServedModel.abbreviate(s) + "' is not percent-encoded properly");
            }
        }
        return out;
    }

    @Override
    public void close() {
        http.stop(1);
        threads.shutdownNow();
    }

}
