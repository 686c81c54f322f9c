package dev.silhouette.backend.cuda;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import org.testng.SkipException;
import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

/**
 * What can be checked of the built-in kernels without a GPU: every entry point the host glue launches is
 * an {@code extern "C" __global__} function of cuda/, the fatbin builds with nvcc (when installed) and
 * holds every entry point, and the op support check gives typed reasons.
 */
public class BuiltinKernelsTest {
    /** {@code extern "C" __global__ void name(}, with an optional __launch_bounds__(...) before or after void. */
    private static final Pattern ENTRY = Pattern.compile(
            "extern\\s+\"C\"\\s+__global__\\s+(?:__launch_bounds__\\s*\\([^)]*\\)\\s*)?void\\s+(?:__launch_bounds__\\s*\\([^)]*\\)\\s*)?(\\w+)\\s*\\(");

    /** The repository root: the working directory or the nearest parent holding native-build/. */
    static Path root() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("native-build/build-kernels.sh"))) return p;
        }
        throw new IllegalStateException("no native-build/build-kernels.sh above " + Path.of("").toAbsolutePath());
    }

    /** Entry point name to the file defining it, from every cuda/*.cu; a name defined twice fails. */
    static Map<String, String> entryPoints() throws IOException {
        Map<String, String> found = new HashMap<>();
        List<Path> sources;
        try (Stream<Path> files = Files.list(root().resolve("cuda"))) {
            sources = files.filter(f -> f.toString().endsWith(".cu")).sorted().toList();
        }
        for (Path f : sources) {
            String text = Files.readString(f).replaceAll("(?s)/\\*.*?\\*/", "").replaceAll("//[^\n]*", "");
            Matcher m = ENTRY.matcher(text);
            while (m.find()) {
                String previous = found.put(m.group(1), f.getFileName().toString());
                if (previous != null) fail("entry point " + m.group(1) + " is defined in both " + previous + " and " + f.getFileName());
            }
        }
        return found;
    }

    @Test
    public void everyLaunchedKernelIsAnEntryPointOfItsSourceFile() throws IOException {
        Map<String, String> entries = entryPoints();
        for (BuiltinKernels.Kernel k : BuiltinKernels.Kernel.values()) {
            assertTrue(entries.containsKey(k.symbol()), k + ": no extern \"C\" __global__ " + k.symbol() + " in cuda/*.cu (found " + entries.keySet() + ")");
            assertEquals(entries.get(k.symbol()), k.source(), k + ": defined in another file than declared");
        }
    }

    @Test
    public void everyEntryPointOfTheOpFilesIsLaunched() throws IOException {
        List<String> launched = Stream.of(BuiltinKernels.Kernel.values()).map(BuiltinKernels.Kernel::symbol).toList();
        entryPoints().forEach((name, file) -> {
            if (file.startsWith("ops_")) assertTrue(launched.contains(name), name + " in " + file + " has no BuiltinKernels.Kernel constant");
        });
    }

    @Test
    public void fatbinBuildsAndHoldsEveryEntryPoint() throws Exception {
        Path nvcc = findNvcc();
        if (nvcc == null) throw new SkipException("nvcc not found on PATH, in $CUDA_HOME/bin or /usr/local/cuda/bin: the fatbin cannot be built here");
        Path out = Files.createTempDirectory("silhouette-kernels");
        try {
            ProcessBuilder pb = new ProcessBuilder("bash", root().resolve("native-build/build-kernels.sh").toString(), out.toString())
                    .redirectErrorStream(true);
            pb.environment().put("PATH", nvcc.getParent() + java.io.File.pathSeparator + System.getenv().getOrDefault("PATH", ""));
            Process p = pb.start();
            byte[] log = p.getInputStream().readAllBytes();
            assertTrue(p.waitFor(10, TimeUnit.MINUTES), "build-kernels.sh did not finish in 10 minutes");
            String text = new String(log, StandardCharsets.UTF_8);
            assertEquals(p.exitValue(), 0, "build-kernels.sh failed:\n" + text);
            Path fatbin = out.resolve("silhouette.fatbin");
            assertTrue(Files.isRegularFile(fatbin), "no fatbin after build-kernels.sh:\n" + text);
            // The fatbin is not compressed: the SASS images' symbol tables hold each name NUL-terminated, and
            // the PTX (JIT-compiled on GPUs newer than the SASS) declares each as an .entry.
            String image = new String(Files.readAllBytes(fatbin), StandardCharsets.ISO_8859_1);
            for (BuiltinKernels.Kernel k : BuiltinKernels.Kernel.values()) {
                assertTrue(image.contains(k.symbol() + "\0"), k.symbol() + " has no SASS symbol in " + fatbin + " (" + Files.size(fatbin) + " bytes)");
                assertTrue(image.contains(".entry " + k.symbol() + "("), k.symbol() + " has no PTX .entry in " + fatbin);
            }
        } finally {
            try (Stream<Path> walk = Files.walk(out)) {
                for (Path f : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
            }
        }
    }

    private static Path findNvcc() {
        List<Path> candidates = new ArrayList<>();
        for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
            if (!dir.isEmpty()) candidates.add(Path.of(dir, "nvcc"));
        }
        String cudaHome = System.getenv("CUDA_HOME");
        if (cudaHome != null) candidates.add(Path.of(cudaHome, "bin", "nvcc"));
        candidates.add(Path.of("/usr/local/cuda/bin/nvcc"));
        return candidates.stream().filter(Files::isExecutable).findFirst().orElse(null);
    }

    @Test
    public void supportGivesTypedReasons() {
        Shape image = Shape.of(2, 3, 8, 8);
        assertTrue(BuiltinKernels.supports(new Op.Relu(), List.of(image)).isEmpty());
        assertTrue(BuiltinKernels.supports(new Op.Conv2d(3, 4, Window.square(3, 1, 1), 1, true), List.of(image)).isEmpty());
        assertTrue(BuiltinKernels.supports(new Op.Concat(1), List.of(image, Shape.of(2, 5, 8, 8))).isEmpty());
        assertEquals(BuiltinKernels.supports(new Op.Flatten(), List.of(image)).orElseThrow().limit(), BuiltinKernels.Limit.NO_KERNEL);
        assertEquals(BuiltinKernels.supports(new Op.Conv2d(4, 4, Window.square(3, 1, 1), 1, true), List.of(image)).orElseThrow().limit(),
                BuiltinKernels.Limit.SHAPE);
        assertEquals(BuiltinKernels.supports(new Op.MaxPool(Window.square(11, 1, 0)), List.of(image)).orElseThrow().limit(),
                BuiltinKernels.Limit.SHAPE, "a window larger than the padded input leaves no output");
        assertEquals(BuiltinKernels.supports(new Op.Add(), List.of(image, Shape.of(2, 3, 8, 7))).orElseThrow().limit(), BuiltinKernels.Limit.SHAPE);
        assertEquals(BuiltinKernels.supports(new Op.Concat(1), List.of(image, Shape.of(2, 5, 8, 7))).orElseThrow().limit(), BuiltinKernels.Limit.SHAPE);
        assertEquals(BuiltinKernels.supports(new Op.Interpolate(Op.Interpolate.Mode.NEAREST, 40_000, 40_000), List.of(image)).orElseThrow().limit(),
                BuiltinKernels.Limit.INDEX_RANGE);
        assertFalse(BuiltinKernels.supports(new Op.Linear(8, 2, false), List.of(image)).isEmpty(), "linear needs N x in");
        assertTrue(BuiltinKernels.supports(new Op.Elementwise(Op.Arithmetic.MUL), List.of(image, Shape.of(2, 3, 1, 1))).isEmpty());
        assertTrue(BuiltinKernels.supports(new Op.ElementwiseConstant(Op.Arithmetic.DIV, Shape.of(3, 1, 1), true), List.of(image)).isEmpty());
        assertTrue(BuiltinKernels.supports(new Op.HardSwish(), List.of(image)).isEmpty());
        assertTrue(BuiltinKernels.supports(new Op.HardSigmoid(0.2f, 0.5f), List.of(image)).isEmpty());
        assertTrue(BuiltinKernels.supports(new Op.Pad(1, 0, 2, 1, 0f), List.of(image)).isEmpty());
        assertEquals(BuiltinKernels.supports(new Op.Reshape(Shape.of(192)), List.of(image)).orElseThrow().limit(), BuiltinKernels.Limit.NO_KERNEL);
        assertEquals(BuiltinKernels.supports(new Op.Elementwise(Op.Arithmetic.ADD), List.of(image, Shape.of(2, 4, 1, 1))).orElseThrow().limit(),
                BuiltinKernels.Limit.SHAPE, "3 and 4 channels do not broadcast");
        Shape nineAxes = Shape.of(1, 1, 1, 1, 1, 1, 1, 2, 2);
        assertEquals(BuiltinKernels.supports(new Op.Elementwise(Op.Arithmetic.ADD), List.of(nineAxes, nineAxes)).orElseThrow().limit(),
                BuiltinKernels.Limit.SHAPE);
        assertEquals(BuiltinKernels.supports(new Op.Pad(1, 1, 1, 1, 0f), List.of(Shape.of(2, 3, 8))).orElseThrow().limit(), BuiltinKernels.Limit.SHAPE);
    }

    /**
     * The by-value struct of silhouette_broadcast_arithmetic, decoded with the kernel's own index loop (in
     * Java), must address the same operand elements as the CPU's broadcast: the kernel's results then
     * equal CpuOps.elementwise's, as both apply one float operation per element.
     */
    @Test
    public void broadcastArgumentAddressesWhatTheCpuBroadcastReads() throws IOException {
        String source = Files.readString(root().resolve("cuda/ops_elementwise.cu"));
        Matcher rank = Pattern.compile("#define SILHOUETTE_MAX_BROADCAST_RANK (\\d+)").matcher(source);
        assertTrue(rank.find(), "ops_elementwise.cu defines SILHOUETTE_MAX_BROADCAST_RANK");
        assertEquals(Integer.parseInt(rank.group(1)), BuiltinKernels.MAX_BROADCAST_RANK);
        java.util.Random random = new java.util.Random(7);
        for (int trial = 0; trial < 300; trial++) {
            int outRank = 1 + random.nextInt(BuiltinKernels.MAX_BROADCAST_RANK);
            int[] out = new int[outRank];
            for (int d = 0; d < outRank; d++) out[d] = 1 + random.nextInt(3);
            Shape a = operand(out, random), b = operand(out, random);
            Shape result = BuiltinKernels.broadcastShape(a, b);
            int[] packed = BuiltinKernels.broadcastArgument(a, b, result);
            assertEquals(packed.length, 1 + 3 * BuiltinKernels.MAX_BROADCAST_RANK);
            dev.silhouette.tensor.Tensor ta = dev.silhouette.tensor.Tensor.uniform(a, -1, 1, trial), tb = dev.silhouette.tensor.Tensor.uniform(b, 1, 2, trial + 1000);
            float[] expected = dev.silhouette.backend.cpu.CpuOps.elementwise(ta, tb, Op.Arithmetic.DIV, result).data();
            for (int i = 0; i < result.size(); i++) {
                int rest = i, ia = 0, ib = 0, max = BuiltinKernels.MAX_BROADCAST_RANK;
                for (int d = packed[0] - 1; d >= 0; d--) {
                    int index = rest % packed[1 + d];
                    rest /= packed[1 + d];
                    ia += index * packed[1 + max + d];
                    ib += index * packed[1 + 2 * max + d];
                }
                float actual = ta.data()[ia] / tb.data()[ib];
                assertEquals(Float.floatToRawIntBits(actual), Float.floatToRawIntBits(expected[i]), a + " / " + b + " element " + i);
            }
        }
    }

    /** A shape that broadcasts to {@code out}: a suffix of its axes, some of them 1. */
    private static Shape operand(int[] out, java.util.Random random) {
        int rank = random.nextInt(out.length + 1);
        int[] dims = new int[rank];
        for (int d = 0; d < rank; d++) dims[d] = random.nextInt(3) == 0 ? 1 : out[out.length - rank + d];
        return Shape.of(dims);
    }

    @Test
    public void batchNormFactorsAreTheCpuFormula() {
        float[][] f = BuiltinKernels.batchNormScaleShift(new float[] {1.5f}, new float[] {0.25f}, new float[] {-0.75f}, new float[] {0.3f}, 1e-5f);
        float scale = (float) (1.5f / Math.sqrt((double) 0.3f + 1e-5f));
        assertEquals(Float.floatToRawIntBits(f[0][0]), Float.floatToRawIntBits(scale));
        assertEquals(Float.floatToRawIntBits(f[1][0]), Float.floatToRawIntBits(0.25f - -0.75f * scale));
    }
}
