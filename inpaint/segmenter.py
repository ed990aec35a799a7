"""Finding the hole on a real face: a small U-Net that decides whether an aligned 48x48 face wears a mask
and marks the pixels the mask hides, for `unveil predict --hole auto`. The generators then fill exactly
those pixels.

    segmenter = load_segmenter("segmenter")             # the shipped one (a path works too)
    hole, masked = segmenter.find(faces)                # [N, 1, 48, 48] of 0/1 (1 = hidden), bool [N]

Two outputs: per-pixel logits, and (with `presence`) one logit per face that it wears a mask, read
from the bottleneck. The decision is the presence head's, not a count of marked pixels: on real masks
(shading, folds, prints) the pixel map is least sure exactly where a count would need it. A segmenter
without the head (the first shipped one) decides by area: a mask when at least `MIN_AREA` of the crop
is marked.

Training (`unveil train-segmenter`, `inpaint.segmenter_train`) shows it FER2013 faces wearing the
project's synthetic masks, and, with a `photos` section, aligned photo crops: real masked and bare
faces (presence labels, weak pixel labels), masks painted on photos and pixel-labelled masks.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from unveil.checkpoint import load_checkpoint, load_model, save_checkpoint
from unveil.registry import Registry
from unveil.runtime import autocast, eval_mode
from unveil.shipped import resolve_checkpoint

from .generators import DoubleConv, UpConv

SEGMENTERS: Registry[nn.Module] = Registry("segmenter")


MIN_AREA = 0.02  # without a presence head: a hole under 2 % of the crop means no mask was found


class MaskSegmenter(nn.Module):
    """U-Net over a grayscale face -> per-pixel logits that the pixel is hidden by a mask, and (with
    `presence`) a logit that the face wears one.

    Shape:
        images: [N, 1, H, W] in [0, 1], H and W divisible by 2 ** (len(widths) - 1) -> (logits [N, 1, H, W],
        presence logits [N] or None).
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), presence: bool = False):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        # Mean and max over the bottleneck: "is there mask texture anywhere" needs the max.
        self.presence = nn.Linear(2 * widths[-1], 1) if presence else None
        chans = (1, *widths)
        self.encoders = nn.ModuleList(DoubleConv(chans[i], chans[i + 1]) for i in range(len(widths)))
        self.ups = nn.ModuleList(UpConv(widths[i + 1], widths[i]) for i in reversed(range(len(widths) - 1)))
        self.decoders = nn.ModuleList(DoubleConv(2 * widths[i], widths[i]) for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, skips = (images - 0.5) / 0.25, []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        presence = None
        if self.presence is not None:
            presence = self.presence(torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)).squeeze(1)
        for up, decoder in zip(self.ups, self.decoders):
            x = decoder(torch.cat([up(x), skips.pop()], 1))
        return self.head(x), presence

    @torch.inference_mode()
    def find(self, images: torch.Tensor, threshold: float = 0.5,
             precision: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
        """(the hole as float 0/1 [N, 1, H, W], 1 = hidden and all 0 where no mask was found; whether a
        mask was found, bool [N]), on the images' device, in eval mode."""
        probability, masked = self.probabilities(images, precision)
        return (probability > threshold).float(), masked

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor, precision: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
        """(each pixel's probability of being hidden, float [N, 1, H, W], all 0 where no mask was found;
        whether a mask was found, bool [N]), on the images' device, in eval mode."""
        device = next(self.parameters()).device
        with eval_mode(self), autocast(device, precision):
            logits, presence = self(images.to(device).float().contiguous(memory_format=torch.channels_last))
        probability = logits.float().sigmoid()
        area = (probability > 0.5).float().mean((1, 2, 3))
        masked = presence.float() > 0 if presence is not None else area >= MIN_AREA
        return (probability * masked.view(-1, 1, 1, 1)).to(images.device), masked.to(images.device)

    def predict(self, images: torch.Tensor, threshold: float = 0.5, precision: str = "auto") -> torch.Tensor:
        """The hole alone (see `find`)."""
        return self.find(images, threshold, precision)[0]


@SEGMENTERS.register("mask_unet")
def mask_unet(widths: tuple[int, ...] = (16, 32, 64), presence: bool = False) -> MaskSegmenter:
    """A three-level U-Net, ~0.1 M parameters at the default widths (0.2 MB in fp16)."""
    return MaskSegmenter(tuple(widths), presence)


def save_segmenter(path: str | Path, model: nn.Module, meta: dict, half: bool = False) -> Path:
    """Checkpoint a segmenter; `meta` names `arch` and `arch_args` so it can be rebuilt."""
    if "arch" not in meta:
        raise ValueError("segmenter checkpoint metadata needs 'arch' (and 'arch_args')")
    return save_checkpoint(path, model.state_dict(), {"kind": "segmenter", "arch_args": {}, **meta}, half=half)


def load_segmenter(spec: str | Path, device: str | torch.device = "cpu",
                   checkpoints: str | Path | None = None) -> MaskSegmenter:
    """A segmenter checkpoint by path or shipped name, in eval mode on `device`."""
    path = resolve_checkpoint(spec, checkpoints)
    tensors, meta = load_checkpoint(path, device, kind="segmenter")
    model = load_model(lambda: SEGMENTERS.create(meta["arch"], **meta.get("arch_args") or {}), tensors, path)
    model.meta = meta
    return model.to(device).to(memory_format=torch.channels_last).eval()


def hole_iou(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Intersection over union per image [N] of two 0/1 holes; 1 where both are empty.

    Shape:
        pred, truth: [N, 1, H, W].
    """
    pred, truth = pred.flatten(1) > 0.5, truth.flatten(1) > 0.5
    inter, union = (pred & truth).sum(1).float(), (pred | truth).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
