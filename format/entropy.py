"""Integer probability tables and range coding of the latents with constriction.

A file stores, per table, the histogram of the latents it codes (:func:`histogram_tables`); both sides
derive the integer counts from it in integer arithmetic (:meth:`Table.from_histogram`) and build the
coder's models from those integers only (:func:`_coder_model`), so nothing learned in floats (on a GPU or
a CPU) reaches the coder. Latents are coded level by level, then latent dimension, then
row, each run with the table of its (group, dimension). A one-symbol table costs no bits and codes nothing.
"""

from __future__ import annotations

import constriction
import numpy as np

from shc.format import constants as C
from shc.format.container import Header, ShcFile, Table
from shc.format.context import ContextParams, coarser_latents, decode_context_level, encode_context_level
from shc.format.errors import ShcFormatError

__all__ = [
    "decode_latents",
    "encode_latents",
    "file_latents",
    "pack_float16_latents",
    "histogram_tables",
    "unpack_float16_latents",
]


def histogram_tables(header: Header, latents: list[np.ndarray]) -> tuple[Table, ...]:
    """The tables a file stores for integer latents (one ``(rows, latent_dim)`` array per level): each
    table's histogram over exactly the symbols it codes (SPEC §5), so no escape symbol is needed.

    Raises ValueError when a table's symbols span more than ``MAX_TABLE_SYMBOLS`` (the encoder clamps first).
    """
    layout = header.layout
    runs = [[] for _ in range(layout.num_tables)]
    for run in layout.coding_runs():  # factorized levels only
        runs[run.table].append(np.asarray(latents[run.level.index][:, run.dim], dtype=np.int64))
    tables = []
    for index, parts in enumerate(runs):
        values = np.concatenate(parts)
        low, high = int(values.min()), int(values.max())
        if high - low + 1 > C.MAX_TABLE_SYMBOLS or low < C.MIN_SYMBOL or high > C.MAX_SYMBOL:
            msg = f"table {index} would span [{low}, {high}]: clamp the latents first"
            raise ValueError(msg)
        tables.append(Table.from_histogram(low, np.bincount(values - low)))
    return tuple(tables)


def _coder_model(table: Table) -> constriction.stream.model.Categorical:
    """The constriction model of a table, built from its integers alone (exact float64 ratios)."""
    probabilities = table.counts.astype(np.float64) / float(1 << C.TABLE_PRECISION)
    return constriction.stream.model.Categorical(probabilities, perfect=False)


def _check_context(header: Header, context: ContextParams | None) -> None:
    """A context network must come with exactly the headers that declare one (a caller's error, not the file's)."""
    if (context is None) != (header.config.context_width == 0):
        msg = f"the header's context_width is {header.config.context_width}: pass its context network exactly then"
        raise ValueError(msg)


def _runs_by_level(header: Header) -> dict[int, list]:
    runs: dict[int, list] = {level.index: [] for level in header.layout.levels}
    for run in header.layout.coding_runs():
        runs[run.level.index].append(run)
    return runs


def encode_latents(
    header: Header, tables: tuple[Table, ...], latents: list[np.ndarray], context: ContextParams | None = None
) -> np.ndarray:
    """Range-code integer latents (one ``(rows, latent_dim)`` int array per level) into uint32 words: level by
    level, a factorized level with its table, a context level (SPEC §5a) under ``context``.

    Raises ValueError if a latent lies outside its table's (or its context level's) range (the encoder
    clamps before calling).
    """
    _check_context(header, context)
    encoder = constriction.stream.queue.RangeEncoder()
    models = [_coder_model(t) if len(t.counts) > 1 else None for t in tables]
    runs = _runs_by_level(header)
    slots = {level.index: slot for slot, level in enumerate(header.layout.context_levels)}
    for index, level_runs in runs.items():
        if index in slots:
            slot = slots[index]
            values = np.asarray(latents[index][:, 0], dtype=np.int64)
            low, span = int(context.level_low[slot]), int(context.level_span[slot])
            if values.size and (values.min() < low or values.max() >= low + span):
                msg = f"level {index} latents outside its context range [{low}, {low + span - 1}]"
                raise ValueError(msg)
            encode_context_level(encoder, context, slot, header.layout.levels, index, values, coarser_latents(latents, index))
        for run in level_runs:
            _encode_run(encoder, run, latents, tables, models)
    return encoder.get_compressed()


def _encode_run(encoder, run, latents, tables, models) -> None:
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


def decode_latents(
    header: Header, tables: tuple[Table, ...], words: np.ndarray, context: ContextParams | None = None
) -> list[np.ndarray]:
    """Inverse of :func:`encode_latents`; raises :class:`ShcFormatError` on data that is too long or undecodable."""
    _check_context(header, context)
    layout = header.layout
    latents = [np.empty((level.rows, layout.latent_dim), dtype=np.int32) for level in layout.levels]
    models = [_coder_model(t) if len(t.counts) > 1 else None for t in tables]
    slots = {level.index: slot for slot, level in enumerate(layout.context_levels)}
    try:
        decoder = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(words, dtype=np.uint32))
        for index, level_runs in _runs_by_level(header).items():
            if index in slots:
                latents[index][:, 0] = decode_context_level(
                    decoder, context, slots[index], layout.levels, index, coarser_latents(latents, index))
            for run in level_runs:
                table, out = tables[run.table], latents[run.level.index]
                if models[run.table] is None:
                    out[:, run.dim] = table.min_symbol
                else:
                    out[:, run.dim] = decoder.decode(models[run.table], run.level.rows) + table.min_symbol
        exhausted = decoder.maybe_exhausted()
        _check_histograms(header, tables, latents)
    except ShcFormatError:
        raise
    except (AssertionError, KeyError, ValueError, RuntimeError, OverflowError) as error:
        msg = f"LATN section could not be range-decoded: {error}"
        raise ShcFormatError(msg) from error
    if not exhausted:
        msg = "LATN section holds more data than the declared latents use"
        raise ShcFormatError(msg)
    return latents


def _check_histograms(header: Header, tables: tuple[Table, ...], latents: list[np.ndarray]) -> None:
    """Version 4 stores each table's histogram: the decoded latents must have exactly that histogram."""
    if not tables or tables[0].histogram is None:
        return
    found = [np.zeros(len(t.counts), dtype=np.int64) for t in tables]
    for run in header.layout.coding_runs():
        table = tables[run.table]
        found[run.table] += np.bincount(latents[run.level.index][:, run.dim] - table.min_symbol, minlength=len(table.counts))
    for index, (table, histogram) in enumerate(zip(tables, found)):
        if not np.array_equal(histogram, table.histogram):
            msg = f"LATN section: the decoded latents do not match table {index}'s histogram (corrupted data)"
            raise ShcFormatError(msg)


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
        return decode_latents(shc_file.header, shc_file.tables, shc_file.latent_words, shc_file.context)
    return unpack_float16_latents(shc_file.header, shc_file.latent_words)
