package dev.silhouette.gpu;

import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;

import java.util.Arrays;
import java.util.stream.IntStream;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertNotEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/**
 * Each check of the hardened host emulation (native-build/emulate) catches the fault planted for it in
 * planted_faults.cu, and lets the same kernel without the fault pass: AddressSanitizer an out-of-bounds
 * read, shared-memory poisoning an uninitialised shared read, the descending sweep a missing barrier,
 * the shuffled block order a race between blocks, and the mask check a vote naming exited lanes.
 * Where a plain run would let the fault pass, the test shows that too, so the check is what catches it.
 */
public class EmulationHardeningTest {
    private HostEmulator emu;

    @BeforeClass(alwaysRun = true)
    public void open() {
        emu = new HostEmulator();
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (emu != null) emu.close();
    }

    @Test
    public void addressSanitizerCatchesAReadPastTheEndOfABuffer() {
        try (HostEmulator sanitized = HostEmulator.sanitized()) {
            int n = 100;
            float[] x = new float[n];
            for (int i = 0; i < n; i++) x[i] = i;
            long in = sanitized.put(x), out = sanitized.allocate((long) n * Float.BYTES);
            sanitized.launch("planted_oob_read", 1, 1, 64, 0, null, in, out, n, 0);
            float[] y = sanitized.floats(out, n);
            for (int i = 0; i < n; i++) assertEquals(y[i], x[i] + x[Math.min(i + 1, n - 1)], "output " + i + " of the correct kernel, sanitized");
            AssertionError e = expectThrows(AssertionError.class, () -> sanitized.launch("planted_oob_read", 1, 1, 64, 0, null, in, out, n, 1));
            assertTrue(e.getMessage().contains("heap-buffer-overflow"), "AddressSanitizer should name the overflow: " + e.getMessage());
        }
    }

    /**
     * The low-bit kernels' own conformance checks (one small problem each: quantize-and-pack, packed and binary
     * convolutions) with every launch in the sanitized build: no buffer is read or written past its end, no
     * undefined behaviour, and the answers are still the CPU's.
     */
    @Test
    public void lowBitKernelsAreCleanUnderTheSanitizers() {
        try (HostEmulator sanitized = HostEmulator.sanitized()) {
            LowBitDevice device = new LowBitDevice.Emulated(sanitized);
            Object[] q = new QuantizePackKernelTest().problems()[1];
            QuantizePackKernelTest.check(device, (String) q[0], (dev.silhouette.tensor.Shape) q[1], (dev.silhouette.backend.cuda.RegionWidths) q[2], (byte[]) q[3], (long) q[4]);
            Object[] a = Arrays.stream(new PackedConvKernelTest().accumulatorProblems()).filter(c -> EmulatedKernelsTest.small((PackedConvKernelTest.Conv) c[0]))
                    .skip(1).findFirst().orElseThrow();
            PackedConvKernelTest.checkAccumulators(device, (PackedConvKernelTest.Conv) a[0], (dev.silhouette.backend.cuda.RegionWidths) a[1], (String) a[2], (int) a[3],
                    (boolean) a[4], (boolean) a[5], (long) a[6]);
            BinaryConvKernelTest.check(device, PackedConvKernelTest.ODD[1], 7);
        }
    }

    @Test
    public void poisonedSharedMemoryExposesASlotNoThreadWrote() {
        int count = 48, blocks = 3;
        int[] x = IntStream.range(0, count * blocks).map(i -> i % 7 - 2).toArray();
        int[] expected = new int[blocks];
        for (int b = 0; b < blocks; b++) for (int t = 0; t < count; t++) expected[b] += x[b * count + t];
        try {
            assertEquals(sums(x, count, blocks, false), expected, "the correct kernel");
            // The faulty kernel's unwritten slots stay zero without poisoning: it passes by luck.
            emu.configure(HostEmulator.DEFAULT_BLOCK_ORDER_SEED, false, false);
            assertEquals(sums(x, count, blocks, true), expected, "the faulty kernel without poisoning (zero-initialised static memory)");
            emu.configure(HostEmulator.DEFAULT_BLOCK_ORDER_SEED, false, true);
            assertNotEquals(sums(x, count, blocks, true), expected, "poisoning should expose the unwritten slots");
        } finally {
            emu.configure(HostEmulator.DEFAULT_BLOCK_ORDER_SEED, false, true);
        }
    }

    private int[] sums(int[] x, int count, int blocks, boolean fault) {
        long y = emu.allocate((long) blocks * Integer.BYTES);
        emu.launch("planted_uninitialised_shared", blocks, 1, 64, 0, null, emu.put(x), y, count, fault ? 1 : 0);
        return emu.ints(y, blocks);
    }

    @Test
    public void theDescendingSweepExposesAMissingBarrier() {
        int blocks = 4, threads = 64;
        int[] x = {10, 20, 30, 40};
        int[] expected = new int[blocks * threads];
        for (int i = 0; i < expected.length; i++) expected[i] = x[i / threads] + i % threads;
        assertEquals(barrier(x, blocks, threads, false), expected, "with the barrier");
        int[] faulty = barrier(x, blocks, threads, true);
        assertNotEquals(faulty, expected, "without the barrier, threads above 0 read the value before thread 0 wrote it");
    }

    private int[] barrier(int[] x, int blocks, int threads, boolean fault) {
        long y = emu.allocate((long) blocks * threads * Integer.BYTES);
        emu.launch("planted_barrier", blocks, 1, threads, 0, null, emu.put(x), y, fault ? 1 : 0);
        return emu.ints(y, blocks * threads);
    }

    @Test
    public void theShuffledBlockOrderExposesABlockReadingAnotherBlocksOutput() {
        int blocks = 40;
        int[] x = IntStream.range(0, blocks).map(i -> 3 * i + 1).toArray();
        int[] expected = x.clone();
        Arrays.parallelPrefix(expected, Integer::sum);
        try {
            emu.configure(0, false, true);
            assertEquals(prefix(x, false), expected, "the correct kernel in grid order");
            assertEquals(prefix(x, true), expected, "the racy kernel passes by luck in grid order");
            emu.configure(HostEmulator.DEFAULT_BLOCK_ORDER_SEED, false, true);
            assertEquals(prefix(x, false), expected, "the correct kernel, shuffled");
            assertNotEquals(prefix(x, true), expected, "shuffled blocks should expose the racy kernel");
        } finally {
            emu.configure(HostEmulator.DEFAULT_BLOCK_ORDER_SEED, false, true);
        }
    }

    private int[] prefix(int[] x, boolean fault) {
        long y = emu.allocate((long) x.length * Integer.BYTES);
        emu.launch("planted_previous_block", x.length, 1, 32, 0, null, emu.put(x), y, fault ? 1 : 0);
        return emu.ints(y, x.length);
    }

    @Test
    public void aVoteWhoseMaskNamesExitedOrMissingLanesIsAnError() {
        // 40 threads: warp 1 has lanes 0..7 only; n = 37 leaves lanes 5..7 of it exited as well.
        int n = 37;
        int[] x = IntStream.range(0, n).map(i -> i % 3 == 0 ? 1 : -1).toArray();
        long in = emu.put(x), y = emu.allocate((long) n * Integer.BYTES);
        emu.launch("planted_exited_lane", 1, 1, 40, 0, null, in, y, n, 0);
        int[] got = emu.ints(y, n);
        for (int i = 0; i < n; i++) {
            int first = i / 32 * 32, expected = 0;
            for (int j = first; j < Math.min(n, first + 32); j++) if (x[j] > 0) expected++;
            assertEquals(got[i], expected, "vote count of thread " + i);
        }
        AssertionError e = expectThrows(AssertionError.class, () -> emu.launch("planted_exited_lane", 1, 1, 40, 0, null, in, y, n, 1));
        assertTrue(e.getMessage().contains("has exited") || e.getMessage().contains("does not have"), e.getMessage());
        assertTrue(e.getMessage().contains("code -5"), e.getMessage());
    }
}
