package dev.silhouette.backend.cpu;

import dev.silhouette.conformance.CaseResult;
import dev.silhouette.conformance.Problems;
import dev.silhouette.conformance.Target;
import dev.silhouette.conformance.Verdict;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import static dev.silhouette.conformance.ConformanceAssert.assertConforms;
import static org.testng.Assert.assertEquals;

/**
 * The GEMM convolution against the seven-loop reference and the GEMM linear layer against its loop, on the
 * conformance suite's problem lists (awkward, real ResNet and random shapes), through the suite's case runner.
 */
public class ConvolutionConformanceTest {

    @DataProvider
    public Object[][] convolutions() {
        return Problems.convolutions().stream().map(p -> new Object[] {p}).toArray(Object[][]::new);
    }

    @DataProvider
    public Object[][] linears() {
        return Problems.linears().stream().map(p -> new Object[] {p}).toArray(Object[][]::new);
    }

    @Test(dataProvider = "convolutions")
    public void gemmConvolutionMatchesReference(dev.silhouette.conformance.ConformanceCase.Convolution p) {
        for (CaseResult r : assertConforms(p, Target.cpu())) assertEquals(r.verdict(), Verdict.PASS, r.line());
    }

    @Test(dataProvider = "linears")
    public void gemmLinearMatchesReference(dev.silhouette.conformance.ConformanceCase.Linear p) {
        for (CaseResult r : assertConforms(p, Target.cpu())) assertEquals(r.verdict(), Verdict.PASS, r.line());
    }
}
