package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.BuiltinKernels;
import dev.silhouette.backend.cuda.CudaStream;
import dev.silhouette.backend.cuda.KernelLauncher;
import dev.silhouette.backend.cuda.SilhouetteThresholdKernel;
import org.testng.SkipException;

import java.io.File;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The low-bit kernels of cuda/ compiled for the host by g++ (native-build/emulate) and launched through
 * the glue's {@link KernelLauncher} on host memory: their code runs, on the CPU, without a GPU. Device
 * addresses are host addresses of {@link #memory} segments. Skips the calling test when g++ is absent.
 */
final class HostEmulator implements KernelLauncher, AutoCloseable {
    private static Path library;
    private final Arena arena = Arena.ofShared();
    private final MethodHandle launch, sweepAscending;

    HostEmulator() {
        Path so = build();
        SymbolLookup lookup = SymbolLookup.libraryLookup(so, arena);
        launch = Linker.nativeLinker().downcallHandle(lookup.find("emu_launch").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        sweepAscending = Linker.nativeLinker().downcallHandle(lookup.find("emu_sweep_ascending").orElseThrow(),
                FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
    }

    /**
     * Whether later launches run a block's threads from thread 0 up between barriers, rather than from the
     * highest index down: each order catches the missing barriers the other lets pass (launch.cpp's Block).
     */
    void sweepAscending(boolean ascending) {
        try {
            sweepAscending.invokeExact(ascending ? 1 : 0);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Builds native-build/emulate/launch.cpp once per JVM. */
    private static synchronized Path build() {
        if (library != null) return library;
        Path gxx = null;
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "g++"))) gxx = Path.of(dir, "g++");
        }
        if (gxx == null) throw new SkipException("g++ not found on PATH: the host emulation of the kernels cannot be built");
        try {
            Path root = root();
            Path out = Files.createTempDirectory("silhouette-emulation").resolve("libsilhouette_emulation.so");
            Process p = new ProcessBuilder(gxx.toString(), "-std=c++20", "-O1", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared", "-pthread",
                    "-Wall", "-Werror", "-Wno-unknown-pragmas", "-I", root.resolve("cuda").toString(), "-o", out.toString(),
                    root.resolve("native-build/emulate/launch.cpp").toString()).redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) throw new AssertionError("g++ could not build the kernel emulation:\n" + log);
            library = out;
            return out;
        } catch (java.io.IOException e) {
            throw new AssertionError("cannot build the kernel emulation", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    static Path root() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("native-build/build-kernels.sh"))) return p;
        }
        throw new IllegalStateException("no native-build/build-kernels.sh above " + Path.of("").toAbsolutePath());
    }

    @Override
    public void launch(String kernel, int gridX, int gridY, int blockX, int sharedBytes, CudaStream stream, Object... args) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment slots = call.allocate(ValueLayout.JAVA_LONG, Math.max(1, args.length));
            for (int i = 0; i < args.length; i++) {
                long slot = switch (args[i]) {
                    case Long v -> v;
                    case Integer v -> v;
                    case Float v -> Integer.toUnsignedLong(Float.floatToRawIntBits(v));
                    case Double v -> Double.doubleToRawLongBits(v);
                    default -> throw new IllegalArgumentException(kernel + " argument " + i + " has unsupported type " + args[i].getClass());
                };
                slots.setAtIndex(ValueLayout.JAVA_LONG, i, slot);
            }
            int rc = (int) launch.invokeExact(call.allocateFrom(kernel), gridX, gridY, blockX, slots, args.length);
            if (rc != 0) throw new AssertionError("emulated launch of " + kernel + " failed with " + rc + " (-1 unknown kernel, -2 argument count, -3 block, -4 deadlock: threads of a block waiting at different barriers)");
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** BuiltinKernels.interpolate's launch of the emulated silhouette_interpolate_* kernels (its grid: pixels on x, planes on y). */
    void interpolate(long x, long y, int planes, int h, int w, int oh, int ow, boolean bilinear, CudaStream s) {
        BuiltinKernels.Kernel k = bilinear ? BuiltinKernels.Kernel.INTERPOLATE_BILINEAR : BuiltinKernels.Kernel.INTERPOLATE_NEAREST;
        int gridX = (int) Math.min(BuiltinKernels.MAX_FLAT_BLOCKS, ((long) oh * ow + BuiltinKernels.BLOCK - 1) / BuiltinKernels.BLOCK);
        launch(k.symbol(), gridX, Math.min(BuiltinKernels.MAX_GRID_Y, planes), BuiltinKernels.BLOCK, 0, s, x, y, planes, h, w, oh, ow);
    }

    /** Host memory standing in for device memory; addresses are what the glue passes as device addresses. */
    long put(long[] a) {
        return copy(MemorySegment.ofArray(a), (long) a.length * Long.BYTES);
    }

    long put(int[] a) {
        return copy(MemorySegment.ofArray(a), (long) a.length * Integer.BYTES);
    }

    long put(float[] a) {
        return copy(MemorySegment.ofArray(a), (long) a.length * Float.BYTES);
    }

    long put(byte[] a) {
        return copy(MemorySegment.ofArray(a), a.length);
    }

    /** Filled with 0xA5 so an unwritten output word shows. */
    long allocate(long bytes) {
        MemorySegment s = arena.allocate(Math.max(bytes, 1), 16);
        s.fill((byte) 0xA5);
        return s.address();
    }

    private long copy(MemorySegment from, long bytes) {
        MemorySegment s = arena.allocate(Math.max(bytes, 1), 16);
        if (bytes > 0) s.copyFrom(from);
        return s.address();
    }

    long[] longs(long address, int n) {
        return MemorySegment.ofAddress(address).reinterpret((long) n * Long.BYTES).toArray(ValueLayout.JAVA_LONG);
    }

    int[] ints(long address, int n) {
        return MemorySegment.ofAddress(address).reinterpret((long) n * Integer.BYTES).toArray(ValueLayout.JAVA_INT);
    }

    float[] floats(long address, int n) {
        return MemorySegment.ofAddress(address).reinterpret((long) n * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT);
    }

    byte[] bytes(long address, int n) {
        return MemorySegment.ofAddress(address).reinterpret(n).toArray(ValueLayout.JAVA_BYTE);
    }

    @Override
    public void close() {
        arena.close();
    }
}
