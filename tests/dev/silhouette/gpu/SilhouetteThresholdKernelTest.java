package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.CudaAvailability;
import dev.silhouette.backend.cuda.CudaContext;
import dev.silhouette.backend.cuda.KernelModule;
import dev.silhouette.backend.cuda.SilhouetteThresholdKernel;
import dev.silhouette.quant.SilhouetteThresholds;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.testng.Assert.fail;

/**
 * The cut-key and region-map kernels against the CPU specification, bit for bit, on constant images,
 * one pixel, checkerboards, heavy ties, signed zeros, the network's silhouette sizes at batch 1 and 32,
 * cuts at rank 0 and at rank n, and policies of up to 20 regions (two selection sweeps).
 */
@Test(groups = "gpu")
public class SilhouetteThresholdKernelTest {
    static final int[] POLICY_50_30_20 = {50, 30, 20};
    static final int[] POLICY_10_20_30_40 = {10, 20, 30, 40};
    static final int[] POLICY_TENTHS = {10, 10, 10, 10, 10, 10, 10, 10, 10, 10};
    static final int[] POLICY_TWENTIETHS = {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5};

    private CudaContext context;
    private KernelModule module;
    private SilhouetteThresholdKernel kernel;

    @BeforeClass(alwaysRun = true)
    public void open() {
        // Each test skips on its own with the reason; nothing to open without CUDA.
        if (CudaAvailability.unavailableReason().isPresent()) return;
        context = new CudaContext(0);
        module = new KernelModule(context);
        kernel = new SilhouetteThresholdKernel(context, module);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (module != null) module.close();
        if (context != null) context.close();
    }

    @DataProvider
    public Object[][] images() {
        List<Object[]> cases = new ArrayList<>();
        cases.add(new Object[] {"all equal", filled(Shape.of(3, 1, 28, 28), 0.37f), POLICY_50_30_20});
        cases.add(new Object[] {"all equal", filled(Shape.of(1, 1, 7, 7), 1.0f), POLICY_10_20_30_40});
        cases.add(new Object[] {"single pixel", filled(Shape.of(1, 1, 1, 1), 0.5f), POLICY_50_30_20});
        cases.add(new Object[] {"single pixel", uniform(Shape.of(32, 1, 1, 1), 1), POLICY_10_20_30_40});
        cases.add(new Object[] {"checkerboard", checkerboard(Shape.of(2, 1, 28, 28)), POLICY_50_30_20});
        cases.add(new Object[] {"checkerboard", checkerboard(Shape.of(1, 1, 7, 7)), POLICY_10_20_30_40});
        long seed = 100;
        for (int side : new int[] {7, 28, 56, 112}) {
            for (int batch : new int[] {1, 32}) {
                for (int[] policy : new int[][] {POLICY_50_30_20, POLICY_10_20_30_40}) {
                    cases.add(new Object[] {"uniform", uniform(Shape.of(batch, 1, side, side), seed++), policy});
                }
            }
        }
        cases.add(new Object[] {"four levels", levels(Shape.of(8, 1, 56, 56), 4, 2), POLICY_50_30_20});
        cases.add(new Object[] {"two levels", levels(Shape.of(8, 1, 28, 28), 2, 3), POLICY_10_20_30_40});
        cases.add(new Object[] {"saturated sigmoid", saturatedSigmoid(Shape.of(16, 1, 56, 56), 4), POLICY_10_20_30_40});
        cases.add(new Object[] {"signed zeros and subnormals", signedZeros(Shape.of(4, 1, 28, 28), 5), POLICY_50_30_20});
        cases.add(new Object[] {"nine cuts", uniform(Shape.of(4, 1, 112, 112), 6), POLICY_TENTHS});
        cases.add(new Object[] {"nine cuts, ties", levels(Shape.of(4, 1, 56, 56), 7, 7), POLICY_TENTHS});
        cases.add(new Object[] {"nineteen cuts, two sweeps", levels(Shape.of(3, 1, 28, 28), 5, 12), POLICY_TWENTIETHS});
        cases.add(new Object[] {"a cut at rank 1 and at rank n", uniform(Shape.of(6, 1, 28, 28), 13), new int[] {1, 1000000, 1}});
        cases.add(new Object[] {"a cut at rank n, constant", filled(Shape.of(2, 1, 7, 7), 0.5f), new int[] {1000000, 1}});
        cases.add(new Object[] {"one row", uniform(Shape.of(3, 1, 1, 1000), 8), POLICY_50_30_20});
        cases.add(new Object[] {"large image", uniform(Shape.of(1, 1, 512, 512), 9), POLICY_10_20_30_40});
        cases.add(new Object[] {"odd size", uniform(Shape.of(5, 1, 13, 31), 10), POLICY_10_20_30_40});
        cases.add(new Object[] {"one region", uniform(Shape.of(2, 1, 28, 28), 11), new int[] {100}});
        cases.add(new Object[] {"empty batch", Tensor.zeros(0, 1, 28, 28), POLICY_50_30_20});
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "images")
    public void kernelMatchesTheCpuSpecificationBitForBit(String name, Tensor silhouette, int[] shares) {
        GpuGuard.requireCuda();
        compare(name, silhouette, shares, kernel.run(silhouette, shares));
    }

    /** Fails unless {@code actual} holds the CPU specification's cut keys and region map of {@code silhouette}. */
    static void compare(String name, Tensor silhouette, int[] shares, SilhouetteThresholdKernel.Result actual) {
        long[] expected = SilhouetteThresholds.cutKeys(silhouette, shares);
        byte[] expectedRegions = SilhouetteThresholds.regionMap(silhouette, expected, shares.length);
        String where = name + " " + silhouette.shape() + " at " + Arrays.toString(shares);
        int count = shares.length - 1;
        int k = Arrays.mismatch(expected, actual.cutKeys());
        if (k >= 0) {
            fail(where + ": cut " + k % count + " of image " + k / count + " is 0x" + Long.toHexString(actual.cutKeys()[k])
                    + ", the CPU gives 0x" + Long.toHexString(expected[k]) + " (value " + SilhouetteThresholds.cutValue(expected[k])
                    + ", pixel " + (int) expected[k] + ")");
        }
        int mismatch = Arrays.mismatch(expectedRegions, actual.regions());
        if (mismatch >= 0) {
            fail(where + ": pixel " + mismatch + " (value " + silhouette.data()[mismatch] + ") is in region " + actual.regions()[mismatch]
                    + ", the CPU says " + expectedRegions[mismatch]);
        }
    }

    static Tensor filled(Shape shape, float value) {
        return Tensor.filled(shape, value);
    }

    static Tensor uniform(Shape shape, long seed) {
        return Tensor.uniform(shape, 0, 1, seed);
    }

    static Tensor checkerboard(Shape shape) {
        float[] d = new float[shape.size()];
        int h = shape.h(), w = shape.w();
        for (int i = 0; i < d.length; i++) d[i] = ((i / w % h) + (i % w)) % 2 == 0 ? 0.25f : 0.75f;
        return new Tensor(shape, d);
    }

    static Tensor levels(Shape shape, int levels, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] d = new float[shape.size()];
        for (int i = 0; i < d.length; i++) d[i] = (rnd.nextInt(levels) + 1) / (levels + 1f);
        return new Tensor(shape, d);
    }

    static Tensor saturatedSigmoid(Shape shape, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] d = new float[shape.size()];
        for (int i = 0; i < d.length; i++) d[i] = (float) (1 / (1 + Math.exp(-40 * (rnd.nextDouble() * 2 - 1))));
        return new Tensor(shape, d);
    }

    /** Outside a sigmoid's range, but inside the contract: the total order of -0, +0 and subnormals. */
    static Tensor signedZeros(Shape shape, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] d = new float[shape.size()];
        for (int i = 0; i < d.length; i++) {
            d[i] = switch (rnd.nextInt(5)) {
                case 0 -> -0.0f;
                case 1 -> 0.0f;
                case 2 -> -Float.MIN_VALUE;
                case 3 -> Float.MIN_VALUE * (1 + rnd.nextInt(100));
                default -> (float) (rnd.nextDouble() * 2 - 1);
            };
        }
        return new Tensor(shape, d);
    }
}
