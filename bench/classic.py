"""Classic codecs (JPEG, WebP, AVIF, HEIC, JPEG 2000) measured in memory with the same code path as shc.

Every codec here is configured once, in :data:`CLASSIC_CODECS`, so a benchmark table can say exactly what
was run. Settings favour compression efficiency at reasonable speed (WebP ``method=6``, JPEG Huffman
optimization, 4:4:4 chroma for AVIF and HEIC, the 9/7 wavelet with colour transform for JPEG 2000), and
each codec's default quality points span roughly 0.1 to 2 bpp on Kodak.

    >>> import numpy as np
    >>> rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    >>> codec = CLASSIC_CODECS["jpeg444"]
    >>> codec.decode(codec.encode(rgb, 90)).shape
    (48, 64, 3)
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import PIL
from PIL import Image, features

__all__ = ["CLASSIC_CODECS", "HeicCodec", "Jpeg2000Codec", "PillowCodec", "best_quality_within"]

# Pillow format name -> the PIL.features name of the library behind it (for the description).
_LIBRARY_FEATURE = {"JPEG": "libjpeg_turbo", "WEBP": "webp", "AVIF": "avif", "JPEG2000": "jpg_2000"}


def _check_rgb(rgb: np.ndarray) -> None:
    """Reject anything but HxWx3 uint8: a codec silently converting would skew the comparison."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        msg = f"expected an HxWx3 uint8 array, got {rgb.dtype} {rgb.shape}"
        raise ValueError(msg)


def _options_text(options: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in sorted(options.items()))


@dataclass(frozen=True)
class PillowCodec:
    """A codec reached through ``PIL.Image.save`` with an integer ``quality`` option (JPEG, WebP, AVIF).

    Attributes:
        name: Identifier (``jpeg420``, ``webp``, ...).
        label: What a reader should call it in a plot legend.
        pil_format: Pillow format name used to save and, exclusively, to open.
        qualities: Default quality points (Pillow's 0..100 scale).
        options: Extra keyword arguments for ``Image.save``.
    """

    name: str
    label: str
    pil_format: str
    qualities: tuple[float, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        """Label, library versions and every save option: enough to reproduce the bytes."""
        feature = _LIBRARY_FEATURE[self.pil_format]
        library = f"{feature} {features.version(feature) or 'unknown'}"
        return (
            f"{self.label}: Pillow {PIL.__version__} ({library}), "
            f"{_options_text(self.options)}, quality={self._quality_meaning()}"
        )

    def _quality_meaning(self) -> str:
        return "q (0..100)"

    def _save_options(self, quality: float) -> dict[str, Any]:
        return {**self.options, "quality": int(quality)}

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        """Compress an HxWx3 uint8 array; returns the complete file."""
        _check_rgb(rgb)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format=self.pil_format, **self._save_options(quality))
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        """Decompress to HxWx3 uint8, refusing any format other than this codec's."""
        with Image.open(io.BytesIO(data), formats=[self.pil_format]) as image:
            return np.asarray(image.convert("RGB"))


@dataclass(frozen=True)
class Jpeg2000Codec(PillowCodec):
    """JPEG 2000 through Pillow/OpenJPEG, where the quality point is the target rate in bits per pixel.

    OpenJPEG's ``quality_mode="rates"`` takes a compression ratio against the raw 24-bit image, so target
    ``q`` bpp is ratio ``24 / q``. Using bpp keeps "higher quality, more bytes" true for every codec, and
    OpenJPEG's rate control lands at or slightly below the target.
    """

    def _quality_meaning(self) -> str:
        return "target bpp (quality_layers=[24/q])"

    def _save_options(self, quality: float) -> dict[str, Any]:
        if quality <= 0:
            msg = f"JPEG 2000 quality is a target bpp and must be > 0, got {quality}"
            raise ValueError(msg)
        return {**self.options, "quality_mode": "rates", "quality_layers": [24.0 / float(quality)]}


@dataclass(frozen=True)
class HeicCodec:
    """HEIC (HEVC intra, x265 through libheif) via pillow-heif, imported only when used.

    pillow-heif writes full-range BT.601 YCbCr; ``chroma=444`` keeps full-resolution chroma, like the
    BPG 4:4:4 and HM 4:4:4 anchors in the literature. ``tile_size=0`` stores one image, not a grid.
    """

    name: str = "heic"
    label: str = "HEIC 4:4:4 (x265)"
    qualities: tuple[float, ...] = (10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60)
    options: Mapping[str, Any] = field(default_factory=lambda: {"chroma": 444, "tile_size": 0})

    @property
    def description(self) -> str:
        """Label, libheif/x265 versions and every save option."""
        import pillow_heif

        info = pillow_heif.libheif_info()
        return (
            f"{self.label}: pillow-heif {pillow_heif.__version__}, libheif {info.get('libheif')} "
            f"({info.get('HEIF')}), {_options_text(self.options)}, quality=q (0..100)"
        )

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        """Compress an HxWx3 uint8 array; returns the complete ``.heic`` file."""
        import pillow_heif

        _check_rgb(rgb)
        height, width = rgb.shape[:2]
        buffer = io.BytesIO()
        heif = pillow_heif.from_bytes("RGB", (width, height), np.ascontiguousarray(rgb).tobytes())
        heif.save(buffer, quality=int(quality), **self.options)
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        """Decompress to HxWx3 uint8 with libde265."""
        import pillow_heif

        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        return np.asarray(heif.to_pillow().convert("RGB"))


CLASSIC_CODECS: dict[str, PillowCodec | HeicCodec] = {
    "jpeg420": PillowCodec(
        "jpeg420", "JPEG 4:2:0", "JPEG",
        (5, 10, 20, 30, 40, 50, 60, 70, 80, 90),
        {"subsampling": 2, "optimize": True},
    ),
    "jpeg444": PillowCodec(
        "jpeg444", "JPEG 4:4:4", "JPEG",
        (5, 10, 20, 30, 40, 50, 60, 70, 80, 90),
        {"subsampling": 0, "optimize": True},
    ),
    "webp": PillowCodec(
        "webp", "WebP", "WEBP",
        (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90),
        {"method": 6},
    ),
    "avif": PillowCodec(
        "avif", "AVIF 4:4:4 (aom)", "AVIF",
        (10, 20, 30, 40, 50, 60, 70, 80),
        {"subsampling": "4:4:4", "speed": 6},
    ),
    "heic": HeicCodec(),
    "jpeg2000": Jpeg2000Codec(
        "jpeg2000", "JPEG 2000 (OpenJPEG)", "JPEG2000",
        (0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0),
        {"irreversible": True, "mct": 1, "no_jp2": True},
    ),
}
"""The classic codecs by ``--codecs`` name, with their default quality points."""


def best_quality_within(codec, rgb, max_bytes: int) -> tuple[int, bytes] | None:
    """Highest integer quality in 1..100 whose encoding has at most ``max_bytes`` (bisection; size grows with q)."""
    low, high, best = 1, 100, None
    while low <= high:
        quality = (low + high) // 2
        data = codec.encode(rgb, quality)
        if len(data) <= max_bytes:
            best, low = (quality, data), quality + 1
        else:
            high = quality - 1
    return best
