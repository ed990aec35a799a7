"""The one preprocessing path every source goes through: grayscale 48x48 uint8, then per-image min-max.

FER2013's folder export is contrast-stretched per image, its CSV is not; stretching every source the
same way lets a model trained on one layout read the other.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

SIZE = 48


def decode_image(data: bytes, where: str, size: int = SIZE) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode image bytes of any format, size or colour to a size x size grayscale uint8 array, and give
    the image's own (width, height) before it was resized.

    Pillow's decompression-bomb warning is an error here: a face data set holds small pictures, and a
    file that claims a hundred million pixels is refused before it is decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                gray = upright(img).convert("L")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{where}: refused as a possible decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"{where}: cannot decode image ({exc})") from None
    original = gray.size
    if gray.size != (size, size):
        # Box filtering when shrinking averages every source pixel (no aliasing); bilinear when growing.
        shrinking = gray.width > size or gray.height > size
        gray = gray.resize((size, size), Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.uint8), original


def upright(img: Image.Image) -> Image.Image:
    """`img` as a viewer shows it: its EXIF orientation applied, and 16-bit (or 32-bit integer) grayscale
    scaled to 8 bits (Pillow's own conversion clips it: most of a 16-bit picture would turn white)."""
    img = ImageOps.exif_transpose(img)
    if img.mode == "I" or img.mode.startswith("I;16"):
        wide = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8), "L")
    return img


def minmax_normalize(images: torch.Tensor) -> torch.Tensor:
    """Stretch each uint8 image [N, H, W] to span 0..255; constant images are left unchanged.

    Exact on already-stretched images, so a CSV face and its contrast-stretched twin meet.
    """
    x = images.to(torch.float32)
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    stretched = torch.where(span > 0, (x - lo) * 255.0 / span.clamp_min(1.0), x)
    return stretched.round_().clamp_(0, 255).to(torch.uint8)
