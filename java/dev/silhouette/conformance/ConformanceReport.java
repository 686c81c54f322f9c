package dev.silhouette.conformance;

import com.google.gson.GsonBuilder;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** A suite run: where it ran, what it checked, each case's result, and the counts. */
public record ConformanceReport(Environment environment, CaseRunner.Mode mode, List<String> backends, List<String> notes, List<CaseResult> results) {

    public ConformanceReport {
        backends = List.copyOf(backends);
        notes = List.copyOf(notes);
        results = List.copyOf(results);
    }

    /** Results per verdict. */
    public Map<Verdict, Integer> counts() {
        Map<Verdict, Integer> counts = new EnumMap<>(Verdict.class);
        for (Verdict v : Verdict.values()) counts.put(v, 0);
        for (CaseResult r : results) counts.merge(r.verdict(), 1, Integer::sum);
        return counts;
    }

    /** For every op, and backend variant, the results per verdict. */
    public Map<String, Map<String, Map<Verdict, Integer>>> perOp() {
        Map<String, Map<String, Map<Verdict, Integer>>> m = new TreeMap<>();
        for (CaseResult r : results) {
            m.computeIfAbsent(r.op(), k -> new TreeMap<>()).computeIfAbsent(r.backend(), k -> new EnumMap<>(Verdict.class)).merge(r.verdict(), 1, Integer::sum);
        }
        return m;
    }

    public List<CaseResult> failures() {
        return results.stream().filter(r -> r.verdict() == Verdict.FAIL).toList();
    }

    public boolean passed() {
        return failures().isEmpty();
    }

    /** The summary: counts, then one line per op and backend variant. */
    public List<String> summaryLines() {
        var c = counts();
        List<String> lines = new java.util.ArrayList<>();
        lines.add(String.format("%d results: %d pass, %d fail, %d not supported, %d specification only%s", results.size(), c.get(Verdict.PASS),
                c.get(Verdict.FAIL), c.get(Verdict.UNSUPPORTED), c.get(Verdict.SPECIFICATION), c.get(Verdict.TIMED) > 0 ? ", " + c.get(Verdict.TIMED) + " timed" : ""));
        perOp().forEach((op, byBackend) -> byBackend.forEach((backend, verdicts) -> {
            StringBuilder s = new StringBuilder(String.format("  %-19s %-24s", op, backend));
            verdicts.forEach((v, n) -> s.append(' ').append(n).append(' ').append(v.name().toLowerCase().replace('_', ' ')));
            lines.add(s.toString());
        }));
        return lines;
    }

    public String toJson() {
        record Json(Environment environment, String mode, List<String> backends, List<String> notes, boolean passed, Map<Verdict, Integer> counts,
                    Map<String, Map<String, Map<Verdict, Integer>>> perOp, List<CaseResult> results) {}
        return new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create()
                .toJson(new Json(environment, mode.name().toLowerCase(), backends, notes, passed(), counts(), perOp(), results));
    }
}
