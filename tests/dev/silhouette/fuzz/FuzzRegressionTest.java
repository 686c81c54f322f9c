package dev.silhouette.fuzz;

import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/**
 * Replays every committed fuzz input (tests/fuzz/TARGET/: the seeds and each fixed finding) through its
 * target on every build, without Jazzer: each must end in a clean refusal or a successful read.
 */
public class FuzzRegressionTest {
    static final Path CORPORA = Path.of("tests/fuzz");

    /** The targets tests/fuzz/run.sh fuzzes, read from the script so the two cannot drift apart. */
    static List<String> targets() throws IOException {
        Matcher m = Pattern.compile("targets=\\(([A-Za-z ]+)\\)").matcher(Files.readString(CORPORA.resolve("run.sh")));
        assertTrue(m.find(), "run.sh lists its targets");
        return List.of(m.group(1).trim().split(" +"));
    }

    @DataProvider
    public Object[][] inputs() throws IOException {
        List<Object[]> rows = new ArrayList<>();
        for (String target : targets()) {
            try (var files = Files.list(CORPORA.resolve(target))) {
                for (Path f : files.sorted().toList()) rows.add(new Object[] {target, f.getFileName().toString()});
            }
        }
        return rows.toArray(Object[][]::new);
    }

    @Test(dataProvider = "inputs")
    public void replaysCleanly(String target, String file) throws Throwable {
        Method run = Class.forName("dev.silhouette.fuzz." + target).getMethod("fuzzerTestOneInput", byte[].class);
        try {
            run.invoke(null, (Object) Files.readAllBytes(CORPORA.resolve(target).resolve(file)));
        } catch (InvocationTargetException e) {
            throw new AssertionError(target + " on " + file + " is a finding: " + e.getCause(), e.getCause());
        }
    }

    @Test
    public void everyTargetHasASeedCorpus() throws IOException {
        for (String target : targets()) {
            try (var files = Files.list(CORPORA.resolve(target))) {
                assertFalse(files.findAny().isEmpty(), target + " has no seeds in " + CORPORA.resolve(target));
            }
        }
        assertEquals(targets().size(), 8);
    }

    /** The oracle is not vacuous: untyped errors and refusals that do not name the input are findings. */
    @Test
    public void findingsAreReported() {
        Findings.refusal(new IllegalArgumentException("model.onnx: bad"), "model.onnx");
        expectThrows(NullPointerException.class, () -> Findings.refusal(new NullPointerException("x"), "model.onnx"));
        expectThrows(NumberFormatException.class, () -> Findings.refusal(new NumberFormatException("For input string: \"x\""), "model.onnx"));
        expectThrows(IllegalStateException.class, () -> Findings.refusal(new IllegalStateException("model.onnx"), "model.onnx"));
        expectThrows(AssertionError.class, () -> Findings.refusal(new IllegalArgumentException("bad"), "model.onnx"));
        expectThrows(AssertionError.class, () -> Findings.refusal(new IllegalArgumentException((String) null)));
    }
}
