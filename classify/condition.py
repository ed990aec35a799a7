"""What a classifier sees: full faces, occluded faces, or faces reconstructed by a named inpainter.

The reconstructed condition goes through one small hook into the inpaint stage,
`inpaint.load_inpainter(path, device)` -> a model with `reconstruct(occluded, hole) -> stitched faces`,
imported only when that condition is used (the classifier stage never needs the inpaint package).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unveil.errors import UnveilError
from unveil.occlusion import Occlusion

from .config import ConditionConfig


def load_inpainter(path: str, device: torch.device | str):
    """The inpaint stage's loader, imported lazily; a clear error when that stage is not installed."""
    try:
        from inpaint import load_inpainter as loader
    except ImportError as exc:
        raise UnveilError(f"condition 'reconstructed' needs the inpaint stage (inpaint.load_inpainter): {exc}") from None
    return loader(path, device)


@dataclass
class Condition:
    """Applies a training/evaluation condition to float faces [N, 1, H, W] in [0, 1].

    `occlusion` is None for full faces; `inpainter` (anything with `reconstruct(occluded, hole)`) turns
    occluded faces into reconstructed ones.
    """

    name: str = "full"
    occlusion: Occlusion | None = None
    inpainter: object | None = None
    inpainter_path: str | None = None

    @classmethod
    def from_config(cls, cfg: ConditionConfig, device: torch.device | str = "cpu") -> "Condition":
        if cfg.name == "full":
            return cls()
        occlusion = Occlusion.parse(cfg.occlusion)
        if cfg.name == "occluded":
            return cls("occluded", occlusion)
        return cls("reconstructed", occlusion, load_inpainter(cfg.inpainter, device), str(cfg.inpainter))

    @classmethod
    def build(cls, occlusion: str | None = None, inpainter: str | None = None,
              device: torch.device | str = "cpu") -> "Condition":
        """From command-line style options: no occlusion -> full; an inpainter -> reconstructed."""
        occ = occlusion if occlusion and occlusion != "none" else None
        try:
            if inpainter:
                return cls.from_config(ConditionConfig("reconstructed", occ or "lower-half", inpainter), device)
            return cls.from_config(ConditionConfig("occluded", occ) if occ else ConditionConfig(), device)
        except ValueError as exc:
            raise UnveilError(f"bad occlusion {occlusion!r}: {exc}") from None

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """Faces as this condition shows them; `seed` picks the masks (re-drawn per batch and epoch)."""
        if self.occlusion is None:
            return images
        occluded, hole = self.occlusion(images, seed=seed)
        if self.inpainter is None:
            return occluded
        return self.inpainter.reconstruct(occluded, hole).to(images.dtype).clamp(0, 1)

    def apply_batched(self, images: torch.Tensor, seed: int = 0, batch_size: int = 1024) -> torch.Tensor:
        """`__call__` over a large set in batches (each batch its own seed), e.g. a fixed val set."""
        if self.occlusion is None:
            return images
        return torch.cat([self(images[i:i + batch_size], seed=seed + i // batch_size)
                          for i in range(0, len(images), batch_size)])

    def describe(self) -> dict:
        """The sidecar's record of the condition."""
        return {"condition": self.name, "occlusion": str(self.occlusion) if self.occlusion else "none",
                "inpainter": self.inpainter_path}
