#!/usr/bin/env bash
# Compiles native-build/cpu/*.c into libsilhouette_cpu.so, the packed path's x86 integer kernels
# (AVX-512 VNNI and AVX2 variants, chosen at run time). Called by Maven in generate-resources with the
# output folder. Without gcc, or off x86-64, it says so in one line and succeeds: the Java kernels run.
set -euo pipefail
out=${1:?usage: build-cpu-kernels.sh OUTDIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cc=${CC:-$(command -v gcc || true)}
if [ -z "$cc" ] || [ "$(uname -m)" != x86_64 ]; then
  echo "silhouette: gcc on x86-64 not found, native CPU kernels not built (the Java kernels run)"
  exit 0
fi
lib="$out/libsilhouette_cpu.so"
mkdir -p "$out"
if [ -f "$lib" ] && [ -z "$(find "$root/native-build/cpu" "${BASH_SOURCE[0]}" -newer "$lib" -type f | head -1)" ]; then
  exit 0
fi
# No -ffast-math: NaN and rounding must behave as in Java. -march stays generic; the kernels carry their own targets.
"$cc" -O3 -std=c11 -ffp-contract=off -Wall -Wextra -Werror -fPIC -shared -o "$lib.tmp" "$root"/native-build/cpu/*.c -lm
mv "$lib.tmp" "$lib"
echo "silhouette: built $(basename "$lib") ($("$cc" --version | head -1))"
