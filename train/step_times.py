"""Seconds per optimiser step of a run, from its log.csv windows (train/README.md's speed figures): the 10th, 25th,
50th and 90th percentiles, and the share of windows slower than a threshold (contention with other work).

    python train/step_times.py RUN [--since STEP] [--slow SECONDS]
"""
import argparse
import csv
import os

import numpy as np

from trainer import RUNS


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--since", type=int, default=0, help="only windows ending after this step")
    p.add_argument("--slow", type=float, default=0.45, help="seconds per step that count as slowed")
    a = p.parse_args()
    rows = [r for r in csv.DictReader(open(os.path.join(RUNS, a.run, "log.csv"))) if int(r["step"]) > a.since]
    if not rows:
        raise SystemExit(f"train/runs/{a.run}/log.csv has no windows after step {a.since}")
    s = np.array([float(r["s_per_step"]) for r in rows])
    q = dict(zip((10, 25, 50, 90), np.quantile(s, [0.1, 0.25, 0.5, 0.9])))
    print(f"{a.run}: {len(s)} windows, steps {rows[0]['step']}-{rows[-1]['step']}; s/step "
          + ", ".join(f"p{k} {v:.3f}" for k, v in q.items()) + f"; {np.mean(s > a.slow):.0%} of windows above {a.slow} s")


if __name__ == "__main__":
    main()
