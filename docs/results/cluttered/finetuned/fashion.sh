#!/usr/bin/env bash
# The Fashion-MNIST uniform baselines fine-tuned for themselves, seed 0, with the recipe of docs/results/studies.md
# (2 epochs over the training split, lr 0.003 chosen there on a validation split), bundled for the main job's headline.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
until grep -q "^done" "$here/runs/choices.txt" 2>/dev/null; do sleep 20; done
for a in 3 2; do
  name=fashion-uniform-W4A$a-seed0
  [ -s "$here/runs/$name.safetensors" ] && continue
  echo "== $name" >> "$here/runs/$name.log"
  nice -n 10 "$here/sil.sh" finetune --model bundled --uniform $a --lr 0.003 --epochs 2 --seed 0 --threads 2 --quiet --out "$here/runs/$name.safetensors" >> "$here/runs/$name.log" 2>&1
done
echo fashion-done >> "$here/runs/choices.txt"
