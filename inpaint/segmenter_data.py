"""Photo training material for the hole model: aligned 48x48 crops with what is known of their masks.

    examples = photo_examples(PhotosConfig(...), "train")     # HoleExamples, built once and cached

Three kinds of photo, each framed exactly as `unveil predict` frames a face (the default detector, the
most confident face, `align_face`):

- **real masked and bare photos** (`masked_set`, e.g. masked-faces/real-crops; its train / val / test
  split by duplicate group). Whether the face wears a mask is known; where the mask is, is not. A bare
  face's pixels are all labelled "not mask". A masked face gets weak pixel labels from its landmarks:
  the core of the landmark hole (eroded by `CORE_MARGIN` px) is mask, the band above the eyes is not,
  everything between is left unlabelled.
- **masks painted on bare photos** (`painted` per bare photo, every style of
  `unveil.photo.masks.wear_mask`, seeded by the photo's index): the painted photo is detected and
  aligned again, and the painted pixels are carried into the crop: exact labels.
- **pixel-labelled photos** (`pixel_set`, e.g. masked-faces/synthetic-seg/training): the label image
  is carried into the crop with the photo: exact labels. Split 80 / 20 into train / val by path hash.
- **posed photos at every head angle** (`posed_set`, e.g. kdef: class folders in train/ val/ test/):
  each photo bare (every pixel "not mask"; turned and profile faces must not get a hole), with a mask
  painted on it and with another occluder painted on it (`unveil.occluders`: a hand, a tissue, a scarf
  or a phone), the painted photos detected and aligned again: exact labels.

Labels are `target` (1 = mask) and `weight` (1 = labelled) per pixel, and `masked` per face.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from unveil.data.cache import cache_dir, read_cache, write_cache
from unveil.errors import UnveilError
from unveil.logs import progress
from unveil.occluders import OCCLUDER_STYLES
from unveil.occlusion import MASK_STYLES
from unveil.photo import create_detector, landmark_hole
from unveil.photo.framing import FRAMING_VERSION, detector_settings, frame_face, frame_photos, warp_to_crop
from unveil.photo.hole_sets import masked_photos, pixel_labelled, read_hole_label
from unveil.photo.masks import wear_mask, wear_occluder
from unveil.photo.read import read_photo

__all__ = ["PhotosConfig", "HoleExamples", "photo_examples", "painted_photos", "weak_labels"]

BUILD_VERSION = 1
CORE_MARGIN = 3          # px eroded off the landmark hole: what is surely under a real mask
ABOVE_EYES = 0.15        # the band above this many inter-ocular distances below the eye line is never mask


@dataclass
class PhotosConfig:
    masked_set: str = ""         # a with_mask / without_mask photo set ("" leaves it out)
    pixel_set: str = ""          # a pixel-labelled set (images/ + masks/)
    painted: int = 2             # masks painted per bare training photo (0: none)
    posed_set: str = ""          # a class-folder photo set with split folders, every head angle (e.g. kdef)
    share: float = 0.5           # of each training batch drawn from the photos
    degrade: float = 1.0         # share of the FER2013 faces made photo-like (the photo crops always are)
    motion: float = 0.0          # share of the photo-like faces also given motion blur (a moving head or camera)

    def __post_init__(self):
        if self.painted < 0 or not 0 <= self.share < 1 or not 0 <= self.degrade <= 1 or not 0 <= self.motion <= 1:
            raise ValueError(f"photos needs painted >= 0, 0 <= share < 1, 0 <= degrade <= 1 and 0 <= motion <= 1 "
                             f"(got painted={self.painted}, share={self.share}, degrade={self.degrade}, "
                             f"motion={self.motion})")

    @property
    def used(self) -> bool:
        return bool(self.masked_set or self.pixel_set or self.posed_set) and self.share > 0


@dataclass
class HoleExamples:
    """Shape: images, target, weight: uint8 [N, 48, 48]; masked: bool [N]; kinds: N names (real, painted,
    pixel) for per-kind scores."""

    images: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor
    masked: torch.Tensor
    kinds: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.masked)

    def select(self, keep: torch.Tensor) -> "HoleExamples":
        idx = keep.nonzero().squeeze(1)
        return HoleExamples(self.images[idx], self.target[idx], self.weight[idx], self.masked[idx],
                            [self.kinds[i] for i in idx.tolist()])


def weak_labels(points: np.ndarray, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """(target, weight) uint8 [size, size] for a real masked face from its landmarks in the crop."""
    hole = landmark_hole(points, size)[0, 0].numpy().astype(np.uint8)
    core = cv2.erode(hole, np.ones((2 * CORE_MARGIN + 1,) * 2, np.uint8))
    left, right = points[0], points[1]
    iod = float(np.linalg.norm(right - left))
    down = np.array([-(right - left)[1], (right - left)[0]]) / max(iod, 1e-6)
    ys, xs = np.mgrid[0:size, 0:size]
    v = (xs - (left[0] + right[0]) / 2) * down[0] + (ys - (left[1] + right[1]) / 2) * down[1]
    above = (v < ABOVE_EYES * iod).astype(np.uint8)
    return core, np.maximum(core, above)


def photo_examples(cfg: PhotosConfig, split: str, use_cache: bool = True) -> HoleExamples:
    """Every photo example of `split` (train or val), from the cache when nothing changed."""
    parts = [p for p in (_real(cfg, split), _painted(cfg, split), _pixel(cfg, split), *_posed(cfg, split))
             if p is not None]
    if not parts:
        raise UnveilError(f"photos: no {split} examples (masked_set {cfg.masked_set!r}, pixel_set {cfg.pixel_set!r})")
    return HoleExamples(*(torch.cat([getattr(p, k) for p in parts]) for k in ("images", "target", "weight", "masked")),
                        sum((p.kinds for p in parts), []))


@functools.cache
def _detector():
    return create_detector()


def _real(cfg: PhotosConfig, split: str) -> HoleExamples | None:
    if not cfg.masked_set:
        return None
    photos = masked_photos(cfg.masked_set, split)
    framed = frame_photos([p.path for p in photos], _detector(), what=f"{Path(cfg.masked_set).name} {split}")
    keep = framed.found.numpy()
    masked = np.array([p.masked for p in photos])[keep]
    n = int(keep.sum())
    target, weight = np.zeros((n, 48, 48), np.uint8), np.ones((n, 48, 48), np.uint8)
    for i, (points, is_masked) in enumerate(zip(framed.points[keep].double().numpy(), masked)):
        if is_masked:
            target[i], weight[i] = weak_labels(points)
    return HoleExamples(framed.crops[keep], torch.from_numpy(target), torch.from_numpy(weight),
                        torch.from_numpy(masked), ["real"] * n)


def _painted(cfg: PhotosConfig, split: str) -> HoleExamples | None:
    if not cfg.masked_set or cfg.painted == 0:
        return None
    bare = [p.path for p in masked_photos(cfg.masked_set, split) if not p.masked]
    key = _key("painted", bare, cfg.painted, split)
    return _cached(key, lambda: paint_photos(bare, cfg.painted, f"painted {split}"), "painted")


def _posed(cfg: PhotosConfig, split: str) -> list[HoleExamples]:
    """The posed set's photos of `split`: bare, wearing a painted mask, and behind a painted occluder."""
    if not cfg.posed_set:
        return []
    from unveil.data.faces import SPLITS
    from unveil.data.sources import split_hint
    from unveil.photo.read import labelled_photos

    root = Path(cfg.posed_set)
    paths = [p for p, _ in labelled_photos(root) if split_hint(p.relative_to(root).parts) == SPLITS.index(split)]
    if not paths:
        raise UnveilError(f"photos.posed_set {root}: no photos in its {split}/ folder")
    framed = frame_photos(paths, _detector(), what=f"{root.name} {split}")
    keep = framed.found
    n = int(keep.sum())
    bare = HoleExamples(framed.crops[keep], torch.zeros(n, 48, 48, dtype=torch.uint8),
                        torch.ones(n, 48, 48, dtype=torch.uint8), torch.zeros(n, dtype=torch.bool), ["posed-bare"] * n)
    masks = painted_photos(paths, "masks", f"{root.name} {split}", kind="posed")
    occluders = painted_photos(paths, "occluders", f"{root.name} {split}", kind="occluder")
    return [bare, masks, occluders]


def painted_photos(paths: list[Path], what: str, where: str, kind: str | None = None) -> HoleExamples:
    """Each photo once with a mask (`what` "masks") or another occluder ("occluders") painted on it
    (`paint_photos`), cached by the photos' content: the hole model's training and `eval-holes` paint a set
    once between them. `kinds` are `kind`, or without it the photos' indices in `paths`."""
    wear = {"masks": wear_mask, "occluders": wear_occluder}[what]
    return _cached(_key(f"posed-{what}", paths), lambda: paint_photos(paths, 1, f"{where} {what}", wear), kind)


def _named(examples: HoleExamples, kind: str) -> HoleExamples:
    return HoleExamples(examples.images, examples.target, examples.weight, examples.masked, [kind] * len(examples))


def paint_photos(paths: list[Path], per_photo: int, what: str, wear=wear_mask,
                 styles: tuple[str, ...] | None = None) -> HoleExamples:
    """`per_photo` copies of each photo with something painted over its face's lower half by `wear`
    (`wear_mask`, or `wear_occluder`; the styles taken in turn, seeded by the photo's index), each
    detected and aligned again as `predict` would, with the painted pixels carried into the crop.
    `HoleExamples.kinds` name the photo each example came from, by its index in `paths`."""
    detector = _detector()
    styles = styles or (MASK_STYLES if wear is wear_mask else OCCLUDER_STYLES)
    images, targets, sources = [], [], []
    for i, path in enumerate(progress(paths, f"painting {what}", unit="photo")):
        rgb, _ = read_photo(path)
        faces = detector.detect(rgb)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.score)
        for k in range(per_photo):
            style = styles[(i * per_photo + k) % len(styles)]
            painted, cover = wear(rgb, face, (style,), seed=i * per_photo + k)
            again = detector.detect(painted)  # aligned from its own (masked) landmarks, as predict would
            if again:
                framed = frame_face(painted, max(again, key=lambda f: f.score))
                images.append(framed.crop)
                targets.append((warp_to_crop(cover, framed.matrix) > 0.5).astype(np.uint8))
                sources.append(str(i))
    n = len(images)
    return HoleExamples(torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(targets)),
                        torch.ones(n, 48, 48, dtype=torch.uint8), torch.ones(n, dtype=torch.bool), sources)


def _pixel(cfg: PhotosConfig, split: str) -> HoleExamples | None:
    if not cfg.pixel_set:
        return None
    root = Path(cfg.pixel_set)
    pairs = [p for p in pixel_labelled(root) if _pixel_split(p.image.relative_to(root).as_posix()) == split]
    if not pairs:
        return None
    framed = frame_photos([p.image for p in pairs], _detector(), what=f"{root.name} {split}")
    keep = framed.found.numpy()
    targets = []
    for pair, matrix in zip((p for p, k in zip(pairs, keep) if k), framed.matrices[keep].numpy()):
        label = read_hole_label(pair.label).astype(np.uint8)
        height, width = Image.open(pair.image).size[::-1]
        label = cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)  # labels may be stored smaller
        targets.append((warp_to_crop(label, matrix) > 0.5).astype(np.uint8))
    n = len(targets)
    return HoleExamples(framed.crops[keep], torch.from_numpy(np.stack(targets)),
                        torch.ones(n, 48, 48, dtype=torch.uint8), torch.ones(n, dtype=torch.bool), ["pixel"] * n)


def _pixel_split(key: str) -> str:
    """80 / 20 train / val by path hash (a pixel-labelled set's own test folder stays for `eval-holes`)."""
    return "val" if int(hashlib.sha256(key.encode()).hexdigest(), 16) % 5 == 0 else "train"


def _key(kind: str, paths: list[Path], *extra) -> str:
    digest = hashlib.sha256(json.dumps([BUILD_VERSION, FRAMING_VERSION, kind, detector_settings(_detector()),
                                        [str(p) for p in paths], *extra]).encode())
    for p in paths:
        digest.update(hashlib.sha256(Path(p).read_bytes()).digest())
    return digest.hexdigest()


def _cached(key: str, build, kind: str | None = None) -> HoleExamples:
    """Examples from the cache, or built and cached. `kind` names every example; without it the builder's
    own `kinds` (photo indices) are kept, in the cache too (a cache written without them is built again)."""
    path = cache_dir() / f"holes-{key[:24]}.safetensors"
    names = ("images", "target", "weight", "masked")
    cached = read_cache(path, names, "hole-examples", "building the examples again")
    if cached is not None and (kind is not None or "kinds" in cached[1]):
        t, meta = cached
        return HoleExamples(t["images"], t["target"], t["weight"], t["masked"],
                            [kind] * len(t["masked"]) if kind else json.loads(meta["kinds"]))
    examples = build()
    write_cache(path, {k: getattr(examples, k) for k in names}, {"kinds": json.dumps(examples.kinds)}, "hole-examples")
    return _named(examples, kind) if kind else examples
