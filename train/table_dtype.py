"""What storing the text encoder's embedding tables as q8_0 instead of f16 changes (docs/model-card.md,
"Download size"): two text_encoder.gguf files of the same weights (gguf_weights.py), e.g. one converted with f16
tables and one with q8_0 tables, each run over every concept's plain "{label}" caption (3,786) and the held-out
prompts (train/heldout_prompts.txt). Prints the pooled embeddings' cosine, the hidden states' difference, and the
text tower's ranks of each held-out prompt's label among all labels under each file.

    .venv/bin/python train/table_dtype.py F16_TEXT_ENCODER.gguf Q8_TEXT_ENCODER.gguf [--model models/unclip-emoji]
"""
import argparse
import json
import os

import numpy as np
import torch

import text_encoder
from captions import load_table
from eval_metrics import read_prompts

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = "embeddings.word_embeddings.weight"


def encode(model, tok_ids, mask, batch=256):
    pooled, hidden = [], []
    with torch.inference_mode():
        for s in range(0, len(tok_ids), batch):
            h = model(input_ids=tok_ids[s:s + batch], attention_mask=mask[s:s + batch].long()).last_hidden_state
            pooled.append(text_encoder.mean_pool_normalize(h, mask[s:s + batch]))
            hidden.append(h)
    return torch.cat(pooled), torch.cat(hidden)


def ranks(prompts, labels, targets):
    sims = prompts @ labels.T
    target_sim = sims[torch.arange(len(targets)), targets]
    return ((sims > target_sim[:, None]).sum(1) + 1).numpy()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", help="text_encoder.gguf with f16 tables")
    p.add_argument("after", help="text_encoder.gguf with q8_0 tables")
    p.add_argument("--model", default=os.path.join(HERE, "..", "models", "unclip-emoji"), help="for its config")
    args = p.parse_args()
    config = json.load(open(os.path.join(args.model, "model.json")))["text_encoder"]["config"]
    models = {name: text_encoder.bert_from_gguf(path, config)
              for name, path in (("f16", args.before), ("q8_0", args.after))}
    f16, q8_0 = (models[n].state_dict()[TABLE] for n in ("f16", "q8_0"))

    labels = [c["label"] for c in load_table()["concepts"]]
    held = read_prompts(os.path.join(HERE, "heldout_prompts.txt"))
    index = {label: i for i, label in enumerate(labels)}
    targets = torch.tensor([index[label] for _, label in held])
    tok = text_encoder.load_tokenizer()
    enc = tok.encode_batch(labels + [prompt for prompt, _ in held])
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.bool)
    out = {}
    for name, model in models.items():
        out[name] = encode(model, ids, mask)
    (pa, ha), (pb, hb) = out["f16"], out["q8_0"]
    cos = (pa * pb).sum(1)
    m = mask[..., None].float()
    diff = ((ha - hb) * m)
    rel = (diff.pow(2).sum((1, 2)) / (ha * m).pow(2).sum((1, 2))).sqrt()
    n = len(labels)
    print(f"texts: {n} labels + {len(held)} held-out prompts; table {tuple(f16.shape)}: "
          f"f16 {f16.numel() * 2 / 1e6:.1f} MB, q8_0 {f16.numel() * 34 / 32 / 1e6:.1f} MB")
    print(f"word table: max |q8_0 - f16| {(q8_0 - f16).abs().max():.2e}, rms {(q8_0 - f16).pow(2).mean().sqrt():.2e} "
          f"(values' rms {f16.pow(2).mean().sqrt():.2e})")
    for what, sel in [("labels", slice(0, n)), ("prompts", slice(n, None))]:
        print(f"{what}: pooled cosine f16 vs q8_0 min {cos[sel].min():.6f} mean {cos[sel].mean():.6f}; hidden states "
              f"(real tokens) max |diff| {diff[sel].abs().max():.4f}, relative rms diff max {rel[sel].max():.4f} "
              f"mean {rel[sel].mean():.4f}")
    for name in models:
        pooled = out[name][0]
        r = ranks(pooled[n:], pooled[:n], targets)
        print(f"{name}: held-out prompts' label rank among {n} labels (text tower): top-1 {np.mean(r <= 1):.3f}, "
              f"top-5 {np.mean(r <= 5):.3f}, median {np.median(r):.0f}; ranks {r.tolist()}")
    nn_a = (pa[:n] @ pa[:n].T).fill_diagonal_(-2).argmax(1)
    nn_b = (pb[:n] @ pb[:n].T).fill_diagonal_(-2).argmax(1)
    print(f"labels whose nearest other label is the same under both tables: {(nn_a == nn_b).float().mean():.4f}")


if __name__ == "__main__":
    main()
