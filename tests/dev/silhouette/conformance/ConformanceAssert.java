package dev.silhouette.conformance;

import org.testng.SkipException;

import java.util.List;
import java.util.stream.Collectors;

import static org.testng.Assert.assertFalse;
import static org.testng.Assert.fail;

/** How the project's tests read the suite's results: every FAIL fails the test with its report line. */
public final class ConformanceAssert {
    private ConformanceAssert() {}

    /** Runs the case on the target and fails on any failing result; a case the target refuses throws SkipException with the reason. */
    public static List<CaseResult> assertConforms(ConformanceCase c, Target target) {
        List<CaseResult> results = CaseRunner.run(c, target, CaseRunner.Mode.CHECK);
        assertFalse(results.isEmpty(), c + ": no result");
        List<CaseResult> failed = results.stream().filter(r -> r.verdict() == Verdict.FAIL).toList();
        if (!failed.isEmpty()) fail(failed.stream().map(CaseResult::line).collect(Collectors.joining("\n")));
        List<CaseResult> refused = results.stream().filter(r -> r.verdict() == Verdict.UNSUPPORTED).toList();
        if (refused.size() == results.size()) throw new SkipException(refused.getFirst().line());
        return results;
    }
}
