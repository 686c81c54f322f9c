package dev.silhouette.io;

import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.expectThrows;

/** Whole-or-nothing output files: permissions of a plain new file, the old file kept on failure, no temporaries left. */
public class AtomicFilesTest {
    @Test
    public void writesTheFileWithTheSamePermissionsAsAnyNewFile() throws IOException {
        Path dir = Files.createTempDirectory("atomic");
        Path plain = dir.resolve("plain.txt");
        Files.writeString(plain, "x");
        Path file = dir.resolve("sub/results.json");
        AtomicFiles.write(file, tmp -> Files.writeString(tmp, "{}"));
        assertEquals(Files.readString(file), "{}");
        Set<PosixFilePermission> expected = Files.getPosixFilePermissions(plain);
        // Files.createTempFile would have made it owner-only (0600) whatever the umask.
        assertEquals(Files.getPosixFilePermissions(file), expected);
        try (Stream<Path> left = Files.list(file.getParent())) {
            assertEquals(left.toList(), List.of(file), "no temporary file left");
        }
    }

    @Test
    public void aFailedWriteLeavesTheOldFileAndNoTemporary() throws IOException {
        Path dir = Files.createTempDirectory("atomic");
        Path file = dir.resolve("model.safetensors");
        Files.writeString(file, "old");
        IOException e = expectThrows(IOException.class, () -> AtomicFiles.write(file, tmp -> {
            Files.writeString(tmp, "half");
            throw new IOException("disk full");
        }));
        assertEquals(e.getMessage(), "disk full");
        assertEquals(Files.readString(file), "old");
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(left.toList(), List.of(file));
        }
    }
}
