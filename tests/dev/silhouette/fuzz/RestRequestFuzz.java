package dev.silhouette.fuzz;

import dev.silhouette.serve.InferenceError;
import dev.silhouette.serve.RestDecoding;

import java.util.Arrays;

/**
 * The server's REST request decoding (JSON, and the binary tensor data extension): a clean refusal is a
 * 4xx InferenceError with a message. An input whose first byte is 0 carries the binary extension: the
 * next two bytes give the JSON header's length (Inference-Header-Content-Length), the rest is the body.
 */
public final class RestRequestFuzz {
    private RestRequestFuzz() {}

    public static void fuzzerInitialize() {
        Findings.warmUp(RestRequestFuzz::fuzzerTestOneInput, "RestRequestFuzz");
    }

    public static void fuzzerTestOneInput(byte[] data) {
        byte[] body = data;
        int header = data.length;
        if (data.length >= 3 && data[0] == 0) {
            body = Arrays.copyOfRange(data, 3, data.length);
            header = Math.min(body.length, ((data[1] & 0xFF) << 8) | (data[2] & 0xFF));
        }
        try {
            RestDecoding.decode(body, header);
        } catch (InferenceError e) {
            if (!RestDecoding.clientError(e)) throw e;
            if (e.getMessage() == null || e.getMessage().isBlank()) throw new AssertionError("a refusal without a message", e);
        } catch (RuntimeException e) {
            Findings.refusal(e);
        }
    }
}
