#!/usr/bin/env bash
# Variants of the branch's loss on one policy (2:70,4:30), same budget and lr as the region family: the importance loss
# off (weight 0: the branch keeps its trained-alone weights) and heavier (30).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
until grep -q "^fashion-done" "$here/runs/choices.txt" 2>/dev/null; do sleep 20; done
budget=(--model bundled-cluttered --data "$here/cluttered60" --epochs 1 --limit 20000 --batch 128 --threads 2 --quiet --lr 0.01)
for sw in 0 30; do
  for seed in 0 1 2; do
    name=branchloss-sw$sw-2-70-4-30-seed$seed
    [ -s "$here/runs/$name.safetensors" ] && continue
    echo "== $name" >> "$here/runs/$name.log"
    nice -n 10 "$here/sil.sh" finetune "${budget[@]}" --policy 2:70,4:30 --silhouette-weight $sw --seed $seed --out "$here/runs/$name.safetensors" >> "$here/runs/$name.log" 2>&1
  done
done
echo extra-done >> "$here/runs/choices.txt"
