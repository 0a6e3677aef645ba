"""Normative geometry of the multi-resolution latent grid (numpy only).

Both the PyTorch trainer and the numpy decoder get their corner indices and bilinear weights from here,
so the two sides index the latents identically by construction.

Each level l has ``nx x ny`` cells, i.e. ``(nx + 1) x (ny + 1)`` vertices spanning the whole image
(whatever its aspect ratio). A pixel (i, j) of a ``W x H`` output sits at the continuous position
``x = (i + 0.5) / W * nx``, ``y = (j + 0.5) / H * ny`` (pixel-centred, computed exactly by
:func:`axis_samples`), so any output resolution samples the same continuous field. A level whose vertices fit in ``2**log2_hashmap_size`` rows is stored densely
(row ``y * (nx + 1) + x``); larger levels use the Instant-NGP hash ``(x * 1) XOR (y * 2654435761)`` in
uint32 arithmetic, modulo the table size. From version 7 a level with more than ``WHOLE_LEVEL_MAX_ROWS`` rows
is split into square spatial chunks of vertices (:class:`Chunking`): a hashed one gets a table of its own
per chunk, so that a region needs only the chunks it covers.
"""

from __future__ import annotations

import math

import numpy as np

from dataclasses import dataclass

from shc.format.constants import (
    CHUNK_TARGET_ROWS,
    HASH_PRIMES,
    INTERPOLATION_BILINEAR,
    INTERPOLATION_BSPLINE,
    WHOLE_LEVEL_MAX_ROWS,
)

__all__ = [
    "Chunking",
    "axis_samples",
    "axis_taps",
    "choose_level_cells",
    "corner_indices_weights",
    "level_chunking",
    "level_group",
    "level_num_rows",
    "vertex_rows",
]


@dataclass(frozen=True)
class Chunking:
    """How a large level is split (SPEC §4a): square chunks of ``side x side`` vertices, ``columns x rows`` of
    them, chunk ``k = cy * columns + cx``; a hashed level gives each chunk ``chunk_rows`` rows of its own
    (rows ``k * chunk_rows ..``), a dense one keeps its row-major rows."""

    side: int
    columns: int
    rows: int
    dense: bool
    chunk_rows: int
    """Rows of each chunk's own table (hashed levels); 0 for a dense level."""

    @property
    def count(self) -> int:
        return self.columns * self.rows


def level_chunking(nx: int, ny: int, log2_hashmap_size: int) -> Chunking | None:
    """The chunks of a level in a version-7 file, or None for a level coded whole (at most
    ``WHOLE_LEVEL_MAX_ROWS`` rows). The side is the smallest power of two whose chunks hold about
    ``CHUNK_TARGET_ROWS`` rows: ``side^2 * rows >= CHUNK_TARGET_ROWS * vertices`` (256 for a dense level)."""
    rows, dense = level_num_rows(nx, ny, log2_hashmap_size)
    if rows <= WHOLE_LEVEL_MAX_ROWS:
        return None
    vertices = (nx + 1) * (ny + 1)
    side = 1
    while side * side * rows < CHUNK_TARGET_ROWS * vertices:
        side *= 2
    columns, chunk_rows_of_grid = -(-(nx + 1) // side), -(-(ny + 1) // side)
    per_chunk = 0 if dense else (1 << log2_hashmap_size) // (columns * chunk_rows_of_grid)
    return Chunking(side, columns, chunk_rows_of_grid, dense, per_chunk)


def level_num_rows(nx: int, ny: int, log2_hashmap_size: int, chunking: Chunking | None = None) -> tuple[int, bool]:
    """Rows of latents stored for a level, and whether it is indexed densely. A chunked hashed level stores
    ``count * chunk_rows`` rows (at most the table size, SPEC §4a)."""
    vertices = (nx + 1) * (ny + 1)
    table = 1 << log2_hashmap_size
    if vertices <= table:
        return vertices, True
    if chunking is not None:
        return chunking.count * chunking.chunk_rows, False
    return table, False


def level_group(level: int, num_levels: int, num_groups: int) -> int:
    """Probability-model group of a level: groups are contiguous runs of levels, as equal as possible."""
    return level * num_groups // num_levels


def choose_level_cells(
    width: int, height: int, num_levels: int, min_res: int, max_res: int
) -> list[tuple[int, int]]:
    """Encoder-side choice of each level's cell counts (stored in the file, so the decoder never recomputes it).

    The longer image side gets ``res_l`` cells with ``res_l`` geometric between ``min_res`` and ``max_res``
    (Instant-NGP's growth factor); the shorter side gets proportionally many, at least one.
    """
    long_side, short_side = max(width, height), min(width, height)
    growth = math.exp((math.log(max_res) - math.log(min_res)) / max(num_levels - 1, 1))
    cells = []
    for level in range(num_levels):
        res = max(1, int(math.floor(min_res * growth**level + 1e-9)))
        short = max(1, int(round(res * short_side / long_side)))
        cells.append((res, short) if width >= height else (short, res))
    return cells


def axis_samples(size: int, cells: int, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Where pixels sit on one axis of a level (SPEC §7 step 3), in exact integers: the one definition
    that trainer, decoder and tests all use.

    Pixel ``i`` of an axis of ``size`` pixels lies at ``(i + 1/2) / size * cells`` in grid units, the exact
    rational ``(2i + 1) * cells / (2 * size)``. Returns its cell ``c`` (floor, clamped to ``cells - 1``;
    int64), the remainder ``r = (2i + 1) * cells - 2 * size * c`` (int64) and the denominator
    ``2 * size``: the fraction within the cell is ``r / (2 * size)``.
    """
    index = np.asarray(pixels, dtype=np.int64)
    numerator = (2 * index + 1) * cells
    denominator = 2 * size
    cell = np.minimum(numerator // denominator, cells - 1)
    return cell, numerator - cell * denominator, denominator


def axis_taps(size: int, cells: int, pixels: np.ndarray, kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """The vertices and float32 weights that blend pixels along one axis of a level (SPEC §7 step 3).

    ``kernel`` (the header's ``interpolation``) is :data:`INTERPOLATION_BILINEAR`: vertices ``c, c + 1``
    with weights ``float32((2w - r) / 2w)``, ``float32(r / 2w)`` (one float64 division of exact integers
    each); or :data:`INTERPOLATION_BSPLINE`: vertices ``c - 1 .. c + 2`` clamped to ``0 .. cells``,
    weighted by the uniform cubic B-spline basis of ``f = float64(r) / float64(2w)``:
    ``g^3/6, (3f^3 - 6f^2 + 4)/6, (-3f^3 + 3f^2 + 3f + 1)/6, f^3/6`` with ``g = 1 - f``,
    ``f2 = f * f``, ``f3 = f2 * f``, each operation IEEE float64 in the written order (left to right, no
    fused multiply-add), then rounded to float32. The B-spline is smooth (C2) where bilinear
    interpolation creases at every vertex, which a coarse grid of a photo pays for.

    Returns vertex indices int64 ``(taps, n)`` and weights float32 ``(taps, n)``.
    """
    cell, remainder, denominator = axis_samples(size, cells, pixels)
    if kernel == INTERPOLATION_BILINEAR:
        weights = np.stack([(denominator - remainder) / denominator, remainder / denominator]).astype(np.float32)
        return np.stack([cell, cell + 1]), weights
    if kernel != INTERPOLATION_BSPLINE:
        msg = f"unknown interpolation kernel {kernel}"
        raise ValueError(msg)
    f = remainder.astype(np.float64) / denominator
    g = 1.0 - f
    f2 = f * f
    f3 = f2 * f
    weights = np.stack([
        g * g * g / 6.0,
        (3.0 * f3 - 6.0 * f2 + 4.0) / 6.0,
        (-3.0 * f3 + 3.0 * f2 + 3.0 * f + 1.0) / 6.0,
        f3 / 6.0,
    ]).astype(np.float32)
    vertices = np.clip(cell[None, :] + np.arange(-1, 3, dtype=np.int64)[:, None], 0, cells)
    return vertices, weights


def vertex_rows(
    vx: np.ndarray, vy: np.ndarray, nx: int, ny: int, log2_hashmap_size: int, chunking: Chunking | None = None
) -> np.ndarray:
    """Table rows (int64) of vertices ``(vx, vy)`` (broadcastable int arrays): dense index or spatial hash;
    in a chunked hashed level, the hash modulo the chunk's rows, after the rows of the chunks before it."""
    _, dense = level_num_rows(nx, ny, log2_hashmap_size)
    if dense:
        return vy * (nx + 1) + vx
    hx = np.asarray(vx).astype(np.uint32) * np.uint32(HASH_PRIMES[0])
    hy = np.asarray(vy).astype(np.uint32) * np.uint32(HASH_PRIMES[1])
    if chunking is None:
        return ((hx ^ hy) & np.uint32((1 << log2_hashmap_size) - 1)).astype(np.int64)
    chunk = (np.asarray(vy) // chunking.side) * chunking.columns + np.asarray(vx) // chunking.side
    return chunk.astype(np.int64) * chunking.chunk_rows + ((hx ^ hy) % np.uint32(chunking.chunk_rows)).astype(np.int64)


def corner_indices_weights(
    columns: np.ndarray, rows: np.ndarray, width: int, height: int, nx: int, ny: int, log2_hashmap_size: int,
    kernel: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and weights of the vertices that pixels ``(columns[k], rows[k])`` of a ``width x height`` output
    blend on one level: a per-point reference for tests (decoder and trainer blend separably, SPEC §7).

    Returns:
        indices: int64 ``(n, taps**2)`` rows into this level's table, vertex ``(tx, ty)`` at ``taps * ty + tx``
        (bilinear: (x0,y0), (x1,y0), (x0,y1), (x1,y1)).
        weights: float32 ``(n, taps**2)``, products of the float32 axis weights.
    """
    vx, wx = axis_taps(width, nx, columns, kernel)
    vy, wy = axis_taps(height, ny, rows, kernel)
    taps = vx.shape[0]
    indices = vertex_rows(vx[None, :, :], vy[:, None, :], nx, ny, log2_hashmap_size)  # (ty, tx, n)
    weights = wx[None, :, :] * wy[:, None, :]
    return indices.reshape(taps * taps, -1).T, weights.reshape(taps * taps, -1).T
