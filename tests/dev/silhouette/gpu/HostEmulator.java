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
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.TimeUnit;

/**
 * The kernels of cuda/ compiled for the host by g++ (native-build/emulate) and launched through the glue's
 * {@link KernelLauncher} on host memory: their code runs, on the CPU, without a GPU. Device addresses are
 * host addresses of {@link #memory} segments. Two builds: {@link #HostEmulator()} loads the emulation into
 * this JVM; {@link #sanitized()} runs each launch in a separate process built with AddressSanitizer and
 * UndefinedBehaviorSanitizer (emulate_main.cpp), every buffer an argument points into copied there at its
 * exact size and back, so a read past a buffer's end fails the launch. Skips the calling test when g++ is absent.
 */
final class HostEmulator implements KernelLauncher, AutoCloseable {
    private static Path library, replayTool;
    private final Arena arena = Arena.ofShared();
    private final MethodHandle launch, configure, lastError;
    private final Path replay;
    /** Every segment handed out: start address to size in bytes (the sanitized launches send the ones an argument points into). */
    private final NavigableMap<Long, Long> segments = new ConcurrentSkipListMap<>();
    /** Blocks run shuffled unless a test asks otherwise: a kernel whose blocks depend on grid order fails everywhere. */
    static final long DEFAULT_BLOCK_ORDER_SEED = 0x5EED_B10C_0DE5L;
    private long blockOrderSeed = DEFAULT_BLOCK_ORDER_SEED;
    private boolean ascending, poisonShared = true;

    HostEmulator() {
        this(false);
    }

    private HostEmulator(boolean sanitized) {
        if (sanitized) {
            replay = buildReplayTool();
            launch = configure = lastError = null;
            return;
        }
        replay = null;
        Path so = build();
        SymbolLookup lookup = SymbolLookup.libraryLookup(so, arena);
        Linker linker = Linker.nativeLinker();
        launch = linker.downcallHandle(lookup.find("emu_launch").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        configure = linker.downcallHandle(lookup.find("emu_configure").orElseThrow(),
                FunctionDescriptor.ofVoid(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        lastError = linker.downcallHandle(lookup.find("emu_last_error").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS));
        configure(DEFAULT_BLOCK_ORDER_SEED, false, true);
    }

    /** Launches in a separate process built with AddressSanitizer and UndefinedBehaviorSanitizer (slower: one process per launch). */
    static HostEmulator sanitized() {
        return new HostEmulator(true);
    }

    /**
     * Whether later launches run a block's threads from thread 0 up between barriers, rather than from the
     * highest index down: each order catches the missing barriers the other lets pass (launch.cpp's Block).
     */
    void sweepAscending(boolean ascending) {
        configure(blockOrderSeed, ascending, poisonShared);
    }

    /**
     * How later launches run: blocks in an order drawn from {@code blockOrderSeed} (0: grid order), threads swept
     * ascending or descending, shared memory poisoned at each block's start or left as the last block left it.
     */
    void configure(long blockOrderSeed, boolean ascending, boolean poisonShared) {
        this.blockOrderSeed = blockOrderSeed;
        this.ascending = ascending;
        this.poisonShared = poisonShared;
        if (configure == null) return;
        try {
            configure.invokeExact(blockOrderSeed, ascending ? 1 : 0, poisonShared ? 1 : 0);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    private static final List<String> FLAGS = List.of("-std=c++20", "-ffp-contract=off", "-fno-fast-math", "-pthread", "-Wall", "-Werror", "-Wno-unknown-pragmas");

    /** Builds native-build/emulate/launch.cpp into a shared library once per JVM. */
    private static synchronized Path build() {
        if (library == null) library = compile("libsilhouette_emulation.so", List.of("-O1", "-fPIC", "-shared"), "launch.cpp");
        return library;
    }

    /** Builds the sanitized replay tool once per JVM (unoptimised: the sanitizers, not speed, are the point). */
    private static synchronized Path buildReplayTool() {
        if (replayTool == null) {
            replayTool = compile("emulate_main", List.of("-O0", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"),
                    "launch.cpp", "emulate_main.cpp");
        }
        return replayTool;
    }

    private static Path compile(String output, List<String> extra, String... sources) {
        Path gxx = null;
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "g++"))) gxx = Path.of(dir, "g++");
        }
        if (gxx == null) throw new SkipException("g++ not found on PATH: the host emulation of the kernels cannot be built");
        try {
            Path root = root();
            Path out = Files.createTempDirectory("silhouette-emulation").resolve(output);
            List<String> command = new ArrayList<>(List.of(gxx.toString()));
            command.addAll(FLAGS);
            command.addAll(extra);
            command.addAll(List.of("-I", root.resolve("cuda").toString(), "-o", out.toString()));
            for (String s : sources) command.add(root.resolve("native-build/emulate").resolve(s).toString());
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) throw new AssertionError("g++ could not build " + output + ":\n" + log);
            return out;
        } catch (java.io.IOException e) {
            throw new AssertionError("cannot build " + output, e);
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
        long[] slots = new long[args.length];
        for (int i = 0; i < args.length; i++) {
            slots[i] = switch (args[i]) {
                case Long v -> v;
                case Integer v -> v;
                case Float v -> Integer.toUnsignedLong(Float.floatToRawIntBits(v));
                case Double v -> Double.doubleToRawLongBits(v);
                case int[] v -> put(v);   // a by-value struct of ints: launch.cpp copies it from this address
                default -> throw new IllegalArgumentException(kernel + " argument " + i + " has unsupported type " + args[i].getClass());
            };
        }
        String error = replay == null ? launchHere(kernel, gridX, gridY, blockX, slots) : launchSanitized(kernel, gridX, gridY, blockX, slots);
        if (error != null) throw new AssertionError("emulated launch of " + kernel + " (grid " + gridX + "x" + gridY + ", block " + blockX + ") failed: " + error);
    }

    private String launchHere(String kernel, int gridX, int gridY, int blockX, long[] slots) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment s = call.allocate(ValueLayout.JAVA_LONG, Math.max(1, slots.length));
            for (int i = 0; i < slots.length; i++) s.setAtIndex(ValueLayout.JAVA_LONG, i, slots[i]);
            int rc = (int) launch.invokeExact(call.allocateFrom(kernel), gridX, gridY, blockX, s, slots.length);
            if (rc == 0) return null;
            MemorySegment text = (MemorySegment) lastError.invokeExact();
            return "code " + rc + ": " + text.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** The segment an argument points into, or null when the value is no address of ours. */
    private Map.Entry<Long, Long> segmentOf(long value) {
        Map.Entry<Long, Long> e = segments.floorEntry(value);
        return e != null && value < e.getKey() + Math.max(1, e.getValue()) ? e : null;
    }

    private String launchSanitized(String kernel, int gridX, int gridY, int blockX, long[] slots) {
        List<Map.Entry<Long, Long>> buffers = new ArrayList<>();
        Map<Long, Integer> index = new HashMap<>();
        for (long v : slots) {
            Map.Entry<Long, Long> e = segmentOf(v);
            if (e != null && !index.containsKey(e.getKey())) {
                index.put(e.getKey(), buffers.size());
                buffers.add(e);
            }
        }
        long bytes = 64 + kernel.length() + 13L * slots.length;
        for (var b : buffers) bytes += 8 + b.getValue();
        ByteBuffer request = ByteBuffer.allocate(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
        request.put("SEMU".getBytes(StandardCharsets.US_ASCII)).putInt(kernel.length()).put(kernel.getBytes(StandardCharsets.US_ASCII));
        request.putInt(gridX).putInt(gridY).putInt(blockX).putLong(blockOrderSeed).putInt(ascending ? 1 : 0).putInt(poisonShared ? 1 : 0);
        request.putInt(buffers.size());
        for (var b : buffers) {
            request.putLong(b.getValue());
            request.put(MemorySegment.ofAddress(b.getKey()).reinterpret(b.getValue()).asByteBuffer());
        }
        request.putInt(slots.length);
        for (long v : slots) {
            Map.Entry<Long, Long> e = segmentOf(v);
            if (e == null) request.put((byte) 0).putLong(v);
            else request.put((byte) 1).putInt(index.get(e.getKey())).putLong(v - e.getKey());
        }
        try {
            Path dir = Files.createTempDirectory("silhouette-replay");
            Path in = dir.resolve("request"), out = dir.resolve("response");
            Files.write(in, Arrays.copyOf(request.array(), request.position()));
            ProcessBuilder pb = new ProcessBuilder(replay.toString(), in.toString(), out.toString()).redirectErrorStream(true);
            pb.environment().put("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:exitcode=86");
            pb.environment().put("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=87");
            Process p = pb.start();
            String log = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(5, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                return "the sanitized replay did not finish in 5 minutes";
            }
            if (p.exitValue() != 0) return "the sanitized replay exited with " + p.exitValue() + ":\n" + log;
            ByteBuffer response = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN);
            int rc = response.getInt();
            byte[] text = new byte[response.getInt()];
            response.get(text);
            for (var b : buffers) {
                ByteBuffer to = MemorySegment.ofAddress(b.getKey()).reinterpret(b.getValue()).asByteBuffer();
                to.put(response.slice(response.position(), b.getValue().intValue()));
                response.position(response.position() + b.getValue().intValue());
            }
            Files.delete(in);
            Files.delete(out);
            Files.delete(dir);
            return rc == 0 ? null : "code " + rc + ": " + new String(text, StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            throw new AssertionError("the sanitized replay of " + kernel + " failed", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
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
        segments.put(s.address(), bytes);
        return s.address();
    }

    private long copy(MemorySegment from, long bytes) {
        MemorySegment s = arena.allocate(Math.max(bytes, 1), 16);
        if (bytes > 0) s.copyFrom(from);
        segments.put(s.address(), bytes);
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
