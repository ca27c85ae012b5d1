"""Extra emoji styles from pinned npm iconify sets, as a separate dataset next to emoji64.npz (facts: train/DATA.md,
section "More art").

Writes
  train/data/emoji64-more.npz   the new images only, same arrays as emoji64.npz: images64, images32, concept
                                (index into train/data/captions.json's concepts), vendor (ids after the 4 existing
                                vendors), heldout
  train/data/emoji64-more.json  vendors (existing + new, index = vendor id), packages, per-vendor counts and the
                                icon name chosen for every (vendor, concept)
  with --measure: train/data/more_art/metrics.json (coverage, 32 px RMSE against the existing vendors, zero-shot
                                label retrieval of the trained image tower)
  with --sheet:   train/data/more_art/sheet.png (a contact sheet: 12 concepts x every style)

The iconify sets ship no codepoint map (chars.json is empty), so icons are joined to the CLDR concepts of
captions.json by name: the icon name (or one of its plain aliases) equals the slug of a CLDR label, of a Unicode
character name, of an emojibase shortcode, or of a Fluent folder name (fluentui-emoji-js), after a few old-name
rewrites ("flag-for-x" -> "flag-x", Fluent's "-dark" -> "-dark-skin-tone", Streamline's numbered variants "-1");
fxemoji's squashed names ("blackdiamondsuit") match the same slugs with the hyphens removed. Only concepts already in
captions.json are used, so the caption space and the text cache do not change.

Held out: emoji64.npz holds out, for ~10% of base concepts, one vendor's renditions of the concept and its skin-tone
variants (build_dataset.heldout_choice). Here every new image of such a concept is held out, so that no held-out
concept reaches training through a new style.

Rendering reuses build_dataset.py: SVG -> 256 px RGBA with rsvg-convert, composite on white, area-average to 64 and
32 px. Deterministic: sorted icon names, CLDR concept order, hash-based split.

Usage: python train/more_art.py [--measure] [--sheet] [--threads 1]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build_dataset as bd  # noqa: E402

OUT_DIR = os.path.join(bd.DATA, "more_art")
NPM = os.path.join(OUT_DIR, "npm")
MODULES = os.path.join(NPM, "node_modules")
OUT_NPZ = os.path.join(bd.DATA, "emoji64-more.npz")
OUT_JSON = os.path.join(bd.DATA, "emoji64-more.json")

# Accepted sets. `licence` is the licence of the art (not always the package's: fxemoji's package says Apache-2.0,
# Mozilla's LICENSE.md puts the visual design under CC BY 4.0). Vendor ids continue after build_dataset.VENDORS.
SETS = [
    {"id": "notov1", "style": "Noto v1", "package": "@iconify-json/noto-v1", "version": "1.2.5",
     "licence": "Apache-2.0", "attribution": "Noto Emoji v1 (Apache-2.0, © Google), via Iconify"},
    {"id": "fxemoji", "style": "Firefox OS", "package": "@iconify-json/fxemoji", "version": "1.2.2",
     "licence": "CC-BY-4.0", "attribution": "Firefox OS Emoji (FxEmoji), © Mozilla Foundation, CC BY 4.0 "
     "(https://github.com/mozilla/fxemoji); rasterised and downscaled"},
    {"id": "streamline", "style": "Streamline", "package": "@iconify-json/streamline-emojis", "version": "1.2.4",
     "licence": "CC-BY-4.0", "attribution": "Streamline Emojis by Streamline (https://github.com/webalys-hq/"
     "streamline-vectors), CC BY 4.0; rasterised and downscaled"},
    {"id": "fluentcolor", "style": "Fluent color", "package": "@iconify-json/fluent-emoji", "version": "1.2.7",
     "licence": "MIT", "attribution": "Fluent Emoji (MIT, © Microsoft), via Iconify"},
]
PACKAGES = {s["package"]: s["version"] for s in SETS}
FIRST_ID = len(bd.VENDORS)
SKIN = ("light", "medium-light", "medium", "medium-dark", "dark")


def slug(text):
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def name_tables(concepts, wanted):
    """[(source name, {slug: set(keys)})] in priority order, restricted to the keys in `wanted`."""
    tables = {"label": {}, "fluent": {}, "unicode": {}, "shortcode": {}}

    def add(t, name, key):
        if key in wanted and name:
            tables[t].setdefault(name, set()).add(key)

    for k, c in sorted(concepts.items()):
        add("label", slug(c["label"]), k)
        cps = k.split("-")
        if len(cps) == 1:
            add("unicode", slug(unicodedata.name(chr(int(cps[0], 16)), "")), k)
    for rec in json.load(open(os.path.join(bd.MODULES, "fluentui-emoji-js/emojiData.json"))):
        s = slug(rec["folder"])
        add("fluent", s, bd.key_of_glyph(rec["glyph"]))
        if s.endswith("-default"):
            add("fluent", s[: -len("-default")], bd.key_of_glyph(rec["glyph"]))
    sc_dir = os.path.join(bd.MODULES, "emojibase-data/en/shortcodes")
    for f in sorted(os.listdir(sc_dir)):
        if f.endswith(".json") and "native" not in f:
            for hexcode, names in sorted(json.load(open(os.path.join(sc_dir, f))).items()):
                for n in [names] if isinstance(names, str) else names:
                    add("shortcode", slug(n), bd.key_of(hexcode.split("-")))
    order = ["label", "fluent", "unicode", "shortcode"]
    out = [(t, tables[t]) for t in order]
    for t in order:  # fxemoji-style squashed names, after every hyphenated table
        sq = {}
        for n, ks in tables[t].items():
            sq.setdefault(n.replace("-", ""), set()).update(ks)
        out.append((t + "-squashed", sq))
    return out


def name_forms(name):
    """The icon name and its rewrites of old or vendor-specific naming, in priority order."""
    forms = [name]
    if name.startswith("flag-for-"):
        forms.append("flag-" + name[len("flag-for-"):])
    for tone in sorted(SKIN, key=len, reverse=True):
        if name.endswith("-" + tone) and not name.endswith("-skin-tone"):
            forms.append(name + "-skin-tone")
            break
    m = re.fullmatch(r"(.+)-(\d+)", name)
    if m:
        forms.append(m.group(1))
    return forms


def match_icons(icon_set, tables):
    """{key: (icon name, rank)}: each icon's concept by its first resolving name; a concept drawn by several icons
    keeps the best-ranked match (rewrite, table, alias, then name order)."""
    names = {n: [n] for n in icon_set["icons"]}
    for alias, a in sorted(icon_set.get("aliases", {}).items()):
        if set(a) == {"parent"} and a["parent"] in names:  # plain renames only (no flips or rotations)
            names[a["parent"]].append(alias)
    best = {}
    for icon in sorted(names):
        found = None
        for ai, n in enumerate(names[icon]):
            for fi, form in enumerate(name_forms(n)):
                for ti, (tname, table) in enumerate(tables):
                    probe = form.replace("-", "") if tname.endswith("-squashed") else form
                    ks = table.get(probe)
                    if ks and len(ks) == 1:
                        rank = (fi, ti, ai, icon)
                        if found is None or rank < found[1]:
                            found = (next(iter(ks)), rank)
                        break
        if found:
            k, rank = found
            if k not in best or rank < best[k][1]:
                best[k] = (icon, rank)
    return best


def icon_svg(icon_set, name):
    """A standalone SVG document of one iconify icon, its viewBox widened to a centred square."""
    icon = icon_set["icons"][name]
    w = icon.get("width", icon_set.get("width", 16))
    h = icon.get("height", icon_set.get("height", 16))
    left, top = icon.get("left", icon_set.get("left", 0)), icon.get("top", icon_set.get("top", 0))
    n = max(w, h)
    left, top = left - (n - w) / 2, top - (n - h) / 2
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{n}" height="{n}" viewBox="{left:g} {top:g} {n:g} {n:g}">{icon["body"]}</svg>')


def render(set_id, icon_set, name):
    """Path of the 256 px RGBA PNG of one icon (cached under train/data/more_art/png256/<set>/), None when
    rsvg-convert fails on it (its SVG is left there)."""
    d = os.path.join(OUT_DIR, "png256", set_id)
    os.makedirs(d, exist_ok=True)
    png = os.path.join(d, name + ".png")
    if not os.path.exists(png):
        svg = os.path.join(d, name + ".svg")
        with open(svg, "w") as f:
            f.write(icon_svg(icon_set, name))
        r = subprocess.run(["rsvg-convert", "-w", "256", "-h", "256", "-f", "png", "-o", png + ".tmp", svg],
                           capture_output=True, text=True)
        if r.returncode != 0:  # e.g. librsvg 2.5x gives up on one Fluent icon's filter ("NoMemory")
            print(f"  {set_id}:{name} not rendered: {r.stderr.strip()[-200:]}", flush=True)
            return None
        os.replace(png + ".tmp", png)
        os.remove(svg)
    return png


def load_table():
    table = json.load(open(os.path.join(bd.DATA, "captions.json")))
    if len(table["vendors"]) != FIRST_ID:
        sys.exit("captions.json's vendors differ from build_dataset.VENDORS")
    return table


def heldout_bases(table):
    """The base concepts emoji64.npz holds out (one vendor each), recomputed with build_dataset.heldout_choice from
    the vendors captions.json lists, and checked against its heldout_vendor fields."""
    concepts = {c["key"]: c for c in table["concepts"]}
    available = {c["key"]: set(c["vendors"]) for c in table["concepts"]}
    chosen = bd.heldout_choice(concepts, available)
    for c in table["concepts"]:
        hv = chosen.get(c["base"])
        if c["heldout_vendor"] != (hv if hv in available[c["key"]] else None):
            sys.exit(f"held-out split of captions.json differs from build_dataset.heldout_choice at {c['key']}")
    return chosen


def build():
    if shutil.which("rsvg-convert") is None:
        sys.exit("rsvg-convert not found: apt-get install -y librsvg2-bin")
    bd.fetch_packages(PACKAGES, NPM)
    table = load_table()
    keys = [c["key"] for c in table["concepts"]]
    index = {k: i for i, k in enumerate(keys)}
    held = heldout_bases(table)
    base_of = {c["key"]: c["base"] for c in table["concepts"]}
    tables = name_tables(bd.load_concepts(), set(keys))

    items, chosen, counts = [], {}, {}
    for si, s in enumerate(SETS):
        icon_set = json.load(open(os.path.join(MODULES, s["package"], "icons.json")))
        best = match_icons(icon_set, tables)
        chosen[s["id"]] = {k: best[k][0] for k in sorted(best, key=index.get)}
        counts[s["id"]] = {"icons": len(icon_set["icons"]), "matched": len(best)}
        for k, (name, _) in best.items():
            items.append((index[k], FIRST_ID + si, s["id"], icon_set, name))
        print(f"{s['id']:<12} {len(icon_set['icons']):5d} icons -> {len(best):5d} concepts", flush=True)
    items.sort(key=lambda t: (t[0], t[1]))
    pngs = [render(sid, iset, name) for _, _, sid, iset, name in items]
    failed = sorted(f"{t[2]}:{t[4]}" for t, p in zip(items, pngs) if p is None)
    for t, p in zip(items, pngs):
        if p is None:
            del chosen[t[2]][keys[t[0]]]
            counts[t[2]]["not_rendered"] = counts[t[2]].get("not_rendered", 0) + 1
    items = [t + (p,) for t, p in zip(items, pngs) if p is not None]

    n = len(items)
    img64 = np.empty((n, 64, 64, 3), np.uint8)
    img32 = np.empty((n, 32, 32, 3), np.uint8)
    for j, (ci, vi, sid, icon_set, name, png) in enumerate(items):
        src = bd.pad_square(bd.on_white(png))
        img64[j] = bd.to_u8(bd.area_downsample(src, 64))
        img32[j] = bd.to_u8(bd.area_downsample(src, 32))
        if (j + 1) % 1000 == 0:
            print(f"  rendered {j + 1}/{n}", flush=True)
    concept = np.array([t[0] for t in items], np.int32)
    vendor = np.array([t[1] for t in items], np.int8)
    heldout = np.array([base_of[keys[ci]] in held for ci in concept], bool)
    bd.save_npz(OUT_NPZ, images64=img64, images32=img32, concept=concept, vendor=vendor, heldout=heldout)
    vendors = list(table["vendors"]) + [{k: s[k] for k in ("id", "style", "package", "licence")} for s in SETS]
    with open(OUT_JSON, "w") as f:
        json.dump({"packages": PACKAGES, "vendors": vendors, "first_new_vendor": FIRST_ID, "counts": counts,
                   "not_rendered": failed, "icons": chosen}, f, ensure_ascii=False, indent=1)
    print(f"images: {n}; held out {int(heldout.sum())} (every new image of the {len(held)} held-out base concepts)")
    print(f"wrote {OUT_NPZ} ({os.path.getsize(OUT_NPZ) / 2**20:.1f} MiB) and {OUT_JSON}")


# ------------------------------------------------------------------------------------------------- measurements

def load_both():
    old = np.load(os.path.join(bd.DATA, "emoji64.npz"))
    new = np.load(OUT_NPZ)
    meta = json.load(open(OUT_JSON))
    return old, new, meta


def measure(threads):
    import torch
    torch.set_num_threads(threads)
    from transformers import CLIPVisionModelWithProjection

    from captions import CaptionSpace
    from eval_metrics import embed_u8, ranks_of, topk
    from text_encoder import TextCache

    old, new, meta = load_both()
    table = load_table()
    vendors = meta["vendors"]
    n_concepts = len(table["concepts"])
    oc, ov, oh = old["concept"], old["vendor"], old["heldout"]
    nc, nv, nh = new["concept"], new["vendor"], new["heldout"]
    out = {"concepts": n_concepts, "images_new": int(len(nc)), "heldout_new": int(nh.sum())}

    # (a) coverage
    styles_old = np.zeros(n_concepts, int)
    for c, v in set(zip(oc.tolist(), ov.tolist())):
        styles_old[c] += 1
    styles_new = np.zeros(n_concepts, int)
    for c in nc.tolist():
        styles_new[c] += 1
    skin = np.array([c["skin_tone"] is not None for c in table["concepts"]])
    cov = {}
    for vi in range(FIRST_ID, len(vendors)):
        cs = np.unique(nc[nv == vi])
        cov[vendors[vi]["id"]] = {"concepts": int(len(cs)), "base": int((~skin[cs]).sum()), "skin": int(skin[cs].sum()),
                                  "heldout_images": int(nh[nv == vi].sum())}
    out["coverage"] = cov
    out["concepts_gaining_a_style"] = int((styles_new > 0).sum())
    out["base_concepts_gaining_a_style"] = int(((styles_new > 0) & ~skin).sum())
    out["styles_per_concept_before"] = {str(k): int((styles_old == k).sum()) for k in range(1, FIRST_ID + 1)}
    tot = styles_old + styles_new
    out["styles_per_concept_after"] = {str(k): int((tot == k).sum()) for k in range(1, int(tot.max()) + 1)}
    out["mean_styles_per_concept"] = {"before": float(styles_old.mean()), "after": float(tot.mean())}

    # (b) 32 px RMSE (pixel values in [0, 1]) against the same concept in each existing vendor
    def by_cv(concept, vendor):
        return {(int(c), int(v)): i for i, (c, v) in enumerate(zip(concept, vendor))}

    old_at, new_at = by_cv(oc, ov), by_cv(nc, nv)
    o32 = old["images32"].astype(np.float32) / 255.0
    n32 = new["images32"].astype(np.float32) / 255.0
    all32 = {"old": o32, "new": n32}
    where = {**{(c, v): ("old", i) for (c, v), i in old_at.items()}, **{(c, v): ("new", i) for (c, v), i in new_at.items()}}
    per_vendor = {}
    for vi in range(len(vendors)):
        mine = sorted(c for (c, v) in where if v == vi)
        row = {}
        for vj in range(FIRST_ID):
            if vj == vi:
                continue
            pairs = [(where[c, vi], where[c, vj]) for c in mine if (c, vj) in where]
            if not pairs:
                continue
            a = np.stack([all32[s][i] for (s, i), _ in pairs])
            b = np.stack([all32[s][i] for _, (s, i) in pairs])
            r = np.sqrt(((a - b) ** 2).mean(axis=(1, 2, 3)))
            row[vendors[vj]["id"]] = {"mean": float(r.mean()), "median": float(np.median(r)), "n": int(len(r)),
                                      "share_over_0.45": float((r > 0.45).mean())}
        per_vendor[vendors[vi]["id"]] = row
    out["rmse32_vs_existing"] = per_vendor

    # (c) zero-shot label retrieval with the trained image tower
    tower_dir = os.path.join(HERE, "runs", "clip-cpu", "ema", "image_encoder")
    tower = CLIPVisionModelWithProjection.from_pretrained(tower_dir).eval()
    space = CaptionSpace(table)
    cache = TextCache()
    if len(cache.captions) != len(space.captions):
        sys.exit("text cache is stale")
    label_emb = cache.get(np.array([p[0] for p in space.plain]), "cpu")[0].numpy().astype(np.float64)
    rng = np.random.default_rng(0)
    limit = 500

    def sample(idx):
        idx = np.asarray(idx)
        return np.sort(rng.choice(idx, size=limit, replace=False)) if len(idx) > limit else idx

    ret = {}
    for vi in range(len(vendors)):
        vid = vendors[vi]["id"]
        if vi < FIRST_ID:
            groups = {"train": sample(np.flatnonzero((ov == vi) & ~oh)), "heldout": sample(np.flatnonzero((ov == vi) & oh))}
            imgs, tg = old["images64"], oc
        else:
            groups = {"all": sample(np.flatnonzero(nv == vi)), "heldout_concepts": np.flatnonzero((nv == vi) & nh)}
            imgs, tg = new["images64"], nc
        ret[vid] = {}
        for g, idx in groups.items():
            if len(idx) == 0:
                continue
            emb = embed_u8(tower, imgs[idx])
            ranks, _, _ = ranks_of(emb, label_emb, tg[idx].astype(np.int64))
            ret[vid][g] = topk(ranks)
        print(vid, ret[vid], flush=True)
    out["tower"] = tower_dir
    out["zero_shot"] = ret
    path = os.path.join(OUT_DIR, "metrics.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "zero_shot"}, indent=1))
    print(f"wrote {path}")


def sheet(n_rows=12):
    from PIL import Image, ImageDraw

    old, new, meta = load_both()
    table = load_table()
    vendors = meta["vendors"]
    imgs = {}
    for c, v, i in zip(old["concept"].tolist(), old["vendor"].tolist(), range(len(old["concept"]))):
        imgs[c, v] = ("old", i)
    for c, v, i in zip(new["concept"].tolist(), new["vendor"].tolist(), range(len(new["concept"]))):
        imgs[c, v] = ("new", i)
    counts = {}
    for c, v in imgs:
        counts[c] = counts.get(c, 0) + 1
    # concepts drawn by every style, spread over the CLDR order (deterministic), plus flags/skin if available
    full = [c for c in sorted(counts) if counts[c] == len(vendors)]
    picks = [full[int(i)] for i in np.linspace(0, len(full) - 1, n_rows)] if len(full) >= n_rows else full
    cell, pad, label_w = 64, 4, 170
    W = label_w + len(vendors) * (cell + pad)
    H = 18 + len(picks) * (cell + pad)
    canvas = Image.new("RGB", (W, H), (200, 200, 200))
    draw = ImageDraw.Draw(canvas)
    for vi, v in enumerate(vendors):
        draw.text((label_w + vi * (cell + pad), 3), v["id"][:11], fill=(0, 0, 0))
    arrays = {"old": old["images64"], "new": new["images64"]}
    for r, c in enumerate(picks):
        y = 18 + r * (cell + pad)
        draw.text((3, y + 25), table["concepts"][c]["label"][:28], fill=(0, 0, 0))
        for vi in range(len(vendors)):
            if (c, vi) in imgs:
                s, i = imgs[c, vi]
                canvas.paste(Image.fromarray(arrays[s][i]), (label_w + vi * (cell + pad), y))
    path = os.path.join(OUT_DIR, "sheet.png")
    canvas.save(path)
    print(f"wrote {path}: {[table['concepts'][c]['label'] for c in picks]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", action="store_true", help="coverage, RMSE and tower retrieval -> more_art/metrics.json")
    ap.add_argument("--sheet", action="store_true", help="contact sheet -> more_art/sheet.png")
    ap.add_argument("--skip-build", action="store_true", help="reuse an existing emoji64-more.npz")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if not args.skip_build:
        build()
    if args.sheet:
        sheet()
    if args.measure:
        measure(args.threads)


if __name__ == "__main__":
    main()
