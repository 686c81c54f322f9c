package dev.silhouette.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A cuBLAS handle bound to one stream, through the foreign function API against libcublas.so.13 or .12
 * (whichever is installed). Only symbols exported by both majors are required. Handles, streams and
 * device addresses cross as 64-bit integers, which the x86-64 and AArch64 C conventions pass exactly as
 * pointers. SGEMM runs in cuBLAS's default math mode, which never uses TF32 tensor cores for FP32 (that
 * takes an explicit CUBLAS_TF32_TENSOR_OP_MATH), so results stay comparable with the CPU reference.
 * Not thread-safe: one instance belongs to one backend, which serialises its calls.
 */
public final class Cublas implements AutoCloseable {
    private static final int OP_N = 0, OP_T = 1;
    private static final int MAJOR_VERSION = 0, MINOR_VERSION = 1, PATCH_LEVEL = 2;
    /** cublasStatus_t, identical in cuBLAS 12 and 13 (cublas_api.h). */
    private static final Map<Integer, String> STATUS_NAMES = Map.of(
            0, "CUBLAS_STATUS_SUCCESS",
            1, "CUBLAS_STATUS_NOT_INITIALIZED",
            3, "CUBLAS_STATUS_ALLOC_FAILED",
            7, "CUBLAS_STATUS_INVALID_VALUE",
            8, "CUBLAS_STATUS_ARCH_MISMATCH",
            11, "CUBLAS_STATUS_MAPPING_ERROR",
            13, "CUBLAS_STATUS_EXECUTION_FAILED",
            14, "CUBLAS_STATUS_INTERNAL_ERROR",
            15, "CUBLAS_STATUS_NOT_SUPPORTED",
            16, "CUBLAS_STATUS_LICENSE_ERROR");

    /** The resolved entry points of one loaded libcublas. */
    static final class Bindings {
        final NativeLibrary library;
        final MethodHandle create, destroy, setStream, sgemm, getProperty;
        final Optional<MethodHandle> statusString;

        Bindings(NativeLibrary library) {
            this.library = library;
            create = library.function("cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
            destroy = library.function("cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
            setStream = library.function("cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
            sgemm = library.function("cublasSgemm_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT,
                    JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
            getProperty = library.function("cublasGetProperty", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
            statusString = library.optionalFunction("cublasGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        }

        /** cuBLAS's own version number, major*10000 + minor*100 + patch as CUBLAS_VERSION defines it. */
        int version() {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment value = arena.allocate(JAVA_INT);
                int[] parts = new int[3];
                int[] properties = {MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL};
                for (int i = 0; i < 3; i++) {
                    int type = properties[i];
                    check(() -> (int) getProperty.invokeExact(type, value), "cublasGetProperty", "version query");
                    parts[i] = value.get(JAVA_INT, 0);
                }
                return parts[0] * 10000 + parts[1] * 100 + parts[2];
            }
        }

        String describe() {
            int v = version();
            return library.soname() + " (version " + v + ", " + v / 10000 + "." + v / 100 % 100 + "." + v % 100 + ")"
                    + library.path().map(p -> " from " + p).orElse(", path unknown");
        }

        void check(NativeCall call, String function, String op) {
            int status;
            try {
                status = call.invoke();
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new CudaException(function + " could not be called for " + op, t);
            }
            if (status != 0) throw new CudaException(function + " failed for " + op + ": " + statusText(status));
        }

        String statusText(int status) {
            String name = STATUS_NAMES.getOrDefault(status, "unknown cuBLAS status");
            String detail = statusString.flatMap(h -> {
                try {
                    return NativeLibrary.cString((MemorySegment) h.invokeExact(status));
                } catch (Throwable t) {
                    return Optional.empty();
                }
            }).filter(s -> !s.equals(name)).map(s -> ", " + s).orElse("");
            return name + " (" + status + detail + ")";
        }
    }

    @FunctionalInterface
    interface NativeCall {
        int invoke() throws Throwable;
    }

    /** Loaded on first use, once per process. */
    private static final class ProcessWide {
        static final Bindings BINDINGS;
        static final String FAILURE;

        static {
            Bindings bindings = null;
            String failure = null;
            try {
                bindings = new Bindings(NativeLibrary.load(NativeLibrary.CUBLAS));
            } catch (RuntimeException | LinkageError e) {
                failure = e.getMessage() == null ? e.toString() : e.getMessage();
            }
            BINDINGS = bindings;
            FAILURE = failure;
        }
    }

    private final Bindings api;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment scalars = arena.allocate(JAVA_FLOAT, 2);
    private final long handle;
    private boolean closed;

    /** Empty when libcublas could be loaded; otherwise every place that was tried and what to set. */
    public static Optional<String> unavailableReason() {
        return Optional.ofNullable(ProcessWide.FAILURE);
    }

    /** "libcublas.so.13 (version 130100, 13.1.0) from /usr/local/cuda/...", or why it is unavailable. */
    public static String describe() {
        if (ProcessWide.BINDINGS == null) return "unavailable: " + ProcessWide.FAILURE;
        return ProcessWide.BINDINGS.describe();
    }

    /** A handle on the process's libcublas whose work is ordered on {@code stream} (a cudaStream_t). */
    public Cublas(long stream) {
        this(processBindings(), stream);
    }

    Cublas(Bindings api, long stream) {
        this.api = api;
        try {
            MemorySegment out = arena.allocate(JAVA_LONG);
            api.check(() -> (int) api.create.invokeExact(out), "cublasCreate_v2", "handle creation");
            handle = out.get(JAVA_LONG, 0);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        try {
            api.check(() -> (int) api.setStream.invokeExact(handle, stream), "cublasSetStream_v2", "handle creation");
        } catch (RuntimeException e) {
            try {
                api.check(() -> (int) api.destroy.invokeExact(handle), "cublasDestroy_v2", "cleanup after a failed cublasSetStream_v2");
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            arena.close();
            throw e;
        }
    }

    private static Bindings processBindings() {
        if (ProcessWide.BINDINGS == null) throw new CudaException("cuBLAS unavailable: " + ProcessWide.FAILURE);
        return ProcessWide.BINDINGS;
    }

    /**
     * Row-major {@code C = alpha * A * op(B) + beta * C} on device memory, where A is m x k, op(B) is k x n
     * and C is m x n, each row-major with the given leading dimension (row stride in elements). op(B) is B
     * when {@code transB} is false (B stored k x n) and B transposed when true (B stored n x k, as linear
     * layers keep their weights).
     *
     * <p>cuBLAS is column-major, and a row-major matrix is its transpose read column-major. So the call
     * computes C^T = op(B)^T * A^T: the operands swap places, m and n swap, and the leading dimensions stay.
     *
     * @param op names the graph node in error messages
     */
    public void sgemmRowMajor(String op, int m, int n, int k, float alpha, long a, int lda, long b, int ldb,
                              float beta, long c, int ldc, boolean transB) {
        requireOpen();
        scalars.setAtIndex(JAVA_FLOAT, 0, alpha);
        scalars.setAtIndex(JAVA_FLOAT, 1, beta);
        MemorySegment alphaPointer = scalars.asSlice(0, 4), betaPointer = scalars.asSlice(4, 4);
        int transa = transB ? OP_T : OP_N;
        api.check(() -> (int) api.sgemm.invokeExact(handle, transa, OP_N, n, m, k, alphaPointer, b, ldb, a, lda, betaPointer, c, ldc),
                "cublasSgemm_v2", op + " (row-major m=" + m + " n=" + n + " k=" + k + (transB ? ", B transposed" : "") + ")");
    }

    private void requireOpen() {
        if (closed) throw new IllegalStateException("cuBLAS handle used after close");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            api.check(() -> (int) api.destroy.invokeExact(handle), "cublasDestroy_v2", "close");
        } finally {
            arena.close();
        }
    }
}
