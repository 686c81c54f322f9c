package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Op;
import dev.silhouette.graph.Op.LowBitConv2d.ActivationCodes;
import dev.silhouette.quant.LowBitWeights;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * The packed convolution's x86 integer kernels (native-build/cpu/lowbit_conv.c), reached through
 * java.lang.foreign: 8-bit multiply-adds (AVX-512 VNNI, or AVX2's vpmaddwd) that the Vector API has no
 * operation for (../shared/probes). {@link LowBitConv}'s Java formulations stay the specification and the
 * fallback: without the library, off x86, with {@code SILHOUETTE_NATIVE_CPU=off} and for bias-corrected
 * weights the Java kernel runs. Arrays are passed in place (critical downcalls).
 */
public final class NativeLowBitConv {
    private NativeLowBitConv() {}

    public static final String RESOURCE = "/dev/silhouette/native/libsilhouette_cpu.so";

    /** Instruction set of the kernel in use: what {@code silhouette_cpu_isa} reports. */
    public enum Isa { NONE, AVX512_VNNI, AVX2 }

    private static final MethodHandle CONV;
    private static final Isa ISA;
    private static final String UNAVAILABLE;

    static {
        MethodHandle conv = null;
        Isa isa = Isa.NONE;
        String why = null;
        try {
            if ("off".equalsIgnoreCase(System.getenv("SILHOUETTE_NATIVE_CPU"))) throw new IllegalStateException("SILHOUETTE_NATIVE_CPU=off");
            Path lib = extract();
            SymbolLookup symbols = SymbolLookup.libraryLookup(lib, Arena.global());
            Linker linker = Linker.nativeLinker();
            MethodHandle isaCall = linker.downcallHandle(symbols.findOrThrow("silhouette_cpu_isa"), FunctionDescriptor.of(ValueLayout.JAVA_INT));
            MethodHandle dims = linker.downcallHandle(symbols.findOrThrow("silhouette_dims_count"), FunctionDescriptor.of(ValueLayout.JAVA_INT));
            if ((int) dims.invokeExact() != Dims.COUNT) throw new IllegalStateException("the native library's parameter list differs from this build's");
            isa = Isa.values()[(int) isaCall.invokeExact()];
            var a = ValueLayout.ADDRESS;
            conv = linker.downcallHandle(symbols.findOrThrow("silhouette_lowbit_conv"),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, a, a, a, a, a, a, a, a, a, a, a, a), Linker.Option.critical(true));
            if (isa == Isa.NONE) why = "this CPU has neither AVX-512 VNNI nor AVX2";
        } catch (Throwable t) {
            why = t.getMessage() == null ? t.toString() : t.getMessage();
            conv = null;
            isa = Isa.NONE;
        }
        CONV = conv;
        ISA = isa;
        UNAVAILABLE = why;
    }

    /** Indices of the native dimension array, as the enum in lowbit_conv.c. */
    static final class Dims {
        static final int N = 0, C = 1, H = 2, W = 3, REGIONS = 4, ZERO = 5, GROUPS = 6, CG = 7, OG = 8, KH = 9, KW = 10, SH = 11, SW = 12,
                PH = 13, PW = 14, DH = 15, DW = 16, OH = 17, OW = 18, WSETS = 19, OGP = 20, CPG = 21, N0 = 22, N1 = 23, OY0 = 24, OY1 = 25, CLASS = 26,
                COUNT = 27;
    }

    /** The best instruction set the kernels have here. */
    public static Isa isa() {
        return ISA;
    }

    /** Every instruction set the kernels can use here (an AVX-512 VNNI machine also runs the AVX2 variant). */
    public static java.util.List<Isa> isas() {
        return switch (ISA) {
            case NONE -> java.util.List.of();
            case AVX512_VNNI -> java.util.List.of(Isa.AVX512_VNNI, Isa.AVX2);
            case AVX2 -> java.util.List.of(Isa.AVX2);
        };
    }

    /** Why the native kernels do not run here, or null when they do. */
    public static String unavailable() {
        return UNAVAILABLE;
    }

    /** Whether this op runs natively: the library loaded, no bias-correction offsets, at most 8 regions. */
    public static boolean supports(Op.LowBitConv2d op) {
        return ISA != Isa.NONE && !op.weights().hasOffsets() && op.codes().regions() <= 8;
    }

    /** Weights in the kernel's layout, made once per lowered layer (the first time it runs). */
    private record Prepared(Object codes, int[] weightSums, float[] scales, int outPadded, int channelsPadded) {}

    private static final Map<Isa, Map<LowBitWeights, Prepared>> PREPARED = Map.of(
            Isa.AVX512_VNNI, Collections.synchronizedMap(new WeakHashMap<>()), Isa.AVX2, Collections.synchronizedMap(new WeakHashMap<>()));

    private static Prepared prepare(LowBitWeights w, Isa isa) {
        boolean vnni = isa == Isa.AVX512_VNNI;
        int lanes = vnni ? 16 : 8, pack = vnni ? 4 : 2;
        int ogp = (w.outPerGroup() + lanes - 1) / lanes * lanes, cpg = (w.inPerGroup() + pack - 1) / pack * pack;
        int sets = w.regions(), g = w.groups(), taps = w.taps(), outC = g * w.outPerGroup();
        int perSet = g * taps * cpg * ogp;
        byte[] bytes = vnni ? new byte[sets * perSet] : null;
        short[] shorts = vnni ? null : new short[sets * perSet];
        int[] sums = new int[sets * outC];
        float[] scales = new float[sets * outC];
        for (int s = 0; s < sets; s++) {
            short[] codes = w.codes().get(s);
            System.arraycopy(w.scales().get(s), 0, scales, s * outC, outC);
            for (int gi = 0; gi < g; gi++)
                for (int t = 0; t < taps; t++)
                    for (int c = 0; c < w.inPerGroup(); c++)
                        for (int o = 0; o < w.outPerGroup(); o++) {
                            short code = codes[w.row(gi, t, c) + o];
                            // [set][g][tap][c / pack][o][c % pack]
                            int at = s * perSet + (((gi * taps + t) * (cpg / pack) + c / pack) * ogp + o) * pack + c % pack;
                            if (vnni) bytes[at] = (byte) code;
                            else shorts[at] = code;
                            sums[s * outC + gi * w.outPerGroup() + o] += code;
                        }
        }
        return new Prepared(vnni ? bytes : shorts, sums, scales, ogp, cpg);
    }

    /**
     * Runs the op: when {@code acc} is not null its accumulators ([n][oc][oy][ox][r], zero-point corrected),
     * and when {@code out} is not null the dequantized output (NCHW). Images, or output rows for small batches,
     * are split across the common pool's threads, one native call each.
     */
    static void run(Tensor x, Tensor map, Tensor bias, Op.LowBitConv2d op, Isa isa, int[] acc, float[] out) {
        if (CONV == null || !supports(op) || !isas().contains(isa)) {
            throw new IllegalStateException("the native low-bit kernel cannot run " + op.conv() + " with " + isa + ": " + UNAVAILABLE);
        }
        Prepared p = PREPARED.get(isa).computeIfAbsent(op.weights(), w -> prepare(w, isa));
        Shape s = x.shape();
        Window win = op.conv().window();
        int oh = win.outH(s.h()), ow = win.outW(s.w());
        int regions = op.codes().regions(), outC = op.conv().outChannels();
        int[] bits = new int[regions];
        float[] steps = new float[regions];
        for (int r = 0; r < regions; r++) {
            bits[r] = op.codes().bits(r);
            steps[r] = op.codes().step(r);
        }
        byte[] classes = op.codes() instanceof ActivationCodes.DrqClass d ? RegionOps.drqMap(x, d.block(), d.threshold()) : null;
        int wantedClass = op.codes() instanceof ActivationCodes.DrqClass d ? (d.sensitive() ? 1 : 0) : -1;
        int threads = Workers.threads();
        boolean byImage = s.n() >= 2 * threads;
        long macs = (long) s.n() * outC * oh * ow * op.conv().taps();
        // A small layer (the bundled model at batch 1) runs on this thread, as in CpuOps: handing it over costs more.
        int units = macs < CpuOps.SMALL_MACS ? 1 : byImage ? Math.min(s.n(), 4 * threads) : Math.min(oh, 2 * threads);
        int z = op.codes().zeroPoint();
        Workers.run(units, (u, worker) -> {
            int n0 = byImage ? u * s.n() / units : 0, n1 = byImage ? (u + 1) * s.n() / units : s.n();
            int oy0 = byImage ? 0 : u * oh / units, oy1 = byImage ? oh : (u + 1) * oh / units;
            if (n0 == n1 || oy0 == oy1) return;
            int[] d = new int[Dims.COUNT];
            d[Dims.N] = s.n(); d[Dims.C] = s.c(); d[Dims.H] = s.h(); d[Dims.W] = s.w(); d[Dims.REGIONS] = regions; d[Dims.ZERO] = z;
            d[Dims.GROUPS] = op.conv().groups(); d[Dims.CG] = op.conv().inPerGroup(); d[Dims.OG] = op.conv().outPerGroup();
            d[Dims.KH] = win.kernelH(); d[Dims.KW] = win.kernelW(); d[Dims.SH] = win.strideH(); d[Dims.SW] = win.strideW();
            d[Dims.PH] = win.padH(); d[Dims.PW] = win.padW(); d[Dims.DH] = win.dilationH(); d[Dims.DW] = win.dilationW();
            d[Dims.OH] = oh; d[Dims.OW] = ow; d[Dims.WSETS] = op.weights().regions(); d[Dims.OGP] = p.outPadded(); d[Dims.CPG] = p.channelsPadded();
            d[Dims.N0] = n0; d[Dims.N1] = n1; d[Dims.OY0] = oy0; d[Dims.OY1] = oy1; d[Dims.CLASS] = wantedClass;
            MemorySegment weights = p.codes() instanceof byte[] b ? MemorySegment.ofArray(b) : MemorySegment.ofArray((short[]) p.codes());
            MemorySegment accAt = acc == null ? MemorySegment.NULL : MemorySegment.ofArray(acc).asSlice((long) n0 * outC * oh * ow * regions * Integer.BYTES);
            MemorySegment outAt = out == null ? MemorySegment.NULL : MemorySegment.ofArray(out).asSlice((long) n0 * outC * oh * ow * Float.BYTES);
            MemorySegment mapAt = map == null ? MemorySegment.NULL : MemorySegment.ofArray(map.data());
            MemorySegment biasAt = bias == null ? MemorySegment.NULL : MemorySegment.ofArray(bias.data());
            MemorySegment classesAt = classes == null ? MemorySegment.NULL : MemorySegment.ofArray(classes);
            int rc;
            try {
                rc = (int) CONV.invokeExact(isa.ordinal(), MemorySegment.ofArray(d), MemorySegment.ofArray(x.data()),
                        mapAt, classesAt, MemorySegment.ofArray(bits), MemorySegment.ofArray(steps),
                        weights, MemorySegment.ofArray(p.weightSums()), MemorySegment.ofArray(p.scales()),
                        biasAt, accAt, outAt);
            } catch (Throwable t) {
                throw new IllegalStateException("native low-bit convolution failed: " + t, t);
            }
            if (rc != 0) throw new IllegalStateException("native low-bit convolution returned " + rc + (rc == -1 ? " (out of memory for its codes)" : ""));
        });
    }

    private static Path extract() throws IOException {
        try (InputStream in = NativeLowBitConv.class.getResourceAsStream(RESOURCE)) {
            if (in == null) throw new IOException("the jar has no " + RESOURCE + " (built without gcc)");
            Path file = Files.createTempFile("silhouette_cpu", ".so");
            file.toFile().deleteOnExit();
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            return file;
        }
    }
}
