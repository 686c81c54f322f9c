#!/usr/bin/env bash
# The Docker image's build steps, as a script so CI runs them too (no Docker engine runs on CI):
# build the kernels and the jar, then check that the launcher starts and that kernels were built
# wherever nvcc exists.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q -DskipTests package
if command -v nvcc >/dev/null 2>&1 || [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
  # unzip lists only the named entry and fails when it is absent (no grep -q: under pipefail its early
  # exit would fail the pipeline with SIGPIPE on a long listing).
  unzip -l target/silhouette.jar 'dev/silhouette/kernels/silhouette.fatbin' > /dev/null \
    || { echo "image-build: nvcc is present but the jar holds no kernels" >&2; exit 1; }
fi
bin/silhouette --version
bin/silhouette inspect --model resnet18 --json > /dev/null
echo "image-build: jar, kernels and launcher ready"
