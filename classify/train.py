"""Training a classifier: the whole data set resident on the device, augmentation and the condition's
occlusion applied there per batch, bf16 autocast and channels-last on CUDA, an optional EMA of the
weights, selection and early stopping on the val split only, and a run folder that can be resumed.

    model, history = fit_classifier(model, faces.split("train"), faces.split("val"), TrainConfig(epochs=5))
    model = train_quick(load_faces("synthetic:n=3500"))          # seconds on the CPU, for tests
    result = train_from_config(load_classifier_config("configs/classifier_synthetic.yaml"))
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from unveil.augment import Augment
from unveil.classes import NUM_CLASSES
from unveil.config import to_dict
from unveil.data import Faces, load_faces
from unveil.errors import UnveilError
from unveil.io import write_json, write_text
from unveil.metrics import classification_report
from unveil.runtime import (EMA, Progress, autocast, load_training_state, pick_device, prepare_model,
                            save_training_state, seed_everything, warmup_cosine)

from .condition import Condition, LoadReconstruct
from .config import ClassifierConfig, LossConfig, OptimConfig, TrainConfig
from .evaluate import evaluate, predict_proba
from .models import create_classifier, save_classifier

VAL_SEED = 0  # masks of the fixed val (and test) faces: the same for every model, every epoch


# --------------------------------------------------------------------------- losses


def class_weights(labels: torch.Tensor, num_classes: int = NUM_CLASSES, mode: str = "balanced") -> torch.Tensor:
    """Per-class loss weights from training frequencies: `balanced` is n / (M n_c) over the M classes
    present (scikit-learn's `compute_class_weight("balanced")`), `sqrt` its square root (milder),
    `none` all ones. Classes with no faces get weight 1 (they never occur in the loss anyway).

    Shape:
        labels: int [N] -> float32 [C] on the labels' device.
    """
    if mode == "none":
        return torch.ones(num_classes, device=labels.device)
    counts = torch.bincount(labels.long(), minlength=num_classes).float()
    present = int((counts > 0).sum())
    weights = torch.where(counts > 0, len(labels) / (present * counts.clamp_min(1)), torch.ones_like(counts))
    return weights.sqrt() if mode == "sqrt" else weights


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None,
                        label_smoothing: float = 0.0, focal_gamma: float = 0.0) -> torch.Tensor:
    """Cross-entropy, or focal loss (Lin et al. 2017) when `focal_gamma` > 0, with class weights and
    label smoothing; a weighted mean over the batch like `F.cross_entropy(weight=...)`.

    Shape:
        logits: [N, C]; targets: int [N] -> scalar.
    """
    logits = logits.float()
    if focal_gamma <= 0:
        return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
    log_p = logits.log_softmax(1)
    num_classes = logits.shape[1]
    soft = F.one_hot(targets, num_classes).float() * (1 - label_smoothing) + label_smoothing / num_classes
    per_face = -(soft * (1 - log_p.exp()).pow(focal_gamma) * log_p).sum(1)
    w = weight[targets] if weight is not None else torch.ones_like(per_face)
    return (w * per_face).sum() / w.sum()


def make_criterion(cfg: LossConfig, train_labels: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    weight = class_weights(train_labels, mode=cfg.class_weights) if cfg.class_weights != "none" else None
    gamma = cfg.focal_gamma if cfg.name == "focal" else 0.0
    return lambda logits, y: classification_loss(logits, y, weight, cfg.label_smoothing, gamma)


def fgsm_perturb(net: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion, eps: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """One FGSM step of 1.25 eps from a uniform random start, projected onto the L-inf ball of radius
    `eps` around `x` and onto [0, 1] ("fast is better than free", Wong et al. 2020): adversarial
    training at twice the cost of plain training instead of PGD's many steps."""
    start = torch.rand(x.shape, device=x.device, generator=generator).mul_(2 * eps).sub_(eps)
    delta = start.requires_grad_(True)
    with autocast(x.device):
        loss = criterion(net((x + delta).contiguous(memory_format=torch.channels_last)), y)
    grad, = torch.autograd.grad(loss, delta)
    delta = (delta.detach() + 1.25 * eps * grad.sign()).clamp_(-eps, eps)
    return (x + delta).clamp_(0, 1)


# --------------------------------------------------------------------------- optimiser and schedule


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW; no weight decay on biases and BatchNorm parameters."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int):
    """Stepped once per batch: one-cycle (warm up from lr/25, anneal to lr/1e4, momentum cycled),
    cosine with linear warmup down to 0, or constant."""
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=max(total_steps, 2), pct_start=max(cfg.warmup, 1e-3),
            cycle_momentum=True, base_momentum=min(0.85, cfg.momentum), max_momentum=cfg.momentum)
    if cfg.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, int(cfg.warmup * total_steps)))


# --------------------------------------------------------------------------- the loop


def fit_classifier(model: nn.Module, train: Faces, val: Faces | None, cfg: TrainConfig,
                   device: torch.device | str = "cpu", condition: Condition | None = None,
                   out_dir: str | Path | None = None, meta: dict | None = None, resume: bool = False,
                   progress: bool = True, on_epoch_end: Callable[[int, dict], None] | None = None,
                   ) -> tuple[nn.Module, dict]:
    """Train `model` on `train` shown under `condition`; select (and early-stop) on `val`.

    Returns the selected model (the EMA weights when `cfg.ema` > 0) in eval mode on `device`, and the
    history: {"epochs": [per-epoch records], "best_epoch", "best_score", "select", "epochs_run",
    "seconds_per_epoch", "stopped_early"}. Without `val` the last epoch is kept.

    With `out_dir`, every epoch writes `last.*` (the full training state, atomically) and
    `history.json`, and each better epoch `best.*` (a classifier checkpoint whose sidecar is `meta`,
    which must name `arch` and `arch_args`, plus the condition, seed and val scores); `resume` carries
    on from `last.*`. `on_epoch_end(epoch, record)` runs after those files are written.
    """
    device = torch.device(device)
    condition = condition or Condition()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and "arch" not in (meta or {}):
        raise ValueError("fit_classifier with out_dir needs meta with 'arch' and 'arch_args' for best.*")

    model = prepare_model(model, device)
    net = torch.compile(model) if cfg.compile and device.type == "cuda" else model
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    images, labels = train.images.to(device), train.labels.to(device)
    n = len(labels)
    if n < 2:
        raise UnveilError(f"need at least 2 training faces, got {n}")
    batch = min(cfg.batch_size, n)
    steps = n // batch  # the last partial batch is dropped (BatchNorm needs > 1 face)
    optimizer = make_optimizer(model, cfg.optim)
    scheduler = make_scheduler(optimizer, cfg.optim, steps * cfg.epochs)
    criterion = make_criterion(cfg.loss, labels)
    augment = Augment(cfg.augment.flip, cfg.augment.degrees, cfg.augment.scale, cfg.augment.shift,
                      cfg.augment.erase) if cfg.augment.enabled else None
    val_images = None
    if val is not None and len(val):
        val_images = condition.over_set(val.float_images().to(device), VAL_SEED)

    state = {"epoch": 0, "history": [], "best_score": -1.0, "best_epoch": 0, "bad_epochs": 0, "stopped_early": False,
             "ema_updates": 0}
    best_state = None
    if resume:
        if out is None or not (out / "last.json").exists():
            raise UnveilError(f"{out}: nothing to resume (no last.json there)")
        saved = load_training_state(out / "last", {"model": model, "ema": ema and ema.model},
                                    {"optimizer": optimizer, "scheduler": scheduler}, device)
        state = {k: saved.get(k, v) for k, v in state.items()}
        if ema:
            ema.updates = state["ema_updates"]
        if (out / "best.json").exists():
            from .models import load_classifier
            best_state = load_classifier(out / "best", device)[0].state_dict()

    selected = lambda: ema.model if ema else model  # noqa: E731
    bar = Progress(cfg.epochs, "train-classifier", start_epoch=state["epoch"]) if progress else None
    for epoch in range(state["epoch"], cfg.epochs):
        if state["stopped_early"]:  # a resumed run that had already stopped early
            break
        if bar:
            bar.begin_epoch()
        started = time.perf_counter()
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)  # dropout; resumed runs replay the same epochs
        gen = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + epoch)
        order = torch.randperm(n, device=device, generator=gen)
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for step in range(steps):
            idx = order[step * batch:(step + 1) * batch]
            x, y = images[idx].unsqueeze(1).float().div_(255), labels[idx]
            if augment is not None:
                x = augment(x, gen)
            x = condition(x, seed=(cfg.seed * 1_000_003 + epoch) * 100_003 + step)  # fresh masks every batch
            if cfg.adversarial_eps > 0:
                x = fgsm_perturb(net, x, y, criterion, cfg.adversarial_eps, gen)
            with autocast(device):
                logits = net(x.contiguous(memory_format=torch.channels_last))
            loss = criterion(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            scheduler.step()
            if ema:
                ema.update(model)
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
        record = {"epoch": epoch + 1, "train_loss": float(loss_sum) / (steps * batch),
                  "train_accuracy": float(correct) / (steps * batch), "lr": optimizer.param_groups[0]["lr"]}

        improved = True
        if val_images is not None:
            probs = predict_proba(selected(), val_images, cfg.eval_batch_size or None)
            report = classification_report(val.labels, probs, n_boot=0)
            nll = F.nll_loss(probs.clamp_min(1e-8).log(), val.labels.to(probs.device))
            record.update(val_loss=float(nll), val_accuracy=report["accuracy"], val_macro_f1=report["macro_f1"])
            improved = record[f"val_{cfg.select}"] > state["best_score"]
        record["seconds"] = time.perf_counter() - started
        state["history"].append(record)
        state["epoch"] = epoch + 1
        state["ema_updates"] = ema.updates if ema else 0
        if improved:
            state.update(best_score=record.get(f"val_{cfg.select}", 0.0), best_epoch=epoch + 1, bad_epochs=0)
            best_state = {k: v.detach().clone() for k, v in selected().state_dict().items()}
        else:
            state["bad_epochs"] += 1
        state["stopped_early"] = bool(cfg.patience) and state["bad_epochs"] >= cfg.patience and epoch + 1 < cfg.epochs
        if out is not None:
            if improved:
                save_classifier(out / "best", selected(), _best_meta(meta, cfg, condition, state), half=cfg.half)
            save_training_state(out / "last", {"model": model, "ema": ema and ema.model},
                                {"optimizer": optimizer, "scheduler": scheduler}, state)
            write_json(out / "history.json", state["history"])
        if bar:
            shown = {"loss": record["train_loss"]}
            if "val_accuracy" in record:
                shown.update(val_acc=record["val_accuracy"], best=state["best_score"])
            bar.end_epoch(epoch, **shown)
        if on_epoch_end:
            on_epoch_end(epoch, record)

    final = selected()
    if best_state is not None:
        final.load_state_dict(best_state)
    # Hand back the ordinary layout, as load_classifier does, so both predict bit for bit alike.
    final = final.to(memory_format=torch.contiguous_format)
    seconds = [r["seconds"] for r in state["history"]]
    history = {"epochs": state["history"], "best_epoch": state["best_epoch"],
               "best_score": state["best_score"] if val_images is not None else None, "select": cfg.select,
               "epochs_run": state["epoch"], "seconds_per_epoch": statistics.median(seconds) if seconds else None,
               "stopped_early": state["stopped_early"]}
    return final.eval(), history


def _best_meta(meta: dict | None, cfg: TrainConfig, condition: Condition, state: dict) -> dict:
    record = state["history"][-1]
    val = {k.removeprefix("val_"): v for k, v in record.items() if k.startswith("val_")}
    seconds = [r["seconds"] for r in state["history"]]
    return {**(meta or {}), **condition.describe(), "seed": cfg.seed, "epochs": cfg.epochs,
            "best_epoch": record["epoch"], "seconds_per_epoch": statistics.median(seconds),
            "metrics": {"val": val} if val else {}}


def train_quick(faces: Faces, arch: str = "tiny_cnn", epochs: int = 4, seed: int = 0,
                occlusion: str | None = None, device: str | torch.device = "cpu", adversarial_eps: float = 0.0,
                **arch_args) -> nn.Module:
    """A small classifier trained on `faces.split("train")` in seconds on the CPU, for tests of every
    stage; `occlusion` (e.g. "lower-half") trains on occluded faces, `adversarial_eps` > 0 makes it
    robust (FGSM adversarial training). Returns it in eval mode."""
    seed_everything(seed)
    model = create_classifier(arch, **arch_args)
    cfg = TrainConfig(epochs=epochs, batch_size=64, seed=seed, adversarial_eps=adversarial_eps,
                      optim=OptimConfig("adamw", lr=4e-3, weight_decay=1e-4, warmup=0.25))
    cfg.augment.degrees, cfg.augment.shift = 5.0, 0.05
    condition = Condition.build(occlusion)
    model, _ = fit_classifier(model, faces.split("train"), None, cfg, device, condition, progress=False)
    return model


# --------------------------------------------------------------------------- a run from a config


def config_dict(cfg: ClassifierConfig) -> dict:
    """The resolved config as plain YAML-able data (tuples as lists)."""
    return json.loads(json.dumps(to_dict(cfg)))


def train_from_config(cfg: ClassifierConfig, out_dir: str | Path | None = None, resume: bool = False,
                      on_epoch_end: Callable[[int, dict], None] | None = None,
                      load_reconstruct: LoadReconstruct | None = None) -> dict:
    """A whole run: data, model, condition, training, final val (and test) reports, run folder.

    The run folder holds `config.yaml` (resolved), `last.*` (resume state), `best.*` (the selected
    classifier; its sidecar gets the final metrics), `history.json` (per-epoch curves) and
    `metrics.json`. Returns metrics.json's content.
    """
    out = Path(out_dir) if out_dir is not None else cfg.run_dir()
    _check_run_dir(out, cfg, resume)
    device = pick_device(cfg.device)
    seed_everything(cfg.train.seed)
    faces = load_faces(cfg.data.source, normalize=cfg.data.normalize)
    train, val, test = (faces.split(s) for s in ("train", "val", "test"))
    if len(train) == 0:
        raise UnveilError(f"{cfg.data.source}: no training faces")
    if cfg.data.limit and cfg.data.limit < len(train):
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.train.seed))[: cfg.data.limit]
        train = train.select(pick.sort().values)
    condition = Condition.from_config(cfg.condition, load_reconstruct)
    model = create_classifier(cfg.model.arch, **cfg.model.args)
    meta = {"arch": cfg.model.arch, "arch_args": cfg.model.args, "name": cfg.name, "data_source": faces.source,
            "data_fingerprint": faces.fingerprint, "train_faces": len(train)}
    if not resume:
        write_text(out / "config.yaml", yaml.safe_dump(config_dict(cfg), sort_keys=False))
    print(f"[train-classifier] {cfg.name}: {cfg.model.arch} on {len(train)} faces ({faces.source}), "
          f"condition {cfg.condition.name}, {cfg.train.epochs} epochs on {device}; run folder {out}", file=sys.stderr)

    started = time.perf_counter()
    model, history = fit_classifier(model, train, val, cfg.train, device, condition, out, meta, resume,
                                    on_epoch_end=on_epoch_end)
    write_json(out / "history.json", history["epochs"])
    metrics = {"name": cfg.name, **condition.describe(), "best_epoch": history["best_epoch"],
               "epochs_run": history["epochs_run"], "stopped_early": history["stopped_early"],
               "seconds_per_epoch": history["seconds_per_epoch"], "train_faces": len(train)}
    for split, faces_split in (("val", val), ("test", test)):
        if len(faces_split) and (split == "val" or cfg.data.report_test):
            metrics[split] = evaluate(model, faces_split, condition, seed=VAL_SEED)
            tta = evaluate(model, faces_split, condition, tta=True, n_boot=0, seed=VAL_SEED)
            metrics[f"{split}_tta"] = {"accuracy": tta["accuracy"], "macro_f1": tta["macro_f1"]}
    write_json(out / "metrics.json", metrics)
    best_meta = {**meta, **condition.describe(), "seed": cfg.train.seed, "epochs": cfg.train.epochs,
                 "best_epoch": history["best_epoch"], "seconds_per_epoch": history["seconds_per_epoch"],
                 "metrics": _sidecar_metrics(metrics)}
    save_classifier(out / "best", model, best_meta, half=cfg.train.half)

    parts = [f"{history['epochs_run']} epochs in {_duration(time.perf_counter() - started)}",
             f"{history['seconds_per_epoch']:.2f} s/epoch", f"best epoch {history['best_epoch']}"]
    for split in ("val", "test"):
        if split in metrics:
            parts.append(f"{split} accuracy {100 * metrics[split]['accuracy']:.2f} % "
                         f"(TTA {100 * metrics[f'{split}_tta']['accuracy']:.2f} %)")
    print(f"[train-classifier] done: {', '.join(parts)}; wrote {out / 'best.safetensors'}", file=sys.stderr)
    return metrics


def _sidecar_metrics(metrics: dict) -> dict:
    """The compact scores a checkpoint carries: accuracy, macro-F1, their intervals, per split."""
    out = {}
    for split in ("val", "test"):
        if split in metrics:
            r = metrics[split]
            out[split] = {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "n": r["n"],
                          "ci95": r.get("ci95"), "macro_roc_auc": r["macro_roc_auc"],
                          "tta_accuracy": metrics[f"{split}_tta"]["accuracy"]}
    return out


def _check_run_dir(out: Path, cfg: ClassifierConfig, resume: bool) -> None:
    """Refuse to overwrite a run by accident, and to resume one with another config."""
    saved = out / "config.yaml"
    if not resume:
        if (out / "last.json").exists():
            raise UnveilError(f"{out} already holds a run; pass --resume to continue it, or another --out")
        return
    if not (out / "last.json").exists() or not saved.exists():
        raise UnveilError(f"{out}: nothing to resume (needs config.yaml and last.json from an earlier run)")
    ignore = {"out", "device"}
    old = {k: v for k, v in _flat(yaml.safe_load(saved.read_text())).items() if k.split(".")[0] not in ignore}
    new = {k: v for k, v in _flat(config_dict(cfg)).items() if k.split(".")[0] not in ignore}
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        raise UnveilError(f"{saved}: cannot resume with a different config (changed: {', '.join(changed)})")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{seconds:.1f}s"


__all__ = ["class_weights", "classification_loss", "fit_classifier", "train_quick", "train_from_config",
           "make_optimizer", "make_scheduler"]
