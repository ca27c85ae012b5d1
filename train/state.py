"""Moves a run's resumable state between train/runs/<run>/ (git-ignored, where the scripts train) and
train/state/<run>/ (committed, so that any fresh machine resumes where the last one stopped).

    python train/state.py save [RUN ...]      # runs -> state (default: every run with a state, but smoke-/pilot-/archive- ones)
    python train/state.py restore [RUN ...]   # state -> runs, where the committed state has seen more samples
    python train/state.py link MODEL_DIR RUN ...  # runs -> state, the weights being those of MODEL_DIR

What travels: state.safetensors, log.csv and eval.csv (the learning curve). The committed state.safetensors is
compact, because every commit's bytes count against the project's size budget: the EMA weights alone, in q8_0
blocks (q8.py; the image tower's in f32: the prior and the decoder are trained on its exact embeddings), with step,
time, samples and RNG as metadata; no raw weights, no AdamW moments. A resume from it (trainer.py `load`) starts the
weights from the EMA and a fresh AdamW with a new warm-up — a decoder state is ~4 MiB instead of 35 (7 in bf16). train/runs/ keeps the full
state. The ema/ folders export.py reads are rebuilt by the first checkpoint after a resume (`--max-minutes 0`
writes one at once).

A shipped model is the same EMA weights in the same q8_0 blocks (`unclip convert --dtype q8_0`), so committing both
would pay for them twice. `link` writes a state that holds no weights, only the metadata, the RNG and the sha256 of
each component file of MODEL_DIR (models/unclip-emoji) it takes them from, after checking that those files are this
run's EMA at this step (every tensor within q8_0's rounding); trainer.py `load` reads them back (gguf_weights.py).
"""
import hashlib
import json
import os
import shutil
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

import gguf_weights
import q8
from trainer import RUNS, prediction_type, read_state

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state")
FILES = ["state.safetensors", "log.csv", "eval.csv"]


def progress(d):
    """(samples, step) of a run's state, (-1, -1) without one: samples keep growing across `--init` restarts."""
    s = read_state(d)
    return (-1, -1) if s is None else (s.get("samples", 0), s["step"])


def compact(src_file, dst_file, run, codec="q8"):
    """The committed form of a state: EMA weights only, in `codec` (q8: q8_0 blocks, q8.py; bf16), except the
    frozen image tower's (`clip-`), which stays f32."""
    with safe_open(src_file, "pt") as f:
        meta = json.loads(f.metadata()["unclip_train"])
        tensors = {k: f.get_tensor(k) for k in f.keys() if k.startswith("ema.") or k == "torch_rng"}
    if run.startswith("clip-"):
        tensors = {k: t.contiguous() for k, t in tensors.items()}
    elif codec == "q8":
        tensors, meta["q8"] = q8.quantize(tensors)
    else:
        tensors = {k: (t.to(torch.bfloat16) if t.is_floating_point() else t).contiguous() for k, t in tensors.items()}
    meta["compact"] = True
    meta.pop("opt_param_groups", None)
    save_file(tensors, dst_file, metadata={"unclip_train": json.dumps(meta)})


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def link(model_dir, run):
    """train/state/RUN as a pointer to model_dir's component files, which must hold this run's EMA weights."""
    src = os.path.join(RUNS, run, "state.safetensors")
    manifest = json.load(open(os.path.join(model_dir, "model.json")))
    with safe_open(src, "pt") as f:
        meta = json.loads(f.metadata()["unclip_train"])
        ema = {k: f.get_tensor(k) for k in f.keys() if k.startswith("ema.")}
        rng = f.get_tensor("torch_rng")
    files = {}
    for component in sorted({k.split(".")[1] for k in ema}):
        entry = manifest.get(component)
        if not isinstance(entry, dict) or "file" not in entry:
            raise SystemExit(f"{model_dir}/model.json has no component `{component}`: is it a model exported from {run}?")
        path = os.path.join(model_dir, entry["file"])
        weights, _ = gguf_weights.read(path)
        for key, want in ((k[len(f"ema.{component}."):], t) for k, t in ema.items() if k.startswith(f"ema.{component}.")):
            got = weights.get(key)
            err = float("inf") if got is None or got.numel() != want.numel() else \
                float((got.reshape(want.shape) - want.float()).abs().max() / (want.float().abs().max() + 1e-12))
            if err > 0.01:  # q8_0 rounds to 1/254 of a block's largest value
                raise SystemExit(f"{path} is not the EMA of train/runs/{run} at step {meta['step']} ({key}: relative "
                                 f"difference {err:.3g}): export and convert this step first (train/README.md)")
        files[component] = {"file": os.path.relpath(path, ROOT), "sha256": sha256(path)}
    meta.pop("opt_param_groups", None)
    meta.pop("q8", None)
    meta.update(compact=True, weights=files)
    os.makedirs(os.path.join(STATE, run), exist_ok=True)
    tmp = os.path.join(STATE, run, "state.safetensors.partial")
    save_file({"torch_rng": rng}, tmp, metadata={"unclip_train": json.dumps(meta)})
    os.replace(tmp, os.path.join(STATE, run, "state.safetensors"))
    for f in FILES[1:]:
        if os.path.exists(os.path.join(RUNS, run, f)):
            shutil.copy2(os.path.join(RUNS, run, f), tmp)
            os.replace(tmp, os.path.join(STATE, run, f))
    print(f"{run}: step {meta['step']}, {meta.get('samples')} samples -> {os.path.join(STATE, run)}, weights from "
          + ", ".join(x["file"] for x in files.values()))


def copy(src, dst, run):
    os.makedirs(os.path.join(dst, run), exist_ok=True)
    for f in FILES:
        if os.path.exists(os.path.join(src, run, f)):
            tmp = os.path.join(dst, run, f + ".partial")  # never a half-written state under the real name
            if f == "state.safetensors" and dst == STATE:
                compact(os.path.join(src, run, f), tmp, run)
            else:
                shutil.copy2(os.path.join(src, run, f), tmp)
            os.replace(tmp, os.path.join(dst, run, f))


def main(cmd, runs):
    if cmd == "link" and len(runs) >= 2:
        for run in runs[1:]:
            link(runs[0], run)
        return
    if cmd not in ("save", "restore"):
        raise SystemExit("usage: python train/state.py save|restore [RUN ...] | link MODEL_DIR RUN ...")
    src, dst = (RUNS, STATE) if cmd == "save" else (STATE, RUNS)
    if not runs and os.path.isdir(src):  # every real run: not the smoke test's or a pilot's
        runs = sorted(r for r in os.listdir(src) if os.path.exists(os.path.join(src, r, "state.safetensors"))
                      and not r.startswith(("smoke-", "pilot-", "archive-")))
    for run in runs:
        have, want = progress(os.path.join(dst, run)), progress(os.path.join(src, run))
        if want[1] < 0:
            raise SystemExit(f"{os.path.join(src, run)} has no state.safetensors")
        if cmd == "save" and have == want:  # e.g. the frozen image tower: a new file would only add bytes to history
            print(f"{run}: the committed state is at the same step: kept it")
            continue
        if cmd == "restore" and have >= want:
            print(f"{run}: train/runs is at {have[0]} samples, the committed state at {want[0]}: kept train/runs")
            continue
        if cmd == "restore" and have[1] >= 0 and prediction_type(os.path.join(dst, run)) != prediction_type(
                os.path.join(src, run)):  # a run restarted with another target (`--init`) is a newer lineage
            print(f"{run}: train/runs predicts {prediction_type(os.path.join(dst, run))}, the committed state "
                  f"{prediction_type(os.path.join(src, run))}: kept train/runs")
            continue
        copy(src, dst, run)
        size = os.path.getsize(os.path.join(dst, run, "state.safetensors")) / 2**20
        print(f"{run}: step {want[1]}, {want[0]} samples -> {os.path.join(dst, run)} ({size:.1f} MiB)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "", sys.argv[2:])
