#!/usr/bin/env bash
# Correctness on a machine with a GPU, in one call: the TestNG gpu group (bit-exact conformance of every
# kernel against the CPU reference), then one pass of the low-bit kernels' conformance tests under
# compute-sanitizer memcheck and racecheck. Logs go to RESULTS_DIR (default target/gpu-check).
# Never run yet: it was written in a session without a GPU.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
results=${1:-target/gpu-check}
mkdir -p "$results"
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
mvn -B verify -Dgroups=gpu 2>&1 | tee "$results/gpu-group.log"
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ ! -x "$sanitizer" ]; then
  echo "silhouette: compute-sanitizer not found: memcheck and racecheck not run" | tee "$results/sanitizer.log"
  exit 0
fi
tests='RegionMaskKernelTest,QuantizePackKernelTest,PackedConvKernelTest,BinaryConvKernelTest,SilhouetteThresholdKernelTest,RegionOpsGpuTest'
for tool in memcheck racecheck; do
  # Surefire forks the test JVM; --target-processes all follows it.
  "$sanitizer" --tool "$tool" --target-processes all --error-exitcode 99 \
    mvn -B verify -Dgroups=gpu -Dtest="$tests" -Dsurefire.failIfNoSpecifiedTests=false 2>&1 | tee "$results/$tool.log"
done
