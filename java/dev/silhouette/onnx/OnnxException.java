package dev.silhouette.onnx;

/**
 * An ONNX file that Silhouette cannot import: corrupt or truncated, inconsistent, or using an op or
 * attribute outside what the importer maps. The message names the file, node or tensor and the limit.
 */
public class OnnxException extends IllegalArgumentException {
    public OnnxException(String message) {
        super(message);
    }

    public OnnxException(String message, Throwable cause) {
        super(message, cause);
    }
}
