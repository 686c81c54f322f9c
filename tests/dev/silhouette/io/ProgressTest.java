package dev.silhouette.io;

import org.testng.annotations.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;

/** Progress in a file or a pipe: plain lines, at most one per interval, a final line with the total; nothing when quiet. */
public class ProgressTest {
    private static final long INTERVAL = TimeUnit.SECONDS.toNanos(5);

    private final AtomicLong clock = new AtomicLong();
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final PrintStream err = new PrintStream(bytes, true, StandardCharsets.UTF_8);

    private Progress lines(long total) {
        clock.set(0);
        bytes.reset();
        return Progress.create("main job", total, "img", false, false, err, INTERVAL, clock::get);
    }

    private List<String> written() {
        String s = bytes.toString(StandardCharsets.UTF_8);
        assertFalse(s.contains("\r"), "no carriage returns: " + s);
        return s.isEmpty() ? List.of() : List.of(s.split("\n"));
    }

    @Test
    public void writesOnePlainLinePerIntervalAndAFinalLineWithTheTotal() {
        try (Progress p = lines(100)) {
            for (int i = 0; i < 100; i++) {
                clock.addAndGet(TimeUnit.MILLISECONDS.toNanos(500));   // 2 images a second: 50 s in all
                p.step();
            }
        }
        List<String> out = written();
        // A line at 5 s, 10 s, ... 45 s; at 50 s the job is done and only the final line comes.
        assertEquals(out.size(), 10, String.join("\n", out));
        assertEquals(out.getFirst(), "main job: 10/100 img (10%), 2.00 img/s, ETA 0:00:45");
        assertEquals(out.get(8), "main job: 90/100 img (90%), 2.00 img/s, ETA 0:00:05");
        assertEquals(out.getLast(), "main job: 100/100 img in 0:00:50, 2.00 img/s");
    }

    @Test
    public void manyQuickStepsGiveOnlyTheFinalLine() {
        try (Progress p = lines(10_000)) {
            for (int i = 0; i < 100; i++) {
                clock.addAndGet(TimeUnit.MILLISECONDS.toNanos(40));
                p.stepBy(100);
            }
        }
        assertEquals(written(), List.of("main job: 10,000/10,000 img in 0:00:04, 2,500 img/s"));
    }

    @Test
    public void resumedStepsDoNotCountTowardsTheRateAndTheMessageFollows() {
        Progress p = lines(100);
        p.startFrom(50);
        clock.addAndGet(TimeUnit.SECONDS.toNanos(10));
        p.setExtraMessage(" loss 0.1234");
        p.stepTo(60);
        p.close();
        p.close();
        assertEquals(written(), List.of("main job: 60/100 img (60%), 1.00 img/s, ETA 0:00:40, loss 0.1234",
                "main job: 60/100 img in 0:00:10, 1.00 img/s, loss 0.1234"), "one final line however often closed");
    }

    @Test
    public void quietWritesNothing() {
        bytes.reset();
        try (Progress p = Progress.create("main job", 100, "img", true, false, err, 0, clock::get)) {
            for (int i = 0; i < 100; i++) {
                clock.addAndGet(INTERVAL);
                p.step();
            }
        }
        assertEquals(bytes.size(), 0);

        // The process-wide switch the command line's --quiet sets reaches Progress.start, which writes to System.err.
        PrintStream saved = System.err;
        System.setErr(err);
        try {
            Progress.setQuiet(true);
            assertTrue(Progress.quiet());
            try (Progress p = Progress.start("main job", 10, "img")) {
                p.stepBy(10);
            }
        } finally {
            Progress.setQuiet(false);
            System.setErr(saved);
        }
        assertEquals(bytes.size(), 0, bytes.toString(StandardCharsets.UTF_8));
    }
}
