package dev.silhouette.io;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.Console;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Progress of a long task on stderr, in the form that fits where stderr goes: on a terminal the progressbar
 * library's bar, redrawn in place; in a file or a pipe (CI, nohup, a container log) one plain line every
 * {@link #LINE_INTERVAL_SECONDS} seconds while unfinished (task, done/total, rate, ETA) and a final line with the total;
 * nothing at all when quiet ({@code --quiet}, or {@code SILHOUETTE_QUIET=1} in the environment). Stdout is
 * never written, so a command's --json output stays one document. Steps may come from several threads.
 */
public abstract class Progress implements AutoCloseable {
    /** Seconds between two plain lines when stderr is not a terminal. */
    public static final int LINE_INTERVAL_SECONDS = 5;

    private static volatile boolean quiet;

    private Progress() {}

    /** Silences every progress display of this process from now on (the command line's --quiet). */
    public static void setQuiet(boolean quiet) {
        Progress.quiet = quiet;
    }

    /** Whether progress is silenced: by {@link #setQuiet} or by SILHOUETTE_QUIET set to anything but empty or 0. */
    public static boolean quiet() {
        String env = System.getenv("SILHOUETTE_QUIET");
        return quiet || env != null && !env.isEmpty() && !env.equals("0");
    }

    /** Progress over {@code total} steps counted in {@code unit} (e.g. "img"; empty for none), shown on stderr as it fits. */
    public static Progress start(String task, long total, String unit) {
        return create(task, total, unit, quiet(), stderrIsTerminal(), System.err, TimeUnit.SECONDS.toNanos(LINE_INTERVAL_SECONDS), System::nanoTime);
    }

    /** No display: for work that runs inside another task's progress. */
    public static Progress none() {
        return new Silent();
    }

    /** The mode chosen from its inputs; the interval and the clock (nanoseconds) are injectable for tests. */
    static Progress create(String task, long total, String unit, boolean quiet, boolean terminal, PrintStream err, long intervalNanos, LongSupplier clock) {
        if (quiet) return new Silent();
        if (terminal) return new Bar(task, total, unit);
        return new Lines(task, total, unit, err, intervalNanos, clock);
    }

    /**
     * Whether stderr is a terminal. On Linux, where /proc/self/fd/2 names it, that decides; elsewhere the JVM's console
     * (a terminal when stdin and stdout both are).
     */
    static boolean stderrIsTerminal() {
        Path fd = Path.of("/proc/self/fd/2");
        try {
            if (Files.isSymbolicLink(fd)) {
                String target = Files.readSymbolicLink(fd).toString();
                return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty") || target.equals("/dev/console");
            }
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            // fall through to the console
        }
        Console console = System.console();
        return console != null && console.isTerminal();
    }

    /** One step done. */
    public void step() {
        stepBy(1);
    }

    /** {@code n} more steps done. */
    public abstract void stepBy(long n);

    /** {@code done} steps done in all. */
    public abstract void stepTo(long done);

    /** Starts the count at {@code done} steps already done before (a resumed task): they do not count towards the rate. */
    public abstract void startFrom(long done);

    /** Text shown after the count, e.g. the current loss; replaces the previous one. */
    public abstract void setExtraMessage(String message);

    /** Ends the display: the bar's last frame, or the final plain line. */
    @Override
    public abstract void close();

    /** The progressbar library's bar, for a terminal. */
    private static final class Bar extends Progress {
        private final ProgressBar bar;

        Bar(String task, long total, String unit) {
            ProgressBarBuilder b = new ProgressBarBuilder().setTaskName(task).setInitialMax(total).setStyle(ProgressBarStyle.ASCII)
                    .setUpdateIntervalMillis(250).continuousUpdate();
            if (!unit.isEmpty()) b.setUnit(" " + unit, 1).showSpeed();
            bar = b.build();
        }

        @Override public void stepBy(long n) { bar.stepBy(n); }
        @Override public void stepTo(long done) { bar.stepTo(done); }
        @Override public void startFrom(long done) { bar.stepTo(done); }
        @Override public void setExtraMessage(String message) { bar.setExtraMessage(message); }
        @Override public void close() { bar.close(); }
    }

    /** Plain lines, at most one per interval, and a final one: for files and pipes. */
    private static final class Lines extends Progress {
        private final String task, unit;
        private final long total, intervalNanos, startNanos;
        private final PrintStream err;
        private final LongSupplier clock;
        private long done, base, lastLine;
        private String extra = "";
        private boolean closed;

        Lines(String task, long total, String unit, PrintStream err, long intervalNanos, LongSupplier clock) {
            this.task = task;
            this.total = total;
            this.unit = unit;
            this.err = err;
            this.intervalNanos = intervalNanos;
            this.clock = clock;
            this.startNanos = clock.getAsLong();
            this.lastLine = startNanos;
        }

        @Override
        public synchronized void stepBy(long n) {
            stepTo(done + n);
        }

        @Override
        public synchronized void stepTo(long done) {
            this.done = done;
            long now = clock.getAsLong();
            if (!closed && (total <= 0 || done < total) && now - lastLine >= intervalNanos) {
                lastLine = now;
                err.println(line(now, false));
            }
        }

        @Override
        public synchronized void startFrom(long done) {
            this.done = done;
            this.base = done;
        }

        @Override
        public synchronized void setExtraMessage(String message) {
            extra = message == null ? "" : message.strip();
        }

        @Override
        public synchronized void close() {
            if (closed) return;
            closed = true;
            err.println(line(clock.getAsLong(), true));
            err.flush();
        }

        /** E.g. {@code main job: 1,200/14,000 img (9%), 350 img/s, ETA 0:00:37}; the final line has the time taken instead of the ETA. */
        private String line(long now, boolean last) {
            double seconds = Math.max(now - startNanos, 1) / 1e9;
            double rate = (done - base) / seconds;
            StringBuilder s = new StringBuilder(task).append(": ").append(String.format("%,d", done));
            if (total > 0) s.append(String.format("/%,d", total));
            if (!unit.isEmpty()) s.append(' ').append(unit);
            if (last) {
                s.append(" in ").append(clockTime(seconds));
            } else if (total > 0) {
                s.append(String.format(" (%d%%)", Math.round(100.0 * done / total)));
            }
            s.append(", ").append(rate >= 100 ? String.format("%,.0f", rate) : String.format("%.3g", rate)).append(unit.isEmpty() ? "/s" : " " + unit + "/s");
            if (!last && total > 0 && rate > 0 && done < total) s.append(", ETA ").append(clockTime((total - done) / rate));
            if (!extra.isEmpty()) s.append(", ").append(extra);
            return s.toString();
        }

        private static String clockTime(double seconds) {
            long t = Math.round(seconds);
            return String.format("%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
        }
    }

    /** Nothing: --quiet. */
    private static final class Silent extends Progress {
        @Override public void stepBy(long n) {}
        @Override public void stepTo(long done) {}
        @Override public void startFrom(long done) {}
        @Override public void setExtraMessage(String message) {}
        @Override public void close() {}
    }
}
