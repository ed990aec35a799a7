#!/usr/bin/env bash
# Reading real faces (docs/real-faces.md): train the photo judge and the photo reader on the data mix, fit
# the one reading on the val splits, then read each test split once. CPU, bf16 where native.
#   STAGE=train bash scripts/real_faces.sh      # the two trainings (resume with RESUME=--resume)
#   STAGE=fit   bash scripts/real_faces.sh      # the fusion, on FER2013 PublicTest, KDEF val, ExpW val
#   STAGE=val   bash scripts/real_faces.sh      # selection numbers: every val split, shipped vs new models
#   STAGE=test  bash scripts/real_faces.sh      # the reported numbers: every test split, once
# A reader not yet shipped: READER=runs/real-faces/reader/best for fit, val and test (the fusion fitted for it is
# OUT/fusion/fusion, used by val and test whenever READER is given).
set -euo pipefail
OUT=${OUT:-runs/real-faces}
DATA=${DATA:-../shared/data}
VOTES=$DATA/ferplus/ferplus_votes.csv
NEW=()
if [ -n "${READER:-}" ]; then NEW=(--reader "$READER" --fusion "$OUT/fusion/fusion"); fi
mkdir -p "$OUT"
readings() {  # SPLIT NAME SOURCE OCCLUSION [ANGLES] [MODELS...]
  local split=$1 name=$2 source=$3 occ=$4 angles=$5; shift 5
  python benchmarks/photo_readings.py --data "$source" --split "$split" --occlusion "$occ" \
    ${angles:+--angles "$angles"} --json "$OUT/$split-$name.json" "${NEW[@]}" "$@" | tee "$OUT/$split-$name.txt"
}
case "${STAGE:-}" in
  train)
    unveil train-classifier --config configs/classifier_photos_full.yaml --out "$OUT/judge" ${RESUME:-}
    unveil train-classifier --config configs/classifier_photos_reader.yaml --out "$OUT/reader" ${RESUME:-} ;;
  fit)
    unveil fit-fusion --data "$DATA/fer2013" --occlusion lower-half --data "photos:$DATA/kdef" \
      --occlusion photo-mask --data "photos:$DATA/expw" --occlusion photo-mask ${READER:+--reader "$READER"} \
      --out "$OUT/fusion/fusion" ;;
  val|test)
    split=$STAGE
    unveil eval-classifier classifier_photos --data "$DATA/fer2013" --split "$split" --votes "$VOTES" --bootstrap 0 \
      --out "$OUT/$split-fer2013-judge" | tee "$OUT/$split-fer2013-judge.txt"
    readings "$split" fer2013 "$DATA/fer2013" lower-half ""
    readings "$split" kdef-front "photos:$DATA/kdef" photo-mask S,HL,HR
    readings "$split" kdef-front-lower "photos:$DATA/kdef" lower-half S,HL,HR
    readings "$split" expw "photos:$DATA/expw" photo-mask ""
    if [ "$split" = val ]; then   # the shipped FER2013 models on the same val faces, for selection
      old=(--judge classifier_full --reader classifier_occluded --fusion "")
      readings val fer2013-old "$DATA/fer2013" lower-half "" "${old[@]}"
      readings val kdef-front-old "photos:$DATA/kdef" photo-mask S,HL,HR "${old[@]}"
      readings val expw-old "photos:$DATA/expw" photo-mask "" "${old[@]}"
    fi ;;
  *) echo "STAGE must be train, fit, val or test" >&2; exit 2 ;;
esac
