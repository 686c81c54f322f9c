#!/usr/bin/env bash
# The bundled model's training run (copied jar so rebuilding the worktree cannot disturb it).
cd /tmp/train-run || exit 1
resume=""
[ -f fmnist.ckpt.safetensors ] && resume="--resume"
exec nice -n 10 /usr/lib/jvm/temurin-25-jdk-amd64/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xms6g -Xmx6g \
  -cp "silhouette.jar:lib/*" dev.silhouette.cli.Main train --model fmnist-resnet --data /usr/share/datasets/fashion-mnist \
  --epochs 15 --batch 128 --optimizer sgd --lr 0.1 --seed 0 --checkpoint fmnist.ckpt.safetensors $resume \
  --out fmnist-resnet.safetensors
