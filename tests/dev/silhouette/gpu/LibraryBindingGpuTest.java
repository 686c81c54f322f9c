package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.Cublas;
import dev.silhouette.backend.cuda.CudaContext;
import dev.silhouette.backend.cuda.CudaStream;
import dev.silhouette.backend.cuda.Cudnn;
import dev.silhouette.backend.cuda.DeviceAllocator;
import dev.silhouette.backend.cuda.DeviceBuffer;
import dev.silhouette.backend.cuda.PinnedBuffer;
import dev.silhouette.tensor.Window;
import org.testng.SkipException;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

/**
 * The real cuBLAS and cuDNN through the foreign-function bindings, on device memory, against plain Java
 * arithmetic in double. Errors are bounded relative to the sum of |terms| of each output, which FP32
 * accumulation in any order meets and TF32 (10-bit mantissa) does not.
 */
@Test(groups = "gpu")
public class LibraryBindingGpuTest {
    /** Per output: |gpu - exact| <= this * sum of |products| (FP32 rounding is 6e-8 per operation). */
    private static final double FP32_RELATIVE = 2e-6;

    private CudaContext context;
    private CudaStream stream;
    private DeviceAllocator allocator;
    private PinnedBuffer staging;
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private DeviceBuffer workspace;

    @BeforeClass
    public void open() {
        GpuGuard.requireCuda();
        context = new CudaContext(0);
        stream = new CudaStream();
        allocator = new DeviceAllocator(context);
        staging = new PinnedBuffer(64L << 20);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (context == null) return;
        context.makeCurrent();
        stream.synchronize("test end");
        for (DeviceBuffer b : buffers) b.close();
        if (workspace != null) workspace.close();
        staging.close();
        allocator.close();
        stream.close();
        context.close();
    }

    private DeviceBuffer upload(float[] data) {
        DeviceBuffer b = allocator.allocate(4L * Math.max(data.length, 1));
        buffers.add(b);
        b.upload(data, staging, stream);
        return b;
    }

    private float[] download(DeviceBuffer b, int count) {
        float[] host = new float[count];
        b.download(host, staging, stream);
        return host;
    }

    private long workspace(long bytes) {
        if (workspace == null || workspace.bytes() < bytes) {
            if (workspace != null) {
                stream.synchronize("workspace resize");
                workspace.close();
            }
            workspace = allocator.allocate(bytes);
        }
        return workspace.address();
    }

    private static void requireLibrary(String name, java.util.Optional<String> reason) {
        reason.ifPresent(r -> {
            throw new SkipException(name + " unavailable: " + r);
        });
    }

    private static float[] randoms(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = random.nextFloat() * 2 - 1;
        return v;
    }

    @Test
    public void describesTheLoadedLibraries() {
        requireLibrary("cuBLAS", Cublas.unavailableReason());
        requireLibrary("cuDNN", Cudnn.unavailableReason());
        assertTrue(Cublas.describe().matches("libcublas\\.so\\.1[23] \\(version \\d+, [\\d.]+\\).*"), Cublas.describe());
        assertTrue(Cudnn.describe().matches("libcudnn\\.so\\.[89] \\(version \\d+, [\\d.]+\\).*"), Cudnn.describe());
        System.out.println("cuBLAS: " + Cublas.describe() + "\ncuDNN: " + Cudnn.describe());
    }

    @Test
    public void sgemmRowMajorMatchesJava() {
        requireLibrary("cuBLAS", Cublas.unavailableReason());
        context.makeCurrent();
        Random random = new Random(11);
        try (Cublas blas = new Cublas(stream.handle())) {
            for (boolean transB : new boolean[] {false, true}) {
                int m = 37, n = 29, k = 53;
                int lda = k + 3, ldb = (transB ? k : n) + 5, ldc = n + 2;
                float[] a = randoms(random, m * lda), b = randoms(random, (transB ? n : k) * ldb), c = randoms(random, m * ldc);
                float alpha = 0.75f, beta = 0.5f;
                DeviceBuffer da = upload(a), db = upload(b), dc = upload(c);
                blas.sgemmRowMajor("gpu-test", m, n, k, alpha, da.address(), lda, db.address(), ldb, beta, dc.address(), ldc, transB);
                float[] result = download(dc, c.length);
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < ldc; j++) {
                        if (j >= n) {
                            assertEquals(result[i * ldc + j], c[i * ldc + j], "padding of row " + i + " must stay untouched");
                            continue;
                        }
                        double sum = 0, magnitude = 0;
                        for (int l = 0; l < k; l++) {
                            double p = (double) a[i * lda + l] * (transB ? b[j * ldb + l] : b[l * ldb + j]);
                            sum += p;
                            magnitude += Math.abs(p);
                        }
                        double expected = alpha * sum + beta * c[i * ldc + j];
                        double bound = FP32_RELATIVE * (Math.abs(alpha) * magnitude + Math.abs(beta * c[i * ldc + j])) + 1e-7;
                        assertTrue(Math.abs(result[i * ldc + j] - expected) <= bound,
                                "C[" + i + "][" + j + "] transB=" + transB + ": " + result[i * ldc + j] + " vs " + expected);
                    }
                }
            }
        }
    }

    record ConvCase(String name, int n, int c, int h, int w, int k, int r, int s, int pad, int stride, int dilation, int groups,
                    boolean bias) {
        @Override
        public String toString() {
            return name;
        }
    }

    @DataProvider
    public Object[][] convolutions() {
        return new Object[][] {
                {new ConvCase("3x3 odd sizes with bias", 2, 3, 17, 19, 8, 3, 3, 1, 1, 1, 1, true)},
                {new ConvCase("7x7 stride 2 stem", 1, 3, 64, 64, 16, 7, 7, 3, 2, 1, 1, false)},
                {new ConvCase("grouped dilated strided", 2, 8, 15, 13, 12, 3, 3, 2, 2, 2, 4, true)},
                {new ConvCase("depthwise", 1, 16, 20, 20, 16, 3, 3, 1, 1, 1, 16, true)},
                {new ConvCase("1x1 projection", 3, 32, 9, 9, 48, 1, 1, 0, 1, 1, 1, true)},
                {new ConvCase("resnet 3x3 64 channels", 1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, false)},
        };
    }

    @Test(dataProvider = "convolutions")
    public void conv2dMatchesJava(ConvCase p) {
        requireLibrary("cuDNN", Cudnn.unavailableReason());
        context.makeCurrent();
        Random random = new Random(p.name().hashCode());
        int cg = p.c() / p.groups(), kg = p.k() / p.groups();
        int oh = Window.outputSize(p.h(), p.r(), p.stride(), p.pad(), p.dilation());
        int ow = Window.outputSize(p.w(), p.s(), p.stride(), p.pad(), p.dilation());
        float[] x = randoms(random, p.n() * p.c() * p.h() * p.w()), w = randoms(random, p.k() * cg * p.r() * p.s()),
                bias = randoms(random, p.k());
        int outCount = p.n() * p.k() * oh * ow;
        DeviceBuffer dx = upload(x), dw = upload(w), db = upload(bias), dy = upload(new float[outCount]);
        float[] y;
        try (Cudnn dnn = new Cudnn(stream.handle())) {
            dnn.conv2d(p.name(), p.n(), p.c(), p.h(), p.w(), p.k(), p.r(), p.s(), p.pad(), p.pad(), p.stride(), p.stride(),
                    p.dilation(), p.dilation(), p.groups(), dx.address(), dw.address(), p.bias() ? db.address() : 0, dy.address(),
                    this::workspace);
            y = download(dy, outCount);
        }
        for (int n = 0; n < p.n(); n++)
            for (int k = 0; k < p.k(); k++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        double sum = p.bias() ? bias[k] : 0, magnitude = Math.abs(sum);
                        int g = k / kg;
                        for (int ci = 0; ci < cg; ci++)
                            for (int ky = 0; ky < p.r(); ky++)
                                for (int kx = 0; kx < p.s(); kx++) {
                                    int iy = oy * p.stride() - p.pad() + ky * p.dilation(), ix = ox * p.stride() - p.pad() + kx * p.dilation();
                                    if (iy < 0 || iy >= p.h() || ix < 0 || ix >= p.w()) continue;
                                    double v = (double) x[((n * p.c() + g * cg + ci) * p.h() + iy) * p.w() + ix]
                                            * w[((k * cg + ci) * p.r() + ky) * p.s() + kx];
                                    sum += v;
                                    magnitude += Math.abs(v);
                                }
                        float got = y[((n * p.k() + k) * oh + oy) * ow + ox];
                        if (!(Math.abs(got - sum) <= FP32_RELATIVE * magnitude + 1e-7)) {
                            fail(p + ": y[" + n + "][" + k + "][" + oy + "][" + ox + "] = " + got + ", expected " + sum
                                    + " (error " + Math.abs(got - sum) / magnitude + " of the sum of |terms|)");
                        }
                    }
    }

    /**
     * Every input is 1 + 2^-12, which FP32 holds exactly and TF32 (10 mantissa bits) reads as 1: with cuDNN's
     * default math the H100 returns exactly the tap count, 576, instead of 576.14.
     */
    @Test
    public void conv2dKeepsFullFp32Precision() {
        requireLibrary("cuDNN", Cudnn.unavailableReason());
        context.makeCurrent();
        int c = 64, h = 32, w = 32, k = 64;
        float[] x = new float[c * h * w], weights = new float[k * c * 9];
        java.util.Arrays.fill(x, 1f + 0x1p-12f);
        java.util.Arrays.fill(weights, 1f);
        DeviceBuffer dx = upload(x), dw = upload(weights), dy = upload(new float[k * h * w]);
        float[] y;
        try (Cudnn dnn = new Cudnn(stream.handle())) {
            dnn.conv2d("precision", 1, c, h, w, k, 3, 3, 1, 1, 1, 1, 1, 1, 1, dx.address(), dw.address(), 0, dy.address(), this::workspace);
            y = download(dy, k * h * w);
        }
        double exact = 9 * c * (1 + 0x1p-12);
        for (int channel = 0; channel < k; channel++) {
            float interior = y[(channel * h + h / 2) * w + w / 2];
            assertEquals(interior, exact, 1e-2, "interior output of channel " + channel + " (TF32 would give " + 9 * c + ")");
        }
    }

    @Test
    public void poolingSoftmaxAndReluMatchJava() {
        requireLibrary("cuDNN", Cudnn.unavailableReason());
        context.makeCurrent();
        Random random = new Random(5);
        int n = 2, c = 3, h = 9, w = 7;
        float[] x = randoms(random, n * c * h * w);
        x[4] = Float.NaN;
        DeviceBuffer dx = upload(x), dy = upload(new float[x.length]);
        try (Cudnn dnn = new Cudnn(stream.handle())) {
            for (int mode = 0; mode < 3; mode++) {
                boolean max = mode == 0, includePad = mode == 1;
                int kh = 3, kw = 3, pad = 1, stride = 2;
                int oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
                dnn.pool("pool", max, includePad, n, c, h, w, kh, kw, pad, pad, stride, stride, dx.address(), dy.address());
                float[] y = download(dy, n * c * oh * ow);
                for (int plane = 0; plane < n * c; plane++)
                    for (int oy = 0; oy < oh; oy++)
                        for (int ox = 0; ox < ow; ox++) {
                            float best = Float.NEGATIVE_INFINITY;
                            double sum = 0;
                            int taps = 0;
                            for (int ky = 0; ky < kh; ky++)
                                for (int kx = 0; kx < kw; kx++) {
                                    int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                    float v = x[(plane * h + iy) * w + ix];
                                    best = Math.max(best, v);
                                    sum += v;
                                    taps++;
                                }
                            double expected = max ? best : sum / (includePad ? kh * kw : taps);
                            float got = y[(plane * oh + oy) * ow + ox];
                            String where = (max ? "max" : includePad ? "average including padding" : "average excluding padding")
                                    + " at plane " + plane + " (" + oy + "," + ox + ")";
                            if (Double.isNaN(expected)) assertTrue(Float.isNaN(got), where + ": NaN must propagate, got " + got);
                            else assertEquals(got, expected, 1e-6, where);
                        }
            }
            x[4] = 0.5f;
            dx.upload(x, staging, stream);
            dnn.softmaxChannels("softmax", n, c, h, w, dx.address(), dy.address());
            float[] y = download(dy, x.length);
            for (int b = 0; b < n; b++)
                for (int i = 0; i < h * w; i++) {
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int ch = 0; ch < c; ch++) max = Math.max(max, x[(b * c + ch) * h * w + i]);
                    for (int ch = 0; ch < c; ch++) sum += Math.exp(x[(b * c + ch) * h * w + i] - max);
                    for (int ch = 0; ch < c; ch++) {
                        int at = (b * c + ch) * h * w + i;
                        assertEquals(y[at], Math.exp(x[at] - max) / sum, 1e-6, "softmax at " + at);
                    }
                }
            x[7] = Float.NaN;
            dx.upload(x, staging, stream);
            dnn.relu("relu", dx.address(), dy.address(), x.length);
            y = download(dy, x.length);
            for (int i = 0; i < x.length; i++) assertEquals(y[i], x[i] > 0 ? x[i] : 0f, "relu at " + i + " of " + x[i]);
        }
    }
}
