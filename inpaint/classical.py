"""Classical (non-trainable) inpainting baselines with the generators' interface, registered by name:
`telea`, `navier_stokes` (OpenCV's `cv2.inpaint`) and `mean_face` (the training-set mean face).

    G = create_baseline("telea")
    image = G(occluded, hole)            # [N, 1, H, W] in [0, 1]

    G = create_baseline("mean_face").fit(train_faces)   # uint8 [N, 48, 48] or float [N, 1, 48, 48]

They ignore expression conditioning (`cond`), and stitching keeps the visible pixels as for any
generator. `mean_face` keeps its face as a buffer, so it checkpoints like a trained generator.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from unveil.registry import Registry

BASELINES: Registry[nn.Module] = Registry("baseline")


class OpenCVInpaint(nn.Module):
    """`cv2.inpaint` (Telea 2004 fast marching, or Bertalmio et al. 2001 Navier-Stokes) per image.

    OpenCV has no batched call, so this loops over the batch on the CPU: one uint8 conversion for the
    whole batch, then one `cv2.inpaint` per face (about 0.1-0.3 ms each at 48x48).

    Args:
        method: "telea" or "navier_stokes".
        radius: neighbourhood radius in pixels that each hidden pixel is estimated from.
    """

    def __init__(self, method: str = "telea", radius: float = 3.0):
        super().__init__()
        if method not in ("telea", "navier_stokes"):
            raise ValueError(f"unknown OpenCV inpainting method {method!r}; valid: telea, navier_stokes")
        self.method, self.radius = method, float(radius)

    @torch.no_grad()
    def forward(self, occluded: torch.Tensor, hole: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        import cv2

        flag = cv2.INPAINT_TELEA if self.method == "telea" else cv2.INPAINT_NS
        hole_np = (hole[:, 0] > 0.5).cpu().numpy().astype(np.uint8)
        # Hidden pixels are zeroed first: the baseline sees no more than a generator does.
        img = (occluded[:, 0].float() * (1 - hole[:, 0].float())).clamp(0, 1).mul(255).round()
        img = img.to(torch.uint8).cpu().numpy()
        out = np.empty_like(img)
        for i in range(img.shape[0]):
            out[i] = cv2.inpaint(img[i], hole_np[i], self.radius, flag)
        return torch.from_numpy(out).to(occluded.device).unsqueeze(1).to(occluded.dtype) / 255.0


class MeanFace(nn.Module):
    """Fills the hole with the mean training face (a buffer: saved and loaded with the weights).

    Shape:
        mean: [1, 1, H, W]; call `fit(faces)` before use.
    """

    def __init__(self, size: int = 48):
        super().__init__()
        self.register_buffer("mean", torch.full((1, 1, size, size), float("nan")))

    @torch.no_grad()
    def fit(self, faces: torch.Tensor) -> "MeanFace":
        """Average `faces`: uint8 [N, H, W] (0-255) or float [N, 1, H, W] in [0, 1]."""
        if faces.dtype == torch.uint8:
            faces = faces.unsqueeze(1).float() / 255.0
        if faces.dim() != 4 or faces.shape[1] != 1 or faces.shape[0] == 0:
            raise ValueError(f"mean_face.fit needs faces [N, H, W] uint8 or [N, 1, H, W] float, "
                             f"got {tuple(faces.shape)}")
        self.mean = faces.float().mean(0, keepdim=True).to(self.mean.device)
        return self

    @property
    def fitted(self) -> bool:
        return not bool(torch.isnan(self.mean).any())

    def forward(self, occluded: torch.Tensor, hole: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if not self.fitted:
            raise RuntimeError("mean_face has no mean yet: call fit(training faces) or load a fitted checkpoint")
        if self.mean.shape[-2:] != occluded.shape[-2:]:
            raise ValueError(f"mean_face was fitted at {tuple(self.mean.shape[-2:])}, got images of "
                             f"{tuple(occluded.shape[-2:])}")
        return self.mean.to(occluded.dtype).expand_as(occluded)


@BASELINES.register("telea")
def telea(radius: float = 3.0) -> OpenCVInpaint:
    """OpenCV fast-marching inpainting (Telea 2004)."""
    return OpenCVInpaint("telea", radius)


@BASELINES.register("navier_stokes")
def navier_stokes(radius: float = 3.0) -> OpenCVInpaint:
    """OpenCV Navier-Stokes inpainting (Bertalmio, Bertozzi & Sapiro 2001)."""
    return OpenCVInpaint("navier_stokes", radius)


@BASELINES.register("mean_face")
def mean_face(size: int = 48) -> MeanFace:
    """The training-set mean face (call `fit`)."""
    return MeanFace(size)


def create_baseline(name: str, **kwargs) -> nn.Module:
    return BASELINES.create(name, **kwargs)
