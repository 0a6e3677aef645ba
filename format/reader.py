"""Reading only what a rendering needs: a region, a level-of-detail prefix, or what a truncated file holds.

A version-7 file keeps its latents in segments (SPEC §6): the coarse levels packed whole, coarse to fine,
each large level in spatial chunks, every segment with its own length and CRC-32 in the LATN index. An
:class:`ShcReader` parses everything before the latents (a few kilobytes), then seeks to and reads only the
segments a rendering needs:

- a region (``--crop``, a Deep Zoom tile): the whole levels, and of each chunked level the chunks under
  the region (:func:`region_segments`), so the cost follows the region, not the file;
- a prefix of ``levels`` levels (``--levels``, Pillow's ``draft``): the segments of those levels; the
  latents of the others are taken as 0 (SPEC §6);
- a truncated file (an interrupted download): the levels whose segments all arrived.

Everything read is checked (CRC-32 per segment) before it is decoded; a full decode is exactly
:func:`shc.format.container.read_file`'s, with the histogram check of SPEC §5.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from shc.format.binary import FileReader
from shc.format.container import check_segment, complete_levels, read_front, segment_values, truncation_error
from shc.format.entropy import decode_latents, decode_segments, unpack_float16_latents
from shc.format.errors import ShcFormatError
from shc.format.grid import axis_taps
from shc.format.layout import LatentLayout
from shc.format.synthesis import Synthesis, feature_table

__all__ = ["RegionRenderer", "ShcReader", "preview_levels", "region_segments"]

PREVIEW_CELLS_PER_PIXEL = 4
"""A preview keeps the levels with at most this many cells per output pixel along each axis. Finer ones
mostly add detail that the reduced rendering averages away, but not only: without them the rendering is
blurrier and its colours shift a little (Kodak, quality 3, 1/16 of the size: 22 dB median, 19 dB worst
against the whole file's rendering at that size; results/lod/README.md)."""


def preview_levels(header, width: int, height: int) -> int:
    """How many levels, coarse to fine, a ``width x height`` rendering of the file needs (at least 1): the
    prefix that Pillow's ``draft`` (a thumbnail) reads instead of the whole file."""
    count = 1
    for index, (nx, ny) in enumerate(header.level_cells):
        if index and (nx > PREVIEW_CELLS_PER_PIXEL * width or ny > PREVIEW_CELLS_PER_PIXEL * height):
            break
        count = index + 1
    return count


def region_segments(
    layout: LatentLayout, width: int, height: int, box: tuple[int, int, int, int] | None = None,
    levels: int | None = None, kernel: int = 0,
) -> list[int]:
    """The segments that pixels ``box = (left, top, right, bottom)`` of a ``width x height`` rendering from
    the first ``levels`` levels (default all) need: every whole level's, and of a chunked level the chunks
    holding the vertices the region's pixels blend (``kernel``: the header's interpolation)."""
    left, top, right, bottom = box if box is not None else (0, 0, width, height)
    segment_of = {(piece.level.index, piece.chunk): segment.index
                  for segment in layout.segments for piece in segment.pieces}
    needed = set()
    for level in layout.levels[: len(layout.levels) if levels is None else levels]:
        if level.chunking is None:
            needed.add(segment_of[(level.index, None)])
            continue
        vx, _ = axis_taps(width, level.nx, np.array([left, right - 1]), kernel)
        vy, _ = axis_taps(height, level.ny, np.array([top, bottom - 1]), kernel)
        for chunk in level.chunks_covering(int(vx.min()), int(vx.max()), int(vy.min()), int(vy.max())):
            needed.add(segment_of[(level.index, chunk)])
    return sorted(needed)


class ShcReader:
    """A ``.shc`` file opened for reading: its front parsed and checked, its latent segments read on demand.

    ``source``: a path, a seekable binary file object (left open), or the file's bytes. ``bytes_read``
    counts what was read so far. A file cut short (version 7) opens, and :attr:`complete_levels` says how
    many of its levels can be rendered; anything that needs a missing byte is a :class:`ShcFormatError`.
    """

    def __init__(self, source: str | Path | bytes | io.IOBase) -> None:
        self._owned = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            handle = io.BytesIO(bytes(source))
        elif isinstance(source, (str, Path)):
            handle = self._owned = open(source, "rb")  # noqa: SIM115 (closed by close())
        else:
            handle = source
        self._handle = handle
        try:
            reader = FileReader(handle, "file")
            self.size = reader.position + reader.remaining
            self.file, self.index, self._legacy = read_front(reader)
        except BaseException:
            self.close()
            raise
        self.header = self.file.header
        self.bytes_read = reader.position
        end = self.index.end if self._legacy is None else reader.position
        if self.size > end:
            self.close()
            msg = f"{self.size - end} bytes of trailing garbage after the last section"
            raise ShcFormatError(msg)

    def __enter__(self) -> ShcReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    @property
    def icc_profile(self) -> bytes | None:
        return self.file.icc_profile

    @property
    def exif(self) -> bytes | None:
        return self.file.exif

    @property
    def truncated(self) -> bool:
        return self.size < self.index.end

    @property
    def complete_levels(self) -> int:
        """How many levels, coarse to fine, a file holds whole (all of them unless it was cut short)."""
        return complete_levels(self.header, self.index, self.size)

    def _require(self, segments: Iterable[int]) -> None:
        if not all(self.index.arrived(k, self.size) for k in segments):
            raise truncation_error(self.header, self.index, self.size)

    def segment(self, segment: int) -> np.ndarray:
        """One segment's words (or float16 latents), read from the file and checked against its CRC-32."""
        if self._legacy is not None:
            return segment_values(self.header, segment, self._legacy)
        self._require([segment])
        self._handle.seek(self.index.offsets[segment])
        raw = self._handle.read(self.index.lengths[segment])
        self.bytes_read += len(raw)
        check_segment(self.index, segment, raw)
        return segment_values(self.header, segment, raw)

    def latents(self, segments: Iterable[int] | None = None, levels: int | None = None) -> list[np.ndarray]:
        """Latents per level ``(rows, latent_dim)``: of every segment (None: a full decode, checked against
        the stored histograms), or of ``segments`` only (0 elsewhere); levels from ``levels`` on are 0."""
        layout = self.header.layout
        full = segments is None
        wanted = list(range(len(layout.segments))) if full else sorted(set(segments))
        self._require(wanted)
        values = {k: self.segment(k) for k in wanted}
        if not self.header.range_coded:
            latents = unpack_float16_latents(self.header, values)
        elif full:
            latents = decode_latents(self.header, self.file.tables, [values[k] for k in wanted], self.file.context)
        else:
            latents = decode_segments(self.header, self.file.tables, values, self.file.context)
        if levels is not None:
            for level in layout.levels[levels:]:
                latents[level.index][:] = 0
        return latents

    def synthesis(
        self, width: int | None = None, height: int | None = None, box: tuple[int, int, int, int] | None = None,
        levels: int | None = None,
    ):
        """A :class:`shc.format.synthesis.Synthesis` that renders ``box`` of a ``width x height`` output (default:
        native size, all of it) from the first ``levels`` levels (default: all), having read only the segments
        that needs. Without a box or levels, the whole file is decoded and checked."""

        layout = self.header.layout
        if levels is not None and not 1 <= levels <= len(layout.levels):
            msg = f"levels must be 1 .. {len(layout.levels)}, got {levels}"
            raise ValueError(msg)
        if levels == len(layout.levels):
            levels = None
        if box is None and levels is None:
            return Synthesis(self.file, self.latents())
        width = self.header.width if width is None else width
        height = self.header.height if height is None else height
        needed = region_segments(layout, width, height, box, levels, self.header.config.interpolation)
        # of a chunked level only the decoded chunks' rows get features: a region never blends the others
        known: list[list[np.ndarray] | None] = [None if level.chunking is None else [] for level in layout.levels]
        for k in needed:
            for piece in layout.segments[k].pieces:
                if piece.chunk is not None:
                    known[piece.level.index].append(piece.level.piece_rows(piece.chunk))
        rows = [None if parts is None else np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
                for parts in known]
        return Synthesis(self.file, self.latents(needed, levels), rows, levels)


class RegionRenderer:
    """Renders any number of regions of one file (a tile server, a viewer), decoding each segment once: the
    whole levels when it opens, a chunk of a large level the first time a region needs it. ``render`` may
    be called from several threads.

    Memory grows with what has been looked at: the latents and features of the chunks decoded so far (the
    rest of a large table is allocated but never touched).
    """

    def __init__(self, reader: ShcReader) -> None:
        import threading


        self.reader = reader
        self.header = reader.header
        layout = self.header.layout
        whole = [segment.index for segment in layout.segments if all(p.chunk is None for p in segment.pieces)]
        self._latents = reader.latents(whole)
        known = [None if level.chunking is None else np.zeros(0, dtype=np.int64) for level in layout.levels]
        self._synthesis = Synthesis(reader.file, self._latents, known)
        self._decoded = set(whole)
        self._lock = threading.Lock()

    @property
    def segments_decoded(self) -> int:
        return len(self._decoded)

    def _decode(self, segments: list[int]) -> None:

        with self._lock:
            new = [k for k in segments if k not in self._decoded]
            if not new:
                return
            latents = self.reader.latents(new)
            dec_w, dec_b = self._synthesis.latent_decoder
            for k in new:
                for piece in self.header.layout.segments[k].pieces:
                    level, rows = piece.level.index, piece.level.piece_rows(piece.chunk)
                    self._latents[level][rows] = latents[level][rows]
                    self._synthesis.feature_tables_t[level][:, rows] = feature_table(dec_w, dec_b, latents[level][rows])
                self._decoded.add(k)

    def render(
        self, width: int, height: int, box: tuple[int, int, int, int], levels: int | None = None
    ) -> np.ndarray:
        """uint8 ``(bottom - top, right - left, channels)``: ``box = (left, top, right, bottom)`` of the image
        rendered at ``width x height`` (the pixels of a full decode), or from its first ``levels`` levels
        (what ``ShcReader.synthesis(levels=...)`` renders), decoding only the chunks of those."""
        layout = self.header.layout
        if levels is not None and levels >= len(layout.levels):
            levels = None
        self._decode(region_segments(layout, width, height, box, levels, self.header.config.interpolation))
        synthesis = self._synthesis if levels is None else self._synthesis.prefix(levels)
        with np.errstate(over="ignore", invalid="ignore"):  # overflowing weights: see decoder.to_uint8
            return synthesis.render(width, height, box)
