"""Synthetic lower-face occlusions: a hard lower-half crop and painted face masks.

Unveil learns to recognise expressions when the lower face is hidden. Real masked-face
data with expression labels is scarce, so occlusions are synthesised on aligned,
unoccluded faces (FER2013 layout: 48x48, eyes near rows 16-20, mouth near rows 32-38).
Every function returns the occluded batch *and* the hole mask, because the inpainting
model needs to know which pixels to reconstruct.

Conventions: images are float tensors [N, 1, H, W] in [0, 1]; a hole is a float tensor
[N, 1, H, W] of 0/1 with 1 = hidden. Everything stays on the input's device.
"""

from __future__ import annotations

import functools

import math
from dataclasses import asdict, dataclass, fields
from typing import ClassVar, NamedTuple, Sequence

import torch
from torch import Tensor

from .errors import UnveilError
from .registry import Registry

__all__ = ["OCCLUSIONS", "MASK_STYLES", "Occlusion", "NoOcclusion", "LowerHalf", "FaceMasks", "MixedHoles",
           "lower_half", "face_mask"]

MASK_STYLES = ("surgical", "cloth", "n95", "black")

# Mask geometry is written in the 48x48 FER2013 frame ("face units", pixel centres at
# k + 0.5) and scaled to the input size, so other resolutions get the same layout.
_REF = 48.0
# Nothing is painted outside this box (x0, x1, y0, y1 in face units): columns 3..45 and
# rows 20..47 at 48x48. Masks must never touch the eyes, which carry the expression signal.
_FACE_BOX = (3.0, 46.0, 20.0, 48.0)
_LINE = 1.2  # width of ear loops, straps and seams in face units (~1 px at 48x48)

# Named columns of the per-image random draws. Every image gets the same set of draws
# whatever its style, so an image's mask depends only on (seed, index), never on `styles`.
# The shipped models were evaluated on the masks these draws give, and a test pins them by seed
# (tests/test_occlusion.py, the golden digests): a new column here would move every mask of every
# seed. A new parameter takes its own stream instead (a generator seeded from the seed and its name).
_DRAWS = (
    "style", "cx", "top", "bottom", "hw", "angle", "light",
    "surg_palette", "surg_r", "surg_g", "surg_b", "loop_tone",
    "cloth_r", "cloth_g", "cloth_b", "alt_r", "alt_g", "alt_b",
    "pattern", "period", "pat_angle", "pat_phase", "seam",
    "n95_kind", "n95_tone", "valve", "valve_side", "strap_tone",
    "black_r", "black_g", "black_b",
)  # fmt: skip

# Pale blue, white, pale green and mid blue: the usual surgical-mask fabrics (RGB in [0, 1]).
_SURGICAL_RGB = ((0.60, 0.78, 0.90), (0.93, 0.94, 0.95), (0.66, 0.86, 0.80), (0.42, 0.62, 0.82))
_N_PATTERNS = 5  # cloth: plain, stripes, dots, gingham weave, heather noise


# --------------------------------------------------------------------------- validation


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor):
        raise UnveilError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 1:
        raise UnveilError(f"images must have shape [N, 1, H, W], got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise UnveilError(f"images must be a float tensor with values in [0, 1], got {images.dtype}")


def _check_styles(styles: Sequence[str] | str) -> tuple[str, ...]:
    styles = (styles,) if isinstance(styles, str) else tuple(styles)
    if not styles:
        raise UnveilError(f"styles must name at least one of {MASK_STYLES}")
    unknown = [s for s in styles if s not in MASK_STYLES]
    if unknown:
        raise UnveilError(f"unknown mask style(s) {unknown}; valid styles: {MASK_STYLES}")
    return styles


def _check_unit(name: str, value: float) -> float:
    """A number in [0, 1] (a fill value, a probability), as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise UnveilError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnveilError(f"{name} must be an int, got {value!r}")
    return value


def _check_seed(seed: int) -> int:
    if not -2 ** 63 <= _check_int("seed", seed) < 2 ** 64:  # what a torch.Generator takes
        raise UnveilError(f"seed must be in -2**63 .. 2**64 - 1, got {seed}")
    return seed


# --------------------------------------------------------------------------- lower half


def lower_half(images: Tensor, start_row: int = 24, fill: float = 0.0) -> tuple[Tensor, Tensor]:
    """Hide rows ``start_row .. H-1`` with a constant ``fill``.

    The crude occlusion: a horizontal cut below the eyes, as in cropped or
    half-covered faces. ``start_row`` is in pixels and is not rescaled with H.

    Args:
        images: batch of faces in [0, 1].
        start_row: first hidden row, ``0 <= start_row < H``.
        fill: value written into the hidden rows, in [0, 1].

    Returns:
        ``(occluded, hole)`` with hole = 1 on rows ``start_row..H-1``.

    Shape:
        - images: :math:`(N, 1, H, W)`
        - occluded, hole: :math:`(N, 1, H, W)`, same dtype and device as images
    """
    _check_images(images)
    fill = _check_unit("fill", fill)
    height = images.shape[-2]
    if not 0 <= _check_int("start_row", start_row) < height:
        raise UnveilError(f"start_row must be in [0, {height - 1}] for height {height}, got {start_row}")
    rows = torch.arange(height, device=images.device).view(1, 1, height, 1)
    hole = (rows >= start_row).to(images.dtype).expand_as(images).contiguous()
    occluded = torch.where(hole.bool(), torch.full_like(images, fill), images)
    return occluded, hole


# --------------------------------------------------------------------------- face mask


class _Frame(NamedTuple):
    """Pixel coordinates in face units, in the mask's own (jittered, rotated) frame."""

    u: Tensor  # signed horizontal offset from the mask's centre line [N, 1, H, W]
    y: Tensor  # vertical position along the mask, rows in face units [N, 1, H, W]
    noise: Tensor  # uniform in [-1, 1] per pixel, for fabric texture [N, 1, H, W]


def face_mask(
    images: Tensor,
    styles: Sequence[str] | str = MASK_STYLES,
    seed: int = 0,
    jitter: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Paint a synthetic face mask over the nose, mouth and chin.

    Each image gets a style drawn uniformly from ``styles`` plus a random colour,
    texture and placement (top edge between rows ~22.5-27.5 at 48x48, small
    horizontal shift, width and rotation), all from a CPU ``torch.Generator`` seeded
    with ``seed``, so the result is identical for the same seed on any device.
    Geometry is clamped so every mask covers the mouth (rows 31-38, columns 17-31)
    and stays inside the face box (rows 20-47, columns 3-45); both are scaled with
    H and W for other sizes. Edges are hard, so ``occluded == images`` wherever
    ``hole == 0``.

    Styles: ``surgical`` (pleated rounded rectangle, pale blue/white/green, ear loops),
    ``cloth`` (curved profile hugging the chin, random colour and fabric pattern),
    ``n95`` (KN95 with a centre seam and ear loops, or an N95 dome with straps and
    sometimes a valve), ``black`` (plain dark cloth mask).

    Args:
        images: aligned faces in [0, 1].
        styles: mask styles to draw from (a subset of ``MASK_STYLES``; repeats weight).
        seed: seed of the random draws.
        jitter: scale of the placement jitter; 0 gives the canonical placement.

    Returns:
        ``(occluded, hole)``, hole = 1 exactly where the mask is painted.

    Shape:
        - images: :math:`(N, 1, H, W)`, H and W at least 16
        - occluded, hole: :math:`(N, 1, H, W)`, same dtype and device as images
    """
    _check_images(images)
    styles = _check_styles(styles)
    _check_seed(seed)
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not jitter >= 0:
        raise UnveilError(f"jitter must be a number >= 0, got {jitter!r}")
    n, _, height, width = images.shape
    if height < 16 or width < 16:
        raise UnveilError(f"face_mask needs images of at least 16x16, got {height}x{width}")

    draws, noise = _draw(n, height, width, seed)
    names = tuple(dict.fromkeys(styles))  # repeats in `styles` only weight the draw
    choice = (draws["style"] * len(styles)).long().clamp(max=len(styles) - 1)
    pick = torch.tensor([names.index(s) for s in styles])[choice].to(images.device).view(n, 1, 1, 1)
    p = {k: v.to(images.device).view(n, 1, 1, 1) for k, v in draws.items()}
    frame, in_box = _mask_frame(p, noise.to(images.device), height, width, float(jitter))
    alpha, paint = _render_picked(frame, p, pick, names)
    # Loops and straps run off towards the ears; the face box trims their ends.
    hole = alpha & in_box
    occluded = torch.where(hole, paint.clamp(0, 1).to(images.dtype), images)
    return occluded, hole.to(images.dtype)


def _render_picked(frame: _Frame, p: dict[str, Tensor], pick: Tensor, names: tuple[str, ...]) -> tuple[Tensor, Tensor]:
    """Render each requested style for the whole batch (cheap at face sizes) and keep it where it
    was picked: a loop over <= 4 styles, never over images or pixels. Returns (alpha, paint)."""
    alpha = torch.zeros(frame.u.shape, dtype=torch.bool, device=frame.u.device)
    paint = torch.zeros(frame.u.shape, device=frame.u.device)
    for k, name in enumerate(names):
        a, v = _RENDER[name](frame, p)
        alpha = torch.where(pick == k, a, alpha)
        paint = torch.where(pick == k, v, paint)
    return alpha, paint


def _draw(n: int, height: int, width: int, seed: int) -> tuple[dict[str, Tensor], Tensor]:
    """All randomness on CPU, so CPU and CUDA renders agree for the same seed."""
    gen = torch.Generator().manual_seed(seed)
    uniform = torch.rand(n, len(_DRAWS), generator=gen)
    noise = torch.rand(n, 1, height, width, generator=gen) * 2 - 1
    return dict(zip(_DRAWS, uniform.unbind(1))), noise


def _mask_frame(p: dict[str, Tensor], noise: Tensor, height: int, width: int, jitter: float):
    """Jittered geometry -> per-pixel mask-frame coordinates and the face-box clip.

    Adds the geometry (cx, top, bottom, hw, cy, hh; face units, [N, 1, 1, 1]) to ``p``.
    """

    def spread(key: str, centre: float, half: float, lo: float, hi: float) -> Tensor:
        return (centre + jitter * half * (2 * p[key] - 1)).clamp(lo, hi)

    # Clamp limits (not only the jitter ranges) guarantee mouth coverage for any jitter.
    p["cx"] = spread("cx", 24.0, 1.5, 22.0, 26.0)
    p["top"] = spread("top", 25.0, 2.5, 22.0, 27.5)
    p["bottom"] = spread("bottom", 47.0, 1.5, 45.5, 48.5)
    p["hw"] = spread("hw", 17.0, 1.5, 15.5, 18.5)
    angle = spread("angle", 0.0, math.radians(6), -math.radians(6), math.radians(6))
    p["cy"] = (p["top"] + p["bottom"]) / 2
    p["hh"] = (p["bottom"] - p["top"]) / 2

    device = noise.device
    x = ((torch.arange(width, device=device) + 0.5) * (_REF / width)).view(1, 1, 1, width)
    y = ((torch.arange(height, device=device) + 0.5) * (_REF / height)).view(1, 1, height, 1)
    dx, dy = x - p["cx"], y - p["cy"]
    cos, sin = torch.cos(angle), torch.sin(angle)
    frame = _Frame(u=cos * dx + sin * dy, y=p["cy"] - sin * dx + cos * dy, noise=noise)
    x0, x1, y0, y1 = _FACE_BOX
    in_box = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    return frame, in_box


# --------------------------------------------------------------------------- shape helpers


def _luma(r: Tensor, g: Tensor, b: Tensor) -> Tensor:
    """Grayscale value of an RGB colour (ITU-R BT.601, as used by PIL's 'L' mode)."""
    return 0.299 * r + 0.587 * g + 0.114 * b


def _segment(u: Tensor, y: Tensor, a: tuple, b: tuple, width: float = _LINE) -> Tensor:
    """Pixels within width/2 of the segment a-b (points are (u, y) pairs)."""
    (u0, y0), (u1, y1) = a, b
    du, dv = u1 - u0, y1 - y0
    t = (((u - u0) * du + (y - y0) * dv) / (du * du + dv * dv + 1e-6)).clamp(0, 1)
    return (u - u0 - t * du) ** 2 + (y - y0 - t * dv) ** 2 <= (width / 2) ** 2


def _ear_loops(f: _Frame, p: dict, side: Tensor, attach_top: Tensor, attach_bottom: Tensor) -> Tensor:
    """Both ear loops: from the mask's top and bottom side corners out to the ear.

    Drawn on |u| so one pair of segments serves both sides. The ear sits at the face
    edge between roughly the eye line and the mouth line.
    """
    u = f.u.abs()
    ear_u = side + 3.5
    upper = _segment(u, f.y, (side - 0.5, attach_top), (ear_u, p["top"] - 3.0))
    lower = _segment(u, f.y, (side - 0.5, attach_bottom), (ear_u, p["top"] + 6.0))
    return upper | lower


def _shade(f: _Frame, p: dict) -> Tensor:
    """Soft 3-D look: fabric turns away at the cheeks and falls into shadow under the chin."""
    side = (f.u / p["hw"]) ** 2
    chin = ((f.y - p["cy"]) / p["hh"]).clamp(0, 1)
    light = 0.06 * (2 * p["light"] - 1) * (f.u / p["hw"]).clamp(-1, 1)  # light from one side
    return 1.0 - 0.15 * side - 0.08 * chin + light


def _cloth_body(f: _Frame, p: dict) -> Tensor:
    """Curved cloth-mask profile: peaks over the nose, hugs the chin, rises along the jaw."""
    a = f.u.abs() / p["hw"]
    y_top = p["top"] + 3.0 * a**1.5
    y_bottom = p["bottom"] - 9.0 * a**2
    return (a <= 1) & (f.y >= y_top) & (f.y <= y_bottom)


def _cloth_loops(f: _Frame, p: dict, body: Tensor) -> Tensor:
    loops = _ear_loops(f, p, p["hw"], p["top"] + 4.0, p["bottom"] - 10.0)
    return loops & ~body


# --------------------------------------------------------------------------- styles


def _surgical(f: _Frame, p: dict) -> tuple[Tensor, Tensor]:
    """Pleated rounded rectangle with a binding border and thin ear loops."""
    t = ((f.y - p["top"]) / (2 * p["hh"])).clamp(0, 1)
    half = p["hw"] * (1 - 0.08 * t)  # pleats open over the nose and gather at the chin

    def rounded_rect(inset: float) -> Tensor:  # superellipse: a rectangle with round corners
        return (f.u.abs() / (half - inset)) ** 5 + ((f.y - p["cy"]).abs() / (p["hh"] - inset)) ** 5 <= 1

    body, inner = rounded_rect(0.0), rounded_rect(1.0)
    # Three horizontal pleats in the middle half: each fold is a dark crease that
    # brightens towards the next one, which is how pleats catch light from above.
    band = (t - 0.28) / 0.5 * 3
    frac = band - band.floor()
    pleats = torch.where((band >= 0) & (band < 3), 0.92 + 0.1 * frac - 0.1 * (frac < 0.25), 1.0)
    palette = torch.tensor(_SURGICAL_RGB, device=f.u.device)[(p["surg_palette"] * 4).long().clamp(max=3)]
    rgb = [palette[..., i] + 0.1 * (p[k] - 0.5) for i, k in enumerate(("surg_r", "surg_g", "surg_b"))]
    tone = _luma(*rgb) * _shade(f, p) * pleats * torch.where(inner, 1.0, 0.9) + 0.015 * f.noise
    loops = _ear_loops(f, p, p["hw"] - 1.0, p["top"] + 1.5, p["bottom"] - 3.0) & ~body
    loop_tone = 0.75 + 0.2 * p["loop_tone"]  # white elastic
    return body | loops, torch.where(body, tone, loop_tone)


def _cloth(f: _Frame, p: dict) -> tuple[Tensor, Tensor]:
    """Curved fabric mask in any colour with a plain, striped, dotted, woven or heather fabric."""
    body = _cloth_body(f, p)
    base = _luma(p["cloth_r"], p["cloth_g"], p["cloth_b"])
    # The second fabric colour must contrast with the first or the pattern vanishes in gray.
    spread = 0.2 + 0.25 * _luma(p["alt_r"], p["alt_g"], p["alt_b"])
    alt = torch.where(base > 0.5, base - spread, base + spread)

    period = 3.0 + 2.5 * p["period"]  # face units: 3-5.5 px at 48x48, so it survives
    theta = math.pi * p["pat_angle"]
    along = (f.u * torch.cos(theta) + f.y * torch.sin(theta)) / period + p["pat_phase"]
    stripes = (along - along.floor() < 0.45).float()
    gu = (f.u / period + p["pat_phase"]) % 1 - 0.5
    gv = (f.y / period + p["pat_phase"]) % 1 - 0.5
    dots = ((gu**2 + gv**2) * period**2 <= 1.0).float()
    weave = 0.5 * ((gu < 0).float() + (gv < 0).float())  # gingham: two crossed stripe sets
    heather = 0.5 + 0.9 * f.noise

    kind = (p["pattern"] * _N_PATTERNS).long().clamp(max=_N_PATTERNS - 1)
    mix = torch.stack([torch.zeros_like(stripes), stripes, dots, weave, heather.clamp(0, 1) * 0.5])
    mix = mix.gather(0, kind.view(1, -1, 1, 1, 1).expand(1, *stripes.shape)).squeeze(0)
    colour = base + (alt - base) * mix
    seam = (f.u.abs() < _LINE / 2) & (p["seam"] < 0.5)  # fitted masks have a centre seam
    tone = colour * _shade(f, p) * torch.where(seam, 0.85, 1.0) + 0.03 * f.noise

    loops = _cloth_loops(f, p, body)
    return body | loops, torch.where(body, tone, base * 0.9)


def _n95(f: _Frame, p: dict) -> tuple[Tensor, Tensor]:
    """White/grey respirator: KN95 (folded, centre seam, ear loops) or N95 dome (straps)."""
    tone = 0.72 + 0.23 * p["n95_tone"]
    kn95 = p["n95_kind"] < 0.5

    # KN95: two flat panels meeting at a vertical seam; pointed over the nose and the chin.
    a = f.u.abs() / p["hw"]
    y_top = p["top"] + 3.5 * a
    y_bottom = p["bottom"] - 1.0 - 9.0 * a**1.3
    fold = (a <= 1) & (f.y >= y_top) & (f.y <= y_bottom)
    inner = (a <= 1 - 1.0 / p["hw"]) & (f.y >= y_top + 1.0) & (f.y <= y_bottom - 1.0)
    panel = 1.0 + 0.07 * torch.sign(f.u) * (2 * p["light"] - 1)  # the panels face different ways
    seam = f.u.abs() < _LINE / 2
    fold_tone = tone * panel * torch.where(seam | ~inner, 0.85, 1.0)  # seam and welded rim
    fold_loops = _ear_loops(f, p, p["hw"] - 0.5, p["top"] + 5.0, p["bottom"] - 12.0) & ~fold

    # N95 dome: moulded ellipse, bright in the middle, with a rim and two head straps.
    r2 = (f.u / (0.93 * p["hw"])) ** 2 + ((f.y - p["cy"]) / p["hh"]) ** 2
    dome = r2 <= 1
    valve_u = 5.0 * torch.where(p["valve_side"] < 0.5, -1.0, 1.0)
    valve_r2 = ((f.u - valve_u) ** 2 + (f.y - p["cy"] - 2.5) ** 2) / 2.6**2
    valve = (valve_r2 <= 1) & (p["valve"] < 0.35)
    clip = _segment(f.u, f.y, (-3.5, p["top"] + 1.6), (3.5, p["top"] + 1.6))  # metal nose clip
    dome_tone = tone * (1.03 - 0.18 * r2) * torch.where(r2 > 0.8, 0.9, 1.0)
    dome_tone = torch.where(valve, torch.where(valve_r2 > 0.5, 0.45, 0.62), dome_tone)
    dome_tone = torch.where(clip & ~valve, dome_tone * 0.8, dome_tone)
    u = f.u.abs()
    straps = _segment(u, f.y, (0.8 * p["hw"], p["top"] + 3.5), (p["hw"] + 9.0, p["top"] + 2.0))
    straps |= _segment(u, f.y, (0.8 * p["hw"], p["cy"] + 3.0), (p["hw"] + 9.0, p["cy"] + 1.0))
    straps &= ~dome
    strap_tone = 0.4 + 0.5 * p["strap_tone"]

    alpha = torch.where(kn95, fold | fold_loops, dome | straps)
    kn95_paint = torch.where(fold, fold_tone, tone * 0.95)
    paint = torch.where(kn95, kn95_paint, torch.where(dome, dome_tone, strap_tone))
    return alpha, paint + 0.02 * f.noise


def _black(f: _Frame, p: dict) -> tuple[Tensor, Tensor]:
    """Plain dark cloth mask."""
    body = _cloth_body(f, p)
    base = _luma(p["black_r"], p["black_g"], p["black_b"]) * 0.14
    tone = base * _shade(f, p) + 0.015 * (f.noise + 1)  # weave noise only brightens: stays >= 0
    return body | _cloth_loops(f, p, body), torch.where(body, tone, base + 0.02)


_RENDER = {"surgical": _surgical, "cloth": _cloth, "n95": _n95, "black": _black}

SET_CHUNK = 1024  # faces per mask draw when a whole set is occluded (`Occlusion.over_set`)


# --------------------------------------------------------------------------- the kinds, as config objects


def _check_start_row(start_row: int) -> int:
    if _check_int("start_row", start_row) < 0:
        raise UnveilError(f"start_row must be >= 0, got {start_row}")
    return start_row


# Every option any kind takes: (how its text form is read, how its value is checked and normalised).
_OPTIONS = {
    "start_row": (int, _check_start_row),
    "fill": (float, functools.partial(_check_unit, "fill")),
    "styles": (lambda text: tuple(s.strip() for s in text.split("+")), _check_styles),
    "seed": (int, _check_seed),
    "lower": (float, functools.partial(_check_unit, "lower")),
}

# kind name -> its class; a layer above the core adds its own (the photo layer's `photo-mask`)
OCCLUSIONS: Registry[Occlusion] = Registry("occlusion kind")


class Occlusion:
    """A configured occlusion: one small frozen dataclass per kind, with that kind's options only.

    Text form: ``kind[:key=value,...]`` listing only non-default options, e.g. ``"lower-half:start_row=20,
    fill=0.5"``, ``"mask:styles=surgical+n95"`` or ``"mixed:lower=0.3"``; ``Occlusion.parse`` reads it
    and ``str`` writes it. An option the kind does not take is an error naming the kind's options.

    Shape:
        - images: :math:`(N, 1, H, W)`
        - returns ``(occluded, hole)``, both :math:`(N, 1, H, W)`
    """

    kind: ClassVar[str]

    def __init_subclass__(cls, kind: str, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = kind
        OCCLUSIONS.register(kind)(cls)

    def __post_init__(self) -> None:
        # Normalised (styles a tuple, fill a float) so that equal configurations compare and hash equal.
        for f in fields(self):
            object.__setattr__(self, f.name, _OPTIONS[f.name][1](getattr(self, f.name)))

    def __call__(self, images: Tensor, seed: int | None = None) -> tuple[Tensor, Tensor]:
        """Occlude ``images``; ``seed`` overrides the kind's own ``seed`` (e.g. per batch or epoch)."""
        raise NotImplementedError

    def _seed(self, seed: int | None) -> int:
        return getattr(self, "seed", 0) if seed is None else seed

    def over_set(self, images: Tensor, seed: int | None = None) -> tuple[Tensor, Tensor]:
        """Occlude a whole evaluation set: chunk k of `SET_CHUNK` faces is drawn with seed + k (`seed`
        defaults to the kind's own), so every model, batch size and device sees the same masks."""
        base = self._seed(seed)
        parts = [self(images[i:i + SET_CHUNK], seed=base + k)
                 for k, i in enumerate(range(0, images.shape[0], SET_CHUNK))]
        if not parts:
            return images, torch.zeros_like(images)
        return torch.cat([o for o, _ in parts]), torch.cat([h for _, h in parts])

    def over_faces(self, faces, seed: int | None = None) -> tuple[Tensor, Tensor]:
        """``over_set`` for a `Faces` set (on the CPU)."""
        return self.over_set(faces.float_images(), self._seed(seed))

    @classmethod
    def options(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @staticmethod
    def parse(text: str, seeded: bool = True) -> Occlusion:
        """Build from ``kind[:key=value,...]``; ``styles`` are joined with ``+``.

        ``seeded=False`` for an occlusion given to a command or a config: they draw the masks from their
        own seed (``--seed``, ``train.seed``), so a ``seed=`` here would be ignored; it is refused instead.
        """
        if not isinstance(text, str) or not text.strip():
            raise UnveilError(f"occlusion text must be a non-empty string like 'mask:styles=cloth', got {text!r}")
        name, colon, rest = text.strip().partition(":")
        cls = _kind(name.strip())
        values: dict = {}
        for item in rest.split(",") if colon else ():
            key, eq, value = (s.strip() for s in item.partition("="))
            if not eq or not key or not value:
                raise UnveilError(f"bad occlusion option {item.strip()!r} in {text!r}; expected key=value")
            cls.check_option(key, text)
            if key in values:
                raise UnveilError(f"occlusion option {key!r} given twice in {text!r}")
            if key == "seed" and not seeded:
                raise UnveilError(f"{text!r}: the masks are drawn from the command's own seed (--seed; train.seed "
                                  f"in a training config), not from a seed inside the occlusion: give it there")
            values[key] = _parse_value(key, value, text)
        return cls(**values)

    @classmethod
    def check_option(cls, key: str, where: str) -> None:
        if key not in cls.options():
            takes = f"its options: {', '.join(cls.options())}" if cls.options() else "it takes no options"
            raise UnveilError(f"{where!r}: the {cls.kind} occlusion has no option {key!r}; {takes}")

    def to_dict(self) -> dict:
        """JSON-able dict (styles as a list); inverse of :meth:`from_dict`."""
        return {"kind": self.kind, **{k: list(v) if k == "styles" else v for k, v in asdict(self).items()}}

    @staticmethod
    def from_dict(d: dict) -> Occlusion:
        """Inverse of :meth:`to_dict`; missing options take their defaults, the kind defaults to lower-half.

        Sidecars of an older Unveil hold every kind's options at once (their `LEGACY_DEFAULTS` where the
        kind did not use them): such an option at that value is dropped, any other is an error."""
        values = dict(d)
        cls = _kind(values.pop("kind", "lower-half"))
        for key in [k for k in values if k not in cls.options()]:
            if key not in _OPTIONS:
                raise UnveilError(f"unknown occlusion key {key!r}; valid keys: kind, {', '.join(cls.options())}")
            if _same(values[key], LEGACY_DEFAULTS[key]):
                del values[key]
            else:
                cls.check_option(key, str(d))
        return cls(**values)

    def __str__(self) -> str:
        """Canonical text form: the kind plus non-default options; ``parse(str(o)) == o``."""
        default = type(self)()
        parts = [f"{f.name}={'+'.join(value) if f.name == 'styles' else repr(value)}"
                 for f in fields(self) if (value := getattr(self, f.name)) != getattr(default, f.name)]
        return self.kind + (":" + ",".join(parts) if parts else "")


# What an older Unveil wrote for the options a kind did not use (see `Occlusion.from_dict`).
LEGACY_DEFAULTS = {"start_row": 24, "fill": 0.0, "styles": MASK_STYLES, "seed": 0, "lower": 0.5}


def _same(value, default) -> bool:
    return (tuple(value) if isinstance(value, list) else value) == default


def _kind(name: str) -> type[Occlusion]:
    return OCCLUSIONS.get(name)


def _parse_value(key: str, value: str, text: str):
    try:
        return _OPTIONS[key][0](value)
    except ValueError:
        kind = "an int" if _OPTIONS[key][0] is int else "a number"
        raise UnveilError(f"occlusion option {key}={value!r} in {text!r} must be {kind}") from None


@dataclass(frozen=True)
class NoOcclusion(Occlusion, kind="none"):
    """The faces as they are, with an empty hole."""

    def __call__(self, images: Tensor, seed: int | None = None) -> tuple[Tensor, Tensor]:
        _check_images(images)
        return images, torch.zeros_like(images)


@dataclass(frozen=True)
class LowerHalf(Occlusion, kind="lower-half"):
    """Rows ``start_row`` and below filled with ``fill`` (`lower_half`); the same for every seed."""

    start_row: int = 24
    fill: float = 0.0

    def __call__(self, images: Tensor, seed: int | None = None) -> tuple[Tensor, Tensor]:
        return lower_half(images, self.start_row, self.fill)


@dataclass(frozen=True)
class FaceMasks(Occlusion, kind="mask"):
    """A synthetic face mask per face (`face_mask`), its style drawn from ``styles``."""

    styles: tuple[str, ...] = MASK_STYLES
    seed: int = 0

    def __call__(self, images: Tensor, seed: int | None = None) -> tuple[Tensor, Tensor]:
        return face_mask(images, self.styles, self._seed(seed))


@dataclass(frozen=True)
class MixedHoles(Occlusion, kind="mixed"):
    """Each face the lower-half hole with probability ``lower``, else a face mask: for generators that
    must fill both the benchmark's hole and a real mask's."""

    start_row: int = 24
    fill: float = 0.0
    styles: tuple[str, ...] = MASK_STYLES
    seed: int = 0
    lower: float = 0.5

    def __call__(self, images: Tensor, seed: int | None = None) -> tuple[Tensor, Tensor]:
        seed = self._seed(seed)
        (cut, cut_hole), (masked, mask_hole) = lower_half(images, self.start_row, self.fill), face_mask(
            images, self.styles, seed)
        pick = torch.rand(images.shape[0], generator=torch.Generator().manual_seed(seed)) < self.lower
        pick = pick.to(images.device).view(-1, 1, 1, 1)
        return torch.where(pick, cut, masked), torch.where(pick, cut_hole, mask_hole)
