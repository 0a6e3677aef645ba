"""Writing a PNG strip by strip, while the decoder renders the next strip (numpy + zlib, no Pillow).

Why not Pillow: Pillow saves a whole image held in memory. Written here, a decode holds one strip of rows,
not the image (a 200-megapixel PNG needs no 600 MB buffer), and zlib (which releases the GIL) compresses
one strip in a second thread while numpy renders the next: on two cores ``shc decode`` to PNG costs little
more than the rendering alone. Every row uses the Up filter (the byte above subtracted): computed for a
whole strip at once in numpy, it compresses about as well as Pillow's per-row choice on photos.

The PNG carries the image's ICC profile (``iCCP``) and EXIF block (``eXIf``), like
:func:`shc.images.save_image_bytes`.
"""

from __future__ import annotations

import queue
import struct
import threading
import zlib
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np

__all__ = ["write_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
"""Channels -> PNG colour type (gray, gray + alpha, RGB, RGBA), 8 bits each."""
FILTER_UP = 2
EXIF_PREFIX = b"Exif\x00\x00"


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def _header_chunks(width: int, height: int, channels: int, icc_profile: bytes | None, exif: bytes | None) -> bytes:
    parts = [PNG_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[channels], 0, 0, 0))]
    if icc_profile:
        parts.append(_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        parts.append(_chunk(b"eXIf", exif[len(EXIF_PREFIX):] if exif.startswith(EXIF_PREFIX) else exif))
    return b"".join(parts)


def _filtered(strip: np.ndarray, above: np.ndarray | None) -> bytes:
    """The strip's rows as PNG scanlines: filter byte 2 (Up), then each byte minus the one above it."""
    rows = strip.reshape(strip.shape[0], -1)
    lines = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    lines[:, 0] = FILTER_UP
    np.subtract(rows[1:], rows[:-1], out=lines[1:, 1:])  # uint8 arithmetic wraps modulo 256, as PNG wants
    if above is None:
        lines[0, 1:] = rows[0]
    else:
        np.subtract(rows[0], above, out=lines[0, 1:])
    return lines.tobytes()


def write_png(
    out: BinaryIO,
    strips: Iterable[np.ndarray],
    width: int,
    height: int,
    channels: int,
    *,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    level: int = 1,
) -> None:
    """Write ``strips`` (consecutive ``(rows, width, channels)`` uint8 blocks, top to bottom, ``height`` rows
    in all) to ``out`` as one PNG with zlib ``level``. Strips are compressed in a background thread while
    the iterable produces the next one; an exception on either side stops both and is raised here."""
    if channels not in COLOUR_TYPES:
        msg = f"PNG holds 1 to 4 channels, not {channels}"
        raise ValueError(msg)
    out.write(_header_chunks(width, height, channels, icc_profile, exif))
    pending: queue.Queue = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def compress() -> None:
        compressor = zlib.compressobj(level)
        above = None
        try:
            while (strip := pending.get()) is not None:
                data = compressor.compress(_filtered(strip, above))
                above = strip[-1].reshape(-1)
                if data:
                    out.write(_chunk(b"IDAT", data))
            out.write(_chunk(b"IDAT", compressor.flush()) + _chunk(b"IEND", b""))
        except BaseException as error:  # reported to the caller, which stops producing
            failure.append(error)
            while pending.get() is not None:  # let the producer finish its puts
                pass

    worker = threading.Thread(target=compress, name="png-writer", daemon=True)
    worker.start()
    rows = 0
    try:
        for strip in strips:
            if failure:
                break
            if strip.ndim != 3 or strip.shape[1:] != (width, channels) or strip.dtype != np.uint8:
                msg = f"strip of shape {strip.shape} {strip.dtype} does not fit a {width}x{height}x{channels} PNG"
                raise ValueError(msg)
            rows += strip.shape[0]
            pending.put(strip)
    finally:
        pending.put(None)
        worker.join()
    if failure:
        raise failure[0]
    if rows != height:
        msg = f"got {rows} rows for a PNG {height} rows high"
        raise ValueError(msg)
