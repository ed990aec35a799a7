#!/usr/bin/env bash
# The masked-FER studies on a photo data set (docs/photos.md, "Photo data sets"), with the shipped FER2013 models
# (CPU, fp32): faces found and aligned from the photos (photos:DIR), masks painted on the photos.
#   1. the detection rate per class (data info);
#   2. compare with the lower-half hole and with photo-painted masks: the judge on full / occluded / each
#      reconstruction / the classical fills, and the upper-half reader's cross row; every photo is scored
#      (the FER2013 models never saw this set);
#   3. the 3-class valence view of the photo-mask comparison;
#   4. the five classical families fitted on the set's train split, full and photo-masked, scored on its
#      test split (the stratified 80/10/10 split every class-folder set gets).
# Usage: DATA=../shared/data/photos-wild OUT=runs/photo-studies bash scripts/photo_studies.sh
set -euo pipefail
DATA=${DATA:-../shared/data/photos-wild}
OUT=${OUT:-runs/photo-studies}
UNVEIL=${UNVEIL:-unveil}
PRECISION=${PRECISION:-fp32}
mkdir -p "$OUT/baseline"
acc() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"{100*r['accuracy']:.2f} % (n {r['n']})\")" "$1"; }

$UNVEIL data info "photos:$DATA" | tee "$OUT/info.txt"
$UNVEIL data info "photos:$DATA" --json > "$OUT/info.json"

for occ in lower-half photo-mask; do
  $UNVEIL compare --data "photos:$DATA" --split all --occlusion "$occ" --cross classifier_occluded --per-class 1 \
    --precision "$PRECISION" --no-wandb --json --out "$OUT/compare-$occ" > "$OUT/compare-$occ.json"
done
$UNVEIL compare --data "photos:$DATA" --split all --occlusion photo-mask --cross classifier_occluded \
  --classes valence --per-class 1 --precision "$PRECISION" --no-wandb --json --out "$OUT/compare-valence" \
  > "$OUT/compare-valence.json"

for model in logreg naive_bayes kmeans random_forest svm; do
  for occ in none photo-mask; do
    name="$model-$occ"
    $UNVEIL baseline "$model" --data "photos:$DATA" --occlusion "$occ" --jobs "${JOBS:-2}" --json \
      --out "$OUT/baseline/$name" > "$OUT/baseline/$name.json"
    echo "$name: $(acc "$OUT/baseline/$name.json")"
  done
done
