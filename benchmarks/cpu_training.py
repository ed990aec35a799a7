"""Training at the hardware's limit: for every trainable model, images/s through the real training step,
the FLOPs that step does (counted, not estimated), the GFLOP/s achieved, and that as a share of this
machine's practical peak, measured by the same script as a large fp32 and bf16 matrix product.

    python benchmarks/cpu_training.py                                   # every model, as configured
    python benchmarks/cpu_training.py --models judge --precision fp32 bf16 --batch 64 128 256
    python benchmarks/cpu_training.py --models judge --compile          # torch.compile (inductor)

Each model trains as its FER2013 config says (`configs/`: losses, augmentation, occlusion, EMA,
optimiser; the generators with their shipped conditioner and guide), on random faces: speed does not
depend on them. A step is `Trainer.train_step`, everything included (augmentation, masks, conditioning,
every loss, backward, optimiser, EMA); the first two are warm-up. `epoch` is FER2013 Training's 28,709
faces at that speed (validation not included). FLOPs are those of the matrix products and convolutions
of one step, forward and backward (torch.utils.flop_counter), per training image.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from unveil.classify.condition import Condition
from unveil.classify.config import load_classifier_config
from unveil.classify.models import create_classifier
from unveil.classify.train import ClassifierTask
from unveil.data.faces import Faces
from unveil.inpaint.config import load_inpaint_config
from unveil.inpaint.segmenter_train import SegmenterTask, load_segmenter_config
from unveil.inpaint.train import build_trainer
from unveil.runtime import pick_device, resolve_precision
from unveil.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
FER_TRAIN = 28_709
CLASSIFIERS = {"judge": "classifier_fer_full", "reader": "classifier_fer_occluded", "guide": "classifier_fer_guide"}
INPAINTERS = {"unet": "inpaint_fer_unet", "ra_unet": "inpaint_fer_ra_unet", "resnet_cgan": "inpaint_fer_resnet_cgan"}
MODELS = (*CLASSIFIERS, *INPAINTERS, "segmenter")


def random_faces(n: int) -> Faces:
    g = torch.Generator().manual_seed(0)
    splits = torch.zeros(n, dtype=torch.int8)
    splits[-16:] = 1  # a few val faces: the generator tasks need some
    return Faces(torch.randint(0, 256, (n, 48, 48), dtype=torch.uint8, generator=g), torch.arange(n) % 7, splits,
                 [str(i) for i in range(n)], "random", "bench")


def overrides(batch: int, steps: int, precision: str, compile_: bool) -> list[str]:
    return [f"train.batch_size={batch}", f"train.steps_per_epoch={steps}", f"train.precision={precision}",
            f"train.compile={str(compile_).lower()}", "data.source=synthetic", "device=cpu"]


def build(name: str, batch: int, steps: int, precision: str, compile_: bool, folder: str) -> Trainer:
    """The trainer a real run of `name` builds, on random faces."""
    faces, options = random_faces(batch * steps + 16), overrides(batch, steps, precision, compile_)
    device = pick_device("cpu")
    if name in CLASSIFIERS:
        cfg = load_classifier_config(ROOT / "configs" / f"{CLASSIFIERS[name]}.yaml", options)
        model = create_classifier(cfg.model.arch, **cfg.model.args)
        task = ClassifierTask(model, faces.split("train"), None, cfg.train, cfg.loss, device,
                              Condition.from_config(cfg.condition))
        return Trainer(task, cfg.train, "accuracy", progress=False, device=device)
    if name in INPAINTERS:
        cfg = load_inpaint_config(ROOT / "configs" / f"{INPAINTERS[name]}.yaml", options)
        _shipped_classifiers(cfg)
        return build_trainer(cfg, folder, faces=faces)
    cfg = load_segmenter_config(ROOT / "configs" / "segmenter_fer.yaml", options)
    return Trainer(SegmenterTask(cfg, faces, device), cfg.train, "iou", progress=False, device=device)


def _shipped_classifiers(cfg) -> None:
    """The configs name the conditioner and guide relative to the repository root."""
    if cfg.model.conditioning:
        cfg.model.conditioning = str(ROOT / cfg.model.conditioning)
    if cfg.loss.guide:
        cfg.loss.guide = str(ROOT / cfg.loss.guide)


def measure(name: str, batch: int, steps: int, precision: str, compile_: bool) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        trainer = build(name, batch, steps + 3, precision, compile_, folder)
        batches = trainer.task.batches(0, 0)
        for _ in range(2):  # warm-up: oneDNN's kernel choice, the allocator, compilation
            trainer.train_step(next(batches))
        with FlopCounterMode(display=False) as counter:
            trainer.train_step(next(batches))
        started = time.perf_counter()
        for batch_ in batches:
            trainer.train_step(batch_)
        seconds = time.perf_counter() - started
    params = sum(p.numel() for m in trainer.task.models.values() for p in m.parameters())
    return {"images_per_s": steps * batch / seconds, "gflop_per_image": counter.get_total_flops() / batch / 1e9,
            "params": params}


def matmul_peak(dtype: torch.dtype, size: int = 4096, repeats: int = 3, trials: int = 3) -> float:
    """GFLOP/s of a large square matrix product, the best of `trials`: the practical peak of this
    machine in `dtype` (oneDNN/MKL at their best; 4096 beat 1024 and 2048 here)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(trials):
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * size ** 3 * repeats / (time.perf_counter() - started) / 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description="Training throughput per model against the machine's matmul peak.")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--precision", nargs="+", choices=("auto", "fp32", "bf16"), default=["auto"])
    parser.add_argument("--batch", nargs="+", type=int, default=[0], help="0: the model's config (default)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per row (default 6)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the classifiers (inductor)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    cpu = pick_device("cpu")
    print(f"CPU, {torch.get_num_threads()} threads; matmul peak: fp32 {peak['fp32']:.0f} GFLOP/s, "
          f"bf16 {peak['bf16']:.0f} GFLOP/s (4096x4096); torch {torch.__version__}")
    print(f"{'model':<12}{'precision':>10}{'batch':>7}{'params':>9}{'img/s':>9}{'epoch':>9}{'GFLOP/img':>11}"
          f"{'GFLOP/s':>9}{'of peak':>9}")
    for name in args.models:
        for precision in args.precision:
            for batch in args.batch:
                size = batch or _configured_batch(name)
                row = measure(name, size, args.steps, precision, args.compile)
                resolved = resolve_precision(cpu, precision)
                achieved = row["gflop_per_image"] * row["images_per_s"]
                print(f"{name:<12}{resolved:>10}{size:>7}{row['params'] / 1e6:>8.2f}M{row['images_per_s']:>9.1f}"
                      f"{FER_TRAIN / row['images_per_s'] / 60:>7.1f}min{row['gflop_per_image']:>11.3f}"
                      f"{achieved:>9.0f}{100 * achieved / peak[resolved]:>8.0f}%", flush=True)


def _configured_batch(name: str) -> int:
    if name in CLASSIFIERS:
        return load_classifier_config(ROOT / "configs" / f"{CLASSIFIERS[name]}.yaml").train.batch_size
    if name in INPAINTERS:
        return load_inpaint_config(ROOT / "configs" / f"{INPAINTERS[name]}.yaml").train.batch_size
    return load_segmenter_config(ROOT / "configs" / "segmenter_fer.yaml").train.batch_size


if __name__ == "__main__":
    main()
