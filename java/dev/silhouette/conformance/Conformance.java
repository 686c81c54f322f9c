package dev.silhouette.conformance;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.Backends;
import dev.silhouette.backend.cuda.CudaAvailability;
import dev.silhouette.io.Progress;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The backend conformance suite (after ggml's test-backend-ops): every case of {@link Problems} on each
 * target, the CPU's fast kernels against its reference kernels and every device backend against the
 * CPU backend. A user's own test suite can call {@link #run} as {@code silhouette conformance} does.
 */
public final class Conformance {
    private Conformance() {}

    /** Every case, in list order: float convolutions, linear layers, low-bit convolutions, then one-op graphs. */
    public static List<ConformanceCase> cases() {
        List<ConformanceCase> all = new ArrayList<>();
        all.addAll(Problems.convolutions());
        all.addAll(Problems.linears());
        all.addAll(Problems.lowBits());
        all.addAll(Problems.singleOps());
        return List.copyOf(all);
    }

    /** The cases whose op name matches {@code pattern} (a regular expression, case-insensitive, anywhere in the name). */
    public static List<ConformanceCase> cases(String pattern) {
        if (pattern == null || pattern.isEmpty()) return cases();
        Pattern p;
        try {
            p = Pattern.compile(pattern, Pattern.CASE_INSENSITIVE);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException("--ops '" + pattern + "' is not a regular expression: " + e.getDescription());
        }
        List<ConformanceCase> all = cases();
        List<ConformanceCase> matched = all.stream().filter(c -> p.matcher(c.op()).find()).toList();
        if (matched.isEmpty()) {
            throw new IllegalArgumentException("--ops '" + pattern + "' matches no op; ops: "
                    + String.join(", ", all.stream().map(ConformanceCase::op).distinct().toList()));
        }
        return matched;
    }

    /** The targets of {@code --backend}, open until closed, with a note where a backend was left out and why. */
    public record Targets(List<Target> targets, List<String> notes) implements AutoCloseable {
        @Override
        public void close() {
            for (Target t : targets) if (t instanceof Target.Device d) d.backend().close();
        }
    }

    /**
     * "cpu": the CPU's kernels; "cuda": CUDA device {@code device} against the CPU (an error naming the reason
     * when CUDA cannot run); "auto": the CPU, and CUDA where it can run.
     */
    public static Targets targets(String backend, int device) {
        return switch (backend) {
            case "cpu" -> new Targets(List.of(Target.cpu()), List.of());
            case "cuda" -> new Targets(List.of(Target.cuda(Backends.create("cuda", device))), List.of());
            case "auto" -> {
                Optional<String> reason = CudaAvailability.unavailableReason();
                if (reason.isPresent()) {
                    yield new Targets(List.of(Target.cpu()), List.of("no GPU backend was checked: CUDA is unavailable (" + reason.get() + ")"));
                }
                Backend cuda = Backends.create("cuda", device);
                yield new Targets(List.of(Target.cpu(), Target.cuda(cuda)), List.of());
            }
            default -> throw new IllegalArgumentException("--backend '" + backend + "' is not one of auto, cpu, cuda");
        };
    }

    /** Runs every case on every target, handing each result to {@code each} as it completes (for a line per case). */
    public static ConformanceReport run(List<Target> targets, List<ConformanceCase> cases, CaseRunner.Mode mode, List<String> notes,
                                        Consumer<CaseResult> each) {
        List<CaseResult> results = new ArrayList<>();
        try (Progress progress = Progress.start("conformance", (long) targets.size() * cases.size(), "cases")) {
            for (Target t : targets) {
                for (ConformanceCase c : cases) {
                    for (CaseResult r : CaseRunner.run(c, t, mode)) {
                        results.add(r);
                        each.accept(r);
                    }
                    progress.step();
                }
            }
        }
        return new ConformanceReport(Environment.current(), mode, targets.stream().map(Target::name).toList(), notes, results);
    }
}
