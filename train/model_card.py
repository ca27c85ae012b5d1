"""The model card of train/evaluate.py (docs/model-card.md): its prose is the template train/model_card.md.tmpl,
filled by string.Template from the metrics (docs/model-card-metrics.json); the tables, and the sentences and
sections that depend on what was measured, are built here. The human assessment under `<!-- assessment -->` and
the KEPT_SECTIONS of the card being overwritten carry over into the new one."""
import csv
import json
import os
import re
from string import Template

from eval_facts import COMPONENTS
from eval_grids import DECODER_SWEEP, PRIOR_SWEEP

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "model_card.md.tmpl")


def pct(x):
    return f"{100 * x:.1f}%"


def fmt_int(n):
    return f"{n:,}"


def mib(b):
    return f"{b / 2**20:.1f} MiB"


def hms(s):
    s = int(round(s))
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else f"{s // 60} min {s % 60:02d} s"


def arch_line(name, c, base):
    """The shape column of component `name` (config `c`); `base`: the decoder's sample_size, the super-res input's."""
    if name == "text_encoder":
        return (f"all-MiniLM-L6-v2, frozen: {c.get('num_hidden_layers')} layers, hidden {c.get('hidden_size')}, "
                f"{c.get('num_attention_heads')} heads; mean-pooled, L2-normalised; 32 tokens")
    if name == "image_encoder":
        return (f"ViT {c.get('image_size')} px, patch {c.get('patch_size')}, hidden {c.get('hidden_size')}, "
                f"{c.get('num_hidden_layers')} layers, {c.get('num_attention_heads')} heads, "
                f"MLP {c.get('intermediate_size')}, projection {c.get('projection_dim')}")
    if name == "prior":
        return (f"{c.get('num_layers')} layers, {c.get('num_attention_heads')} heads x {c.get('attention_head_dim')}, "
                f"embedding_dim {c.get('embedding_dim')}, "
                f"{c.get('num_embeddings')} + {c.get('additional_embeddings')} tokens; predicts x0")
    if name == "text_proj":
        return (f"{c.get('clip_extra_context_tokens')} extra context tokens, time_embed_dim {c.get('time_embed_dim')}, "
                f"cross_attention_dim {c.get('cross_attention_dim')}")
    if name == "decoder":
        blocks = ", ".join(b.replace("Block2D", "") for b in c.get("down_block_types", []))
        return (f"{base}x{base}, block_out_channels {tuple(c.get('block_out_channels', []))}, layers_per_block "
                f"{c.get('layers_per_block')}, down blocks [{blocks}], "
                f"attention_head_dim {c.get('attention_head_dim')}, "
                f"cross_attention_dim {c.get('cross_attention_dim')}, 6 output channels (epsilon + learned variance)")
    if name.startswith("super_res"):
        extra = " (copy of super_res_first)" if name == "super_res_last" else ""
        return (f"{base}->{c.get('sample_size')}, block_out_channels {tuple(c.get('block_out_channels', []))}, "
                f"layers_per_block {c.get('layers_per_block')}, no attention{extra}")
    return ""


def old_assessment(path):
    """The human assessment of the card at `path` (between `<!-- assessment -->` and the next section), if any."""
    if not os.path.exists(path):
        return None
    text = open(path, encoding="utf-8").read()
    match = re.search(r"<!-- assessment -->\n(.*?)\n## ", text, re.S)
    body = match.group(1).strip() if match else ""
    return None if not body or body.startswith("TODO") else body


# Sections written by hand around a measurement made once (not one of this script's metrics): a regenerated card
# keeps the old card's text of each, after its Architecture section.
KEPT_SECTIONS = ("Download size",)


def kept_sections(path):
    """{title: body} of the KEPT_SECTIONS the card at `path` has."""
    if not os.path.exists(path):
        return {}
    text = open(path, encoding="utf-8").read()
    found = {}
    for title in KEPT_SECTIONS:
        match = re.search(rf"\n## {re.escape(title)}\n(.*?)(?=\n## |\Z)", text, re.S)
        if match:
            found[title] = match.group(1).strip("\n")
    return found


def learning_curve(preset):
    """train/state/learning-curve.csv (train/stage_metrics.py at each training cycle), this preset's rows."""
    path = os.path.join(HERE, "state", "learning-curve.csv")
    return [r for r in csv.DictReader(open(path)) if r["preset"] == preset] if os.path.exists(path) else []


# ---------------------------------------------------------------------------------------------------- tables

def joined(values, sep=", "):
    return sep.join(map(str, values))


def vendor_rows(d):
    return [f"| {v['style']} | `{v['package']}@{d['packages'].get(v['package'], '?')}` | {v['licence']} | "
            f"{fmt_int(v['images'])} |" for v in d["vendors"]]


def architecture_rows(a, base):
    rows = []
    for k in ["text_encoder", "prior", "text_proj", "decoder", "super_res_first", "super_res_last", "image_encoder"]:
        b = a["download_bytes"].get(k)
        rows.append(f"| {k} | {a['classes'].get(k) or ''} | {arch_line(k, a['config'].get(k, {}), base)} | "
                    f"{fmt_int(a['params'][k])} | {mib(b) if b else ''} |")
    rows.append(f"| **generation total** | | (all but image_encoder; + tokenizer {a['tokenizer_bytes'] / 1e3:.0f} kB) "
                f"| **{fmt_int(a['generation_params'])}** | **{mib(a['generation_download_bytes'])}** |")
    return rows


def training_rows(t):
    target = {c: "x0" if (t.get(c) or {}).get("prediction") == "sample" else "ε" for c in ("decoder", "superres")}
    objective = {"clip": "symmetric InfoNCE vs frozen text embeddings",
                 "prior": "x0 MSE of the normalised image embedding",
                 "decoder": f"{target['decoder']} MSE + λ·VLB (learned variance)",
                 "superres": f"{target['superres']} MSE, corrupted low-res conditioning"}
    rows = []
    for c in COMPONENTS:
        x = t.get(c)
        if not x:
            rows.append(f"| {c} | {objective[c]} | not trained | | | | | | | |")
            continue
        fl = " ".join(f"{k} {x['first_logged'][k]:.3g} → {x['final_logged'][k]:.3g}" for k in x["final_logged"]
                      if k in ("loss", "mse", "vlb"))
        ev = x["eval_last"] or {}
        evs = ", ".join(f"{k} {v:.3g}" for k, v in ev.items() if k != "step")
        rows.append(f"| {c} | {objective[c]} | {fmt_int(x['steps'])} | {x['batch']} | {fmt_int(x['images_seen'])} | "
                    f"{x['threads'] or 'all'} | {hms(x['seconds'])} | {x['median_s_per_step']:.2f} | {fl} | {evs} |")
    return rows


def generation_rows(g):
    rows = [f"| **generated image (image tower)** | **{pct(g['images']['top1'])}** | **{pct(g['images']['top5'])}** | "
            f"{g['images']['median_rank']:g} |"]
    if g.get("prior"):
        rows.append(f"| the prior's image embedding (before the decoder) | {pct(g['prior']['top1'])} | "
                    f"{pct(g['prior']['top5'])} | {g['prior']['median_rank']:g} |")
    rows.append(f"| the prompt's text embedding (text tower alone, no image) | {pct(g['text']['top1'])} | "
                f"{pct(g['text']['top5'])} | {g['text']['median_rank']:g} |")
    return rows


def frechet_rows(fd):
    rows = []
    for k, label in [("generated_vs_heldout", "generated vs held-out real"),
                     ("train_sample_vs_heldout", "training images (same count as generated) vs held-out real"),
                     ("heldout_halves", "two halves of the held-out real images"),
                     ("noise_vs_heldout", "uniform noise images vs held-out real")]:
        x = fd[k]
        rows.append(f"| {label} | {x['sizes'][0]} / {x['sizes'][1]} | {x['fd']:.4f} |")
    return rows


def per_prompt_rows(per_prompt):
    rows = []
    for p in per_prompt:
        pr = joined(p["prior_ranks"]) if p.get("prior_ranks") else ""
        rows.append(f"| {p['prompt']} | {p['target']} | {joined(p['ranks'])} | {pr} | {p['text_rank']} | "
                    f"{'; '.join(p['top1_labels'])} |")
    return rows


# ---------------------------------------------------------------------------------------------------- sections

def section(title, paragraph, table):
    """A `## title` section of one paragraph and one table (lines), with the blank line that ends it."""
    return "\n".join([f"## {title}", "", paragraph, "", *table, "", ""])


def recommended_section(m):
    """## Recommended settings: train/tune.py's search (docs/tuning.json), when the metrics have it."""
    tuning = m.get("tuning")
    if not tuning:
        return ""
    same = tuning["model_hash"] == m["engine"]["model_hash"]
    steps = ", ".join(f"{c} {fmt_int(n)}" for c, n in tuning.get("trained_steps", {}).items())
    paragraph = (
        f"`train/tune.py` chose them by the metric of (b) and (c) on the first {tuning['prompts']} prompts × seeds "
        f"{joined(tuning['seeds'])}, {joined(tuning['steps'], '/')} steps, "
        + ("on this model" if same else f"on an earlier export of the same runs (steps: {steps})")
        + ": a coordinate search "
        "from diffusers' defaults (decoder guidance, then prior guidance, then prior best-of), a setting kept only "
        f"if its top-5 is higher by more than {pct(tuning['margin'])} or as high with a lower FD. model.json carries "
        f"them (`recommended`: {json.dumps(tuning['recommended'])}); `unclip generate` and the page use them "
        "where the user sets nothing, and say so.")
    table = ["| prior guidance | decoder guidance | prior best-of | top-1 | top-5 | FD vs held-out |",
             "|---|---|---|---|---|---|"]
    for r in tuning["results"]:
        x = r["settings"]
        mark = "**" if r["settings"] == tuning["best"]["settings"] else ""
        table.append(f"| {mark}{x['prior_guidance']:g}{mark} | {mark}{x['decoder_guidance']:g}{mark} | "
                     f"{mark}{x['prior_best_of']}{mark} | {pct(r['top1'])} | {pct(r['top5'])} | {r['fd']:.3f} |")
    return section("Recommended settings", paragraph, table)


def learning_curve_section(m):
    """## Learning curve: the rows of train/state/learning-curve.csv, when there are any."""
    curve = m.get("learning_curve") or []
    if not curve:
        return ""
    paragraph = ("`train/stage_metrics.py` after every training cycle (`train/state/learning-curve.csv`): what each "
                 "stage loses, on held-out data, against the decoder's training hours and samples. Decoder alone: "
                 "held-out images → image tower → decoder (true embedding) → image tower, target label top-5; chain: "
                 "the held-out prompts through every stage (fewer images than (b), so its numbers move more).")
    table = ["| time (UTC) | decoder hours | decoder samples | prior cosine | decoder-alone top-5 | "
             "super-res PSNR (dB) | chain top-1 | chain top-5 | chain FD |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in curve:
        table.append(f"| {r['utc']} | {float(r['decoder_hours']):.2f} | {fmt_int(int(r['decoder_samples']))} | "
                     f"{float(r['prior_cosine']):.3f} | {pct(float(r['decoder_top5']))} | "
                     f"{float(r['superres_psnr']):.1f} | {pct(float(r['chain_top1']))} | "
                     f"{pct(float(r['chain_top5']))} | {float(r['chain_fd']):.3f} |")
    return section("Learning curve", paragraph, table)


# ---------------------------------------------------------------------------------------------------- the card

def intro_fields(m):
    """The header, the assessment and the Samples section."""
    s = m["settings"]
    return {
        "name": m["model"]["name"], "version": m["model"]["version"], "date": m["date"], "export": m["export"],
        "preset": m["preset"], "metrics_file": os.path.basename(m["metrics_file"]), "dtype": m["dtype"],
        "generation_download": mib(m["architecture"]["generation_download_bytes"]),
        "assessment": m.get("assessment")
        or "TODO: the honest assessment after looking at samples.png and guidance-sweep.png.",
        "sample_prompts": m["grids"]["sample_prompts"], "grid_seeds": joined(m["grids"]["seeds"]),
        "sweep_seed": m["grids"]["sweep_seed"], "decoder_sweep": joined(DECODER_SWEEP),
        "prior_sweep": joined(PRIOR_SWEEP), "steps": joined(s["steps"], "/"),
        "prior_guidance": f"{s['prior_guidance']:g}", "decoder_guidance": f"{s['decoder_guidance']:g}",
    }


def data_fields(d):
    return {
        "concepts": fmt_int(d["concepts"]), "base_concepts": fmt_int(d["base_concepts"]),
        "skin_tone_concepts": fmt_int(d["skin_tone_concepts"]), "images": fmt_int(d["images"]),
        "vendor_rows": "\n".join(vendor_rows(d)), "emojibase": d["packages"].get("emojibase-data"),
        "emojilib": d["packages"].get("emojilib"), "captions": fmt_int(d["captions"]),
        "heldout_base_concepts": d["heldout_base_concepts"], "heldout_images": fmt_int(d["heldout_images"]),
        "heldout_concepts": d["heldout_concepts"], "train_images": fmt_int(d["train_images"]),
        "chance_top1": f"{100 / d['concepts']:.3f}", "chance_top5": f"{500 / d['concepts']:.2f}",
    }


def architecture_fields(a, kept):
    base = a["config"].get("decoder", {}).get("sample_size", 32)
    return {
        "base": base, "architecture_rows": "\n".join(architecture_rows(a, base)),
        "total_download": mib(a["total_download_bytes"]),
        "kept_sections": "".join(f"## {title}\n\n{body}\n\n" for title, body in kept.items()),
    }


def training_fields(m):
    t, hw = m["training"], m["hardware"]
    gpu = any(x and x["device"] != "cpu" for x in t.values())
    return {
        "cpu": hw["cpu"], "cores": hw["cores"], "memory_gib": hw["memory_gib"], "torch": hw["torch"],
        "precision": "bf16 autocast" if any(x and x.get("bf16") == "on" for x in t.values()) else "fp32",
        "no_gpu": "" if gpu else "No GPU was available: every component was trained on this CPU, ",
        "driven_by": ", driven by `train/train_cpu.sh`" if m["preset"] == "cpu" else "",
        "training_rows": "\n".join(training_rows(t)),
        "training_time": hms(sum(x["seconds"] for x in t.values() if x)),
    }


def evaluation_fields(m):
    e, s = m["evaluation"], m["settings"]
    g, r, ref = e["generation"], e["retrieval"], e["generation"]["reference_real_targets"]
    speed = m["engine"]["median_s_per_image"]
    return {
        "seeds": joined(s["seeds"]), "n_seeds": len(s["seeds"]),
        "heldout_top1": pct(r["heldout_top1"]), "heldout_top5": pct(r["heldout_top5"]),
        "train_top1": pct(r["train_top1"]), "train_top5": pct(r["train_top5"]),
        "prompts": g["prompts"], "real_n": ref["n"], "real_top1": pct(ref["top1"]), "real_top5": pct(ref["top5"]),
        "n_images": g["images"]["n"], "generation_rows": "\n".join(generation_rows(g)),
        "any_top1": g["prompts_any_top1"], "any_top5": g["prompts_any_top5"],
        "frechet_rows": "\n".join(frechet_rows(e["frechet"])),
        "per_prompt_rows": "\n".join(per_prompt_rows(m["per_prompt"])),
        "engine_speed": f"Engine speed here: median {speed:.1f} s per image ({joined(s['steps'], '/')} steps, CPU "
        f"backend, {m['engine']['version']}, on the shared {m['hardware']['cores']}-core machine)." if speed else "",
    }


def closing_fields(m):
    """The optional sections, the licence and the Reproduce commands."""
    preset, version = m["preset"], m["model"].get("version") or "0.1.0"
    tune = (f".venv/bin/python train/export.py --preset {preset} --out /tmp/tune-export --version {version}\n"
            ".venv/bin/python train/tune.py --export /tmp/tune-export --model /tmp/tune-model --out docs/tuning.json\n")
    return {
        "recommended_settings": recommended_section(m), "learning_curve": learning_curve_section(m),
        "licence": m["model"].get("license", ""),
        "credits": "; ".join(f"{x['name']} ({x['license']}, {x['copyright']})"
                             for x in m["model"].get("attribution", [])),
        "train_command": "bash train/train_cpu.sh                 # preset cpu; other presets: train/README.md"
        if preset == "cpu" else f"# train the {preset} preset as train/README.md says",
        "tune_commands": tune if m.get("tuning") else "", "release": version,
        "recommended_flag": " --recommended docs/tuning.json" if m.get("tuning") else "", "command": m["command"],
    }


def write_card(m, path):
    """Write the card of metrics `m` to `path`, keeping the KEPT_SECTIONS of the card already there."""
    fields = {**intro_fields(m), **data_fields(m["data"]),
              **architecture_fields(m["architecture"], kept_sections(path)),
              **training_fields(m), **evaluation_fields(m), **closing_fields(m)}
    with open(TEMPLATE, encoding="utf-8") as f:
        text = Template(f.read()).substitute(fields)
    with open(path, "w") as f:
        f.write(text)
