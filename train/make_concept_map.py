"""The teaching page's "CLIP latent" map, computed at build time: the image tower's
embedding of each training concept (the L2-normalised mean of its renditions' embeddings), a 2-D PCA of
those, and the concepts with their labels. The page projects the concepts and the prior's trajectory onto that
plane with one formula (prior.js `project`: p = (z/‖z‖ − mean)·components) and lists the concepts nearest to the prior's embedding (by cosine).

Usage: python train/make_concept_map.py --export train/runs/cpu-export --out models/unclip-emoji/concept-map.json
Writes JSON: {model, concepts: [label…], embeddings: [[384]…] (3 decimals), mean: [384],
components: [[384], [384]], explained: [var1, var2]}.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from data import EmojiData, to_signed  # noqa: E402
from train_clip import embed_images  # noqa: E402


@torch.no_grad()
def concept_embeddings(tower, data, concepts, per_concept=8):
    """(concepts, 384): L2-normalised mean of up to `per_concept` training renditions' embeddings."""
    out = []
    for c in concepts:
        idx = data.train_by_concept[int(c)][:per_concept]
        e = embed_images(tower, to_signed(data.images64[idx])).mean(0)
        out.append(torch.nn.functional.normalize(e, dim=0).numpy())
    return np.stack(out)


def pca2(x):
    """Mean, the two leading principal directions (rows) and their explained variance ratios."""
    mean = x.mean(0)
    u, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2 / (s**2).sum()
    return mean, vt[:2], var[:2]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--export", required=True, help="exported diffusers folder with image_encoder/")
    p.add_argument("--out", required=True)
    p.add_argument("--concepts", type=int, default=240, help="how many training concepts to place (spread evenly)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from transformers import CLIPVisionModelWithProjection

    tower = CLIPVisionModelWithProjection.from_pretrained(os.path.join(a.export, "image_encoder")).eval()
    data = EmojiData("cpu")
    pick = np.linspace(0, len(data.train_concepts) - 1, min(a.concepts, len(data.train_concepts))).round().astype(int)
    concepts = data.train_concepts[pick]
    emb = concept_embeddings(tower, data, concepts)
    mean, components, explained = pca2(emb)
    labels = [data.table["concepts"][int(c)]["label"] for c in concepts]
    card = os.path.join(a.export, "unclip.json")
    model = json.load(open(card)).get("name") if os.path.exists(card) else os.path.basename(a.export.rstrip("/"))
    r = lambda v: [round(float(x), 3) for x in v]  # noqa: E731
    out = {
        "model": model,
        "concepts": labels,
        "embeddings": [r(e) for e in emb],
        "mean": [round(float(x), 5) for x in mean],
        "components": [[round(float(x), 5) for x in c] for c in components],
        "explained": r(explained),
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"{a.out}: {len(labels)} concepts, PCA explains {explained.sum():.1%}, {os.path.getsize(a.out) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
