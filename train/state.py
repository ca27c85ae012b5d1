"""Moves a run's resumable state between train/runs/<run>/ (git-ignored, where the scripts train) and
train/state/<run>/ (committed, so that any fresh machine resumes where the last one stopped).

    python train/state.py save [RUN ...]      # runs -> state (default: every run with a state, but smoke-/pilot-/archive- ones)
    python train/state.py restore [RUN ...]   # state -> runs, where the committed state has seen more samples

What travels: state.safetensors, log.csv and eval.csv (the learning curve). The committed state.safetensors is
compact, because every commit's bytes count against the project's size budget: the EMA weights alone, in q8_0
blocks (q8.py; the image tower's in f32: the prior and the decoder are trained on its exact embeddings), with step,
time, samples and RNG as metadata; no raw weights, no AdamW moments. A resume from it (trainer.py `load`) starts the
weights from the EMA and a fresh AdamW with a new warm-up — a decoder state is ~4 MiB instead of 35 (7 in bf16). train/runs/ keeps the full
state. The ema/ folders export.py reads are rebuilt by the first checkpoint after a resume (`--max-minutes 0`
writes one at once).
"""
import json
import os
import shutil
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

import q8
from trainer import RUNS, prediction_type, read_state

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
    if cmd not in ("save", "restore"):
        raise SystemExit("usage: python train/state.py save|restore [RUN ...]")
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
