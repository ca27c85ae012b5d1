#!/usr/bin/env bash
# The example strips of docs/remix.md, made with the CLI from a converted model directory.
#   docs/remix/make_grids.sh MODEL_DIR      (e.g. models/unclip-emoji, or a fresh `unclip convert` of an export)
# Every strip uses the CLI defaults (the model's recommended settings where model.json has them, else diffusers') and seed 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
model="${1:?usage: docs/remix/make_grids.sh MODEL_DIR}"
out=docs/remix
g=www/gallery
cargo build --release --bin unclip
u() { ./target/release/unclip "$@" --model "$model" --seed 0; }
u variations --image $g/dog-face.png --count 4 --out $out/variations-dog.png
u variations --image $g/dog-face.png --count 4 --invert --eta 0.5 --sampler ddim --out $out/variations-dog-inverted.png
u interpolate --from-image $g/dog-face.png --to-image $g/pizza.png --frames 6 --out $out/interpolate-dog-pizza.png \
  --animation $out/interpolate-dog-pizza-anim.png
u interpolate --from-text "a happy dog" --to-text "a red heart" --frames 6 --out $out/interpolate-text.png
u text-diff --image $g/cat-face.png --from "a cat" --to "a dog" --frames 5 --out $out/text-diff-cat-dog.png
u embed --image $g/dog-face.png > $out/embedding-dog.json
