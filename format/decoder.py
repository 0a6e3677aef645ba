"""The normative decoder in one call: ``.shc`` bytes -> 8-bit RGB or RGBA pixels, with numpy and constriction
only (no torch).

Data path: container -> integer tables -> range-decoded integer latents (:mod:`shc.format.entropy`, or
:mod:`shc.format.reader` for a prefix of levels) -> :class:`~shc.format.synthesis.Synthesis`: per-level
feature tables, the blend of every level at each pixel, the fixed-point MLP -> uint8. The file's ICC
profile and EXIF block come back with the pixels (:func:`decode_image`). The output is rendered in strips
of about ``DECODE_TILE_PIXELS`` pixels, so memory does not grow with the output beyond the image itself.
Dependencies run one way: decoder -> reader -> synthesis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shc.format import constants as C
from shc.format.container import Header, read_file
from shc.format.entropy import file_latents
from shc.format.errors import ShcFormatError
from shc.format.reader import ShcReader
from shc.format.synthesis import AxisTaps, Synthesis, feature_table, mlp_of, render_threads, to_uint8

__all__ = ["AxisTaps", "DecodedImage", "Synthesis", "decode_bytes", "decode_image", "feature_table", "mlp_of",
           "output_size", "render_threads", "to_uint8"]
"""The synthesis names are re-exported: ``shc.format.decoder`` is where users and tests have found them."""


def output_size(
    header: Header,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    max_pixels: int | None = C.DEFAULT_MAX_OUTPUT_PIXELS,
) -> tuple[int, int]:
    """The ``(width, height)`` to render: native, ``scale`` times native (rounded), or an explicit ``size``.

    Raises ValueError for a bad request and :class:`ShcFormatError` when the result exceeds ``max_pixels``
    (a decompression-bomb guard checked before any work starts; ``None`` disables it).
    """
    if scale is not None and size is not None:
        msg = "give either scale or size, not both"
        raise ValueError(msg)
    if size is not None:
        width, height = (int(v) for v in size)
        if width < 1 or height < 1:
            msg = f"size must be positive, got {width}x{height}"
            raise ValueError(msg)
    elif scale is not None:
        if not (math.isfinite(scale) and scale > 0):
            msg = f"scale must be a positive finite number, got {scale}"
            raise ValueError(msg)
        width = max(1, round(header.width * scale))
        height = max(1, round(header.height * scale))
    else:
        width, height = header.width, header.height
    if max_pixels is not None and width * height > max_pixels:
        msg = (
            f"decoding at {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} pixels "
            "(raise it with max_pixels / --max-pixels if this is intended)"
        )
        raise ShcFormatError(msg)
    return width, height


@dataclass(frozen=True)
class DecodedImage:
    """What a file gives back: the pixels and the metadata to attach when they are saved (an image saved
    without its ICC profile shows other colours)."""

    pixels: np.ndarray
    """uint8 ``(height, width, channels)``: RGB, or RGBA with straight (not premultiplied) alpha."""
    icc_profile: bytes | None = None
    exif: bytes | None = None

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])


def decode_image(
    data: bytes,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    max_pixels: int | None = C.DEFAULT_MAX_OUTPUT_PIXELS,
    levels: int | None = None,
) -> DecodedImage:
    """Decode a ``.shc`` file: its pixels at native size, ``scale`` or ``size=(W, H)``, with its ICC
    profile and EXIF block (None when the file has none). ``levels``: render a level-of-detail preview from
    the first ``levels`` levels only (SPEC §6), which also decodes what a truncated file holds."""
    if levels is not None:
        reader = ShcReader(data)
        width, height = output_size(reader.header, scale, size, max_pixels)
        synthesis = reader.synthesis(width, height, levels=levels)
        icc, exif = reader.icc_profile, reader.exif
    else:
        shc_file = read_file(data)
        width, height = output_size(shc_file.header, scale, size, max_pixels)
        synthesis = Synthesis(shc_file, file_latents(shc_file))
        icc, exif = shc_file.icc_profile, shc_file.exif
    with np.errstate(over="ignore", invalid="ignore"):  # weights that overflow float32: see to_uint8
        pixels = synthesis.render(width, height)
    return DecodedImage(pixels, icc, exif)


def decode_bytes(
    data: bytes,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    max_pixels: int | None = C.DEFAULT_MAX_OUTPUT_PIXELS,
    levels: int | None = None,
) -> np.ndarray:
    """Decode a ``.shc`` file to an 8-bit array ``(height, width, channels)``: RGB, or RGBA for a file
    with alpha (``levels``: from its first levels only, as :func:`decode_image`). The metadata is dropped;
    :func:`decode_image` keeps it."""
    return decode_image(data, scale, size, max_pixels, levels).pixels
