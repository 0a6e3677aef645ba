"""From the trained model to the file: integer latents, integer frequency tables, and the bytes.

This is the one place where learned floats become integers; after it, encoder and decoder share only ints.
:func:`assemble_file` is the one function that turns a model into ``.shc`` bytes: the encoder writes its
output with it and training scores every candidate state with it, so the bits counted are the file's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from shc.format import constants as C
from shc.format.container import tables_payload, write_file
from shc.format.context import MAX_LEVEL_SPAN, ContextParams
from shc.format.entropy import encode_latents, histogram_tables, pack_float16_latents
from shc.format.header import Header
from shc.format.table import Table

from shc.codec.context import ContextModel
from shc.codec.model import GridINR

__all__ = [
    "AssembledFile", "LatentSection", "adopt_context", "assemble_file", "build_tables", "code_latents", "float16_latents",
    "integer_latents", "table_bits", "with_context_width",
]


@dataclass(frozen=True)
class AssembledFile:
    """The bytes of a ``.shc`` file and the latents ``(rows, D)`` exactly as it stores them."""

    data: bytes
    latents: np.ndarray  # int64 (range-coded, clamped into the tables) or float16 (no entropy coding)


@dataclass(frozen=True)
class LatentSection:
    """What a file stores of the latents: the tables, the latents as stored, and their coded words."""

    tables: tuple[Table, ...]
    latents: np.ndarray
    segments: tuple[np.ndarray, ...]
    """Per segment of the layout (SPEC §6): range-coder words, or float16 latents."""
    context: ContextParams | None = None

    @property
    def segment_bytes(self) -> int:
        return sum(int(values.nbytes) for values in self.segments)


def with_context_width(header: Header, width: int) -> Header:
    """``header`` with the context network's width set (0: none); the grid, and so the rows, stay the same."""
    return replace(header, config=replace(header.config, context_width=width))


def adopt_context(model: GridINR, width: int, steps: int) -> bool:
    """Fit a context model of ``width`` hidden units to the model's rounded latents and keep it (the model's
    header then codes the dense levels with it, SPEC §5a) if the latents and tables take fewer bytes that
    way; returns whether it was kept."""
    header = model.header
    context_header = with_context_width(header, width)
    if not header.range_coded or width == 0 or not context_header.layout.context_levels:
        return False
    plain = code_latents(model)
    device = model.latents.device
    candidate = ContextModel(context_header.layout, width, device)
    candidate.fit(torch.round(model.latents.detach()), steps)
    model.header, model.layout, model.context = context_header, context_header.layout, candidate
    coded = code_latents(model)
    if _latent_bytes(coded) < _latent_bytes(plain):
        return True
    model.header, model.layout, model.context = header, header.layout, None
    return False


def _latent_bytes(section: LatentSection) -> int:
    """What the latents cost a file, up to the bytes that do not depend on their coding: words + tables."""
    return section.segment_bytes + len(tables_payload(section.tables, section.context))


def code_latents(model: GridINR) -> LatentSection:
    """Round the model's latents, make their histogram tables and range-code them (or pack float16)."""
    header = model.header
    if header.range_coded:
        tables, q = build_tables(model, integer_latents(model))
        levels = model.layout.split(q)
        context = None if model.context is None else model.context.integer_params(levels, model.layout)
        return LatentSection(tables, q, encode_latents(header, tables, levels, context), context)
    q = float16_latents(model)
    return LatentSection((), q, pack_float16_latents(header, model.layout.split(q)))


def assemble_file(
    model: GridINR,
    weight_steps: np.ndarray | None = None,
    *,
    latents: LatentSection | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
) -> AssembledFile:
    """The file of a model's current state: rounded latents, their histogram tables, range coding, and the
    weights quantized with ``weight_steps`` (one per tensor; default: the training-time int8 steps).

    ``latents``: the state's :func:`code_latents`, when already made (the weight-step search changes only
    the weights). ``icc_profile`` and ``exif`` (the META section) are only given for the final file: during
    training they would add the same bytes to every candidate's size and change no comparison.
    """
    section = code_latents(model) if latents is None else latents
    weights = model.quantized_weights(weight_steps)
    data = write_file(model.header, weights, section.tables, section.segments, icc_profile=icc_profile, exif=exif,
                      context=section.context)
    return AssembledFile(data, section.latents)


def integer_latents(model: GridINR) -> np.ndarray:
    """Rounded latents ``(rows, D)`` as int64, clamped into the format's symbol range."""
    q = torch.round(model.latents.detach()).clamp(C.MIN_SYMBOL, C.MAX_SYMBOL)
    return q.cpu().numpy().astype(np.int64)


def float16_latents(model: GridINR) -> np.ndarray:
    """Latents ``(rows, D)`` rounded to float16, as a file without entropy coding stores them."""
    return model.latents.detach().cpu().numpy().astype(np.float16)


def _symbol_range(values: np.ndarray, limit: int = C.MAX_TABLE_SYMBOLS) -> tuple[int, int]:
    """Table support: the values' own range, narrowed around the median if wider than ``limit`` values."""
    low, high = int(values.min()), int(values.max())
    if high - low + 1 > limit:
        centre = int(np.median(values))
        low = max(low, centre - limit // 2)
        high = low + limit - 1
    return low, high


def build_tables(model: GridINR, q: np.ndarray) -> tuple[tuple[Table, ...], np.ndarray]:
    """The histogram tables of rounded latents ``q`` ``(rows, D)``, and ``q`` clamped into them.

    Each table covers exactly the range of the symbols it codes (clamping only if that range exceeds
    ``MAX_TABLE_SYMBOLS``), so no escape mechanism is needed.
    """
    layout = model.layout
    q = q.copy()
    for rows in layout.group_slices():
        for dim in range(layout.latent_dim):
            low, high = _symbol_range(q[rows, dim])
            q[rows, dim] = np.clip(q[rows, dim], low, high)
    for level in layout.context_levels:  # a context level's latents span at most MAX_LEVEL_SPAN values
        low, high = _symbol_range(q[level.rows_slice, 0], MAX_LEVEL_SPAN)
        q[level.rows_slice, 0] = np.clip(q[level.rows_slice, 0], low, high)
    return histogram_tables(model.header, layout.split(q)), q


def table_bits(model: GridINR, tables: tuple[Table, ...], q: np.ndarray) -> float:
    """Ideal code length in bits of ``q`` under the integer tables (what the range coder achieves, ± a word)."""
    layout = model.layout
    total = 0.0
    for group, rows in enumerate(layout.group_slices()):
        for dim in range(layout.latent_dim):
            table = tables[layout.table_index(group, dim)]
            counts = np.bincount(q[rows, dim] - table.min_symbol, minlength=len(table.counts))
            info = C.TABLE_PRECISION - np.log2(table.counts.astype(np.float64))
            total += float(counts @ info)
    return total
