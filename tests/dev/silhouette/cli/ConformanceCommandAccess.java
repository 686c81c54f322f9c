package dev.silhouette.cli;

import dev.silhouette.conformance.CaseRunner;
import dev.silhouette.conformance.ConformanceCase;
import dev.silhouette.conformance.Target;

import java.io.PrintWriter;
import java.util.List;

/** The conformance command with targets a test chose (a planted fault), in text mode. */
public final class ConformanceCommandAccess {
    private ConformanceCommandAccess() {}

    public static int report(List<Target> targets, List<String> notes, List<ConformanceCase> cases, boolean json, PrintWriter out) {
        return ConformanceCommand.report(targets, notes, cases, CaseRunner.Mode.CHECK, json, null, out);
    }
}
