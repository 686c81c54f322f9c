#!/usr/bin/env bash
# The cluttered model's runs (a copied jar in rt/, so rebuilding the repository cannot disturb them): the data, 10 epochs
# from scratch (resumes from its checkpoint), then the silhouette branch alone on the quantized model, as for the bundled model.
set -euo pipefail
cd "${1:-/work/cluttered}"
java=(nice -n 10 /usr/lib/jvm/temurin-25-jdk-amd64/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED
  --sun-misc-unsafe-memory-access=allow -XX:+UseParallelGC -Xms6g -Xmx6g -cp "rt/silhouette.jar:rt/lib/*" dev.silhouette.cli.Main)
[ -d cluttered60 ] || "${java[@]}" data cluttered --size 60 --pieces 4 --seed 0 --out cluttered60
resume=()
[ -f cluttered.ckpt.safetensors ] && resume=(--resume)
"${java[@]}" train --model cluttered-resnet --data cluttered60 --epochs 10 --batch 128 --optimizer sgd --lr 0.1 --seed 0 \
  --checkpoint cluttered.ckpt.safetensors "${resume[@]}" --out cluttered-resnet.safetensors
"${java[@]}" finetune --model cluttered-resnet.safetensors --data cluttered60 --policy 2:50,3:30,4:20 --epochs 2 --lr 0.01 --seed 0 \
  --branch-only --silhouette-weight 10 --out cluttered-resnet-branch.safetensors
