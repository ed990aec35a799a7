"""MTCNN face detection with five landmarks (Zhang et al. 2016), our own code on the published weights.

The cascade: an image pyramid scanned by the fully convolutional P-Net (12x12 windows, stride 2)
proposes boxes; R-Net (24x24 crops) and O-Net (48x48 crops) re-score and refine them, and O-Net adds
five landmarks. Every stage is batched in torch; only the pyramid scales are a Python loop.

The weights are the original Caffe models as converted by facenet-pytorch and shipped inside its PyPI
package (``facenet_pytorch/data/{pnet,rnet,onet}.pt``, plain state dicts). We only read those files:
nothing is downloaded and facenet-pytorch's own code is never imported. Their chain, MIT at every
step: Zhang's Caffe models (kpzhang93/MTCNN_face_detection_alignment, (c) 2016 Kaipeng Zhang) ->
David Sandberg's TensorFlow port (davidsandberg/facenet, det1-3.npy, (c) 2016) -> facenet-pytorch
((c) 2019 Timothy Esler). The paper trained them on WIDER FACE and CelebA.

Coordinates: OpenCV's convention, the centre of pixel (row r, column c) is the point (x=c, y=r).
Inside the cascade boxes are kept in *edge* coordinates (pixel c spans [c, c+1)), which is what
resizing and ``roi_align(aligned=True)`` use; they are shifted by half a pixel on the way out.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unveil.errors import UnveilError
from unveil.runtime import one_cpu_thread, prepare_model
from .boxes import as_rgb, box_ops, nms_min
from .face import Face, faces_from

__all__ = ["MTCNN", "PNet", "RNet", "ONet", "weights_dir"]

WEIGHTS_PACKAGE = "facenet_pytorch"
INSTALL_HINT = 'pip install "facenet-pytorch>=2.5,<2.6"'

PYRAMID_FACTOR = 0.709  # the paper's scale step: about sqrt(1/2), two pyramid levels per octave
PNET_CELL, PNET_STRIDE = 12, 2  # P-Net's window and its output stride, in pyramid pixels


# --------------------------------------------------------------------------- the three networks


def _caffe_input(images: Tensor) -> Tensor:
    """RGB in 0..255 -> the Caffe models' input range, about [-1, 1]."""
    return (images - 127.5) * 0.0078125


def _flatten_caffe(x: Tensor) -> Tensor:
    """Flatten conv features in the order the converted dense weights expect, (N, W, H, C).

    The Caffe models were trained on transposed images; the conversion folded that into the conv
    kernels, but the first dense layer still reads its input column-major.
    """
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal net: fully convolutional, one 12x12 window per output cell (stride 2).

    Shape:
        - input: :math:`(N, 3, H, W)` normalised RGB, H and W at least 12
        - output: face probability :math:`(N, H', W')` and box offsets :math:`(N, 4, H', W')`,
          :math:`H' = \\lceil (H - 2) / 2 \\rceil - 4`
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / not face
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box offsets

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_1(x).softmax(1)[:, 1], self.conv4_2(x)


class _RefineNet(nn.Module):
    """R-Net and O-Net's shared shape: conv-PReLU layers (max-pooled where `pools` says), one dense
    PReLU layer on the column-major flattened map, and a linear head per output. Layers are named as
    in the published weights (conv1, prelu1, pool1, ..., denseK, preluK, denseK+1_1, ...)."""

    def __init__(self, convs: list[tuple[int, int, int]], pools: dict[int, tuple[int, int]], dense: tuple[int, int],
                 heads: tuple[int, ...]):
        super().__init__()
        self.depth = len(convs)
        for i, (cin, cout, kernel) in enumerate(convs, 1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, kernel))
            setattr(self, f"prelu{i}", nn.PReLU(cout))
            if i in pools:
                setattr(self, f"pool{i}", nn.MaxPool2d(*pools[i], ceil_mode=True))
        d = self.depth + 1
        setattr(self, f"dense{d}", nn.Linear(*dense))
        setattr(self, f"prelu{d}", nn.PReLU(dense[1]))
        for j, size in enumerate(heads, 1):
            setattr(self, f"dense{d + 1}_{j}", nn.Linear(dense[1], size))

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        for i in range(1, self.depth + 1):
            x = getattr(self, f"prelu{i}")(getattr(self, f"conv{i}")(x))
            if hasattr(self, f"pool{i}"):
                x = getattr(self, f"pool{i}")(x)
        d = self.depth + 1
        x = getattr(self, f"prelu{d}")(getattr(self, f"dense{d}")(_flatten_caffe(x)))
        heads = [module(x) for name, module in self.named_children() if name.startswith(f"dense{d + 1}_")]
        return (heads[0].softmax(1)[:, 1], *heads[1:])


class RNet(_RefineNet):
    """Refinement net on 24x24 crops.

    Shape:
        - input: :math:`(N, 3, 24, 24)` normalised RGB
        - output: face probability :math:`(N,)` and box offsets :math:`(N, 4)`
    """

    def __init__(self) -> None:
        super().__init__([(3, 28, 3), (28, 48, 3), (48, 64, 2)], {1: (3, 2), 2: (3, 2)}, (64 * 3 * 3, 128), (2, 4))


class ONet(_RefineNet):
    """Output net on 48x48 crops: score, box offsets and five landmarks.

    Shape:
        - input: :math:`(N, 3, 48, 48)` normalised RGB
        - output: face probability :math:`(N,)`, box offsets :math:`(N, 4)`, landmarks
          :math:`(N, 10)` as five x then five y, in fractions of the input box
    """

    def __init__(self) -> None:
        super().__init__([(3, 32, 3), (32, 64, 3), (64, 64, 3), (64, 128, 2)], {1: (3, 2), 2: (3, 2), 3: (2, 2)},
                         (128 * 3 * 3, 256), (2, 4, 10))


# --------------------------------------------------------------------------- weights


def weights_dir() -> Path:
    """The folder of facenet-pytorch's MTCNN state dicts, found without importing the package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UnveilError(f"the face detector needs the MTCNN weights shipped in the facenet-pytorch package, "
                          f"which is not installed; install it with: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _load(net: nn.Module, name: str) -> nn.Module:
    path = weights_dir() / f"{name}.pt"
    if not path.is_file():
        raise UnveilError(f"{path}: MTCNN weights missing; reinstall them with: {INSTALL_HINT}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:  # a truncated file, a pickle that is not a plain state dict, wrong keys
        raise UnveilError(f"{path}: cannot load the MTCNN {name} weights ({exc})") from None
    return net.eval().requires_grad_(False)


# --------------------------------------------------------------------------- results


# --------------------------------------------------------------------------- box helpers (edge coordinates)


def _regress(boxes: Tensor, offsets: Tensor) -> Tensor:
    """Move each box edge by its offset, given in fractions of the box's width / height.

    Shape:
        - boxes: :math:`(K, 4)` x0, y0, x1, y1; offsets: :math:`(K, 4)`
        - output: :math:`(K, 4)`
    """
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + offsets * size


def _square(boxes: Tensor) -> Tensor:
    """The square of side max(w, h) with the same centre: R-Net and O-Net see undistorted faces.

    Shape:
        - boxes, output: :math:`(K, 4)`
    """
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(1, keepdim=True) / 2
    return torch.cat([centre - half, centre + half], 1)


# --------------------------------------------------------------------------- the detector


class MTCNN:
    """MTCNN: faces, scores and five landmarks in an RGB photo.

    Args:
        min_face: the smallest face searched for and reported (box side, pixels). Smaller faces
            are not found, and a box found smaller than this is dropped: a face under ~40 px holds
            too little detail for a 48x48 crop, and skipping the finest pyramid levels saves time.
        thresholds: face-probability cut-offs of P-Net, R-Net and O-Net (the paper's code uses
            0.6, 0.7, 0.7).
        score: the final cut-off on O-Net's probability: below 0.9, mostly patterns that look like
            faces (facenet-pytorch's and most applications' choice).
        device: where the networks run.

    Example:
        >>> detector = MTCNN()
        >>> faces = detector.detect(skimage.data.astronaut())
        >>> faces[0].landmarks.shape
        (5, 2)
    """

    name = "mtcnn"

    def __init__(self, min_face: int = 40, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 score: float = 0.9, device: str | torch.device = "cpu") -> None:
        if isinstance(min_face, bool) or not isinstance(min_face, (int, float)) or min_face < PNET_CELL:
            raise UnveilError(f"min_face must be a number of pixels >= {PNET_CELL}, got {min_face!r}")
        if len(thresholds) != 3 or not all(0 <= t < 1 for t in thresholds):
            raise UnveilError(f"thresholds must be three probabilities in [0, 1), got {thresholds!r}")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score < 1:
            raise UnveilError(f"score must be a probability in [0, 1), got {score!r}")
        self.min_face, self.score = float(min_face), float(score)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.device = torch.device(device)
        # Channels-last: oneDNN's convolutions and max-pools are faster with it (27 vs 41 ms a photo).
        self.pnet = prepare_model(_load(PNet(), "pnet"), self.device)
        self.rnet = prepare_model(_load(RNet(), "rnet"), self.device)
        self.onet = prepare_model(_load(ONet(), "onet"), self.device)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image``, best score first.

        Args:
            image: RGB uint8 [H, W, 3], or grayscale uint8 [H, W] (repeated to three channels).
        """
        rgb = as_rgb(image)
        with torch.inference_mode(), one_cpu_thread(self.device):
            x = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1)[None].float().contiguous()
            boxes = self._propose(x)
            chain = _halving_chain(x) if len(boxes) else []
            boxes = self._refine(chain, boxes)
            boxes, scores, points = self._output(chain, boxes)
        sure = scores >= max(self.score, self.thresholds[2])
        return faces_from(boxes[sure], scores[sure], points[sure])

    # The three stages. Boxes are float [K, 4] in edge coordinates of the full image.

    def _scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales: the first maps a min_face face to P-Net's 12 px window, the last keeps the
        shorter side at least 12 px (a face filling the photo)."""
        scale, shortest = PNET_CELL / self.min_face, min(height, width)
        scales = []
        while shortest * scale >= PNET_CELL:
            scales.append(scale)
            scale *= PYRAMID_FACTOR
        return scales

    def _propose(self, x: Tensor) -> Tensor:
        """P-Net over the pyramid -> regressed, squared candidate boxes.

        Shape:
            - x: :math:`(1, 3, H, W)` RGB in 0..255
            - output: :math:`(K, 4)`
        """
        height, width = x.shape[-2:]
        found, found_scores = [], []
        for scale in self._scales(height, width):
            size = (int(np.ceil(height * scale)), int(np.ceil(width * scale)))
            # Antialiased (triangle-filter) shrinking: as good as area averaging here, and faster.
            level = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
            prob, offsets = self.pnet(_caffe_input(level))
            rows, cols = torch.nonzero(prob[0] >= self.thresholds[0], as_tuple=True)
            if len(rows) == 0:
                continue
            # Each cell's 12x12 window, mapped back with the level's exact per-axis scale.
            corner = torch.stack([cols, rows], 1).float() * PNET_STRIDE
            window = torch.cat([corner, corner + PNET_CELL], 1)
            window /= torch.tensor([size[1] / width, size[0] / height] * 2, device=x.device)
            scores = prob[0, rows, cols]
            keep = box_ops().nms(window, scores, 0.5)  # one scale's many overlapping windows first: keeps K small
            found.append(torch.cat([window[keep], offsets[0, :, rows[keep], cols[keep]].T], 1))
            found_scores.append(scores[keep])
        if not found:
            return x.new_zeros(0, 4)
        boxes, scores = torch.cat(found), torch.cat(found_scores)
        boxes = boxes[box_ops().nms(boxes[:, :4], scores, 0.7)]  # then across scales
        return _square(_regress(boxes[:, :4], boxes[:, 4:]))

    def _crops(self, chain: list[Tensor], boxes: Tensor, size: int) -> Tensor:
        """Square crops resized to size x size, batched.

        Each box is read from the level of the halving chain where it spans size..2*size pixels,
        with 2x2 bilinear samples per output pixel: large faces shrink without aliasing at a cost
        that does not grow with the face (sampling the full image adaptively cost 45 ms for 50
        boxes of 300 px). Outside the image ``roi_align`` reads 0, the black padding the original
        cascade used.

        Shape:
            - chain: levels :math:`(1, 3, H / 2^k, W / 2^k)`; boxes: :math:`(K, 4)`
            - output: :math:`(K, 3, size, size)` normalised for the networks
        """
        side = (boxes[:, 2:] - boxes[:, :2]).amax(1).clamp_min(1)
        levels = (side / size).log2().floor().clamp(0, len(chain) - 1).long()
        crops = boxes.new_empty(len(boxes), 3, size, size)
        for k in levels.unique().tolist():
            pick = levels == k
            rois = torch.cat([boxes.new_zeros(int(pick.sum()), 1), boxes[pick]], 1)
            crops[pick] = box_ops().roi_align(chain[k], rois, (size, size), spatial_scale=0.5**k, sampling_ratio=2,
                                    aligned=True)
        return _caffe_input(crops)

    def _refine(self, chain: list[Tensor], boxes: Tensor) -> Tensor:
        """R-Net: re-score on 24x24 crops, drop, merge, regress, square."""
        if len(boxes) == 0:
            return boxes
        prob, offsets = self.rnet(self._crops(chain, boxes, 24))
        ok = prob >= self.thresholds[1]
        boxes, prob, offsets = boxes[ok], prob[ok], offsets[ok]
        keep = box_ops().nms(boxes, prob, 0.7)
        return _square(_regress(boxes[keep], offsets[keep]))

    def _output(self, chain: list[Tensor], boxes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """O-Net: final scores, boxes and landmarks (in the image), faces under min_face dropped.

        Shape:
            - output: boxes :math:`(F, 4)`, scores :math:`(F,)`, landmarks :math:`(F, 5, 2)`
        """
        if len(boxes) == 0:
            return boxes, boxes.new_zeros(0), boxes.new_zeros(0, 5, 2)
        prob, offsets, marks = self.onet(self._crops(chain, boxes, 48))
        ok = prob >= self.thresholds[2]
        boxes, prob, offsets, marks = boxes[ok], prob[ok], offsets[ok], marks[ok]
        # Landmarks are fractions of the box O-Net saw, before its own regression moves the box.
        corner, side = boxes[:, None, :2], boxes[:, None, 2:] - boxes[:, None, :2]
        points = corner + torch.stack([marks[:, :5], marks[:, 5:]], 2) * side
        boxes = _regress(boxes, offsets)
        big = (boxes[:, 2:] - boxes[:, :2]).amax(1) >= self.min_face
        boxes, prob, points = boxes[big], prob[big], points[big]
        if len(boxes) == 0:
            return boxes, prob, points
        keep = nms_min(boxes.cpu(), prob.cpu(), 0.7).to(boxes.device)
        return boxes[keep], prob[keep], points[keep]


def _halving_chain(x: Tensor, smallest: int = 24) -> list[Tensor]:
    """The image and its 2x2-averaged halvings, down to a shorter side of ``smallest`` pixels.

    Shape:
        - x: :math:`(1, 3, H, W)`
        - output: levels :math:`(1, 3, \\lceil H / 2^k \\rceil, \\lceil W / 2^k \\rceil)`
    """
    chain = [x]
    while min(chain[-1].shape[-2:]) >= 2 * smallest:
        # ceil_mode: an odd last row or column averages what it has, so level k still maps u -> u / 2^k.
        chain.append(F.avg_pool2d(chain[-1], 2, ceil_mode=True))
    return chain


