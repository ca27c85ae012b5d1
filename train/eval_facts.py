"""The facts the model card states besides its measurements (train/evaluate.py): the training runs' settings and
logs, the machine, the data set, and the exported model's architecture, parameters and download sizes."""
import csv
import json
import os
import platform

import numpy as np
import torch

import models
import trainer
from trainer import RUNS

COMPONENTS = ["clip", "prior", "decoder", "superres"]


def read_json(path):
    return json.load(open(path)) if os.path.exists(path) else {}


def training_facts(preset):
    out = {}
    for c in COMPONENTS:
        d = os.path.join(RUNS, f"{c}-{preset}")
        state = trainer.read_state(d)
        if state is None:
            out[c] = None
            continue
        a = state["args"]
        rows = list(csv.DictReader(open(os.path.join(d, "log.csv"))))
        loss_keys = [k for k in rows[0] if k not in ("step", "time_s", "samples", "s_per_step", "lr")] if rows else []
        tail = rows[-5:]
        final = {k: float(np.mean([float(r[k]) for r in tail])) for k in loss_keys}
        first = {k: float(rows[0][k]) for k in loss_keys} if rows else {}
        evals = []
        if os.path.exists(os.path.join(d, "eval.csv")):
            for line in open(os.path.join(d, "eval.csv")):
                step, *kv = line.strip().split(",")
                evals.append({"step": int(step), **{k: float(v) for k, v in (x.split("=") for x in kv)}})
        out[c] = {
            "run": f"{c}-{preset}", "steps": int(state["step"]), "seconds": round(float(state["elapsed"]), 1),
            "device": a["device"], "threads": a.get("threads"), "batch": a["batch"], "lr": a["lr"],
            "bf16": a.get("bf16"),
            "prediction": a.get("prediction", "epsilon" if c in ("decoder", "superres") else None),
            "warmup": a["warmup"], "ema_decay": a["ema_decay"], "weight_decay": a.get("weight_decay"),
            "median_s_per_step": float(np.median([float(r["s_per_step"]) for r in rows])) if rows else None,
            "images_seen": int(state.get("samples", int(state["step"]) * int(a["batch"]))),
            "first_logged": first, "final_logged": final,
            "final_logged_steps": [int(tail[0]["step"]), int(tail[-1]["step"])] if tail else None,
            "eval_last": evals[-1] if evals else None, "eval_history": evals,
        }
    return out


def hardware_facts():
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1), "gpu": torch.cuda.is_available(),
            "torch": torch.__version__, "python": platform.python_version(), "os": platform.platform()}


def data_facts(data):
    table = data.table
    vendors = table["vendors"]
    concepts = table["concepts"]
    per_vendor = {v["style"]: int((data.vendor == i).sum()) for i, v in enumerate(vendors)}
    held = np.flatnonzero(data.heldout)
    return {
        "packages": table["packages"],
        "vendors": [{"style": v["style"], "package": v["package"], "licence": v["licence"],
                     "images": per_vendor[v["style"]]} for v in vendors],
        "concepts": len(concepts), "base_concepts": sum(c["skin_tone"] is None for c in concepts),
        "skin_tone_concepts": sum(c["skin_tone"] is not None for c in concepts),
        "images": int(len(data.concept)), "train_images": int((~data.heldout).sum()), "heldout_images": int(len(held)),
        "heldout_concepts": int(len(set(data.concept[held].tolist()))),
        "heldout_base_concepts": sum(1 for c in concepts if c["heldout_vendor"] is not None and c["skin_tone"] is None),
        "captions": len(data.space.captions) - 1,
    }


def architecture_facts(export, preset, model_dir, text_params):
    p = models.PRESETS[preset]
    built = {"image_encoder": models.image_tower(**p["clip"]), "prior": models.prior(**p["prior"]),
             "text_proj": models.text_proj(**p["decoder"]), "decoder": models.decoder(**p["decoder"]),
             "super_res_first": models.superres(**p["superres"])}
    params = {k: models.n_params(m) for k, m in built.items()}
    params["super_res_last"] = params["super_res_first"]
    params["text_encoder"] = text_params
    cfg = {k: read_json(os.path.join(export, k, "config.json")) for k in params}
    manifest = read_json(os.path.join(model_dir, "model.json"))
    files = {k: manifest[k]["bytes"] for k in params if isinstance(manifest.get(k), dict) and "bytes" in manifest[k]}
    tok = manifest.get("tokenizer", {}).get("bytes", 0)
    gen = [k for k in params if k != "image_encoder"]
    return {
        "params": params, "config": cfg, "classes": {k: manifest.get(k, {}).get("class") for k in params},
        "generation_params": sum(params[k] for k in gen),
        "download_bytes": files, "tokenizer_bytes": tok,
        "generation_download_bytes": sum(files.get(k, 0) for k in gen) + tok,
        "total_download_bytes": sum(files.values()) + tok,
    }
