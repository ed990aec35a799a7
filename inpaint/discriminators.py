"""Discriminators, registered by name: `patchgan` (pix2pix's conditional PatchGAN, sized for 48x48).

The discriminator is conditioned on what the generator saw: its input is the occluded image (hidden
pixels zeroed), the hole mask and the candidate face (the real face, or the stitched reconstruction),
so it judges whether the lower face fits *this* upper half, not just whether it looks like a face.

    D = create_discriminator("patchgan")
    logits = D(occluded, hole, candidate)   # [N, 1, 10, 10]: one real/fake score per patch
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from unveil.registry import Registry

DISCRIMINATORS: Registry[nn.Module] = Registry("discriminator")


class PatchGAN(nn.Module):
    """Conditional PatchGAN (Isola et al. 2017) for 48x48 faces.

    `n_layers` stride-2 4x4 convolutions, one stride-1 4x4 convolution, and a 4x4 output
    convolution, LeakyReLU(0.2) between them. With the default `n_layers=2` each output score sees a
    34x34 patch (about 70 % of the face, so a patch over the mouth also sees the eyes it must match)
    on a 10x10 grid; `n_layers=1` gives 16x16 patches, pix2pix's 70/256 proportion.
    Spectral normalisation replaces pix2pix's batch norm: it keeps the critic Lipschitz without
    mixing statistics of the real and fake batches, and is stable with small batches.

    With `num_classes` > 0 it is class-conditional by projection (Miyato & Koyama 2018): each patch's
    score adds the inner product of its features with an embedding of the face's class, so a drawn
    mouth must look like the expression it is labelled with, not only like a mouth.

    Shape:
        occluded, hole, candidate: [N, 1, H, W]; labels: [N] (class-conditional only) -> logits [N, 1, H', W'].
    """

    def __init__(self, ndf: int = 32, n_layers: int = 2, spectral: bool = True, num_classes: int = 0):
        super().__init__()
        sn = spectral_norm if spectral else (lambda m: m)
        layers: list[nn.Module] = []
        cin, cout = 3, int(ndf)
        for _ in range(int(n_layers)):
            layers += [sn(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
            cin, cout = cout, cout * 2
        layers += [sn(nn.Conv2d(cin, cout, 4, 1, 1)), nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.out = sn(nn.Conv2d(cout, 1, 4, 1, 1))
        self.num_classes = int(num_classes)
        self.embed = sn(nn.Embedding(self.num_classes, cout)) if self.num_classes else None

    def forward(self, occluded: torch.Tensor, hole: torch.Tensor, candidate: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        hole = hole.to(candidate.dtype)
        x = torch.cat([occluded.to(candidate.dtype) * (1 - hole), hole, candidate], 1)
        h = self.features((x - 0.5) * 2)
        logits = self.out(h)
        if self.embed is None:
            return logits
        if labels is None:
            raise ValueError("this discriminator is class-conditional: pass the faces' labels")
        # The projection on the output's grid: the 4x4 stride-1 output conv shrinks the map by one.
        pooled = F.avg_pool2d(h, 2, stride=1)
        return logits + (pooled * self.embed(labels).to(h.dtype)[:, :, None, None]).sum(1, keepdim=True)


@DISCRIMINATORS.register("patchgan")
def patchgan(ndf: int = 32, n_layers: int = 2, spectral: bool = True, num_classes: int = 0) -> PatchGAN:
    """Conditional PatchGAN: 34x34 patches on a 10x10 grid at 48x48 (~0.17 M parameters); with
    `num_classes`, class-conditional by projection."""
    return PatchGAN(ndf, n_layers, spectral, num_classes)


def create_discriminator(name: str, **kwargs) -> nn.Module:
    return DISCRIMINATORS.create(name, **kwargs)
