package dev.silhouette.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes an output file whole or not at all: into a hidden sibling, then renamed over the target in one
 * step, so a reader or a crash never sees half a file and a failed write leaves the old file alone.
 * The sibling is created like any new file (the umask decides its permissions), not with
 * {@code Files.createTempFile}'s owner-only 0600, which would make results unreadable to the group.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** Fills the (empty, already created) temporary file. */
    public interface Content {
        void write(Path tmp) throws IOException;
    }

    /** Creates the parent folders, writes {@code content} beside {@code file} and moves it into place. */
    public static void write(Path file, Content content) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + file.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
        Files.newOutputStream(tmp, StandardOpenOption.CREATE_NEW).close();
        try {
            content.write(tmp);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // Only reached after a failure that is already being reported; a stray temp file is the lesser problem.
            }
        }
    }
}
