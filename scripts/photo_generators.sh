#!/usr/bin/env bash
# The three generators for the holes real masks make (issue "Reconstructions for real masks"), one after the
# other, each resuming where a stopped session left it:  bash scripts/photo_generators.sh  [unet ra_unet resnet_cgan]
set -euo pipefail
for arch in "${@:-unet ra_unet resnet_cgan}"; do
  for one in $arch; do
    out="runs/inpaint-photos-${one//_/-}"
    resume=(); [ -f "$out/last.json" ] && resume=(--resume)
    unveil train-inpainter --config "configs/inpaint_photos_${one}.yaml" --out "$out" "${resume[@]}"
  done
done
