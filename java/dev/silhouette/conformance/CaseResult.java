package dev.silhouette.conformance;

/**
 * One case on one backend variant. {@code maxError}: the largest absolute difference from the
 * specification (0 on exact paths that pass, NaN where nothing was compared); {@code medianMicros}: the
 * median time of the checked kernel in perf mode (NaN otherwise); {@code detail}: for a failure the first
 * differing index with both values, for a refusal the typed reason.
 */
public record CaseResult(String op, String name, String shape, String backend, Verdict verdict, double maxError, double medianMicros, String detail) {

    /** The report line: op, case, shape, backend, verdict, then the error, time or reason. */
    public String line() {
        String tail = switch (verdict) {
            case PASS -> "max error " + String.format("%.3g", maxError);
            case FAIL -> detail;
            case UNSUPPORTED -> "not supported: " + detail;
            case SPECIFICATION -> detail;
            case TIMED -> String.format("%.1f us", medianMicros) + (detail.isEmpty() ? "" : ", " + detail);
        };
        return String.format("%-19s %-32s %-56s %-24s %-13s %s", op, name, shape, backend, verdict, tail);
    }
}
