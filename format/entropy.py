"""Integer probability tables and range coding of the latents with constriction.

The encoder turns each learned float PMF into integer counts once (:func:`pmf_to_table`); both sides then
build the coder's models from those integers only (:func:`_coder_model`), so a file whose tables came from
GPU floats decodes bit-exactly on a CPU. Latents are coded level by level, then latent dimension, then
row, each run with the table of its (group, dimension). A one-symbol table costs no bits and codes nothing.
"""

from __future__ import annotations

import constriction
import numpy as np

from shc.format import constants as C
from shc.format.container import Header, ShcFile, Table
from shc.format.errors import ShcFormatError

__all__ = [
    "decode_latents",
    "encode_latents",
    "file_latents",
    "pack_float16_latents",
    "pmf_to_table",
    "unpack_float16_latents",
]


def pmf_to_table(pmf: np.ndarray, min_symbol: int, precision: int = C.TABLE_PRECISION) -> Table:
    """Quantize a PMF over ``min_symbol ..`` to integer counts >= 1 summing to ``2**precision``.

    Deterministic numpy: floor of the scaled PMF (after reserving one count per symbol), then the remaining
    counts go to the largest fractional parts, ties broken by symbol order.
    """
    pmf = np.asarray(pmf, dtype=np.float64)
    total = 1 << precision
    n = pmf.size
    if pmf.ndim != 1 or not 1 <= n <= min(C.MAX_TABLE_SYMBOLS, total):
        msg = f"pmf must be 1-D with 1..{min(C.MAX_TABLE_SYMBOLS, total)} entries, got shape {pmf.shape}"
        raise ValueError(msg)
    if not np.all(np.isfinite(pmf)) or np.any(pmf < 0) or not np.any(pmf > 0):
        msg = "pmf must be finite, non-negative and not all zero"
        raise ValueError(msg)
    if float(pmf.max()) * n > 1e300:  # the sum could overflow float64 (Python floats overflow to inf silently)
        pmf = pmf / pmf.max()
    scaled = pmf / pmf.sum() * (total - n)
    counts = np.floor(scaled).astype(np.int64)
    remainder = total - n - int(counts.sum())
    order = np.lexsort((np.arange(n), -(scaled - counts)))  # largest fraction first, then lowest index
    counts[order[:remainder]] += 1
    counts += 1
    table = Table(int(min_symbol), counts.astype(np.uint32))
    table.validate(0)
    return table


def _coder_model(table: Table) -> constriction.stream.model.Categorical:
    """The constriction model of a table, built from its integers alone (exact float64 ratios)."""
    probabilities = table.counts.astype(np.float64) / float(1 << C.TABLE_PRECISION)
    return constriction.stream.model.Categorical(probabilities, perfect=False)


def encode_latents(header: Header, tables: tuple[Table, ...], latents: list[np.ndarray]) -> np.ndarray:
    """Range-code integer latents (one ``(rows, latent_dim)`` int array per level) into uint32 words.

    Raises ValueError if a latent lies outside its table's range (the encoder clamps before calling).
    """
    encoder = constriction.stream.queue.RangeEncoder()
    models = [_coder_model(t) if len(t.counts) > 1 else None for t in tables]
    for run in header.layout.coding_runs():
        level = run.level.index
        symbols = np.asarray(latents[level][:, run.dim], dtype=np.int64)
        if symbols.shape != (run.level.rows,):
            msg = f"level {level} has {symbols.shape[0]} rows, expected {run.level.rows}"
            raise ValueError(msg)
        table = tables[run.table]
        if symbols.size and (symbols.min() < table.min_symbol or symbols.max() > table.max_symbol):
            msg = f"level {level} latents outside table {run.table} range [{table.min_symbol}, {table.max_symbol}]"
            raise ValueError(msg)
        if models[run.table] is not None:
            encoder.encode((symbols - table.min_symbol).astype(np.int32), models[run.table])
    return encoder.get_compressed()


def decode_latents(header: Header, tables: tuple[Table, ...], words: np.ndarray) -> list[np.ndarray]:
    """Inverse of :func:`encode_latents`; raises :class:`ShcFormatError` on data that is too long or undecodable."""
    layout = header.layout
    latents = [np.empty((level.rows, layout.latent_dim), dtype=np.int32) for level in layout.levels]
    models = [_coder_model(t) if len(t.counts) > 1 else None for t in tables]
    try:
        decoder = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(words, dtype=np.uint32))
        for run in layout.coding_runs():
            table, out = tables[run.table], latents[run.level.index]
            if models[run.table] is None:
                out[:, run.dim] = table.min_symbol
            else:
                out[:, run.dim] = decoder.decode(models[run.table], run.level.rows) + table.min_symbol
        exhausted = decoder.maybe_exhausted()
    except (AssertionError, KeyError, ValueError, RuntimeError, OverflowError) as error:
        msg = f"LATN section could not be range-decoded: {error}"
        raise ShcFormatError(msg) from error
    if not exhausted:
        msg = "LATN section holds more data than the declared latents use"
        raise ShcFormatError(msg)
    return latents


def pack_float16_latents(levels: list[np.ndarray]) -> np.ndarray:
    """Latents of a float16 file (no entropy coding) in LATN order: level, then dimension, then row."""
    return np.concatenate([np.asarray(lat, dtype=np.float32).T.reshape(-1) for lat in levels]).astype(np.float16)


def unpack_float16_latents(header: Header, values: np.ndarray) -> list[np.ndarray]:
    """Inverse of :func:`pack_float16_latents`: per level ``(rows, latent_dim)`` float32 arrays."""
    layout = header.layout
    dim = layout.latent_dim
    return [
        values[dim * level.offset : dim * level.stop].astype(np.float32).reshape(dim, level.rows).T.copy()
        for level in layout.levels
    ]


def file_latents(shc_file: ShcFile) -> list[np.ndarray]:
    """The latents of a parsed file, per level ``(rows, latent_dim)``: range-decoded integers, or float16."""
    if shc_file.header.range_coded:
        return decode_latents(shc_file.header, shc_file.tables, shc_file.latent_words)
    return unpack_float16_latents(shc_file.header, shc_file.latent_words)
