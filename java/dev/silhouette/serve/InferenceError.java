package dev.silhouette.serve;

/**
 * A request the server answers with an error: the reason picks the HTTP status and the gRPC code, as the
 * Open Inference Protocol maps them; the message names the field and the limit.
 */
public final class InferenceError extends RuntimeException {
    /** Why a request failed; also the {@code reason} label of the failure metric. */
    public enum Reason {
        INVALID(400, io.grpc.Status.Code.INVALID_ARGUMENT),
        NOT_FOUND(404, io.grpc.Status.Code.NOT_FOUND),
        METHOD_NOT_ALLOWED(405, io.grpc.Status.Code.UNIMPLEMENTED),
        TOO_LARGE(413, io.grpc.Status.Code.RESOURCE_EXHAUSTED),
        UNAVAILABLE(503, io.grpc.Status.Code.UNAVAILABLE),
        INTERNAL(500, io.grpc.Status.Code.INTERNAL);

        final int http;
        final io.grpc.Status.Code grpc;

        Reason(int http, io.grpc.Status.Code grpc) {
            this.http = http;
            this.grpc = grpc;
        }

        /** The label of the failure metric, e.g. {@code unavailable}. */
        String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private final Reason reason;

    public InferenceError(Reason reason, String message) {
        super(message, null, false, false);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }

    static InferenceError invalid(String message) {
        return new InferenceError(Reason.INVALID, message);
    }

    static InferenceError unavailable(String message) {
        return new InferenceError(Reason.UNAVAILABLE, message);
    }

    static InferenceError notFound(String message) {
        return new InferenceError(Reason.NOT_FOUND, message);
    }
}
