#!/usr/bin/env bash
# The GPU run rehearsed on this CPU (train/gpu/README.md; train/smoke_test.sh calls it): train/gpu/run.sh with a
# 60-second deadline in a bare copy of what the device tool would send (the tracked train/ and the shipped text
# encoder; no train/data, no train/runs), from the carried payload alone, then the checks that the GPU run's
# output is what the device tool brings back and what this machine resumes from.
# Usage: bash train/gpu/rehearse.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=$PWD/${PY:-.venv/bin/python}
RUN=${RUN:-decoder16-cpu}
payload=train/data/gpu-payload.npz
if [[ ! -f $payload ]]; then
  # a fresh machine has the tower's committed state but not the ema/ folder the payload packs: a resume writes it
  [[ -f train/runs/clip-cpu/ema/image_encoder/model.safetensors ]] || { "$PY" train/state.py restore clip-cpu &&
    "$PY" train/train_clip.py --preset cpu --resume --eval-only --threads 1; }
  "$PY" train/gpu/payload.py build
fi
bare=$(mktemp -d /tmp/unclip-gpu-rehearsal.XXXXXX)
trap 'rm -rf "$bare"' EXIT
[[ -d .whl ]] || bash train/gpu/travel.sh wheels
RUN=$RUN bash train/gpu/travel.sh list | xargs -0 cp --parents -t "$bare"
cp -r --parents -t "$bare" "$payload" .whl
# the one step a GPU does in seconds and this CPU in minutes: every caption through MiniLM (run.sh does it
# when the cache is missing); here the cache is borrowed, and the unpacked MiniLM is checked against it below
mkdir -p "$bare/train/data" && ln -s "$PWD/train/data/text_cache" "$bare/train/data/text_cache"
out=$bare/out
minutes=$("$PY" -c "print(${1:-60} / 60)")
OUT=$out PY=$PY RUN=$RUN INSTALL_WHEELS=1 BATCH=32 SNAPSHOT_MINUTES=0.4 DECODER_IMAGES=16 \
  THREADS=1 nice bash "$bare/train/gpu/run.sh" "$minutes"

cd "$bare"
export UNCLIP_MINILM_DIR=$bare/train/data/minilm HF_HUB_OFFLINE=1
"$PY" - "$out" "$RUN" <<'PY'
import os, sys
import numpy as np
import torch
sys.path.insert(0, "train")
import text_encoder
out, run = sys.argv[1:]
files = [os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs]
assert len(files) <= 8, files  # what the device tool brings back: 8 files, 16 MiB each, 2 folders down
assert all(os.path.getsize(os.path.join(out, f)) <= 16 * 2**20 and f.count("/") <= 2 for f in files), files
assert {f"{run}/state.safetensors", f"{run}/log.csv", "curve.csv", "run.log"} <= set(files), files
log = open(os.path.join(out, "run.log")).read()
assert log.count(f"snapshot at step") >= 2, "fewer than two snapshots in the rehearsal"
# MiniLM rebuilt from the shipped text_encoder.gguf (its matrices f16, its embedding tables q8_0) gives the text
# cache's f32 embeddings within that rounding: measured 0.0054 mean and 0.058 largest difference of hidden states up
# to 6.3, pooled embeddings at a cosine of 0.99955 or more
cache = text_encoder.TextCache()
ids = np.arange(0, len(cache.captions), len(cache.captions) // 64)
pooled, hidden, mask = text_encoder.TextEncoder().encode([cache.captions[i] for i in ids])
want_p, want_h, want_m = cache.get(ids, "cpu")
diff = (hidden - want_h).abs().masked_select(want_m[..., None])
cos = float(torch.nn.functional.cosine_similarity(pooled, want_p).min())
assert torch.equal(mask, want_m) and float(diff.max()) < 0.1 and float(diff.mean()) < 0.01 and cos > 0.999, (diff, cos)
print(f"rehearsal: {len(files)} files back, {log.count('snapshot at step')} snapshots; MiniLM from the GGUF: "
      f"hidden states within {float(diff.mean()):.2g} (mean) / {float(diff.max()):.2g} (max), pooled cosine {cos:.5f}")
PY
# the snapshot is what this machine resumes from (train/state.py restore -> trainer.py load)
cp "$out/$RUN/state.safetensors" "train/runs/$RUN/state.safetensors"
"$PY" train/train_decoder.py --preset cpu --run "$RUN" --size 16 --resume --eval-only --threads 1 | grep "^eval "
echo "GPU rehearsal passed"
