package dev.silhouette.gpu;

import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.backend.cuda.CudaAvailability;
import dev.silhouette.backend.cuda.CudaContext;
import dev.silhouette.backend.cuda.KernelModule;
import dev.silhouette.backend.cuda.RegionMaskKernel;
import dev.silhouette.graph.Op;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.testng.Assert.fail;

/**
 * Region maps on the device against the CPU specification, RegionOps.regionMap (docs/REGION_QUANTIZATION.md
 * section 3), byte for byte: named silhouettes (all low, all high, one hot pixel, checkerboard, random, constant,
 * saturated) x layer sizes (same, down to the network's feature maps, up, odd) x nearest and bilinear x
 * both orders of thresholding and resizing x policies of 1, 3 and 4 regions.
 */
@Test(groups = "gpu")
public class RegionMaskKernelTest {
    private CudaContext context;
    private KernelModule module;
    private RegionMaskKernel kernel;

    @BeforeClass(alwaysRun = true)
    public void open() {
        if (CudaAvailability.unavailableReason().isPresent()) return;
        context = new CudaContext(0);
        module = new KernelModule(context);
        kernel = new RegionMaskKernel(module);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (module != null) module.close();
        if (context != null) context.close();
    }

    static Tensor silhouette(String name, Shape s) {
        float[] d = new float[s.size()];
        int h = s.h(), w = s.w();
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(s.size());
        for (int i = 0; i < d.length; i++) {
            int y = i / w % h, x = i % w;
            d[i] = switch (name) {
                case "all-low" -> 0.001f + 1e-4f * (i % 7);
                case "all-high" -> 0.999f - 1e-4f * (i % 7);
                case "single pixel" -> y == h / 2 && x == w / 2 ? 1f : 0f;
                case "checkerboard" -> (y + x) % 2 == 0 ? 0.25f : 0.75f;
                case "constant" -> 0.5f;
                case "saturated" -> (float) (1 / (1 + Math.exp(-40 * (rnd.nextDouble() * 2 - 1))));
                default -> (float) rnd.nextDouble();
            };
        }
        return new Tensor(s, d);
    }

    @DataProvider
    public Object[][] problems() {
        List<Object[]> cases = new ArrayList<>();
        String[] names = {"all-low", "all-high", "single pixel", "checkerboard", "random", "constant", "saturated"};
        int[][] sizes = {{28, 28, 28, 28}, {28, 28, 14, 14}, {28, 28, 7, 7}, {28, 28, 56, 56}, {13, 31, 7, 5}, {7, 7, 28, 28}, {1, 1, 4, 4}};
        RegionPolicy[] policies = {RegionPolicy.parse("2:50,3:30,4:20"), RegionPolicy.parse("1:10,2:20,3:30,4:40"), RegionPolicy.parse("8:100")};
        for (String name : names) {
            for (int[] size : sizes) {
                for (Op.Interpolate.Mode mode : Op.Interpolate.Mode.values()) {
                    for (Op.RegionQuantize.MaskOrder order : Op.RegionQuantize.MaskOrder.values()) {
                        RegionPolicy policy = policies[(cases.size()) % policies.length];
                        int batch = size[0] == 1 ? 3 : 1 + cases.size() % 4;
                        cases.add(new Object[] {name, silhouette(name, Shape.of(batch, 1, size[0], size[1])), size[2], size[3], mode, order, policy});
                    }
                }
            }
        }
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "problems")
    public void regionMapIsTheCpuSpecification(String name, Tensor silhouette, int outH, int outW, Op.Interpolate.Mode mode, Op.RegionQuantize.MaskOrder order,
                                              RegionPolicy policy) {
        GpuGuard.requireCuda();
        byte[] expected = RegionOps.regionMap(silhouette, policy, outH, outW, mode, order);
        byte[] actual = kernel.run(context, silhouette, policy.percents(), outH, outW, mode, order);
        int i = Arrays.mismatch(expected, actual);
        if (i >= 0) {
            fail(name + " " + silhouette.shape() + " -> " + outH + "x" + outW + " " + mode + " " + order + " " + policy + ": pixel " + i
                    + " (image " + i / (outH * outW) + ", y " + i / outW % outH + ", x " + i % outW + ") is region " + actual[i] + ", the CPU says " + expected[i]);
        }
    }
}
