"""Where the shipped FER2013 models and the experiment configs live: package data (`unveil.checkpoints`,
`unveil.configs`), found the same way from a checkout, an editable install or a wheel.

    judge = shipped_checkpoint("classifier_full")               # .../unveil/checkpoints/classifier_full
    path = resolve_checkpoint("runs/judge/best")                 # a path is taken as given
    path = resolve_checkpoint("inpainter_unet", "my/weights")    # a shipped name, from another folder
    config = resolve_config("configs/quickstart.yaml")           # works outside the source tree too
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from .checkpoint import checkpoint_paths
from .errors import UnveilError

JUDGE = "classifier_full"            # the full-face classifier that scores every condition
OCCLUDED = "classifier_occluded"     # reads the upper half; conditions the generators
PHOTO_JUDGE = "classifier_photos"    # the judge of photos: classifier_full fine-tuned on FER2013, KDEF and ExpW
PHOTO_READER = "classifier_photos_occluded"   # the upper-half reader for real masks' holes, on the same mix
FUSION = "fusion"                    # the one reading: reader and judge-on-reconstruction pooled (classify.fusion)
GUIDE = "classifier_guide"           # inside the generators' expression loss: never a judge
INPAINTER_PREFIX = "inpainter_"
CHECKPOINT_BUDGET = 32_000_000       # bytes: all of checkpoints/ (weights in fp16) stays under this, for the wheel


def _package_dir(package: str) -> Path:
    return Path(str(importlib.resources.files(package)))


def checkpoints_dir(override: str | Path | None = None) -> Path:
    """The folder of shipped checkpoints: `override` (the CLI's --checkpoints) or the installed package data."""
    if override is None:
        return _package_dir("unveil.checkpoints")
    folder = Path(override)
    if not folder.is_dir():
        raise UnveilError(f"{folder}: --checkpoints must be a folder of checkpoints (NAME.safetensors + NAME.json)")
    return folder


def shipped_names(folder: str | Path | None = None) -> list[str]:
    return sorted(p.stem for p in checkpoints_dir(folder).glob("*.json"))


def shipped_checkpoint(name: str, folder: str | Path | None = None) -> Path:
    """The shipped checkpoint `name` (no extension), or an error listing what is there."""
    path = checkpoints_dir(folder) / name
    if not checkpoint_paths(path)[1].exists():
        have = ", ".join(shipped_names(folder)) or "none"
        raise UnveilError(f"{path}: no shipped checkpoint {name!r} (shipped: {have})")
    return path


def shipped_inpainters(folder: str | Path | None = None) -> list[Path]:
    return [checkpoints_dir(folder) / n for n in shipped_names(folder) if n.startswith(INPAINTER_PREFIX)]


def _names_shipped(path: Path, folder_name: str) -> bool:
    """`NAME` or `checkpoints/NAME` (as the README writes them) may mean package data; other paths never do."""
    return len(path.parts) == 1 or (len(path.parts) == 2 and path.parts[0] == folder_name)


def resolve_checkpoint(spec: str | Path, folder: str | Path | None = None) -> Path:
    """A checkpoint path as given when its sidecar exists there; else, for `NAME` or `checkpoints/NAME`,
    the shipped checkpoint of that name."""
    if checkpoint_paths(spec)[1].exists():
        return Path(spec)
    name = checkpoint_paths(spec)[0].stem
    if _names_shipped(Path(spec), "checkpoints") and checkpoint_paths(checkpoints_dir(folder) / name)[1].exists():
        return checkpoints_dir(folder) / name
    raise UnveilError(f"{spec}: checkpoint not found (no {checkpoint_paths(spec)[1].name} there, and not a shipped "
                      f"name: {', '.join(shipped_names(folder)) or 'none shipped'})")


def configs_dir() -> Path:
    return _package_dir("unveil.configs")


def resolve_config(path: str | Path) -> Path:
    """A config file as given; else, for `NAME[.yaml]` or `configs/NAME.yaml`, the shipped config."""
    path = Path(path)
    if path.exists():
        return path
    shipped = configs_dir() / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    if _names_shipped(path, "configs") and shipped.exists():
        return shipped
    have = ", ".join(sorted(p.stem for p in configs_dir().glob("*.yaml")))
    raise UnveilError(f"{path}: config file not found (shipped configs: {have})")
