package dev.silhouette.cli;

import dev.silhouette.conformance.CaseResult;
import dev.silhouette.conformance.CaseRunner;
import dev.silhouette.conformance.Conformance;
import dev.silhouette.conformance.ConformanceCase;
import dev.silhouette.conformance.ConformanceReport;
import dev.silhouette.conformance.Target;
import dev.silhouette.io.AtomicFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "conformance", mixinStandardHelpOptions = true,
        description = {"Checks every kernel of every available backend against the CPU specification, case by case: the CPU's GEMM and "
                + "packed low-bit kernels against its reference kernels, and a GPU backend's every op against the CPU backend. "
                + "Exit status 1 when any case fails.",
                "Run it after a driver, CUDA, cuDNN or JDK upgrade."})
final class ConformanceCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--backend", defaultValue = "auto", description = "auto (the CPU, and CUDA where it runs), cpu or cuda (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--device", defaultValue = "0", description = "CUDA device ordinal (default: ${DEFAULT-VALUE})")
    int device;

    @Option(names = "--ops", description = "only ops whose name matches this regular expression, e.g. 'LowBit|Conv' (case-insensitive)")
    String ops;

    @Option(names = "--mode", defaultValue = "check", description = "check (compare with the specification) or perf (time the same cases) (default: ${DEFAULT-VALUE})")
    String mode;

    @Option(names = "--json", description = "print the report as one JSON document instead of a line per case")
    boolean json;

    @Option(names = "--out", description = "also write the JSON report to this file")
    Path out;

    @Override
    public Integer call() {
        CaseRunner.Mode m = switch (mode.toLowerCase(Locale.ROOT)) {
            case "check" -> CaseRunner.Mode.CHECK;
            case "perf" -> CaseRunner.Mode.PERF;
            default -> throw new IllegalArgumentException("--mode '" + mode + "' is not one of check, perf");
        };
        List<ConformanceCase> cases = Conformance.cases(ops);
        try (Conformance.Targets targets = Conformance.targets(backend, device)) {
            return report(targets.targets(), targets.notes(), cases, m, json, out, spec.commandLine().getOut());
        }
    }

    /** The command after its targets are open: lines or JSON on {@code out}, the report file, and the exit status (1 on any failure). */
    static int report(List<Target> targets, List<String> notes, List<ConformanceCase> cases, CaseRunner.Mode mode, boolean json, Path file,
                      PrintWriter out) {
        ConformanceReport report = Conformance.run(targets, cases, mode, notes, r -> {
            if (!json) {
                out.println(r.line());
                if (r.verdict() == dev.silhouette.conformance.Verdict.FAIL) out.flush();
            }
        });
        if (json) {
            out.println(report.toJson());
        } else {
            out.println();
            report.environment().lines().forEach(out::println);
            notes.forEach(n -> out.println("note: " + n));
            report.summaryLines().forEach(out::println);
            for (CaseResult f : report.failures()) out.println("FAILED " + f.line());
        }
        out.flush();
        if (file != null) {
            try {
                AtomicFiles.write(file, tmp -> Files.writeString(tmp, report.toJson()));
            } catch (IOException e) {
                throw new UncheckedIOException("could not write the report " + file + ": " + e.getMessage(), e);
            }
        }
        return report.passed() ? 0 : 1;
    }
}
