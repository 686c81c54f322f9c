#!/usr/bin/env bash
# The GPU check in one device call (../shared/device/README.md: the GPU machine has the driver, CUDA 13,
# compute-sanitizer and PyTorch but no Java and no network, so the run carries a packed runtime).
#   native-build/gpu-check.sh pack [DIR]   here: build, then pack classes, test classes, dependency jars,
#                                          a jlink runtime and this script into DIR (default .devpack)
#   native-build/gpu-check.sh run [DIR]    on the GPU machine, from the project root, DIR carried: every
#                                          step below, results under $OUT (at most 8 files come back)
#   native-build/gpu-check.sh --dry-run    here: pack into a temporary folder, unpack into a fresh one and
#                                          run every step there with DRY=1: what needs a GPU is expected to
#                                          skip or refuse, everything else (runtime, class path, TestNG
#                                          selection, command lines, result packing) runs for real
# Steps of `run`, each under its own time limit so that the whole stays below 8 minutes on an H100:
#   1 env (GPU, driver, nvcc, CUDA libraries, Java)                                   20 s
#   2 the TestNG gpu group: conformance of every kernel, 10,000-inference leak test  240 s
#   2b silhouette conformance --backend auto (CPU and CUDA, the report as JSON)       90 s
#   3 compute-sanitizer memcheck, then racecheck, on the low-bit kernels' tests       2 x 75 s
#   4 LowBitBenchmark (packed and binary kernels vs cuDNN FP32) and PyTorch's cuDNN
#     FP32/FP16 and INT8 GEMM on the same device                                     2 x 60 s
# Never run on a GPU yet: it was written in a session without one; only the dry run has run.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-}
# The low-bit kernels' GPU tests, the sanitizer subset (each sanitizer slows a launch 10-100x).
SANITIZED_TESTS=dev.silhouette.gpu.TensorCoreKernelsGpuTest,dev.silhouette.gpu.RegionMaskKernelTest,dev.silhouette.gpu.QuantizePackKernelTest,dev.silhouette.gpu.PackedConvKernelTest,dev.silhouette.gpu.BinaryConvKernelTest,dev.silhouette.gpu.SilhouetteThresholdKernelTest

pack() {
  local dir=$1
  export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
  cd "$root" || return 1
  if [ "${SKIP_BUILD:-0}" != 1 ]; then mvn -q -B -o -DskipTests test-compile || return 1; fi
  [ -f target/classes/dev/silhouette/kernels/silhouette.fatbin ] || echo "gpu-check: warning: no fatbin in target/classes (nvcc missing?); the GPU would have nothing to run"
  rm -rf "$dir" && mkdir -p "$dir/lib" || return 1
  # Dependency jars: the caller's class path when given, else Maven's test class path without the provided scope.
  local cp=${SILHOUETTE_CLASSPATH:-}
  if [ -z "$cp" ]; then
    # Provided-scope jars (Spark, which a cluster supplies) never run in the gpu group: left out, they keep the pack small.
    mvn -q -B -o dependency:build-classpath -DexcludeScope=provided -Dmdep.outputFile="$dir/classpath.txt" >/dev/null || return 1
    cp=$(cat "$dir/classpath.txt"); rm -f "$dir/classpath.txt"
  fi
  local jar
  IFS=: read -ra jars <<< "$cp"
  for jar in "${jars[@]}"; do
    case "$(basename "$jar")" in
      # CPU-only peers and test tools the gpu group never loads (fuzzing, architecture rules, gRPC serving): large
      onnxruntime*|spark-*|flink-*|scala-*|hadoop-*|kafka*|parquet-*|arrow-*|zstd-jni-*|snappy-*|rocksdb*|jazzer*|archunit*|grpc-*|proto-google-*) ;;
      *.jar) [ -f "$jar" ] && cp "$jar" "$dir/lib/" ;;
    esac
  done
  cp -r target/classes "$dir/classes" && cp -r target/test-classes "$dir/test-classes" || return 1
  # The Fashion-MNIST test images (4.2 MiB) serve eval and training, never the gpu group: left behind to fit the carry.
  rm -f "$dir/classes/dev/silhouette/data/fashion-mnist/t10k-images-idx3-ubyte.gz"
  local mods tmp
  mods=$("$JAVA_HOME/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps -cp "$dir/lib/*" target/classes 2>/dev/null || true)
  mods="${mods:-java.base},jdk.unsupported,java.logging,java.management,jdk.httpserver,jdk.incubator.vector,jdk.crypto.ec,java.sql,java.naming,java.net.http"
  tmp=$(mktemp -d)
  "$JAVA_HOME/bin/jlink" --add-modules "$mods" --strip-debug --no-header-files --no-man-pages --output "$tmp/jre" || return 1
  # GPU_CHECK_XZ: the xz level; a test's dry run takes 0 for speed, and then cannot judge the size.
  local level=${GPU_CHECK_XZ:-6}
  XZ_OPT="-$level -T0" tar -C "$tmp" -cJf "$dir/jre.tar.xz" jre || return 1
  rm -rf "$tmp"
  cp "$root/native-build/gpu-check.sh" "$dir/gpu-check.sh"
  local size tree
  size=$(du -sm "$dir" | cut -f1)
  tree=$(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | awk '$2=="total"{s+=$1} END {print int(s/1048576)}')
  echo "gpu-check: packed $dir: ${size} MiB, with the work tree (${tree} MiB) $((size + tree)) MiB; 64 MiB at most travels"
  if [ "$level" -ge 6 ] && [ $((size + tree)) -gt 62 ]; then echo "gpu-check: $dir and the work tree are too large for one device call" >&2; return 1; fi
}

# One step: its name, its time limit, the command; the log goes to $OUT/NAME.log, the verdict to the summary.
step() {
  local name=$1 limit=$2; shift 2
  local start=$SECONDS rc
  echo "== $name (limit ${limit} s): $*" | tee -a "$OUT/summary.txt"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "   $name: exit $rc in $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
  return $rc
}

run() {
  local dir=$1
  OUT=${OUT:-$root/target/gpu-check}
  mkdir -p "$OUT" && : > "$OUT/summary.txt"
  local jre=${JRE_DIR:-/tmp/gpu-check-jre}
  if [ ! -x "$jre/bin/java" ]; then
    if ! { rm -rf "$jre" && mkdir -p "$jre" && tar -C "$jre" --strip-components=1 -xJf "$dir/jre.tar.xz"; }; then
      echo "gpu-check: cannot unpack the runtime"; return 1
    fi
  fi
  local java=$jre/bin/java cp="$dir/classes:$dir/test-classes:$dir/lib/*"
  local jopts=(--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector --sun-misc-unsafe-memory-access=allow -XX:+UseParallelGC -Xmx8g)
  local libdirs
  libdirs=$( (ls -d /usr/local/nvidia/lib64 /usr/local/cuda/lib64 2>/dev/null
    find / -xdev \( -name 'libcudnn.so*' -o -name 'libcublas.so*' -o -name 'libcublasLt.so*' -o -name 'libcudart.so*' \) -printf '%h\n' 2>/dev/null) | sort -u | paste -sd:)
  export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATH="/usr/local/cuda/bin:$PATH"
  local classes
  # Every gpu-group test lives in dev.silhouette.gpu (the pack leaves out jars that other tests need).
  classes=$(cd "$dir/test-classes" && find ./dev/silhouette/gpu -name '*Test.class' ! -name '*$*' | sed 's|^\./||; s|\.class$||; s|/|.|g' | sort | paste -sd,)
  [ -n "$classes" ] || { echo "gpu-check: no test classes in $dir/test-classes"; return 1; }
  local failures=0 dry=${DRY:-0}

  step env 20 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || echo 'no nvidia-smi: no GPU'; \
    nvcc --version 2>/dev/null | tail -1 || echo 'no nvcc'; command -v compute-sanitizer || echo 'no compute-sanitizer'; \
    echo LD_LIBRARY_PATH=\$LD_LIBRARY_PATH; '$java' -version" || failures=$((failures + 1))

  # TestNG exits 0 when every test passed, 2 when some skipped (every gpu test skips without a GPU, with its reason in the report).
  step gpu-tests 240 "$java" "${jopts[@]}" -cp "$cp" org.testng.TestNG -groups gpu -d "$OUT/testng" -testclass "$classes"
  local rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 2 ] || failures=$((failures + 1))
  tar -C "$OUT" -czf "$OUT/gpu-tests.tar.gz" testng 2>/dev/null && rm -rf "$OUT/testng"

  # The conformance command a user runs after an upgrade (README, Checking an install): every case on the CPU and on
  # CUDA, through the same case runner as BackendConformanceTest. The dry run checks two ops on the CPU: the command
  # line and the report, not the suite again (the tests run it all).
  local ops=()
  [ "$dry" = 1 ] && ops=(--ops '^(Relu|Linear)$')
  step conformance 90 "$java" "${jopts[@]}" -cp "$cp" dev.silhouette.cli.Main conformance --backend auto --quiet "${ops[@]}" --out "$OUT/conformance.json" \
    || failures=$((failures + 1))
  tar -C "$OUT" -czf "$OUT/conformance.tar.gz" conformance.log conformance.json 2>/dev/null && rm -f "$OUT/conformance.log" "$OUT/conformance.json"

  local sanitizer tool
  sanitizer=$(command -v compute-sanitizer || true)
  for tool in memcheck racecheck; do
    if [ -n "$sanitizer" ]; then
      step "$tool" 75 "$sanitizer" --tool "$tool" --error-exitcode 99 --target-processes all \
        "$java" "${jopts[@]}" -cp "$cp" org.testng.TestNG -groups gpu -d "/tmp/gpu-check-$tool" -testclass "$SANITIZED_TESTS" || failures=$((failures + 1))
    elif [ "$dry" = 1 ]; then
      # No sanitizer here: the same TestNG command, to prove the subset's classes and options are right.
      step "$tool" 75 "$java" "${jopts[@]}" -cp "$cp" org.testng.TestNG -groups gpu -d "/tmp/gpu-check-$tool" -testclass "$SANITIZED_TESTS"
      rc=$?; [ $rc -eq 0 ] || [ $rc -eq 2 ] || failures=$((failures + 1))
    else
      echo "gpu-check: compute-sanitizer not found: $tool not run" | tee -a "$OUT/summary.txt"; failures=$((failures + 1))
    fi
  done

  mkdir -p "$OUT/bench"
  step bench-kernels 60 "$java" "${jopts[@]}" -cp "$cp" dev.silhouette.backend.cuda.LowBitBenchmark --out "$OUT/bench" --batches 1,32,128 --runs 20 --warmup 5
  rc=$?
  # Without a GPU the benchmark refuses with exit 2 after parsing its options: the dry run's success.
  if [ $rc -ne 0 ] && ! { [ "$dry" = 1 ] && [ $rc -eq 2 ] && grep -q "needs a GPU" "$OUT/bench-kernels.log"; }; then failures=$((failures + 1)); fi
  if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    step bench-pytorch 60 python3 "$root/tests/peers/pytorch/bench_cudnn.py" --out "$OUT/bench" || failures=$((failures + 1))
  else
    step bench-pytorch 10 python3 -c "import ast, sys; ast.parse(open(sys.argv[1]).read()); print('PyTorch with CUDA not found: the peer columns were not measured (script parses)')" \
      "$root/tests/peers/pytorch/bench_cudnn.py" || failures=$((failures + 1))
  fi
  tar -C "$OUT" -czf "$OUT/bench.tar.gz" bench bench-kernels.log bench-pytorch.log && rm -rf "$OUT/bench" "$OUT/bench-kernels.log" "$OUT/bench-pytorch.log"

  echo "gpu-check: $failures step(s) failed$([ "$dry" = 1 ] && echo ' (dry run: GPU steps expected to skip)')" | tee -a "$OUT/summary.txt"
  local files
  files=$(find "$OUT" -type f | wc -l)
  echo "gpu-check: $files file(s) under \$OUT (8 at most come back)" | tee -a "$OUT/summary.txt"
  [ "$files" -le 8 ] || failures=$((failures + 1))
  [ $failures -eq 0 ]
}

case "$mode" in
  pack) pack "${2:-$root/.devpack}" ;;
  run) run "${2:-$root/.devpack}" ;;
  --dry-run)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    pack "$work/pack" || exit 1
    # A fresh directory holding only what travels: the work tree's scripts and sources, and the pack.
    mkdir -p "$work/fresh"
    (cd "$root" && git ls-files -co --exclude-standard -z | grep -zv '^target/' | xargs -0 cp --parents -t "$work/fresh") || exit 1
    mv "$work/pack" "$work/fresh/.devpack"
    DRY=1 OUT=${OUT:-$work/out} JRE_DIR="$work/jre" bash "$work/fresh/native-build/gpu-check.sh" run "$work/fresh/.devpack"
    rc=$?
    [ -n "${KEEP_OUT:-}" ] && cp -r "${OUT:-$work/out}" "$KEEP_OUT"
    exit $rc ;;
  *) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 2 ;;
esac
