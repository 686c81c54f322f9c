#!/usr/bin/env bash
# Coverage-guided fuzzing of every input parser with Jazzer (libFuzzer over Java bytecode).
# Usage: tests/fuzz/run.sh [RUNS [SECONDS [TARGET...]]]   (defaults: 10000 runs, at most 60 s per target, all)
# A target passes with no finding and at least FUZZ_MIN_RUNS executions (default RUNS; set it lower for a
# long run capped by SECONDS, e.g. FUZZ_MIN_RUNS=10000 tests/fuzz/run.sh 1000000000 600).
# Needs `mvn test-compile` first (CI runs it after `mvn verify`). Each target starts from its committed
# corpus in tests/fuzz/TARGET/ (seeds and kept regression inputs) and adds what it finds under
# target/fuzz/TARGET/; a finding (an untyped exception, an OutOfMemoryError, an input over 1 s) stops
# that target and leaves the input as target/fuzz/TARGET/crash-* or timeout-*: fix it, then copy the
# input into tests/fuzz/TARGET/ where FuzzRegressionTest replays it on every build.
# Writes one line per target (runs, seconds, coverage) to target/fuzz/summary.txt; exits 1 on any finding.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
runs=${1:-10000}
seconds=${2:-60}
min_runs=${FUZZ_MIN_RUNS:-$runs}
shift $(( $# < 2 ? $# : 2 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(OnnxModelFuzz OnnxExternalDataFuzz SafeTensorsFuzz IdxFuzz QuantPlanFuzz RegionPolicyFuzz ModelMetadataFuzz RestRequestFuzz)
java=${JAVA_HOME:+$JAVA_HOME/bin/}java
mkdir -p target/fuzz
if [ ! target/fuzz/classpath.txt -nt pom.xml ]; then
  mvn -o -q dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/fuzz/classpath.txt >/dev/null || exit 1
fi
classpath="target/test-classes:target/classes:$(cat target/fuzz/classpath.txt)"
summary=target/fuzz/summary.txt
: > "$summary"
failed=0
failures=0
for t in "${targets[@]}"; do
  out="target/fuzz/$t"
  rm -rf "$out" && mkdir -p "$out/corpus"
  # A fixed seed keeps CI's runs repeatable; the committed corpus is read only (new inputs go to $out/corpus).
  "$java" --add-modules jdk.incubator.vector -Xmx1g -XX:+UseSerialGC -cp "$classpath" com.code_intelligence.jazzer.Jazzer \
      --target_class="dev.silhouette.fuzz.$t" --instrumentation_includes='dev.silhouette.**' --reproducer_path="$out" \
      -runs="$runs" -max_total_time="$seconds" -timeout=1 -seed=20261207 -rss_limit_mb=3072 -print_final_stats=1 \
      -artifact_prefix="$out/" "$out/corpus" "tests/fuzz/$t" > "$out/log.txt" 2>&1
  rc=$?
  done_line=$(grep -a '^Done [0-9]* runs' "$out/log.txt" | tail -1)
  cov=$(grep -a -o 'cov: [0-9]* ft: [0-9]*' "$out/log.txt" | tail -1)
  execs=$(grep -a -o 'stat::number_of_executed_units: *[0-9]*' "$out/log.txt" | grep -o '[0-9]*$' | tail -1)
  line="$t: ${execs:-?} executions (${done_line:-no Done line}), ${cov:-no coverage line}, exit $rc"
  echo "$line" | tee -a "$summary"
  if [ $rc -ne 0 ] || [ "${execs:-0}" -lt "$min_runs" ]; then
    failed=1
    failures=$((failures + 1))
    grep -a -m 20 -E '== Java Exception|Exception|Error|timeout|artifact' "$out/log.txt" | head -20
  fi
done
echo "fuzz: $(( ${#targets[@]} - failures )) passed, $failures failed"
exit $failed
