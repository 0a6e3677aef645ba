"""Where every latent lives: the one description of the grid's storage that all code reads (numpy only).

A :class:`LatentLayout` is built from a header alone. It says, for each level, its cells, how many table
rows it stores, whether those rows are dense or hashed, where they start in the concatenation of all
levels, and which probability group codes them; and it fixes the coding order of SPEC §6. The trainer's
model, the integer tables, the range coder and the decoder all take their geometry from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from shc.format.grid import level_group, level_num_rows, vertex_rows

__all__ = ["CodingRun", "LatentLayout", "LevelLayout"]


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

    @property
    def stop(self) -> int:
        return self.offset + self.rows

    @property
    def rows_slice(self) -> slice:
        return slice(self.offset, self.stop)

    def vertex_rows(self, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
        """Table rows (int64, within this level) of vertices ``(vx, vy)``: dense index or spatial hash."""
        return vertex_rows(vx, vy, self.nx, self.ny, self.log2_hashmap_size)

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
class LatentLayout:
    """All levels of a header, their storage and their coding order."""

    levels: tuple[LevelLayout, ...]
    latent_dim: int
    num_groups: int
    table_keys: tuple[tuple[int, int], ...] = ()
    """The ``(group, dim)`` of each stored table, in order: every pair with at least one factorized level."""

    @classmethod
    def from_header(cls, header) -> LatentLayout:
        """The layout a header implies (SPEC §4). ``header`` is a :class:`shc.format.container.Header`."""
        cfg = header.config
        with_context = getattr(cfg, "context_width", 0) > 0
        levels, offset = [], 0
        for index, (nx, ny) in enumerate(header.level_cells):
            rows, dense = level_num_rows(nx, ny, cfg.log2_hashmap_size)
            group = level_group(index, cfg.num_levels, cfg.num_groups)
            context = with_context and dense and index >= 1
            levels.append(LevelLayout(index, nx, ny, rows, dense, offset, group, cfg.log2_hashmap_size, context))
            offset += rows
        keys = sorted({(level.group, dim) for level in levels if not level.context for dim in range(cfg.latent_dim)})
        return cls(tuple(levels), cfg.latent_dim, cfg.num_groups, tuple(keys))

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
