#!/usr/bin/env bash
# What the masked-FER studies also report, on FER2013 with the shipped models (CPU, fp32):
#   1. the degenerate-face check, and PrivateTest scored without the flagged faces;
#   2. the 3-class valence view of the comparison (the judge's 7-class probabilities summed per group);
#   3. the classical model families on flattened faces, full and lower-half occluded.
# Usage: DATA=../shared/data/fer2013 OUT=runs/studies bash scripts/masked_fer_studies.sh
set -euo pipefail
DATA=${DATA:-../shared/data/fer2013}
OUT=${OUT:-runs/studies}
UNVEIL=${UNVEIL:-unveil}
PRECISION=${PRECISION:-fp32}
mkdir -p "$OUT/eval" "$OUT/baseline"
acc() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"{100*r['accuracy']:.2f} % (n {r['n']})\")" "$1"; }

$UNVEIL data info "$DATA" --check > "$OUT/check.txt"
$UNVEIL data info "$DATA" --check --json > "$OUT/check.json"
grep -A4 "degenerate faces" "$OUT/check.txt"

for clf in classifier_full classifier_occluded; do
  for occ in none lower-half; do
    name="$clf-$occ-no-degenerate"
    $UNVEIL eval-classifier "$clf" --data "$DATA" --split test --occlusion "$occ" --exclude-degenerate \
      --precision "$PRECISION" --json --out "$OUT/eval/$name" > "$OUT/eval/$name.json"
    echo "$name: $(acc "$OUT/eval/$name.json")"
  done
done

$UNVEIL compare --data "$DATA" --split test --cross classifier_occluded --exclude-degenerate --per-class 1 \
  --precision "$PRECISION" --no-wandb --json --out "$OUT/compare-no-degenerate" > "$OUT/compare-no-degenerate.json"
$UNVEIL compare --data "$DATA" --split test --cross classifier_occluded --classes valence --per-class 1 \
  --precision "$PRECISION" --no-wandb --json --out "$OUT/compare-valence" > "$OUT/compare-valence.json"

for model in logreg naive_bayes kmeans random_forest svm; do
  for occ in none lower-half; do
    name="$model-$occ"
    $UNVEIL baseline "$model" --data "$DATA" --occlusion "$occ" --jobs "${JOBS:-2}" --json \
      --out "$OUT/baseline/$name" > "$OUT/baseline/$name.json"
    echo "$name: $(acc "$OUT/baseline/$name.json")"
  done
done
