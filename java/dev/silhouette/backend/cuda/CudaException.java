package dev.silhouette.backend.cuda;

/** A failed CUDA, cuDNN or cuBLAS call: names the call, the error and the op it served. */
public class CudaException extends RuntimeException {
    public CudaException(String message) {
        super(message);
    }

    public CudaException(String message, Throwable cause) {
        super(message, cause);
    }
}
