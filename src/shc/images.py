"""Reading input images as 8-bit RGB (numpy + Pillow, no torch).

shc codes 8-bit RGB. Other inputs are converted the way a user would expect: EXIF orientation is applied;
grayscale, palette and CMYK become RGB; 16-bit and 32-bit integer images are scaled to 8 bits; alpha is
dropped (the RGB values are kept as they are, not composited). Anything Pillow cannot read, and images
larger than Pillow's decompression-bomb limit, raise :class:`ImageInputError`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

__all__ = ["ImageInputError", "load_rgb"]


class ImageInputError(ValueError):
    """An input image that cannot be read or is unsuitable; the message is one line for the user."""


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.rint(np.clip(values, 0, peak) * (255.0 / peak)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        gray = np.rint(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def load_rgb(source: Any) -> np.ndarray:
    """Load a path, bytes, PIL image or ``(H, W, 3)`` uint8 array as a C-contiguous ``(H, W, 3)`` uint8 array."""
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3 or 0 in source.shape:
            msg = f"array input must be a non-empty (H, W, 3) uint8 array, got {source.dtype} {source.shape}"
            raise ImageInputError(msg)
        return np.ascontiguousarray(source)
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
        name = "input"
    else:
        name = str(source)
        path = Path(source)
        if not path.exists():
            msg = f"{name}: no such file"
            raise ImageInputError(msg)
        if path.is_dir():
            msg = f"{name}: is a directory, not an image"
            raise ImageInputError(msg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                image.load()
                return _to_rgb(ImageOps.exif_transpose(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        msg = f"{name}: image too large ({error})"
        raise ImageInputError(msg) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        msg = f"{name}: cannot read image ({error})"
        raise ImageInputError(msg) from error
