"""The peer of `unclip bench`: diffusers' UnCLIPPipeline on the same checkpoint, same prompt, seed and
steps, on the CPU with 2 threads. Prints one JSON line: per-stage milliseconds (model calls plus
scheduler steps), the total, and the peak resident memory.

    python bench/diffusers_bench.py DIFFUSERS_DIR --steps 25,25,7 --runs 3 --prompt horse --seed 0
"""
import argparse
import json
import os
import resource
import sys
import time
import warnings

import numpy as np
import torch

# model_index.json names a class diffusers no longer exports: load component by component (docs/math.md §14.15)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "reference"))
from gen_tiny import load_tiny as load  # noqa: E402  (any unCLIP folder, not only the tiny one)

STAGE = {"text_encoder": "text", "prior": "prior", "prior_scheduler": "prior", "text_proj": "decoder", "decoder": "decoder",
         "decoder_scheduler": "decoder", "super_res_first": "super_res", "super_res_last": "super_res", "super_res_scheduler": "super_res"}


def timed(obj, attr, name, acc):
    f = getattr(obj, attr)

    def wrapper(*a, **k):
        t0 = time.perf_counter()
        out = f(*a, **k)
        acc[STAGE[name]] += (time.perf_counter() - t0) * 1000
        return out
    setattr(obj, attr, wrapper)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--steps", default="25,25,7")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompt", default="horse")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-npy", help="save the image (1, H, W, 3) in [0, 1] here, to compare with ours")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    steps = [int(s) for s in args.steps.split(",")]
    pipe = load(args.model)
    pipe.set_progress_bar_config(disable=True)
    acc = {"text": 0.0, "prior": 0.0, "decoder": 0.0, "super_res": 0.0}
    for name in ["text_encoder", "prior", "text_proj", "decoder", "super_res_first", "super_res_last"]:
        timed(getattr(pipe, name), "forward", name, acc)
    for name in ["prior_scheduler", "decoder_scheduler", "super_res_scheduler"]:
        timed(getattr(pipe, name), "step", name, acc)
    runs = []
    with torch.no_grad():
        for _ in range(args.runs + 1):  # the first run warms up
            for k in acc:
                acc[k] = 0.0
            t0 = time.perf_counter()
            image = pipe(args.prompt, generator=torch.Generator().manual_seed(args.seed), prior_num_inference_steps=steps[0],
                 decoder_num_inference_steps=steps[1], super_res_num_inference_steps=steps[2], output_type="np").images
            runs.append(dict(acc, total=(time.perf_counter() - t0) * 1000))
    if args.out_npy:
        np.save(args.out_npy, image.astype(np.float32))
    best = min(runs[1:], key=lambda r: r["total"])
    best["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best["torch"] = torch.__version__
    print(json.dumps(best))


if __name__ == "__main__":
    main()
