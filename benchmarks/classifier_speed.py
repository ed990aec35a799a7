"""Classifier speed: seconds per training epoch and images/s for training and inference, as a table.

The training numbers come from the real loop (`fit_classifier`: data resident on the device, GPU
augmentation, bf16 autocast and channels-last on CUDA); the first epoch (warm-up, cuDNN autotuning,
compilation) is left out of the median. Faces are random uint8 images: speed does not depend on them.

    python benchmarks/classifier_speed.py --arch tiny_cnn shared_cnn vgg        # GPU: 28,709 faces
    python benchmarks/classifier_speed.py --device cpu                          # CPU: a small slice
"""

from __future__ import annotations

import argparse
import time

import torch

from unveil.classify.condition import Condition
from unveil.classify.config import default_train
from unveil.classify.evaluate import predict_proba
from unveil.classify.models import CLASSIFIERS, create_classifier
from unveil.classify.train import fit_classifier
from unveil.data import Faces
from unveil.runtime import pick_device

FER_TRAIN = 28_709  # FER2013 Training faces


def random_faces(n: int, seed: int = 0) -> Faces:
    g = torch.Generator().manual_seed(seed)
    return Faces(torch.randint(0, 256, (n, 48, 48), dtype=torch.uint8, generator=g),
                 torch.randint(0, 7, (n,), generator=g), torch.zeros(n, dtype=torch.int8), [str(i) for i in range(n)])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(arch: str, device: torch.device, n: int, batch: int, epochs: int, occlusion: str | None,
          compile_: bool, ema: float) -> dict:
    faces = random_faces(n)
    model = create_classifier(arch)
    cfg = default_train()
    cfg.epochs, cfg.batch_size, cfg.ema, cfg.compile = epochs, batch, ema, compile_
    model, history = fit_classifier(model, faces, None, cfg, None, device, Condition.build(occlusion), progress=False)
    seconds = [r["seconds"] for r in history["epochs"][1:]] or [history["epochs"][0]["seconds"]]
    per_epoch = sorted(seconds)[len(seconds) // 2]
    images = faces.float_images().to(device)
    out = {"arch": arch, "params": sum(p.numel() for p in model.parameters()), "s/epoch": per_epoch,
           "train img/s": (n // batch) * batch / per_epoch}
    for tta in (False, True):
        predict_proba(model, images[:batch], tta=tta)  # warm-up
        sync(device)
        started = time.perf_counter()
        predict_proba(model, images, tta=tta)
        sync(device)
        out["infer img/s" + (" (TTA)" if tta else "")] = n / (time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["shared_cnn", "vgg"], choices=CLASSIFIERS.names())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--n", type=int, help=f"training faces (default {FER_TRAIN:,} on CUDA, 256 on the CPU)")
    parser.add_argument("--epochs", type=int,
                        help="epochs per arch; the first is warm-up (default 3 on CUDA, 2 on the CPU)")
    parser.add_argument("--occlusion", help="train under this occlusion, e.g. lower-half or mask")
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay (0: off)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training forward (CUDA)")
    args = parser.parse_args()

    device = pick_device(args.device)
    cuda = device.type == "cuda"
    n, epochs = args.n or (FER_TRAIN if cuda else 256), args.epochs or (3 if cuda else 2)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"classifier speed on {name}, torch {torch.__version__}: {n:,} faces, batch {args.batch}, "
          f"occlusion {args.occlusion or 'none'}, EMA {args.ema}, compile {args.compile}")
    rows = [bench(a, device, n, args.batch, epochs, args.occlusion, args.compile, args.ema) for a in args.arch]
    header = f"{'arch':<12}{'params':>11}{'s/epoch':>10}{'train img/s':>13}{'infer img/s':>13}{'infer TTA img/s':>17}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['arch']:<12}{r['params']:>11,}{r['s/epoch']:>10.3f}{r['train img/s']:>13,.0f}"
              f"{r['infer img/s']:>13,.0f}{r['infer img/s (TTA)']:>17,.0f}")
    if n != FER_TRAIN:
        print(f"(s/epoch is for {n:,} faces; a FER2013 epoch of {FER_TRAIN:,} takes about "
              + ", ".join(f"{r['arch']} {r['s/epoch'] * FER_TRAIN / n:.1f} s" for r in rows) + ")")


if __name__ == "__main__":
    main()
