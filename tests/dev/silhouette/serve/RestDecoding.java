package dev.silhouette.serve;

import dev.silhouette.api.Model;
import dev.silhouette.api.Session;

import java.util.concurrent.Executors;

/** The REST request decoder over the bundled model, for the fuzz target (which lives in another package). */
public final class RestDecoding {
    private RestDecoding() {}

    private static final ServedModel MODEL;

    static {
        Model model = Model.load("bundled");
        Session session = model.session("cpu");
        var timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "fuzz-timer");
            t.setDaemon(true);
            return t;
        });
        MODEL = new ServedModel("fmnist-resnet", model, session, new Batcher("fmnist-resnet", session, BatchConfig.DEFAULT,
                new Metrics().model("fmnist-resnet", BatchConfig.DEFAULT.maxBatchSize()), timer));
    }

    /** Decodes a request body whose JSON header is the first {@code headerLength} bytes (the rest binary tensor data). */
    public static void decode(byte[] body, int headerLength) {
        RestCodec.decode(MODEL, MODEL.name, body, headerLength);
    }

    /** A refusal the protocol answers with a 4xx: anything but INTERNAL. */
    public static boolean clientError(InferenceError e) {
        return e.reason() != InferenceError.Reason.INTERNAL && e.reason() != InferenceError.Reason.UNAVAILABLE;
    }
}
