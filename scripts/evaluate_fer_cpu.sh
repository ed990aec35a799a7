#!/usr/bin/env bash
# The FER2013 numbers of docs/models.md: every shipped model on PrivateTest, on the CPU, once.
#
#   DATA=../shared/data/fer2013 OUT=runs/fer-eval bash scripts/evaluate_fer_cpu.sh
#
# fp32 by default, so the numbers are the same on any machine (PRECISION=auto: bf16 where native).
# Each classifier on full and on lower-half-occluded faces (with and without flip/shift TTA), then
# `unveil compare` over the three shipped generators and the classical baselines with the
# cross-condition matrix. Results land in OUT as JSON (one file per command) plus the compare report.
set -euo pipefail
DATA=${DATA:-../shared/data/fer2013}
OUT=${OUT:-runs/fer-eval}
UNVEIL=${UNVEIL:-unveil}
PRECISION=${PRECISION:-fp32}
mkdir -p "$OUT/eval"

for clf in classifier_full classifier_occluded classifier_guide; do
  for occ in none lower-half; do
    for tta in "" --tta; do
      name="$clf-$occ${tta:+-tta}"
      $UNVEIL eval-classifier "$clf" --data "$DATA" --split test --occlusion "$occ" $tta --precision "$PRECISION" \
        --json --out "$OUT/eval/$name" > "$OUT/eval/$name.json"
      echo "$name: $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"{100*r['accuracy']:.2f} %\")" "$OUT/eval/$name.json")"
    done
  done
done

$UNVEIL compare --data "$DATA" --split test --cross classifier_occluded --per-class 1 --precision "$PRECISION" --out "$OUT/compare" --no-wandb --json \
  > "$OUT/compare.json"
echo "compare: $OUT/compare/report.md"
