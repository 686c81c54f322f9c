#!/usr/bin/env bash
# Issue 19's fine-tuned study on cluttered Fashion-MNIST (seed-0 folder, 60x60, 4 pieces), from bundled-cluttered.
# One recipe and budget for every family: 1 epoch over the first 20,000 training images, batch 128, SGD Nesterov 0.9,
# cosine learning rate, weight decay 5e-4, crop-and-flip augmentation, clip levels learned (PACT), silhouette weight 10.
# The learning rate of each family is chosen on a validation split (the last 5,000 training images, never trained on),
# among 0.003, 0.01 and 0.03, with seed 0; the final runs (seeds 0, 1, 2) report the test split.
# Usage: study.sh SIL_LAUNCHER FAMILY...   (FAMILY: region uniform drq)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sil=$1; shift
runs=$here/runs
budget=(--model bundled-cluttered --data "$here/cluttered60" --epochs 1 --limit 20000 --batch 128 --threads 2 --quiet)
finetune() { # name, then finetune options
  local name=$1; shift
  [ -s "$runs/$name.safetensors" ] && return 0
  echo "== $name: finetune $*" >> "$runs/$name.log"
  { /usr/bin/time -v nice -n 10 "$sil" finetune "${budget[@]}" "$@" --out "$runs/$name.safetensors"; } >> "$runs/$name.log" 2>&1
}
accuracy() { sed -n 's/.*accuracy in the loop [0-9.]*% -> \([0-9.]*\)%.*/\1/p' "$runs/$1.log" | tail -1; }
choose_lr() { # family prefix, then the options of its selection config
  local prefix=$1; shift; local best="" bestacc=-1
  for lr in 0.003 0.01 0.03; do
    finetune "val-$prefix-lr$lr" --validation 5000 --lr "$lr" --seed 0 "$@"
    local a; a=$(accuracy "val-$prefix-lr$lr")
    if [ -n "$a" ] && awk -v a="$a" -v b="$bestacc" 'BEGIN{exit !(a>b)}'; then best=$lr; bestacc=$a; fi
  done
  echo "$best"
}
for family in "$@"; do
  case $family in
    region)
      lr=$(choose_lr region --policy 2:50,3:30,4:20); echo "region lr $lr" >> "$runs/choices.txt"
      for seed in 0 1 2; do
        for p in 1:60,2:20,4:20 1:50,2:30,4:20 1:85,4:15 2:85,4:15 2:70,4:30 2:50,3:30,4:20 2:30,3:40,4:30; do
          finetune "region-${p//[:,]/-}-seed$seed" --policy "$p" --lr "$lr" --seed "$seed"
        done
      done ;;
    uniform)
      lr=$(choose_lr uniform --uniform 2); echo "uniform lr $lr" >> "$runs/choices.txt"
      for seed in 0 1 2; do
        for a in 1 2 3 4; do finetune "uniform-W4A$a-seed$seed" --uniform "$a" --lr "$lr" --seed "$seed"; done
      done ;;
    drq)
      lr=$(choose_lr drq --drq 2,4); echo "drq lr $lr" >> "$runs/choices.txt"
      for seed in 0 1 2; do finetune "drq-4-2-seed$seed" --drq 2,4 --lr "$lr" --seed "$seed"; done ;;
  esac
done
echo "done $*" >> "$runs/choices.txt"
