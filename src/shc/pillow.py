"""Pillow plugin: ``import shc.pillow`` (or ``shc.register_opener()``) and Pillow opens and saves ``.shc`` files.

``Image.open`` reads the magic, the version and HEAD only (size and mode, no pixels); the file's bytes are
read and decoded by the normative numpy decoder on ``load()``. An implicit neural representation renders
at any size, so :meth:`ShcImageFile.draft` (which ``Image.thumbnail`` calls) makes ``load()`` render the
reduced image directly: a thumbnail is rendered at the draft size Pillow asks for (twice the thumbnail, by
default), never at the full size when that is larger, from the prefix of the file's levels that size needs
(:func:`shc.format.reader.preview_levels`: the file's other bytes are not read). ``im.save("x.shc", quality=3)``
encodes, which needs torch (the ``encode`` extra); without it, saving raises an OSError that names it.
"""

from __future__ import annotations

import inspect
import io
from typing import IO

import numpy as np
from PIL import Image, ImageFile

from shc._optional import TorchMissingError, load_encoder
from shc.format import constants as C
from shc.format.container import read_header
from shc.format.decoder import DecodedImage
from shc.format.errors import ShcFormatError
from shc.format.header import Header, head_payload_bytes
from shc.format.reader import ShcReader, preview_levels

__all__ = ["MIME_TYPE", "ShcImageFile"]

MIME_TYPE = "image/x-shc"

_MODES = {3: "RGB", 4: "RGBA"}
"""Pillow mode by channel count (files before format version 5 are all RGB; a v5 HEAD says how many)."""

_HEADER_BYTES = C.FILE_PREFIX_BYTES + C.SECTION_FRAME_BYTES + max(
    head_payload_bytes(C.MAX_LEVELS, version) for version in C.READABLE_VERSIONS
)
"""Enough bytes for the longest HEAD of any readable version: all that ``Image.open`` reads."""


def _accept(prefix: bytes) -> bool:
    return prefix.startswith(C.MAGIC)


def _reduced_size(native: tuple[int, int], requested: tuple[int, int]) -> tuple[int, int]:
    """The smallest size of the native aspect ratio that is at least ``requested`` in both dimensions
    (Pillow's draft contract: as close as possible, equal or larger), and never above native. Integer
    arithmetic: the binding side is the requested one exactly, the other side rounds up."""
    (width, height), (want_w, want_h) = native, (max(1, requested[0]), max(1, requested[1]))
    if want_w >= width or want_h >= height:
        return native
    if want_w * height >= want_h * width:  # the width binds: want_w / width >= want_h / height
        return want_w, min(height, -(-height * want_w // width))
    return min(width, -(-width * want_h // height)), want_h


def decode_at(fp: IO[bytes], size: tuple[int, int], reduced: bool) -> tuple[DecodedImage, int, int]:
    """The file ``fp`` rendered at ``size``: whole, or (``reduced``: a draft) from the prefix of levels that
    size needs. Returns the image, the levels used and the bytes read.

    No pixel limit: Image.open has applied Pillow's decompression-bomb check (MAX_IMAGE_PIXELS) to the native
    size, and draft only shrinks it; the decoder's own limit would be a second, different one."""
    reader = ShcReader(fp)
    width, height = size
    levels = preview_levels(reader.header, width, height) if reduced else reader.header.config.num_levels
    with np.errstate(over="ignore", invalid="ignore"):  # overflowing weights: see decoder.to_uint8
        pixels = reader.synthesis(width, height, levels=levels if reduced else None).render(width, height)
    return DecodedImage(pixels, reader.icc_profile, reader.exif), levels, reader.bytes_read


class ShcImageFile(ImageFile.ImageFile):
    """A ``.shc`` file seen by Pillow: the header at open, pixels (at the native or draft size) on load."""

    format = "SHC"
    format_description = "SHACIRA neural image"
    header: Header
    """The parsed HEAD: image size and model, known from the open on, before any decoding."""

    def _open(self) -> None:
        assert self.fp is not None
        head = self.fp.read(_HEADER_BYTES)
        if not _accept(head):
            msg = "not an SHC file"
            raise SyntaxError(msg)
        try:
            header = read_header(head)
        except ShcFormatError as error:  # Image.open turns SyntaxError into UnidentifiedImageError
            msg = f"broken SHC file: {error}"
            raise SyntaxError(msg) from error
        channels = getattr(header.config, "channels", 3)  # HEAD `channels`, format version 5 on
        if channels not in _MODES:
            msg = f"SHC file with {channels} channels"
            raise SyntaxError(msg)
        self._mode = _MODES[channels]
        self._native_size = (header.width, header.height)
        self._size = self._native_size
        self.header = header
        # A marker that pixels are pending (ImageFile.load refuses an image with neither tile nor core);
        # load() replaces it with the decoded pixels before Pillow's own load runs.
        self.tile = [ImageFile._Tile("shc", (0, 0, *self.size), 0, None)]

    def draft(
        self, mode: str | None, size: tuple[int, int] | None
    ) -> tuple[str, tuple[int, int, float, float]] | None:
        """Render at a reduced size on load: the smallest of the file's aspect ratio that covers ``size``.

        Returns ``(mode, box)``, box being where the original image lies in the reduced one (all of it),
        or None when nothing changes: already loaded, no size asked for, or the native size is the closest.
        ``mode`` is not converted (Pillow converts after loading).
        """
        if not self.tile or size is None:
            return None
        self._size = _reduced_size(self._native_size, size)
        self.tile = [self.tile[0]._replace(extents=(0, 0, *self.size))]
        if self.size == self._native_size:
            return None
        return self.mode, (0, 0, *self.size)

    def load(self) -> Image.core.PixelAccess | None:
        """Decode the file at ``self.size``: natively the whole file; at a size ``draft`` chose, from the
        prefix of levels that size needs (``info["shc_levels"]``, ``info["shc_bytes_read"]``). A malformed
        file raises OSError (the :class:`ShcFormatError` is its cause), as Pillow's decoders do."""
        if self.tile and self.tile[0].codec_name == "shc":
            assert self.fp is not None
            self.fp.seek(0)
            try:
                decoded, levels, bytes_read = decode_at(self.fp, self.size, self.size != self._native_size)
            except ShcFormatError as error:
                msg = f"broken SHC file: {error}"
                raise OSError(msg) from error
            self.info["shc_levels"], self.info["shc_bytes_read"] = levels, bytes_read
            pixels = decoded.pixels
            rawmode = _MODES.get(pixels.shape[2])
            if rawmode != self.mode:
                msg = f"SHC file decoded to {pixels.shape[2]} channels, its header says {self.mode}"
                raise OSError(msg)
            for key in ("icc_profile", "exif"):  # format version 5 metadata
                if value := getattr(decoded, key):
                    self.info[key] = value
            # From here on it is the usual ending of a plugin whose library decodes (Pillow's WebP, AVIF):
            # raw pixels in memory, read by Pillow's "raw" decoder.
            if self._exclusive_fp:
                self.fp.close()
            self.fp = io.BytesIO(pixels.tobytes())
            self.tile = [ImageFile._Tile("raw", (0, 0, *self.size), 0, rawmode)]
        return super().load()

    def load_seek(self, pos: int) -> None:
        """The raw pixels start at 0; defining this also stops Pillow memory-mapping the .shc file as raw."""
        self.fp.seek(pos)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """``im.save(f, "SHC", quality=..., preset=..., steps=..., seed=..., device=...)``: the options of
    :func:`shc.codec.encoder.encode_image`; other save options are ignored, as Pillow's plugins do."""
    try:
        encode = load_encoder()
    except TorchMissingError as error:
        raise OSError(str(error)) from error.__cause__
    accepted = set(inspect.signature(encode).parameters) - {"image", "settings", "progress"}
    options = {key: value for key, value in im.encoderinfo.items() if key in accepted}
    fp.write(encode(im, **options).data)


Image.register_open(ShcImageFile.format, ShcImageFile, _accept)
Image.register_save(ShcImageFile.format, _save)
Image.register_extension(ShcImageFile.format, ".shc")
Image.register_mime(ShcImageFile.format, MIME_TYPE)
