"""Dataset access for training: images from train/data/emoji64.npz (with `more_art`, followed by the extra styles of
train/data/emoji64-more.npz, train/DATA.md "More art"), captions from the text cache, and the image tower's
embeddings of every image (what the prior predicts and the decoder is conditioned on).

Pixels are mapped to [-1, 1] (x / 127.5 - 1), the range of the diffusion models and of the image tower.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from captions import CaptionSpace, load_table
from text_encoder import TextCache

HERE = os.path.dirname(os.path.abspath(__file__))
DATASET = os.path.join(HERE, "data", "emoji64.npz")
MORE_ART = os.path.join(HERE, "data", "emoji64-more.npz")  # train/more_art.py


def to_signed(u8):
    """uint8 NHWC -> float32 NCHW in [-1, 1]."""
    return u8.permute(0, 3, 1, 2).float() / 127.5 - 1.0


class EmojiData:
    """Images (uint8 NHWC tensors on `device`), labels and the caption sampler.

    `limit` keeps only the first `limit` training images (smoke tests). A dataset unpacked from a GPU payload
    (train/gpu/payload.py) holds one base size only: `images32`, or `images16_sum` (int16 sums of each 4 x 4 block of
    the 64 px image, so that its 16 px images are exactly the area averages); the sizes it lacks are None.

    `more_art` appends emoji64-more.npz's images after emoji64.npz's, so every index of the default dataset (and its
    held-out set, what train/stage_metrics.py measures) is unchanged; its new vendors have no style captions (their
    captions are the plain label and tag forms, train/captions.py), so the caption space and the text cache are the
    same."""

    def __init__(self, device, limit=None, seed=0, more_art=False):
        z = dict(np.load(DATASET))
        self.name = "emoji64"
        self.base_count = len(z["concept"])  # emoji64.npz's images: the first indices, more_art or not
        if more_art:
            if not os.path.exists(MORE_ART):
                raise SystemExit(f"{MORE_ART} is missing: run train/more_art.py first")
            extra = np.load(MORE_ART)
            z = {k: np.concatenate([v, extra[k]]) for k, v in z.items() if k in extra}
            self.name = "emoji64-more"
        self.device = torch.device(device)
        have = lambda k: torch.from_numpy(z[k]).to(self.device) if k in z else None  # noqa: E731
        self.images64, self.images32, self.images16_sum = have("images64"), have("images32"), have("images16_sum")
        self.concept = z["concept"].astype(np.int64)
        self.vendor = z["vendor"].astype(np.int64)
        self.heldout = z["heldout"]
        self.train_idx = np.flatnonzero(~self.heldout)
        if limit:
            self.train_idx = self.train_idx[:limit]
        self.table = load_table()
        self.space = CaptionSpace(self.table)
        self.text_cache = TextCache(device=self.device)
        if len(self.text_cache.captions) != len(self.space.captions):
            raise RuntimeError("text cache is stale: run train/text_encoder.py")
        self.rng = np.random.default_rng(seed)
        self.train_by_concept = {}
        for i in self.train_idx:
            self.train_by_concept.setdefault(int(self.concept[i]), []).append(int(i))
        self.train_concepts = np.array(sorted(self.train_by_concept))

    def base_images(self, idx, size):
        """(B, 3, size, size) in [-1, 1]: the decoder's targets, 32 px as stored, 16 px the area average of 64."""
        if size == 32:
            return to_signed(self.images32[idx])
        if self.images64 is not None:
            return F.avg_pool2d(to_signed(self.images64[idx]), 64 // size)
        return self.images16_sum[idx].permute(0, 3, 1, 2).float() / (16 * 127.5) - 1.0

    def batch_indices(self, n):
        """n training image indices, uniform with replacement."""
        return self.train_idx[self.rng.integers(len(self.train_idx), size=n)]

    def distinct_concept_batch(self, n):
        """n training images of n different concepts (contrastive batches without duplicate positives)."""
        chosen = self.rng.choice(self.train_concepts, size=min(n, len(self.train_concepts)), replace=False)
        return np.array([self.train_by_concept[c][self.rng.integers(len(self.train_by_concept[c]))] for c in chosen])

    def captions_for(self, idx, drop=0.0):
        """Sampled caption ids for image indices (templates, tags, optional style suffix); a `drop` share
        is replaced by caption 0, the empty string (classifier-free guidance training)."""
        ids = self.space.sample(self.concept[idx], self.vendor[idx], self.rng)
        ids[self.rng.random(len(ids)) < drop] = 0
        return ids

    def label_captions(self, idx):
        """The plain "{label}" caption id of each image's concept (deterministic, for validation)."""
        return np.array([self.space.plain[c][0] for c in self.concept[idx]])

    def validation_indices(self, n=256):
        """A fixed sample of emoji64.npz's held-out images (the same with more_art, so validation losses compare)."""
        held = np.flatnonzero(self.heldout[:self.base_count])
        return np.sort(np.random.default_rng(4321).choice(held, size=min(n, len(held)), replace=False))

    def text_embeddings(self, caption_ids):
        """(pooled, hidden, mask) of caption ids, on the data device."""
        return self.text_cache.get(caption_ids, self.device)

    def rng_state(self):
        return self.rng.bit_generator.state

    def set_rng_state(self, state):
        self.rng.bit_generator.state = state


@torch.no_grad()
def image_embeddings(data, clip_run, batch=256):
    """L2-normalised image-tower embeddings (N,384) of every dataset image, from the EMA weights in
    train/runs/<clip_run>/ema/image_encoder; cached in the run directory (one file per dataset) until the weights
    change."""
    from transformers import CLIPVisionModelWithProjection

    from trainer import RUNS

    weights = os.path.join(RUNS, clip_run, "ema", "image_encoder")
    cache = os.path.join(RUNS, clip_run, "image_embeds.npy" if data.name == "emoji64" else f"image_embeds-{data.name}.npy")
    stamp = os.path.getmtime(os.path.join(weights, "model.safetensors"))
    if os.path.exists(cache) and os.path.getmtime(cache) >= stamp:
        emb = np.load(cache)
        if len(emb) == len(data.concept):
            return torch.from_numpy(emb).to(data.device)
    if data.images64 is None:
        raise SystemExit(f"{cache} is missing or older than the tower, and this dataset has no 64 px images to embed: "
                         "unpack the GPU payload again (train/gpu/payload.py)")
    tower = CLIPVisionModelWithProjection.from_pretrained(weights).to(data.device).eval()
    out = []
    for s in range(0, len(data.images64), batch):
        e = tower(pixel_values=to_signed(data.images64[s:s + batch])).image_embeds
        out.append(torch.nn.functional.normalize(e.float(), dim=-1))
    emb = torch.cat(out)
    np.save(cache, emb.cpu().numpy())
    return emb
