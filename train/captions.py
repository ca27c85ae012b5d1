"""Caption space of the emoji dataset: every caption the training sampler can produce is enumerated here,
so train/text_encoder.py can embed them all once and training never runs BERT.

Per concept (CLDR record in train/data/captions.json):
  label forms   "{label}", "a {label} emoji", "a picture of {label}"
  tag forms     "{label}, {tag}" for up to 4 tags (base emoji) or 1 tag (skin-tone variants), taken
                alternately from emojilib keywords and CLDR tags, skipping words already in the label
  style forms   every label form + ", {style} style" for each vendor that draws the concept
Caption 0 is the empty string: the unconditional text used for classifier-free guidance
(UnCLIPPipeline._encode_prompt encodes "" for the uncond half).
"""
import json
import os

import numpy as np

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

LABEL_TEMPLATES = ["{label}", "a {label} emoji", "a picture of {label}"]
TAG_TEMPLATE = "{label}, {tag}"
STYLE_TEMPLATE = "{caption}, {style} style"
MAX_TAGS = {"base": 4, "skin": 1}
STYLE_PROBABILITY = 0.25  # share of training captions that name the image's vendor style


def load_table(path=os.path.join(DATA, "captions.json")):
    return json.load(open(path))


def pick_tags(concept):
    """Interleave emojilib keywords and CLDR tags; drop duplicates and words the label already has."""
    label_words = set(concept["label"].lower().replace(":", " ").split())
    kws, tags = concept["keywords"], concept["tags"]
    merged = [x for pair in zip(kws, tags) for x in pair] + kws[len(tags):] + tags[len(kws):]
    out = []
    for t in merged:
        t = t.strip().lower()
        if t and t not in out and not set(t.split()) <= label_words:
            out.append(t)
    return out[: MAX_TAGS["skin" if concept["skin_tone"] else "base"]]


class CaptionSpace:
    """All captions, with per-concept index lists: plain[ci] (no style suffix) and styled[ci][vendor]."""

    def __init__(self, table):
        self.captions = [""]
        self.plain, self.styled = [], []
        styles = [v["style"] for v in table["vendors"]]
        seen = {"": 0}

        def add(text):
            if text not in seen:
                seen[text] = len(self.captions)
                self.captions.append(text)
            return seen[text]

        for c in table["concepts"]:
            label_forms = [t.format(label=c["label"]) for t in LABEL_TEMPLATES]
            tag_forms = [TAG_TEMPLATE.format(label=c["label"], tag=t) for t in pick_tags(c)]
            self.plain.append([add(x) for x in label_forms + tag_forms])
            self.styled.append({vi: [add(STYLE_TEMPLATE.format(caption=x, style=styles[vi])) for x in label_forms]
                                for vi in c["vendors"]})

    def sample(self, concepts, vendors, rng):
        """One caption id per (concept, vendor) pair; rng is a numpy Generator (deterministic per seed). A vendor
        captions.json does not list for the concept (the extra styles of train/more_art.py) has no style captions: its
        images take the plain pool."""
        out = np.empty(len(concepts), np.int64)
        for i, (ci, vi) in enumerate(zip(concepts, vendors)):
            styled = self.styled[ci].get(int(vi))
            pool = styled if styled and rng.random() < STYLE_PROBABILITY else self.plain[ci]
            out[i] = pool[rng.integers(len(pool))]
        return out
