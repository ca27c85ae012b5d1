"""The committed training state's weight codec: ggml's q8_0 (blocks of 32 values, one f16 scale = max|x|/127 and
32 int8s: 8.5 bits a weight), about half of bf16. state.py writes it, trainer.py reads it back to f32. Whether a
resume from it loses anything is measured, not assumed: `python train/q8.py pilot RUN` (train/README.md).
"""
import ast
import json
import os
import shutil
import subprocess
import sys

import torch

BLOCK = 32
MIN_ELEMENTS = 256  # smaller tensors (norms, biases) stay bf16: too few bytes to matter
SCALE = ".q8_scale"


def encode(x):
    """x (any shape, float) -> (int8 (blocks, 32), f16 scales (blocks,))."""
    flat = x.detach().float().flatten()
    flat = torch.nn.functional.pad(flat, (0, -len(flat) % BLOCK)).view(-1, BLOCK)
    scale = (flat.abs().amax(dim=1) / 127).to(torch.float16)
    d = scale.float()[:, None]
    q = torch.where(d > 0, torch.round(flat / torch.where(d > 0, d, 1)), 0).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale.contiguous()


def decode(q, scale, shape):
    """The f32 tensor of `shape` that encode() stored as (q, scale)."""
    n = 1
    for s in shape:
        n *= s
    return (q.float() * scale.float()[:, None]).flatten()[:n].view(shape)


def quantize(tensors):
    """{key: tensor} -> ({key: int8 blocks, key + SCALE: scales, small ones bf16}, {quantized key: shape})."""
    out, shapes = {}, {}
    for k, t in tensors.items():
        if t.is_floating_point() and t.numel() >= MIN_ELEMENTS:
            out[k], out[k + SCALE] = encode(t)
            shapes[k] = list(t.shape)
        elif t.is_floating_point():
            out[k] = t.to(torch.bfloat16).contiguous()
        else:
            out[k] = t.contiguous()
    return out, shapes


def dequantize(tensors, shapes):
    """quantize()'s output back to {key: f32 tensor} (the others as stored)."""
    out = {k: t for k, t in tensors.items() if not k.endswith(SCALE)}
    for k, shape in shapes.items():
        out[k] = decode(tensors[k], tensors[k + SCALE], shape)
    return out


def pilot(run):
    """The component's validation loss (its trainer's `evaluate`, on the EMA weights) from the full state of
    train/runs/RUN, from its bf16 compact form and from its q8_0 compact form: the codec is kept only if q8_0 loses
    no more than bf16 does."""
    import state  # noqa: E402 (state imports trainer, which this module must not need)
    from trainer import RUNS
    script = {"decoder": "train_decoder.py", "prior": "train_prior.py", "superres": "train_superres.py"}[run.split("-")[0]]
    preset = run.split("-")[1]
    results = {}
    for codec in ["full", "bf16", "q8"]:
        name = f"pilot-codec-{codec}-{run}"
        os.makedirs(os.path.join(RUNS, name), exist_ok=True)
        dst = os.path.join(RUNS, name, "state.safetensors")
        src = os.path.join(RUNS, run, "state.safetensors")
        if codec == "full":
            subprocess.run(["cp", src, dst], check=True)
        else:
            state.compact(src, dst, run, codec=codec)
        out = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), script), "--preset", preset,
                              "--run", name, "--resume", "--eval-only", "--threads", "1"],
                             capture_output=True, text=True, check=True).stdout
        row = [line for line in out.splitlines() if line.startswith("eval ")][-1]
        results[codec] = ast.literal_eval(row[len("eval "):])
        results[codec]["MiB"] = round(os.path.getsize(dst) / 2**20, 2)
        shutil.rmtree(os.path.join(RUNS, name))  # a pilot's copies are not runs to resume or save
    print(json.dumps({"run": run, **results}))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "pilot":
        raise SystemExit("usage: python train/q8.py pilot RUN")
    pilot(sys.argv[2])
