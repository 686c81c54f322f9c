package dev.silhouette.io;

/** A malformed IDX file; the message names the source and what is wrong. */
public class IdxException extends IllegalArgumentException {
    public IdxException(String message) {
        super(message);
    }

    public IdxException(String message, Throwable cause) {
        super(message, cause);
    }
}
