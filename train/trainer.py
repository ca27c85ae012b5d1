"""Shared training harness: command-line flags, device/precision, AdamW + warmup, EMA weights, CSV log,
resumable checkpoints, a wall-clock limit, and data parallelism under torchrun.

Under `torchrun --nproc_per_node N train/train_<c>.py ...` (gloo between CPU processes, NCCL between GPUs) the
N processes are one run: `--batch` stays the global batch; every process draws the same global batch from the
same RNG streams and trains on its own 1/N slice of it (`Run.shard`), the gradients are averaged across processes
before each AdamW step (what DistributedDataParallel does), and process 0 alone logs, evaluates and checkpoints.
So N processes compute what one would, to the rounding of the reductions (train/smoke_test.sh checks it).

A run lives in train/runs/<run>/ (git-ignored, rewritten at every checkpoint):
  state.safetensors    everything needed to resume: weights and AdamW moments (bf16), EMA (f32), step, elapsed time,
                       samples seen, RNG states (metadata); no pickles
  ema/<component>/     EMA weights saved with save_pretrained (config.json + safetensors): what export.py reads
  log.csv, eval.csv    step, wall time, s/step, learning rate, losses; the checkpoint evaluations
`python train/state.py save|restore` copies the resumable part to and from train/state/<run>/ (committed), so a
fresh machine resumes where the last one stopped.
"""
import json
import argparse
import math
import copy
import csv
import hashlib
import os
import shutil
import signal
import time

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import save_file

import gguf_weights
import q8
from diffusion import PREDICTIONS, SAMPLE_SNR_GAMMA

RUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs")


def parser(description, defaults):
    """Common flags; `defaults` gives the component's per-preset batch and learning rate."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--preset", choices=["tiny", "cpu", "full"], default="tiny")
    p.add_argument("--run", "--run-name", dest="run", help="run directory name under train/runs (default "
                   "<component>-<preset>; --run-name under torchrun, whose own flags take --run for their prefix)")
    p.add_argument("--steps", type=int, default=1000, help="total optimiser steps (counted across resumes)")
    p.add_argument("--max-minutes", type=float, help="stop (and checkpoint) after this much wall time")
    p.add_argument("--batch", type=int, help=f"batch size (default {defaults['batch']})")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {defaults['lr']})")
    p.add_argument("--warmup", type=int, default=200, help="linear warm-up steps")
    p.add_argument("--anneal", type=float, default=0.0, metavar="FRACTION",
                   help="cosine-decay the learning rate to zero over the last FRACTION of this invocation (of its "
                   "--steps or its --max-minutes, whichever ends first); 0: constant after the warm-up")
    p.add_argument("--weight-decay", type=float, default=defaults.get("weight_decay", 0.0))
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="bf16 autocast: auto = on CUDA, and on a CPU with native bf16 (AVX512-BF16 or AMX-BF16)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--resume", action="store_true", help="continue from train/runs/<run>/state.safetensors")
    p.add_argument("--init", metavar="RUN", help="start (step 0) from the EMA weights of train/runs/RUN (same "
                   "architecture), e.g. to change the prediction target without throwing the features away")
    p.add_argument("--eval-only", action="store_true", help="evaluate the (resumed) EMA weights once, write no checkpoint "
                   "and exit (train/q8.py's codec pilot)")
    p.add_argument("--snapshot-dir", help="also write the compact state (bf16 EMA, train/state.py) with log.csv and "
                   "eval.csv to DIR/<run>/ at every checkpoint and every --snapshot-minutes (train/gpu/run.sh: a run "
                   "cut off returns its latest weights)")
    p.add_argument("--snapshot-minutes", type=float, default=2.0)
    p.add_argument("--ckpt-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit-images", type=int, help="train on the first N training images only (smoke test)")
    p.set_defaults(_defaults=defaults)
    return p


def add_prediction_args(p, default):
    """--prediction / --snr-gamma of the pixel diffusion models (decoder, super-res): train/diffusion.py."""
    p.add_argument("--prediction", choices=PREDICTIONS, default=default,
                   help=f"what the UNet predicts (UnCLIPScheduler prediction_type; export.py writes it; default {default})")
    p.add_argument("--snr-gamma", type=float, help="Min-SNR-gamma cap of the loss weights (Hang et al. 2023); "
                   f"epsilon: off by default, sample: {SAMPLE_SNR_GAMMA}")


def shipped_weights(w):
    """The weights of a linked state's component file (state.py link), checked against the sha256 it recorded."""
    path = os.path.join(os.path.dirname(os.path.dirname(RUNS)), w["file"])
    if not os.path.exists(path):
        raise SystemExit(f"the training state takes its weights from {w['file']}, which is missing: check it out again")
    found = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if found != w["sha256"]:
        raise SystemExit(f"the training state takes its weights from {w['file']} with sha256 {w['sha256'][:12]}…, "
                         f"found {found[:12]}…: the model changed since; check out the commit that shipped it")
    return gguf_weights.read(path)[0]


def prediction_type(run_dir):
    """The prediction_type a run's weights answer with (runs from before the flag predicted epsilon)."""
    state = read_state(run_dir)
    return (state or {}).get("args", {}).get("prediction", "epsilon")


def resolve(args, component):
    """Fill preset defaults, pick the device, join the torchrun group if there is one, seed everything (the same
    seed in every process: they draw the same global batches)."""
    d = args._defaults
    args.batch = args.batch or d["batch"][args.preset]
    args.lr = args.lr or d["lr"][args.preset]
    args.run = args.run or f"{component}-{args.preset}"
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        if args.batch % world:
            raise SystemExit(f"--batch {args.batch} does not split over {world} processes: give a multiple of {world}")
        if args.device == "cuda":
            args.device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            torch.cuda.set_device(args.device)
        dist.init_process_group("nccl" if args.device.startswith("cuda") else "gloo")
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if args.bf16 == "auto":
        args.bf16 = "on" if args.device.startswith("cuda") or cpu_has_bf16() else "off"
    torch.manual_seed(args.seed)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return args


def read_state(run_dir):
    """The metadata of a run's state.safetensors (step, elapsed, samples, args), or None if it has none."""
    path = os.path.join(run_dir, "state.safetensors")
    if not os.path.exists(path):
        return None
    with safe_open(path, "pt") as f:
        return json.loads(f.metadata()["unclip_train"])


def read_tensors(path):
    """(metadata, {name: tensor}) of a state.safetensors in any of its forms: the full state, the committed compact
    one (q8_0 blocks, q8.py), or one linked to a shipped model (state.py link: the EMA weights from its GGUF files)."""
    with safe_open(path, "pt") as f:
        meta = json.loads(f.metadata()["unclip_train"])
        t = {k: f.get_tensor(k) for k in f.keys()}
    if "q8" in meta:
        t = q8.dequantize(t, meta["q8"])
    for component, w in meta.get("weights", {}).items():
        t.update({f"ema.{component}.{k}": v for k, v in shipped_weights(w).items()})
    return meta, t


def cpu_has_bf16():
    """Native bf16 matrix instructions (the CPU model varies between this project's machines: detect)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


class EMA:
    """Exponential moving average of trainable parameters (frozen parameters and buffers are copied),
    with the usual warm-up decay min(decay, (1 + n) / (10 + n))."""

    def __init__(self, models, decay):
        self.decay = decay
        self.models = {k: copy.deepcopy(m).eval().requires_grad_(False) for k, m in models.items()}
        self.updates = 0

    @torch.no_grad()
    def update(self, models):
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, m in models.items():
            e = self.models[k]
            for pe, p in zip(e.parameters(), m.parameters()):
                if p.requires_grad:
                    pe.lerp_(p.detach(), 1.0 - d)
                else:
                    pe.copy_(p.detach())
            for be, b in zip(e.buffers(), m.buffers()):
                be.copy_(b)


class Run:
    """Optimiser, EMA, logging and checkpoints for a dict of models trained together."""

    def __init__(self, args, models, extra_state=None):
        self.args = args
        self.device = torch.device(args.device)
        self.dir = os.path.join(RUNS, args.run)
        os.makedirs(self.dir, exist_ok=True)
        self.models = {k: m.to(self.device).train() for k, m in models.items()}
        params = [p for m in self.models.values() for p in m.parameters() if p.requires_grad]
        self.params = params
        self.opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), weight_decay=args.weight_decay)
        self.ema = EMA(self.models, args.ema_decay)
        self.extra_state = extra_state or {}  # name -> (getter, setter), e.g. the data sampler's RNG
        self.step = 0
        self.elapsed = 0.0
        self.samples = 0  # training examples seen, counted across resumes (the model card's "samples seen")
        self.warm_from = 0  # the step the learning-rate warm-up starts from (again after a compact resume)
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.main = self.rank == 0  # the process that logs, evaluates and checkpoints
        if args.resume:
            self.load()
            self.save_ema(only_missing=True)  # a state restored from train/state/ brings no ema/ folders
        elif getattr(args, "init", None):
            self.init_from(os.path.join(RUNS, args.init))
        self.log_path = os.path.join(self.dir, "log.csv")
        self.log_fields = None

    def shard(self, *batch):
        """This process's 1/world slice of each global-batch array or tensor (all of it in a single process)."""
        if self.world == 1:
            return batch if len(batch) > 1 else batch[0]
        n = len(batch[0]) // self.world
        out = tuple(x[self.rank * n:(self.rank + 1) * n] for x in batch)
        return out if len(out) > 1 else out[0]

    def all_mean(self, x):
        """The mean over processes of a tensor (in place), for gradients and logged losses."""
        if self.world > 1:
            dist.all_reduce(x)
            x /= self.world
        return x

    def any_process(self, flag):
        """True where any process says so: every process stops at the same step."""
        if self.world == 1:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.args.bf16 == "on")

    def lr_at(self, step, progress=0.0):
        """Linear warm-up from `warm_from`, then constant, or a cosine to zero over the last `--anneal` share of the
        invocation (`progress` in [0, 1]: train/README.md's pilot chose it)."""
        lr = self.args.lr * min(1.0, (step - self.warm_from + 1) / max(1, self.args.warmup))
        f = self.args.anneal
        if f > 0 and progress > 1.0 - f:
            lr *= 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - (1.0 - f)) / f)))
        return lr

    def checkpoint(self):
        """state.safetensors: tensors (weights and AdamW moments in bf16, EMA in f32) + JSON metadata."""
        tensors, meta = {}, {"step": self.step, "elapsed": self.elapsed, "samples": self.samples,
                             "ema_updates": self.ema.updates,
                             "args": {k: v for k, v in vars(self.args).items() if k != "_defaults"},
                             "extra": {k: get() for k, (get, _) in self.extra_state.items()}}
        for k, m in self.models.items():
            tensors.update({f"model.{k}.{n}": t for n, t in m.state_dict().items()})
        for k, m in self.ema.models.items():
            tensors.update({f"ema.{k}.{n}": t for n, t in m.state_dict().items()})
        opt = self.opt.state_dict()
        for i, st in opt["state"].items():
            for n, t in st.items():
                tensors[f"opt.{i}.{n}"] = t if torch.is_tensor(t) else torch.tensor(t)
        meta["opt_param_groups"] = opt["param_groups"]
        rng = {"torch_rng": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng.update({f"cuda_rng.{i}": r for i, r in enumerate(torch.cuda.get_rng_state_all())})
        tensors.update(rng)
        # bf16 for what only resumes training (weights, AdamW moments); the EMA weights stay f32, because they are
        # what export.py and the next stages read (a frozen tower must give the same embeddings on every machine)
        def stored(k, t):
            t = t.detach().cpu()
            return t.to(torch.bfloat16) if t.is_floating_point() and t.ndim > 0 and not k.startswith("ema.") else t
        tensors = {k: stored(k, t).contiguous() for k, t in tensors.items()}
        tmp = os.path.join(self.dir, "state.safetensors.tmp")
        save_file(tensors, tmp, metadata={"unclip_train": json.dumps(meta)})
        os.replace(tmp, os.path.join(self.dir, "state.safetensors"))
        self.save_ema()

    def save_ema(self, only_missing=False):
        """ema/<component>/: the EMA weights as save_pretrained folders (what export.py and the next stages read)."""
        for k, m in self.ema.models.items():
            d = os.path.join(self.dir, "ema", k)
            if hasattr(m, "save_pretrained") and not (only_missing and os.path.isdir(d)):  # not the CLIP logit scale
                m.save_pretrained(d)

    def init_from(self, run_dir):
        """Weights from another run's EMA (`--init`): a new optimiser and step count, but the hours and samples
        already spent on those weights stay counted (the model card reports the whole lineage)."""
        meta, t = read_tensors(os.path.join(run_dir, "state.safetensors"))
        for k, m in self.models.items():
            own = m.state_dict()
            got = {n: t[f"ema.{k}.{n}"].reshape(own[n].shape).to(own[n].dtype) for n in own}
            m.load_state_dict(got)
            self.ema.models[k].load_state_dict(got)
        self.elapsed, self.samples = meta["elapsed"], meta.get("samples", 0)
        print(f"initialised {', '.join(self.models)} from the EMA weights of {run_dir} (step {meta['step']}, "
              f"{self.elapsed / 3600:.2f} h, {self.samples} samples)")

    def load(self):
        path = os.path.join(self.dir, "state.safetensors")
        meta, t = read_tensors(path)
        stored = meta["args"].get("prediction", "epsilon")
        if stored != getattr(self.args, "prediction", "epsilon"):
            raise SystemExit(f"{path} was trained with --prediction {stored}, this run asks for "
                             f"--prediction {self.args.prediction}: pass --prediction {stored}, or start a new --run")

        def put(prefix, model):
            own = model.state_dict()
            got = {n: t[f"{prefix}.{n}"].reshape(own[n].shape).to(own[n].dtype) for n in own}
            model.load_state_dict(got)

        compact = meta.get("compact", False)  # the committed form (state.py): EMA weights only
        for k, m in self.models.items():
            put(f"ema.{k}" if compact else f"model.{k}", m)
            put(f"ema.{k}", self.ema.models[k])
        self.ema.updates = meta["ema_updates"]
        if compact:  # no AdamW moments: a fresh optimiser, warmed up again
            self.warm_from = meta["step"]
        else:
            state = {}
            for key, v in t.items():
                if key.startswith("opt."):
                    _, i, n = key.split(".", 2)
                    state.setdefault(int(i), {})[n] = v.float().to(self.device) if n != "step" else v.float()
            self.opt.load_state_dict({"state": state, "param_groups": meta["opt_param_groups"]})
        torch.set_rng_state(t["torch_rng"])
        if self.device.type == "cuda" and "cuda_rng.0" in t:
            torch.cuda.set_rng_state_all([t[f"cuda_rng.{i}"] for i in range(torch.cuda.device_count())])
        for k, (_, set_) in self.extra_state.items():
            set_(meta["extra"][k])
        self.step, self.elapsed, self.samples = meta["step"], meta["elapsed"], meta.get("samples", 0)
        print(f"resumed {path} at step {self.step} ({self.elapsed / 3600:.2f} h, {self.samples} samples)"
              + (": the committed EMA-only state, so a fresh AdamW with a new warm-up" if compact else ""))

    def log(self, row):
        if self.log_fields is None:
            self.log_fields = list(row)
            new = not os.path.exists(self.log_path) or not self.args.resume
            self.log_file = open(self.log_path, "w" if new else "a", newline="")
            self.writer = csv.DictWriter(self.log_file, fieldnames=self.log_fields, extrasaction="ignore")
            if new:
                self.writer.writeheader()
        self.writer.writerow(row)
        self.log_file.flush()
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)

    def train(self, step_fn, on_checkpoint=None):
        """Run step_fn(step) -> (loss, {metric: float}) until --steps, or until this invocation has run
        --max-minutes; checkpoint every --ckpt-every steps and at the end. on_checkpoint(run) may return
        metrics to log (evaluation)."""
        a = self.args
        if a.eval_only:
            print("eval", {k: round(v, 6) for k, v in (on_checkpoint(self) or {}).items()}, flush=True)
            return
        t0, elapsed0, saved_at = time.time(), self.elapsed, self.step  # nothing to save until a step runs
        snapped_t = t0
        window_t, window = t0, []
        stop = []  # SIGTERM (kill, the end of a session): finish the step, checkpoint, exit 0
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        start_step = self.step

        def progress():  # share of this invocation done, by steps or by wall clock, whichever is further
            p = (self.step - start_step) / max(1, a.steps - start_step)
            if a.max_minutes:
                p = max(p, (time.time() - t0) / (a.max_minutes * 60))
            return min(1.0, p)

        while self.step < a.steps:
            over = a.max_minutes is not None and time.time() - t0 > a.max_minutes * 60
            if self.any_process(over or stop):
                print(f"{'time limit reached' if over else 'stopped'} at step {self.step}")
                break
            lr = self.lr_at(self.step, progress())
            for g in self.opt.param_groups:
                g["lr"] = lr
            loss, metrics = step_fn(self.step)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            for p in self.params:  # DistributedDataParallel's averaging, done once per step
                if p.grad is not None:
                    self.all_mean(p.grad)
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.opt.step()
            self.ema.update(self.models)
            self.step += 1
            self.samples += a.batch
            logged = {"loss": loss.detach(), **{k: torch.as_tensor(v).detach() for k, v in metrics.items()}}
            window.append({k: float(self.all_mean(v.float().clone())) for k, v in logged.items()})
            if self.step % a.log_every == 0 or self.step == a.steps:
                now = time.time()
                row = {"step": self.step, "time_s": round(elapsed0 + now - t0, 1), "samples": self.samples,
                       "s_per_step": round((now - window_t) / len(window), 4), "lr": lr}
                row.update({k: float(np.mean([w[k] for w in window])) for k in window[0]})
                if self.main:
                    self.log(row)
                window_t, window = now, []
            snap = self.any_process(a.snapshot_dir and time.time() - snapped_t >= a.snapshot_minutes * 60)
            if self.step % a.ckpt_every == 0 or snap:
                self.elapsed = elapsed0 + time.time() - t0
                self.save(on_checkpoint)
                saved_at, snapped_t = self.step, time.time()
        if saved_at != self.step:
            self.elapsed = elapsed0 + time.time() - t0
            self.save(on_checkpoint)

    def save(self, on_checkpoint):
        if self.world > 1:  # the others wait for process 0's checkpoint and evaluation
            if self.main:
                self.save_main(on_checkpoint)
            dist.barrier()
        else:
            self.save_main(on_checkpoint)

    def save_main(self, on_checkpoint):
        self.checkpoint()
        if on_checkpoint is not None:
            metrics = on_checkpoint(self)
            if metrics:
                print("eval", {k: round(v, 4) for k, v in metrics.items()}, flush=True)
                with open(os.path.join(self.dir, "eval.csv"), "a") as f:
                    f.write(",".join([str(self.step)] + [f"{k}={v:.4f}" for k, v in metrics.items()]) + "\n")
        print(f"checkpoint at step {self.step} -> {self.dir}", flush=True)
        if self.args.snapshot_dir:
            self.snapshot(self.args.snapshot_dir)

    def snapshot(self, root):
        """root/<run>/: the compact state in bf16 (what train/state.py restore takes) and the logs, each file
        replaced whole (written beside it, then renamed), so a copy taken at any moment is a consistent one."""
        import state  # state.py imports this module

        out = os.path.join(root, self.args.run)
        os.makedirs(out, exist_ok=True)
        for f in ("state.safetensors", "log.csv", "eval.csv"):
            src, tmp = os.path.join(self.dir, f), os.path.join(out, f + ".partial")
            if not os.path.exists(src):
                continue
            if f == "state.safetensors":
                state.compact(src, tmp, self.args.run, codec="bf16")
            else:
                shutil.copy2(src, tmp)
            os.replace(tmp, os.path.join(out, f))
        print(f"snapshot at step {self.step} -> {out}", flush=True)
