"""Decoder training speed per recipe (train/README.md's decoder pilot, part b): seconds per optimiser step of the
decoder's forward + backward (batch 32, bf16 autocast where train_decoder.py would use it, AdamW), for the preset's
UNet at 32 px and 16 px, in channels_last, and a wider UNet at 16 px. Random conditioning: the cost of a step does
not depend on what the images are.

Usage: python train/pilot_speed.py [--threads 1] [--steps 12]
"""
import argparse
import time

import torch
import torch.nn.functional as F

import models
import trainer

ARMS = {  # name -> (decoder config overrides, sample size, channels_last)
    "cpu preset, 32 px": ({}, 32, False),
    "cpu preset, 32 px, channels_last": ({}, 32, True),
    "cpu preset, 16 px": ({}, 16, False),
    "wider (64, 128, 256), 16 px": ({"block_out_channels": (64, 128, 256), "cross_attention_dim": 256}, 16, False),
}


def seconds_per_step(cfg, size, channels_last, steps, batch, bf16):
    proj, unet = models.text_proj(**cfg), models.decoder(**cfg)
    mods = torch.nn.ModuleList([proj, unet]).train()
    if channels_last:
        unet.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(mods.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    emb = F.normalize(torch.randn(batch, models.EMBED_DIM, generator=g), dim=-1)
    pooled = F.normalize(torch.randn(batch, models.EMBED_DIM, generator=g), dim=-1)
    hidden = torch.randn(batch, 32, models.EMBED_DIM, generator=g)
    mask = torch.ones(batch, 32 + proj.clip_extra_context_tokens, dtype=torch.bool)
    times = []
    for i in range(steps):
        x = torch.randn(batch, 3, size, size, generator=g)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        t = torch.randint(0, 1000, (batch,), generator=g)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            enc, add = proj(image_embeddings=emb, prompt_embeds=pooled, text_encoder_hidden_states=hidden,
                            do_classifier_free_guidance=False)
            out = unet(x, t, encoder_hidden_states=enc, class_labels=add, attention_mask=mask).sample
        loss = out.float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    times = sorted(times[2:])  # the first steps allocate
    return times[len(times) // 2], models.n_params(unet) + models.n_params(proj)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch", type=int, default=32)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    bf16 = trainer.cpu_has_bf16()
    base = models.PRESETS["cpu"]["decoder"]
    print(f"| arm | s/step (median of {a.steps - 2}) | samples/s | params (M) |\n|---|---|---|---|")
    for name, (over, size, cl) in ARMS.items():
        s, n = seconds_per_step({**base, **over}, size, cl, a.steps, a.batch, bf16)
        print(f"| {name} | {s:.3f} | {a.batch / s:.1f} | {n / 1e6:.2f} |", flush=True)


if __name__ == "__main__":
    main()
