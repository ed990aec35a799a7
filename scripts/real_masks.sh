#!/usr/bin/env bash
# The figures on real masks of docs/photos.md, from ../shared/data/masked-faces (CPU):
#   1. the detector's settings, chosen on real-crops' val split (scripts/choose_detector.py);
#   2. eval-holes on real-crops' TEST split: the shipped pipeline (RetinaFace + the hole model) and the one
#      before it (MTCNN + the first segmenter);
#   3. eval-holes on synthetic-seg/testing (IoU after alignment), both segmenters;
#   4. the hole model on FER2013 PrivateTest faces with held-out synthetic masks (eval-segmenter).
# Selection happened on val (train-segmenter's val split and step 1); this script reads test once.
# Usage: OLD=runs/old-segmenter/segmenter OUT=runs/real-masks bash scripts/real_masks.sh
#   (OLD: the first shipped segmenter, e.g. `git show 7095a72:checkpoints/segmenter.json`, same for .safetensors)
set -euo pipefail
MASKS=${MASKS:-../shared/data/masked-faces}
FER=${FER:-../shared/data/fer2013}
OLD=${OLD:-runs/old-segmenter/segmenter}
OUT=${OUT:-runs/real-masks}
UNVEIL=${UNVEIL:-unveil}
mkdir -p "$OUT"

[ -n "${SKIP_CHOOSE:-}" ] || python scripts/choose_detector.py "$MASKS/real-crops" --split val > "$OUT/choose_detector_val.md"
for setup in "new retinaface segmenter" "old mtcnn $OLD"; do
  set -- $setup
  $UNVEIL eval-holes "$MASKS/real-crops" "$MASKS/synthetic-seg/testing" --split test --detector "$2" \
    --segmenter "$3" --precision fp32 --out "$OUT/eval-holes-$1" > "$OUT/eval-holes-$1.md"
done
$UNVEIL eval-segmenter segmenter --data "$FER" --split test --seed 1 --precision fp32 --json > "$OUT/eval-segmenter.json"
cat "$OUT"/eval-holes-*.md
