"""Where every latent lives: the one description of the grid's storage that all code reads (numpy only).

A :class:`LatentLayout` is built from a header alone. It says, for each level, its cells, how many table
rows it stores, whether those rows are dense or hashed (and, from version 7, in which spatial chunks), where
they start in the concatenation of all levels, and which probability group codes them; and it fixes the
coding order of SPEC §6: the segments, each an independent range-coder stream, and the pieces (a whole
level or one chunk of a level) in each. The trainer's model, the integer tables, the range coder and the
decoder all take their geometry from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from shc.format import constants as C
from shc.format.grid import Chunking, level_chunking, level_group, level_num_rows, vertex_rows

__all__ = ["CodingRun", "LatentLayout", "LevelLayout", "Piece", "Segment"]


@dataclass(frozen=True)
class LevelLayout:
    """One level: ``nx x ny`` cells, ``rows`` stored table rows starting at ``offset``, coded in ``group``."""

    index: int
    nx: int
    ny: int
    rows: int
    dense: bool
    offset: int
    group: int
    log2_hashmap_size: int
    context: bool = False
    """Coded under the context model (SPEC §5a: a dense level l >= 1 of a file with a context network)
    rather than with its group's histogram table."""
    chunking: Chunking | None = None
    """Its spatial chunks (SPEC §4a, version 7), or None: coded whole."""

    @property
    def stop(self) -> int:
        return self.offset + self.rows

    @property
    def rows_slice(self) -> slice:
        return slice(self.offset, self.stop)

    def vertex_rows(self, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
        """Table rows (int64, within this level) of vertices ``(vx, vy)``: dense index or spatial hash."""
        return vertex_rows(vx, vy, self.nx, self.ny, self.log2_hashmap_size, self.chunking)

    @property
    def num_chunks(self) -> int:
        return 1 if self.chunking is None else self.chunking.count

    def piece_rows(self, chunk: int | None) -> np.ndarray:
        """The rows (within this level, int64) that piece ``chunk`` codes, in coding order: every row (None),
        a hashed chunk's own rows, or a dense chunk's vertices row-major (SPEC §4a)."""
        if chunk is None or self.chunking is None:
            return np.arange(self.rows, dtype=np.int64)
        grid = self.chunking
        if not grid.dense:
            return np.arange(chunk * grid.chunk_rows, (chunk + 1) * grid.chunk_rows, dtype=np.int64)
        cy, cx = divmod(chunk, grid.columns)
        xs = np.arange(cx * grid.side, min((cx + 1) * grid.side, self.nx + 1), dtype=np.int64)
        ys = np.arange(cy * grid.side, min((cy + 1) * grid.side, self.ny + 1), dtype=np.int64)
        return (ys[:, None] * (self.nx + 1) + xs[None, :]).reshape(-1)

    def chunks_covering(self, x0: int, x1: int, y0: int, y1: int) -> list[int]:
        """The chunks holding vertices ``x0 .. x1`` x ``y0 .. y1`` (inclusive): all of a level coded whole."""
        if self.chunking is None:
            return [0]
        side, columns = self.chunking.side, self.chunking.columns
        return [cy * columns + cx for cy in range(y0 // side, y1 // side + 1) for cx in range(x0 // side, x1 // side + 1)]

    def vertex_grid_rows(self) -> np.ndarray:
        """The row of every vertex, shaped ``(ny + 1, nx + 1)``: the level's virtual dense grid."""
        return self.vertex_rows(np.arange(self.nx + 1)[None, :], np.arange(self.ny + 1)[:, None])


@dataclass(frozen=True)
class CodingRun:
    """Consecutive symbols of the LATN section: latent dimension ``dim`` of every row of ``level``, coded
    with table ``table``."""

    level: LevelLayout
    dim: int
    table: int


@dataclass(frozen=True)
class Piece:
    """What a segment codes: a whole level (``chunk`` None) or one chunk of a chunked level."""

    level: LevelLayout
    chunk: int | None = None


@dataclass(frozen=True)
class Segment:
    """An independently decodable run of LATN (SPEC §6): its own range-coder stream, length and CRC."""

    index: int
    pieces: tuple[Piece, ...]

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(sorted({piece.level.index for piece in self.pieces}))


@dataclass(frozen=True)
class LatentLayout:
    """All levels of a header, their storage and their coding order."""

    levels: tuple[LevelLayout, ...]
    latent_dim: int
    num_groups: int
    table_keys: tuple[tuple[int, int], ...] = ()
    """The ``(group, dim)`` of each stored table, in order: every pair with at least one factorized level."""
    segments: tuple[Segment, ...] = ()
    """LATN's segments in file order (SPEC §6): one holding every level before version 7."""

    @classmethod
    def from_header(cls, header) -> LatentLayout:
        """The layout a header implies (SPEC §4, §4a, §6). ``header`` is a
        :class:`shc.format.header.Header` (its ``version`` decides whether levels are chunked)."""
        cfg = header.config
        with_context = getattr(cfg, "context_width", 0) > 0
        segmented = getattr(header, "version", C.FORMAT_VERSION) >= C.SEGMENTED_VERSION
        chunkings = [level_chunking(nx, ny, cfg.log2_hashmap_size) if segmented else None
                     for nx, ny in header.level_cells]
        levels, offset = [], 0
        for index, (nx, ny) in enumerate(header.level_cells):
            rows, dense = level_num_rows(nx, ny, cfg.log2_hashmap_size, chunkings[index])
            group = level_group(index, cfg.num_levels, cfg.num_groups)
            # a context level and the two coarser levels its inputs come from are coded whole (SPEC §5a)
            whole = all(chunking is None for chunking in chunkings[max(0, index - 2) : index + 1])
            context = with_context and dense and index >= 1 and whole
            levels.append(LevelLayout(index, nx, ny, rows, dense, offset, group, cfg.log2_hashmap_size, context,
                                      chunkings[index]))
            offset += rows
        keys = sorted({(level.group, dim) for level in levels if not level.context for dim in range(cfg.latent_dim)})
        segments = _segments(levels, cfg.latent_dim) if segmented else (Segment(0, tuple(Piece(l) for l in levels)),)
        return cls(tuple(levels), cfg.latent_dim, cfg.num_groups, tuple(keys), segments)

    def segment_latents(self, segment: Segment) -> int:
        """Latent values a segment holds (a float16 segment is exactly twice as many bytes)."""
        return self.latent_dim * sum(piece.level.rows if piece.chunk is None else piece.level.piece_rows(piece.chunk).size
                                     for piece in segment.pieces)

    def segments_for_levels(self, num_levels: int) -> list[int]:
        """The segments a prefix of the first ``num_levels`` levels needs (a level-of-detail preview)."""
        return [segment.index for segment in self.segments if segment.levels[0] < num_levels]

    @property
    def total_rows(self) -> int:
        return self.levels[-1].stop if self.levels else 0

    @property
    def total_latents(self) -> int:
        return self.total_rows * self.latent_dim

    @property
    def num_tables(self) -> int:
        """Tables the file stores: one per (group, dimension) with factorized levels (SPEC §5)."""
        return len(self.table_keys)

    def table_index(self, group: int, dim: int) -> int:
        """Stored table of latent dimension ``dim`` in ``group`` (SPEC §5): ``group * D + dim`` when every
        group has factorized levels (always before version 6)."""
        return self.table_keys.index((group, dim))

    @property
    def context_levels(self) -> tuple[LevelLayout, ...]:
        """The levels coded under the context model, in coding order (SPEC §5a)."""
        return tuple(level for level in self.levels if level.context)

    def group_slices(self) -> list[slice]:
        """Rows of each probability group in the concatenated table (a group is a contiguous run of levels)."""
        slices = []
        for group in range(self.num_groups):
            members = [level for level in self.levels if level.group == group]
            slices.append(slice(members[0].offset, members[-1].stop))
        return slices

    def row_channels(self) -> np.ndarray:
        """Prior channel (``group * D + dim``) of every latent value, shaped ``(total_rows, latent_dim)``."""
        groups = np.concatenate([np.full(level.rows, level.group, dtype=np.int64) for level in self.levels])
        return groups[:, None] * self.latent_dim + np.arange(self.latent_dim, dtype=np.int64)[None, :]

    def coding_runs(self) -> Iterator[CodingRun]:
        """The factorized symbol runs of LATN in coding order (SPEC §6): level, then latent dimension, then
        row (a context level's symbols come between its neighbours' runs: §5a)."""
        for level in self.levels:
            if level.context:
                continue
            for dim in range(self.latent_dim):
                yield CodingRun(level, dim, self.table_index(level.group, dim))

    def split(self, rows: np.ndarray) -> list[np.ndarray]:
        """Per-level views ``(rows_l, ...)`` of an array over all ``total_rows`` rows."""
        return [rows[level.rows_slice] for level in self.levels]


def _segments(levels: list[LevelLayout], latent_dim: int) -> tuple[Segment, ...]:
    """SPEC §6: consecutive whole levels share a segment while it holds at most ``SEGMENT_MAX_LATENTS``
    latents (a level larger than that alone); each chunk of a chunked level is a segment of its own."""
    groups: list[list[Piece]] = []
    current: list[Piece] = []
    held = 0
    for level in levels:
        if level.chunking is not None:
            if current:
                groups.append(current)
            current, held = [], 0
            groups.extend([Piece(level, chunk)] for chunk in range(level.chunking.count))
            continue
        size = level.rows * latent_dim
        if current and held + size > C.SEGMENT_MAX_LATENTS:
            groups.append(current)
            current, held = [], 0
        current.append(Piece(level))
        held += size
    if current:
        groups.append(current)
    return tuple(Segment(index, tuple(pieces)) for index, pieces in enumerate(groups))
