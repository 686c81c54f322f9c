package dev.silhouette.backend.cuda;

import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Map;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

/**
 * The kernels built by native-build/ into one fatbin inside the jar. The driver picks the SASS for
 * this GPU or JIT-compiles the embedded PTX when none matches (newer architectures).
 */
public final class KernelModule implements AutoCloseable {
    public static final String RESOURCE = "/dev/silhouette/kernels/silhouette.fatbin";
    private final CUmodule module = new CUmodule();
    private final Map<String, CUfunction> functions = new HashMap<>();
    private boolean closed;

    public KernelModule(CudaContext context) {
        context.makeCurrent();
        byte[] image;
        try (InputStream in = KernelModule.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new CudaException("kernel image " + RESOURCE + " is not in the jar: the build ran without nvcc "
                        + "(rebuild with the CUDA toolkit on PATH)");
            }
            image = in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE, e);
        }
        Driver.check(cuModuleLoadData(module, image), "cuModuleLoadData(" + RESOURCE + ") on " + context.deviceName());
    }

    public CUfunction function(String name) {
        return functions.computeIfAbsent(name, n -> {
            CUfunction f = new CUfunction();
            Driver.check(cuModuleGetFunction(f, module, n), "cuModuleGetFunction(" + n + ")");
            return f;
        });
    }

    /**
     * Launches {@code kernel} with arguments given as Java values: device buffers and pointers pass
     * their address, Integer/Long/Float/Double pass by value, an int[] passes a by-value struct of that
     * many ints, in declaration order of the kernel.
     */
    public void launch(String kernel, int gridX, int gridY, int blockX, int sharedBytes, CUstream stream, Object... args) {
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            params[i] = switch (args[i]) {
                case DeviceBuffer b -> Pointer.to(b.pointer());
                case NativePointerObject p -> Pointer.to(p);
                case Integer v -> Pointer.to(new int[] {v});
                case Long v -> Pointer.to(new long[] {v});
                case Float v -> Pointer.to(new float[] {v});
                case Double v -> Pointer.to(new double[] {v});
                case int[] v -> Pointer.to(v);   // a struct of ints passed by value
                default -> throw new IllegalArgumentException("kernel " + kernel + " argument " + i + " has unsupported type " + args[i].getClass().getSimpleName());
            };
        }
        Driver.check(cuLaunchKernel(function(kernel), gridX, gridY, 1, blockX, 1, 1, sharedBytes, stream, Pointer.to(params), null),
                "cuLaunchKernel(" + kernel + ", grid " + gridX + "x" + gridY + ", block " + blockX + ")");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Driver.check(cuModuleUnload(module), "cuModuleUnload");
    }
}
