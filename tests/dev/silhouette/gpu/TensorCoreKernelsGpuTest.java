package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.CudaAvailability;
import dev.silhouette.backend.cuda.CudaContext;
import dev.silhouette.backend.cuda.DeviceScratch;
import dev.silhouette.backend.cuda.KernelLauncher;
import dev.silhouette.backend.cuda.KernelModule;
import dev.silhouette.quant.BinaryNet;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.SplittableRandom;

/**
 * The tensor-core kernels (lowbit_igemm.cu, binary_mma.cu) on a GPU, with the very checks the emulation
 * runs (EmulatedLowBitIgemmTest): bit for bit against the CPU packed path and BinaryNet. Skips without
 * CUDA; has never run (no GPU so far), so the real mma.sync has not yet been compared with the emulated one.
 */
@Test(groups = "gpu")
public class TensorCoreKernelsGpuTest {
    private CudaContext context;
    private KernelModule module;

    @BeforeClass(alwaysRun = true)
    public void open() {
        if (CudaAvailability.unavailableReason().isPresent()) return;
        context = new CudaContext(0);
        module = new KernelModule(context);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (module != null) module.close();
        if (context != null) context.close();
    }

    private KernelLauncher launcher() {
        GpuGuard.requireCuda();
        return (kernel, gx, gy, bx, shared, s, args) -> module.launch(kernel, gx, gy, bx, shared, s, args);
    }

    @DataProvider
    public Object[][] layers() {
        return new EmulatedLowBitIgemmTest().layers();
    }

    @Test(dataProvider = "layers")
    public void lowBitConvolutionEqualsTheCpuPackedPath(EmulatedLowBitIgemmTest.Layer layer) {
        KernelLauncher launcher = launcher();
        try (DeviceScratch scratch = new DeviceScratch(context)) {
            EmulatedLowBitIgemmTest.check(launcher, KernelMemory.of(scratch), layer);
        }
    }

    @DataProvider
    public Object[][] binaryProblems() {
        java.util.List<Object[]> cases = new java.util.ArrayList<>();
        for (PackedConvKernelTest.Conv c : PackedConvKernelTest.ODD) cases.add(new Object[] {c});
        for (PackedConvKernelTest.Conv c : PackedConvKernelTest.RESNET) cases.add(new Object[] {c});
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "binaryProblems")
    public void binarySumsEqualTheXnorConvolution(PackedConvKernelTest.Conv c) {
        KernelLauncher launcher = launcher();
        SplittableRandom rnd = new SplittableRandom(c.name().hashCode());
        long[] x = BinaryNet.packActivations(BinaryConvKernelTest.signs(rnd, c.input().size()), c.input());
        long[] w = BinaryNet.packWeights(BinaryConvKernelTest.signs(rnd, c.weights().size()), c.weights());
        try (DeviceScratch scratch = new DeviceScratch(context)) {
            EmulatedLowBitIgemmTest.checkBinary(launcher, KernelMemory.of(scratch), c, x, w);
        }
    }
}
