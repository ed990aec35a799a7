"""What every training loop and every inference path shares: device choice, bf16 autocast, models
prepared for training or for inference, seeding, weight EMA, progress, resume."""

from __future__ import annotations

import copy
import ctypes
import logging
import math
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch

from .checkpoint import flatten_state, load_checkpoint, load_weights, save_checkpoint, unflatten_state
from .errors import UnveilError

log = logging.getLogger(__name__)


def check_device(name: str) -> str:
    """`name` if it names a device Unveil can use (auto, cpu, cuda, cuda:N), else a ValueError."""
    kind, _, index = name.partition(":")
    if name == "auto" or (kind in ("cpu", "cuda") and (not index or index.isdigit()) and not (kind == "cpu" and index)):
        return name
    raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")


def pick_device(name: str = "auto") -> torch.device:
    try:
        check_device(name)
    except ValueError as exc:
        raise UnveilError(str(exc)) from None
    from .distributed import local_cuda_device

    if name in ("auto", "cuda") and local_cuda_device() is not None:
        return local_cuda_device()  # one GPU per rank under torchrun
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UnveilError(f"device {name!r} asked for, but CUDA is not available on this machine")
    return torch.device(name)


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move to the device, channels-last: cuDNN's convolutions are fastest with it, and oneDNN's on the
    CPU too (about 1.3x for the generators and 1.5x for the classifiers here)."""
    return model.to(device).to(memory_format=torch.channels_last)


# --------------------------------------------------------------------------- inference


def keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks in the heap instead of unmapping them.

    By default every freed block of more than a few MB (a CPU batch's activations) goes back to the
    kernel and is mapped and page-faulted in again for the next batch: on this project's 2-core machine
    that was a third of the wall time of a TTA evaluation (22.0 s -> 15.6 s with it). A no-op where the
    C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)   # glibc's largest: blocks under 32 MB come from the heap
    libc.mallopt(m_trim_threshold, 1 << 30)    # and the heap is not trimmed back after each batch

PRECISIONS = ("auto", "bf16", "fp32")


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls run natively: CUDA, or a CPU with AVX512-BF16 / AMX (oneDNN's own check).
    Without them bf16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """`auto` made concrete: "bf16" where it is native (CUDA, CPUs with AVX512-BF16 / AMX), else "fp32"."""
    if precision not in PRECISIONS:
        raise UnveilError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(device: torch.device, precision: str = "auto"):
    """The autocast context of every training step and every inference: bf16 where `precision` resolves
    to it (`auto`: where the hardware runs bf16 natively, see `resolve_precision`), else nothing.

    On this project's 2-core CPU (AVX512-BF16) bf16 doubles the judge's inference throughput and its
    training throughput (benchmarks/cpu_training.py), and moved FER2013 PrivateTest accuracies by at
    most 0.2 points; `fp32` gives the same numbers on any machine.
    """
    use_bf16 = resolve_precision(device, precision) == "bf16"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)


def inference_batch_size(device: torch.device) -> int:
    """Batches that keep a CPU's activations in its caches (64 faces ran 2-3x faster than 1024 here);
    large ones on a GPU, where launches, not memory, are the cost."""
    return 4096 if device.type == "cuda" else 64


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """`model` in eval mode inside the block, each submodule's own mode restored after. Only the modules
    that are training are switched: `Module.eval()` on every call walks and re-sets every submodule,
    which cost about 1 ms per model in one face's reading (the models there are always in eval mode)."""
    training = [m for m in model.modules() if m.training]
    for m in training:
        m.training = False
    try:
        yield model
    finally:
        for m in training:
            m.training = True


def fused_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy for inference: eval mode, every BatchNorm folded into the convolution or linear layer
    before it (one pass over the activations fewer), channels-last. The original is left as it was.

    Folding is exact up to float rounding (1e-6 here), and the copy's `state_dict` no longer matches
    the checkpoint: use it to predict, never to save.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    fused = copy.deepcopy(model).eval().requires_grad_(False)
    for module in fused.modules():
        if not isinstance(module, torch.nn.Sequential):
            continue
        for i in range(len(module) - 1):
            layer, norm = module[i], module[i + 1]
            if isinstance(layer, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d):
                module[i], module[i + 1] = fuse_conv_bn_eval(layer, norm), torch.nn.Identity()
            elif isinstance(layer, torch.nn.Linear) and isinstance(norm, torch.nn.BatchNorm1d):
                module[i], module[i + 1] = fuse_linear_bn_eval(layer, norm), torch.nn.Identity()
    return fused.to(memory_format=torch.channels_last)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """Learning-rate factor per step for `LambdaLR`: linear warm-up to 1 over `warmup_steps`, then a
    cosine down to `min_ratio` at `total_steps`."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return factor


class EMA:
    """Exponential moving average of a model's parameters, for evaluation and shipping.

    Buffers (batch-norm statistics) are copied from the live model, not averaged: averaging them too
    pairs averaged weights with statistics that lag twice over, which cost a U-Net 2 dB of hole PSNR
    early in training. Warm-up: update n uses min(decay, (1 + n) / (10 + n)), so early, fast-moving
    weights are not averaged with the random initialisation. Resume by restoring `updates` too.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._params, self._buffers = list(self.model.parameters()), list(self.model.buffers())

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """One step after each optimiser step; `model` is the live twin of `self.model` (same layout)."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        # One fused call per group instead of a kernel launch per tensor: this runs every training step.
        torch._foreach_lerp_(self._params, [p.detach() for p in model.parameters()], 1 - decay)
        torch._foreach_copy_(self._buffers, list(model.buffers()))


class EpochLog:
    """One message per epoch (`logging`): the numbers so far, time per epoch and the ETA."""

    def __init__(self, total_epochs: int, what: str, start_epoch: int = 0):
        self.total, self.what = total_epochs, what
        self.start_epoch, self.started = start_epoch, time.perf_counter()
        self.epoch_started = self.started

    def begin_epoch(self) -> None:
        self.epoch_started = time.perf_counter()

    def end_epoch(self, epoch: int, **numbers: float) -> float:
        """Log epoch `epoch` (0-based); return its duration in seconds."""
        now = time.perf_counter()
        seconds = now - self.epoch_started
        done = epoch + 1 - self.start_epoch
        eta = (now - self.started) / max(done, 1) * (self.total - epoch - 1)
        shown = "  ".join(f"{k} {_fmt(v)}" for k, v in numbers.items())
        log.info(f"[{self.what}] epoch {epoch + 1}/{self.total}  {shown}  {seconds:.2f}s/epoch  "
                 f"ETA {_duration(eta)}")
        return seconds


def _fmt(v: float) -> str:
    return f"{v:.4f}" if isinstance(v, float) and not math.isnan(v) and abs(v) < 100 else str(v)


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def save_training_state(path: str | Path, modules: dict[str, torch.nn.Module | None],
                        optimizers: dict[str, object], meta: dict) -> None:
    """Everything needed to resume (models, EMA, optimizers, schedulers, epoch) as safetensors + JSON."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        if module is not None:
            tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    states = {name: flatten_state(f"state.{name}", opt.state_dict(), tensors) for name, opt in optimizers.items()}
    save_checkpoint(path, tensors, {**meta, "kind": "training_state", "states": states})


def load_training_state(path: str | Path, modules: dict[str, torch.nn.Module | None],
                        optimizers: dict[str, object], device: torch.device) -> dict:
    """Restore what `save_training_state` wrote into the given objects; return its sidecar."""
    tensors, meta = load_checkpoint(path, device, kind="training_state")
    for name, module in modules.items():
        if module is not None:
            prefix = f"{name}."
            state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            load_weights(module, state, path, f"{name} weights")
    for name, opt in optimizers.items():
        opt.load_state_dict(unflatten_state(meta["states"][name], tensors))
    return meta


@contextmanager
def one_cpu_thread(device: torch.device | str = "cpu"):
    """Run torch on one CPU thread inside the block (process-wide, restored afterwards).

    For small tensors (a detector's pyramid and crops, a 48x48 face): on this project's 2-core
    machines a second thread made a 640x480 photo faster when the other core was idle (18 vs 27 ms),
    but while it was busy every parallel region waited for a time slice (8 ms each, even for a
    48x48 min-max) and a photo took 0.3-1.2 s.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)
