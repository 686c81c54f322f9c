package dev.silhouette.serve;

import com.google.gson.stream.JsonWriter;

import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.time.Instant;

/** Structured access logs: one JSON object per request and line (time, protocol, call, model, status, microseconds, id, error). */
public interface AccessLog {
    AccessLog OFF = (protocol, call, model, status, micros, id, error) -> {};

    void record(String protocol, String call, String model, String status, long micros, String id, String error);

    /** JSON lines on {@code out}. */
    static AccessLog jsonLines(PrintStream out) {
        return (protocol, call, model, status, micros, id, error) -> {
            StringWriter s = new StringWriter();
            try (JsonWriter w = new JsonWriter(s)) {
                w.beginObject().name("time").value(Instant.now().toString()).name("protocol").value(protocol).name("call").value(call);
                if (model != null) w.name("model").value(model);
                w.name("status").value(status).name("us").value(micros);
                if (id != null && !id.isEmpty()) w.name("id").value(id);
                if (error != null) w.name("error").value(error);
                w.endObject();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            out.println(s);
        };
    }
}
