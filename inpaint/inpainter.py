"""`Inpainter`: a generator (trained or classical), its optional conditioning classifier and the
stitching rule, as one module that turns occluded faces into stitched faces.

    inpainter = load_inpainter("runs/inpaint_fer_unet/best", device)   # a trained generator
    inpainter = create_inpainter("telea")                              # a classical baseline
    inpainter = create_inpainter("mean_face").fit(train_faces)
    faces = inpainter.reconstruct(occluded, hole)                      # visible pixels untouched

Checkpoint layout (`unveil.checkpoint`): `NAME.safetensors` holds `generator.*` and, for a
generator trained with expression conditioning, the occluded-face classifier under `conditioner.*`
(self-contained; `embed_conditioner=False` stores only its path and SHA-256, to save space in
`checkpoints/`). `NAME.json` is the sidecar: kind "inpainter", arch, arch_args, occlusion, stitch,
guide, conditioning, selector, data fingerprint and metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from unveil.checkpoint import checkpoint_paths, load_checkpoint, load_model, save_checkpoint, weights_digest
from unveil.classify import create_classifier, load_classifier
from unveil.classify.fusion import input_record
from unveil.classify.identity import same_classifier
from unveil.classes import CLASSES
from unveil.errors import UnveilError
from unveil.runtime import autocast, eval_mode, inference_batch_size
from unveil.shipped import resolve_checkpoint

from .classical import BASELINES, create_baseline
from .generators import GENERATORS, create_generator
from .stitch import stitch

log = logging.getLogger(__name__)

GENERATOR_PREFIX = "generator."
CONDITIONER_PREFIX = "conditioner."


class Inpainter(nn.Module):
    """Occluded face -> stitched face, with expression conditioning handled inside.

    Args:
        generator: any module called as `generator(occluded, hole, cond=None)` -> [N, 1, H, W].
        conditioner: occluded-face classifier whose softmax conditions the generator (or None).
        feather: seam width for `stitch` (0: hard seam).
        meta: the sidecar this inpainter was loaded from (or is to be saved with).

    Shape:
        occluded, hole: [N, 1, H, W] -> stitched faces [N, 1, H, W] in [0, 1].
    """

    def __init__(self, generator: nn.Module, conditioner: nn.Module | None = None, feather: int = 0,
                 meta: dict | None = None):
        super().__init__()
        self.generator = generator
        self.conditioner = conditioner.eval().requires_grad_(False) if conditioner is not None else None
        self.feather = int(feather)
        self.meta = dict(meta or {})
        if getattr(generator, "cond_dim", 0) and conditioner is None:
            raise ValueError("the generator is conditioned (cond_dim > 0) but no conditioner was given")

    @property
    def name(self) -> str:
        return self.meta.get("arch", type(self.generator).__name__)

    def train(self, mode: bool = True) -> "Inpainter":
        super().train(mode)
        if self.conditioner is not None:
            self.conditioner.eval()  # frozen classifier
        return self

    def condition(self, occluded: torch.Tensor) -> torch.Tensor | None:
        return conditioning(self.conditioner, occluded, (self.meta.get("conditioning") or {}).get("features"))

    def generate(self, occluded: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The raw generator output over the whole frame (not stitched)."""
        return self.generator(occluded, hole, self.condition(occluded))

    def forward(self, occluded: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return stitch(self.generate(occluded, hole), occluded, hole, self.feather)

    def fit(self, faces: torch.Tensor) -> "Inpainter":
        """Fit a baseline that needs training faces (`mean_face`); returns self for chaining."""
        if not hasattr(self.generator, "fit"):
            raise UnveilError(f"{self.name} has nothing to fit")
        self.generator.fit(faces)
        return self

    @torch.inference_mode()
    def reconstruct(self, occluded: torch.Tensor, hole: torch.Tensor, batch_size: int | None = None,
                    precision: str = "auto") -> torch.Tensor:
        """Stitched reconstructions [N, 1, H, W] in [0, 1], float32, on the input's device.

        In eval mode, in batches that suit the model's device, bf16 where it is native (`precision`,
        as in `unveil.runtime.autocast`); the visible pixels are copied exactly in any case.
        """
        device = next(iter([*self.parameters(), *self.buffers()]), occluded).device
        batch_size = batch_size or inference_batch_size(device)
        out = []
        with eval_mode(self):
            for i in range(0, occluded.shape[0], batch_size):
                part, gap = occluded[i:i + batch_size].to(device), hole[i:i + batch_size].to(device)
                with autocast(device, precision):
                    raw = self.generate(part.contiguous(memory_format=torch.channels_last), gap)
                out.append(stitch(raw.float().clamp(0, 1), part.float(), gap, self.feather).to(occluded.device))
        return torch.cat(out) if out else occluded.float().clone()

    def judge_conflicts(self, judge: dict) -> list[str]:
        """Why `judge` (a `classifier_record`) cannot fairly score this generator: it is its guide,
        selector or conditioner. Empty for an independent judge and for the classical baselines."""
        roles = {"guide": "the GUIDE in its loss: the generator was trained to please it, so its accuracy "
                          "on these reconstructions is not an independent measure",
                 "selector": "the classifier that selected its checkpoint",
                 "conditioning": "its conditioning classifier, whose reading of the upper half it was given"}
        conflicts = []
        for role, what in roles.items():
            why = same_classifier(self.meta.get(role), judge)
            if why:
                conflicts.append(f"the judge {judge.get('path')} is {self.name}'s {what} ({why}); "
                                 f"judge with an independent classifier")
        return conflicts


CONDITIONING_FEATURES = ("probabilities", "embedding")


def conditioning(conditioner: nn.Module | None, occluded: torch.Tensor,
                 features: str | None = None) -> torch.Tensor | None:
    """The conditioning vector: what the conditioner reads on the occluded face, never differentiated
    (the conditioner is frozen and only reads the input); None without a conditioner.

    `features`: "probabilities" (default: its class distribution) or "embedding" (its L2-normalised
    pre-logits embedding, which keeps more of what the upper half shows than seven numbers do).

    Shape:
        occluded: [N, 1, H, W] -> [N, C] or [N, embedding] float32.
    """
    if conditioner is None:
        return None
    with torch.no_grad():
        if features == "embedding":
            embedding = conditioner.forward_head(conditioner.forward_features(occluded), pre_logits=True)
            return torch.nn.functional.normalize(embedding.float(), dim=1)
        return torch.softmax(conditioner(occluded).float(), 1)


# --------------------------------------------------------------------------- building


def create_inpainter(name: str, feather: int = 0, **kwargs) -> Inpainter:
    """A classical baseline (`telea`, `navier_stokes`, `mean_face`) or an untrained generator by name.

    `mean_face` must be fitted: `create_inpainter("mean_face").fit(train_faces)`.
    """
    if name in BASELINES:
        generator = create_baseline(name, **kwargs)
    elif name in GENERATORS:
        generator = create_generator(name, **kwargs)
    else:
        known = ", ".join(BASELINES.names() + GENERATORS.names())
        raise UnveilError(f"unknown inpainter {name!r}; valid: {known} (or a checkpoint path)")
    return Inpainter(generator, None, feather, {"kind": "inpainter", "arch": name, "arch_args": kwargs})


def open_inpainter(spec: str, device: str | torch.device = "cpu", fit_faces: Callable[[], torch.Tensor] | None = None,
                   checkpoints: str | Path | None = None) -> Inpainter:
    """What a user names on the command line: a classical baseline (`mean_face` is fitted on
    `fit_faces()`, the training faces), or a generator checkpoint — a path, or a shipped name such
    as `inpainter_unet` (looked up in `checkpoints`, default the package's)."""
    if spec in BASELINES:
        inpainter = create_inpainter(spec).to(device)
        if spec == "mean_face":
            if fit_faces is None:
                raise UnveilError("the mean_face baseline needs training faces to fit")
            inpainter.fit(fit_faces().to(device))
        return inpainter.eval()
    try:
        path = resolve_checkpoint(spec, checkpoints)
    except UnveilError as exc:
        raise UnveilError(f"{spec}: neither a baseline ({', '.join(BASELINES.names())}) nor an inpainter "
                          f"checkpoint ({exc})") from None
    return load_inpainter(path, device)


def inpainter_record(spec: str, checkpoints: str | Path | None = None) -> dict:
    """What names the inpainter a fusion was fitted with: a baseline by name, a generator by its weights'
    SHA-256, as `input_record` names the classifiers."""
    if spec in BASELINES:
        return {"name": spec, "weights_sha256": None}
    return input_record(resolve_checkpoint(spec, checkpoints))


# --------------------------------------------------------------------------- checkpoints


def save_inpainter(path: str | Path, inpainter: Inpainter, meta: dict[str, Any], half: bool = False,
                   embed_conditioner: bool = True) -> Path:
    """Write weights (+ the conditioner's, when embedded) and a sidecar of kind "inpainter".

    `meta` must hold `arch` and `arch_args`; `conditioning` (from `classifier_record`) is required
    when the inpainter has a conditioner.
    """
    if "arch" not in meta:
        raise ValueError("inpainter checkpoint metadata needs 'arch' (and 'arch_args')")
    tensors = {GENERATOR_PREFIX + k: v for k, v in inpainter.generator.state_dict().items()}
    meta = {"kind": "inpainter", "classes": list(CLASSES), "arch_args": {}, "stitch": {"feather": inpainter.feather},
            **meta}
    if inpainter.conditioner is not None:
        if not meta.get("conditioning"):
            raise ValueError("a conditioned inpainter needs meta['conditioning'] (see classifier_record)")
        meta["conditioning"] = {**meta["conditioning"], "embedded": bool(embed_conditioner)}
        if embed_conditioner:
            tensors.update({CONDITIONER_PREFIX + k: v for k, v in inpainter.conditioner.state_dict().items()})
    return save_checkpoint(path, tensors, meta, half=half)


def load_inpainter(path: str | Path, device: str | torch.device = "cpu") -> Inpainter:
    """Rebuild an inpainter from its checkpoint (sidecar + weights), in eval mode on `device`."""
    tensors, meta = load_checkpoint(path, device, kind="inpainter")
    _check_conditioning(meta.get("conditioning"), path)
    arch = meta["arch"]
    args = meta.get("arch_args") or {}
    if arch not in GENERATORS and arch not in BASELINES:
        raise UnveilError(f"{path}: unknown inpainter architecture {arch!r}")
    create = create_generator if arch in GENERATORS else create_baseline
    generator = _load_part(lambda: create(arch, **args), tensors, GENERATOR_PREFIX, path)
    conditioner = None
    cond = meta.get("conditioning")
    if cond:
        if cond.get("embedded"):
            build = lambda: create_classifier(cond["arch"], **cond.get("arch_args") or {})  # noqa: E731
            conditioner = _load_part(build, tensors, CONDITIONER_PREFIX, path)
        else:
            conditioner = _load_referenced_conditioner(path, cond, device)
    if getattr(generator, "cond_dim", 0) and conditioner is None:
        raise UnveilError(f"{path}: the generator reads a classifier's output (cond_dim > 0), but the sidecar "
                          f"names no conditioning classifier")
    return Inpainter(generator, conditioner, _feather(meta, path), meta).to(device).eval()


def _check_conditioning(cond: dict | None, path) -> None:
    """An inpainter sidecar's `conditioning` names the classifier it reads: checked before it is used."""
    if not cond:
        return
    needs = {"arch": str, "arch_args": dict} if cond.get("embedded") else {"path": str}
    for key, kind in needs.items():
        value = cond.get(key, {} if key == "arch_args" else None)
        if not isinstance(value, kind) or (kind is str and not value.strip()):
            raise UnveilError(f"{path}: the sidecar's conditioning.{key} must be a {kind.__name__}, "
                              f"got {cond.get(key)!r}")


def _feather(meta: dict, path) -> int:
    feather = (meta.get("stitch") or {}).get("feather", 0)
    if isinstance(feather, bool) or not isinstance(feather, int) or feather < 0:
        raise UnveilError(f"{path}: the sidecar's stitch.feather must be an integer >= 0, got {feather!r}")
    return feather


def _load_part(build: Callable[[], nn.Module], tensors: dict, prefix: str, path) -> nn.Module:
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    return load_model(build, state, path, f"{prefix.rstrip('.')} weights")


def _load_referenced_conditioner(path, cond: dict, device) -> nn.Module:
    """A conditioner stored by path and SHA-256: the first candidate with the recorded weights (beside
    the checkpoint, as given, relative to the checkpoint, one folder up), else the first that exists,
    with a warning."""
    here = checkpoint_paths(path)[1].parent
    given = Path(cond["path"])
    candidates = [here / given.name, given, here / given, here.parent / given]
    found = [c for c in dict.fromkeys(candidates) if checkpoint_paths(c)[0].exists()]
    if not found:
        raise UnveilError(f"{path}: its conditioning classifier {cond['path']} was not found "
                          f"(looked beside the checkpoint, as given and one folder up)")
    expected = cond.get("weights_sha256")
    match = next((c for c in found if not expected or weights_digest(c) == expected), None)
    if match is None:
        match = found[0]
        log.warning(f"{path}: conditioning classifier {match} has changed since training "
                    f"(SHA-256 differs); reconstructions may differ")
    return load_classifier(match, device)[0]
