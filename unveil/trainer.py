"""The one training loop both stages use, and the config sections they share.

A stage supplies a `Task`: its models and their optimiser settings, the batches of an epoch, a step
that yields `(optimizer, loss, metrics)` in order (a GAN yields the discriminator's, then the
generator's), a validation and how to save its best model. The `Trainer` owns everything else: the
optimisers and their schedules, the weight EMA, the epoch loop, selection and early stopping on the
val split, progress, history, the run folder and bit-exact resume (after nanoGPT and LaMa):

    for epoch:
        seed from (seed, epoch)                  # a resumed run replays the same randomness
        for batch in task.batches(epoch seed):
            for name, loss, metrics in task.step(batch):
                zero_grad, backward, clip, step, schedule  (optimizer `name`)
            EMA update
        validate the selected weights (EMA or live) -> better? task.save_best(best)
        last.* (everything to resume), history.json, progress line

Run-folder policy, the same for every stage: a new run starts only in a new or empty folder (so neither
an earlier run nor anyone's files there are ever overwritten); a run resumes only under the config that
started it; `config.yaml` is written once; one process at a time writes a run folder (`run_folder`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

import torch
import torch.nn as nn
import yaml

from .checkpoint import load_checkpoint, load_weights, read_sidecar, weights_digest
from .config import check_choice, check_seed
from .data.mix import MixPart
from .errors import UnveilError
from .io import LOCK_NAME, folder_lock, is_temp, remove_stale_temps, shown_names, write_json, write_text
from .distributed import average_buffers, average_gradients, average_sums, is_main
from .logs import progress
from .runtime import EMA, PRECISIONS, EpochLog, check_device, load_training_state, save_training_state, warmup_cosine

log = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adamw", "adam")
SCHEDULES = ("onecycle", "cosine", "constant")


# --------------------------------------------------------------------------- shared config sections


@dataclass
class DataConfig:
    source: str = "synthetic"   # anything unveil.data.load_faces reads
    normalize: bool = True      # per-image min-max stretch, as for every model Unveil trains
    limit: int = 0              # train on N training faces drawn at random (seeded), 0: all of them
    val_limit: int = 0          # validate on the first N val faces, 0: all of them
    # Leave out of training the faces `unveil data info --check` flags: constant, nearly constant, copied
    # in val or test (a leak), and later copies of a training face (unveil.data.degenerate).
    drop_degenerate: bool = False
    # Several sources at once (unveil.data.mix): each part keeps its splits and has a weight, its share of
    # the training batches; validation is reported per part and pooled. With a mix, leave `source` unset.
    mix: list[MixPart] = field(default_factory=list)

    def __post_init__(self):
        if self.limit < 0 or self.val_limit < 0:
            raise ValueError(f"data.limit and data.val_limit must be >= 0 (0: all), got {self.limit}, {self.val_limit}")
        if self.mix and self.source != DataConfig.source:
            raise ValueError(f"give data.source ({self.source}) or data.mix, not both")

    def load(self):
        """The faces this config trains on: its source, or its mix of sources."""
        from .data import load_faces
        from .data.mix import load_mix

        return load_mix(self.mix, self.normalize) if self.mix else load_faces(self.source, normalize=self.normalize)

    def describe(self) -> str:
        return "+".join(p.label() for p in self.mix) if self.mix else self.source

    def check_bare(self, stage: str) -> None:
        """Generators and the hole model cut their own holes and learn the truth under them: faces that
        wear their occlusion (a part with `wear`) have no truth under it."""
        worn = [p.label() for p in self.mix if p.wear]
        if worn:
            raise UnveilError(f"data.mix: {stage} trains on bare faces and cuts its own holes; the part(s) "
                              f"{', '.join(worn)} wear theirs (wear:), so the truth under the mask is unknown: "
                              f"leave them out")

    def splits(self, faces, seed: int):
        """(train, val, test) as every stage trains on them: flagged training faces dropped when
        `drop_degenerate`, then `limit` training faces drawn with `seed`, and the first `val_limit` val faces."""
        from .data.degenerate import without_degenerate

        train, val, test = (faces.split(s) for s in ("train", "val", "test"))
        if self.drop_degenerate:
            train, record = without_degenerate(faces, "train")
            if is_main():
                log.info(f"[data] drop_degenerate: {record['excluded']} of {record['excluded'] + record['kept']} "
                         f"training faces left out ({record['constant']} constant, {record['nearly_constant']} nearly "
                         f"constant, {record['copies']} copies)")
        if self.limit and self.limit < len(train):
            pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: self.limit]
            train = train.select(pick.sort().values)
        if self.val_limit and self.val_limit < len(val):
            val = val.select(torch.arange(self.val_limit))
        return train, val, test


@dataclass
class OptimConfig:
    name: str = "adamw"           # sgd (Nesterov) | adamw | adam
    lr: float = 1e-3              # the peak learning rate
    momentum: float = 0.9         # SGD momentum, or Adam's beta1 (one-cycle cycles it down to 0.85)
    beta2: float = 0.999          # Adam's beta2
    nesterov: bool = True
    weight_decay: float = 0.0     # not applied to biases and normalisation weights
    schedule: str = "cosine"      # onecycle | cosine (linear warm-up) | constant
    warmup: float = 0.05          # fraction of all steps spent warming up
    min_lr_ratio: float = 0.0     # where the cosine ends, as a fraction of lr
    grad_clip: float = 0.0        # max gradient norm; 0 disables

    def __post_init__(self):
        check_choice("optim.name", self.name, OPTIMIZERS)
        check_choice("optim.schedule", self.schedule, SCHEDULES)
        if not self.lr > 0 or not 0 <= self.warmup < 1 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"need lr > 0, 0 <= warmup < 1 and 0 <= min_lr_ratio <= 1 (got lr={self.lr}, "
                             f"warmup={self.warmup}, min_lr_ratio={self.min_lr_ratio})")
        if not 0 <= self.momentum < 1 or not 0 <= self.beta2 < 1 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(f"need 0 <= momentum, beta2 < 1 and weight_decay, grad_clip >= 0 (got momentum="
                             f"{self.momentum}, beta2={self.beta2}, weight_decay={self.weight_decay}, "
                             f"grad_clip={self.grad_clip})")


@dataclass
class AugmentConfig:
    """unveil.augment.Augment's settings, applied on the device to every training batch."""

    enabled: bool = True
    flip: bool = True
    degrees: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.1
    erase: float = 0.0
    photo: float = 0.0    # share of faces made to look cut out of a photo (resampled, blurred, relit, noised)

    def __post_init__(self):
        if not 0 <= self.photo <= 1:
            raise ValueError(f"augment.photo must be in [0, 1], got {self.photo}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"augment.scale must be [low, high] with 0 < low <= high, got {list(self.scale)}")
        if not 0 <= self.degrees <= 180 or not 0 <= self.shift <= 0.5 or not 0 <= self.erase <= 1:
            raise ValueError(f"need 0 <= degrees <= 180, 0 <= shift <= 0.5 and 0 <= erase <= 1 (got degrees="
                             f"{self.degrees}, shift={self.shift}, erase={self.erase})")

    def build(self):
        from .augment import Augment

        if not self.enabled:
            return None
        return Augment(self.flip, self.degrees, self.scale, self.shift, self.erase, self.photo)


@dataclass
class TrainConfig:
    """How to fit, for any stage: the loop, its optimiser and augmentation."""

    epochs: int = 10
    batch_size: int = 128
    steps_per_epoch: int = 0      # 0: training faces // batch_size
    seed: int = 0
    ema: float = 0.0              # EMA decay of the weights (e.g. 0.999), validated and shipped; 0 disables
    select: str = ""              # the val metric that selects the best epoch ("": the stage's default)
    patience: int = 0             # early stopping after this many epochs without a better val score; 0 disables
    # torch.compile the classifier's forward (inductor). On the 2-core CPU it was slower (judge: 218 vs 242
    # images/s, after 90 s of compiling); on the CPU it also needs a C++ compiler.
    compile: bool = False
    # auto: bf16 autocast where the hardware runs it natively (CUDA; CPUs with AVX512-BF16 or AMX), else
    # fp32; bf16 or fp32 force it (unveil.runtime.resolve_precision). Weights and optimiser stay fp32.
    precision: str = "auto"
    half: bool = False            # store best.* in fp16 (shipped checkpoints); last.* is always fp32
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 2 or self.steps_per_epoch < 0 or self.patience < 0:
            raise ValueError(f"need epochs >= 1, batch_size >= 2, steps_per_epoch >= 0 and patience >= 0 (got "
                             f"epochs={self.epochs}, batch_size={self.batch_size}, steps_per_epoch="
                             f"{self.steps_per_epoch}, patience={self.patience})")
        if not 0 <= self.ema < 1:
            raise ValueError(f"train.ema must be in [0, 1) (0: off), got {self.ema}")
        check_seed(self.seed, "train.seed")
        check_choice("train.precision", self.precision, PRECISIONS)


@dataclass
class ExperimentConfig:
    """What every stage's experiment config holds; a stage's config adds its own sections."""

    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    device: str = "auto"          # auto (CUDA if present), cpu, cuda, cuda:N
    out: str | None = None        # run folder; default runs/<name>
    # Start from this checkpoint's weights (a path or a shipped name) instead of random ones: fine-tuning.
    # Its architecture (and a classifier's classes) must be the run's; recorded in best.*'s sidecar.
    init: str | None = None

    def __post_init__(self):
        check_device(self.device)

    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / self.name


def init_weights(model: nn.Module, spec: str, kind: str, arch: str, prefix: str = "",
                 same: dict[str, Any] | None = None) -> dict:
    """Start `model` (an `arch` of `kind`) from the weights of checkpoint `spec` (`init:`, `--init`).

    The checkpoint must be of the same kind and architecture, with every tensor's name and shape (so
    the same architecture arguments that matter); `same` names sidecar entries that must match too (a
    classifier's classes and class map). `prefix` picks the model's tensors out of a checkpoint that
    holds more (an inpainter's generator). Returns the record a sidecar keeps: path, name and digest.
    """
    from .shipped import resolve_checkpoint

    path = resolve_checkpoint(spec)
    tensors, meta = load_checkpoint(path, kind=kind)
    if meta.get("arch") != arch:
        raise UnveilError(f"{path}: init: the checkpoint is a {meta.get('arch')} {kind}, this run trains a {arch}")
    for key, want in (same or {}).items():
        if meta.get(key) != want:
            raise UnveilError(f"{path}: init: the checkpoint's {key} is {meta.get(key)}, this run's is {want}")
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    load_weights(model, state, path, "init weights")
    return {"path": str(path), "name": meta.get("name"), "weights_sha256": weights_digest(path)}


# --------------------------------------------------------------------------- optimisers


def make_optimizer(modules: Iterable[nn.Module], cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov) or Adam(W) over the trainable parameters; no weight decay on biases and norms."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    fused = bool(params) and params[0].is_cuda  # one kernel for all parameters on the GPU
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0, fused=fused or None)
    kind = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return kind(groups, lr=cfg.lr, betas=(cfg.momentum, cfg.beta2), fused=fused or None)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int):
    """Stepped once per batch: one-cycle (warm up from lr/25, anneal to lr/1e4, momentum cycled),
    cosine with linear warm-up down to `min_lr_ratio`, or constant."""
    if cfg.schedule == "onecycle":
        total = max(total_steps, 2)
        # At least two warm-up steps: torch divides by (warm-up steps - 1), so exactly one crashes a short run.
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=total, pct_start=min(1.0, max(cfg.warmup, 2 / total)),
            cycle_momentum=True, base_momentum=min(0.85, cfg.momentum),
            max_momentum=cfg.momentum)
    if cfg.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    warmup = round(cfg.warmup * total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, warmup, cfg.min_lr_ratio))


# --------------------------------------------------------------------------- the task a stage supplies


class Task(Protocol):
    """What a stage gives the `Trainer`.

    `models` are the trained modules, saved in `last.*`; `models[selected]` is the one that is
    EMA-averaged, validated, selected and saved as `best`. `optim` maps an optimiser's name to the
    modules it trains and its settings; `step` yields that name with each loss.
    """

    models: dict[str, nn.Module]
    selected: str
    optim: dict[str, tuple[list[nn.Module], OptimConfig]]
    steps_per_epoch: int

    def batches(self, epoch: int, seed: int) -> Iterator[Any]: ...
    def step(self, batch: Any) -> Iterator[tuple[str, torch.Tensor, dict[str, torch.Tensor]]]: ...
    def validate(self, model: nn.Module) -> dict[str, float]: ...
    def save_best(self, path: Path, model: nn.Module, record: dict) -> None: ...


def run_folder(out: str | Path | None):
    """Hold a run folder for this process while a stage trains and then writes its final files: a second
    run into the same folder at the same time is refused. Data-parallel ranks other than 0 never write it."""
    return folder_lock(out) if out is not None and is_main() else contextlib.nullcontext()


def epoch_seed(seed: int, epoch: int) -> int:
    """Every epoch's randomness comes from (seed, epoch), so a resumed run replays the same epochs."""
    return seed * 1_000_003 + epoch


# --------------------------------------------------------------------------- the loop


class Trainer:
    """Fits a `Task` with `TrainConfig`; selects on `select` (higher is better unless `minimize`)."""

    def __init__(self, task: Task, cfg: TrainConfig, select: str, minimize: bool = False,
                 out: str | Path | None = None, config: dict | None = None, what: str = "train",
                 progress: bool = True, device: torch.device | str = "cpu",
                 on_epoch_end: Callable[[int, dict], None] | None = None):
        self.task, self.cfg, self.select, self.minimize = task, cfg, select, minimize
        self.out = Path(out) if out is not None else None
        self.config, self.what, self.progress = config, what, progress
        self.device = torch.device(device)
        total = cfg.epochs * task.steps_per_epoch
        self.optimizers = {name: make_optimizer(modules, ocfg) for name, (modules, ocfg) in task.optim.items()}
        self.schedulers = {name: make_scheduler(opt, task.optim[name][1], total)
                           for name, opt in self.optimizers.items()}
        self.ema = EMA(task.models[task.selected], cfg.ema) if cfg.ema > 0 else None
        self.on_epoch_end = on_epoch_end
        self.state = {"epoch": 0, "history": [], "best": None, "bad_epochs": 0, "stopped_early": False}
        self.best_weights: dict[str, torch.Tensor] | None = None

    @property
    def selected_model(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.task.models[self.task.selected]

    # ----------------------------------------------------------------- run folder

    def _open_run_folder(self, resume: bool) -> None:
        out = self.out
        if not resume and not is_main():
            return  # rank 0 owns the run folder
        if is_main():
            remove_stale_temps(out, recursive=True)  # what a killed run was writing when it died
        if not resume:
            if (out / "last.json").exists():
                raise UnveilError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
            config = yaml.safe_dump(self.config or {}, sort_keys=False)
            _check_new_run_folder(out, config)
            write_text(out / "config.yaml", config)
            return
        if not (out / "last.json").exists():
            raise UnveilError(f"{out}: nothing to resume (no last.json there); run without --resume")
        saved = read_sidecar(out / "last", "training_state").get("config")
        before, now = _flat(saved), _flat(self.config)
        changed = sorted(k for k in before | now if before.get(k) != now.get(k)
                         and k.split(".")[0] not in ("out", "device"))
        if changed:
            raise UnveilError(f"{out}: cannot resume with a different config (changed: {', '.join(changed)}); "
                              f"start a new run in another folder")
        self._load_state()

    def _state_parts(self) -> tuple[dict, dict]:
        modules = {**self.task.models, "ema": self.ema.model if self.ema else None}
        if self.best_weights is not None:
            modules["best"] = _Weights(self.best_weights)
        return modules, {**{f"opt_{k}": v for k, v in self.optimizers.items()},
                         **{f"sched_{k}": v for k, v in self.schedulers.items()}}

    def _save_state(self) -> None:
        modules, optimizers = self._state_parts()
        save_training_state(self.out / "last", modules, optimizers,
                            {**self.state, "ema_updates": self.ema.updates if self.ema else 0, "config": self.config})

    def _load_state(self) -> None:
        saved = load_checkpoint(self.out / "last")[0]
        if any(k.startswith("best.") for k in saved):
            self.best_weights = {k[5:]: v for k, v in saved.items() if k.startswith("best.")}
        modules, optimizers = self._state_parts()
        meta = load_training_state(self.out / "last", modules, optimizers, self.device)
        self.state = {k: meta[k] for k in self.state}
        if self.ema is not None:
            self.ema.updates = meta.get("ema_updates", 0)

    # ----------------------------------------------------------------- the loop

    def fit(self, resume: bool = False, stop_after: int | None = None) -> dict:
        """Train to `epochs` (or stop after epoch `stop_after`, resumable later); return the history.

        Afterwards the selected model (`task.models[selected]`, or the EMA's) holds the best weights.
        """
        if self.out is None and resume:
            raise UnveilError("resume needs a run folder")
        with run_folder(self.out):
            if self.out is not None:
                self._open_run_folder(resume)
            self._epochs(stop_after)
        return self._finish()

    def _epochs(self, stop_after: int | None) -> None:
        cfg, state = self.cfg, self.state
        bar = EpochLog(cfg.epochs, self.what, start_epoch=state["epoch"]) if self.progress and is_main() else None
        end = min(cfg.epochs, stop_after or cfg.epochs)
        for epoch in range(state["epoch"], end):
            if state["stopped_early"]:
                break
            if bar:
                bar.begin_epoch()
            started = time.perf_counter()
            record = self._train_epoch(epoch)
            self._end_epoch(epoch, record, started)
            if bar:
                bar.end_epoch(epoch, **_shown(record, self.select, state["best"]))
            if self.on_epoch_end:
                self.on_epoch_end(epoch, record)

    def _train_epoch(self, epoch: int) -> dict:
        started = time.perf_counter()
        seed = epoch_seed(self.cfg.seed, epoch)
        torch.manual_seed(seed)  # dropout and anything else the step draws
        for model in self.task.models.values():
            model.train()
        sums: dict[str, torch.Tensor] = {}
        steps = 0
        for batch in progress(self.task.batches(epoch, seed), f"{self.what} epoch {epoch + 1}",
                              self.task.steps_per_epoch, "step", self.progress and is_main()):
            for key, value in self.train_step(batch).items():  # summed on the device: no host sync per step
                sums[key] = sums.get(key, 0) + value
            steps += 1
        # Every rank validates and saves the same model: BatchNorm statistics averaged, the EMA's too.
        average_buffers([*self.task.models.values(), *([self.ema.model] if self.ema else [])])
        sums = average_sums(sums)
        seconds = time.perf_counter() - started
        return {"epoch": epoch + 1, **{f"train_{k}": float(v) / max(steps, 1) for k, v in sums.items()},
                "lr": next(iter(self.optimizers.values())).param_groups[0]["lr"], "train_seconds": seconds,
                "train_images_per_s": steps * self.cfg.batch_size / max(seconds, 1e-9)}

    def train_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """One batch: each optimiser the task's step names, in order, then the EMA; the step's metrics."""
        metrics = {}
        for name, loss, step_metrics in self.task.step(batch):
            self._optimizer_step(name, loss)
            metrics.update({k: v.detach().float() for k, v in step_metrics.items()})
        if self.ema is not None:
            self.ema.update(self.task.models[self.task.selected])
        return metrics

    def _optimizer_step(self, name: str, loss: torch.Tensor) -> None:
        optimizer, ocfg = self.optimizers[name], self.task.optim[name][1]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.task.optim[name][0])  # data-parallel ranks take the same step
        if ocfg.grad_clip > 0:
            params = [p for m in self.task.optim[name][0] for p in m.parameters()]
            nn.utils.clip_grad_norm_(params, ocfg.grad_clip)
        optimizer.step()
        self.schedulers[name].step()

    def _end_epoch(self, epoch: int, record: dict, started: float) -> None:
        state = self.state
        val = self.task.validate(self.selected_model)
        record.update({f"val_{k}": v for k, v in val.items()})
        record["seconds"] = time.perf_counter() - started
        improved = True
        if val:
            if self.select not in val:
                raise UnveilError(f"unknown selection metric {self.select!r}; validation reports {', '.join(val)}")
            score = val[self.select]
            best = state["best"]
            improved = best is None or (score < best["score"] if self.minimize else score > best["score"])
        if improved:
            state["best"] = {"epoch": epoch + 1, "score": val.get(self.select), "metric": self.select}
            state["bad_epochs"] = 0
            self.best_weights = {k: v.detach().clone() for k, v in self.selected_model.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        state["stopped_early"] = (bool(self.cfg.patience) and state["bad_epochs"] >= self.cfg.patience
                                  and epoch + 1 < self.cfg.epochs)
        state["history"].append(record)
        if self.out is not None and is_main():
            if improved:
                self.task.save_best(self.out / "best", self.selected_model, {**state["best"], "val": val})
            self._save_state()
            write_json(self.out / "history.json", state["history"])
            if hasattr(self.task, "samples"):  # a stage's pictures of its progress
                self.task.samples(self.out, epoch + 1)

    def _finish(self) -> dict:
        if self.best_weights is not None:
            self.selected_model.load_state_dict(self.best_weights)
        state = self.state
        seconds = [r["seconds"] for r in state["history"]]
        best = state["best"] or {}
        return {"epochs": state["history"], "best": state["best"], "best_epoch": best.get("epoch"),
                "best_score": best.get("score"), "select": self.select, "epochs_run": state["epoch"],
                "stopped_early": state["stopped_early"],
                "seconds_per_epoch": statistics.median(seconds) if seconds else None}


class _Weights(nn.Module):
    """A state dict that `save_training_state` / `load_training_state` treat like a module's."""

    def __init__(self, weights: dict[str, torch.Tensor]):
        super().__init__()
        self.weights = weights

    def state_dict(self, *args, **kwargs):  # the weights as they are
        return dict(self.weights)

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        self.weights.clear()
        self.weights.update(state)


def _check_new_run_folder(out: Path, config: str) -> None:
    """A new run starts in a new or empty folder: whatever is there (a config.yaml of the user's own, a
    backup) is theirs, and stays. A folder whose config.yaml is this very run's, byte for byte, is this
    run, started before and killed before its first epoch ended: it starts again."""
    found = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME and not is_temp(p.name))
    if not found or ("config.yaml" in found and (out / "config.yaml").read_bytes() == config.encode()):
        return
    raise UnveilError(f"{out} holds files ({shown_names(found)}); a new run starts in a new or empty folder, so "
                      f"that nothing there is overwritten: choose another --out")


def _flat(d: dict | None, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _shown(record: dict, select: str, best: dict | None) -> dict:
    """The few numbers of an epoch worth a progress line."""
    keys = [k for k in ("train_loss", "train_d_loss", "train_expr") if k in record]
    shown = {k: record[k] for k in keys}
    if f"val_{select}" in record:
        shown[f"val_{select}"] = record[f"val_{select}"]
        if best and best.get("score") is not None:
            shown["best"] = best["score"]
    return {k: v for k, v in shown.items() if not (isinstance(v, float) and math.isnan(v))}
