"""From the trained model to what the file stores: integer latents and integer frequency tables.

This is the one place where learned floats become integers; after it, encoder and decoder share only ints.
"""

from __future__ import annotations

import numpy as np
import torch

from shc.format import constants as C
from shc.format.container import Table
from shc.format.entropy import pmf_to_table

from shc.codec.model import GridINR
from shc.codec.prior import FactorizedPrior

__all__ = ["build_tables", "float16_latents", "integer_latents", "split_levels", "table_bits"]


def integer_latents(model: GridINR) -> np.ndarray:
    """Rounded latents ``(rows, D)`` as int64, clamped into the format's symbol range."""
    q = torch.round(model.latents.detach()).clamp(C.MIN_SYMBOL, C.MAX_SYMBOL)
    return q.cpu().numpy().astype(np.int64)


def float16_latents(model: GridINR) -> np.ndarray:
    """Latents ``(rows, D)`` rounded to float16, as a file without entropy coding stores them."""
    return model.latents.detach().cpu().numpy().astype(np.float16)


def split_levels(model: GridINR, q: np.ndarray) -> list[np.ndarray]:
    """Per-level ``(rows_l, D)`` views of the latent rows ``q``."""
    offsets = model.level_offsets
    return [q[offsets[k] : offsets[k + 1]] for k in range(model.header.config.num_levels)]


def _symbol_range(values: np.ndarray) -> tuple[int, int]:
    """Table support: the values' own range, narrowed around the median if wider than the format allows."""
    low, high = int(values.min()), int(values.max())
    if high - low + 1 > C.MAX_TABLE_SYMBOLS:
        centre = int(np.median(values))
        low = max(low, centre - C.MAX_TABLE_SYMBOLS // 2)
        high = low + C.MAX_TABLE_SYMBOLS - 1
    return low, high


def build_tables(model: GridINR, prior: FactorizedPrior, q: np.ndarray) -> tuple[tuple[Table, ...], np.ndarray]:
    """Integer tables of every (group, dim) channel from the learned CDF, and ``q`` clamped into them.

    Each table covers exactly the range of the symbols it codes (clamping only if that range exceeds
    ``MAX_TABLE_SYMBOLS``), so no escape mechanism is needed.
    """
    cfg = model.header.config
    q = q.copy()
    tables = []
    for group, rows in enumerate(model.group_slices()):
        for dim in range(cfg.latent_dim):
            values = q[rows, dim]
            low, high = _symbol_range(values)
            q[rows, dim] = np.clip(values, low, high)
            pmf = prior.pmf(group * cfg.latent_dim + dim, low, high)
            tables.append(pmf_to_table(np.maximum(pmf, 0.0) + 1e-12, low))
    return tuple(tables), q


def table_bits(model: GridINR, tables: tuple[Table, ...], q: np.ndarray) -> float:
    """Ideal code length in bits of ``q`` under the integer tables (what the range coder achieves, ± a word)."""
    cfg = model.header.config
    total = 0.0
    for group, rows in enumerate(model.group_slices()):
        for dim in range(cfg.latent_dim):
            table = tables[group * cfg.latent_dim + dim]
            counts = np.bincount(q[rows, dim] - table.min_symbol, minlength=len(table.counts))
            info = C.TABLE_PRECISION - np.log2(table.counts.astype(np.float64))
            total += float(counts @ info)
    return total
