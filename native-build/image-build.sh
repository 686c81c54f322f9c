#!/usr/bin/env bash
# The Docker image's build steps, as a script so CI runs them too (no Docker engine runs on CI): build the
# kernels and the jar, link the runtime stage's Java (only the modules the jar and its libraries use), then
# check that kernels were built wherever nvcc exists and that the launcher runs on that Java: a command, and
# the server up to the ready endpoint the image's HEALTHCHECK probes.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q -DskipTests package
if command -v nvcc >/dev/null 2>&1 || [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
  # unzip lists only the named entry and fails when it is absent (no grep -q: under pipefail its early
  # exit would fail the pipeline with SIGPIPE on a long listing).
  unzip -l target/silhouette.jar 'dev/silhouette/kernels/silhouette.fatbin' > /dev/null \
    || { echo "image-build: nvcc is present but the jar holds no kernels" >&2; exit 1; }
fi
java_home=${JAVA_HOME:?image-build: JAVA_HOME must name a JDK 25}
modules=$("$java_home/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps --class-path 'target/lib/*' target/silhouette.jar)
rm -rf target/jre
"$java_home/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files --compress zip-6 --output target/jre 2>/dev/null
echo "image-build: target/jre links $modules"
export JAVA_HOME="$PWD/target/jre"
bin/silhouette --version
bin/silhouette inspect --model resnet18 --json > /dev/null

# The server on free ports (it prints them), polled as the HEALTHCHECK polls it, then stopped by SIGTERM.
log=$(mktemp)
bin/silhouette serve --http-port 0 --grpc-port 0 --metrics-port 0 --quiet > "$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
ready=""
for _ in $(seq 1 120); do
  port=$(sed -n 's/^listening: REST on \([0-9]*\),.*/\1/p' "$log")
  if [ -n "$port" ] && curl -fs -o /dev/null "http://127.0.0.1:$port/v2/health/ready"; then ready=$port; break; fi
  kill -0 "$server" 2>/dev/null || break
  sleep 1
done
if [ -z "$ready" ]; then
  echo "image-build: the server on target/jre did not turn ready:" >&2
  cat "$log" >&2
  exit 1
fi
kill -TERM "$server"
wait "$server" || true
echo "image-build: jar, kernels, target/jre and launcher ready (serve answered /v2/health/ready on $ready)"
