package dev.silhouette.gpu;

import org.testng.SkipException;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/**
 * native-build/gpu-check.sh --dry-run: packs the runtime for the GPU machine, unpacks it into a fresh
 * folder with the work tree, and runs every step of the check there, so a packaging or script mistake
 * shows here instead of costing device time. The GPU steps skip or refuse (no device here), every other
 * part runs: the jlink runtime, the class path, TestNG's selection of the gpu group, the sanitizer
 * subset's command, the benchmark's option parsing, and the result files that come back.
 */
public class GpuCheckDryRunTest {
    @Test
    public void dryRunPacksUnpacksAndRunsEveryStepThatNeedsNoGpu() throws Exception {
        Path root = HostEmulator.root();
        if (!Files.isDirectory(root.resolve(".git")) && !Files.isRegularFile(root.resolve(".git"))) throw new SkipException("not a git work tree: the dry run copies what git tracks");
        Path javaHome = Path.of(System.getProperty("java.home"));
        if (!Files.isExecutable(javaHome.resolve("bin/jlink"))) throw new SkipException("no jlink in " + javaHome + ": the runtime cannot be packed");
        Path out = Files.createTempDirectory("gpu-check-dry");
        Path kept = out.resolve("kept");
        ProcessBuilder pb = new ProcessBuilder("bash", root.resolve("native-build/gpu-check.sh").toString(), "--dry-run").redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", javaHome.toString());
        pb.environment().put("SKIP_BUILD", "1");            // Maven compiled the classes this test runs from
        // The script asks Maven (offline) for the class path, as on the device: the provided scope (Spark) stays out.
        pb.environment().remove("SILHOUETTE_CLASSPATH");
        pb.environment().put("GPU_CHECK_XZ", "0");          // fast packing; the size is judged at the real level only
        pb.environment().put("KEEP_OUT", kept.toString());
        Process p = pb.start();
        String log = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(8, TimeUnit.MINUTES), "the dry run did not finish:\n" + log);
        assertEquals(p.exitValue(), 0, "the dry run failed:\n" + log);
        String summary = Files.readString(kept.resolve("summary.txt"));
        for (String step : new String[] {"env", "gpu-tests", "conformance", "memcheck", "racecheck", "bench-kernels", "bench-pytorch"}) {
            assertTrue(summary.contains("   " + step + ": exit "), step + " did not run:\n" + summary);
        }
        assertTrue(summary.contains("0 step(s) failed"), summary);
        // TestNG selected the gpu group's classes and skipped them for want of a device (exit 2), not for a load failure.
        assertTrue(summary.contains("gpu-tests: exit 2"), summary);
        assertTrue(summary.contains("bench-kernels: exit 2"), "the benchmark should parse its options and refuse for want of a GPU:\n" + summary);
        // The conformance command ran from the pack and wrote its report (no GPU here: the CPU only, and it says why).
        assertTrue(summary.contains("   conformance: exit 0"), summary);
        assertTrue(Files.isRegularFile(kept.resolve("conformance.tar.gz")), "no conformance report came back");
        try (var files = Files.list(kept)) {
            assertTrue(files.count() <= 8, "more result files than come back from the device");
        }
    }
}
