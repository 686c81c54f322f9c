package dev.silhouette.cli;

import com.google.gson.GsonBuilder;
import dev.silhouette.io.Idx;
import dev.silhouette.io.Progress;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;

/** {@code silhouette data ...}: builds data sets. */
@Command(name = "data", mixinStandardHelpOptions = true, description = "Builds data sets.", subcommands = DataCommand.ClutteredCommand.class)
final class DataCommand {

    /** Names of the side files, beside the IDX files of each split. */
    static final String BOXES = "-boxes.csv", MANIFEST = "cluttered.json";

    @Command(name = "cluttered", mixinStandardHelpOptions = true,
            description = "Cluttered Fashion-MNIST (the construction of Mnih et al. 2014): each item at a random place on a blank SIZE x SIZE canvas, "
                    + "plus PIECES random 8x8 crops of other items of the same split at random places, pixels combined by maximum. Writes both splits "
                    + "as IDX files named as Fashion-MNIST's, a SPLIT-boxes.csv per split with each item's box, and cluttered.json; atomically.")
    static final class ClutteredCommand implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--size", defaultValue = "60", description = "canvas side in pixels (default: ${DEFAULT-VALUE}; the paper also uses 100 with 8 pieces)")
        int size;

        @Option(names = "--pieces", defaultValue = "4", description = "clutter pieces per image (default: ${DEFAULT-VALUE})")
        int pieces;

        @Option(names = "--seed", defaultValue = "0", description = "seed of the placements and crops (default: ${DEFAULT-VALUE})")
        long seed;

        @Option(names = "--source", description = "folder with the Fashion-MNIST-layout IDX files to clutter (default: /usr/share/datasets/fashion-mnist "
                + "if present, else the copy in the jar: the test split and the first 500 training images)")
        Path source;

        @Option(names = "--limit", description = "only the first N items of each split (quick runs)")
        Integer limit;

        @Option(names = "--out", required = true, description = "folder to create (it must not exist, or be empty)")
        Path out;

        @Option(names = "--json", description = "machine-readable output")
        boolean json;

        record SplitReport(String name, String source, int images, double meanIntensity, double sourceMeanIntensity) {}

        record Report(String construction, int size, int pieces, int piece, long seed, String out, java.util.List<SplitReport> splits, double seconds) {}

        @Override
        public Integer call() {
            if (limit != null && limit < 1) throw new IllegalArgumentException("--limit " + limit + " must be at least 1");
            Cluttered.Settings settings = new Cluttered.Settings(size, pieces, Cluttered.PIECE, seed);
            refuseExisting(out);
            long start = System.nanoTime();
            FashionMnist train = FashionMnist.trainSplit(source), test = FashionMnist.testSplit(source);
            Path parent = out.toAbsolutePath().getParent();
            Path tmp = parent.resolve("." + out.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
            java.util.List<SplitReport> splits = new java.util.ArrayList<>();
            try {
                Files.createDirectories(tmp);
                Cluttered.Items trainItems = Cluttered.items(train, Cluttered.TRAIN, count(train)), testItems = Cluttered.items(test, Cluttered.TEST, count(test));
                Cluttered.requireFits(trainItems, settings);
                Cluttered.requireFits(testItems, settings);
                try (Progress bar = Progress.start("cluttering", trainItems.n() + testItems.n(), "img")) {
                    splits.add(write(tmp, "train", train, trainItems, settings, bar));
                    splits.add(write(tmp, "t10k", test, testItems, settings, bar));
                }
                Report r = new Report("Mnih et al. 2014, cluttered translated MNIST, on Fashion-MNIST", size, pieces, Cluttered.PIECE, seed,
                        out.toString(), splits, Math.round((System.nanoTime() - start) / 1e8) / 10.0);
                Files.writeString(tmp.resolve(MANIFEST), new GsonBuilder().setPrettyPrinting().create().toJson(r) + "\n", StandardCharsets.UTF_8);
                refuseExisting(out);
                Files.deleteIfExists(out);   // only an empty folder reaches this
                Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
                var o = spec.commandLine().getOut();
                if (json) {
                    Output.json(o, r);
                    return 0;
                }
                for (SplitReport s : splits) {
                    o.printf("%-5s %,7d images of %dx%d, mean intensity %.4f (source %.4f, %s)%n", s.name(), s.images(), size, size, s.meanIntensity(),
                            s.sourceMeanIntensity(), s.source());
                }
                o.printf("wrote %s (%d clutter pieces of %dx%d, seed %d) in %.1f s%n", out, pieces, Cluttered.PIECE, Cluttered.PIECE, seed, r.seconds());
                o.flush();
                return 0;
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
            } finally {
                deleteTree(tmp);
            }
        }

        private int count(FashionMnist split) {
            return Math.min(split.labels().length, limit == null ? Integer.MAX_VALUE : limit);
        }

        private static SplitReport write(Path dir, String name, FashionMnist split, Cluttered.Items items, Cluttered.Settings settings, Progress bar) throws IOException {
            int n = items.n();
            Cluttered.Split c = Cluttered.compose(items, settings, bar);
            int[] labels = java.util.Arrays.copyOf(split.labels(), n);
            byte[] labelBytes = new byte[n];
            for (int i = 0; i < n; i++) {
                if (labels[i] > 255) throw new IllegalArgumentException(split.source() + ": label " + labels[i] + " of item " + i + " does not fit the unsigned-byte labels");
                labelBytes[i] = (byte) labels[i];
            }
            gzipped(dir.resolve(name + "-images-idx3-ubyte.gz"), new Idx.Array(Idx.Type.UNSIGNED_BYTE, new int[] {n, settings.size(), settings.size()}, c.pixels()));
            gzipped(dir.resolve(name + "-labels-idx1-ubyte.gz"), new Idx.Array(Idx.Type.UNSIGNED_BYTE, new int[] {n}, labelBytes));
            try (BufferedWriter csv = Files.newBufferedWriter(dir.resolve(name + BOXES), StandardCharsets.UTF_8)) {
                csv.write("index,label,x,y,width,height,frame_x,frame_y\n");
                for (int i = 0; i < n; i++) {
                    Cluttered.Box b = c.boxes()[i];
                    csv.write(i + "," + labels[i] + "," + b.x() + "," + b.y() + "," + b.width() + "," + b.height() + "," + b.frameX() + "," + b.frameY() + "\n");
                }
            }
            return new SplitReport(name, split.source(), n, mean(c.pixels()), mean(items.pixels()));
        }

        private static double mean(byte[] pixels) {
            long sum = 0;
            for (byte p : pixels) sum += p & 0xff;
            return pixels.length == 0 ? 0 : sum / 255.0 / pixels.length;
        }

        private static void gzipped(Path file, Idx.Array a) throws IOException {
            try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(file), 1 << 16)) {
                Idx.write(a, o);
            }
        }

        /** The output folder must be new (or an empty folder): a data set is never mixed with or written over another. */
        private static void refuseExisting(Path out) {
            if (!Files.exists(out)) return;
            if (Files.isDirectory(out)) {
                try (Stream<Path> s = Files.list(out)) {
                    if (s.findAny().isEmpty()) return;
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot read " + out + ": " + e.getMessage(), e);
                }
            }
            throw new IllegalArgumentException("--out " + out + " already exists and is not an empty folder; choose a new one");
        }

        private static void deleteTree(Path dir) {
            if (!Files.exists(dir)) return;
            try (Stream<Path> s = Files.walk(dir)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // Only reached after a failure that is already being reported; a stray temporary folder is the lesser problem.
            }
        }
    }
}
