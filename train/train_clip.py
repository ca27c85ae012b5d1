"""Train the image tower ("CLIP"): a CLIPVisionModelWithProjection aligned contrastively to the FROZEN MiniLM
text embeddings (locked-text tuning; the LiT recipe of Zhai et al. 2022 with the roles swapped).

Loss: symmetric InfoNCE of CLIP (Radford et al. 2021, fig. 3) between L2-normalised image embeddings and the
cached pooled text embeddings of sampled captions, with a learnable temperature (logit scale initialised to
1/0.07, clamped at 100). Batches hold one image per concept, so no caption is a false negative.
Evaluation: zero-shot label retrieval (top-1/top-5) of the held-out renditions against every concept's
"{label}" caption, and the same on a fixed sample of training images.

Usage: python train/train_clip.py --preset tiny --steps 300
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

import models
import trainer
from data import EmojiData, to_signed

DEFAULTS = {"batch": {"tiny": 64, "cpu": 128, "full": 512}, "lr": {"tiny": 1e-3, "cpu": 1e-3, "full": 5e-4}, "weight_decay": 0.05}


class LogitScale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.value = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self):
        return self.value.clamp(max=math.log(100.0)).exp()


def augment(x, generator=None):
    """Random scale (0.85-1.05) and shift (up to 10% of the side); borders replicate the white background."""
    n = x.shape[0]
    s = torch.empty(n, device=x.device).uniform_(0.85, 1.05, generator=generator)
    t = torch.empty(n, 2, device=x.device).uniform_(-0.1, 0.1, generator=generator)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = s
    theta[:, 1, 1] = s
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def embed_images(tower, pixels):
    return F.normalize(tower(pixel_values=pixels).image_embeds.float(), dim=-1)


@torch.no_grad()
def retrieval(tower, data, idx, label_emb, batch=256):
    """Top-1 / top-5 accuracy of retrieving each image's concept label among all labels."""
    hits1 = hits5 = 0
    for s in range(0, len(idx), batch):
        sel = idx[s:s + batch]
        sims = embed_images(tower, to_signed(data.images64[sel])) @ label_emb.T
        top5 = sims.topk(5, dim=1).indices.cpu().numpy()
        target = data.concept[sel][:, None]
        hits1 += int((top5[:, :1] == target).sum())
        hits5 += int((top5 == target).any(axis=1).sum())
    return hits1 / len(idx), hits5 / len(idx)


def label_embeddings(data):
    """The zero-shot classifier: pooled text embedding of every concept's plain "{label}" caption (concepts, 384)."""
    label_ids = np.array([plain[0] for plain in data.space.plain])
    return data.text_embeddings(label_ids)[0]


def zero_shot_eval(tower, data, label_emb=None):
    """Zero-shot label retrieval of the held-out renditions and of a fixed 512-image training probe (the numbers
    train_clip.py logs to eval.csv; train/evaluate.py reports them for an exported tower)."""
    label_emb = label_embeddings(data) if label_emb is None else label_emb
    heldout_idx = np.flatnonzero(data.heldout)
    train_probe = np.random.default_rng(1234).choice(data.train_idx, size=min(512, len(data.train_idx)), replace=False)
    h1, h5 = retrieval(tower, data, heldout_idx, label_emb)
    t1, t5 = retrieval(tower, data, train_probe, label_emb)
    return {"heldout_top1": h1, "heldout_top5": h5, "train_top1": t1, "train_top5": t5}


def main():
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # each process's contrastive matrix would miss the others' pairs
        raise SystemExit("train_clip.py runs in one process: its contrastive loss needs the whole batch (trainer.py)")
    args = trainer.resolve(trainer.parser(__doc__.splitlines()[0], DEFAULTS).parse_args(), "clip")
    data = EmojiData(args.device, limit=args.limit_images, seed=args.seed)
    tower = models.image_tower(**models.PRESETS[args.preset]["clip"])
    scale = LogitScale()
    run = trainer.Run(args, {"image_encoder": tower, "logit_scale": scale},
                      extra_state={"data_rng": (data.rng_state, data.set_rng_state)})

    label_emb = label_embeddings(data)

    def step(_):
        idx = data.distinct_concept_batch(args.batch)
        pixels = augment(to_signed(data.images64[idx]))
        text = data.text_embeddings(data.captions_for(idx))[0]
        with run.autocast():
            img = embed_images(tower, pixels)
        logits = scale() * img @ text.T
        target = torch.arange(len(idx), device=logits.device)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        acc = (logits.argmax(1) == target).float().mean()
        return loss, {"batch_acc": acc, "logit_scale": scale().detach()}

    def evaluate(r):
        return zero_shot_eval(r.ema.models["image_encoder"], data, label_emb)

    run.train(step, on_checkpoint=evaluate)


if __name__ == "__main__":
    main()
