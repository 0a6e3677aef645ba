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
from shc.format.container import ShcFile
from shc.format.context import ContextParams, coarser_latents, decode_context_level, encode_context_level
from shc.format.errors import ShcFormatError
from shc.format.header import Header
from shc.format.table import Table

__all__ = [
    "decode_latents",
    "decode_segments",
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


def encode_latents(
    header: Header, tables: tuple[Table, ...], latents: list[np.ndarray], context: ContextParams | None = None
) -> tuple[np.ndarray, ...]:
    """Range-code integer latents (one ``(rows, latent_dim)`` int array per level) into one array of uint32
    words per segment of the layout (SPEC §6): each segment its own coder; in it, piece by piece, a
    factorized level (or chunk) with its table per latent dimension, a context level (SPEC §5a) under
    ``context``.

    Raises ValueError if a latent lies outside its table's (or its context level's) range (the encoder
    clamps before calling).
    """
    _check_context(header, context)
    layout = header.layout
    for level in layout.levels:
        if latents[level.index].shape[0] != level.rows:
            msg = f"level {level.index} has {latents[level.index].shape[0]} rows, expected {level.rows}"
            raise ValueError(msg)
    models = [_coder_model(t) if len(t.counts) > 1 else None for t in tables]
    slots = {level.index: slot for slot, level in enumerate(layout.context_levels)}
    out = []
    for segment in layout.segments:
        encoder = constriction.stream.queue.RangeEncoder()
        for piece in segment.pieces:
            level = piece.level
            if level.index in slots:
                slot = slots[level.index]
                values = np.asarray(latents[level.index][:, 0], dtype=np.int64)
                low, span = int(context.level_low[slot]), int(context.level_span[slot])
                if values.size and (values.min() < low or values.max() >= low + span):
                    msg = f"level {level.index} latents outside its context range [{low}, {low + span - 1}]"
                    raise ValueError(msg)
                encode_context_level(encoder, context, slot, layout.levels, level.index, values,
                                     coarser_latents(latents, level.index))
                continue
            rows = None if piece.chunk is None else level.piece_rows(piece.chunk)
            for dim in range(layout.latent_dim):
                table_index = layout.table_index(level.group, dim)
                table = tables[table_index]
                symbols = np.asarray(latents[level.index][:, dim] if rows is None else latents[level.index][rows, dim],
                                     dtype=np.int64)
                if symbols.size and (symbols.min() < table.min_symbol or symbols.max() > table.max_symbol):
                    msg = (f"level {level.index} latents outside table {table_index} range "
                           f"[{table.min_symbol}, {table.max_symbol}]")
                    raise ValueError(msg)
                if models[table_index] is not None:
                    encoder.encode((symbols - table.min_symbol).astype(np.int32), models[table_index])
        out.append(encoder.get_compressed())
    return tuple(out)


def decode_latents(
    header: Header, tables: tuple[Table, ...], segments, context: ContextParams | None = None
) -> list[np.ndarray]:
    """Inverse of :func:`encode_latents` (``segments``: every segment's words, in order), with the check
    that the latents have the stored histograms; raises :class:`ShcFormatError` on data that is too long or
    undecodable."""
    if len(segments) != len(header.layout.segments):
        msg = f"{len(segments)} latent segments given, the header's layout has {len(header.layout.segments)}"
        raise ShcFormatError(msg)
    latents = decode_segments(header, tables, dict(enumerate(segments)), context)
    _check_histograms(header, tables, latents)
    return latents


def decode_segments(
    header: Header, tables: tuple[Table, ...], segments: dict[int, np.ndarray], context: ContextParams | None = None
) -> list[np.ndarray]:
    """The latents of some segments (``{segment index: words}``: a region's or a prefix's, SPEC §6), per
    level ``(rows, latent_dim)`` int32; rows of segments not given are 0. A segment that codes a context
    level needs the segments of the two coarser levels too (they are whole levels: SPEC §5a)."""
    _check_context(header, context)
    layout = header.layout
    latents = [np.zeros((level.rows, layout.latent_dim), dtype=np.int32) for level in layout.levels]
    models = [_coder_model(t) if len(t.counts) > 1 else None for t in tables]
    slots = {level.index: slot for slot, level in enumerate(layout.context_levels)}
    decoded_levels = {piece.level.index for k in segments for piece in layout.segments[k].pieces}
    for k in segments:
        for piece in layout.segments[k].pieces:
            if piece.level.context and not set(range(max(0, piece.level.index - 2), piece.level.index)) <= decoded_levels:
                msg = f"segment {k} codes context level {piece.level.index}: give its coarser levels' segments too"
                raise ValueError(msg)
    for k in sorted(segments):
        segment = layout.segments[k]
        try:
            decoder = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(segments[k], dtype=np.uint32))
            for piece in segment.pieces:
                level = piece.level
                if level.index in slots:
                    latents[level.index][:, 0] = decode_context_level(
                        decoder, context, slots[level.index], layout.levels, level.index,
                        coarser_latents(latents, level.index))
                    continue
                rows = None if piece.chunk is None else level.piece_rows(piece.chunk)
                count = level.rows if rows is None else rows.size
                for dim in range(layout.latent_dim):
                    table_index = layout.table_index(level.group, dim)
                    table = tables[table_index]
                    if models[table_index] is None:
                        values = table.min_symbol
                    else:
                        values = decoder.decode(models[table_index], count) + table.min_symbol
                    if rows is None:
                        latents[level.index][:, dim] = values
                    else:
                        latents[level.index][rows, dim] = values
            exhausted = decoder.maybe_exhausted()
        except ShcFormatError:
            raise
        except (AssertionError, KeyError, ValueError, RuntimeError, OverflowError) as error:
            msg = f"latent segment {k} could not be range-decoded: {error}"
            raise ShcFormatError(msg) from error
        if not exhausted:
            msg = f"latent segment {k} holds more data than its latents use"
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


def pack_float16_latents(header: Header, levels: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Latents of a float16 file (no entropy coding), one array per segment in coding order: piece, then
    latent dimension, then row (SPEC §6b)."""
    layout = header.layout
    out = []
    for segment in layout.segments:
        parts = []
        for piece in segment.pieces:
            values = np.asarray(levels[piece.level.index], dtype=np.float32)
            if piece.chunk is not None:
                values = values[piece.level.piece_rows(piece.chunk)]
            parts.append(values.T.reshape(-1))
        out.append(np.concatenate(parts).astype(np.float16))
    return tuple(out)


def unpack_float16_latents(header: Header, segments: dict[int, np.ndarray]) -> list[np.ndarray]:
    """Inverse of :func:`pack_float16_latents` for the segments given (``{index: values}``): per level
    ``(rows, latent_dim)`` float32 arrays, 0 where no segment was given."""
    layout = header.layout
    dim = layout.latent_dim
    latents = [np.zeros((level.rows, dim), dtype=np.float32) for level in layout.levels]
    for k, values in segments.items():
        at = 0
        for piece in layout.segments[k].pieces:
            level = piece.level
            rows = np.arange(level.rows) if piece.chunk is None else level.piece_rows(piece.chunk)
            latents[level.index][rows] = values[at : at + dim * rows.size].astype(np.float32).reshape(dim, rows.size).T
            at += dim * rows.size
    return latents


def file_latents(shc_file: ShcFile) -> list[np.ndarray]:
    """The latents of a parsed file, per level ``(rows, latent_dim)``: range-decoded integers, or float16."""
    if shc_file.header.range_coded:
        return decode_latents(shc_file.header, shc_file.tables, shc_file.latent_segments, shc_file.context)
    return unpack_float16_latents(shc_file.header, dict(enumerate(shc_file.latent_segments)))


def rewrite_file(data: bytes) -> bytes:
    """A file of any readable version, written again in the current one: the same latents, weights, tables,
    context network and metadata, coded in the current layout (SPEC §9), so it decodes to the same pixels."""
    from dataclasses import replace

    from shc.format.container import read_file, write_file

    parsed = read_file(data)
    latents = file_latents(parsed)
    header = replace(parsed.header, version=C.FORMAT_VERSION)
    if header.range_coded:
        segments = encode_latents(header, parsed.tables, latents, parsed.context)
    else:
        segments = pack_float16_latents(header, latents)
    return write_file(header, parsed.weights, parsed.tables, segments, icc_profile=parsed.icc_profile,
                      exif=parsed.exif, context=parsed.context)
