"""Normative geometry of the multi-resolution latent grid (numpy only).

Both the PyTorch trainer and the numpy decoder get their corner indices and bilinear weights from here,
so the two sides index the latents identically by construction.

Each level l has ``nx x ny`` cells, i.e. ``(nx + 1) x (ny + 1)`` vertices spanning the whole image
(whatever its aspect ratio). A pixel (i, j) of a ``W x H`` output sits at the continuous position
``x = (i + 0.5) / W * nx``, ``y = (j + 0.5) / H * ny`` (pixel-centred, computed exactly by
:func:`axis_samples`), so any output resolution samples the same continuous field. A level whose vertices fit in ``2**log2_hashmap_size`` rows is stored densely
(row ``y * (nx + 1) + x``); larger levels use the Instant-NGP hash ``(x * 1) XOR (y * 2654435761)`` in
uint32 arithmetic, modulo the table size.
"""

from __future__ import annotations

import math

import numpy as np

from shc.format.constants import HASH_PRIMES

__all__ = [
    "axis_samples",
    "choose_level_cells",
    "corner_indices_weights",
    "level_group",
    "level_num_rows",
    "vertex_rows",
]


def level_num_rows(nx: int, ny: int, log2_hashmap_size: int) -> tuple[int, bool]:
    """Rows of latents stored for a level, and whether it is indexed densely."""
    vertices = (nx + 1) * (ny + 1)
    table = 1 << log2_hashmap_size
    if vertices <= table:
        return vertices, True
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


def axis_samples(size: int, cells: int, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where pixels sit on one axis of a level (SPEC §7 step 3): the one definition that trainer, decoder
    and tests all use.

    Pixel ``i`` of an axis of ``size`` pixels lies at ``(i + 1/2) / size * cells`` in grid units, the exact
    rational ``(2i + 1) * cells / (2 * size)``. Its cell ``c`` and remainder ``r`` are computed in integers
    (``c = floor``, clamped to ``cells - 1``, ``r = (2i + 1) * cells - 2 * size * c``), and the two
    bilinear weights are ``float32(float64(2 * size - r) / float64(2 * size))`` and
    ``float32(float64(r) / float64(2 * size))``: one correctly rounded division of exact integers each,
    then one rounding to float32, so every machine and every batching gets the same bits.

    Returns the cell index (int64) and the float32 weights ``(w0, w1)`` of vertices ``c`` and ``c + 1``.
    """
    index = np.asarray(pixels, dtype=np.int64)
    numerator = (2 * index + 1) * cells
    denominator = 2 * size
    cell = np.minimum(numerator // denominator, cells - 1)
    remainder = numerator - cell * denominator
    w1 = (remainder.astype(np.float64) / denominator).astype(np.float32)
    w0 = ((denominator - remainder).astype(np.float64) / denominator).astype(np.float32)
    return cell, w0, w1


def vertex_rows(vx: np.ndarray, vy: np.ndarray, nx: int, ny: int, log2_hashmap_size: int) -> np.ndarray:
    """Table rows (int64) of vertices ``(vx, vy)`` (broadcastable int arrays): dense index or spatial hash."""
    _, dense = level_num_rows(nx, ny, log2_hashmap_size)
    if dense:
        return vy * (nx + 1) + vx
    hx = np.asarray(vx).astype(np.uint32) * np.uint32(HASH_PRIMES[0])
    hy = np.asarray(vy).astype(np.uint32) * np.uint32(HASH_PRIMES[1])
    return ((hx ^ hy) & np.uint32((1 << log2_hashmap_size) - 1)).astype(np.int64)


def corner_indices_weights(
    columns: np.ndarray, rows: np.ndarray, width: int, height: int, nx: int, ny: int, log2_hashmap_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and bilinear weights of the 4 corners of pixels ``(columns[k], rows[k])`` of a ``width x height``
    output: a per-point reference for tests (the decoder and trainer blend separably, SPEC §7 step 4).

    Returns:
        indices: int64 ``(n, 4)`` rows into this level's table, corners ordered (x0,y0), (x1,y0), (x0,y1), (x1,y1).
        weights: float32 ``(n, 4)``, products of the float32 axis weights.
    """
    ix, wx0, wx1 = axis_samples(width, nx, columns)
    iy, wy0, wy1 = axis_samples(height, ny, rows)
    cx = np.stack([ix, ix + 1, ix, ix + 1], axis=-1)
    cy = np.stack([iy, iy, iy + 1, iy + 1], axis=-1)
    indices = vertex_rows(cx, cy, nx, ny, log2_hashmap_size)
    gx = np.stack([wx0, wx1, wx0, wx1], axis=-1)
    gy = np.stack([wy0, wy0, wy1, wy1], axis=-1)
    return indices, gx * gy
