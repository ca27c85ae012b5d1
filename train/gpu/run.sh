#!/usr/bin/env bash
# The decoder's GPU run, as one command on a lent machine (train/gpu/README.md). From the repository's root there:
#   bash train/gpu/run.sh [MINUTES]        (default 6: the command, unpacking and measuring included, fits 10 min)
# It unpacks the carried payload (train/data/gpu-payload.npz), restores RUN from train/state/, embeds every caption
# on the GPU (the text cache), trains the decoder from that state's EMA to the wall-clock deadline with a compact
# snapshot in $OUT/RUN/ every SNAPSHOT_MINUTES (so a run cut off still returns weights), and ends with the
# decoder-alone measure (train/stage_metrics.py) in $OUT/curve.csv. Everything it writes under $OUT is at most
# 6 files, one folder down, none over 16 MiB: what the device tool brings back.
# Environment: OUT (required), RUN (decoder16-cpu), SIZE (16), PRESET (cpu), BATCH (256), SNAPSHOT_MINUTES (2),
# DECODER_IMAGES (all 330), THREADS (all cores), PY (python3), INSTALL_WHEELS (install .whl/ even where
# diffusers imports), and DECODER_FLAGS (more train_decoder.py flags).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?OUT names the folder whose files come back}"
PY=${PY:-python3}
MINUTES=${1:-6}
RUN=${RUN:-decoder16-cpu}
SIZE=${SIZE:-16}
PRESET=${PRESET:-cpu}
BATCH=${BATCH:-256}
read -ra FLAGS <<<"${DECODER_FLAGS-}"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 UNCLIP_MINILM_DIR=$PWD/train/data/minilm
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
start=$SECONDS
stamp() { echo "== $(date -u +%H:%M:%S) (+$((SECONDS - start)) s) $*"; }

# the carried wheels (travel.sh wheels) of what the machine's Python lacks: diffusers
if [[ -n ${INSTALL_WHEELS-} ]] || ! "$PY" -c "import diffusers" 2>/dev/null; then
  stamp "install .whl/"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$PWD/.site" .whl/*.whl
  export PYTHONPATH=$PWD/.site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      'diffusers', diffusers.__version__, 'from', diffusers.__path__[0], 'transformers', transformers.__version__)"

stamp "unpack"
[[ -f train/data/emoji64.npz ]] || "$PY" train/gpu/payload.py unpack
"$PY" train/state.py restore "$RUN"
if [[ ! -f train/data/text_cache/mask.npy ]]; then
  stamp "text cache (every caption through MiniLM)"
  "$PY" train/text_encoder.py
fi
stamp "train $RUN for $MINUTES min"
"$PY" train/train_decoder.py --preset "$PRESET" --run "$RUN" --size "$SIZE" --resume --steps 1000000000 \
  --max-minutes "$MINUTES" --batch "$BATCH" --snapshot-dir "$OUT" --snapshot-minutes "${SNAPSHOT_MINUTES:-2}" \
  --ckpt-every 1000000000 --log-every 100 ${THREADS:+--threads "$THREADS"} "${FLAGS[@]}"
tail -n 3 "train/runs/$RUN/log.csv"
stamp "decoder-alone measure"
"$PY" train/stage_metrics.py --preset "$PRESET" --only decoder --decoder-run "$RUN" --threads "${THREADS:-$(nproc)}" \
  ${DECODER_IMAGES:+--decoder-images "$DECODER_IMAGES"} --curve "$OUT/curve.csv"
cat "$OUT/curve.csv"
stamp "done"
