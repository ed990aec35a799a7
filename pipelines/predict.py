"""Your own photos: find each face, align it as FER2013 frames its faces, find the hidden lower face,
reconstruct it and read the expression — with the shipped FER2013 models, nothing downloaded.

    predictor = Predictor(inpainter="inpainter_unet", hole="auto")    # loads every model once
    result = predictor.predict("me_with_a_mask.jpg")                   # a path, an RGB array or a PIL image
    for face in result.faces:
        print(face.reading, face.how)                                  # ("happy", 0.71), how it was reached

Per face, the one reading comes first (`unveil.classify.fusion.OneReading`: on a face with a hole, the
upper-half reader and the judge on the reconstruction pooled by the shipped fusion; on a face without
one, the judge). Then the readings it is made of: the judge of photos (`classifier_photos`) reads three
crops, the `untouched` crop (on a masked photo it shows the mask), the `occluded` one (the hole blacked
out, as the models were trained) and the `reconstructed` one; the upper-half reader of photos
(`classifier_photos_occluded`, trained on occluded faces) reads the occluded crop too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unveil.classes import CLASSES
from unveil.classify import open_classifier, predict_proba
from unveil.classify.fusion import OneReading, input_record
from unveil.errors import UnveilError
from unveil.figures import Tile, annotated_photo, beside, save_png, tile_grid
from unveil.inpaint import inpainter_record, open_inpainter
from unveil.inpaint.segmenter import load_segmenter
from unveil.photo import DEFAULT_DETECTOR, Pose, create_detector, landmark_hole, lower_half_hole
from unveil.photo.framing import FramedFace, frame_face
from unveil.photo.read import PhotoInput, read_photo
from unveil.runtime import fused_for_inference, pick_device
from unveil.shipped import FUSION, PHOTO_JUDGE, PHOTO_READER


HOLES = ("auto", "landmarks", "lower-half")
MIN_USABLE_FACE = 40   # px: a smaller face holds too little detail for a 48x48 crop (--min-face changes it)
SEARCH_FACE = 20       # px: faces are searched from this size, so a small one is reported, not missed
NO_SHAPE = 0.02        # `auto`: a mask found whose marked pixels cover under 2 % of the crop gets the landmark hole
CROPS = ("untouched", "occluded", "reconstructed")
INPAINTER = "inpainter_unet"   # the default generator: the shipped fusion is fitted for its reconstructions
# The hole cut for the generators reaches the mask's rim (a rim left visible is copied into the face): the pixels
# the hole model gives a probability above CUT_THRESHOLD, grown by HOLE_MARGIN px. Chosen on KDEF val with masks
# painted on the photos (benchmarks/hole_reach.py, docs/real-faces.md): mask pixels left outside the hole 0.66 %
# (4.04 % with the mask itself), hole area 37.5 % of the crop (28.9 %); 2 px at 0.5 would hide 41.5 %.
# The hole model's own mask (its IoU, and whether a face wears a mask at all) is unchanged.
CUT_THRESHOLD = 0.1
HOLE_MARGIN = 1
# Degrees of yaw beyond which a face is "turned away": its reading is reported but marked unreliable and left
# out of summaries. Chosen on KDEF val (benchmarks/head_pose.py, docs/turned-faces.md): half between the median
# |yaw| of half profiles (33.5) and full profiles (64.2), 48.9, rounded; there it keeps 208 of the 210 straight
# and half-profile faces and 11 of the 139 full profiles, and on full profiles the one reading of a masked face
# falls to 25 % (71 % on straight and half profiles). --max-yaw changes it (90 keeps every face).
MAX_YAW = 49.0
TURNED_AWAY = "turned away: unreliable"


@dataclass
class Reading:
    """One classifier's reading of one crop: every class's probability, and the top ones."""

    probabilities: dict[str, float]
    top: list[tuple[str, float]]


@dataclass
class FaceResult:
    box: tuple[float, float, float, float]
    score: float
    landmarks: list[list[float]]
    hole: str                       # the hole actually used (auto that found no mask says so)
    hole_fraction: float            # share of the 48x48 crop hidden
    crops: dict[str, np.ndarray]    # untouched / occluded / reconstructed / hole (255 = hidden), uint8 [48, 48]
    readings: dict[str, Reading]    # one_reading (the answer) first, the judge on each crop, the reader
    how: str = ""                   # how the one reading was made (a fusion, or the judge on a face without a hole)
    pose: Pose | None = None        # yaw, pitch, roll in degrees (`unveil.photo.pose`)
    turned_away: bool = False       # |yaw| beyond the limit: the reading is unreliable, left out of summaries

    @property
    def reading(self) -> tuple[str, float]:
        """The one answer for this face: (class, probability)."""
        return self.readings["one_reading"].top[0]

    def to_json(self) -> dict:
        label, probability = self.reading
        return {"reading": {"class": label, "probability": probability, "how": self.how,
                            "reliable": not self.turned_away, **({"note": TURNED_AWAY} if self.turned_away else {})},
                "pose": self.pose.to_json() if self.pose else None,
                "box": [round(v, 1) for v in self.box], "score": round(self.score, 4), "landmarks": self.landmarks,
                "hole": self.hole, "hole_fraction": round(self.hole_fraction, 4),
                "readings": {k: {"top": r.top, "probabilities": r.probabilities} for k, r in self.readings.items()}}


@dataclass
class PhotoResult:
    source: str
    faces: list[FaceResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # one line each: no face, a face too small, ...
    picture: str | None = None

    def to_json(self) -> dict:
        return {"source": self.source, "faces": [f.to_json() for f in self.faces], "errors": self.errors,
                "picture": self.picture}


class FaceFramer:
    """Photos to the models' input: find the faces, align each as FER2013 frames its faces (48x48
    grayscale), and find its hole (`HOLES`). Shared by `predict`, `eval-photos` and `eval-holes`.

    `auto`: the segmenter decides whether the face wears a mask and marks its pixels; a face without
    one keeps every pixel (hole "auto (no mask found)"), and a mask found whose marked pixels are too
    few to be its shape gets the landmark hole ("auto (mask found, landmark shape)")."""

    def __init__(self, hole: str = "auto", segmenter: str = "segmenter", checkpoints: str | Path | None = None,
                 device: str | torch.device = "auto", precision: str = "auto", detector: str = DEFAULT_DETECTOR,
                 min_face: float = MIN_USABLE_FACE, margin: int = HOLE_MARGIN, cut_threshold: float = CUT_THRESHOLD):
        if hole not in HOLES:
            raise UnveilError(f"unknown hole {hole!r}; choose one of {', '.join(HOLES)}")
        if isinstance(min_face, bool) or not isinstance(min_face, (int, float)) or min_face < SEARCH_FACE:
            raise UnveilError(f"--min-face must be a number of pixels >= {SEARCH_FACE}, got {min_face!r}")
        self.device, self.precision, self.hole_mode, self.min_face = pick_device(device), precision, hole, min_face
        self.margin, self.cut_threshold = margin, cut_threshold
        self.detector = create_detector(detector, min_face=SEARCH_FACE, device=self.device)
        self.segmenter = load_segmenter(segmenter, self.device, checkpoints) if hole == "auto" else None

    def faces(self, rgb: np.ndarray, name: str) -> tuple[list, list[str]]:
        """(the usable faces, most confident first; one line per problem: no face, a face too small)."""
        found = sorted(self.detector.detect(rgb), key=lambda f: -f.score)
        errors = [] if found else [f"{name}: no face found (faces of {SEARCH_FACE} px and more are searched)"]
        usable = []
        for face in found:
            if face.size >= self.min_face:
                usable.append(face)
                continue
            x0, y0, _, _ = face.box
            errors.append(f"{name}: the face at ({x0:.0f}, {y0:.0f}) is {face.size:.0f} px, too small to use "
                          f"(at least {self.min_face:g} px; --min-face lowers it)")
        return usable, errors

    def frame(self, rgb: np.ndarray, face) -> tuple[torch.Tensor, torch.Tensor, str]:
        """(the aligned crop, its hole (1 = hidden), the hole mode used), each [1, 1, 48, 48] on the device."""
        framed = frame_face(rgb, face)
        full = torch.from_numpy(framed.crop)[None, None].float().div(255).to(self.device)
        holes, used = self.holes(full, torch.from_numpy(framed.points)[None])
        return full, holes, used[0]

    def holes(self, crops: torch.Tensor, points: torch.Tensor, grown: bool = True) -> tuple[torch.Tensor, list[str]]:
        """The holes of aligned crops [N, 1, 48, 48] (float 0..1, on the device) with their landmarks in the
        crop [N, 5, 2], in one batch: (holes [N, 1, 48, 48], the hole mode used per face). The hole model's
        mask is widened to the mask's rim (`CUT_THRESHOLD`, `HOLE_MARGIN`); ``grown=False`` gives the mask itself."""
        n = len(crops)
        if self.hole_mode == "lower-half":
            return lower_half_hole().to(self.device).expand(n, -1, -1, -1).clone(), ["lower-half"] * n
        shaped = torch.cat([landmark_hole(p.double().numpy()) for p in points]).to(self.device) if n else \
            crops.new_zeros(0, 1, *crops.shape[-2:])
        if self.hole_mode == "landmarks":
            return shaped, ["landmarks"] * n
        mask, cut, masked = self.auto_holes(crops)
        no_shape = masked & (mask.mean((1, 2, 3)) < NO_SHAPE)
        holes = torch.where(no_shape.view(-1, 1, 1, 1), shaped, cut if grown else mask)
        used = ["auto (mask found, landmark shape)" if s else "auto" if m else "auto (no mask found)"
                for m, s in zip(masked.tolist(), no_shape.tolist())]
        return holes, used

    def auto_holes(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The hole model on aligned crops [N, 1, 48, 48]: (its mask, the hole cut: the mask widened to its rim,
        both float 0/1 [N, 1, 48, 48] and all 0 where no mask was found; whether a mask was found, bool [N])."""
        probability, masked = self.segmenter.probabilities(crops, self.precision)
        return (probability > 0.5).float(), grow_hole((probability > self.cut_threshold).float(), self.margin), masked


def grow_hole(holes: torch.Tensor, margin: int) -> torch.Tensor:
    """Holes [N, 1, H, W] (1 = hidden) grown by `margin` pixels in every direction (a square dilation)."""
    if margin <= 0:
        return holes
    return torch.nn.functional.max_pool2d(holes, 2 * margin + 1, stride=1, padding=margin)


class Predictor:
    """Every model `unveil predict` needs, loaded once (shipped names or checkpoint paths)."""

    def __init__(self, inpainter: str = INPAINTER, hole: str = "auto", judge: str = PHOTO_JUDGE,
                 reader: str = PHOTO_READER, segmenter: str = "segmenter", checkpoints: str | Path | None = None,
                 device: str = "auto", precision: str = "auto", top: int = 3, detector: str = DEFAULT_DETECTOR,
                 min_face: float = MIN_USABLE_FACE, fusion: str | None = FUSION, max_yaw: float = MAX_YAW):
        if isinstance(max_yaw, bool) or not isinstance(max_yaw, (int, float)) or not 0 <= max_yaw <= 180:
            raise UnveilError(f"--max-yaw must be degrees between 0 and 180 (90 keeps every face), got {max_yaw!r}")
        self.max_yaw = float(max_yaw)
        self.framer = FaceFramer(hole, segmenter, checkpoints, device, precision, detector, min_face)
        self.device, self.precision, self.top = self.framer.device, precision, top
        self.inpainter = fused_for_inference(open_inpainter(inpainter, self.device, checkpoints=checkpoints))
        judge_model, _, judge_path = open_classifier(judge, self.device, checkpoints)
        reader_model, _, reader_path = open_classifier(reader, self.device, checkpoints)
        self.judge, self.reader = fused_for_inference(judge_model), fused_for_inference(reader_model)
        used = {"judge": input_record(judge_path), "reader": input_record(reader_path),
                "inpainter": inpainter_record(inpainter, checkpoints)}
        self.one_reading = OneReading.open(fusion, used, checkpoints)

    @property
    def detector(self):
        return self.framer.detector

    def predict(self, source: PhotoInput, picture: str | Path | None = None, name: str | None = None) -> PhotoResult:
        """Every face of one photo; problems become `errors` lines, never exceptions. With `picture`,
        also write the photo with its faces boxed beside each face's crops and readings (PNG)."""
        try:
            rgb, read_name = read_photo(source)
        except UnveilError as exc:
            return PhotoResult(str(source), errors=[str(exc)])
        result = PhotoResult(name or read_name)
        faces, result.errors = self.framer.faces(rgb, result.source)
        result.faces = self.read_faces(rgb, faces)
        if picture is not None and result.faces:
            result.picture = str(save_png(result_picture(rgb, result), picture))
        return result

    def read_face(self, rgb: np.ndarray, face) -> FaceResult:
        return self.read_faces(rgb, [face])[0]

    def read_faces(self, rgb: np.ndarray, faces: list) -> list[FaceResult]:
        return self.read_framed([frame_face(rgb, face) for face in faces])

    def read_framed(self, framed: list[FramedFace]) -> list[FaceResult]:
        """Every framed face (of one photo or of many video frames) read in one batch per model: the one
        path from an aligned crop to readings, so photo and video give the same readings for a frame."""
        if not framed:
            return []
        full = torch.from_numpy(np.stack([f.crop for f in framed]))[:, None].float().div(255).to(self.device)
        holes, used = self.framer.holes(full, torch.from_numpy(np.stack([f.points for f in framed])))
        occluded = full * (1 - holes)
        reconstructed = self.inpainter.reconstruct(occluded, holes, precision=self.precision)
        shown = {"untouched": full, "occluded": occluded, "reconstructed": reconstructed}
        judged = predict_proba(self.judge, torch.cat(list(shown.values())), precision=self.precision)
        judged = judged.view(len(shown), len(framed), -1)
        read = predict_proba(self.reader, occluded, precision=self.precision)
        one = self.one_reading(read, judged[2], judged[0], holes.flatten(1).amax(1) > 0)
        results = []
        for k, item in enumerate(framed):
            readings = {"one_reading": self._reading(one[k])}   # first: the answer; then each input as it read
            readings.update({name: self._reading(judged[i, k]) for i, name in enumerate(shown)})
            readings["upper_half_reader"] = self._reading(read[k])
            crops = {name: _uint8(v[k:k + 1]) for name, v in {**shown, "hole": holes}.items()}
            face = item.face
            how = self.one_reading.how if holes[k].any() else "the judge on the whole face (no hole)"
            results.append(FaceResult(face.box, face.score, np.round(face.landmarks, 1).tolist(), used[k],
                                      float(holes[k].mean()), crops, readings, how, item.pose,
                                      abs(item.pose.yaw) > self.max_yaw))
        return results

    def _reading(self, probs: torch.Tensor) -> Reading:
        values = {c: round(float(p), 4) for c, p in zip(CLASSES, probs)}
        return Reading(values, sorted(values.items(), key=lambda kv: -kv[1])[: self.top])


def result_picture(rgb: np.ndarray, result: PhotoResult) -> Image.Image:
    """The photo with numbered boxes captioned with each face's one reading, beside a row per face: what
    the judge read on the untouched, the occluded and the reconstructed crop, and what the upper-half reader
    read on the occluded one."""
    rows, labels = [], []
    for k, face in enumerate(result.faces, 1):
        shown = [face.crops["untouched"], face.crops["occluded"], face.crops["reconstructed"], face.crops["occluded"]]
        readings = [face.readings[n] for n in (*CROPS, "upper_half_reader")]
        rows.append([Tile(img, f"{r.top[0][0]} {r.top[0][1]:.2f}") for img, r in zip(shown, readings)])
        pose = f"\nyaw {face.pose.yaw:+.0f}" if face.pose else ""
        labels.append(f"face {k}\n{face.hole.split(' ')[0]}{pose}")
    columns = ["untouched (as taken)", "occluded (the hole)", "reconstructed", "upper-half reader"]
    crops = tile_grid(rows, labels, columns, scale=3, gap=6, label_width=64)
    photo = annotated_photo(rgb, [f.box for f in result.faces], [f.landmarks for f in result.faces],
                            [f"face {k}: " + ("turned away" if f.turned_away else f"{f.reading[0]} {f.reading[1]:.2f}")
                             for k, f in enumerate(result.faces, 1)],
                            height=max(crops.height, 240))
    return beside(photo, crops)


def _uint8(image: torch.Tensor) -> np.ndarray:
    return (image[0, 0].float().clamp(0, 1) * 255).round().byte().cpu().numpy()


def sample_photo() -> tuple[np.ndarray, str]:
    """The photo `predict` runs on without arguments: scikit-image's `astronaut` (public domain, NASA)."""
    from skimage import data

    return data.astronaut(), "astronaut"


def sample_photos(detector) -> list[tuple[np.ndarray, str]]:
    """The sample photo as it is, and wearing a synthetic surgical mask (`unveil.photo.masks`)."""
    from unveil.photo.masks import wear_mask

    rgb, name = sample_photo()
    face = max(detector.detect(rgb), key=lambda f: f.score)
    return [(rgb, name), (wear_mask(rgb, face, ("surgical",), seed=0)[0], f"{name}_masked")]


def photo_table(results) -> str:
    """Photo results as the terminal shows them: each face, its hole and pose, the one reading first."""
    lines = []
    for result in results:
        lines.append(f"{result.source}: {len(result.faces)} face(s)"
                     + (f"  -> {result.picture}" if result.picture else ""))
        for k, face in enumerate(result.faces, 1):
            pose = f", yaw {face.pose.yaw:+.0f}°" if face.pose else ""
            lines.append(f"  face {k} at {[round(v) for v in face.box]}, hole {face.hole} "
                         f"({100 * face.hole_fraction:.0f} % of the crop){pose}")
            label, probability = face.reading
            if face.turned_away:
                lines.append(f"    READING: {TURNED_AWAY} ({label} {probability:.2f}; --max-yaw keeps turned faces)")
            else:
                lines.append(f"    READING: {label} {probability:.2f}   ({face.how})")
            for name, label in (("untouched", "untouched crop (shows the mask, if any)"),
                                ("occluded", "occluded (hole blacked out)"), ("reconstructed", "reconstructed"),
                                ("upper_half_reader", "upper-half reader on the occluded crop")):
                top = ", ".join(f"{c} {p:.2f}" for c, p in face.readings[name].top)
                lines.append(f"    {label:<42} {top}")
    return "\n".join(lines)
