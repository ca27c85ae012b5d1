#!/usr/bin/env bash
# The CPU-trained unclip-emoji (preset `cpu`), resumable on any machine: run it again and every component continues
# from its state (train/state/ is restored first where it is further along). Usage:
#   bash train/train_cpu.sh [THREADS] [CYCLES] [PRIOR_MIN DECODER_MIN SUPERRES_MIN]
# Defaults: 1 thread (leaves a core for other work), 1000 cycles (until stopped), 0 / 60 / 0 minutes: decoder-only
# cycles, because the learning curve shows the prior (label top-5 ~100 %) and the x0-predicting super-res (2.8 dB
# above bicubic) on their plateaus while the decoder is far behind; a stage given 0 minutes is skipped, and so is its
# measurement. DECODER_FLAGS (e.g. `--snr-gamma 5` or `--anneal 0.2`: train/README.md's
# pilot) are passed to train_decoder.py; none by default, since the pilot has not yet shown one to win.
#
# The image tower trains first, to a fixed CLIP_STEPS, and is then frozen: the prior and the decoder learn in its
# embedding space, so training it further would throw their training away. Then cycles of prior,
# decoder and super-res, each followed by train/stage_metrics.py (the learning curve in
# train/state/learning-curve.csv) and `train/state.py save` (what a commit carries to the next machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
THREADS=${1:-1}
CYCLES=${2:-1000}
MIN=(${3:-0} ${4:-60} ${5:-0})
read -ra DECODER_FLAGS <<<"${DECODER_FLAGS-}"
CLIP_STEPS=${CLIP_STEPS:-4000}

"$PY" train/state.py restore || true  # the committed state (train/state/) where it is further along
train() {  # component, extra flags...
  local c=$1; shift
  local resume=(); [[ -f train/runs/$c-cpu/state.safetensors ]] && resume=(--resume)
  "$PY" "train/train_$c.py" --preset cpu --threads "$THREADS" --ckpt-every 500 --log-every 50 "${resume[@]}" "$@"
}
train clip --steps "$CLIP_STEPS"
for ((cycle = 1; cycle <= CYCLES; cycle++)); do
  i=0 measured=(chain)
  for c in prior decoder superres; do
    if [[ ${MIN[$i]} != 0 ]]; then
      extra=(); [[ $c == decoder ]] && extra=("${DECODER_FLAGS[@]}")
      train "$c" --steps 10000000 --max-minutes "${MIN[$i]}" "${extra[@]}"
      measured+=("$c")
    fi
    i=$((i + 1))
  done
  "$PY" train/stage_metrics.py --preset cpu --threads "$THREADS" --only "${measured[@]}"
  "$PY" train/state.py save
done
