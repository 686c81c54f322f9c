package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.CudaAvailability;
import dev.silhouette.backend.cuda.CudaContext;
import dev.silhouette.backend.cuda.KernelModule;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;

/**
 * The device of the low-bit kernel conformance classes: one context and kernel module per class, opened
 * only where CUDA is usable; {@link #device()} skips the test with the reason everywhere else.
 */
abstract class LowBitGpuTest {
    private CudaContext context;
    private KernelModule module;
    private LowBitDevice device;

    @BeforeClass(alwaysRun = true)
    public void open() {
        if (CudaAvailability.unavailableReason().isPresent()) return;
        context = new CudaContext(0);
        module = new KernelModule(context);
        device = new LowBitDevice.Gpu(context, module);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (module != null) module.close();
        if (context != null) context.close();
    }

    /** The GPU, or a skip naming why CUDA is unusable here. */
    LowBitDevice device() {
        GpuGuard.requireCuda();
        return device;
    }
}
