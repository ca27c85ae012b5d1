"""Where a pixel diffusion stage loses the picture: the predicted clean image x̂0 against the held-out real image,
(a) from one model call on the real image noised to t, for several t, and (b) step by step along a sampling run
(the pipeline's own scheduler, 7 super-res or 25 decoder steps). This is how the ε super-res's failure was found: one
call at t = 300 gave 31 dB, the sampling run 10.5 dB, pinned at its first step (train/README.md). For the decoder,
(b) draws a new picture for the embedding, so its PSNR against the real image is low by design: judge it by (a) and by
train/stage_metrics.py's label rank.

Usage: python train/diagnose_x0.py --stage superres [--run superres-cpu] [--images 16]
       python train/diagnose_x0.py --stage decoder [--run decoder-cpu] [--guidance 8]
"""
import argparse

import numpy as np
import torch
import torch.nn.functional as F

import stage_metrics as sm
from data import EmojiData, to_signed
from diffusion import Schedule
from train_clip import embed_images

TIMESTEPS = (0, 5, 20, 100, 300, 600, 900, 999)


def psnr_of(x_signed, real_u8):
    return float(np.mean([sm.psnr(a, b) for a, b in zip(sm.to_u8((x_signed.clamp(-1, 1) * 0.5 + 0.5)), real_u8)]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", choices=["superres", "decoder"], required=True)
    p.add_argument("--run", help="run directory (default <stage>-cpu)")
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--guidance", type=float, default=8.0, help="decoder guidance of the sampling run")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    pipe, tower, _ = sm.load_pipeline({**{c: f"{c}-cpu" for c in sm.COMPONENTS}, args.stage: args.run or f"{args.stage}-cpu"})
    data = EmojiData("cpu")
    held = data.validation_indices(args.images)
    sched = Schedule("cpu")
    g = torch.Generator().manual_seed(0)

    if args.stage == "superres":
        real, x0 = data.images64[held].numpy(), to_signed(data.images64[held])
        up = sm.up64(to_signed(data.images32[held]))
        unet, s, steps = pipe.super_res_first, pipe.super_res_scheduler, 7

        def model(x, t, cfg=False):
            return unet(torch.cat([x, up], 1), t).sample
    else:
        real, x0 = data.images32[held].numpy(), to_signed(data.images32[held])
        emb = embed_images(tower, to_signed(data.images64[held]))
        captions = [data.space.captions[i] for i in data.label_captions(held)]
        conditioning = {}
        for cfg in (False, True):
            prompt, hidden, mask = pipe._encode_prompt(captions, "cpu", 1, cfg, None, None)
            hid, temb = pipe.text_proj(image_embeddings=emb, prompt_embeds=prompt, text_encoder_hidden_states=hidden,
                                       do_classifier_free_guidance=cfg)
            conditioning[cfg] = (hid, temb, F.pad(mask, (pipe.text_proj.clip_extra_context_tokens, 0), value=True))
        s, steps = pipe.decoder_scheduler, 25

        def model(x, t, cfg=False):
            hid, temb, mask = conditioning[cfg]
            out = pipe.decoder(sample=torch.cat([x] * 2) if cfg else x, timestep=t, encoder_hidden_states=hid,
                               class_labels=temb, attention_mask=mask).sample
            if not cfg:
                return out
            (u, _), (c, var) = (h.split(3, 1) for h in out.chunk(2))
            return torch.cat([u + args.guidance * (c - u), var], 1)

    kind = s.config.prediction_type
    print(f"{args.stage}: prediction_type {kind}; (a) one call on the real image noised to t")
    for t in TIMESTEPS:
        tt = torch.full((len(held),), t)
        xt = sched.q_sample(x0, tt, torch.randn(x0.shape, generator=g))
        out = model(xt, t)[:, :3]
        pred = out if kind == "sample" else sched.predict_x0(xt, tt, out)
        print(f"  t = {t:3d}: x̂0 {psnr_of(pred, real):5.2f} dB")
    print(f"(b) a {steps}-step sampling run{' (guidance %g)' % args.guidance if args.stage == 'decoder' else ''}")
    s.set_timesteps(steps)
    x = torch.randn(x0.shape, generator=g) * s.init_noise_sigma
    for i, t in enumerate(s.timesteps):
        prev = None if i + 1 == len(s.timesteps) else s.timesteps[i + 1]
        r = s.step(model(x, t, cfg=args.stage == "decoder"), t, x, prev_timestep=prev, generator=g)
        print(f"  t = {int(t):3d}: x̂0 {psnr_of(r.pred_original_sample, real):5.2f} dB")
        x = r.prev_sample
    print(f"bicubic from 32 px: {psnr_of(sm.up64(to_signed(data.images32[held])), data.images64[held].numpy()):.2f} dB"
          if args.stage == "superres" else "")


if __name__ == "__main__":
    main()
