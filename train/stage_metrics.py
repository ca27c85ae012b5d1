"""What each stage of unclip-emoji loses, measured on the current EMA weights of the training runs, appended to
train/state/learning-curve.csv against training hours and samples seen. Every stage is judged
by the run's own image tower, against all 3,786 concept labels (the zero-shot classifier of train_clip.py):

  tower     held-out renditions -> tower: label top-1 / top-5 (train_clip.zero_shot_eval)
  prior     a held-out image's "{label}" caption -> prior (25 steps, guidance 4): cosine to the image's own tower
            embedding, and the label rank of the prior's embedding
  decoder   every held-out image's true tower embedding + "{label}" caption -> decoder (25 steps, guidance 8) ->
            bicubic to 64 -> tower: label top-1 / top-5 against all labels and the cosine to the true embedding
            (all 330 images: a standard error of ~2.5 points on top-5, where 48 gave ~6); real 32 px and real 16 px
            images (area-averaged from 64), resized the same way, are the ceilings of a 32 and a 16 px base; the
            mean RGB of the 4x4 corners (real emoji: white, 1.0)
  superres  real 32 (or 16, as the run was trained: --low-size) px held-out image -> super-res (7 steps) -> PSNR
            against the real 64 px image (bicubic: baseline)
  chain     train/heldout_prompts.txt -> text -> prior -> decoder -> super-res, seed 0: label top-1 / top-5 and the
            Frechet distance of tower embeddings to the held-out real images (60 samples: a rough number; the
            model card's 180-image figure from the Rust engine is the one the issue's bar refers to)

The samplers are diffusers' UnCLIPPipeline loops (pipelines/deprecated/unclip/pipeline_unclip.py, 0.42.1) run
stage by stage, so a stage can be measured before the others are trained. Stages whose run is missing are skipped.

Usage: python train/stage_metrics.py --preset cpu [--images 48] [--threads 1]
"""
import argparse
import csv
import datetime
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import PriorTransformer, UnCLIPPipeline, UnCLIPScheduler, UNet2DConditionModel, UNet2DModel
from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
from transformers import BertModel, BertTokenizer, CLIPVisionModelWithProjection

import text_encoder
import trainer
from data import EmojiData, image_embeddings, to_signed
from eval_metrics import frechet, ranks_of, read_prompts, topk
from export import export_tokenizer, scheduler_configs
from generate_reference import MiniLMForUnCLIP
from train_clip import embed_images, label_embeddings, zero_shot_eval

HERE = os.path.dirname(os.path.abspath(__file__))
CURVE = os.path.join(HERE, "state", "learning-curve.csv")
COMPONENTS = {"clip": ["image_encoder"], "prior": ["prior"], "decoder": ["text_proj", "decoder"],
              "superres": ["super_res_first"]}


def load_pipeline(run_names):
    """An UnCLIPPipeline of the EMA weights of every run that has them (None for the others) and the runs' facts."""
    runs, facts = {}, {}
    for c, comps in COMPONENTS.items():
        d = os.path.join(trainer.RUNS, run_names[c])
        state = trainer.read_state(d)
        if state is None or not all(os.path.isdir(os.path.join(d, "ema", k)) for k in comps):
            continue
        runs[c] = d
        facts[c] = {"hours": state["elapsed"] / 3600, "samples": state.get("samples", state["step"] * state["args"]["batch"]),
                    "step": state["step"]}

    def ema(c, k, cls):
        return cls.from_pretrained(os.path.join(runs[c], "ema", k)).eval() if c in runs else None

    with tempfile.TemporaryDirectory() as tmp:
        export_tokenizer(tmp)
        tokenizer = BertTokenizer.from_pretrained(tmp)
    configs = scheduler_configs(*(os.path.join(trainer.RUNS, run_names[c]) for c in ("decoder", "superres")))
    sched = {k: UnCLIPScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True, **kw)
             for k, kw in configs.items()}
    sr = ema("superres", "super_res_first", UNet2DModel)
    pipe = UnCLIPPipeline(
        prior=ema("prior", "prior", PriorTransformer), decoder=ema("decoder", "decoder", UNet2DConditionModel),
        text_proj=ema("decoder", "text_proj", UnCLIPTextProjModel),
        text_encoder=MiniLMForUnCLIP(BertModel.from_pretrained(text_encoder.model_dir())).eval(), tokenizer=tokenizer,
        super_res_first=sr, super_res_last=sr, **sched)  # super_res_last = first (train_superres.py)
    tower = ema("clip", "image_encoder", CLIPVisionModelWithProjection)
    return pipe, tower, facts


def randn(shape, generator, scheduler):
    return torch.randn(shape, generator=generator) * scheduler.init_noise_sigma


@torch.no_grad()
def sample_prior(pipe, prompts, steps, guidance, generator):
    """UnCLIPPipeline.__call__'s prior stage: prompts -> image embeddings (B, 384), plus the text conditioning."""
    cfg = guidance > 1.0
    prompt_embeds, hidden, mask = pipe._encode_prompt(prompts, "cpu", 1, cfg, None, None)
    s = pipe.prior_scheduler
    s.set_timesteps(steps)
    latents = randn((len(prompts), pipe.prior.config.embedding_dim), generator, s)
    for i, t in enumerate(s.timesteps):
        x = torch.cat([latents] * 2) if cfg else latents
        pred = pipe.prior(x, timestep=t, proj_embedding=prompt_embeds, encoder_hidden_states=hidden,
                          attention_mask=mask).predicted_image_embedding
        if cfg:
            u, c = pred.chunk(2)
            pred = u + guidance * (c - u)
        prev = None if i + 1 == len(s.timesteps) else s.timesteps[i + 1]
        latents = s.step(pred, timestep=t, sample=latents, generator=generator, prev_timestep=prev).prev_sample
    return pipe.prior.post_process_latents(latents), (prompt_embeds, hidden, mask)


@torch.no_grad()
def sample_decoder(pipe, image_embeddings, text, steps, guidance, generator):
    """The decoder stage: image embeddings + text conditioning -> 32 px images in [-1, 1]."""
    prompt_embeds, hidden, mask = text
    cfg = prompt_embeds.shape[0] == 2 * image_embeddings.shape[0]
    hid, add_temb = pipe.text_proj(image_embeddings=image_embeddings, prompt_embeds=prompt_embeds,
                                   text_encoder_hidden_states=hidden, do_classifier_free_guidance=cfg)
    dmask = F.pad(mask, (pipe.text_proj.clip_extra_context_tokens, 0), value=True)
    s = pipe.decoder_scheduler
    s.set_timesteps(steps)
    size = pipe.decoder.config.sample_size
    latents = randn((image_embeddings.shape[0], pipe.decoder.config.in_channels, size, size), generator, s)
    for i, t in enumerate(s.timesteps):
        x = torch.cat([latents] * 2) if cfg else latents
        out = pipe.decoder(sample=x, timestep=t, encoder_hidden_states=hid, class_labels=add_temb,
                           attention_mask=dmask).sample
        if cfg:
            u, c = out.chunk(2)
            u, _ = u.split(x.shape[1], dim=1)
            c, var = c.split(x.shape[1], dim=1)
            out = torch.cat([u + guidance * (c - u), var], dim=1)
        prev = None if i + 1 == len(s.timesteps) else s.timesteps[i + 1]
        latents = s.step(out, t, latents, prev_timestep=prev, generator=generator).prev_sample
    return latents.clamp(-1, 1)


@torch.no_grad()
def sample_superres(pipe, small, steps, generator):
    """The super-res stage: 32 px images in [-1, 1] -> 64 px images in [0, 1]."""
    s = pipe.super_res_scheduler
    s.set_timesteps(steps)
    size = pipe.super_res_first.config.sample_size
    up = F.interpolate(small, size=[size, size], mode="bicubic", align_corners=False, antialias=True)
    latents = randn((small.shape[0], pipe.super_res_first.config.in_channels // 2, size, size), generator, s)
    for i, t in enumerate(s.timesteps):
        unet = pipe.super_res_last if i + 1 == len(s.timesteps) else pipe.super_res_first
        out = unet(sample=torch.cat([latents, up], dim=1), timestep=t).sample
        prev = None if i + 1 == len(s.timesteps) else s.timesteps[i + 1]
        latents = s.step(out, t, latents, prev_timestep=prev, generator=generator).prev_sample
    return (latents * 0.5 + 0.5).clamp(0, 1)


def to_u8(x01):
    """(B,3,H,W) in [0,1] -> (B,H,W,3) uint8, as the engine's PNGs are."""
    return (x01.permute(0, 2, 3, 1).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def up64(x_signed):
    return F.interpolate(x_signed, size=[64, 64], mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)


def tower_u8(tower, u8):
    return embed_images(tower, to_signed(torch.as_tensor(u8))).numpy().astype(np.float64)


def psnr(a, b):
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=["tiny", "cpu", "full"], default="cpu")
    p.add_argument("--images", type=int, default=48, help="held-out images of the prior and super-res measurements")
    p.add_argument("--decoder-images", type=int, default=100000, help="held-out images of the decoder measurement "
                   "(default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prompts", type=int, help="only the first N held-out prompts (smoke test)")
    p.add_argument("--curve", default=CURVE)
    p.add_argument("--only", nargs="+", choices=list(COMPONENTS) + ["chain"], help="measure only these stages")
    for c in COMPONENTS:
        p.add_argument(f"--{c}-run", help=f"run directory (default {c}-<preset>)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)  # measurement only
    run_names = {c: getattr(args, f"{c}_run") or f"{c}-{args.preset}" for c in COMPONENTS}
    pipe, tower, facts = load_pipeline(run_names)
    if tower is None:
        raise SystemExit(f"train/runs/{run_names['clip']} has no image tower yet: every stage is judged by it")
    data = EmojiData("cpu")
    label_emb_t = label_embeddings(data)
    label_emb = label_emb_t.numpy().astype(np.float64)
    labels = {c["label"]: i for i, c in enumerate(data.table["concepts"])}
    held = data.validation_indices(args.images)
    captions = [data.space.captions[i] for i in data.label_captions(held)]
    # a dataset unpacked from the GPU payload (train/gpu/payload.py) has no 64 px images: the tower's embeddings
    # of them come from the run's cache, and only the decoder can be measured
    packed = data.images64 is None
    if packed and set(args.only or COMPONENTS) - {"decoder"}:
        raise SystemExit("this dataset holds no 64 px images (a GPU payload): measure it with --only decoder")
    all_emb = image_embeddings(data, run_names["clip"]) if packed else None
    true_of = lambda idx: all_emb[idx] if packed else embed_images(tower, to_signed(data.images64[idx]))  # noqa: E731
    true_emb = true_of(held)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    row = {"utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), "preset": args.preset}
    for c in COMPONENTS:
        f = facts.get(c, {})
        row[f"{c}_hours"] = round(f.get("hours", 0.0), 3)
        row[f"{c}_samples"] = f.get("samples", 0)

    want = lambda c: args.only is None or c in args.only  # noqa: E731
    if want("clip"):
        z = zero_shot_eval(tower, data, label_emb_t)
        row.update(tower_top1=z["heldout_top1"], tower_top5=z["heldout_top5"])

    if pipe.prior is not None and want("prior"):
        emb, _ = sample_prior(pipe, captions, 25, 4.0, g())
        e = F.normalize(emb.float(), dim=-1)
        ranks, _, _ = ranks_of(e.numpy().astype(np.float64), label_emb, data.concept[held])
        t = topk(ranks)
        row.update(prior_cosine=float((e * true_emb).sum(-1).mean()), prior_top1=t["top1"], prior_top5=t["top5"])

    if pipe.decoder is not None and want("decoder"):
        dheld = data.validation_indices(args.decoder_images)
        dcaps = [data.space.captions[i] for i in data.label_captions(dheld)]
        dtrue = true_of(dheld)
        gen = []
        for s in range(0, len(dheld), 48):  # 96 rows under guidance at a time
            text = pipe._encode_prompt(dcaps[s:s + 48], "cpu", 1, True, None, None)
            gen.append(to_u8(up64(sample_decoder(pipe, dtrue[s:s + 48], text, 25, 8.0, g())) * 0.5 + 0.5))
        gen = np.concatenate(gen)
        gen_emb = tower_u8(tower, gen)
        t = topk(ranks_of(gen_emb, label_emb, data.concept[dheld])[0])
        real = {}  # the base sizes this dataset holds (a GPU payload holds one); 16 px: the 64 px area-averaged
        if data.images32 is not None:
            real["32"] = data.base_images(dheld, 32)
        if data.images64 is not None or data.images16_sum is not None:
            real["16"] = data.base_images(dheld, 16)
        ceil = {n: topk(ranks_of(tower_u8(tower, to_u8(up64(x) * 0.5 + 0.5)), label_emb, data.concept[dheld])[0])
                for n, x in real.items()}
        corners = np.concatenate([gen[:, :4, :4], gen[:, :4, -4:], gen[:, -4:, :4], gen[:, -4:, -4:]], axis=1)
        cos = (F.normalize(torch.as_tensor(gen_emb).float(), dim=-1) * dtrue).sum(-1).mean()
        row.update(decoder_run=run_names["decoder"], decoder_top1=t["top1"], decoder_top5=t["top5"],
                   decoder_cosine=float(cos),
                   **{f"decoder_real{n}_top{k}": c[f"top{k}"] for n, c in ceil.items() for k in (5, 1)},
                   decoder_images=len(dheld), decoder_corner_rgb=float(corners.mean() / 255))

    if pipe.super_res_first is not None and want("superres"):
        real64 = data.images64[held].numpy()
        low_size = trainer.read_state(os.path.join(trainer.RUNS, run_names["superres"]))["args"].get("low_size", 32)
        low = data.base_images(held, low_size)  # train_superres.py --low-size
        sr = to_u8(sample_superres(pipe, low, 7, g()))
        bic = to_u8(up64(low) * 0.5 + 0.5)
        row.update(superres_psnr=float(np.mean([psnr(a, b) for a, b in zip(sr, real64)])),
                   superres_bicubic_psnr=float(np.mean([psnr(a, b) for a, b in zip(bic, real64)])))

    if all(m is not None for m in (pipe.prior, pipe.decoder, pipe.super_res_first)) and want("chain"):
        prompts = read_prompts(os.path.join(HERE, "heldout_prompts.txt"))[:args.prompts]
        gen = []
        for s in range(0, len(prompts), 20):  # batches of 20 prompts (40 rows under guidance)
            batch = [q for q, _ in prompts[s:s + 20]]
            emb, text = sample_prior(pipe, batch, 25, 4.0, g())
            gen.append(to_u8(sample_superres(pipe, sample_decoder(pipe, emb, text, 25, 8.0, g()), 7, g())))
        gen = np.concatenate(gen)
        gen_emb = tower_u8(tower, gen)
        t = topk(ranks_of(gen_emb, label_emb, np.array([labels[lab] for _, lab in prompts]))[0])
        held_all = np.flatnonzero(data.heldout)
        row.update(chain_top1=t["top1"], chain_top5=t["top5"],
                   chain_fd=frechet(gen_emb, tower_u8(tower, data.images64[held_all].numpy())))

    row = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
    print(row, flush=True)
    os.makedirs(os.path.dirname(args.curve), exist_ok=True)
    old = list(csv.DictReader(open(args.curve))) if os.path.exists(args.curve) else []
    fields = list(dict.fromkeys([k for r in old for k in r] + list(row)))
    with open(args.curve, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(old + [row])


if __name__ == "__main__":
    main()
