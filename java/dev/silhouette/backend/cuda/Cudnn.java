package dev.silhouette.backend.cuda;

import dev.silhouette.tensor.Window;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A cuDNN handle bound to one stream, through the foreign function API against libcudnn.so.9 or .8
 * (whichever is installed). It uses only the legacy descriptor API that both majors export: cuDNN 9's
 * libcudnn.so.9 still carries it and forwards to its sub-libraries. Handles, descriptors, streams and
 * device addresses cross as 64-bit integers, which the x86-64 and AArch64 C conventions pass exactly as
 * pointers; host scalars (alpha, beta) cross as pointers into native memory, as cuDNN reads them at the
 * call. Tensors are dense NCHW FP32.
 *
 * <p>Convolutions run with CUDNN_FMA_MATH. CUDNN_DEFAULT_MATH is not enough: from cuDNN 8 on Ampere and
 * newer it lets FP32 convolutions run on TF32 tensor cores (10-bit mantissa), whose error (about 1e-3
 * relative) is far outside the conformance tolerance against the CPU reference. FMA_MATH keeps FP32
 * arithmetic (the mode exists in cuDNN 8.0 and later).
 *
 * <p>Descriptors of each distinct convolution are built once, with the algorithm cuDNN's heuristics
 * rank first among those that succeed in FP32 within {@link #WORKSPACE_LIMIT}, and kept until close
 * (at most {@value #CACHED_CONVOLUTIONS} problems, least recently used dropped first). Pooling,
 * softmax and activation descriptors are made per call. A failed call leaves the instance usable.
 * Not thread-safe: one instance belongs to one backend, which serialises its calls.
 */
public final class Cudnn implements AutoCloseable {
    /** Largest workspace a convolution algorithm may ask for. */
    public static final long WORKSPACE_LIMIT = 256L << 20;
    static final int CACHED_CONVOLUTIONS = 256;

    /** Device scratch memory for one call, at least {@code bytes} long, valid while the call's stream work runs. */
    @FunctionalInterface
    public interface WorkspaceProvider {
        long workspace(long bytes);
    }

    /*
     * Enum values, read from cuDNN 9's cudnn_graph.h, cudnn_ops.h and cudnn_cnn.h and identical in cuDNN 8's
     * cudnn_ops_infer.h and cudnn_cnn_infer.h: cuDNN 9 moved these enums between headers without renumbering.
     * Status codes are the exception (cuDNN 9 renumbered them: BAD_PARAM is 3 in 8 and 2000 in 9), which is
     * why status names come from the library's own cudnnGetErrorString.
     */
    private static final int TENSOR_NCHW = 0;
    private static final int DATA_FLOAT = 0;
    private static final int CROSS_CORRELATION = 1;
    private static final int TENSOR_OP_MATH = 1, TENSOR_OP_MATH_ALLOW_CONVERSION = 2, FMA_MATH = 3;
    private static final int NOT_PROPAGATE_NAN = 0, PROPAGATE_NAN = 1;
    private static final int ACTIVATION_RELU = 1;
    private static final int POOLING_MAX = 0, POOLING_AVERAGE_COUNT_INCLUDE_PADDING = 1, POOLING_AVERAGE_COUNT_EXCLUDE_PADDING = 2;
    private static final int SOFTMAX_ACCURATE = 1, SOFTMAX_MODE_CHANNEL = 1;
    private static final int STATUS_SUCCESS = 0;
    /** CUDNN_CONVOLUTION_FWD_ALGO_COUNT: every forward algorithm, so the heuristics rank them all. */
    private static final int FORWARD_ALGORITHMS = 8;

    /** cudnnConvolutionFwdAlgoPerf_t, unchanged from cuDNN 7 to 9. */
    static final StructLayout FORWARD_ALGO_PERF = MemoryLayout.structLayout(
            JAVA_INT.withName("algo"),
            JAVA_INT.withName("status"),
            JAVA_FLOAT.withName("time"),
            MemoryLayout.paddingLayout(4),
            JAVA_LONG.withName("memory"),
            JAVA_INT.withName("determinism"),
            JAVA_INT.withName("mathType"),
            MemoryLayout.sequenceLayout(3, JAVA_INT).withName("reserved"),
            MemoryLayout.paddingLayout(4));
    private static final long PERF_ALGO = offset("algo"), PERF_STATUS = offset("status"),
            PERF_MEMORY = offset("memory"), PERF_MATH_TYPE = offset("mathType");

    private static long offset(String field) {
        return FORWARD_ALGO_PERF.byteOffset(PathElement.groupElement(field));
    }

    /** The resolved entry points of one loaded libcudnn. */
    static final class Bindings {
        final NativeLibrary library;
        final MethodHandle getVersion, getErrorString;
        final Optional<MethodHandle> getLastErrorString;
        final MethodHandle create, destroy, setStream;
        final MethodHandle createTensor, destroyTensor, setTensor4d;
        final MethodHandle createFilter, destroyFilter, setFilter4d;
        final MethodHandle createConvolution, destroyConvolution, setConvolution2d, setGroupCount, setMathType;
        final MethodHandle getForwardAlgorithm, getForwardWorkspaceSize, convolutionForward, addTensor;
        final MethodHandle createActivation, destroyActivation, setActivation, activationForward;
        final MethodHandle createPooling, destroyPooling, setPooling2d, poolingForward;
        final MethodHandle softmaxForward;

        Bindings(NativeLibrary library) {
            this.library = library;
            FunctionDescriptor createDescriptor = FunctionDescriptor.of(JAVA_INT, ADDRESS);
            FunctionDescriptor destroyDescriptor = FunctionDescriptor.of(JAVA_INT, JAVA_LONG);
            getVersion = library.function("cudnnGetVersion", FunctionDescriptor.of(JAVA_LONG));
            getErrorString = library.function("cudnnGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
            // cuDNN 9 only: the detailed message behind the last failure, when there is one.
            getLastErrorString = library.optionalFunction("cudnnGetLastErrorString", FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG));
            create = library.function("cudnnCreate", createDescriptor);
            destroy = library.function("cudnnDestroy", destroyDescriptor);
            setStream = library.function("cudnnSetStream", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
            createTensor = library.function("cudnnCreateTensorDescriptor", createDescriptor);
            destroyTensor = library.function("cudnnDestroyTensorDescriptor", destroyDescriptor);
            // (desc, format, dataType, n, c, h, w)
            setTensor4d = library.function("cudnnSetTensor4dDescriptor", FunctionDescriptor.of(JAVA_INT, JAVA_LONG,
                    JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
            createFilter = library.function("cudnnCreateFilterDescriptor", createDescriptor);
            destroyFilter = library.function("cudnnDestroyFilterDescriptor", destroyDescriptor);
            // (desc, dataType, format, k, c, h, w): data type before format, unlike tensors
            setFilter4d = library.function("cudnnSetFilter4dDescriptor", FunctionDescriptor.of(JAVA_INT, JAVA_LONG,
                    JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
            createConvolution = library.function("cudnnCreateConvolutionDescriptor", createDescriptor);
            destroyConvolution = library.function("cudnnDestroyConvolutionDescriptor", destroyDescriptor);
            // (desc, padH, padW, strideH, strideW, dilationH, dilationW, mode, computeType)
            setConvolution2d = library.function("cudnnSetConvolution2dDescriptor", FunctionDescriptor.of(JAVA_INT, JAVA_LONG,
                    JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
            setGroupCount = library.function("cudnnSetConvolutionGroupCount", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT));
            setMathType = library.function("cudnnSetConvolutionMathType", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT));
            // (handle, xDesc, wDesc, convDesc, yDesc, requested, *returned, *perfResults)
            getForwardAlgorithm = library.function("cudnnGetConvolutionForwardAlgorithm_v7", FunctionDescriptor.of(JAVA_INT,
                    JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS));
            // (handle, xDesc, wDesc, convDesc, yDesc, algo, *bytes)
            getForwardWorkspaceSize = library.function("cudnnGetConvolutionForwardWorkspaceSize", FunctionDescriptor.of(JAVA_INT,
                    JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS));
            // (handle, *alpha, xDesc, x, wDesc, w, convDesc, algo, workspace, workspaceBytes, *beta, yDesc, y)
            convolutionForward = library.function("cudnnConvolutionForward", FunctionDescriptor.of(JAVA_INT, JAVA_LONG,
                    ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_LONG));
            // (handle, *alpha, aDesc, A, *beta, cDesc, C)
            addTensor = library.function("cudnnAddTensor", FunctionDescriptor.of(JAVA_INT, JAVA_LONG,
                    ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_LONG));
            createActivation = library.function("cudnnCreateActivationDescriptor", createDescriptor);
            destroyActivation = library.function("cudnnDestroyActivationDescriptor", destroyDescriptor);
            // (desc, mode, nanOpt, coef)
            setActivation = library.function("cudnnSetActivationDescriptor", FunctionDescriptor.of(JAVA_INT, JAVA_LONG,
                    JAVA_INT, JAVA_INT, JAVA_DOUBLE));
            // (handle, activationDesc, *alpha, xDesc, x, *beta, yDesc, y); pooling has the same shape
            FunctionDescriptor unaryForward = FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG,
                    ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_LONG);
            activationForward = library.function("cudnnActivationForward", unaryForward);
            createPooling = library.function("cudnnCreatePoolingDescriptor", createDescriptor);
            destroyPooling = library.function("cudnnDestroyPoolingDescriptor", destroyDescriptor);
            // (desc, mode, nanOpt, windowH, windowW, padH, padW, strideH, strideW)
            setPooling2d = library.function("cudnnSetPooling2dDescriptor", FunctionDescriptor.of(JAVA_INT, JAVA_LONG,
                    JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
            poolingForward = library.function("cudnnPoolingForward", unaryForward);
            // (handle, algo, mode, *alpha, xDesc, x, *beta, yDesc, y)
            softmaxForward = library.function("cudnnSoftmaxForward", FunctionDescriptor.of(JAVA_INT, JAVA_LONG,
                    JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_LONG));
        }

        /** cudnnGetVersion: 8907 for 8.9.7 (major*1000 + minor*100 + patch), 91400 for 9.14.0 (major*10000 + ...). */
        long version() {
            try {
                return (long) getVersion.invokeExact();
            } catch (Throwable t) {
                throw new CudaException("cudnnGetVersion could not be called in " + library.describe(), t);
            }
        }

        static String versionText(long v) {
            return v < 10000 ? v / 1000 + "." + v / 100 % 10 + "." + v % 100 : v / 10000 + "." + v / 100 % 100 + "." + v % 100;
        }

        String describe() {
            long v = version();
            return library.soname() + " (version " + v + ", " + versionText(v) + ")"
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
            if (status != STATUS_SUCCESS) throw new CudaException(function + " failed for " + op + ": " + statusText(status));
        }

        String statusText(int status) {
            String name;
            try {
                name = NativeLibrary.cString((MemorySegment) getErrorString.invokeExact(status)).orElse("unknown cuDNN status");
            } catch (Throwable t) {
                name = "unknown cuDNN status";
            }
            return name + " (" + status + ")" + lastErrorDetail();
        }

        private String lastErrorDetail() {
            if (getLastErrorString.isEmpty()) return "";
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment message = arena.allocate(1024);
                getLastErrorString.get().invokeExact(message, message.byteSize());
                String text = message.getString(0).strip();
                return text.isEmpty() ? "" : ": " + text;
            } catch (Throwable t) {
                return "";
            }
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
                bindings = new Bindings(NativeLibrary.load(NativeLibrary.CUDNN));
            } catch (RuntimeException | LinkageError e) {
                failure = e.getMessage() == null ? e.toString() : e.getMessage();
            }
            BINDINGS = bindings;
            FAILURE = failure;
        }
    }

    /** Every shape parameter of a convolution: the key of its cached descriptors and algorithm. */
    record ConvProblem(int n, int c, int h, int w, int k, int r, int s, int padH, int padW, int strideH, int strideW,
                       int dilationH, int dilationW, int groups) {
        int outH() {
            return Window.outputSize(h, r, strideH, padH, dilationH);
        }

        int outW() {
            return Window.outputSize(w, s, strideW, padW, dilationW);
        }

        @Override
        public String toString() {
            return "x " + n + "x" + c + "x" + h + "x" + w + ", weight " + k + "x" + c / Math.max(groups, 1) + "x" + r + "x" + s
                    + ", pad " + padH + "," + padW + ", stride " + strideH + "," + strideW
                    + ", dilation " + dilationH + "," + dilationW + ", groups " + groups;
        }
    }

    /** A convolution's descriptors and chosen algorithm. */
    private record ConvPlan(Descriptors descriptors, long x, long weight, long convolution, long y, long bias,
                            int algorithm, long workspaceBytes) {}

    private final Bindings api;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment one = arena.allocateFrom(JAVA_FLOAT, 1f);
    private final MemorySegment zero = arena.allocateFrom(JAVA_FLOAT, 0f);
    private final MemorySegment out = arena.allocate(JAVA_LONG);
    private final MemorySegment perf = arena.allocate(FORWARD_ALGO_PERF, FORWARD_ALGORITHMS);
    private final LinkedHashMap<ConvProblem, ConvPlan> plans = new LinkedHashMap<>(16, 0.75f, true);
    private final long handle;
    private boolean closed;

    /** Empty when libcudnn could be loaded; otherwise every place that was tried and what to set. */
    public static Optional<String> unavailableReason() {
        return Optional.ofNullable(ProcessWide.FAILURE);
    }

    /** "libcudnn.so.9 (version 91400, 9.14.0) from /usr/lib/...", or why it is unavailable. */
    public static String describe() {
        if (ProcessWide.BINDINGS == null) return "unavailable: " + ProcessWide.FAILURE;
        return ProcessWide.BINDINGS.describe();
    }

    /** A handle on the process's libcudnn whose work is ordered on {@code stream} (a cudaStream_t). */
    public Cudnn(long stream) {
        this(processBindings(), stream);
    }

    Cudnn(Bindings api, long stream) {
        this.api = api;
        try {
            api.check(() -> (int) api.create.invokeExact(out), "cudnnCreate", "handle creation");
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        handle = out.get(JAVA_LONG, 0);
        try {
            api.check(() -> (int) api.setStream.invokeExact(handle, stream), "cudnnSetStream", "handle creation");
        } catch (RuntimeException e) {
            try {
                api.check(() -> (int) api.destroy.invokeExact(handle), "cudnnDestroy", "cleanup after a failed cudnnSetStream");
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            arena.close();
            throw e;
        }
    }

    private static Bindings processBindings() {
        if (ProcessWide.BINDINGS == null) throw new CudaException("cuDNN unavailable: " + ProcessWide.FAILURE);
        return ProcessWide.BINDINGS;
    }

    /**
     * y = conv(x, weight) + bias, cross-correlation as in every framework. x is n x c x h x w, weight is
     * k x (c / groups) x r x s, y is n x k x outH x outW (see {@link Window#outputSize}), bias has k
     * values or is 0 for none. All device addresses, all FP32 NCHW.
     *
     * @param op names the graph node in error messages
     * @param ws supplies the algorithm's workspace, when it needs one
     */
    public void conv2d(String op, int n, int c, int h, int w, int k, int r, int s, int padH, int padW, int strideH, int strideW,
                       int dilH, int dilW, int groups, long x, long weight, long bias, long y, WorkspaceProvider ws) {
        requireOpen();
        ConvProblem problem = new ConvProblem(n, c, h, w, k, r, s, padH, padW, strideH, strideW, dilH, dilW, groups);
        validate(op, problem);
        String label = op + " [" + problem + "]";
        ConvPlan plan = planFor(problem, label);
        long workspace = plan.workspaceBytes() > 0 ? ws.workspace(plan.workspaceBytes()) : 0;
        api.check(() -> (int) api.convolutionForward.invokeExact(handle, one, plan.x(), x, plan.weight(), weight, plan.convolution(),
                plan.algorithm(), workspace, plan.workspaceBytes(), zero, plan.y(), y), "cudnnConvolutionForward", label);
        if (bias != 0) {
            api.check(() -> (int) api.addTensor.invokeExact(handle, one, plan.bias(), bias, one, plan.y(), y), "cudnnAddTensor", label + " bias");
        }
    }

    private static void validate(String op, ConvProblem p) {
        if (p.n() <= 0 || p.c() <= 0 || p.h() <= 0 || p.w() <= 0 || p.k() <= 0 || p.r() <= 0 || p.s() <= 0
                || p.padH() < 0 || p.padW() < 0 || p.strideH() <= 0 || p.strideW() <= 0 || p.dilationH() <= 0 || p.dilationW() <= 0
                || p.groups() <= 0) {
            throw new IllegalArgumentException(op + ": convolution with a non-positive size, stride, dilation or group count (" + p + ")");
        }
        if (p.c() % p.groups() != 0 || p.k() % p.groups() != 0) {
            throw new IllegalArgumentException(op + ": " + p.c() + " input and " + p.k() + " output channels do not split into "
                    + p.groups() + " groups");
        }
        if (p.outH() <= 0 || p.outW() <= 0) {
            throw new IllegalArgumentException(op + ": the kernel does not fit the padded input (" + p + ")");
        }
    }

    private ConvPlan planFor(ConvProblem p, String label) {
        ConvPlan plan = plans.get(p);
        if (plan != null) return plan;
        Descriptors d = new Descriptors();
        try {
            long xDesc = d.tensor(p.n(), p.c(), p.h(), p.w(), label);
            long wDesc = d.filter(p.k(), p.c() / p.groups(), p.r(), p.s(), label);
            long convDesc = d.convolution(p, label);
            long yDesc = d.tensor(p.n(), p.k(), p.outH(), p.outW(), label);
            long biasDesc = d.tensor(1, p.k(), 1, 1, label);
            int algorithm = chooseAlgorithm(xDesc, wDesc, convDesc, yDesc, label);
            api.check(() -> (int) api.getForwardWorkspaceSize.invokeExact(handle, xDesc, wDesc, convDesc, yDesc, algorithm, out),
                    "cudnnGetConvolutionForwardWorkspaceSize", label);
            plan = new ConvPlan(d, xDesc, wDesc, convDesc, yDesc, biasDesc, algorithm, out.get(JAVA_LONG, 0));
        } catch (RuntimeException e) {
            d.closeAfter(e);
            throw e;
        }
        plans.put(p, plan);
        if (plans.size() > CACHED_CONVOLUTIONS) {
            Iterator<ConvPlan> eldest = plans.values().iterator();
            ConvPlan evicted = eldest.next();
            eldest.remove();
            evicted.descriptors().close();
        }
        return plan;
    }

    /** The heuristics' best-ranked algorithm that works in FP32 (no tensor-op math) within the workspace limit. */
    private int chooseAlgorithm(long xDesc, long wDesc, long convDesc, long yDesc, String label) {
        MemorySegment returned = out;
        api.check(() -> (int) api.getForwardAlgorithm.invokeExact(handle, xDesc, wDesc, convDesc, yDesc, FORWARD_ALGORITHMS, returned, perf),
                "cudnnGetConvolutionForwardAlgorithm_v7", label);
        int count = Math.min(returned.get(JAVA_INT, 0), FORWARD_ALGORITHMS);
        List<String> rejected = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long base = i * FORWARD_ALGO_PERF.byteSize();
            int algorithm = perf.get(JAVA_INT, base + PERF_ALGO);
            int status = perf.get(JAVA_INT, base + PERF_STATUS);
            long memory = perf.get(JAVA_LONG, base + PERF_MEMORY);
            int mathType = perf.get(JAVA_INT, base + PERF_MATH_TYPE);
            if (status != STATUS_SUCCESS) {
                rejected.add("algorithm " + algorithm + ": " + api.statusText(status));
            } else if (mathType == TENSOR_OP_MATH || mathType == TENSOR_OP_MATH_ALLOW_CONVERSION) {
                rejected.add("algorithm " + algorithm + ": tensor-op math");
            } else if (memory > WORKSPACE_LIMIT) {
                rejected.add("algorithm " + algorithm + ": needs " + memory + " bytes of workspace");
            } else {
                return algorithm;
            }
        }
        throw new CudaException("cudnnGetConvolutionForwardAlgorithm_v7 offered no usable algorithm for " + label + " (limit "
                + WORKSPACE_LIMIT + " bytes of workspace, FP32 math): " + (rejected.isEmpty() ? "none returned" : String.join("; ", rejected)));
    }

    /**
     * Max or average pooling of x (n x c x h x w) into y (n x c x outH x outW), with
     * outH = {@link Window#outputSize}(h, kh, strideH, padH, 1) and likewise outW.
     *
     * @param countIncludePad for averages: divide by the full window, padding included, rather than by the
     *                        values inside the input
     */
    public void pool(String op, boolean max, boolean countIncludePad, int n, int c, int h, int w, int kh, int kw,
                     int padH, int padW, int strideH, int strideW, long x, long y) {
        requireOpen();
        int outH = Window.outputSize(h, kh, strideH, padH, 1), outW = Window.outputSize(w, kw, strideW, padW, 1);
        int mode = max ? POOLING_MAX : countIncludePad ? POOLING_AVERAGE_COUNT_INCLUDE_PADDING : POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
        String label = op + " [" + (max ? "max" : "average") + " pool " + kh + "x" + kw + " of " + n + "x" + c + "x" + h + "x" + w
                + ", pad " + padH + "," + padW + ", stride " + strideH + "," + strideW + "]";
        try (Descriptors d = new Descriptors()) {
            long pooling = d.pooling(mode, kh, kw, padH, padW, strideH, strideW, label);
            long xDesc = d.tensor(n, c, h, w, label);
            long yDesc = d.tensor(n, c, outH, outW, label);
            api.check(() -> (int) api.poolingForward.invokeExact(handle, pooling, one, xDesc, x, zero, yDesc, y), "cudnnPoolingForward", label);
        }
    }

    /** Softmax over the channels of x (n x c x h x w) at every (n, h, w), into y; max-subtracted for accuracy. */
    public void softmaxChannels(String op, int n, int c, int h, int w, long x, long y) {
        requireOpen();
        String label = op + " [softmax over channels of " + n + "x" + c + "x" + h + "x" + w + "]";
        try (Descriptors d = new Descriptors()) {
            long desc = d.tensor(n, c, h, w, label);
            api.check(() -> (int) api.softmaxForward.invokeExact(handle, SOFTMAX_ACCURATE, SOFTMAX_MODE_CHANNEL, one, desc, x, zero, desc, y),
                    "cudnnSoftmaxForward", label);
        }
    }

    /** y = max(x, 0) over {@code count} values; NaN becomes 0, as the CPU's {@code v > 0 ? v : 0} does. */
    public void relu(String op, long x, long y, int count) {
        requireOpen();
        String label = op + " [relu of " + count + " values]";
        try (Descriptors d = new Descriptors()) {
            long activation = d.activation(ACTIVATION_RELU, NOT_PROPAGATE_NAN, label);
            long desc = d.tensor(1, 1, 1, count, label);
            api.check(() -> (int) api.activationForward.invokeExact(handle, activation, one, desc, x, zero, desc, y), "cudnnActivationForward", label);
        }
    }

    /** How many convolution problems hold cached descriptors. */
    int cachedConvolutions() {
        return plans.size();
    }

    private void requireOpen() {
        if (closed) throw new IllegalStateException("cuDNN handle used after close");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        RuntimeException failure = null;
        for (ConvPlan plan : plans.values()) {
            try {
                plan.descriptors().close();
            } catch (RuntimeException e) {
                if (failure == null) failure = e;
                else failure.addSuppressed(e);
            }
        }
        plans.clear();
        try {
            api.check(() -> (int) api.destroy.invokeExact(handle), "cudnnDestroy", "close");
        } catch (RuntimeException e) {
            if (failure == null) failure = e;
            else failure.addSuppressed(e);
        }
        arena.close();
        if (failure != null) throw failure;
    }

    /**
     * Descriptors made for one call or one cached plan, destroyed together in reverse order of creation.
     * Each is registered as soon as it exists, so a failure while setting it up still frees it.
     */
    private final class Descriptors implements AutoCloseable {
        private record Created(long descriptor, MethodHandle destroy, String function) {}

        private final List<Created> created = new ArrayList<>();

        private long create(MethodHandle create, String createName, MethodHandle destroy, String destroyName, String label) {
            api.check(() -> (int) create.invokeExact(out), createName, label);
            long descriptor = out.get(JAVA_LONG, 0);
            created.add(new Created(descriptor, destroy, destroyName));
            return descriptor;
        }

        long tensor(int n, int c, int h, int w, String label) {
            long desc = create(api.createTensor, "cudnnCreateTensorDescriptor", api.destroyTensor, "cudnnDestroyTensorDescriptor", label);
            api.check(() -> (int) api.setTensor4d.invokeExact(desc, TENSOR_NCHW, DATA_FLOAT, n, c, h, w), "cudnnSetTensor4dDescriptor",
                    label + " tensor " + n + "x" + c + "x" + h + "x" + w);
            return desc;
        }

        long filter(int k, int c, int r, int s, String label) {
            long desc = create(api.createFilter, "cudnnCreateFilterDescriptor", api.destroyFilter, "cudnnDestroyFilterDescriptor", label);
            api.check(() -> (int) api.setFilter4d.invokeExact(desc, DATA_FLOAT, TENSOR_NCHW, k, c, r, s), "cudnnSetFilter4dDescriptor", label);
            return desc;
        }

        long convolution(ConvProblem p, String label) {
            long desc = create(api.createConvolution, "cudnnCreateConvolutionDescriptor", api.destroyConvolution,
                    "cudnnDestroyConvolutionDescriptor", label);
            api.check(() -> (int) api.setConvolution2d.invokeExact(desc, p.padH(), p.padW(), p.strideH(), p.strideW(),
                    p.dilationH(), p.dilationW(), CROSS_CORRELATION, DATA_FLOAT), "cudnnSetConvolution2dDescriptor", label);
            int groups = p.groups();
            api.check(() -> (int) api.setGroupCount.invokeExact(desc, groups), "cudnnSetConvolutionGroupCount", label);
            api.check(() -> (int) api.setMathType.invokeExact(desc, FMA_MATH), "cudnnSetConvolutionMathType", label);
            return desc;
        }

        long pooling(int mode, int kh, int kw, int padH, int padW, int strideH, int strideW, String label) {
            long desc = create(api.createPooling, "cudnnCreatePoolingDescriptor", api.destroyPooling, "cudnnDestroyPoolingDescriptor", label);
            // NaN propagates through max pooling as on the CPU, whose Math.max keeps NaN.
            api.check(() -> (int) api.setPooling2d.invokeExact(desc, mode, PROPAGATE_NAN, kh, kw, padH, padW, strideH, strideW),
                    "cudnnSetPooling2dDescriptor", label);
            return desc;
        }

        long activation(int mode, int nanOption, String label) {
            long desc = create(api.createActivation, "cudnnCreateActivationDescriptor", api.destroyActivation,
                    "cudnnDestroyActivationDescriptor", label);
            api.check(() -> (int) api.setActivation.invokeExact(desc, mode, nanOption, 0.0), "cudnnSetActivationDescriptor", label);
            return desc;
        }

        @Override
        public void close() {
            RuntimeException failure = null;
            for (int i = created.size() - 1; i >= 0; i--) {
                Created c = created.get(i);
                try {
                    api.check(() -> (int) c.destroy().invokeExact(c.descriptor()), c.function(), "descriptor cleanup");
                } catch (RuntimeException e) {
                    if (failure == null) failure = e;
                    else failure.addSuppressed(e);
                }
            }
            created.clear();
            if (failure != null) throw failure;
        }

        /** Frees everything after {@code cause} interrupted the setup, keeping cause as the exception to report. */
        void closeAfter(RuntimeException cause) {
            try {
                close();
            } catch (RuntimeException e) {
                cause.addSuppressed(e);
            }
        }
    }
}
