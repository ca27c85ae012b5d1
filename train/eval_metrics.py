"""The measurements of train/evaluate.py (also used by train/tune.py, train/stage_metrics.py and
train/more_art.py): image-tower embeddings of images, the rank of each image's target label among all labels, top-k
rates, and the Frechet distance between two sets of embeddings."""
import numpy as np
import torch
from PIL import Image

from data import to_signed
from train_clip import embed_images


def read_prompts(path):
    """(prompt, target label) rows of a tab-separated prompt list such as train/heldout_prompts.txt; `#` lines are
    comments."""
    rows = []
    for line in open(path, encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            prompt, label = line.rstrip("\n").split("\t")
            rows.append((prompt, label))
    return rows


def load_png(path):
    img = Image.open(path).convert("RGB")
    if img.size != (64, 64):
        img = img.resize((64, 64), Image.BICUBIC)
    return np.asarray(img)


@torch.no_grad()
def embed_u8(tower, u8, batch=128):
    """L2-normalised image-tower embeddings of uint8 NHWC images (the tower's 64x64, x/127.5-1 input)."""
    out = []
    for s in range(0, len(u8), batch):
        out.append(embed_images(tower, to_signed(torch.as_tensor(np.ascontiguousarray(u8[s:s + batch])))))
    return torch.cat(out).numpy().astype(np.float64)


def ranks_of(emb, label_emb, targets):
    """1-based rank of each row's target label by cosine, and each row's top-1 label index."""
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = emb @ label_emb.T
    target_sim = sims[np.arange(len(targets)), targets]
    return (sims > target_sim[:, None]).sum(1) + 1, sims.argmax(1), target_sim


def topk(ranks):
    ranks = np.asarray(ranks)
    return {"top1": float(np.mean(ranks <= 1)), "top5": float(np.mean(ranks <= 5)),
            "median_rank": float(np.median(ranks)), "n": int(len(ranks))}


def frechet(a, b):
    """Frechet distance between Gaussians fitted to two feature sets (rows = samples), in float64:
    |mu_a - mu_b|^2 + tr(Sa) + tr(Sb) - 2 tr((Sa^1/2 Sb Sa^1/2)^1/2)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ sb @ root
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * cross)
