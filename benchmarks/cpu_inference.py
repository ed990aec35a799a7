"""CPU inference speed of the shipped models: whole `unveil` commands as a user meets them, a photo
through `predict`, and the judge's batch throughput. Medians of several runs; one table.

    python benchmarks/cpu_inference.py --data ../shared/data/fer2013     # the targets' setting
    python benchmarks/cpu_inference.py                                    # synthetic faces instead

Targets on this project's 2-core CPU:
- eval-classifier on PrivateTest <= 10 s, <= 20 s with TTA; compare with every condition, the cross
  matrix and the gallery <= 2 min (whole processes: start, imports and cached data included);
- a 640x480 photo: detection and alignment <= 100 ms; one aligned face reconstructed and classified
  (hole, generator, the judge on three crops, the upper-half reader) <= 20 ms;
- the judge on a batch: >= 2,000 faces/s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

COMMANDS = [  # (what, arguments after `unveil`, target in seconds)
    ("eval-classifier, PrivateTest", ["eval-classifier", "classifier_full", "--split", "test"], 10),
    ("eval-classifier, PrivateTest, TTA (10 views)", ["eval-classifier", "classifier_full", "--split", "test",
                                                      "--tta"], 20),
    ("compare: 8 conditions, cross matrix, gallery", ["compare", "--split", "test", "--cross", "classifier_occluded",
                                                      "--no-wandb"], 120),
]


def timed(work, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times


def command_rows(data: str, repeats: int) -> list[tuple[str, list[float], float]]:
    with tempfile.TemporaryDirectory() as tmp:
        cli = [sys.executable, "-m", "unveil.pipelines.cli"]
        subprocess.run([*cli, "data", "info", data], capture_output=True, check=True)  # decode once, then cached
        rows = []
        for k, (what, args, target) in enumerate(COMMANDS):
            def run(args=args, out=Path(tmp) / f"out{k}"):   # one folder per command: compare replaces only its own
                proc = subprocess.run([*cli, *args, "--data", data, "--out", str(out)],
                                      capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(f"failed: unveil {' '.join(args)}\n{proc.stderr}")
            rows.append((what, timed(run, repeats), target))
        return rows


def photo_rows(repeats: int) -> list[tuple[str, list[float], float]]:
    from unveil.photo import align_face
    from unveil.pipelines.predict import Predictor, sample_photo

    predictor = Predictor(hole="auto", device="cpu")
    rgb = np.asarray(Image.fromarray(sample_photo()[0]).resize((640, 480), Image.Resampling.BILINEAR))
    face = predictor.detector.detect(rgb)[0]

    def detect_and_align():
        found = predictor.detector.detect(rgb)
        align_face(rgb, found[0])

    for work in (detect_and_align, lambda: predictor.read_face(rgb, face)):
        work()  # warm-up: oneDNN picks its kernels on the first call
    return [("photo 640x480: detection + alignment", [t / 1000 for t in _ms(detect_and_align, repeats)], 0.1),
            ("one face: hole (segmenter) + generator + judge x3 + reader",
             [t / 1000 for t in _ms(lambda: predictor.read_face(rgb, face), repeats)], 0.02)]


def _ms(work, repeats: int) -> list[float]:
    return [1000 * t for t in timed(work, repeats)]


def judge_throughput(repeats: int) -> tuple[str, list[float], float]:
    from unveil.classify import open_classifier, predict_proba
    from unveil.runtime import fused_for_inference

    judge = fused_for_inference(open_classifier("classifier_full")[0])
    images = torch.rand(3584, 1, 48, 48)
    predict_proba(judge, images[:256])
    rates = [len(images) / t for t in timed(lambda: predict_proba(judge, images), repeats)]
    return "judge, batch inference (faces/s; target is a floor)", rates, 2000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="synthetic:n=36000,seed=0",
                        help="FER2013 (../shared/data/fer2013) for the targets; default: as many synthetic faces")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command (photo timings: 10x more)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"data: {args.data}; torch {torch.__version__}, {torch.get_num_threads()} threads; medians\n")
    print("| what | median | min-max | target | met |\n|---|---|---|---|---|")
    for what, values, target in [*command_rows(args.data, args.repeats), *photo_rows(10 * args.repeats)]:
        unit, k = ("ms", 1000) if target < 1 else ("s", 1)
        median = statistics.median(values)
        print(f"| {what} | {median * k:.1f} {unit} | {min(values) * k:.1f}-{max(values) * k:.1f} | "
              f"<= {target * k:g} {unit} | {'yes' if median <= target else 'no'} |", flush=True)
    what, rates, floor = judge_throughput(args.repeats)
    median = statistics.median(rates)
    print(f"| {what} | {median:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} | >= {floor:,.0f} | "
          f"{'yes' if median >= floor else 'no'} |")


if __name__ == "__main__":
    main()
