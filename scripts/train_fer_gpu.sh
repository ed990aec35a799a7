#!/usr/bin/env bash
# Train every shipped FER2013 model in one go on one GPU, then pack the candidates for the trip back.
#
#   DATA=DIR RUNS=DIR [STAGES=classifiers|inpainters] [OCCLUSION=mixed] bash scripts/train_fer_gpu.sh
#
# OCCLUSION trains the generators on another hole (default: their configs' lower half; `mixed` gives
# each face the lower half or a synthetic mask, for photos of masked faces).
# Unveil installs under one import name (unveil.classify, unveil.inpaint, ...), so a machine without the
# install needs the wheel: `pip wheel --no-deps -w dist .` here, then `pip install --no-deps dist/*.whl`
# there (the safetensors wheel too, where it is missing).
# DATA holds FER2013 Training and PublicTest (the archives of ../shared/data/fer2013, or their folders);
# PrivateTest is not needed here: it is evaluated once, afterwards, on the CPU by scripts/evaluate_fer_cpu.sh.
# Order matters: the generators read the occluded-face classifier (conditioning) and the guide from
# checkpoints/, so the classifiers are trained and copied there first. The judge (classifier_full) is
# never inside any generator's loss.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/fer2013}
RUNS=${RUNS:-runs/fer}
UNVEIL=${UNVEIL:-unveil}
mkdir -p "$RUNS" checkpoints

ship() {  # copy a run's selected model into checkpoints/NAME.*
  cp "$RUNS/$1/best.safetensors" "checkpoints/$2.safetensors"
  cp "$RUNS/$1/best.json" "checkpoints/$2.json"
}

STAGES=${STAGES:-"classifiers inpainters"}  # one 10-minute device call may hold only one of them

[[ $STAGES == *classifiers* ]] && for name in full occluded guide; do
  $UNVEIL train-classifier --config "configs/classifier_fer_$name.yaml" --data "$DATA" --out "$RUNS/classifier_$name" --half
  ship "classifier_$name" "classifier_$name"
done
[[ $STAGES == *inpainters* ]] && for gen in unet ra_unet resnet_cgan; do
  $UNVEIL train-inpainter --config "configs/inpaint_fer_$gen.yaml" --set "data.source=$DATA" --out "$RUNS/inpainter_$gen" \
    ${OCCLUSION:+--set "occlusion=$OCCLUSION"}
  ship "inpainter_$gen" "inpainter_$gen"
done

# Two archives (each under the device tool's 16 MB per file): the shipped weights, and every run's
# config, curves, metrics and sample grids.
tar czf "$RUNS/checkpoints.tar.gz" checkpoints
tar czf "$RUNS/runs.tar.gz" $(find "$RUNS" -maxdepth 3 \( -name config.yaml -o -name history.json \
  -o -name metrics.json -o -name '*.png' \))
echo "packed $RUNS/checkpoints.tar.gz and $RUNS/runs.tar.gz"
