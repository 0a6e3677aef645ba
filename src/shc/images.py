"""Reading input images and writing decoded ones (numpy + Pillow, no torch).

shc codes 8-bit RGB or RGBA. :func:`load_image` converts other inputs the way a user would expect and keeps
what the colours mean: EXIF orientation is applied to the pixels (the stored tag removed or reset to 1); the ICC
profile and the EXIF block come along (``strip=True`` drops them); grayscale, palette and CMYK become RGB,
colour-managed to sRGB when the image's own ICC profile is a grayscale or CMYK one (an RGB file cannot
carry such a profile); 16-bit and 32-bit integer images are scaled to 8 bits; alpha is kept (an image whose
alpha is opaque everywhere is coded as RGB), or composited over ``background``. :func:`save_image_bytes`
writes a decoded image back with its profile and EXIF attached. :func:`load_rgb` is the older RGB-only
reader (alpha dropped, metadata ignored) that the benchmark uses.

Anything Pillow cannot read, and images larger than Pillow's decompression-bomb limit, raise
:class:`ImageInputError`.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import ExifTags, Image, ImageColor, ImageOps

from shc.format.constants import META_KEYS
from shc.format.decoder import DecodedImage
from shc.format.metadata import EXIF_PREFIX, TIFF_BYTE_ORDERS, metadata_problem

__all__ = [
    "ImageInputError",
    "SourceImage",
    "composite",
    "load_image",
    "load_rgb",
    "parse_background",
    "save_image_bytes",
]

_T = TypeVar("_T")
ICC_KEY, EXIF_KEY = META_KEYS
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
METADATA_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF", "AVIF", "HEIF"}
"""Formats Pillow writes an ICC profile and an EXIF block into (``icc_profile=``, ``exif=``)."""
_STRIP_HINT = "use --strip (strip=True) to code the pixels without it"


class ImageInputError(ValueError):
    """An input image that cannot be read or is unsuitable; the message is one line for the user."""


class SourceImage(DecodedImage):
    """An image as shc codes it: 8-bit pixels (uint8 ``(height, width, channels)``, C-contiguous, RGB or RGBA
    with straight alpha) and the metadata the file carries along: the ICC profile (None: none given, sRGB by
    convention) and the EXIF block (``Exif\\0\\0`` + TIFF structure, the orientation already applied to
    the pixels, its tag removed or 1). The same record as a decoded image, which is what a decode gives back."""


# ---------------------------------------------------------------------------------------------- reading


@functools.cache
def _register_heif() -> None:
    """Read HEIC/HEIF inputs (phone photos) when pillow-heif is installed (``pip install "shc[bench]"``)."""
    try:
        import pillow_heif
    except ImportError:
        return
    pillow_heif.register_heif_opener()


def _open(source: Any, convert: Callable[[Image.Image], _T], max_pixels: int | None = None) -> _T:
    """``convert(image)`` of a path, bytes or PIL image, every read failure as one :class:`ImageInputError`.

    Images over ``max_pixels`` (default: Pillow's ``Image.MAX_IMAGE_PIXELS``, its decompression-bomb
    limit) are refused before their pixels are decoded; the message says how to raise the limit."""
    if isinstance(source, Image.Image):
        return convert(source)
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
    _register_heif()
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    previous = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = limit  # Pillow's own check, at open: warns above it (an error here)
            with Image.open(source) as image:
                image.load()
                return convert(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        msg = f"{name}: image too large ({error}); raise the limit of {limit} pixels with --max-pixels (max_pixels=)"
        raise ImageInputError(msg) from error
    except ImageInputError as error:
        msg = f"{name}: {error}"
        raise ImageInputError(msg) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        msg = f"{name}: cannot read image ({error})"
        raise ImageInputError(msg) from error
    finally:
        Image.MAX_IMAGE_PIXELS = previous


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
    return _pixels(image, "RGB")


STRIP_PIXELS = 1 << 22
"""Large images are converted to an array in strips of about this many pixels."""


def _pixels(image: Image.Image, mode: str) -> np.ndarray:
    """The image's pixels in ``mode`` as a writeable ``(H, W, channels)`` uint8 array, filled strip by strip:
    a 200 MP photo then costs its array and a strip, not three more copies of itself (the converted image,
    its bytes and a writeable copy)."""
    width, height = image.size
    channels = len(mode)
    out = np.empty((height, width, channels), dtype=np.uint8)
    step = max(1, STRIP_PIXELS // max(width, 1))
    for top in range(0, height, step):
        strip = image.crop((0, top, width, min(height, top + step)))
        out[top : top + strip.height] = np.asarray(strip if strip.mode == mode else strip.convert(mode))
    return out


def _upright(image: Image.Image) -> Image.Image:
    """The image turned by its EXIF orientation (:func:`ImageOps.exif_transpose`), or itself when it needs no
    turning (exif_transpose would return a copy)."""
    if image.getexif().get(0x0112, 1) in (0, 1):
        return image
    return ImageOps.exif_transpose(image)


def _has_alpha(image: Image.Image) -> bool:
    """Whether the image has an alpha channel or a transparent colour (not counted for 16/32-bit modes)."""
    if image.mode.startswith(("I", "F")):
        return False
    return image.mode in ALPHA_MODES or "transparency" in image.info


def _exif_bytes(image: Image.Image) -> bytes | None:
    """The EXIF block of an (already transposed) image, as ``Exif\\0\\0`` + TIFF, with Orientation at 1.

    Pillow keeps it in ``info["exif"]`` (WebP without the ``Exif\\0\\0`` prefix); TIFF tags are the image
    structure itself, not a block to carry along.
    """
    raw = image.info.get("exif")
    if not raw:
        return None
    raw = bytes(raw)
    if raw[:4] in TIFF_BYTE_ORDERS:
        raw = EXIF_PREFIX + raw
    exif = image.getexif()
    if exif.get(ExifTags.Base.Orientation, 1) != 1:  # exif_transpose removes it; anything left is reset
        exif[ExifTags.Base.Orientation] = 1
        raw = exif.tobytes()
    return raw


def _icc_colour_space(icc: bytes) -> bytes:
    """The data colour space of an ICC profile (header bytes 16..19): ``RGB ``, ``GRAY``, ``CMYK``, ..."""
    return icc[16:20]


def _mode_colour_space(mode: str) -> bytes:
    """The ICC data colour space that describes pixels of a Pillow mode."""
    if mode == "CMYK":
        return b"CMYK"
    return b"GRAY" if mode.startswith(("1", "L", "I", "F")) else b"RGB "


def _to_srgb(image: Image.Image, icc: bytes) -> np.ndarray:
    """RGB pixels of a grayscale or CMYK image whose own ICC profile describes them, colour-managed to sRGB."""
    try:
        from PIL import ImageCms

        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if image.mode == "CMYK":
            colour = image
        else:  # any gray mode as 8-bit L (16-bit scaled like _to_rgb does), alpha aside
            colour = Image.fromarray(_to_rgb(image.convert("L") if image.mode in ALPHA_MODES else image)[..., 0], "L")
        converted = ImageCms.profileToProfile(colour, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImportError, OSError, ValueError, TypeError) as error:  # ImageCms.PyCMSError is an OSError
        msg = f"cannot convert the colours with the image's ICC profile ({error}); {_STRIP_HINT}"
        raise ImageInputError(msg) from error
    return np.asarray(converted, dtype=np.uint8).copy()


def _check_metadata(image: SourceImage) -> SourceImage:
    """``image``, if the file format can hold its ICC profile and EXIF block (size, first bytes)."""
    for key, value, what in ((ICC_KEY, image.icc_profile, "ICC profile"), (EXIF_KEY, image.exif, "EXIF block")):
        problem = None if value is None else metadata_problem(key, bytes(value))
        if problem is not None:
            msg = f"its {what} cannot be kept ({problem}); {_STRIP_HINT}"
            raise ImageInputError(msg)
    return image


def _from_pil(image: Image.Image, strip: bool) -> SourceImage:
    """Pixels (orientation applied; RGBA when the image has alpha), its ICC profile and EXIF block."""
    image = _upright(image)
    icc = None if strip else (image.info.get("icc_profile") or None)
    exif = None if strip else _exif_bytes(image)
    rgba = _pixels(image, "RGBA") if _has_alpha(image) else None
    rgb = _to_rgb(image) if rgba is None else rgba[..., :3]
    if icc is not None:
        space, expected = _icc_colour_space(icc), _mode_colour_space(image.mode)
        if space != expected:
            named = space.decode("latin-1").strip()
            msg = f"its ICC profile is for {named} data, the pixels are {image.mode}; {_STRIP_HINT}"
            raise ImageInputError(msg)
        if space != b"RGB ":  # an RGB file cannot carry it: converted to sRGB, which needs no profile
            rgb, icc = _to_srgb(image, icc), None
    pixels = rgb if rgba is None else np.concatenate([rgb, rgba[..., 3:]], axis=2)
    return _check_metadata(SourceImage(np.ascontiguousarray(pixels), icc, exif))


def _check_array(array: np.ndarray, channels: tuple[int, ...]) -> np.ndarray:
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in channels or 0 in array.shape:
        allowed = " or ".join(f"(H, W, {c})" for c in channels)
        msg = f"array input must be a non-empty {allowed} uint8 array, got {array.dtype} {array.shape}"
        raise ImageInputError(msg)
    return np.ascontiguousarray(array)


def load_image(
    source: Any,
    *,
    alpha: bool = True,
    background: tuple[int, int, int] | None = None,
    strip: bool = False,
    max_pixels: int | None = None,
) -> SourceImage:
    """Load a path, bytes, PIL image, ``(H, W, 3 | 4)`` uint8 array or :class:`SourceImage` for coding.

    ``alpha=False`` drops the alpha channel (RGB kept as it is); ``background`` (r, g, b) composites alpha
    over that colour instead (:func:`composite`); an alpha that is 255 everywhere is dropped either way.
    ``strip`` drops the ICC profile and the EXIF block (colours are then read as sRGB). Image files over
    ``max_pixels`` (default: Pillow's decompression-bomb limit) are refused before they are decoded.
    """
    if isinstance(source, SourceImage):
        loaded = SourceImage(_check_array(source.pixels, (3, 4)), source.icc_profile, source.exif)
        if not strip:
            _check_metadata(loaded)
    elif isinstance(source, np.ndarray):
        loaded = SourceImage(_check_array(source, (3, 4)))
    else:
        loaded = _open(source, lambda image: _from_pil(image, strip), max_pixels)
    pixels = loaded.pixels
    if pixels.shape[2] == 4:
        if background is not None:
            pixels = composite(pixels, background)
        elif not alpha or bool(np.all(pixels[..., 3] == 255)):
            pixels = np.ascontiguousarray(pixels[..., :3])
    if strip:
        return SourceImage(pixels)
    return SourceImage(pixels, loaded.icc_profile, loaded.exif)


def load_rgb(source: Any) -> np.ndarray:
    """Load a path, bytes, PIL image or ``(H, W, 3)`` uint8 array as a C-contiguous ``(H, W, 3)`` uint8 array.

    Alpha is dropped (not composited) and metadata ignored; :func:`load_image` keeps both.
    """
    if isinstance(source, np.ndarray):
        return _check_array(source, (3,))
    return _open(source, lambda image: _to_rgb(_upright(image)))


# ---------------------------------------------------------------------------------------------- alpha


def parse_background(text: str) -> tuple[int, int, int]:
    """An opaque colour for :func:`composite` from CSS-style text: ``white``, ``#808080``, ``rgb(0,0,0)``."""
    try:
        colour = ImageColor.getrgb(text)
    except ValueError:
        msg = f"unknown colour {text!r} (give a name such as white, or #rrggbb)"
        raise ValueError(msg) from None
    if len(colour) == 4 and colour[3] != 255:
        msg = f"background colour {text!r} must be opaque"
        raise ValueError(msg)
    return int(colour[0]), int(colour[1]), int(colour[2])


def composite(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """RGB ``(H, W, 3)`` uint8 of straight-alpha RGBA over an opaque ``background``, in 8-bit integers:
    ``round((c * a + b * (255 - a)) / 255)`` per channel, in the image's own (gamma-encoded) values."""
    bg = np.asarray(background, dtype=np.uint32)
    if bg.shape != (3,) or int(bg.max()) > 255:
        msg = f"background must be an (r, g, b) tuple of 0..255, got {background!r}"
        raise ValueError(msg)
    a = rgba[..., 3:4].astype(np.uint32)
    mixed = rgba[..., :3].astype(np.uint32) * a + bg * (255 - a)
    return ((mixed + 127) // 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- writing


def save_image_bytes(
    image: DecodedImage,
    fmt: str = "PNG",
    *,
    background: tuple[int, int, int] | None = None,
    **options: Any,
) -> bytes:
    """The bytes of ``image`` (a :class:`~shc.format.decoder.DecodedImage` or :class:`SourceImage`) saved
    by Pillow as ``fmt``, with its ICC profile and EXIF block attached (PNG: iCCP and eXIf chunks) and RGBA
    kept as RGBA. ``options`` go to Pillow (e.g. ``compress_level``).

    Raises ValueError rather than change what the image looks like: RGBA into a format without alpha
    (unless ``background`` flattens it), or an ICC profile into a format that cannot hold one. The EXIF
    block is left out where the format has no place for it.
    """
    fmt = fmt.upper()
    pixels = image.pixels
    if pixels.shape[2] == 4 and background is not None:
        pixels = composite(pixels, background)
    params = dict(options)
    if image.icc_profile is not None or image.exif is not None:
        if fmt not in METADATA_FORMATS and image.icc_profile is not None:
            known = ", ".join(sorted(METADATA_FORMATS))
            msg = f"{fmt} cannot hold the image's ICC profile (write {known}, or strip the profile)"
            raise ValueError(msg)
        if fmt in METADATA_FORMATS:
            params.update({k: v for k, v in (("icc_profile", image.icc_profile), ("exif", image.exif)) if v})
    picture = Image.fromarray(pixels, "RGBA" if pixels.shape[2] == 4 else "RGB")
    buffer = io.BytesIO()
    try:
        picture.save(buffer, format=fmt, **params)
    except (KeyError, OSError) as error:
        hint = " (it has no alpha: give a background colour to flatten)" if picture.mode == "RGBA" else ""
        msg = f"cannot write {picture.mode} as {fmt}: {error}{hint}"
        raise ValueError(msg) from error
    return buffer.getvalue()
