"""Train the decoder: UnCLIPTextProjModel + UNet2DConditionModel generating 32x32 (or 16x16) images from the image
embedding and the text (docs/math.md §7-8).

unCLIP §2.1 / Karlo: the image embedding is projected into the timestep embedding and into 4 extra context
tokens next to the projected text tokens; the UNet predicts epsilon (as Karlo's; `--prediction sample` was piloted and
lost: train/README.md) and a learned-range variance (6 output channels), trained with the Improved-DDPM hybrid loss
(train/diffusion.py). For classifier-free guidance the
image embedding is replaced 10% of the time by text_proj's `learned_classifier_free_guidance_embeddings`
(what UnCLIPTextProjModel.forward feeds the unconditional half when do_classifier_free_guidance is set) and
the text 50% of the time by the empty caption (what the pipeline encodes for the unconditional half), each
independently.

Usage: python train/train_decoder.py --preset tiny --steps 300 [--clip-run clip-tiny]
"""
import torch
import torch.nn.functional as F

import models
import trainer
from data import EmojiData, image_embeddings
from diffusion import T_RANGES, Schedule, hybrid_loss

DEFAULTS = {"batch": {"tiny": 32, "cpu": 32, "full": 128}, "lr": {"tiny": 1e-3, "cpu": 1e-3, "full": 2e-4}}
IMAGE_DROP = 0.1
TEXT_DROP = 0.5


def main():
    p = trainer.parser(__doc__.splitlines()[0], DEFAULTS)
    p.add_argument("--clip-run", help="image tower run (default clip-<preset>)")
    trainer.add_prediction_args(p, "epsilon")  # train/README.md: x0 was piloted and lost
    p.add_argument("--size", type=int, choices=[16, 32], default=models.DECODER_SIZE,
                   help="base resolution: 32, or 16 (the 64 px images area-averaged; train/README.md's pilot)")
    p.add_argument("--more-art", action="store_true",
                   help="train on train/data/emoji64-more.npz's extra styles too (train/more_art.py first)")
    args = trainer.resolve(p.parse_args(), "decoder")
    data = EmojiData(args.device, limit=args.limit_images, seed=args.seed, more_art=args.more_art)
    emb = image_embeddings(data, args.clip_run or f"clip-{args.preset}")

    cfg = models.PRESETS[args.preset]["decoder"]
    proj, unet = models.text_proj(**cfg), models.decoder(**cfg, sample_size=args.size)
    size = args.size
    run = trainer.Run(args, {"text_proj": proj, "decoder": unet},
                      extra_state={"data_rng": (data.rng_state, data.set_rng_state)})
    sched = Schedule(run.device)

    def losses(proj, unet, idx, caption_ids, image_drop, t, noise, reduce=True):
        pooled, hidden, mask = data.text_embeddings(caption_ids)
        image_emb = torch.where(image_drop[:, None], proj.learned_classifier_free_guidance_embeddings[None], emb[idx])
        x0 = data.base_images(idx, size)
        x_t = sched.q_sample(x0, t, noise)
        with run.autocast():
            enc, add_temb = proj(image_embeddings=image_emb, prompt_embeds=pooled, text_encoder_hidden_states=hidden,
                                 do_classifier_free_guidance=False)
            out = unet(x_t, t, encoder_hidden_states=enc, class_labels=add_temb,
                       attention_mask=F.pad(mask, (proj.clip_extra_context_tokens, 0), value=True)).sample
        return hybrid_loss(sched, out, x0, x_t, t, noise, args.prediction, args.snr_gamma, reduce)

    def step(_):
        idx = data.batch_indices(args.batch)
        captions = data.captions_for(idx, drop=TEXT_DROP)
        image_drop = torch.from_numpy(data.rng.random(len(idx)) < IMAGE_DROP).to(run.device)
        t = sched.sample_t(len(idx), run.device)
        noise = torch.randn(len(idx), 3, size, size, device=run.device)
        idx, captions, image_drop, t, noise = run.shard(idx, captions, image_drop, t, noise)  # torchrun: trainer.py
        loss, mse, vlb = losses(proj, unet, idx, captions, image_drop, t, noise)
        return loss, {"mse": mse.detach(), "vlb": vlb.detach()}

    val_idx = data.validation_indices()
    val_t = torch.linspace(0, 999, len(val_idx), device=run.device).long()
    val_noise = torch.randn(len(val_idx), 3, size, size,
                            generator=torch.Generator().manual_seed(0)).to(run.device)
    keep = torch.zeros(len(val_idx), dtype=torch.bool, device=run.device)

    @torch.no_grad()
    def evaluate(r):
        e = r.ema.models
        loss, mse, vlb = losses(e["text_proj"], e["decoder"], val_idx, data.label_captions(val_idx), keep, val_t, val_noise,
                                reduce=False)
        out = {"val_loss": float(loss.mean()), "val_mse": float(mse.mean()), "val_vlb": float(vlb.mean())}
        for lo, hi in T_RANGES:  # where in t the loss is (the mean hides it): train/README.md's pilot
            at = (val_t >= lo) & (val_t < hi)
            out[f"val_mse_t{lo}_{hi}"] = float(mse[at].mean())
        return out

    run.train(step, on_checkpoint=evaluate)


if __name__ == "__main__":
    main()
