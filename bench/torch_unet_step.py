"""PyTorch's side of `unclip bench --unet-step DIR`: the same decoder UNet call on the same inputs, timed.

DIR is what bench/onnx/export_unet.py wrote (unet/ as a diffusers folder, inputs.bin + inputs.json). Runs on CUDA
when there is a GPU, else on the CPU with --threads threads; counts the call's FLOPs with torch's FlopCounterMode
(2 per multiply-add, convolutions and matmuls) and measures the device's f32 peak as the best of a few large
matmuls (TF32 off), so achieved FLOP/s can be read against it. Prints one JSON object on stdout.

    .venv/bin/python bench/torch_unet_step.py target/unet-step/full [--runs 5] [--threads 2]
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode


def load_inputs(folder):
    layout = json.loads((folder / "inputs.json").read_text())
    blob = (folder / "inputs.bin").read_bytes()
    arrays = {t["name"]: np.frombuffer(blob, np.float32, t["bytes"] // 4, t["offset"]).reshape(t["shape"])
              for t in layout["tensors"]}
    return layout, arrays


def timed(fn, sync, runs):
    fn()  # warm-up (allocations, kernel selection)
    sync()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        ms.append((time.perf_counter() - t0) * 1000)
    return ms


def peak_flops(device, sync):
    """Best f32 matmul rate over a few sizes: what this device's GEMMs reach when nothing else limits them."""
    best = 0.0
    for n in ([4096, 8192] if device.type == "cuda" else [1024, 2048, 3072]):
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        ms = timed(lambda: a @ b, sync, 5)
        best = max(best, 2 * n**3 / (min(ms) / 1000))
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir", type=Path)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    layout, x = load_inputs(a.dir)
    unet = UNet2DConditionModel.from_pretrained(a.dir / "unet").to(device).eval()
    t = {k: torch.from_numpy(v.copy()).to(device) for k, v in x.items()}
    timestep = torch.tensor(layout["timestep"], device=device)

    def call():
        return unet(t["sample"], timestep, encoder_hidden_states=t["encoder_hidden_states"],
                    class_labels=t["class_labels"], attention_mask=t["attention_mask"], return_dict=False)[0]

    with torch.no_grad():
        out = call()
        counter = FlopCounterMode(display=False)
        with counter:
            call()
        ms = timed(call, sync, a.runs)
        peak = peak_flops(device, sync)
    print(json.dumps({
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {a.threads} threads",
        "torch": torch.__version__,
        "ms": ms,
        "flops": counter.get_total_flops(),
        "peak_flops": peak,
        "max_diff_expected": float((out.float().cpu() - t["expected"].cpu()).abs().max()),
    }))


if __name__ == "__main__":
    main()
