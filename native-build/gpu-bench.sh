#!/usr/bin/env bash
# The whole low-bit kernel benchmark in one call on a machine with a GPU (docs/KERNELS.md, "Benchmarks"):
# the packed and binary kernels against cuDNN FP32 (LowBitBenchmark, through Silhouette's own cuDNN
# binding), then cuDNN FP32/FP16 and an INT8 GEMM through PyTorch on the same device when PyTorch with
# CUDA is installed. Results, named after the device, go to RESULTS_DIR (default docs/results).
# Never run yet: it was written in a session without a GPU.
#   native-build/gpu-bench.sh [RESULTS_DIR] [LowBitBenchmark options: --batches 1,32,128 --runs 50 --warmup 10 --network resnet18]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
results=${1:-docs/results}
[ $# -gt 0 ] && shift
mkdir -p "$results"
java_cmd=${JAVA_HOME:+$JAVA_HOME/bin/}java
if ! "$java_cmd" -version 2>&1 | grep -qE 'version "(2[5-9]|[3-9][0-9])'; then
  for candidate in /usr/lib/jvm/temurin-25-jdk-amd64/bin/java /usr/lib/jvm/*25*/bin/java; do
    if [ -x "$candidate" ]; then java_cmd=$candidate; break; fi
  done
fi
if [ ! -f target/silhouette.jar ]; then
  echo "silhouette: building the jar and the kernels (mvn package)"
  JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$java_cmd")")") mvn -B -q package -DskipTests
fi
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader > "$results/gpu-bench-device.txt" 2>&1 || true
"$java_cmd" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
  -cp "target/silhouette.jar:target/lib/*" dev.silhouette.backend.cuda.LowBitBenchmark --out "$results" "$@"
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  python3 tests/peers/pytorch/bench_cudnn.py --out "$results"
else
  echo "silhouette: PyTorch with CUDA not found: the cuDNN FP16 and INT8 columns were not measured"
fi
