#!/usr/bin/env bash
# Compiles every cuda/*.cu into one fatbin: SASS for sm_80, sm_86, sm_89, sm_90 and PTX for
# compute_90 (JIT-compiled by the driver on newer GPUs). Called by Maven in generate-resources with the
# output folder. Without nvcc it says so in one line and succeeds; with nvcc, any compile error fails.
set -euo pipefail
out=${1:?usage: build-kernels.sh OUTDIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nvcc=$(command -v nvcc || true)
for candidate in "${CUDA_HOME:-}/bin/nvcc" /usr/local/cuda/bin/nvcc; do
  [ -z "$nvcc" ] && [ -x "$candidate" ] && nvcc=$candidate
done
if [ -z "$nvcc" ]; then
  echo "silhouette: nvcc not found, CUDA kernels not built (the CPU backend still works)"
  exit 0
fi
shopt -s nullglob
sources=("$root"/cuda/*.cu)
[ ${#sources[@]} -gt 0 ] || { echo "silhouette: no kernels in cuda/"; exit 0; }
fatbin="$out/silhouette.fatbin"
mkdir -p "$out"
source_list=$(cd "$root" && printf '%s\n' cuda/*.cu | paste -sd,)
# Incremental: skip when the fatbin is newer than every kernel file and this script, and was built from
# the same list of sources (a deleted .cu must not leave its kernels behind).
if [ -f "$fatbin" ] && [ -z "$(find "$root/cuda" "${BASH_SOURCE[0]}" -newer "$fatbin" -type f | head -1)" ] \
    && grep -qxF "sources=$source_list" "$out/kernels.properties" 2>/dev/null; then
  exit 0
fi
# One translation unit including every kernel file gives one fatbin (kernels are extern "C", no clashes).
unit=$(mktemp --suffix=.cu)
trap 'rm -f "$unit" "$fatbin.tmp" "$out/kernels.properties.tmp"' EXIT
for s in "${sources[@]}"; do echo "#include \"$s\""; done > "$unit"
archs=(80 86 89 90)
gencode=()
for a in "${archs[@]}"; do gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done
gencode+=(-gencode "arch=compute_90,code=compute_90")
start=$(date +%s)
"$nvcc" -fatbin -O3 -lineinfo -std=c++17 -Werror all-warnings -I "$root/cuda" "${gencode[@]}" -o "$fatbin.tmp" "$unit"
mv "$fatbin.tmp" "$fatbin"
version=$("$nvcc" --version | tail -1)
# Diagnostics for a failed cuModuleLoadData or cuModuleGetFunction: what was built, by what, for what.
entries=$(perl -0777 -ne 'print "$1\n" while /extern\s+"C"\s+__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(/g' \
  "${sources[@]}" | sort | paste -sd,)
{
  echo "nvcc=$version"
  echo "archs=$(printf 'sm_%s,' "${archs[@]}")compute_90"
  echo "sources=$source_list"
  echo "entries=$entries"
} > "$out/kernels.properties.tmp"
mv "$out/kernels.properties.tmp" "$out/kernels.properties"
echo "silhouette: built ${#sources[@]} kernel file(s) into $(basename "$fatbin") in $(( $(date +%s) - start )) s ($version)"
