"""Train the prior: a PriorTransformer that generates the image tower's embedding from text (docs/math.md §5-6).

As in unCLIP (Ramesh et al. 2022, §2.2) and Karlo: a diffusion prior over the CLIP image embedding that
predicts x0 directly (UnCLIPScheduler prediction_type "sample"), with the target normalised by the
per-dimension clip_mean / clip_std of the training images' embeddings (stored in the prior and undone by
`post_process_latents`). Conditioning: the pooled MiniLM embedding (proj_embedding), the per-token hidden
states (encoder_hidden_states) and their mask; text is replaced by the empty caption 10% of the time, which
is what the pipeline feeds the unconditional half under classifier-free guidance. Cosine schedule, MSE on x0.

Usage: python train/train_prior.py --preset tiny --steps 300 [--clip-run clip-tiny]
"""
import torch
import torch.nn.functional as F

import models
import trainer
from data import EmojiData, image_embeddings
from diffusion import Schedule

DEFAULTS = {"batch": {"tiny": 64, "cpu": 128, "full": 512}, "lr": {"tiny": 1e-3, "cpu": 1e-3, "full": 3e-4}}
TEXT_DROP = 0.1


def main():
    p = trainer.parser(__doc__.splitlines()[0], DEFAULTS)
    p.add_argument("--clip-run", help="image tower run (default clip-<preset>)")
    args = trainer.resolve(p.parse_args(), "prior")
    data = EmojiData(args.device, limit=args.limit_images, seed=args.seed)
    emb = image_embeddings(data, args.clip_run or f"clip-{args.preset}")

    prior = models.prior(**models.PRESETS[args.preset]["prior"])
    train_emb = emb[data.train_idx]
    prior.clip_mean.data.copy_(train_emb.mean(0, keepdim=True))
    prior.clip_std.data.copy_(train_emb.std(0, keepdim=True))
    prior.clip_mean.requires_grad_(False)
    prior.clip_std.requires_grad_(False)
    run = trainer.Run(args, {"prior": prior}, extra_state={"data_rng": (data.rng_state, data.set_rng_state)})
    sched = Schedule(run.device)

    def loss_on(model, idx, caption_ids, t, noise):
        pooled, hidden, mask = data.text_embeddings(caption_ids)
        x0 = (emb[idx] - model.clip_mean) / model.clip_std
        x_t = sched.q_sample(x0, t, noise)
        with run.autocast():
            pred = model(x_t, t, proj_embedding=pooled, encoder_hidden_states=hidden,
                         attention_mask=mask).predicted_image_embedding
        return F.mse_loss(pred.float(), x0)

    def step(_):
        idx = data.batch_indices(args.batch)
        captions = data.captions_for(idx, drop=TEXT_DROP)
        t = sched.sample_t(len(idx), run.device)
        noise = torch.randn_like(emb[idx])
        idx, captions, t, noise = run.shard(idx, captions, t, noise)  # torchrun: trainer.py
        return loss_on(prior, idx, captions, t, noise), {}

    val_idx = data.validation_indices()
    val_t = torch.linspace(0, 999, len(val_idx), device=run.device).long()
    val_noise = torch.randn(len(val_idx), emb.shape[1], generator=torch.Generator().manual_seed(0)).to(run.device)

    @torch.no_grad()
    def evaluate(r):
        return {"val_x0_mse": float(loss_on(r.ema.models["prior"], val_idx, data.label_captions(val_idx), val_t, val_noise))}

    run.train(step, on_checkpoint=evaluate)


if __name__ == "__main__":
    main()
