#!/usr/bin/env bash
# Smoke test of the training side: one step of every training script on a few images
# (tiny preset, CPU), a resume from state.safetensors and from a state linked to the converted model, the stage metrics, an export and a reference generation through diffusers' UnCLIPPipeline.
# Needs the venv of train/requirements.txt; builds the dataset and text cache first if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1

[ -f train/data/emoji64.npz ] || "$PY" train/build_dataset.py
[ -f train/data/text_cache/mask.npy ] || "$PY" train/text_encoder.py

rm -rf train/runs/smoke-*
common=(--preset tiny --device cpu --steps 1 --batch 4 --limit-images 16 --ckpt-every 1 --log-every 1)
"$PY" train/train_clip.py "${common[@]}" --run smoke-clip
"$PY" train/train_clip.py "${common[@]}" --run smoke-clip --steps 2 --resume
"$PY" train/train_prior.py "${common[@]}" --run smoke-prior --clip-run smoke-clip
"$PY" train/train_decoder.py "${common[@]}" --run smoke-decoder --clip-run smoke-clip
"$PY" train/train_superres.py "${common[@]}" --run smoke-superres
# --anneal 1: the learning rate falls by a cosine over the whole run (after a one-step warm-up): 1, 0.85, 0.5, 0.15
"$PY" train/train_decoder.py "${common[@]}" --run smoke-anneal --clip-run smoke-clip --steps 4 --warmup 1 --anneal 1
"$PY" - <<'PY'
import csv
lr = [float(r["lr"]) for r in csv.DictReader(open("train/runs/smoke-anneal/log.csv"))]
assert len(lr) == 4 and all(a > b for a, b in zip(lr, lr[1:])) and lr[-1] < 0.2 * lr[0], lr
PY
# --more-art (train/more_art.py's extra styles): they follow emoji64.npz's images, whose indices, held-out set,
# validation sample and captions stay as they were; the new vendors' images draw plain captions only
[ -f train/data/emoji64-more.npz ] || "$PY" train/more_art.py
"$PY" train/train_decoder.py "${common[@]}" --run smoke-more --clip-run smoke-clip --more-art
"$PY" - <<'PY'
import sys
sys.path.insert(0, "train")
import numpy as np
from data import EmojiData
base, more = EmojiData("cpu"), EmojiData("cpu", more_art=True)
n = len(base.concept)
assert len(more.concept) > n and more.base_count == n
for k in ("concept", "vendor", "heldout"):
    assert np.array_equal(getattr(more, k)[:n], getattr(base, k)), k
assert bool((more.images64[:n] == base.images64).all()) and more.heldout[n:].any() and not more.heldout[n:].all()
assert np.array_equal(more.validation_indices(), base.validation_indices())
new = np.flatnonzero(more.vendor >= 4)[:500]
styled = {i for per in more.space.styled for ids in per.values() for i in ids}
assert not styled & set(more.space.sample(more.concept[new], more.vendor[new], np.random.default_rng(0)).tolist())
PY
# torchrun (trainer.py): two CPU processes on halves of each batch compute what one process does. AdamW divides by
# each gradient's running RMS, so where a gradient is near zero a rounding difference of the reduction moves a weight
# by up to the learning rate (measured 3.4e-4 at lr 1e-3): the steps stay in the warm-up (lr 5e-6 to 1.5e-5) and the
# EMA weights must agree to 1e-4 (measured 4.9e-6), the logged losses to 4 decimals
ddp=(--preset tiny --device cpu --steps 3 --batch 4 --limit-images 16 --ckpt-every 3 --log-every 1 --bf16 off
     --threads 1 --clip-run smoke-clip)
"$PY" train/train_decoder.py "${ddp[@]}" --run smoke-ddp1
"$PY" -m torch.distributed.run --standalone --nproc_per_node 2 train/train_decoder.py "${ddp[@]}" --run-name smoke-ddp2
"$PY" - <<'PY'
import csv
from safetensors import safe_open
one, two = (safe_open(f"train/runs/smoke-ddp{n}/state.safetensors", "pt") for n in (1, 2))
diff = max(float((one.get_tensor(k) - two.get_tensor(k)).abs().max()) for k in one.keys() if k.startswith("ema."))
logs = [[r["loss"] for r in csv.DictReader(open(f"train/runs/smoke-ddp{n}/log.csv"))] for n in (1, 2)]
assert diff < 1e-4 and [round(float(x), 4) for x in logs[0]] == [round(float(x), 4) for x in logs[1]], (diff, logs)
print(f"torchrun: 2 processes = 1 process to {diff:.2g} in the EMA weights; losses {logs[0]}")
PY
"$PY" train/export.py --preset tiny --out train/runs/smoke-export --clip-run smoke-clip --prior-run smoke-prior \
    --decoder-run smoke-decoder --superres-run smoke-superres
"$PY" train/stage_metrics.py --preset tiny --images 4 --decoder-images 4 --prompts 3 --clip-run smoke-clip --prior-run smoke-prior \
    --decoder-run smoke-decoder --superres-run smoke-superres --curve train/runs/smoke-curve.csv
"$PY" train/generate_reference.py train/runs/smoke-export --prompt "a happy dog" --seed 0 --steps 2 2 2
# a state linked to the converted model (state.py link: no weights of its own) resumes from the model's GGUF files
cargo run --locked --release --quiet --bin unclip -- convert train/runs/smoke-export train/runs/smoke-model --dtype q8_0 >/dev/null
"$PY" -c 'import sys; sys.path.insert(0, "train"); import state; state.STATE = "train/runs/smoke-state"
state.link("train/runs/smoke-model", "smoke-decoder")'
mkdir -p train/runs/smoke-linked && cp train/runs/smoke-state/smoke-decoder/state.safetensors train/runs/smoke-linked/
"$PY" train/train_decoder.py "${common[@]}" --run smoke-linked --clip-run smoke-clip --resume --eval-only | grep -q "^eval "
# and a new run starts from its weights (--init: how superres16-cpu starts from the shipped superres-cpu)
"$PY" train/train_decoder.py "${common[@]}" --run smoke-init --clip-run smoke-clip --init smoke-linked | grep "^initialised "
test "$(tail -n +2 train/runs/smoke-clip/log.csv | wc -l)" -eq 2
test -f train/runs/smoke-export/reference_seed0_2-2-2.safetensors
head -1 train/runs/smoke-curve.csv | grep -q chain_top5  # every stage was measured
# the GPU run (train/gpu/README.md), rehearsed on this CPU with a 60-second deadline
bash train/gpu/rehearse.sh 60
echo "smoke test passed"
