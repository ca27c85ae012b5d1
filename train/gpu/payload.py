"""One file holding what a GPU machine needs to train the decoder and that its copy of the repository lacks
(train/gpu/README.md): the device tool sends the working tree (at most 64 MiB) and nothing from the git-ignored
train/data/ or train/runs/, so the dataset, the tower's embeddings and MiniLM travel in this one carried file.

    python train/gpu/payload.py build [--size 16|32] [--clip-run clip-cpu] [--out train/data/gpu-payload.npz]
    python train/gpu/payload.py unpack [PAYLOAD] [--root .]

The file is an uncompressed .npz whose members are each one LZMA-compressed byte string (LZMA packs the emoji
images 30 % tighter than the zlib of np.savez_compressed):
  dataset        an .npz of concept, vendor, heldout and ONE base size: images32 (uint8) or images16_sum (int16
                 sums of each 4 x 4 block of the 64 px image: the 16 px area averages exactly, data.py)
  image_embeds   the frozen tower's L2-normalised embeddings of every image, f16 (the f32 originals rounded:
                 a cosine of 1 - 1e-7 to them)
  captions       train/data/captions.json, the concept table CaptionSpace enumerates captions from
  tower.*        the image tower's EMA folder (config.json, model.safetensors): the decoder measure's judge
  minilm.*       the MiniLM package's config and tokenizer files; its weights come from the shipped
                 models/unclip-emoji/text_encoder.gguf, which the tree carries anyway
  facts          JSON: the tower run's step, hours and samples, and what was packed

`unpack` writes train/data/ (emoji64.npz with the one size, captions.json), train/runs/<clip-run>/ (ema/, the
embeddings, a weightless state with the run's facts) and train/data/minilm/ (for $UNCLIP_MINILM_DIR). It never
overwrites an existing train/data/emoji64.npz: unpack on a bare machine, or with --root elsewhere.
"""
import argparse
import io
import json
import lzma
import os
import sys
import time

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.dirname(HERE)
ROOT = os.path.dirname(TRAIN)
sys.path.insert(0, TRAIN)

DEFAULT = os.path.join(TRAIN, "data", "gpu-payload.npz")
MINILM_FILES = ["config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]
TEXT_ENCODER_GGUF = os.path.join("models", "unclip-emoji", "text_encoder.gguf")


def npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def build(args):
    import text_encoder
    from data import EmojiData, image_embeddings
    from trainer import RUNS, read_state

    z = np.load(os.path.join(TRAIN, "data", "emoji64.npz"))
    arrays = {k: z[k] for k in ("concept", "vendor", "heldout")}
    if args.size == 32:
        arrays["images32"] = z["images32"]
    else:  # int16 sums of 4 x 4 blocks: (N, 16, 16, 3), at most 16 * 255
        blocks = z["images64"].astype(np.int16).reshape(-1, 16, 4, 16, 4, 3)
        arrays["images16_sum"] = blocks.sum((2, 4)).astype(np.int16)
    clip = os.path.join(RUNS, args.clip_run)
    emb = image_embeddings(EmojiData("cpu"), args.clip_run).cpu().numpy()  # the run's cache (made if missing)
    tower = os.path.join(clip, "ema", "image_encoder")
    state = read_state(clip)
    members = {
        "dataset": npz_bytes(**arrays),
        "image_embeds": npz_bytes(image_embeds=emb.astype(np.float16)),
        "captions": open(os.path.join(TRAIN, "data", "captions.json"), "rb").read(),
        "tower.config.json": open(os.path.join(tower, "config.json"), "rb").read(),
        "tower.model.safetensors": open(os.path.join(tower, "model.safetensors"), "rb").read(),
        **{f"minilm.{f}": open(os.path.join(text_encoder.model_dir(), f), "rb").read() for f in MINILM_FILES},
        "facts": json.dumps({"clip_run": args.clip_run, "size": args.size, "images": len(arrays["concept"]),
                             "clip_state": {k: state[k] for k in ("step", "elapsed", "samples", "args")}}).encode(),
    }
    t0 = time.time()
    packed = {k: np.frombuffer(lzma.compress(v, preset=6), np.uint8) for k, v in members.items()}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".partial"
    with open(tmp, "wb") as f:
        np.savez(f, **packed)
    os.replace(tmp, args.out)
    raw = sum(len(v) for v in members.values())
    print(f"{args.out}: {os.path.getsize(args.out) / 2**20:.1f} MiB ({raw / 2**20:.1f} MiB before LZMA, "
          f"{time.time() - t0:.0f} s), {args.size} px base, tower {args.clip_run} at step {state['step']}")


def members(path):
    z = np.load(path)
    return {k: lzma.decompress(z[k].tobytes()) for k in z.files}


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def unpack(args):
    root = os.path.abspath(args.root)
    data, runs = os.path.join(root, "train", "data"), os.path.join(root, "train", "runs")
    dataset = os.path.join(data, "emoji64.npz")
    if os.path.exists(dataset):
        raise SystemExit(f"{dataset} exists: unpack a payload on a bare machine, or with --root elsewhere")
    m = members(args.payload)
    facts = json.loads(m["facts"])
    write(os.path.join(data, "captions.json"), m["captions"])
    minilm = os.path.join(data, "minilm")
    for f in MINILM_FILES:
        write(os.path.join(minilm, f), m[f"minilm.{f}"])
    import text_encoder

    bert = text_encoder.bert_from_gguf(os.path.join(ROOT, TEXT_ENCODER_GGUF), json.loads(m["minilm.config.json"]))
    save_file({k: v.contiguous() for k, v in bert.state_dict().items()}, os.path.join(minilm, "model.safetensors"))
    clip = os.path.join(runs, facts["clip_run"])
    for f in ("config.json", "model.safetensors"):
        write(os.path.join(clip, "ema", "image_encoder", f), m[f"tower.{f}"])
    emb = np.load(io.BytesIO(m["image_embeds"]))["image_embeds"].astype(np.float32)
    np.save(os.path.join(clip, "image_embeds.npy"), emb)  # written after the tower: data.image_embeddings' stamp
    meta = dict(facts["clip_state"], compact=True, ema_updates=0, extra={})  # facts only: read_state's metadata
    save_file({"torch_rng": torch.get_rng_state()}, os.path.join(clip, "state.safetensors"),
              metadata={"unclip_train": json.dumps(meta)})
    write(dataset, m["dataset"])  # last: its presence says the unpacking finished (run.sh skips a finished one)
    print(f"unpacked {args.payload} into {root}: {facts['images']} images at {facts['size']} px, tower "
          f"{facts['clip_run']} (step {facts['clip_state']['step']}), MiniLM in {minilm}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--size", type=int, choices=[16, 32], default=16)
    b.add_argument("--clip-run", default="clip-cpu")
    b.add_argument("--out", default=DEFAULT)
    u = sub.add_parser("unpack")
    u.add_argument("payload", nargs="?", default=DEFAULT)
    u.add_argument("--root", default=ROOT)
    args = p.parse_args()
    build(args) if args.cmd == "build" else unpack(args)


if __name__ == "__main__":
    main()
