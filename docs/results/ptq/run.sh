#!/usr/bin/env bash
# The headline rows of docs/QUANTIZATION.md section 12, on the bundled model.
set -euo pipefail
S="$(cd "$(dirname "$0")/../../.." && pwd)/bin/silhouette"
cd "$(mktemp -d)"   # stats.json and q.json are scratch files
$S calibrate --out stats.json >/dev/null 2>&1
row() { name=$1; shift; $S quantize --stats stats.json "$@" --out q.json >/dev/null 2>&1; acc=$($S eval --quantized q.json --backend cpu --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(d.get('accuracy'))"); echo "$name|$acc"; }
echo "FP32|$($S eval --backend cpu --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin).get('accuracy'))")"
row "W8A8 per-tensor first/last 8b" --weight-bits 8 --activation-bits 8
row "W4A4 naive every layer 4 bits" --weight-bits 4 --activation-bits 4 --first-last-bits 0
row "W4A4 naive first/last 8b" --weight-bits 4 --activation-bits 4
row "W4A4 per-tensor ACIQ-A(laplace) bias-corrected first/last 8b" --weight-bits 4 --activation-bits 4 --aciq laplace --bias-correction
row "W4A4 per-channel ACIQ-A(laplace) bias-corrected first/last 8b" --weight-bits 4 --activation-bits 4 --per-channel --aciq laplace --bias-correction
row "W4A4 per-channel ACIQ-A(laplace) bias-corrected channel-bits activation-channel-bits first/last 8b" --weight-bits 4 --activation-bits 4 --per-channel --aciq laplace --bias-correction --channel-bits --activation-channel-bits
row "W3A3 per-channel ACIQ-A(laplace) bias-corrected channel-bits first/last 8b" --weight-bits 3 --activation-bits 3 --per-channel --aciq laplace --bias-correction --channel-bits
