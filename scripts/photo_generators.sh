#!/usr/bin/env bash
# The generators for the holes real masks make (issue "Reconstructions for real masks", docs/real-masks.md).
#   bash scripts/photo_generators.sh [unet ra_unet resnet_cgan]   # train, one after the other; each resumes
#   STAGE=val  bash scripts/photo_generators.sh   # selection: the shipped and the new generators on the val splits
#   STAGE=test bash scripts/photo_generators.sh   # the reported numbers: the test splits, once
# Every generator is scored by `unveil compare` beside the classical fills with the same judge (the photo judge,
# classifier_photos) on the same faces, and the upper-half reader (classifier_photos_occluded) as the cross
# classifier and in the one reading: FER2013 with the lower-half hole, KDEF and ExpW with masks painted on their
# photos. INPAINTERS names the generators (default: the shipped ones, then the three runs above).
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/photo-generators}
NEW=runs/inpaint-photos-unet/best,runs/inpaint-photos-ra-unet/best,runs/inpaint-photos-resnet-cgan/best
OLD=${OLD:-inpainter_unet,inpainter_ra_unet,inpainter_resnet_cgan}
compare() {  # SPLIT NAME SOURCE OCCLUSION INPAINTERS
  unveil compare --data "$3" --split "$1" --occlusion "$4" --classifier classifier_photos \
    --cross classifier_photos_occluded --reader classifier_photos_occluded --inpainters "$5,telea,navier_stokes" \
    --bootstrap "${BOOT:-0}" --per-class 2 --no-wandb --json --out "$OUT/$1-$2" > "$OUT/$1-$2.json"
}
case "${STAGE:-train}" in
  train)
    for one in ${@:-unet ra_unet resnet_cgan}; do
      out="runs/inpaint-photos-${one//_/-}"
      resume=(); [ -f "$out/last.json" ] && resume=(--resume)
      unveil train-inpainter --config "configs/inpaint_photos_${one}.yaml" --out "$out" "${resume[@]}"
    done ;;
  val|test)
    mkdir -p "$OUT"
    inpainters=${INPAINTERS:-$OLD,$NEW}
    compare "$STAGE" fer2013 "$DATA/fer2013" lower-half "$inpainters"
    compare "$STAGE" kdef "photos:$DATA/kdef" photo-mask "$inpainters"
    compare "$STAGE" expw "photos:$DATA/expw" photo-mask "$inpainters" ;;
  *) echo "STAGE must be train, val or test" >&2; exit 2 ;;
esac
