package dev.silhouette.fuzz;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.PatternSyntaxException;

/**
 * What the fuzz targets count as a clean refusal, and the scratch folder they write inputs into. A clean
 * refusal is one of the project's typed errors (IllegalArgumentException and its subclasses:
 * OnnxException, SafeTensorsException, IdxException, GraphException) with a message naming the input.
 * Anything else thrown (NullPointerException, IndexOutOfBounds, a bare NumberFormatException, an
 * OutOfMemoryError, a StackOverflowError) propagates and is a finding; Jazzer also counts an input that
 * runs over one second.
 */
final class Findings {
    private static Path scratch;

    private Findings() {}

    /** Returns when {@code e} is a clean refusal whose message contains every one of {@code names}; else rethrows or fails. */
    static void refusal(RuntimeException e, String... names) {
        if (!(e instanceof IllegalArgumentException) || e instanceof NumberFormatException || e instanceof PatternSyntaxException) throw e;
        String message = e.getMessage();
        if (message == null || message.isBlank()) throw new AssertionError("a refusal without a message", e);
        for (String name : names) {
            if (!message.contains(name)) throw new AssertionError("the refusal does not name '" + name + "': " + message, e);
        }
    }

    /**
     * Runs a target over its committed corpus once before fuzzing starts (Jazzer's fuzzerInitialize), so
     * that class loading, instrumentation and JIT warm-up are not counted against the first inputs' one
     * second. Run from the repository root, as tests/fuzz/run.sh does.
     */
    static void warmUp(java.util.function.Consumer<byte[]> target, String name) {
        Path corpus = Path.of("tests/fuzz", name);
        if (!Files.isDirectory(corpus)) return;
        try (var files = Files.list(corpus)) {
            for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
                if (f.getFileName().toString().endsWith(".sh")) continue;
                for (int i = 0; i < 3; i++) target.accept(Files.readAllBytes(f));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** One folder per JVM for the inputs that the parsers read from files. */
    static synchronized Path scratch() {
        if (scratch == null) {
            try {
                // Memory-backed where there is one: every execution writes its input there.
                Path shm = Path.of("/dev/shm");
                scratch = Files.isDirectory(shm) && Files.isWritable(shm) ? Files.createTempDirectory(shm, "silhouette-fuzz")
                        : Files.createTempDirectory("silhouette-fuzz");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            scratch.toFile().deleteOnExit();
        }
        return scratch;
    }

    /** Writes {@code bytes} to {@code name} in the scratch folder (no fsync: the file is read back at once). */
    static Path write(String name, byte[] bytes) {
        Path file = scratch().resolve(name);
        try {
            Files.write(file, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        file.toFile().deleteOnExit();
        return file;
    }
}
