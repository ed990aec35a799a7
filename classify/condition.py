"""What a classifier sees: full faces, occluded faces, or faces reconstructed by an inpainter.

The classifier stage does not know how faces are reconstructed: a reconstructed condition is given a
`reconstruct(occluded, hole) -> faces` function by whoever builds it (the pipelines pass an inpainter's),
so nothing here imports the inpaint stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from unveil.errors import UnveilError
from unveil.occlusion import Occlusion

from .config import ConditionConfig

Reconstruct = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # (occluded, hole) -> stitched faces
LoadReconstruct = Callable[[str], Reconstruct]                       # inpainter checkpoint -> Reconstruct


@dataclass
class Condition:
    """Applies a training/evaluation condition to float faces [N, 1, H, W] in [0, 1].

    `occlusion` is None for full faces; `reconstruct` turns occluded faces into reconstructed ones.
    """

    name: str = "full"
    occlusion: Occlusion | None = None
    reconstruct: Reconstruct | None = None
    inpainter_path: str | None = None

    @classmethod
    def from_config(cls, cfg: ConditionConfig, load_reconstruct: LoadReconstruct | None = None) -> "Condition":
        if cfg.name == "full":
            return cls()
        occlusion = Occlusion.parse(cfg.occlusion)
        if cfg.name == "occluded":
            return cls("occluded", occlusion)
        if load_reconstruct is None:
            raise UnveilError(f"condition 'reconstructed' ({cfg.inpainter}) needs a way to load the inpainter; "
                              f"run it through the unveil command line")
        return cls("reconstructed", occlusion, load_reconstruct(str(cfg.inpainter)), str(cfg.inpainter))

    @classmethod
    def build(cls, occlusion: str | None = None, inpainter: str | None = None,
              load_reconstruct: LoadReconstruct | None = None) -> "Condition":
        """From command-line style options: no occlusion -> full; an inpainter -> reconstructed."""
        occ = occlusion if occlusion and occlusion != "none" else None
        try:
            if inpainter:
                config = ConditionConfig("reconstructed", occ or "lower-half", inpainter)
                return cls.from_config(config, load_reconstruct)
            return cls.from_config(ConditionConfig("occluded", occ) if occ else ConditionConfig())
        except ValueError as exc:
            raise UnveilError(f"bad occlusion {occlusion!r}: {exc}") from None

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, seed: int = 0, worn: torch.Tensor | None = None) -> torch.Tensor:
        """Faces as this condition shows them; `seed` picks the masks (re-drawn per batch and epoch);
        `worn` (bool [N], `Faces.worn`) marks faces that already wear their occlusion: shown as they are."""
        if self.occlusion is None:
            return images
        occluded, hole = self.occlusion(images, seed=seed)
        return self._shown(images, occluded, hole, worn)

    def over_set(self, images: torch.Tensor, seed: int = 0, worn: torch.Tensor | None = None) -> torch.Tensor:
        """A whole evaluation set under this condition, masks drawn as `Occlusion.over_set` draws them."""
        if self.occlusion is None:
            return images
        occluded, hole = self.occlusion.over_set(images, seed)
        return self._shown(images, occluded, hole, worn)

    def over_faces(self, faces, seed: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
        """`over_set` for a `Faces` set, on `device` (the photo-mask occlusion paints each face's photo)."""
        images = faces.float_images().to(device)
        if self.occlusion is None:
            return images
        occluded, hole = (x.to(device) for x in self.occlusion.over_faces(faces, seed))
        return self._shown(images, occluded, hole, faces.worn)

    def _shown(self, images: torch.Tensor, occluded: torch.Tensor, hole: torch.Tensor,
               worn: torch.Tensor | None) -> torch.Tensor:
        if worn is not None and bool(worn.any()):
            if self.reconstruct is not None:
                raise UnveilError("faces that wear their occlusion (a data.mix part with wear) carry no hole to "
                                  "reconstruct; train the reconstructed condition without such parts")
            return torch.where(worn.to(images.device).view(-1, 1, 1, 1), images, occluded)
        return occluded if self.reconstruct is None else self._reconstructed(occluded, hole, images.dtype)

    def _reconstructed(self, occluded: torch.Tensor, hole: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.reconstruct(occluded, hole).to(dtype).clamp(0, 1)

    def describe(self) -> dict:
        """The sidecar's record of the condition."""
        return {"condition": self.name, "occlusion": str(self.occlusion) if self.occlusion else "none",
                "inpainter": self.inpainter_path}
