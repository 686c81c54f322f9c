package dev.silhouette.io;

/** A safetensors file that is malformed or inconsistent; the message names the file, the tensor and the limit. */
public class SafeTensorsException extends IllegalArgumentException {
    public SafeTensorsException(String message) {
        super(message);
    }
}
