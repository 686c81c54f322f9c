package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.BinaryConvKernel;
import dev.silhouette.backend.cuda.CudaContext;
import dev.silhouette.backend.cuda.KernelModule;
import dev.silhouette.backend.cuda.PackedConvKernel;
import dev.silhouette.backend.cuda.QuantizePackKernel;
import dev.silhouette.backend.cuda.RegionWidths;
import dev.silhouette.tensor.Window;
import dev.silhouette.quant.BinaryNet;
import dev.silhouette.quant.ChannelAffine;
import dev.silhouette.quant.PackedLayout;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import static org.testng.Assert.fail;

/**
 * Where the conformance checks run the low-bit kernels: on the GPU through the glue's synchronous host
 * forms ({@link Gpu}), or on the CPU through the host emulation of native-build/emulate with the same
 * glue launching ({@link Emulated}). The checks and their CPU answers are the same for both.
 */
interface LowBitDevice {
    long[] quantizePack(Tensor x, byte[] map, RegionWidths widths);

    int[] accumulators(PackedConvKernel.Problem p, long[] x, byte[] map, long[] w);

    float[] values(PackedConvKernel.Problem p, long[] x, byte[] map, long[] w, PackedConvKernel.Epilogue e);

    long[] packed(PackedConvKernel.Problem p, long[] x, byte[] map, long[] w, PackedConvKernel.Epilogue e, PackedConvKernel.Requantize q);

    int[] binarySums(Shape in, Shape ws, Window win, long[] x, long[] w);

    float[] binaryFolded(Shape in, Shape ws, Window win, long[] x, long[] w, ChannelAffine folded);

    long[] binaryFrozen(Shape in, Shape ws, Window win, long[] x, long[] w, BinaryNet.Frozen frozen);

    record Gpu(CudaContext context, KernelModule module) implements LowBitDevice {
        public long[] quantizePack(Tensor x, byte[] map, RegionWidths widths) {
            return new QuantizePackKernel(module).run(context, x, map, widths);
        }

        public int[] accumulators(PackedConvKernel.Problem p, long[] x, byte[] map, long[] w) {
            return new PackedConvKernel(module).accumulators(context, p, x, map, w);
        }

        public float[] values(PackedConvKernel.Problem p, long[] x, byte[] map, long[] w, PackedConvKernel.Epilogue e) {
            return new PackedConvKernel(module).values(context, p, x, map, w, e);
        }

        public long[] packed(PackedConvKernel.Problem p, long[] x, byte[] map, long[] w, PackedConvKernel.Epilogue e, PackedConvKernel.Requantize q) {
            return new PackedConvKernel(module).packed(context, p, x, map, w, e, q);
        }

        public int[] binarySums(Shape in, Shape ws, Window win, long[] x, long[] w) {
            return new BinaryConvKernel(module).sums(context, in, ws, win, x, w);
        }

        public float[] binaryFolded(Shape in, Shape ws, Window win, long[] x, long[] w, ChannelAffine folded) {
            return new BinaryConvKernel(module).folded(context, in, ws, win, x, w, folded);
        }

        public long[] binaryFrozen(Shape in, Shape ws, Window win, long[] x, long[] w, BinaryNet.Frozen frozen) {
            return new BinaryConvKernel(module).frozen(context, in, ws, win, x, w, frozen);
        }
    }

    /**
     * The kernels' code on the CPU. Outputs get 64 guard bytes, filled like the output with 0xA5 before
     * the launch and checked untouched after it, so a write past the end fails.
     */
    record Emulated(HostEmulator emu) implements LowBitDevice {
        static final int GUARD = 64;

        private long output(long bytes) {
            return emu.allocate(bytes + GUARD);
        }

        private void checkGuard(String what, long address, long bytes) {
            byte[] guard = emu.bytes(address + bytes, GUARD);
            for (int i = 0; i < GUARD; i++) if (guard[i] != (byte) 0xA5) fail(what + ": guard byte " + i + " past the output was written");
        }

        public long[] quantizePack(Tensor x, byte[] map, RegionWidths widths) {
            int words = (int) QuantizePackKernel.outputWords(x.shape(), widths);
            long out = output((long) words * 8);
            new QuantizePackKernel(emu).launch(x.shape(), emu.put(x.data()), map == null ? 0 : emu.put(map), widths, emu.put(widths.alphas()), out, null);
            checkGuard("quantize_pack_bitplanes", out, (long) words * 8);
            return emu.longs(out, words);
        }

        public int[] accumulators(PackedConvKernel.Problem p, long[] x, byte[] map, long[] w) {
            int n = p.output().size() * p.activations().regions();
            long out = output((long) n * 4);
            new PackedConvKernel(emu).launch(p, emu.put(x), map == null ? 0 : emu.put(map), emu.put(w), new PackedConvKernel.Target.Accumulators(out), null);
            checkGuard("packed_conv accumulators", out, (long) n * 4);
            return emu.ints(out, n);
        }

        public float[] values(PackedConvKernel.Problem p, long[] x, byte[] map, long[] w, PackedConvKernel.Epilogue e) {
            int n = p.output().size();
            long out = output((long) n * 4);
            new PackedConvKernel(emu).launch(p, emu.put(x), map == null ? 0 : emu.put(map), emu.put(w), new PackedConvKernel.Target.Values(e.kind(),
                    emu.put(e.scale()), e.shift() == null ? 0 : emu.put(e.shift()), emu.put(p.activations().steps()), out), null);
            checkGuard("packed_conv values", out, (long) n * 4);
            return emu.floats(out, n);
        }

        public long[] packed(PackedConvKernel.Problem p, long[] x, byte[] map, long[] w, PackedConvKernel.Epilogue e, PackedConvKernel.Requantize q) {
            int words = (int) QuantizePackKernel.outputWords(p.output(), q.widths());
            long out = output((long) words * 8);
            new PackedConvKernel(emu).launch(p, emu.put(x), map == null ? 0 : emu.put(map), emu.put(w), new PackedConvKernel.Target.Packed(e.kind(),
                    emu.put(e.scale()), e.shift() == null ? 0 : emu.put(e.shift()), emu.put(p.activations().steps()), q.widths(),
                    q.regionMap() == null ? 0 : emu.put(q.regionMap()), emu.put(q.widths().alphas()), out), null);
            checkGuard("packed_conv packed", out, (long) words * 8);
            return emu.longs(out, words);
        }

        private static int outSize(Shape in, Shape ws, Window win) {
            return in.n() * ws.dim(0) * win.outH(in.h()) * win.outW(in.w());
        }

        public int[] binarySums(Shape in, Shape ws, Window win, long[] x, long[] w) {
            int n = outSize(in, ws, win);
            long out = output((long) n * 4);
            new BinaryConvKernel(emu).launchSums(in, ws, win, emu.put(x), emu.put(w), out, null);
            checkGuard("binary_conv sums", out, (long) n * 4);
            return emu.ints(out, n);
        }

        public float[] binaryFolded(Shape in, Shape ws, Window win, long[] x, long[] w, ChannelAffine folded) {
            int n = outSize(in, ws, win);
            long out = output((long) n * 4);
            new BinaryConvKernel(emu).launchFolded(in, ws, win, emu.put(x), emu.put(w), emu.put(folded.scale()), emu.put(folded.shift()), out, null);
            checkGuard("binary_conv folded", out, (long) n * 4);
            return emu.floats(out, n);
        }

        public long[] binaryFrozen(Shape in, Shape ws, Window win, long[] x, long[] w, BinaryNet.Frozen frozen) {
            int words = in.n() * win.outH(in.h()) * win.outW(in.w()) * new PackedLayout.BitPlanes(1, ws.dim(0)).words();
            long out = output((long) words * 8);
            int[] flip = new int[frozen.flip().length];
            for (int o = 0; o < flip.length; o++) flip[o] = frozen.flip()[o] ? 1 : 0;
            new BinaryConvKernel(emu).launchFrozen(in, ws, win, emu.put(x), emu.put(w), emu.put(frozen.threshold()), emu.put(flip), out, null);
            checkGuard("binary_conv frozen", out, (long) words * 8);
            return emu.longs(out, words);
        }
    }
}
