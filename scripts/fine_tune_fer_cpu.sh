#!/usr/bin/env bash
# Fine-tuning on the CPU (docs/training.md, "Training on a CPU"): the upper-half reader distilled from the judge,
# and the judge itself. Each run selects on PublicTest and reads PrivateTest once at its end
# (metrics.json). Wall times go to runs/fine-tune.log. The control (the reader fine-tuned the same way
# without its teacher) is `--set loss.distill.teacher=null`.
#   bash scripts/fine_tune_fer_cpu.sh                 # about 1.5 hours on this project's 2-core CPU
set -euo pipefail
cd "$(dirname "$0")/.."
log=runs/fine-tune.log
mkdir -p runs
run() {
  local name=$1; shift
  local started=$SECONDS
  unveil train-classifier --half --out "runs/$name" "$@"
  echo "$name $(git rev-parse --short HEAD) $((SECONDS - started)) s $(nproc) cores $(date -u +%FT%TZ)" >> "$log"
}
run fer-reader-distill --config configs/classifier_fer_occluded_distill.yaml
run fer-judge-tune --config configs/classifier_fer_full_tune.yaml
