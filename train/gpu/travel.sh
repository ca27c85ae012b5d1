#!/usr/bin/env bash
# What the device tool sends is the working tree (tracked and untracked-not-ignored files) plus the carried paths,
# 64 MiB at most (train/gpu/README.md). The repository is larger (the shipped model, the test fixtures), and the
# GPU run needs only train/ (with RUN's state alone of train/state/), the shipped text encoder, the payload and the
# wheels of what the GPU machine's Python lacks: `park` moves every other file out of the tree, to
# /tmp/unclip-parked, for the device call, and `unpark` puts them back.
#   bash train/gpu/travel.sh wheels    download the carried wheels into .whl/ (git-ignored through .git/info/exclude)
#   bash train/gpu/travel.sh size      what would travel now, and after `park`
#   bash train/gpu/travel.sh list      the files of the tree that travel after `park`, NUL-separated (rehearse.sh)
#   bash train/gpu/travel.sh park      (refuses if the parked tree would still be over the limit)
#   bash train/gpu/travel.sh unpark
# Nothing else may use the tree between park and unpark (the build and the tests need the parked files).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN:-decoder16-cpu}
CARRIED=(train/data/gpu-payload.npz .whl)
# the GPU machine's image has torch and transformers but no diffusers (the device tool's KINDS.md); Python 3.12
WHEELS=(diffusers==0.42.1 importlib_metadata==10.2.0)
PARKED=/tmp/unclip-parked
LIMIT=$((64 * 1024 * 1024))

travelling() { git ls-files -z -co --exclude-standard | xargs -0 -r stat -c '%s %n' 2>/dev/null || true; }
needed() { [[ $1 == train/* && ($1 != train/state/* || $1 == train/state/$RUN/*) ]] || [[ $1 == models/unclip-emoji/text_encoder.gguf ]]; }
to_keep() { travelling | while read -r size name; do if needed "$name"; then printf '%s\0' "$name"; fi; done; }
to_park() { travelling | while read -r size name; do if ! needed "$name"; then printf '%s\0' "$name"; fi; done; }
total() { awk '{s += $1} END {print s + 0}'; }
carried() { du -cb "${CARRIED[@]}" 2>/dev/null | tail -1 | cut -f1; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
after_park() { echo $(( $(travelling | total) - $(to_park | xargs -0 -r stat -c %s | total) + $(carried) )); }

case ${1-} in
  wheels)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >>.git/info/exclude
    "${PY:-.venv/bin/python}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 -d .whl "${WHEELS[@]}"
    ls -l .whl
    ;;
  size)
    now=$(travelling | total)
    echo "travels now: $(mib $((now + $(carried)))) (tree $(mib "$now") + carried $(mib "$(carried)")); after park: $(mib "$(after_park)") of $(mib $LIMIT)"
    ;;
  list) to_keep ;;
  park)
    for c in "${CARRIED[@]}"; do [[ -e $c ]] || { echo "no $c: see train/gpu/README.md step 1" >&2; exit 1; }; done
    [[ ! -e $PARKED ]] || { echo "$PARKED exists: unpark first" >&2; exit 1; }
    left=$(after_park)
    ((left <= LIMIT)) || { echo "the parked tree and the carried files would still be $(mib "$left"), over $(mib $LIMIT)" >&2; exit 1; }
    mkdir -p "$PARKED"
    to_park >"$PARKED.list"
    xargs -0 -r cp --parents -t "$PARKED" <"$PARKED.list"  # copied first: a failed copy removes nothing
    xargs -0 -r rm -- <"$PARKED.list" && rm "$PARKED.list"
    echo "parked $(find "$PARKED" -type f | wc -l) files in $PARKED; travels: $(mib "$left")"
    ;;
  unpark)
    [[ -d $PARKED ]] || { echo "nothing parked ($PARKED is missing)" >&2; exit 1; }
    (cd "$PARKED" && find . -type f -print0 | xargs -0 cp --parents -t "$OLDPWD")
    rm -rf "$PARKED"
    if git status --short | grep '^ D'; then echo "files are still missing after unpark" >&2; exit 1; fi
    echo "unparked; no tracked file is missing"
    ;;
  *) echo "usage: bash train/gpu/travel.sh wheels|size|list|park|unpark" >&2; exit 2 ;;
esac
