"""Build the emoji training set from pinned npm packages (facts and licences: train/DATA.md).

Writes
  train/data/emoji64.npz    images64 (N,64,64,3) u8, images32 (N,32,32,3) u8, concept (N,) i32,
                            vendor (N,) i8, heldout (N,) bool
  train/data/captions.json  vendors + one record per concept (CLDR label, tags, emojilib keywords,
                            group/subgroup, skin tone, base concept)

Steps: `npm install` the packages at pinned versions into train/data/npm, read Noto/Twemoji 64 px PNGs,
Fluent 3D 256 px WebPs (LobeHub) and Fluent Flat SVGs (rasterised at 256 px with rsvg-convert), join them on
the codepoint key (lowercase hex, FE0F removed), composite on white and area-average down to 64 and 32 px.
Everything is deterministic: sorted inputs, a fixed concept order (CLDR order) and hash-based splits.

Usage: python train/build_dataset.py
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
NPM = os.path.join(DATA, "npm")
MODULES = os.path.join(NPM, "node_modules")

PACKAGES = {
    "emoji-datasource-google": "16.0.0",
    "emoji-datasource-twitter": "16.0.0",
    "@lobehub/fluent-emoji-3d": "1.1.0",
    "fluentui-emoji": "1.3.0",
    "fluentui-emoji-js": "1.2.1",
    "emojibase-data": "17.0.0",
    "emojilib": "4.0.3",
}

# Index order is the vendor id stored in the dataset. `style` is the caption suffix name.
VENDORS = [
    {"id": "noto", "style": "Noto", "package": "emoji-datasource-google", "licence": "Apache-2.0"},
    {"id": "twemoji", "style": "Twemoji", "package": "emoji-datasource-twitter", "licence": "CC-BY-4.0"},
    {"id": "fluent3d", "style": "Fluent 3D", "package": "@lobehub/fluent-emoji-3d", "licence": "MIT"},
    {"id": "fluentflat", "style": "Fluent flat", "package": "fluentui-emoji", "licence": "MIT"},
]

HELDOUT_PERCENT = 10
# fluentui-emoji's file slug differs from the slug of its emojiData.json folder for this one emoji.
FLAT_SLUG_FIXES = {"stuffed-flatbread": "stuffedbread-flat"}


def fetch_packages(packages=PACKAGES, npm=NPM):
    """Install the pinned `packages` ({name: version}) with npm into `npm` unless they are already there at the right
    version (train/more_art.py installs its sets through this too)."""
    modules = os.path.join(npm, "node_modules")

    def installed(name, version):
        p = os.path.join(modules, name, "package.json")
        return os.path.exists(p) and json.load(open(p))["version"] == version

    if all(installed(n, v) for n, v in packages.items()):
        return
    os.makedirs(npm, exist_ok=True)
    with open(os.path.join(npm, "package.json"), "w") as f:
        json.dump({"private": True}, f)
    specs = [f"{n}@{v}" for n, v in packages.items()]
    subprocess.run(["npm", "install", "--prefix", npm, "--no-save", "--ignore-scripts", "--no-audit",
                    "--no-fund", *specs], check=True)
    bad = [n for n, v in packages.items() if not installed(n, v)]
    if bad:
        sys.exit(f"npm did not install the pinned versions of {bad}")


def save_npz(path, **arrays):
    """np.savez_compressed into `path` whole or not at all (a stopped build leaves the old file, no truncated one)."""
    with open(path + ".partial", "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(path + ".partial", path)


def key_of(codepoints):
    """Join key: codepoints as lowercase hex (at least 4 digits), FE0F dropped, joined by '-'."""
    return "-".join("%04x" % int(c, 16) for c in codepoints if int(c, 16) != 0xFE0F)


def key_of_glyph(glyph):
    return key_of("%x" % ord(ch) for ch in glyph)


def load_concepts():
    """CLDR records from emojibase-data (base emoji and skin-tone variants) keyed by join key."""
    data = json.load(open(os.path.join(MODULES, "emojibase-data/en/data.json")))
    msgs = json.load(open(os.path.join(MODULES, "emojibase-data/en/messages.json")))
    groups = {g["order"]: g["message"] for g in msgs["groups"]}
    subgroups = {g["order"]: g["message"] for g in msgs["subgroups"]}
    lib = json.load(open(os.path.join(MODULES, "emojilib/dist/emoji-en-US.json")))
    keywords = {key_of_glyph(g): [w.replace("_", " ") for w in ws] for g, ws in lib.items()}

    concepts = {}
    for e in data:
        k = key_of(e["hexcode"].split("-"))
        tags = list(dict.fromkeys(e.get("tags", [])))
        kws = [w for w in dict.fromkeys(keywords.get(k, [])) if w != e["label"]]
        rec = {
            "key": k, "emoji": e["emoji"], "label": e["label"], "tags": tags, "keywords": kws,
            "group": groups.get(e.get("group"), ""), "subgroup": subgroups.get(e.get("subgroup"), ""),
            "order": e.get("order", 10**6), "skin_tone": None, "base": k,
        }
        concepts[k] = rec
        for s in e.get("skins", []):
            sk = key_of(s["hexcode"].split("-"))
            tone = s.get("tone")
            concepts[sk] = dict(rec, key=sk, emoji=s["emoji"], label=s["label"], order=s.get("order", rec["order"]),
                                skin_tone=tone if isinstance(tone, list) else [tone])
    return concepts


def list_sources():
    """{vendor index: {key: file path}} for every vendor, deterministic (sorted, first file wins)."""
    out = {i: {} for i in range(len(VENDORS))}

    def add(vi, key, path):
        out[vi].setdefault(key, path)

    for vi, sub in [(0, "emoji-datasource-google/img/google/64"), (1, "emoji-datasource-twitter/img/twitter/64")]:
        d = os.path.join(MODULES, sub)
        for f in sorted(os.listdir(d)):
            add(vi, key_of(f[:-4].split("-")), os.path.join(d, f))

    d = os.path.join(MODULES, "@lobehub/fluent-emoji-3d/assets")
    for f in sorted(os.listdir(d)):
        k = key_of(re.split(r"[-_]", f[: -len(".webp")]))
        if k.startswith("1f3f4-e00") and not k.endswith("-e007f"):
            k += "-e007f"  # LobeHub's subdivision flags lack the CANCEL TAG terminator
        add(2, k, os.path.join(d, f))

    flat_dir = os.path.join(MODULES, "fluentui-emoji/icons/flat")
    for rec in json.load(open(os.path.join(MODULES, "fluentui-emoji-js/emojiData.json"))):
        folder = unicodedata.normalize("NFKD", rec["folder"]).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "-", folder.lower()).strip("-")
        slug = FLAT_SLUG_FIXES.get(slug, slug)
        path = os.path.join(flat_dir, slug + ".svg")
        if not os.path.exists(path):
            sys.exit(f"no Fluent Flat SVG for {rec['folder']!r} (slug {slug})")
        add(3, key_of_glyph(rec["glyph"]), path)
    return out


def rasterise_svgs(paths):
    """Render SVGs to 256x256 RGBA PNGs with rsvg-convert (cached under train/data/flat256)."""
    if shutil.which("rsvg-convert") is None:
        sys.exit("rsvg-convert not found: apt-get install -y librsvg2-bin")
    cache = os.path.join(DATA, "flat256")
    os.makedirs(cache, exist_ok=True)

    def one(svg):
        png = os.path.join(cache, os.path.basename(svg)[:-4] + ".png")
        if not os.path.exists(png):
            subprocess.run(["rsvg-convert", "-w", "256", "-h", "256", "-f", "png", "-o", png + ".tmp", svg], check=True)
            os.replace(png + ".tmp", png)
        return png

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as ex:
        return dict(zip(paths, ex.map(one, paths)))


def on_white(path):
    """Open an image file, composite it on white, return float32 (H,W,3) in [0,1]."""
    im = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32) / 255.0
    rgb, a = im[..., :3], im[..., 3:]
    return rgb * a + (1.0 - a)


def pad_square(img):
    """Centre a non-square image on a white square canvas (4 LobeHub WebPs are 256x264)."""
    h, w, _ = img.shape
    n = max(h, w)
    out = np.ones((n, n, 3), np.float32)
    out[(n - h) // 2:(n - h) // 2 + h, (n - w) // 2:(n - w) // 2 + w] = img
    return out


def area_downsample(img, size):
    """Area-average a square (H,H,3) image to (size,size,3): exact box means when H is a multiple of size,
    otherwise PIL's BOX filter (area-weighted for fractional footprints) per channel."""
    h = img.shape[0]
    if h % size == 0:
        f = h // size
        return img.reshape(size, f, size, f, 3).mean(axis=(1, 3))
    chans = [np.asarray(Image.fromarray(img[..., c], "F").resize((size, size), Image.BOX)) for c in range(3)]
    return np.stack(chans, axis=-1)


def to_u8(img):
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def stable_hash(text):
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def heldout_choice(concepts, available):
    """Held-out split: for ~10% of base concepts (hash of the key), one vendor (hash-chosen among those that
    draw it) loses its rendition of the concept and of all its skin-tone variants to the held-out set."""
    chosen = {}
    for k, c in concepts.items():
        if c["skin_tone"] is None and k in available and stable_hash("heldout:" + k) % 100 < HELDOUT_PERCENT:
            vs = sorted(available[k])
            if len(vs) >= 2:  # the concept must stay in training through another vendor
                chosen[k] = vs[stable_hash("vendor:" + k) % len(vs)]
    return chosen


def check_prompts(concepts):
    """train/heldout_prompts.txt: 'prompt<TAB>target CLDR label'; prompts must not be verbatim labels."""
    labels = {c["label"].lower() for c in concepts.values()}
    n = 0
    for line in open(os.path.join(HERE, "heldout_prompts.txt")):
        if not line.strip() or line.startswith("#"):
            continue
        prompt, target = line.rstrip("\n").split("\t")
        if prompt.lower() in labels:
            sys.exit(f"held-out prompt {prompt!r} is a verbatim CLDR label")
        if target.lower() not in labels:
            sys.exit(f"held-out prompt target {target!r} is not a CLDR label")
        n += 1
    return n


def main():
    fetch_packages()
    concepts = load_concepts()
    sources = list_sources()
    flat_png = rasterise_svgs(sorted(sources[3].values()))

    available = {}
    for vi, files in sources.items():
        for k in files:
            if k not in concepts:
                sys.exit(f"{VENDORS[vi]['id']} image {k} has no CLDR record")
            available.setdefault(k, set()).add(vi)
    keys = sorted(available, key=lambda k: (concepts[k]["order"], k))
    index = {k: i for i, k in enumerate(keys)}
    heldout = heldout_choice(concepts, available)

    items = [(index[k], vi, path) for vi, files in sources.items() for k, path in files.items()]
    items.sort()
    n = len(items)
    img64 = np.empty((n, 64, 64, 3), np.uint8)
    img32 = np.empty((n, 32, 32, 3), np.uint8)
    for j, (ci, vi, path) in enumerate(items):
        src = pad_square(on_white(flat_png[path] if vi == 3 else path))
        img64[j] = to_u8(area_downsample(src, 64))
        img32[j] = to_u8(area_downsample(src, 32))
    concept = np.array([ci for ci, _, _ in items], np.int32)
    vendor = np.array([vi for _, vi, _ in items], np.int8)
    is_heldout = np.array([heldout.get(concepts[keys[ci]]["base"]) == vi for ci, vi, _ in items], bool)

    out_npz = os.path.join(DATA, "emoji64.npz")
    save_npz(out_npz, images64=img64, images32=img32, concept=concept, vendor=vendor, heldout=is_heldout)
    records = []
    for k in keys:
        c = dict(concepts[k])
        del c["order"]
        c["vendors"] = sorted(available[k])
        hv = heldout.get(c["base"])
        c["heldout_vendor"] = hv if hv in available[k] else None
        records.append(c)
    with open(os.path.join(DATA, "captions.json"), "w") as f:
        json.dump({"packages": PACKAGES, "vendors": VENDORS, "concepts": records}, f, ensure_ascii=False, indent=0)
    n_prompts = check_prompts(concepts)

    skin = np.array([concepts[keys[ci]]["skin_tone"] is not None for ci in concept])
    print(f"concepts: {len(keys)} ({sum(concepts[k]['skin_tone'] is None for k in keys)} base, "
          f"{sum(concepts[k]['skin_tone'] is not None for k in keys)} skin-tone variants)")
    print(f"images: {n} ({int((~skin).sum())} base, {int(skin.sum())} skin-tone)")
    for vi, v in enumerate(VENDORS):
        print(f"  {v['id']:<11} {int((vendor == vi).sum()):5d}")
    print(f"held out: {int(is_heldout.sum())} images ({len(heldout)} base concepts, one vendor each); "
          f"train: {int((~is_heldout).sum())}")
    print(f"held-out prompts: {n_prompts}")
    print(f"wrote {out_npz} ({os.path.getsize(out_npz) / 2**20:.1f} MiB) and captions.json")


if __name__ == "__main__":
    main()
