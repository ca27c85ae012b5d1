#!/usr/bin/env bash
# The CPU-trained unclip-emoji (preset `cpu`): every component in turn under a wall-clock budget, resumable --
# run it again and each component continues from its checkpoint. Usage:
#   bash train/train_cpu.sh [THREADS] [CLIP_MIN PRIOR_MIN DECODER_MIN SUPERRES_MIN]
# Defaults: 1 thread (leaves a core for other work), 15 / 12 / 70 / 30 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
THREADS=${1:-1}
MIN=(${2:-15} ${3:-12} ${4:-70} ${5:-30})
i=0
for c in clip prior decoder superres; do
  resume=(); [[ -f train/runs/$c-cpu/checkpoint.pt ]] && resume=(--resume)
  "$PY" "train/train_$c.py" --preset cpu --steps 1000000 --threads "$THREADS" --max-minutes "${MIN[$i]}" \
    --ckpt-every 500 --log-every 50 "${resume[@]}"
  i=$((i + 1))
done
