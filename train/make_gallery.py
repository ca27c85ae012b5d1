"""The teaching page's gallery (www/gallery/): a few real 64×64 Twemoji renditions from the dataset, with
their provenance in gallery.json. Run after build_dataset.py:  .venv/bin/python train/make_gallery.py"""
import json
import os

import numpy as np
from PIL import Image

LABELS = ["dog face", "pizza", "rocket", "red heart", "cat face", "sun with face", "rainbow", "ghost"]
OUT = os.path.join(os.path.dirname(__file__), "..", "www", "gallery")


def main():
    data = np.load(os.path.join(os.path.dirname(__file__), "data", "emoji64.npz"))
    captions = json.load(open(os.path.join(os.path.dirname(__file__), "data", "captions.json")))
    labels = [c["label"] for c in captions["concepts"]]
    vendor = [v["id"] for v in captions["vendors"]].index("twemoji")
    os.makedirs(OUT, exist_ok=True)
    images = []
    for label in LABELS:
        idx = np.where((data["concept"] == labels.index(label)) & (data["vendor"] == vendor))[0]
        name = label.replace(" ", "-") + ".png"
        Image.fromarray(data["images64"][idx[0]]).save(os.path.join(OUT, name))
        images.append({"file": name, "label": label})
    source = ("Twemoji 16.0.0 via emoji-datasource-twitter: CC-BY-4.0, © Twitter, Inc and other contributors; "
              "composited on white, 64×64")
    json.dump({"source": source, "images": images}, open(os.path.join(OUT, "gallery.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
