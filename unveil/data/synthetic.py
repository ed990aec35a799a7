"""Built-in procedural face set for the 7 FER2013 expression classes.

Each face is a parameter vector (identity, expression, pose, lighting) drawn
from a seeded ``torch.Generator``.  Pose is a batched affine map of the pixel
grid into canonical face coordinates (the grid ``affine_grid`` would build),
and the face is drawn analytically on those warped coordinates with soft
(anti-aliased) shapes -- ellipses, segments, bands around parametric curves --
composited in painter's order.  That equals rendering upright and warping with
``grid_sample``, minus the resampling blur.  All work is batched over faces;
Python loops only run over chunks of faces and over face parts, each part
drawn inside a fixed pixel window that bounds it (for speed).

Canonical coordinates: u (left -> right), v (top -> bottom), both in [-1, 1];
image row r sits at v = (r + 0.5) / 24 - 1, so the hidden lower half (rows
24..47) is v > 0.  Brows sit near row 14, eyes 18, nose tip 29, mouth 35.

An expression is a per-class offset from neutral (brow raise/tilt, eye
openness, wrinkles, mouth curve/opening/width, ...) scaled by one per-face
strength in [0.35, 1].  The same strength drives the upper- and lower-face
cues, so the visible half partly predicts the hidden mouth; weak strengths and
identity jitter make the classes overlap so neither half is trivially enough.
"""

from __future__ import annotations

import math

import torch

CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
SIZE = 48
_CHUNK = 512  # faces per rendering pass; small enough to keep the maps in cache
_AA = 2.0 / SIZE  # anti-aliasing ramp width: one pixel in canonical units
_PIXEL_CENTRES = (torch.arange(SIZE, dtype=torch.float32) + 0.5) / (SIZE / 2) - 1  # in [-1, 1]

# Offsets from neutral at full strength, one entry per class in CLASSES order:
#            angry  disgust fear   happy  neutral sad    surprise
_EXPRESSIONS = {
    "brow_raise": (-0.07, -0.06, 0.11, 0.01, 0.0, 0.02, 0.16),  # whole brow up (+)
    "brow_tilt": (-0.13, -0.03, 0.06, 0.0, 0.0, 0.13, 0.0),  # inner end up (+) / down (-)
    "brow_arch": (-0.01, 0.0, 0.0, 0.01, 0.0, -0.02, 0.04),
    "brow_drop_one": (0.0, 0.06, 0.0, 0.0, 0.0, 0.0, 0.0),  # one brow lower (sneer side)
    "upper_lid": (-0.15, -0.35, 0.5, -0.1, 0.0, -0.3, 0.6),  # relative height above the eye's axis
    "lower_lid": (-0.3, -0.5, 0.2, -0.7, 0.0, 0.0, 0.3),  # ... and below it (happy: crescent)
    "gaze_down": (0.0, 0.0, 0.0, 0.0, 0.0, 0.02, 0.0),
    "crows_feet": (0.0, 0.3, 0.0, 0.8, 0.0, 0.0, 0.0),  # creases at the outer eye corners
    "forehead": (0.0, 0.0, 0.5, 0.0, 0.0, 0.2, 0.8),  # horizontal forehead wrinkles
    "frown": (1.0, 0.5, 0.2, 0.0, 0.0, 0.3, 0.0),  # vertical lines between the brows
    "nose_wrinkle": (0.1, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "nose_raise": (0.0, 0.03, 0.0, 0.01, 0.0, 0.0, 0.0),
    "nasolabial": (0.2, 0.6, 0.2, 0.7, 0.0, 0.0, 0.0),
    "cheek": (0.0, 0.2, 0.0, 0.6, 0.0, 0.0, 0.0),  # raised-cheek highlight
    "mouth_curve": (-0.02, -0.03, -0.02, 0.14, 0.0, -0.1, 0.0),  # corners up (+)
    "mouth_open": (0.0, 0.02, 0.18, 0.08, 0.0, 0.0, 0.26),  # opening height
    "mouth_width": (-0.2, -0.05, 0.35, 0.25, 0.0, -0.05, -0.4),  # relative half-width
    "mouth_box": (0.0, 0.0, 0.35, 0.0, 0.0, 0.0, 0.0),  # squarer (stretched) opening
    "mouth_upper": (0.0, 0.0, 0.0, -0.3, 0.0, 0.0, 0.0),  # opening below the lip line (smile)
    "jaw_drop": (0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 0.05),
    "lip_thick": (-0.6, -0.2, -0.2, -0.3, 0.0, 0.3, 0.0),  # pressed lips (-) / pout (+)
    "teeth": (0.0, 0.7, 0.3, 1.0, 0.0, 0.0, 0.0),
    "sneer": (0.0, 0.06, 0.0, 0.0, 0.0, 0.0, 0.0),  # upper lip raised on one side
}
_ANGRY = CLASSES.index("angry")



def synthesize(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (images uint8 [n, 48, 48], labels int64 [n]), balanced-ish classes (labels = a seeded
    permutation of i % 7)."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % len(CLASSES))[torch.randperm(n, generator=g)]
    params = _sample_params(labels, g)
    images = torch.empty(n, SIZE, SIZE, dtype=torch.uint8)
    for start in range(0, n, _CHUNK):
        chunk = {k: t[start : start + _CHUNK] for k, t in params.items()}
        images[start : start + _CHUNK] = _render(chunk, g)
    return images, labels


# --------------------------------------------------------------------------- parameters


def _sample_params(labels: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Draw every per-face parameter as an [n, 1, 1] tensor (broadcasts over pixels)."""
    n = len(labels)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, 1, 1, generator=g)

    p = {
        # pose and lighting
        "angle": uniform(-6, 6) * (math.pi / 180),
        "scale": uniform(0.93, 1.07),
        "shift_u": uniform(-2, 2) * _AA,
        "shift_v": uniform(-2, 2) * _AA,
        "light_u": uniform(-0.3, 0.3),
        "light_v": uniform(-0.15, 0.15),
        "contrast": uniform(0.75, 1.2),
        "brightness": uniform(-0.08, 0.08),
        "noise": uniform(0.01, 0.045),
        # identity
        "background": uniform(0.05, 0.9),
        "skin": uniform(0.45, 0.8),
        "hair": uniform(0.04, 0.45),
        "hairline": uniform(-0.86, -0.64),
        "face_a": uniform(0.8, 0.92),
        "face_b": uniform(0.95, 1.05),
        "face_v": uniform(0.04, 0.1),
        "eye_u": uniform(0.3, 0.38),
        "eye_v": uniform(-0.27, -0.21),
        "eye_w": uniform(0.11, 0.14),
        "eye_h": uniform(0.05, 0.065),
        "iris": uniform(0.08, 0.3),
        "gaze": uniform(-0.03, 0.03),
        "brow_v": uniform(-0.45, -0.39),
        "brow_in": uniform(0.08, 0.14),
        "brow_out": uniform(0.5, 0.56),
        "brow_th": uniform(0.022, 0.04),
        "nose_v": uniform(0.17, 0.24),
        "mouth_v": uniform(0.41, 0.47),
        "mouth_w": uniform(0.26, 0.32),
        "lip_th": uniform(0.03, 0.045),
        # which side one-sided cues (sneer, lowered brow) land on
        "side": torch.where(torch.rand(n, 1, 1, generator=g) < 0.5, -1.0, 1.0),
    }
    # Expression: class offsets times one shared strength, plus small per-face
    # jitter so that neutral faces and weak expressions overlap.
    strength = uniform(0.35, 1.0)
    for name, offsets in _EXPRESSIONS.items():
        p[name] = torch.tensor(offsets)[labels].view(n, 1, 1) * strength
    jitter = {"brow_raise": 0.02, "brow_tilt": 0.02, "upper_lid": 0.1, "lower_lid": 0.1,
              "mouth_curve": 0.015, "mouth_open": 0.01}
    for name, sd in jitter.items():
        p[name] = p[name] + sd * torch.randn(n, 1, 1, generator=g)
    # Some angry faces bare their teeth instead of pressing the lips.
    bared = (labels.view(n, 1, 1) == _ANGRY) & (torch.rand(n, 1, 1, generator=g) < 0.3)
    p["mouth_open"] = p["mouth_open"] + bared * 0.08 * strength
    p["teeth"] = torch.where(bared, 1.0, p["teeth"])
    p["lip_thick"] = torch.where(bared, 0.0, p["lip_thick"])
    return p


# --------------------------------------------------------------------------- soft shapes
# In-place ops where possible: on CPU, allocating each temporary costs more than the math.


def _ramp(d: torch.Tensor, w: float = _AA) -> torch.Tensor:
    """Soft inside-mask from a signed distance (positive inside), linear over width w."""
    return d.mul(1 / w).add_(0.5).clamp_(0, 1)


def _ellipse(u, v, cu, cv, a, b) -> torch.Tensor:
    """Approximate signed distance (positive inside) to an axis-aligned ellipse."""
    r = torch.hypot((u - cu).div_(a), (v - cv).div_(b))
    return r.sub_(1).mul_(-torch.minimum(torch.as_tensor(a), torch.as_tensor(b)))


def _segment(u, v, u0, v0, u1, v1) -> torch.Tensor:
    """Unsigned distance from each pixel to the segment (u0, v0)-(u1, v1)."""
    du, dv = u1 - u0, v1 - v0
    pu, pv = u - u0, v - v0
    t = (pu * du).add_(pv * dv).div_(du * du + dv * dv + 1e-8).clamp_(0, 1)
    return torch.hypot(pu.sub_(t * du), pv.sub_(t * dv))


def _band(v, centre, slope, half) -> torch.Tensor:
    """Signed distance (positive inside) to a band of half-width `half` around v = centre(u).

    Dividing the vertical gap by sqrt(1 + slope^2) turns it into a normal
    distance, so steep parts of a curve keep their stroke width.
    """
    return (v - centre).abs_().mul_(torch.rsqrt(1 + slope * slope)).neg_().add_(half)


def _paint(img: torch.Tensor, alpha: torch.Tensor, value) -> None:
    """Alpha-composite `value` over `img` in place."""
    img.lerp_(torch.as_tensor(value, dtype=img.dtype), alpha)


def _shade(img: torch.Tensor, alpha: torch.Tensor, amount) -> None:
    """Darken (amount > 0) or lighten (amount < 0) multiplicatively, like a shadow."""
    img.mul_((alpha * amount).neg_().add_(1))


# --------------------------------------------------------------------------- face parts
# Each part is drawn as draw(img, p, u, v) inside its window.  Left/right pairs
# are drawn once on the mirrored coordinate x = |u|, which halves their cost.


def _draw_hair(img, p, u, v):
    """A dark cap slightly larger than the face; the face later covers all but the top and sides."""
    head = _ramp(_ellipse(u, v, 0, p["face_v"] - 0.05, p["face_a"] + 0.08, p["face_b"] + 0.1))
    _paint(img, head.mul_(_ramp(0.2 - v, 0.1)), p["hair"])


def _draw_neck(img, p, u, v):
    """A shadowed neck below the chin, so the face does not float on the background."""
    _paint(img, _ramp(0.42 - u.abs()).mul_(_ramp(v - 0.55)), 0.65 * p["skin"])


def _draw_face(img, p, u, v):
    """Skin oval clipped by the hairline, darkened towards its rim for a sense of volume."""
    a, b = p["face_a"], p["face_b"]
    r = torch.hypot(u / a, (v - p["face_v"]) / b)
    inside = _ramp((1 - r).mul_(a))
    hairline = p["hairline"] + 0.25 * u * u  # recedes at the temples
    _paint(img, inside * _ramp(v - hairline, 3 * _AA), p["skin"])
    _shade(img, inside, r.clamp_(max=1).pow_(4).mul_(0.35))


def _draw_brows(img, p, u, v):
    """Eyebrows: tapered bands around arched lines from the inner (x0) to the outer (x1) end."""
    x, x0, x1 = u.abs(), p["brow_in"], p["brow_out"]
    lowered = p["brow_drop_one"] * (u * p["side"] > 0)  # one brow only (disgust)
    base = p["brow_v"] - p["brow_raise"] + lowered
    v0, v1 = base - p["brow_tilt"], base + 0.3 * p["brow_tilt"]  # inner end moves most
    arch = 0.03 + p["brow_arch"]
    t = ((x - x0) / (x1 - x0)).clamp_(0, 1)
    centre = v0 + (v1 - v0) * t - 4 * arch * t * (1 - t)
    slope = ((v1 - v0) - 4 * arch * (1 - 2 * t)) / (x1 - x0)
    half = p["brow_th"] * (1.15 - 0.45 * t)
    mask = _ramp(_band(v, centre, slope, half)).mul_(_ramp(torch.minimum(x - x0, x1 - x)))
    _paint(img, mask.mul_(0.85), 0.3 * p["skin"] + 0.7 * p["hair"])


def _draw_eyes(img, p, u, v):
    """Socket shadow, sclera, iris clipped to the sclera, lid line (stronger on top), crow's feet.

    The upper and lower halves of the eye opening are half-ellipses of their
    own heights, so each lid can open or close on its own.
    """
    x, cu, cv, w = u.abs(), p["eye_u"], p["eye_v"], p["eye_w"]
    h_up = p["eye_h"] * (1 + p["upper_lid"]).clamp(min=0.2)
    h_low = p["eye_h"] * (1 + p["lower_lid"]).clamp(min=0.2)
    _shade(img, _ramp(_ellipse(x, v, cu, cv - 0.02, 1.4 * w, 0.1), 0.1), 0.18)
    sclera = _ellipse(x, v, cu, cv, w, torch.where(v < cv, h_up, h_low))
    inside = _ramp(sclera)
    _paint(img, inside, 0.55 + 0.35 * p["skin"])
    iris_u = u.sign().mul_(p["gaze"]).add_(cu)  # both eyes look the same way, not mirrored
    iris = _ramp(0.055 - torch.hypot(x - iris_u, v - cv - p["gaze_down"])).mul_(inside)
    _paint(img, iris, p["iris"])
    lid = _ramp(0.018 - sclera.abs_()).mul_(_ramp(cv - v, 4 * _AA).mul_(0.5).add_(0.35))
    _paint(img, lid, 0.12)
    # Crow's feet: a '<' of two short creases fanning out from the outer corner.
    out = x - (cu + w + 0.02)
    fan = (v - cv).abs_().sub_(0.5 * out).abs_().mul_(1 / math.sqrt(1.25))
    crease = _ramp(0.012 - fan).mul_(_ramp(torch.minimum(out, 0.08 - out)))
    _shade(img, crease, 0.4 * p["crows_feet"])


def _draw_cheeks(img, p, u, v):
    """Raised-cheek highlights and the nasolabial folds from the nose wings past the mouth corners."""
    x = u.abs()
    _shade(img, _ramp(_ellipse(x, v, 0.36, 0.1, 0.17, 0.1), 0.1), -0.12 * p["cheek"])
    mouth_w = p["mouth_w"] * (1 + p["mouth_width"])
    fold = _segment(x, v, 0.13, p["nose_v"] - p["nose_raise"], mouth_w + 0.07, p["mouth_v"] + 0.08)
    _shade(img, _ramp(0.014 - fold), 0.06 + 0.3 * p["nasolabial"])


def _draw_forehead(img, p, u, v):
    """Horizontal wrinkles that follow the brows up (surprise, fear)."""
    brow = p["brow_v"] - p["brow_raise"]
    fade = _ramp(0.35 - u.abs(), 0.2)  # towards the temples
    for dv in (0.1, 0.17):
        curve = brow - dv - 0.06 * (1 - (u / 0.35) ** 2)
        line = _ramp(0.012 - (v - curve).abs_()).mul_(fade)
        _shade(img, line, 0.3 * p["forehead"])


def _draw_centre(img, p, u, v):
    """Frown lines between the brows, creases on the nose bridge, and the nose itself."""
    x, brow = u.abs(), p["brow_v"] - p["brow_raise"]
    frown = _ramp(0.012 - (x - 0.04).abs_()).mul_(_ramp(0.06 - (v - brow - 0.04).abs_()))
    _shade(img, frown, 0.45 * p["frown"])
    across_nose = _ramp(0.09 - x, 0.04)
    for cv in (-0.07, -0.01):
        crease = _ramp(0.011 - (v - cv).abs_()).mul_(across_nose)
        _shade(img, crease, 0.45 * p["nose_wrinkle"])
    tip = p["nose_v"] - p["nose_raise"]
    _shade(img, _ramp(0.012 - _segment(x, v, 0.075, -0.1, 0.095, tip - 0.05)), 0.07)  # bridge
    _shade(img, _ramp(_ellipse(x, v, 0.065, tip + 0.005, 0.04, 0.022)), 0.45)  # nostrils
    _shade(img, _ramp(_ellipse(u, v, 0, tip - 0.04, 0.07, 0.06), 0.06), -0.08)  # lit tip
    _shade(img, _ramp(_ellipse(u, v, 0, tip + 0.035, 0.12, 0.03), 0.04), 0.15)  # underside


def _draw_mouth(img, p, u, v):
    """Lips around a parabolic lip line, the dark opening between them, and teeth.

    The lip line is v = centre - curve * t^2 (t = u / half_width), so positive
    curve lifts the corners.  The opening's height profile is (1 - t^2)^power:
    power 0.5 gives an oval ('O'), smaller powers a stretched box.
    """
    w = p["mouth_w"] * (1 + p["mouth_width"])
    t = (u / w).clamp_(-1, 1)
    centre = p["mouth_v"] + p["jaw_drop"] - p["mouth_curve"] * t * t
    slope = -2 * p["mouth_curve"] * t / w
    height = p["mouth_open"].clamp(min=0) * (1 - t * t).clamp_(min=0).pow_(0.5 - p["mouth_box"])
    upper_share = 0.5 + p["mouth_upper"]
    sneer = (t * p["side"]).clamp_(min=0).mul_(p["sneer"])  # lifts the upper lip on one side
    top = centre - upper_share * height - sneer
    bottom = centre + (1 - upper_share) * height
    across = _ramp(w - u.abs())

    lips = p["lip_th"] * (1 + p["lip_thick"]).clamp(min=0.1)
    lip_band = _ramp(torch.minimum(v - (top - 0.8 * lips), bottom + lips - v)).mul_(across)
    _paint(img, lip_band.mul_(0.6), 0.6 * p["skin"])
    opening = _ramp(torch.minimum(v - top, bottom - v), 1.5 * _AA).mul_(across)
    _paint(img, opening, 0.08)
    line = _ramp(_band(v, centre, slope, 0.012)).mul_(_ramp(w + 0.01 - u.abs()))
    _paint(img, line.mul_(0.75), 0.15)
    teeth = opening.mul_(_ramp(top + 0.05 - v)).mul_(_ramp(height + sneer - 0.03, 0.03))
    _paint(img, teeth.mul_(p["teeth"].clamp(0, 1)), 0.85)


# Painter's order, each part with the pixel window (rows, cols) it is drawn in.
# A window bounds its part over the whole parameter range plus the worst pose
# displacement (~6 px), so the per-pixel work skips what the part cannot touch.
_PARTS = (
    (_draw_hair, (0, 40), (0, 48)),
    (_draw_neck, (28, 48), (0, 48)),
    (_draw_face, (0, 48), (0, 48)),
    (_draw_brows, (1, 28), (2, 46)),
    (_draw_eyes, (6, 31), (0, 48)),
    (_draw_cheeks, (14, 46), (3, 45)),
    (_draw_forehead, (0, 22), (5, 43)),
    (_draw_centre, (2, 40), (12, 36)),
    (_draw_mouth, (19, 48), (6, 42)),
)


# --------------------------------------------------------------------------- rendering


def _render(p: dict[str, torch.Tensor], g: torch.Generator) -> torch.Tensor:
    """Render one chunk of faces to uint8 [n, 48, 48]."""
    u, v = _pose_grid(p)
    img = p["background"].expand_as(u).clone()
    for draw, rows, cols in _PARTS:
        _draw_in_window(draw, rows, cols, img, p, u, v)
    return _finish(img, p, g)


def _pose_grid(p):
    """Map every output pixel to canonical face coordinates (the inverse pose).

    This is the grid ``F.affine_grid(theta, ..., align_corners=False)`` would
    build for theta = [[c, -s, shift_u], [s, c, shift_v]], written out directly
    so that u and v come out as separate contiguous maps.
    """
    c, s = torch.cos(p["angle"]) / p["scale"], torch.sin(p["angle"]) / p["scale"]
    x = _PIXEL_CENTRES.view(1, 1, SIZE)
    y = _PIXEL_CENTRES.view(1, SIZE, 1)
    return (c * x - s * y).add_(p["shift_u"]), (s * x + c * y).add_(p["shift_v"])


def _draw_in_window(draw, rows, cols, img, p, u, v):
    """Run one part on contiguous copies of its window (strided views are slow), then write back."""
    win = (slice(None), slice(*rows), slice(*cols))
    patch = img[win].contiguous()
    draw(patch, p, u[win].contiguous(), v[win].contiguous())
    img[win] = patch


def _finish(img, p, g):
    """Lighting gradient, contrast/brightness, sensor noise; quantise to uint8."""
    x, y = _PIXEL_CENTRES.view(1, 1, SIZE), _PIXEL_CENTRES.view(1, SIZE, 1)
    img.mul_(1 + p["light_u"] * x + p["light_v"] * y)
    img.sub_(0.5).mul_(p["contrast"]).add_(0.5 + p["brightness"])
    img.add_(torch.randn(img.shape, generator=g).mul_(p["noise"]))
    return img.clamp_(0, 1).mul_(255).round_().to(torch.uint8)
