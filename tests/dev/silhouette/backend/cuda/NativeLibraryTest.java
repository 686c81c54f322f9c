package dev.silhouette.backend.cuda;

import dev.silhouette.tensor.Window;
import org.testng.SkipException;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertThrows;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;
import static org.testng.Assert.fail;

/**
 * The cuDNN/cuBLAS bindings against stub libraries built with gcc at test time: resolution order, error
 * messages, symbol binding, argument order and the row-major SGEMM trick, with no GPU and no NVIDIA
 * library installed. The stubs log every call with the arguments they received (descriptor shapes
 * included), and the cuBLAS stub computes a real column-major SGEMM on host memory.
 */
public class NativeLibraryTest {
    /** Address the cuDNN stub refuses as x, to provoke a failing status. */
    private static final long POISON = 0xDEAD;

    private static final String CUDNN_STUB = """
            #include <stdarg.h>
            #include <stddef.h>
            #include <stdint.h>
            #include <stdio.h>
            #include <string.h>

            #define HANDLE ((void *)0xC0DE)
            #define POISON ((uintptr_t)0xDEAD)
            #define FIRST_DESCRIPTOR 0x1000
            #define MAX_DESCRIPTORS 4096

            static char log_text[1 << 16];
            static size_t log_length;
            static int live_descriptors;
            static uintptr_t next_descriptor = FIRST_DESCRIPTOR;
            static int dims[MAX_DESCRIPTORS][4];
            static char last_error[256];
            static char shapes[8][64];
            static int next_shape;

            static void note(const char *format, ...) {
                va_list args;
                va_start(args, format);
                size_t room = sizeof log_text - log_length;
                int written = vsnprintf(log_text + log_length, room, format, args);
                va_end(args);
                if (written > 0 && (size_t) written + 1 < room) {
                    log_length += written;
                    log_text[log_length++] = '\\n';
                    log_text[log_length] = 0;
                }
            }
            static int fail(const char *why) {
                snprintf(last_error, sizeof last_error, "%s", why);
                return BAD_PARAM;
            }
            static int *of(void *d) { return dims[((uintptr_t) d - FIRST_DESCRIPTOR) % MAX_DESCRIPTORS]; }
            static const char *shape(void *d) {
                char *s = shapes[next_shape++ % 8];
                int *x = of(d);
                snprintf(s, 64, "%dx%dx%dx%d", x[0], x[1], x[2], x[3]);
                return s;
            }
            static void keep(void *d, int a, int b, int c, int e) { int *x = of(d); x[0] = a; x[1] = b; x[2] = c; x[3] = e; }
            #define CHECK_HANDLE(h) if ((h) != HANDLE) return fail("wrong handle")

            const char *stub_log(void) { return log_text; }
            int stub_live_descriptors(void) { return live_descriptors; }

            size_t cudnnGetVersion(void) { return STUB_VERSION; }
            const char *cudnnGetErrorString(int status) {
                if (status == 0) return "CUDNN_STATUS_SUCCESS";
                if (status == BAD_PARAM) return "CUDNN_STATUS_BAD_PARAM";
                return "CUDNN_STATUS_NOT_SUPPORTED";
            }
            #if STUB_VERSION >= 90000
            void cudnnGetLastErrorString(char *message, size_t size) {
                snprintf(message, size, "%s", last_error);
                last_error[0] = 0;
            }
            #endif

            int cudnnCreate(void **handle) { *handle = HANDLE; note("create"); return 0; }
            int cudnnDestroy(void *handle) { CHECK_HANDLE(handle); note("destroy"); return 0; }
            int cudnnSetStream(void *handle, void *stream) {
                CHECK_HANDLE(handle);
                note("stream %#lx", (unsigned long) (uintptr_t) stream);
                return 0;
            }

            static int create_descriptor(void **d) {
                uintptr_t id = next_descriptor++;
                *d = (void *) id;
                keep(*d, 0, 0, 0, 0);
                live_descriptors++;
                return 0;
            }
            static int destroy_descriptor(void *d) { live_descriptors--; return 0; }
            #define DESCRIPTOR(kind) \\
                int cudnnCreate##kind##Descriptor(void **d) { return create_descriptor(d); } \\
                int cudnnDestroy##kind##Descriptor(void *d) { return destroy_descriptor(d); }
            DESCRIPTOR(Tensor) DESCRIPTOR(Filter) DESCRIPTOR(Convolution) DESCRIPTOR(Activation) DESCRIPTOR(Pooling)

            int cudnnSetTensor4dDescriptor(void *d, int format, int type, int n, int c, int h, int w) {
                note("tensor format=%d type=%d %dx%dx%dx%d", format, type, n, c, h, w);
                if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return fail("non-positive tensor size");
                keep(d, n, c, h, w);
                return 0;
            }
            int cudnnSetFilter4dDescriptor(void *d, int type, int format, int k, int c, int h, int w) {
                note("filter type=%d format=%d %dx%dx%dx%d", type, format, k, c, h, w);
                keep(d, k, c, h, w);
                return 0;
            }
            int cudnnSetConvolution2dDescriptor(void *d, int padH, int padW, int strideH, int strideW,
                                                int dilationH, int dilationW, int mode, int computeType) {
                note("convolution pad=%d,%d stride=%d,%d dilation=%d,%d mode=%d compute=%d",
                     padH, padW, strideH, strideW, dilationH, dilationW, mode, computeType);
                return dilationH == 7 ? fail("stub refuses dilation 7") : 0;
            }
            int cudnnSetConvolutionGroupCount(void *d, int groups) { note("groups=%d", groups); return 0; }
            int cudnnSetConvolutionMathType(void *d, int math) { note("math=%d", math); return 0; }

            typedef struct {
                int algo;
                int status;
                float time;
                size_t memory;
                int determinism;
                int mathType;
                int reserved[3];
            } perf_t;

            int cudnnGetConvolutionForwardAlgorithm_v7(void *h, void *x, void *w, void *conv, void *y,
                                                       int requested, int *returned, perf_t *results) {
                CHECK_HANDLE(h);
                note("algorithm query x=%s w=%s y=%s requested=%d", shape(x), shape(w), shape(y), requested);
                perf_t offered[4] = {
                    {5, BAD_PARAM, 0.1f, 0, 1, 0, {0}},
                    {1, 0, 0.2f, 0, 1, 1, {0}},
                    {4, 0, 0.3f, (size_t) 1 << 40, 1, 0, {0}},
                    {6, 0, 0.4f, 4096, 1, 3, {0}},
                };
                int n = requested < 4 ? requested : 4;
                memcpy(results, offered, n * sizeof(perf_t));
                *returned = n;
                return 0;
            }
            int cudnnGetConvolutionForwardWorkspaceSize(void *h, void *x, void *w, void *conv, void *y, int algo, size_t *bytes) {
                CHECK_HANDLE(h);
                *bytes = algo == 6 ? 4096 : 12345;
                note("workspace size algo=%d", algo);
                return 0;
            }
            int cudnnConvolutionForward(void *h, const float *alpha, void *xd, void *x, void *wd, void *w, void *conv,
                                        int algo, void *ws, size_t wsBytes, const float *beta, void *yd, void *y) {
                CHECK_HANDLE(h);
                note("forward x=%s@%#lx w=%s@%#lx y=%s@%#lx algo=%d workspace=%#lx/%zu alpha=%g beta=%g",
                     shape(xd), (unsigned long) (uintptr_t) x, shape(wd), (unsigned long) (uintptr_t) w,
                     shape(yd), (unsigned long) (uintptr_t) y, algo, (unsigned long) (uintptr_t) ws, wsBytes, *alpha, *beta);
                return (uintptr_t) x == POISON ? fail("stub refuses the poison address as x") : 0;
            }
            int cudnnAddTensor(void *h, const float *alpha, void *bd, void *b, const float *beta, void *yd, void *y) {
                CHECK_HANDLE(h);
                note("add bias=%s@%#lx y=%s@%#lx alpha=%g beta=%g", shape(bd), (unsigned long) (uintptr_t) b,
                     shape(yd), (unsigned long) (uintptr_t) y, *alpha, *beta);
                return 0;
            }
            int cudnnSetActivationDescriptor(void *d, int mode, int nan, double coef) {
                note("activation mode=%d nan=%d coef=%g", mode, nan, coef);
                return 0;
            }
            int cudnnActivationForward(void *h, void *ad, const float *alpha, void *xd, void *x, const float *beta, void *yd, void *y) {
                CHECK_HANDLE(h);
                note("activation forward x=%s@%#lx y=%s@%#lx alpha=%g beta=%g", shape(xd), (unsigned long) (uintptr_t) x,
                     shape(yd), (unsigned long) (uintptr_t) y, *alpha, *beta);
                return 0;
            }
            int cudnnSetPooling2dDescriptor(void *d, int mode, int nan, int wh, int ww, int ph, int pw, int sh, int sw) {
                note("pooling mode=%d nan=%d window=%dx%d pad=%d,%d stride=%d,%d", mode, nan, wh, ww, ph, pw, sh, sw);
                return 0;
            }
            int cudnnPoolingForward(void *h, void *pd, const float *alpha, void *xd, void *x, const float *beta, void *yd, void *y) {
                CHECK_HANDLE(h);
                note("pooling forward x=%s@%#lx y=%s@%#lx alpha=%g beta=%g", shape(xd), (unsigned long) (uintptr_t) x,
                     shape(yd), (unsigned long) (uintptr_t) y, *alpha, *beta);
                return (uintptr_t) x == POISON ? fail("stub refuses the poison address as x") : 0;
            }
            #ifndef OMIT_SOFTMAX
            int cudnnSoftmaxForward(void *h, int algo, int mode, const float *alpha, void *xd, void *x,
                                    const float *beta, void *yd, void *y) {
                CHECK_HANDLE(h);
                note("softmax algo=%d mode=%d x=%s@%#lx y=%s@%#lx alpha=%g beta=%g", algo, mode, shape(xd),
                     (unsigned long) (uintptr_t) x, shape(yd), (unsigned long) (uintptr_t) y, *alpha, *beta);
                return 0;
            }
            #endif
            """;

    private static final String CUBLAS_STUB = """
            #include <stddef.h>
            #include <stdint.h>
            #include <stdio.h>

            #define HANDLE ((void *)0xB1A5)
            #define INVALID_VALUE 7

            static char log_text[4096];
            static size_t log_length;

            static void note(const char *text, unsigned long value) {
                size_t room = sizeof log_text - log_length;
                int written = snprintf(log_text + log_length, room, "%s %#lx\\n", text, value);
                if (written > 0 && (size_t) written < room) log_length += written;
            }
            static int at_least_one(int v) { return v > 1 ? v : 1; }

            const char *stub_log(void) { return log_text; }

            int cublasCreate_v2(void **handle) { *handle = HANDLE; note("create", 0); return 0; }
            int cublasDestroy_v2(void *handle) { note("destroy", (uintptr_t) handle); return handle == HANDLE ? 0 : INVALID_VALUE; }
            int cublasSetStream_v2(void *handle, void *stream) {
                note("stream", (uintptr_t) stream);
                return handle == HANDLE ? 0 : INVALID_VALUE;
            }
            int cublasGetProperty(int type, int *value) {
                if (type < 0 || type > 2) return INVALID_VALUE;
                *value = type == 0 ? STUB_MAJOR : type == 1 ? STUB_MINOR : STUB_PATCH;
                return 0;
            }
            int cublasGetVersion_v2(void *handle, int *version) {
                *version = STUB_MAJOR * 10000 + STUB_MINOR * 100 + STUB_PATCH;
                return 0;
            }
            #ifdef WITH_STATUS_STRING
            const char *cublasGetStatusString(int status) {
                return status == INVALID_VALUE ? "an invalid value was used as an argument" : "stub status";
            }
            #endif

            /* Column-major C = alpha op(A) op(B) + beta C on host memory, with cuBLAS's argument checks. */
            int cublasSgemm_v2(void *handle, int transa, int transb, int m, int n, int k, const float *alpha,
                               const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc) {
                if (handle != HANDLE) return INVALID_VALUE;
                if ((transa != 0 && transa != 1) || (transb != 0 && transb != 1) || m < 0 || n < 0 || k < 0) return INVALID_VALUE;
                if (lda < at_least_one(transa == 0 ? m : k) || ldb < at_least_one(transb == 0 ? k : n) || ldc < at_least_one(m))
                    return INVALID_VALUE;
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < m; i++) {
                        double sum = 0;
                        for (int l = 0; l < k; l++) {
                            float a = transa == 0 ? A[i + (size_t) l * lda] : A[l + (size_t) i * lda];
                            float b = transb == 0 ? B[l + (size_t) j * ldb] : B[j + (size_t) l * ldb];
                            sum += (double) a * b;
                        }
                        float previous = *beta == 0 ? 0 : C[i + (size_t) j * ldc];
                        C[i + (size_t) j * ldc] = (float) (*alpha * sum + *beta * previous);
                    }
                return 0;
            }
            """;

    /** A library that links another that the test deletes, as libcublas.so links libcublasLt.so. */
    private static final String NEEDS_MISSING_DEPENDENCY = """
            extern int silhouette_gone(void);
            int cudnnGetVersion(void) { return silhouette_gone(); }
            """;

    private static final NativeLibrary.SystemLoader NOTHING_INSTALLED = (name, arena) -> {
        throw new IllegalArgumentException("Cannot open library: " + name);
    };

    private Path work;
    private Path cudnn8, cudnn9, cudnn9WithoutSoftmax, cublas12, cublas13, brokenCudnn;
    private int folders;

    @BeforeClass
    public void buildStubs() throws IOException, InterruptedException {
        try {
            Process p = new ProcessBuilder("gcc", "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            if (p.waitFor() != 0) throw new SkipException("gcc --version failed: the binding tests build stub libraries with gcc");
        } catch (IOException e) {
            throw new SkipException("gcc is not installed: the binding tests build stub libcudnn/libcublas with it (" + e.getMessage() + ")");
        }
        work = Files.createTempDirectory("silhouette-stubs");
        cudnn8 = compile("cudnn8", CUDNN_STUB, "-DSTUB_VERSION=8907", "-DBAD_PARAM=3");
        cudnn9 = compile("cudnn9", CUDNN_STUB, "-DSTUB_VERSION=90100", "-DBAD_PARAM=2000");
        cudnn9WithoutSoftmax = compile("cudnn9-nosoftmax", CUDNN_STUB, "-DSTUB_VERSION=90100", "-DBAD_PARAM=2000", "-DOMIT_SOFTMAX");
        cublas12 = compile("cublas12", CUBLAS_STUB, "-DSTUB_MAJOR=12", "-DSTUB_MINOR=6", "-DSTUB_PATCH=4");
        cublas13 = compile("cublas13", CUBLAS_STUB, "-DSTUB_MAJOR=13", "-DSTUB_MINOR=1", "-DSTUB_PATCH=0", "-DWITH_STATUS_STRING");
        Path gone = compile("silhouette_gone", "int silhouette_gone(void) { return 1; }");
        Path renamedGone = work.resolve("libsilhouette_gone.so");
        Files.move(gone, renamedGone);
        brokenCudnn = compile("broken", NEEDS_MISSING_DEPENDENCY, "-L" + work, "-Wl,--no-as-needed", "-lsilhouette_gone");
        Files.delete(renamedGone);
    }

    @AfterClass(alwaysRun = true)
    public void deleteStubs() throws IOException {
        if (work == null) return;
        try (Stream<Path> files = Files.walk(work)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    private Path compile(String name, String source, String... flags) throws IOException, InterruptedException {
        Path c = work.resolve(name + ".c"), so = work.resolve(name + ".so");
        Files.writeString(c, source);
        List<String> command = new ArrayList<>(List.of("gcc", "-shared", "-fPIC", "-O1", "-o", so.toString(), c.toString()));
        command.addAll(List.of(flags));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) fail("gcc failed on " + name + ":\n" + output);
        return so;
    }

    /**
     * A new folder holding copies of the given stubs under the given names. Every test gets its own files,
     * so each loads its own copy with its own call log.
     */
    private Path folder(Map<String, Path> files) throws IOException {
        Path dir = Files.createDirectory(work.resolve("folder" + folders++));
        for (var e : files.entrySet()) Files.copy(e.getValue(), dir.resolve(e.getKey()));
        return dir;
    }

    private static NativeLibrary.SystemLoader systemFolder(Path dir) {
        return (name, arena) -> {
            Path file = dir.resolve(name);
            if (!Files.exists(file)) throw new IllegalArgumentException("Cannot open library: " + name);
            return SymbolLookup.libraryLookup(file, arena);
        };
    }

    private static NativeLibrary.Search folders(Path... dirs) {
        return new NativeLibrary.Search(List.of(dirs), "-D" + NativeLibrary.FOLDERS_PROPERTY, NOTHING_INSTALLED);
    }

    /** The call log the stub loaded as {@code library} kept. */
    private static String log(NativeLibrary library) {
        return (String) stubCall(library, "stub_log", ValueLayout.ADDRESS, segment -> NativeLibrary.cString((MemorySegment) segment).orElseThrow());
    }

    private static int liveDescriptors(NativeLibrary library) {
        return (int) stubCall(library, "stub_live_descriptors", ValueLayout.JAVA_INT, value -> value);
    }

    private static Object stubCall(NativeLibrary library, String symbol, ValueLayout result, java.util.function.Function<Object, Object> convert) {
        Path file = library.path().orElseThrow();
        MemorySegment address = SymbolLookup.libraryLookup(file, Arena.global()).find(symbol).orElseThrow();
        MethodHandle h = Linker.nativeLinker().downcallHandle(address, FunctionDescriptor.of(result));
        try {
            return convert.apply(h.invoke());
        } catch (Throwable t) {
            throw new AssertionError(symbol + " failed", t);
        }
    }

    // ---- resolution ----

    @Test
    public void configuredFolderComesBeforeTheSystemLoader() throws IOException {
        Path configured = folder(Map.of("libcudnn.so.8", cudnn8));
        Path system = folder(Map.of("libcudnn.so.9", cudnn9));
        NativeLibrary lib = NativeLibrary.load(NativeLibrary.CUDNN,
                new NativeLibrary.Search(List.of(configured), "test", systemFolder(system)));
        assertEquals(lib.soname(), "libcudnn.so.8");
        assertEquals(lib.majorVersion(), 8);
        assertEquals(lib.path().orElseThrow(), configured.resolve("libcudnn.so.8").toAbsolutePath());
        assertEquals(new Cudnn.Bindings(lib).version(), 8907L);
    }

    @Test
    public void newestMajorVersionWinsWithinAFolder() throws IOException {
        Path dir = folder(Map.of("libcudnn.so.8", cudnn8, "libcudnn.so.9", cudnn9));
        NativeLibrary lib = NativeLibrary.load(NativeLibrary.CUDNN, folders(dir));
        assertEquals(lib.soname(), "libcudnn.so.9");
        assertEquals(new Cudnn.Bindings(lib).version(), 90100L);
    }

    @Test
    public void systemLoaderFindsTheNewestCublasAndItsFile() throws IOException {
        Path system = folder(Map.of("libcublas.so.12", cublas12, "libcublas.so.13", cublas13));
        NativeLibrary lib = NativeLibrary.load(NativeLibrary.CUBLAS, new NativeLibrary.Search(List.of(), null, systemFolder(system)));
        assertEquals(lib.soname(), "libcublas.so.13");
        assertEquals(lib.majorVersion(), 13);
        // Found by soname, the file is recovered through dladdr.
        assertEquals(lib.path().orElseThrow().getFileName().toString(), "libcublas.so.13");
        assertEquals(new Cublas.Bindings(lib).describe(), "libcublas.so.13 (version 130100, 13.1.0) from " + lib.path().orElseThrow());
    }

    @Test
    public void foldersAreSearchedInOrderEachWithEveryName() throws IOException {
        Path empty = folder(Map.of());
        Path second = folder(Map.of("libcublas.so.12", cublas12));
        Path third = folder(Map.of("libcublas.so.13", cublas13));
        NativeLibrary lib = NativeLibrary.load(NativeLibrary.CUBLAS, folders(empty, second, third));
        assertEquals(lib.path().orElseThrow(), second.resolve("libcublas.so.12").toAbsolutePath(),
                "a folder earlier in the list wins even with an older version");
        assertEquals(new Cublas.Bindings(lib).version(), 120604);
    }

    @Test
    public void aLibraryThatCannotLoadIsSkipped() throws IOException {
        Path dir = folder(Map.of("libcudnn.so.9", brokenCudnn, "libcudnn.so.8", cudnn8));
        assertEquals(NativeLibrary.load(NativeLibrary.CUDNN, folders(dir)).soname(), "libcudnn.so.8");
    }

    @Test
    public void notFoundNamesEveryNameAndPlaceTriedAndWhatToSet() throws IOException {
        Path empty = folder(Map.of());
        Path broken = folder(Map.of("libcudnn.so.9", brokenCudnn));
        Path missing = work.resolve("no-such-folder");
        CudaException e = expectThrows(CudaException.class, () -> NativeLibrary.load(NativeLibrary.CUDNN,
                new NativeLibrary.Search(List.of(empty, missing, broken), "SILHOUETTE_CUDA_LIBS", NOTHING_INSTALLED)));
        String m = e.getMessage();
        for (String expected : List.of("no cuDNN library could be loaded",
                empty.resolve("libcudnn.so.9") + " (absent)", empty.resolve("libcudnn.so.8") + " (absent)",
                missing + " (no such folder)",
                broken.resolve("libcudnn.so.9").toString(), "libsilhouette_gone.so", // the loader's own reason
                broken.resolve("libcudnn.so.8") + " (absent)",
                "[folders from SILHOUETTE_CUDA_LIBS]",
                "then by soname libcudnn.so.9 (", "libcudnn.so.8 (", "[system loader: LD_LIBRARY_PATH, ldconfig cache]",
                "Install cuDNN 9 or 8", "-Dsilhouette.cuda.libs", "SILHOUETTE_CUDA_LIBS", "LD_LIBRARY_PATH")) {
            assertTrue(m.contains(expected), "message lacks «" + expected + "»: " + m);
        }
        assertTrue(m.indexOf(empty.toString()) < m.indexOf(missing.toString()) && m.indexOf(missing.toString()) < m.indexOf(broken.toString()),
                "folders listed in search order: " + m);
    }

    @Test
    public void notFoundWithoutFoldersSaysNoneIsConfigured() {
        String m = expectThrows(CudaException.class, () -> NativeLibrary.load(NativeLibrary.CUBLAS, new NativeLibrary.Search(List.of(), null, NOTHING_INSTALLED))).getMessage();
        assertTrue(m.contains("no folder (neither -Dsilhouette.cuda.libs nor SILHOUETTE_CUDA_LIBS is set)"), m);
        assertTrue(m.contains("libcublas.so.13 (") && m.contains("libcublas.so.12 ("), m);
        assertTrue(m.contains("Install cuBLAS 13 or 12"), m);
    }

    @Test
    public void missingSymbolNamesTheSymbolAndTheFile() throws IOException {
        Path dir = folder(Map.of("libcudnn.so.9", cudnn9WithoutSoftmax));
        NativeLibrary lib = NativeLibrary.load(NativeLibrary.CUDNN, folders(dir));
        String m = expectThrows(CudaException.class, () -> new Cudnn.Bindings(lib)).getMessage();
        assertTrue(m.contains("cudnnSoftmaxForward"), m);
        assertTrue(m.contains(dir.resolve("libcudnn.so.9").toAbsolutePath().toString()), m);
    }

    @Test
    public void propertyListsSeveralFolders() {
        String before = System.getProperty(NativeLibrary.FOLDERS_PROPERTY);
        try {
            System.setProperty(NativeLibrary.FOLDERS_PROPERTY, "/opt/a: /opt/b::");
            NativeLibrary.Search search = NativeLibrary.Search.fromEnvironment();
            assertEquals(search.folders(), List.of(Path.of("/opt/a"), Path.of("/opt/b")));
            assertEquals(search.foldersOrigin(), "-D" + NativeLibrary.FOLDERS_PROPERTY);
            assertTrue(search.system() != null, "the system loader is searched after the folders");
        } finally {
            if (before == null) System.clearProperty(NativeLibrary.FOLDERS_PROPERTY);
            else System.setProperty(NativeLibrary.FOLDERS_PROPERTY, before);
        }
    }

    @Test
    public void candidatesMustEndInAMajorVersion() {
        assertThrows(IllegalArgumentException.class, () -> new NativeLibrary.Candidates("x", List.of("libx.so"), "f"));
    }

    // ---- cuBLAS ----

    private Cublas.Bindings cublas(Path stub, String name) throws IOException {
        return new Cublas.Bindings(NativeLibrary.load(NativeLibrary.CUBLAS, folders(folder(Map.of(name, stub)))));
    }

    @Test
    public void cublasHandleIsCreatedBoundToTheStreamAndDestroyed() throws IOException {
        Cublas.Bindings api = cublas(cublas12, "libcublas.so.12");
        Cublas blas = new Cublas(api, 0x5EA);
        assertEquals(log(api.library), "create 0\nstream 0x5ea\n");
        blas.close();
        assertEquals(log(api.library), "create 0\nstream 0x5ea\ndestroy 0xb1a5\n");
    }

    @Test
    public void sgemmRowMajorMatchesAPlainProduct() throws IOException {
        Cublas.Bindings api = cublas(cublas13, "libcublas.so.13");
        Random random = new Random(7);
        try (Cublas blas = new Cublas(api, 0); Arena arena = Arena.ofConfined()) {
            for (boolean transB : new boolean[] {false, true}) {
                int m = 5, n = 7, k = 3;
                // Leading dimensions wider than the rows, to catch a swapped or dropped stride.
                int lda = k + 2, ldb = (transB ? k : n) + 1, ldc = n + 3;
                float[] a = randoms(random, m * lda), b = randoms(random, (transB ? n : k) * ldb), c = randoms(random, m * ldc);
                float alpha = 1.5f, beta = 0.25f;
                MemorySegment da = arena.allocateFrom(ValueLayout.JAVA_FLOAT, a), db = arena.allocateFrom(ValueLayout.JAVA_FLOAT, b),
                        dc = arena.allocateFrom(ValueLayout.JAVA_FLOAT, c);
                blas.sgemmRowMajor("fc", m, n, k, alpha, da.address(), lda, db.address(), ldb, beta, dc.address(), ldc, transB);
                float[] result = dc.toArray(ValueLayout.JAVA_FLOAT);
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < ldc; j++) {
                        float expected = c[i * ldc + j];
                        if (j < n) {
                            double sum = 0;
                            for (int l = 0; l < k; l++) sum += (double) a[i * lda + l] * (transB ? b[j * ldb + l] : b[l * ldb + j]);
                            expected = (float) (alpha * sum + beta * c[i * ldc + j]);
                        }
                        assertEquals(result[i * ldc + j], expected, 1e-5f, "C[" + i + "][" + j + "], transB=" + transB
                                + (j >= n ? " (padding, must stay untouched)" : ""));
                    }
                }
            }
        }
    }

    @Test
    public void cublasFailureNamesCallStatusAndOpAndLeavesTheHandleUsable() throws IOException {
        for (var version : List.of(Map.entry("libcublas.so.13", cublas13), Map.entry("libcublas.so.12", cublas12))) {
            Cublas.Bindings api = cublas(version.getValue(), version.getKey());
            try (Cublas blas = new Cublas(api, 0); Arena arena = Arena.ofConfined()) {
                long c = arena.allocate(ValueLayout.JAVA_FLOAT, 4).address();
                // ldc below n: cuBLAS refuses it (row-major ldc becomes the column-major leading dimension).
                String m = expectThrows(CudaException.class, () -> blas.sgemmRowMajor("layer4.fc", 2, 2, 1, 1f, c, 1, c, 2, 0f, c, 1, false)).getMessage();
                assertTrue(m.startsWith("cublasSgemm_v2 failed for layer4.fc"), m);
                assertTrue(m.contains("CUBLAS_STATUS_INVALID_VALUE (7"), m);
                if (version.getKey().endsWith("13")) assertTrue(m.contains("an invalid value was used as an argument"), m);
                blas.sgemmRowMajor("layer4.fc", 2, 2, 1, 1f, c, 1, c, 2, 0f, c, 2, false);
            }
        }
    }

    @Test
    public void cublasUseAfterCloseIsRefused() throws IOException {
        Cublas blas = new Cublas(cublas(cublas13, "libcublas.so.13"), 0);
        blas.close();
        blas.close();
        assertThrows(IllegalStateException.class, () -> blas.sgemmRowMajor("fc", 1, 1, 1, 1f, 0, 1, 0, 1, 0f, 0, 1, false));
    }

    // ---- cuDNN ----

    private Cudnn.Bindings cudnn(Path stub) throws IOException {
        return new Cudnn.Bindings(NativeLibrary.load(NativeLibrary.CUDNN, folders(folder(Map.of("libcudnn.so.9", stub)))));
    }

    @Test
    public void cudnnVersionIsDecodedForBothMajors() throws IOException {
        assertEquals(Cudnn.Bindings.versionText(8907), "8.9.7");
        assertEquals(Cudnn.Bindings.versionText(90100), "9.1.0");
        assertEquals(Cudnn.Bindings.versionText(91400), "9.14.0");
        Cudnn.Bindings v8 = new Cudnn.Bindings(NativeLibrary.load(NativeLibrary.CUDNN, folders(folder(Map.of("libcudnn.so.8", cudnn8)))));
        assertTrue(v8.describe().startsWith("libcudnn.so.8 (version 8907, 8.9.7) from /"), v8.describe());
    }

    @Test
    public void cudnnHandleIsCreatedBoundToTheStreamAndDestroyed() throws IOException {
        Cudnn.Bindings api = cudnn(cudnn9);
        Cudnn dnn = new Cudnn(api, 0xABC);
        assertEquals(log(api.library), "create\nstream 0xabc\n");
        dnn.close();
        assertTrue(log(api.library).endsWith("destroy\n"), log(api.library));
    }

    @Test
    public void conv2dSetsUpDescriptorsChoosesAnAlgorithmOnceAndAddsBias() throws IOException {
        Cudnn.Bindings api = cudnn(cudnn9);
        List<Long> workspaceRequests = new ArrayList<>();
        Cudnn.WorkspaceProvider ws = bytes -> {
            workspaceRequests.add(bytes);
            return 0x3000;
        };
        try (Cudnn dnn = new Cudnn(api, 0)) {
            // x 2x8x10x12, 4 groups, 16 filters of 2x3x5, pad 1x2, stride 2x1, dilation 1x2: y 2x16x5x8
            dnn.conv2d("stem", 2, 8, 10, 12, 16, 3, 5, 1, 2, 2, 1, 1, 2, 4, 0x100, 0x200, 0x300, 0x400, ws);
            String log = log(api.library);
            for (String expected : List.of(
                    "tensor format=0 type=0 2x8x10x12",
                    "filter type=0 format=0 16x2x3x5",
                    "convolution pad=1,2 stride=2,1 dilation=1,2 mode=1 compute=0",
                    "groups=4",
                    "math=3",
                    "tensor format=0 type=0 2x16x5x8",
                    "tensor format=0 type=0 1x16x1x1",
                    "algorithm query x=2x8x10x12 w=16x2x3x5 y=2x16x5x8 requested=8",
                    "workspace size algo=6",
                    "forward x=2x8x10x12@0x100 w=16x2x3x5@0x200 y=2x16x5x8@0x400 algo=6 workspace=0x3000/4096 alpha=1 beta=0",
                    "add bias=1x16x1x1@0x300 y=2x16x5x8@0x400 alpha=1 beta=1")) {
                assertTrue(log.contains(expected + "\n"), "log lacks «" + expected + "»:\n" + log);
            }
            assertEquals(workspaceRequests, List.of(4096L));
            assertEquals(Window.outputSize(10, 3, 2, 1, 1), 5);
            assertEquals(Window.outputSize(12, 5, 1, 2, 2), 8);

            dnn.conv2d("stem", 2, 8, 10, 12, 16, 3, 5, 1, 2, 2, 1, 1, 2, 4, 0x100, 0x200, 0, 0x400, ws);
            String second = log(api.library).substring(log.length());
            assertFalse(second.contains("algorithm query"), "the algorithm is chosen once per problem:\n" + second);
            assertFalse(second.contains("tensor format"), "descriptors are reused per problem:\n" + second);
            assertFalse(second.contains("add bias"), "no bias add when bias is 0:\n" + second);
            assertTrue(second.startsWith("forward "), second);
            assertEquals(dnn.cachedConvolutions(), 1);

            dnn.conv2d("stem", 1, 8, 10, 12, 16, 3, 5, 1, 2, 2, 1, 1, 2, 4, 0x100, 0x200, 0, 0x400, ws);
            assertTrue(log(api.library).contains("algorithm query x=1x8x10x12"), "a new batch size is a new problem");
            assertEquals(dnn.cachedConvolutions(), 2);
            assertEquals(liveDescriptors(api.library), 10, "two cached problems of five descriptors each");
        }
        assertEquals(liveDescriptors(api.library), 0, "close frees every cached descriptor");
    }

    @Test
    public void cudnnFailureNamesCallStatusAndOpFreesDescriptorsAndLeavesTheHandleUsable() throws IOException {
        for (Path stub : List.of(cudnn8, cudnn9)) {
            Cudnn.Bindings api = cudnn(stub);
            boolean v9 = stub == cudnn9;
            try (Cudnn dnn = new Cudnn(api, 0)) {
                String m = expectThrows(CudaException.class, () -> dnn.pool("layer1.pool", true, false, 1, 4, 8, 8, 3, 3, 1, 1, 2, 2, POISON, 0x200)).getMessage();
                assertTrue(m.startsWith("cudnnPoolingForward failed for layer1.pool"), m);
                assertTrue(m.contains("CUDNN_STATUS_BAD_PARAM (" + (v9 ? 2000 : 3) + ")"), m);
                assertEquals(m.contains("stub refuses the poison address as x"), v9, "cuDNN 9 adds its last error message: " + m);
                assertEquals(liveDescriptors(api.library), 0, "descriptors freed after the failure");

                String c = expectThrows(CudaException.class, () -> dnn.conv2d("conv7", 1, 4, 32, 32, 4, 3, 3, 7, 7, 1, 1, 7, 7, 1, 0x100, 0x200, 0, 0x300,
                        bytes -> 0)).getMessage();
                assertTrue(c.startsWith("cudnnSetConvolution2dDescriptor failed for conv7 [x 1x4x32x32, weight 4x4x3x3"), c);
                assertEquals(liveDescriptors(api.library), 0, "a half-built plan is freed");
                assertEquals(dnn.cachedConvolutions(), 0, "and not cached");

                dnn.pool("layer1.pool", true, false, 1, 4, 8, 8, 3, 3, 1, 1, 2, 2, 0x100, 0x200);
                assertTrue(log(api.library).contains("pooling forward x=1x4x8x8@0x100 y=1x4x4x4@0x200 alpha=1 beta=0\n"), log(api.library));
            }
        }
    }

    @Test
    public void poolingSoftmaxAndReluPassTheirModes() throws IOException {
        Cudnn.Bindings api = cudnn(cudnn9);
        try (Cudnn dnn = new Cudnn(api, 0)) {
            dnn.pool("max", true, false, 1, 2, 7, 7, 3, 3, 1, 1, 2, 2, 0x10, 0x20);
            dnn.pool("avg", false, true, 1, 2, 7, 7, 2, 2, 0, 0, 2, 2, 0x10, 0x20);
            dnn.pool("avg-exclude", false, false, 1, 2, 7, 7, 3, 3, 1, 1, 1, 1, 0x10, 0x20);
            dnn.softmaxChannels("prob", 2, 10, 3, 4, 0x10, 0x20);
            dnn.relu("act", 0x10, 0x20, 1000);
            String log = log(api.library);
            for (String expected : List.of(
                    "pooling mode=0 nan=1 window=3x3 pad=1,1 stride=2,2", "pooling forward x=1x2x7x7@0x10 y=1x2x4x4@0x20",
                    "pooling mode=1 nan=1 window=2x2 pad=0,0 stride=2,2", "pooling forward x=1x2x7x7@0x10 y=1x2x3x3@0x20",
                    "pooling mode=2 nan=1 window=3x3 pad=1,1 stride=1,1", "pooling forward x=1x2x7x7@0x10 y=1x2x7x7@0x20",
                    "softmax algo=1 mode=1 x=2x10x3x4@0x10 y=2x10x3x4@0x20 alpha=1 beta=0",
                    "activation mode=1 nan=0 coef=0", "activation forward x=1x1x1x1000@0x10 y=1x1x1x1000@0x20 alpha=1 beta=0")) {
                assertTrue(log.contains(expected), "log lacks «" + expected + "»:\n" + log);
            }
            assertEquals(liveDescriptors(api.library), 0, "per-call descriptors are freed");
        }
    }

    @Test
    public void conv2dRejectsShapesThatDoNotFit() throws IOException {
        Cudnn.Bindings api = cudnn(cudnn9);
        try (Cudnn dnn = new Cudnn(api, 0)) {
            String groups = expectThrows(IllegalArgumentException.class,
                    () -> dnn.conv2d("g", 1, 6, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, 1, 1, 0, 1, b -> 0)).getMessage();
            assertTrue(groups.startsWith("g: 6 input and 4 output channels do not split into 4 groups"), groups);
            String fit = expectThrows(IllegalArgumentException.class,
                    () -> dnn.conv2d("big", 1, 1, 2, 2, 1, 5, 5, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, b -> 0)).getMessage();
            assertTrue(fit.startsWith("big: the kernel does not fit the padded input"), fit);
            assertFalse(log(api.library).contains("tensor"), "nothing reaches cuDNN");
        }
    }

    @Test
    public void forwardAlgoPerfLayoutMatchesTheHeader() {
        assertEquals(Cudnn.FORWARD_ALGO_PERF.byteSize(), 48L, "sizeof(cudnnConvolutionFwdAlgoPerf_t) on LP64");
    }

    private static float[] randoms(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = random.nextFloat() * 2 - 1;
        return v;
    }
}
