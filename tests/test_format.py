"""Tests for the ``.shc`` file format and its normative decoder (shc.format): numpy and constriction only.

Nothing here imports torch; the golden files in ``tests/data`` were made by ``tests/data/make_golden.py``
with the real encoder (those of versions 2-6, kept for compatibility, are in ``tests/data/compat``). The
META section, alpha and the context network (version 6) have their own tests (``test_metadata.py``,
``test_alpha.py``, ``test_context_format.py``). Hand-built
files are written from the byte layout (:func:`frame`, :func:`head_payload`, and the exp-Golomb bit strings
of :func:`eg_bits`) rather than with the library's writer, so that the reader and the writer are checked
against an independent implementation of SPEC.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import struct
import subprocess
import sys
import tracemalloc
import zlib
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shc.format import constants as C
from shc.format.container import (
    HEAD_FIELDS,
    Header,
    ModelConfig,
    QuantizedWeights,
    Table,
    head_layout,
    head_payload_bytes,
    read_file,
    table_symbol_counts,
    weight_shapes,
    write_file,
)
from shc.format.decoder import Synthesis, decode_bytes, output_size, to_uint8
from shc.format.entropy import (
    decode_latents,
    encode_latents,
    file_latents,
    histogram_tables,
    pack_float16_latents,
    rewrite_file,
)
from shc.format.errors import ShcFormatError
from shc.format.expgolomb import MAX_ORDER, MAX_PREFIX_ZEROS, BitReader, best_order, code_bits, pack, zigzag
from shc.tools.fuzz import random_weights
from shc.format.grid import axis_samples, axis_taps, corner_indices_weights, level_num_rows

DATA_DIR = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA_DIR / "golden.json").read_text())
GOLDEN_NAMES = sorted(GOLDEN["files"])
COMPAT_DIR = DATA_DIR / "compat"
COMPAT = json.loads((COMPAT_DIR / "compat.json").read_text())
COMPAT_NAMES = sorted(COMPAT["files"])
PREFIX = C.MAGIC + bytes([C.FORMAT_VERSION])
TOTAL = 1 << C.TABLE_PRECISION
INTERPOLATION_SINCE = 4
"""The version whose HEAD gains the u8 ``interpolation`` after ``latent_coding``."""
CHANNELS_SINCE = 5
"""The version whose HEAD gains the u8 ``channels`` after ``interpolation``."""
CONTEXT_SINCE = 6
"""The version whose HEAD gains the u8 ``context_width`` after ``channels``."""
SEGMENTED_SINCE = 7
"""The version whose LATN payload is the segment index (per segment u32 length, u32 CRC-32), the segments'
bytes following the LATN section to the end of the file."""
FIXED = 20
"""Bytes of the fixed HEAD fields in the current version (7, as 6; version 5: 19, version 4: 18)."""


def golden_bytes(name: str) -> bytes:
    return (DATA_DIR / name).read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------- hand-built files


def frame(tag: bytes, payload: bytes) -> bytes:
    """One section as the format lays it out: tag, u32 LE length, payload, u32 LE CRC32(tag + payload)."""
    return tag + struct.pack("<I", len(payload)) + payload + struct.pack("<I", zlib.crc32(tag + payload))


def segment_index(segments) -> bytes:
    """SPEC §6 (version 7): the LATN payload, per segment its u32 LE byte length and u32 LE CRC32 of its bytes."""
    return b"".join(struct.pack("<II", len(raw), zlib.crc32(raw)) for raw in segments)


def container(
    head: bytes, weights: bytes = b"", tables: bytes = b"", latents=b"", version: int = C.FORMAT_VERSION
) -> bytes:
    """A file of sections framed by hand. ``latents``: versions 2-6, the LATN payload; version 7, the bytes of
    one segment or a list of segments: LATN holds their index and they follow it, the file ending with the last."""
    if version >= SEGMENTED_SINCE:
        segments = [latents] if isinstance(latents, (bytes, bytearray)) else list(latents)
        latn, tail = segment_index(segments), b"".join(segments)
    else:
        latn, tail = latents, b""
    return (
        C.MAGIC + bytes([version])
        + frame(b"HEAD", head) + frame(b"WGHT", weights) + frame(b"TABL", tables) + frame(b"LATN", latn) + tail
    )


def head_payload(
    width: int = 16,
    height: int = 16,
    num_levels: int = 1,
    log2_hashmap_size: int = 8,
    latent_dim: int = 1,
    feat_dim: int = 1,
    mlp_width: int = 4,
    mlp_depth: int = 1,
    num_groups: int = 1,
    cells: list[tuple[int, int]] | None = None,
    latent_coding: int = C.LATENTS_RANGE_CODED,
    version: int = C.FORMAT_VERSION,
    interpolation: int = 0,
    channels: int = 3,
    context_width: int = 0,
) -> bytes:
    """SPEC §2: u32 width, height, u8 x4, u16 mlp_width, u8 x3 (num_levels .. latent_coding), u8
    interpolation (version 4 on), u8 channels (version 5 on), u8 context_width (version 6 on), then per
    level u16 nx, ny (versions 2-3: u32)."""
    cells = [(4, 4)] * num_levels if cells is None else cells
    config = (num_levels, log2_hashmap_size, latent_dim, feat_dim, mlp_width, mlp_depth, num_groups, latent_coding)
    fixed = struct.pack("<IIBBBBHBBB", width, height, *config)
    if version >= INTERPOLATION_SINCE:
        fixed += struct.pack("<B", interpolation)
    if version >= CHANNELS_SINCE:
        fixed += struct.pack("<B", channels)
    if version >= CONTEXT_SINCE:
        fixed += struct.pack("<B", context_width)
    cell_format = "<HH" if version >= 4 else "<II"
    return fixed + b"".join(struct.pack(cell_format, nx, ny) for nx, ny in cells)


def header_head_payload(header: Header, version: int = C.FORMAT_VERSION) -> bytes:
    cfg = header.config
    return head_payload(
        header.width, header.height, cfg.num_levels, cfg.log2_hashmap_size, cfg.latent_dim, cfg.feat_dim,
        cfg.mlp_width, cfg.mlp_depth, cfg.num_groups, list(header.level_cells), header.latent_coding, version,
        cfg.interpolation, cfg.channels, cfg.context_width,
    )


def file_parts(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The ``(tag, payload)`` sections of a well-framed file and what follows LATN: a version-7 file's
    segments (empty before version 7, whose LATN is the last section)."""
    pos, sections = len(PREFIX), []
    while pos < len(data):
        found = data[pos : pos + 4]
        (length,) = struct.unpack_from("<I", data, pos + 4)
        sections.append((found, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
        if found == b"LATN" and data[4] >= SEGMENTED_SINCE:
            break
    return sections, data[pos:]


def replace_section(data: bytes, tag: bytes, payload: bytes) -> bytes:
    """``data`` (a valid file) with one section's payload replaced; length and CRC re-fixed, the latent
    segments after LATN (version 7) kept as they are."""
    sections, tail = file_parts(data)
    return data[: len(PREFIX)] + b"".join(frame(t, payload if t == tag else old) for t, old in sections) + tail


def section_payload(data: bytes, tag: bytes) -> bytes:
    for found, payload in file_parts(data)[0]:
        if found == tag:
            return payload
    raise KeyError(tag)


def segments_of(data: bytes) -> list[bytes]:
    """A version-7 file's latent segments, cut from what follows LATN by the lengths of its index."""
    index, tail = section_payload(data, b"LATN"), file_parts(data)[1]
    lengths = [struct.unpack_from("<I", index, at)[0] for at in range(0, len(index), 8)]
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(int)
    assert starts[-1] == len(tail)
    return [tail[a:b] for a, b in zip(starts, starts[1:])]


def with_segments(data: bytes, segments) -> bytes:
    """``data`` (a valid version-7 file) with other latent segments: the LATN index re-made (lengths and
    CRCs right for the new bytes), the segments after it."""
    sections, _ = file_parts(data)
    latn = segment_index(segments)
    return data[: len(PREFIX)] + b"".join(
        frame(t, latn if t == b"LATN" else old) for t, old in sections) + b"".join(segments)


# ---------------------------------------------------------------------------------------------- exp-Golomb by hand
# SPEC §3a written as strings of '0'/'1' with Python integers: independent of shc.format.expgolomb.


def eg_bits(n: int, k: int) -> str:
    """The unsigned exp-Golomb code of order ``k`` of ``n >= 0``: m = n + 2**k in binary after b - 1 - k zeros."""
    m = int(n) + (1 << k)
    return "0" * (m.bit_length() - 1 - k) + format(m, "b")


def signed_eg_bits(v: int, k: int) -> str:
    v = int(v)
    return eg_bits(2 * v if v >= 0 else -2 * v - 1, k)


def bits_to_bytes(bits: str) -> bytes:
    """MSB first, zero-padded to a whole byte."""
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))


def shortest_order(unsigned, max_order: int = 16) -> int:
    """The order 0..16 that codes ``unsigned`` in the fewest bits, the lowest one on a tie (what the writer picks)."""
    costs = [sum(2 * (int(u) + (1 << k)).bit_length() - 1 - k for u in unsigned) for k in range(max_order + 1)]
    return costs.index(min(costs))


def to_unsigned(v: int) -> int:
    return 2 * int(v) if v >= 0 else -2 * int(v) - 1


def hand_weights(header: Header, steps, values, orders=None, extra_bits: str = "") -> bytes:
    """SPEC §3 (version 4): per tensor f32 step + u8 order, then the signed codes of every value."""
    heads, bits, offset = b"", "", 0
    for t, (_, shape) in enumerate(weight_shapes(header)):
        count = int(np.prod(shape))
        tensor = [int(v) for v in values[offset : offset + count]]
        order = shortest_order([to_unsigned(v) for v in tensor]) if orders is None else orders[t]
        heads += struct.pack("<fB", float(steps[t]), order)
        bits += "".join(signed_eg_bits(v, order) for v in tensor)
        offset += count
    return heads + bits_to_bytes(bits + extra_bits)


def hand_table_bits(min_symbol: int, histogram, order: int | None = None, size: int | None = None) -> str:
    """SPEC §5: zigzag-EG0(min_symbol), EG0(n - 1), EG0(k), then the n histogram entries in order k."""
    order = shortest_order(histogram) if order is None else order
    size = len(histogram) if size is None else size
    return (
        signed_eg_bits(min_symbol, 0) + eg_bits(size - 1, 0) + eg_bits(order, 0)
        + "".join(eg_bits(h, order) for h in histogram)
    )


def hand_tables(tables, extra_bits: str = "") -> bytes:
    return bits_to_bytes("".join(hand_table_bits(t.min_symbol, t.histogram) for t in tables) + extra_bits)


def hand_file(header: Header, steps, values, tables, words) -> bytes:
    """A whole file without a context network, every byte from SPEC.md (``words``: each segment's range-coder
    words)."""
    head = header_head_payload(header)
    segments = [np.asarray(w, "<u4").tobytes() for w in words]
    return container(head, hand_weights(header, steps, values), hand_tables(tables), segments)


# ---------------------------------------------------------------------------------------------- valid files


@dataclass
class Built:
    header: Header
    weights: QuantizedWeights
    tables: tuple[Table, ...]
    latents: list[np.ndarray]
    words: tuple[np.ndarray, ...]  # per latent segment (SPEC §6)
    data: bytes


def draw_latents(rng: np.random.Generator, header: Header, table_specs) -> list[np.ndarray]:
    """Integer latents: for each table, half drawn from its PMF, half uniformly over its range, and its lowest
    and highest symbols placed at random rows, so that the table's histogram spans exactly that range."""
    layout = header.layout
    latents = [np.zeros((rows, layout.latent_dim), dtype=np.int32) for rows in header.level_rows()]
    positions = [[] for _ in table_specs]
    for run in layout.coding_runs():
        positions[run.table] += [(run.level.index, row, run.dim) for row in range(run.level.rows)]
    for index, (pmf, min_symbol) in enumerate(table_specs):
        p = np.asarray(pmf, dtype=np.float64)
        where = positions[index]
        drawn = rng.choice(p.size, size=len(where), p=p / p.sum())
        uniform = rng.integers(0, p.size, size=len(where))
        values = min_symbol + np.where(rng.random(len(where)) < 0.5, drawn, uniform)
        first, last = rng.choice(len(where), 2, replace=False)
        values[first], values[last] = min_symbol, min_symbol + p.size - 1
        for (level, row, dim), value in zip(where, values.tolist()):
            latents[level][row, dim] = value
    return latents


def random_values(rng: np.random.Generator, count: int) -> np.ndarray:
    """Weight integers as version 4 stores them: mostly int8-sized, a few up to +-WEIGHT_CODE_MAX."""
    values = rng.integers(-127, 128, count).astype(np.int64)
    big = rng.random(count) < 0.05
    values[big] = rng.integers(-C.WEIGHT_CODE_MAX, C.WEIGHT_CODE_MAX + 1, int(big.sum()))
    if count >= 2:
        values[:2] = [C.WEIGHT_CODE_MAX, -C.WEIGHT_CODE_MAX]
    return values


def build(
    config: ModelConfig,
    cells: tuple[tuple[int, int], ...],
    table_specs: list[tuple[np.ndarray, int]],
    width: int = 20,
    height: int = 12,
    seed: int = 0,
) -> Built:
    """A valid file: integer latents from :func:`draw_latents`, the histogram tables of those latents,
    random weight integers (:func:`random_values`) with random steps."""
    rng = np.random.default_rng(seed)
    header = Header(width, height, config, cells)
    header.validate()
    latents = draw_latents(rng, header, table_specs)
    tables = histogram_tables(header, latents)
    num_weights = sum(int(np.prod(shape)) for _, shape in weight_shapes(header))
    scales = rng.uniform(1e-5, 1e-4, len(weight_shapes(header))).astype(np.float32)
    weights = QuantizedWeights(scales, random_values(rng, num_weights))
    words = encode_latents(header, tables, latents)
    return Built(header, weights, tables, latents, words, write_file(header, weights, tables, words))


def single(pmf, min_symbol: int = 0, cells=((6, 5),), log2_hashmap_size: int = 8) -> dict:
    config = ModelConfig(num_levels=len(cells), log2_hashmap_size=log2_hashmap_size, mlp_width=4, mlp_depth=1)
    return {"config": config, "cells": cells, "table_specs": [(pmf, min_symbol)]}


ENTROPY_CASES = {
    "one_symbol": single(np.ones(1), min_symbol=5),
    "two_symbols": single([0.9, 0.1], min_symbol=-1),
    "skewed_three": single([1e-12, 1.0, 1e-12], min_symbol=-1),  # the outer symbols only from the uniform half
    "uniform_4096": single(np.ones(4096), min_symbol=-2048, cells=((30, 20),), log2_hashmap_size=10),
    "peaked_4096": single(np.eye(1, 4096, 100).ravel(), min_symbol=-100, cells=((30, 20),), log2_hashmap_size=10),
    "top_of_range": single(np.arange(1.0, 11.0), min_symbol=C.MAX_SYMBOL - 9),
    "bottom_of_range": single(np.arange(10.0, 0.0, -1.0), min_symbol=C.MIN_SYMBOL),
    "hashed_levels": single(
        np.exp(-np.abs(np.arange(-8, 9)) / 2.0), min_symbol=-8, cells=((3, 2), (9, 7), (15, 11)), log2_hashmap_size=5
    ),
    "u16_cells": single([1, 2, 1.0], min_symbol=-1, cells=((C.MAX_CELLS_U16, 1), (1, C.MAX_CELLS_U16)),
                        log2_hashmap_size=6),  # the largest cells version 4 stores, hashed
    "groups_and_dims": {
        "config": ModelConfig(
            num_levels=3, log2_hashmap_size=4, latent_dim=2, feat_dim=3, mlp_width=5, mlp_depth=2, num_groups=2
        ),
        "cells": ((2, 1), (5, 4), (9, 7)),  # 6 rows dense, then 30 and 80 vertices hashed into 16 rows
        "table_specs": [(np.ones(1), 0), ([1, 2, 5, 9, 5, 2, 1.0], -3), ([3, 1.0], 0), (np.ones(40), -20)],
    },
    "rgba": {  # version 5: four outputs (the last layer's weights are 4 x in)
        "config": ModelConfig(num_levels=2, log2_hashmap_size=6, mlp_width=5, mlp_depth=1, channels=4),
        "cells": ((2, 2), (6, 5)),
        "table_specs": [([1, 3, 1.0], -1)],
    },
    "no_hidden_layer": {
        "config": ModelConfig(num_levels=2, log2_hashmap_size=6, latent_dim=1, feat_dim=2, mlp_width=1, mlp_depth=0),
        "cells": ((1, 1), (4, 3)),
        "table_specs": [([1, 1, 1.0], -1)],
    },
}


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("case", ENTROPY_CASES)
def test_write_read_round_trip(case: str) -> None:
    built = build(**ENTROPY_CASES[case])
    parsed = read_file(built.data)
    assert parsed.header == built.header
    np.testing.assert_array_equal(parsed.weights.scales, built.weights.scales)
    np.testing.assert_array_equal(parsed.weights.values, built.weights.values)
    assert parsed.weights.values.dtype == np.int64
    flat = parsed.weights.dequantized(parsed.header)
    assert flat.dtype == np.float32 and flat.size == built.weights.values.size
    assert len(parsed.tables) == len(built.tables)
    for got, want, coded in zip(parsed.tables, built.tables, table_symbol_counts(built.header)):
        assert got.min_symbol == want.min_symbol
        np.testing.assert_array_equal(got.histogram, want.histogram)
        np.testing.assert_array_equal(got.counts, want.counts)
        assert int(got.histogram.sum()) == coded and got.histogram[0] > 0 and got.histogram[-1] > 0
    assert all(np.array_equal(a, b) for a, b in zip(parsed.latent_segments, built.words, strict=True))
    assert sum(parsed.section_bytes.values()) == len(built.data)
    # what was read writes back to the very same bytes
    assert write_file(parsed.header, parsed.weights, parsed.tables, parsed.latent_segments) == built.data


@pytest.mark.parametrize("case", ENTROPY_CASES)
def test_writer_matches_the_byte_layout(case: str) -> None:
    """Every byte of the library's file equals the file written by hand from SPEC.md (u16 level cells,
    exp-Golomb weights and histograms, each in its shortest order 0..16, the lowest on a tie)."""
    built = build(**ENTROPY_CASES[case])
    hand = hand_file(built.header, built.weights.scales, built.weights.values, built.tables, built.words)
    assert hand == built.data
    head = section_payload(built.data, b"HEAD")
    assert len(head) == head_payload_bytes(built.header.config.num_levels) == FIXED + 4 * built.header.config.num_levels
    # these small grids are one segment: LATN is its 8-byte index, and the file ends with its words
    assert len(built.words) == 1 and len(section_payload(built.data, b"LATN")) == 8
    assert file_parts(built.data)[1] == built.words[0].astype("<u4").tobytes()


@pytest.mark.parametrize("case", ["two_symbols", "groups_and_dims", "hashed_levels"])
def test_reader_accepts_any_order(case: str) -> None:
    """The writer picks the shortest orders, but a reader takes whatever order (<= MAX_ORDER) a file gives."""
    built = build(**ENTROPY_CASES[case])
    rng = np.random.default_rng(1)
    shapes = weight_shapes(built.header)
    orders = rng.integers(0, MAX_ORDER + 1, len(shapes)).tolist()
    weights = hand_weights(built.header, built.weights.scales, built.weights.values, orders)
    table_bits = "".join(hand_table_bits(t.min_symbol, t.histogram, int(rng.integers(0, 13))) for t in built.tables)
    data = replace_section(replace_section(built.data, b"WGHT", weights), b"TABL", bits_to_bytes(table_bits))
    assert data != built.data
    parsed = read_file(data)
    np.testing.assert_array_equal(parsed.weights.values, built.weights.values)
    for got, want in zip(parsed.tables, built.tables):
        np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_array_equal(decode_bytes(data), decode_bytes(built.data))


@pytest.mark.parametrize("case", ENTROPY_CASES)
def test_entropy_decoding_is_exact(case: str) -> None:
    built = build(**ENTROPY_CASES[case])
    decoded = decode_latents(built.header, built.tables, built.words)
    assert [d.dtype for d in decoded] == [np.int32] * len(decoded)
    for got, want in zip(decoded, built.latents):
        np.testing.assert_array_equal(got, want)
    # and from the file: the decoder only ever sees the stored histograms (and the tables derived from them)
    parsed = read_file(built.data)
    for got, want in zip(decode_latents(parsed.header, parsed.tables, parsed.latent_segments), built.latents):
        np.testing.assert_array_equal(got, want)
    decode_bytes(built.data)  # the whole decoder runs on it


def test_one_symbol_table_costs_no_bits() -> None:
    built = build(**ENTROPY_CASES["one_symbol"])
    assert len(built.words) == 1 and built.words[0].size == 0
    assert all(np.all(level == 5) for level in decode_latents(built.header, built.tables, built.words))
    # the segment is empty: its index entry is length 0 with the CRC32 of no bytes (0), and nothing follows LATN
    assert section_payload(built.data, b"LATN") == struct.pack("<II", 0, 0) and file_parts(built.data)[1] == b""


def test_encode_refuses_latents_outside_the_table() -> None:
    built = build(**ENTROPY_CASES["two_symbols"])
    latents = [level.copy() for level in built.latents]
    latents[0][0, 0] = 1  # the table covers -1..0
    with pytest.raises(ValueError, match="outside table 0 range"):
        encode_latents(built.header, built.tables, latents)


def test_histogram_tables_cover_exactly_the_latents() -> None:
    built = build(**ENTROPY_CASES["groups_and_dims"])
    tables = histogram_tables(built.header, built.latents)
    assert [(t.min_symbol, len(t.counts)) for t in tables] == [(0, 1), (-3, 7), (0, 2), (-20, 40)]
    # group 0 = levels 0 and 1 (6 dense rows + 16 hashed), group 1 = level 2 (16 hashed rows)
    assert [int(t.histogram.sum()) for t in tables] == table_symbol_counts(built.header) == [22, 22, 16, 16]
    # a table spanning more than MAX_TABLE_SYMBOLS symbols is the caller's mistake (the encoder clamps first)
    wide = [level.copy() for level in built.latents]
    wide[2][0, 1], wide[2][1, 1] = -2048, 2048
    with pytest.raises(ValueError, match=r"table 3 would span \[-2048, 2048\]") as info:
        histogram_tables(built.header, wide)
    assert not isinstance(info.value, ShcFormatError)


def test_writer_refuses_what_version_4_cannot_store() -> None:
    built = build(**ENTROPY_CASES["two_symbols"])
    with pytest.raises(ValueError, match="no histogram"):  # a count table (versions 2-3) has no histogram
        write_file(built.header, built.weights, (Table(-1, built.tables[0].counts),), built.words)
    big = Header(20, 12, built.header.config, ((C.MAX_CELLS_U16 + 1, 5),))
    big.validate()  # versions 2-3 could store it
    with pytest.raises(ValueError, match="stores at most 65535 cells"):
        write_file(big, built.weights, built.tables, built.words)
    too_big = QuantizedWeights(built.weights.scales, np.where(np.arange(built.weights.values.size) == 3,
                                                              C.WEIGHT_CODE_MAX + 1, built.weights.values))
    with pytest.raises(ValueError, match=r"weight outside \[-32767, 32767\]"):
        write_file(built.header, too_big, built.tables, built.words)


# ---------------------------------------------------------------------------------------------- coding tables


def reference_counts(histogram) -> list[int]:
    """SPEC §5 in exact rationals: one count per symbol, the other 2**15 - n shared in proportion to the
    histogram, floors first, then one more to the largest remainders (lowest symbol first on a tie)."""
    hist = [int(h) for h in histogram]
    n, total = len(hist), sum(hist)
    spare = TOTAL - n
    shares = [Fraction(h * spare, total) for h in hist]
    floors = [int(s) for s in shares]
    extra = sorted(range(n), key=lambda i: (-(shares[i] - floors[i]), i))[: spare - sum(floors)]
    return [f + 1 + (i in extra) for i, f in enumerate(floors)]


def _histograms(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    with_zeros = np.where(rng.random(n) < 0.5, 0, rng.integers(1, 100, n))
    with_zeros[0] = with_zeros[-1] = 1
    return [
        rng.integers(1, 50, n),
        np.maximum(rng.dirichlet(np.full(n, 0.05)) * 1e6, 0).astype(np.int64),  # most mass on a few symbols
        with_zeros,  # many symbols that never occur
        np.full(n, 7),  # all equal: every remainder ties
        np.eye(1, n, n // 2, dtype=np.int64).ravel() * C.MAX_TOTAL_LATENTS,  # one symbol, the largest total
        rng.integers(0, C.MAX_TOTAL_LATENTS // n + 1, n),  # totals up to 2**24: h * R needs more than 32 bits
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 17, 256, 4095, 4096])
def test_table_from_histogram_properties(n: int) -> None:
    rng = np.random.default_rng(n)
    for hist in _histograms(n, rng):
        if hist.sum() == 0:
            hist[0] = 1
        table = Table.from_histogram(-3, hist)
        counts = table.counts.astype(np.int64)
        assert table.counts.dtype == np.uint32 and table.counts.shape == (n,)
        assert int(counts.sum()) == TOTAL and int(counts.min()) >= 1
        assert table.min_symbol == -3 and table.max_symbol == -3 + n - 1
        np.testing.assert_array_equal(table.histogram, hist)  # kept: the file stores it
        assert np.all(counts[hist == 0] == 1)  # a symbol that never occurs still gets one count
        # proportional: beyond its one count, each symbol gets its exact share of 2**15 - n, rounded down or up
        shares = [Fraction(int(h) * (TOTAL - n), int(hist.sum())) for h in hist]
        assert all(abs((c - 1) - s) < 1 for c, s in zip(counts.tolist(), shares))
        assert counts.tolist() == reference_counts(hist)
        # a symbol that occurs more often never gets fewer counts; equal ones favour the lower symbol
        steps = np.diff(counts[np.lexsort((-np.arange(n), hist))])
        assert steps.min(initial=0) >= 0
        np.testing.assert_array_equal(Table.from_histogram(-3, hist.copy()).counts, table.counts)  # deterministic
        table.validate(0)


def test_table_from_histogram_known_values() -> None:
    assert Table.from_histogram(0, [5]).counts.tolist() == [TOTAL]  # one symbol: all of 2**15
    # 32765 spare counts over three equal symbols: 10921 each and two left, to the two lowest symbols
    assert Table.from_histogram(-1, [1, 1, 1]).counts.tolist() == [10923, 10923, 10922]
    # shares 24573.75, 0, 8191.25: floors 24573, 0, 8191, the one left to the largest remainder
    assert Table.from_histogram(0, [3, 0, 1]).counts.tolist() == [24575, 1, 8192]
    # a total near 2**24: h * R needs more than 32 bits and stays exact
    total = C.MAX_TOTAL_LATENTS - 1
    hist = [total // 2, total - total // 2]
    assert Table.from_histogram(0, hist).counts.tolist() == reference_counts(hist)


@pytest.mark.parametrize(
    "hist",
    [[], np.zeros(C.MAX_TABLE_SYMBOLS + 1, np.int64) + 1, [3, -1, 2], [0, 0], [0]],
    ids=["empty", "4097_symbols", "negative", "all_zero", "one_zero"],
)
def test_table_from_histogram_rejects(hist) -> None:
    with pytest.raises(ShcFormatError, match="table histogram needs"):
        Table.from_histogram(0, np.asarray(hist, dtype=np.int64))


def test_file_decodes_with_the_table_derived_from_its_histogram() -> None:
    """Nothing learned in floats reaches the coder: the table is a function of the stored integers only.
    Decoding the same words with the table of another histogram (the same total) is an error, never
    silently the stored latents: either the range decoder meets data its model cannot have produced, or
    the latents it produces contradict the histogram."""
    config = ModelConfig(num_levels=1, log2_hashmap_size=10)
    built = build(config=config, cells=((40, 20),), table_specs=[(np.ones(3), -1)])
    parsed = read_file(built.data)
    hist = parsed.tables[0].histogram
    np.testing.assert_array_equal(parsed.tables[0].counts, Table.from_histogram(-1, hist).counts)
    decoded = decode_latents(parsed.header, parsed.tables, parsed.latent_segments)[0]
    np.testing.assert_array_equal(decoded, built.latents[0])
    # the range decoder's own error is wrapped; the histogram check raises its own message
    invalid = "^latent segment 0 could not be range-decoded: .*invalid for the employed entropy model"
    # decoded to the end with the wrong model: words are left over (checked per segment, before the histograms),
    # or, if the words happen to run out, the latents contradict the stored histogram
    wrong = (r"^(latent segment 0 holds more data than its latents use"
             r"|LATN section: the decoded latents do not match table 0's histogram \(corrupted data\))$")
    for change, reason in [([-100, 50, 50], invalid), ([50, -100, 50], wrong), ([-1, 1, 0], wrong)]:
        other = Table.from_histogram(-1, hist + np.array(change))
        assert not np.array_equal(other.counts, parsed.tables[0].counts)
        with pytest.raises(ShcFormatError, match=reason):
            decode_latents(parsed.header, (other,), parsed.latent_segments)


# ---------------------------------------------------------------------------------------------- exp-Golomb


def test_exp_golomb_test_vector() -> None:
    """SPEC §3a: 0, 1, 2, 3, 4 in order 0 are 1 010 011 00100 00101 (17 bits, zero-padded to 3 bytes)."""
    assert [eg_bits(n, 0) for n in range(5)] == ["1", "010", "011", "00100", "00101"]
    expected = bytes([0b10100110, 0b01000010, 0b10000000])
    assert pack([(np.arange(5), 0)]) == expected == bits_to_bytes("10100110010000101")
    assert pack([(zigzag(np.array([0, -1, 1, -2, 2])), 0)]) == expected  # signed: 0, -1, 1, -2, 2 -> 0..4
    assert zigzag(np.array([0, -1, 1, -2, 2, -32767, 32767])).tolist() == [0, 1, 2, 3, 4, 65533, 65534]
    # order 1: m = n + 2 -> 10, 11, 0100, 0101; order 2: 100, 101, 110, 111, 01000
    assert pack([(np.arange(4), 1)]) == bits_to_bytes("1011" "0100" "0101")
    assert pack([(np.arange(5), 2)]) == bits_to_bytes("100101110111" "01000")
    reader = BitReader(expected, "test")
    assert [reader.unsigned(0, "x") for _ in range(5)] == [0, 1, 2, 3, 4]
    reader.expect_end()
    reader = BitReader(expected, "test")
    assert reader.signed_array(5, 0, "x").tolist() == [0, -1, 1, -2, 2]
    reader.expect_end()


@pytest.mark.parametrize("order", range(17))
def test_exp_golomb_round_trip(order: int) -> None:
    rng = np.random.default_rng(order)
    magnitudes = rng.integers(0, 1 << rng.integers(0, 24, 300))  # every bit length up to 24
    unsigned = np.concatenate([[0, 1, (1 << order) - 1, 1 << order, (1 << order) + 1], magnitudes]).astype(np.int64)
    signed = np.concatenate([[0, -1, 1, C.WEIGHT_CODE_MAX, -C.WEIGHT_CODE_MAX], magnitudes * rng.choice([-1, 1], 300)])
    other = (order * 7) % 17
    data = pack([(unsigned, order), (zigzag(signed), other)])
    bits = "".join(eg_bits(n, order) for n in unsigned) + "".join(signed_eg_bits(v, other) for v in signed)
    assert data == bits_to_bytes(bits)  # the independent writer
    assert code_bits(unsigned, order) + code_bits(zigzag(signed), other) == len(bits)
    reader = BitReader(data, "test")
    np.testing.assert_array_equal(reader.unsigned_array(unsigned.size, order, "u"), unsigned)
    np.testing.assert_array_equal(reader.signed_array(signed.size, other, "s"), signed)
    reader.expect_end()
    assert best_order(unsigned) == shortest_order(unsigned)


def test_exp_golomb_reader_errors() -> None:
    # the longest zero prefix a reader accepts is 32: order 0, m = 2**33 - 1 (n = 2**33 - 2) is the largest
    longest = (1 << (MAX_PREFIX_ZEROS + 1)) - 2
    assert BitReader(bits_to_bytes(eg_bits(longest, 0)), "t").unsigned(0, "n") == longest
    with pytest.raises(ShcFormatError, match=r"t: invalid code for n \(33 leading zero bits\)"):
        BitReader(bits_to_bytes(eg_bits(longest + 1, 0)), "t").unsigned(0, "n")
    with pytest.raises(ShcFormatError, match="t: truncated while reading n"):
        BitReader(b"", "t").unsigned(0, "n")
    with pytest.raises(ShcFormatError, match="t: truncated while reading n"):
        BitReader(b"\x00\x00", "t").unsigned(0, "n")  # zeros only
    with pytest.raises(ShcFormatError, match="t: truncated while reading n"):
        BitReader(bytes([0b00000001]), "t").unsigned(0, "n")  # 7 zeros need 8 more bits, 1 is left
    assert BitReader(bits_to_bytes("0001"), "t").unsigned(0, "n") == 7  # 0001 000(0): m = 8, the padding completes it
    reader = BitReader(bytes([0b10000001]), "t")
    assert reader.unsigned(0, "n") == 0
    with pytest.raises(ShcFormatError, match="t: 7 unexpected trailing bits"):
        reader.expect_end()  # padding must be zeros
    reader = BitReader(bytes([0b10000000, 0]), "t")
    assert reader.unsigned(0, "n") == 0
    with pytest.raises(ShcFormatError, match="t: 15 unexpected trailing bits"):
        reader.expect_end()  # at most 7 bits of padding


# ---------------------------------------------------------------------------------------------- malformed files


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_every_truncation_is_a_clean_error(name: str) -> None:
    data = golden_bytes(name)
    for length in range(len(data)):
        with pytest.raises(ShcFormatError, match="truncated|wrong magic"):
            decode_bytes(data[:length])


def test_container_errors_have_distinct_messages() -> None:
    data = golden_bytes(GOLDEN_NAMES[0])
    segment_bytes = len(file_parts(data)[1])
    assert segment_bytes > 10 and len(section_payload(data, b"LATN")) == 8  # one segment
    index_corrupted = bytearray(data)
    index_corrupted[len(data) - segment_bytes - 4 - 3] ^= 0x01  # inside the LATN payload: the segment index
    segment_corrupted = bytearray(data)
    segment_corrupted[-10] ^= 0x01  # inside the segment, after LATN
    readable = ", ".join(map(str, C.READABLE_VERSIONS))
    cases = {
        "magic": (b"PNG\x1a" + data[4:], r"^not an \.shc file \(wrong magic bytes\)$"),
        "version": (
            C.MAGIC + bytes([C.FORMAT_VERSION + 1]) + data[5:],
            rf"^unsupported \.shc format version {C.FORMAT_VERSION + 1} \(this decoder reads versions {readable}\)$",
        ),
        "crc": (bytes(index_corrupted), r"^section LATN is corrupted \(CRC32 mismatch\)$"),
        "segment_crc": (bytes(segment_corrupted), r"^latent segment 0 is corrupted \(CRC32 mismatch\)$"),
        "segment_cut": (data[:-3], rf"^the file is truncated \({len(data) - 3} of {len(data)} bytes\): not even its first level is complete$"),
        "trailing": (data + b"\x00\x01\x02", r"^3 bytes of trailing garbage after the last section$"),
    }
    assert readable == "2, 3, 4, 5, 6, 7"
    messages = set()
    for bad, match in cases.values():
        with pytest.raises(ShcFormatError, match=match) as info:
            decode_bytes(bad)
        messages.add(str(info.value))
    assert len(messages) == len(cases)


@functools.cache
def _valid_small() -> Built:
    return build(**ENTROPY_CASES["two_symbols"])


def _weights(step: float = 0.01, value: int = 1, orders=None, extra_bits: str = "", cut: int = 0) -> bytes:
    """A version-4 WGHT payload for ``_valid_small()``: every step and every value as given."""
    header = _valid_small().header
    shapes = weight_shapes(header)
    values = np.full(sum(int(np.prod(s)) for _, s in shapes), value, dtype=np.int64)
    payload = hand_weights(header, [step] * len(shapes), values, orders, extra_bits)
    return payload[: len(payload) - cut]


def _real_weights(extra_bits: str = "", cut: int = 0) -> bytes:
    """``_valid_small()``'s own WGHT payload, by hand, with bits appended or bytes cut off."""
    built = _valid_small()
    payload = hand_weights(built.header, built.weights.scales, built.weights.values, None, extra_bits)
    return payload[: len(payload) - cut]


def _with(tag: bytes, payload: bytes) -> bytes:
    return replace_section(_valid_small().data, tag, payload)


def _with_segments(segments) -> bytes:
    return with_segments(_valid_small().data, segments)


def _small_words() -> bytes:
    """``_valid_small()``'s one latent segment."""
    (words,) = _valid_small().words
    return words.astype("<u4").tobytes()


def _tabl(min_symbol: int, histogram, order: int = 0, size: int | None = None, extra_bits: str = "") -> bytes:
    """A version-4 TABL payload of one table (``_valid_small()`` codes 42 latents with one table)."""
    return bits_to_bytes(hand_table_bits(min_symbol, histogram, order, size) + extra_bits)


def _tabl_head_only(min_symbol: int, size: int, order: int) -> bytes:
    return bits_to_bytes(signed_eg_bits(min_symbol, 0) + eg_bits(size - 1, 0) + eg_bits(order, 0))


def _real_tabl(extra_bits: str = "") -> bytes:
    return hand_tables(_valid_small().tables, extra_bits)


SMALL_LATENTS = 42  # ENTROPY_CASES["two_symbols"]: 7 x 6 vertices, dense
WRAPS = [SMALL_LATENTS - 1] + [1 << 56] * 256 + [1]  # sums to 42 + 2**64: wraps around to 42 in int64

MALFORMED = {
    # name: (bytes builder, message pattern)
    "empty": (lambda: b"", "wrong magic"),
    "section_out_of_order": (
        lambda: PREFIX + frame(b"WGHT", b"") + frame(b"HEAD", b"") + frame(b"TABL", b"") + frame(b"LATN", b""),
        r"expected section HEAD, found tag b'WGHT'",
    ),
    "section_length_over_limit": (
        lambda: PREFIX + b"HEAD" + struct.pack("<I", 0xFFFFFFFF),
        "declares 4294967295 bytes, more than the limit 268435456",
    ),
    "section_length_past_end": (
        lambda: PREFIX + b"HEAD" + struct.pack("<I", 1000) + bytes(20),
        "truncated while reading HEAD section payload",
    ),
    "head_too_short": (lambda: container(b"\x01\x00"), "truncated while reading image size"),
    "head_extra_bytes": (lambda: container(head_payload() + b"\x00"), "HEAD section: 1 unexpected trailing bytes"),
    "head_u32_cells": (  # a version-3 HEAD in a version-4 file: 4 bytes too long per level (if version 4 has an
        # interpolation byte, the first u32 nx = 4 is read as interpolation = 4 first)
        lambda: container(head_payload(version=3)), "HEAD section: 4 unexpected trailing bytes|interpolation=4"
    ),
    # WGHT (version 4): steps and orders at a 5-byte stride, then one exp-Golomb bit stream
    "weights_truncated_heads": (
        lambda: _with(b"WGHT", b"\x00\x3c" * 3),
        r"WGHT section: truncated while reading latent_decoder.bias step and order",
    ),
    "weights_no_codes": (
        lambda: _with(b"WGHT", _weights()[: 5 * len(weight_shapes(_valid_small().header))]),
        r"WGHT section: truncated while reading latent_decoder.weight values",
    ),
    "weights_truncated_codes": (lambda: _with(b"WGHT", _real_weights(cut=1)), r"WGHT section: truncated while reading"),
    "weights_trailing_one_bit": (
        lambda: _with(b"WGHT", _weights(extra_bits="1")), r"WGHT section: \d+ unexpected trailing bits"
    ),
    "weights_trailing_code": (
        lambda: _with(b"WGHT", _real_weights(extra_bits=eg_bits(5, 0))), r"WGHT section: \d+ unexpected trailing bits"
    ),
    "weights_trailing_zero_byte": (
        lambda: _with(b"WGHT", _weights() + b"\x00"), r"WGHT section: (8|9|1[0-5]) unexpected trailing bits"
    ),
    "weights_order_above_max": (
        lambda: _with(b"WGHT", _weights(orders=[MAX_ORDER + 1] * 6)),
        rf"WGHT section: latent_decoder.weight order {MAX_ORDER + 1} is above {MAX_ORDER}",
    ),
    "weights_order_255": (
        lambda: _with(b"WGHT", _weights(orders=[0, 0, 255, 0, 0, 0])), r"mlp.0.weight order 255 is above 24"
    ),
    "weights_value_beyond_max": (
        lambda: _with(b"WGHT", _weights(value=C.WEIGHT_CODE_MAX + 1)), r"weight outside \[-32767, 32767\]"
    ),
    "weights_value_below_min": (
        lambda: _with(b"WGHT", _weights(value=-C.WEIGHT_CODE_MAX - 1)), r"weight outside \[-32767, 32767\]"
    ),
    "weights_value_huge": (lambda: _with(b"WGHT", _weights(value=1 << 31)), r"weight outside \[-32767, 32767\]"),
    "weights_prefix_too_long": (
        lambda: _with(b"WGHT", _weights()[:30] + b"\x00" * 5 + b"\x80"), r"WGHT section: invalid code for .* leading"
    ),
    "weights_nan_step": (lambda: _with(b"WGHT", _weights(step=float("nan"))), "non-finite or negative weight scale"),
    "weights_inf_step": (lambda: _with(b"WGHT", _weights(step=float("inf"))), "non-finite or negative weight scale"),
    "weights_negative_step": (lambda: _with(b"WGHT", _weights(step=-1.0)), "non-finite or negative weight scale"),
    # TABL (version 4): one bit stream of exp-Golomb codes
    "table_empty": (lambda: _with(b"TABL", b""), "TABL section: truncated while reading table 0 min_symbol"),
    "table_truncated_histogram": (
        lambda: _with(b"TABL", _tabl_head_only(-1, 2, 0)), "TABL section: truncated while reading table 0 histogram"
    ),
    "table_too_many_symbols": (lambda: _with(b"TABL", _tabl_head_only(0, 4097, 0)), "table 0 has 4097 symbols"),
    "table_order_above_max": (lambda: _with(b"TABL", _tabl_head_only(-1, 2, MAX_ORDER + 1)), "or order 25 > 24"),
    "table_symbol_range": (lambda: _with(b"TABL", _tabl(C.MAX_SYMBOL, [21, 21])), "exceeds"),
    "table_symbol_far_out": (lambda: _with(b"TABL", _tabl(-(1 << 31), [21, 21])), "exceeds"),
    "table_prefix_too_long": (
        lambda: _with(b"TABL", bits_to_bytes("0" * 33 + "1")), r"invalid code for table 0 min_symbol \(33 leading"
    ),
    "table_sum_low": (
        lambda: _with(b"TABL", _tabl(-1, [20, 21])), "table 0 histogram counts 41 latents, the header implies 42"
    ),
    "table_sum_high": (
        lambda: _with(b"TABL", _tabl(-1, [22, 21])), "table 0 histogram counts 43 latents, the header implies 42"
    ),
    "table_sum_one_symbol": (
        lambda: _with(b"TABL", _tabl(0, [41])), "table 0 histogram counts 41 latents, the header implies 42"
    ),
    "table_first_zero": (lambda: _with(b"TABL", _tabl(-2, [0, 21, 21])), "first and last symbols must occur"),
    "table_last_zero": (lambda: _with(b"TABL", _tabl(-1, [21, 21, 0])), "first and last symbols must occur"),
    "table_sum_wraps_around": (lambda: _with(b"TABL", _tabl(-1, WRAPS, order=24)), "table 0"),
    "table_trailing_one_bit": (lambda: _with(b"TABL", _real_tabl("1")), r"TABL section: \d unexpected trailing bits"),
    "table_trailing_zero_byte": (
        lambda: _with(b"TABL", _real_tabl() + b"\x00"), r"TABL section: (8|9|1[0-5]) unexpected trailing bits"
    ),
    "table_extra_table": (
        lambda: _with(b"TABL", _real_tabl(hand_table_bits(0, [42]))), r"TABL section: \d+ unexpected trailing bits"
    ),
    # LATN (version 7): the segment index, then the segments (each with the length and CRC32 its entry gives)
    "latents_not_words": (lambda: _with_segments([b"\x00" * 5]), "^latent segment 0 length 5 is not a multiple of 4$"),
    "latents_too_long": (
        lambda: _with_segments([_small_words() + b"\x01\x00\x00\x00" * 4]),
        "^latent segment 0 (holds more data than its latents use|could not be range-decoded)",
    ),
    "latents_garbage": (lambda: _with_segments([b"\xff" * 12]), "^latent segment 0 could not be range-decoded"),
    "latents_empty": (lambda: _with_segments([b""]), "^LATN section: the decoded latents do not match table 0's histogram"),
    "index_short": (lambda: _with(b"LATN", b"\x00" * 5),
                    r"^LATN section has 5 bytes, the index of 1 latent segments needs 8$"),
    "index_empty": (lambda: _with(b"LATN", b""), r"^LATN section has 0 bytes, the index of 1 latent segments needs 8$"),
    "index_two_entries": (  # one segment split in two: the layout has one
        lambda: _with_segments([_small_words()[:8], _small_words()[8:]]),
        r"^LATN section has 16 bytes, the index of 1 latent segments needs 8$",
    ),
    "index_length_over_limit": (
        lambda: _with(b"LATN", struct.pack("<II", 0xFFFFFFFC, 0)),
        r"^latent segment 0 declares 4294967292 bytes, more than the limit 268435456$",
    ),
    "index_length_past_end": (
        lambda: _with(b"LATN", struct.pack("<II", len(_small_words()) + 4, zlib.crc32(_small_words()))),
        r"^the file is truncated \(158 of 162 bytes\): not even its first level is complete$",
    ),
    "index_length_short": (  # the CRC of the shorter segment: its last word is left over
        lambda: _with(b"LATN", struct.pack("<II", len(_small_words()) - 4, zlib.crc32(_small_words()[:-4]))),
        r"^4 bytes of trailing garbage after the last section$",
    ),
    "index_crc": (
        lambda: _with(b"LATN", struct.pack("<II", len(_small_words()), zlib.crc32(_small_words()) ^ 1)),
        r"^latent segment 0 is corrupted \(CRC32 mismatch\)$",
    ),
    "segment_missing": (lambda: _valid_small().data[: -len(_small_words())], r"^the file is truncated \(150 of 158 bytes\)"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_files_are_clean_errors(case: str) -> None:
    make, match = MALFORMED[case]
    with pytest.raises(ShcFormatError, match=match):
        decode_bytes(make())


def test_weight_and_table_edge_values_decode() -> None:
    """The valid side of the checks above: values of +-WEIGHT_CODE_MAX, a zero or -0 step, any order up to
    MAX_ORDER, a zero histogram entry inside the range, trailing zero padding of up to 7 bits."""
    header = _valid_small().header
    n = len(weight_shapes(header))
    for payload in (
        _weights(value=C.WEIGHT_CODE_MAX), _weights(value=-C.WEIGHT_CODE_MAX), _weights(step=0.0),
        _weights(step=-0.0), _weights(orders=[MAX_ORDER] * n), _weights(orders=list(range(n))),
    ):
        assert decode_bytes(_with(b"WGHT", payload)).shape == (12, 20, 3)
    parsed = read_file(_with(b"WGHT", _weights(value=-C.WEIGHT_CODE_MAX, step=0.5)))
    assert set(parsed.weights.values.tolist()) == {-C.WEIGHT_CODE_MAX}
    assert set(parsed.weights.dequantized(header).tolist()) == {-16383.5}
    hist = _valid_small().tables[0].histogram
    assert decode_bytes(_with(b"TABL", _tabl(-1, hist, order=MAX_ORDER))).shape == (12, 20, 3)


def test_latents_that_contradict_the_histograms_are_refused() -> None:
    """LATN words that range-decode fine but to latents whose histogram is not the stored one: the words
    were coded with the stored tables, but from other latents (in range, another histogram)."""
    built = build(**ENTROPY_CASES["groups_and_dims"])
    assert decode_bytes(built.data).shape == (12, 20, 3)
    for table, (level, dim) in [(1, (0, 1)), (3, (2, 1))]:  # table = group * latent_dim + dim
        latents = [lat.copy() for lat in built.latents]
        column = latents[level][:, dim]
        spot = int(np.flatnonzero(column != column.max())[0])
        column[spot] += 1  # still inside the table's range
        words = encode_latents(built.header, built.tables, latents)
        data = with_segments(built.data, [w.astype("<u4").tobytes() for w in words])
        with pytest.raises(ShcFormatError, match=rf"the decoded latents do not match table {table}'s histogram"):
            decode_bytes(data)


LIMITS = {
    # name: (head_payload fields, message pattern)
    "width_over_limit": (
        dict(width=C.MAX_IMAGE_SIDE + 1), r"width=1048577 is outside the allowed range \[1, 1048576\]"
    ),
    "width_u32_max": (dict(width=0xFFFFFFFF), r"width=4294967295 is outside"),
    "height_zero": (dict(height=0), r"height=0 is outside"),
    "too_many_levels": (dict(num_levels=33, num_groups=1), r"num_levels=33 is outside the allowed range \[1, 32\]"),
    "255_levels_no_cells": (dict(num_levels=255, cells=[]), r"num_levels=255 is outside"),  # before reading cells
    "log2_hashmap_size": (dict(log2_hashmap_size=25), r"log2_hashmap_size=25 is outside"),
    "latent_dim": (dict(latent_dim=9), r"latent_dim=9 is outside"),
    "mlp_width": (dict(mlp_width=65535), r"mlp_width=65535 is outside"),
    "groups_over_levels": (dict(num_levels=2, num_groups=3), r"num_groups=3 is outside the allowed range \[1, 2\]"),
    "cells_over_limit_v3": (  # u32 cells (versions 2-3) can say more than 2**20; u16 ones cannot
        dict(cells=[(C.MAX_GRID_CELLS_PER_SIDE + 1, 4)], version=3), r"level 0 nx=1048577 is outside"
    ),
    "cells_zero": (dict(cells=[(4, 0)]), r"level 0 ny=0 is outside"),
    "channels_2": (dict(channels=2), r"channels=2 is outside the allowed range \[3, 4\] \(3: RGB, 4: RGBA\)"),
    "channels_255": (dict(channels=255), r"channels=255 is outside the allowed range \[3, 4\]"),
    "cells_zero_v3": (dict(cells=[(0, 4)], version=3), r"level 0 nx=0 is outside"),
    "total_latents": (
        dict(num_levels=2, log2_hashmap_size=24, cells=[(4095, 4095)] * 2),  # 2 hashed levels of 2**24 rows
        r"declares 33554432 latents, more than the limit 16777216",
    ),
    "total_latents_dims": (
        dict(num_levels=1, log2_hashmap_size=24, latent_dim=2, cells=[(4095, 4095)]),
        r"declares 33554432 latents, more than the limit 16777216",
    ),
    "total_latents_u16_cells": (
        dict(num_levels=2, log2_hashmap_size=24, cells=[(C.MAX_CELLS_U16, C.MAX_CELLS_U16)] * 2),
        r"declares 33554432 latents, more than the limit 16777216",
    ),
}


@pytest.mark.parametrize("case", LIMITS)
def test_header_limits_are_refused_before_allocation(case: str) -> None:
    fields, match = LIMITS[case]
    data = container(head_payload(**fields), version=fields.get("version", C.FORMAT_VERSION))
    tracemalloc.start()  # numpy reports its buffers to tracemalloc too
    try:
        with pytest.raises(ShcFormatError, match=match):
            decode_bytes(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated before refusing"


def test_head_layout_per_version() -> None:
    """SPEC §2: 20 + 4 L bytes (version 6), 19 + 4 L (version 5), 18 + 4 L with u16 cells (version 4),
    17 + 8 L with u32 (3), 16 + 8 L (2)."""
    assert FIXED == 20
    assert [head_payload_bytes(levels) for levels in (0, 1, 12)] == [FIXED, FIXED + 4, FIXED + 48]
    assert [head_payload_bytes(levels, version=5) for levels in (0, 1, 12)] == [19, 23, 67]
    assert [head_payload_bytes(levels, version=4) for levels in (0, 1, 12)] == [18, 22, 66]
    assert head_layout(0)[-3:] == [("interpolation", "B", 17), ("channels", "B", 18), ("context_width", "B", 19)]
    assert head_layout(0, version=5)[-1] == ("channels", "B", 18)
    assert [head_payload_bytes(levels, version=3) for levels in (0, 1, 12)] == [17, 25, 113]
    assert [head_payload_bytes(levels, version=2) for levels in (0, 1, 12)] == [16, 24, 112]
    assert head_layout(2)[-4:] == [("level0.nx", "H", FIXED), ("level0.ny", "H", FIXED + 2),
                                   ("level1.nx", "H", FIXED + 4), ("level1.ny", "H", FIXED + 6)]
    assert head_layout(1, version=3)[-2:] == [("level0.nx", "I", 17), ("level0.ny", "I", 21)]
    assert len(head_payload(num_levels=3, cells=[(1, 2)] * 3)) == head_payload_bytes(3)
    assert len(head_payload(num_levels=3, cells=[(1, 2)] * 3, version=3)) == head_payload_bytes(3, version=3)


def test_huge_output_is_refused_before_decoding() -> None:
    data = golden_bytes(GOLDEN_NAMES[0])
    tracemalloc.start()
    try:
        with pytest.raises(ShcFormatError, match="exceeds the limit of 4000000 pixels"):
            decode_bytes(data, size=(100_000, 100_000), max_pixels=4_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


# ---------------------------------------------------------------------------------------------- output size


def _header(width: int = 64, height: int = 48) -> Header:
    return Header(width, height, ModelConfig(num_levels=1, log2_hashmap_size=8), ((4, 3),))


def test_output_size() -> None:
    header = _header()
    assert output_size(header) == (64, 48)
    assert output_size(header, scale=0.5) == (32, 24)
    assert output_size(header, scale=2) == (128, 96)
    assert output_size(header, scale=1e-9) == (1, 1)  # never below one pixel
    assert output_size(header, size=(37, 21)) == (37, 21)
    assert output_size(_header(63, 65), scale=0.5) == (32, 32)  # Python round(): halves go to even (31.5, 32.5)
    assert output_size(header, max_pixels=64 * 48) == (64, 48)
    assert output_size(header, scale=1e6, max_pixels=None) == (64_000_000, 48_000_000)
    with pytest.raises(ShcFormatError, match="3072 pixels exceeds the limit of 3071 pixels"):
        output_size(header, max_pixels=64 * 48 - 1)
    with pytest.raises(ShcFormatError, match="exceeds the limit"):
        output_size(header, scale=1000)  # default limit: about 179 Mpixels


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(scale=2, size=(4, 4)), "either scale or size"),
        (dict(scale=0), "positive finite"),
        (dict(scale=-1.0), "positive finite"),
        (dict(scale=float("nan")), "positive finite"),
        (dict(scale=float("inf")), "positive finite"),
        (dict(size=(0, 5)), "size must be positive"),
    ],
)
def test_output_size_rejects_bad_requests(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        output_size(_header(), **kwargs)
    assert not isinstance(info.value, ShcFormatError)


# ---------------------------------------------------------------------------------------------- golden files


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_file_decodes_to_stored_pixels(name: str) -> None:
    entry = GOLDEN["files"][name]
    data = golden_bytes(name)
    assert sha256(data) == entry["sha256"], "the golden .shc file itself changed"
    assert len(data) < 30_000
    first, second = decode_bytes(data), decode_bytes(data)
    assert first.shape == (entry["height"], entry["width"], entry["channels"]) and first.dtype == np.uint8
    assert sha256(first.tobytes()) == entry["decoded_sha256"], "the normative decoder's output changed"
    np.testing.assert_array_equal(first, second)
    with Image.open(DATA_DIR / entry["decoded_png"]) as png:
        np.testing.assert_array_equal(np.asarray(png.convert("RGBA" if entry["channels"] == 4 else "RGB")), first)
        icc = png.info.get("icc_profile")  # the decoded PNG carries the file's profile (iCCP)
        assert (None if icc is None else sha256(icc)) == entry.get("icc_profile_sha256")
    parsed = read_file(data)
    assert parsed.header.config.channels == entry["channels"]
    for attribute in ("icc_profile", "exif"):
        value = getattr(parsed, attribute)
        assert (None if value is None else sha256(value)) == entry.get(f"{attribute}_sha256")


def _make_golden():
    """``tests/data/make_golden.py`` as a module (torch-free at import): its ``RESCALED`` sizes and their
    ``decode_kwargs``, the one definition of what ``rescaled_sha256`` pins."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_golden", DATA_DIR / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_GOLDEN = _make_golden()


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_file_decodes_at_any_size(name: str) -> None:
    """Any-resolution decoding is pinned like the native size: the pixels (not only the shape) at each
    size of ``make_golden.RESCALED``."""
    entry = GOLDEN["files"][name]
    data = golden_bytes(name)
    width, height, channels = entry["width"], entry["height"], entry["channels"]
    assert sorted(entry["rescaled_sha256"]) == sorted(MAKE_GOLDEN.RESCALED)
    for key, expected in entry["rescaled_sha256"].items():
        kwargs = MAKE_GOLDEN.decode_kwargs(key)
        pixels = decode_bytes(data, **kwargs)
        if "scale" in kwargs:
            shape = (max(1, round(height * kwargs["scale"])), max(1, round(width * kwargs["scale"])), channels)
        else:
            shape = (kwargs["size"][1], kwargs["size"][0], channels)
        assert pixels.shape == shape and pixels.dtype == np.uint8, key
        assert sha256(pixels.tobytes()) == expected, f"the normative decoder's output at {key} changed"


FLAT_GOLDEN = {"parrot_64x48_q1.shc", "parrot_p3_64x48_q1.shc"}
"""Golden files whose every latent is 0 (40 steps at quality 1): they decode to one colour at every size,
so their pins check the MLP and the container, not the grid; the others must carry an image."""


def test_the_golden_set_pins_real_images() -> None:
    flat = set()
    for name in GOLDEN_NAMES:
        pixels = decode_bytes(golden_bytes(name), size=(37, 21))
        if np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0).shape[0] == 1:
            flat.add(name)
    assert flat == FLAT_GOLDEN
    assert len(GOLDEN_NAMES) - len(flat) >= 3


def test_the_golden_set_pins_both_ways_of_coding_latents() -> None:
    """Version 6 golden files whose dense levels are coded under the encoder's context network (SPEC §5a:
    levels 1.. with one table left, for level 0) and files without one (a table per group): both decoding
    paths are pinned by real encodes."""
    with_context = set()
    for name in GOLDEN_NAMES:
        parsed = read_file(golden_bytes(name))
        layout = parsed.header.layout
        assert parsed.header.config.context_width == (0 if parsed.context is None else parsed.context.width)
        if parsed.context is not None:
            with_context.add(name)
            assert [level.index for level in layout.context_levels] == [
                level.index for level in layout.levels if level.dense and level.index >= 1]
            assert len(parsed.tables) == len(layout.table_keys) < parsed.header.config.num_tables
        else:
            assert len(parsed.tables) == parsed.header.config.num_tables
    assert with_context and with_context != set(GOLDEN_NAMES)


def untiled(synthesis: Synthesis, width: int, height: int) -> np.ndarray:
    """The whole ``width x height`` output as one tile: one blend of every pixel, one MLP product."""
    features = synthesis.tile_features(width, height, np.arange(width), np.arange(height))
    return to_uint8(synthesis.mlp(features).T).reshape(height, width, -1)


TILINGS = [((7, 5), (1, 2, 7, 12)), ((1, 9), (1, 2)), ((203, 5), (40, 300)), ("native", (1000,))]
"""(output size, tile sizes in pixels): tiles of 1 and 2 pixels (every tile a single pixel or a pair), tiles
narrower than a row (column tiles, the last one short), strips of whole rows with a short last strip."""


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_tiled_rendering_is_bit_identical_to_untiled(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pixel's value does not depend on the tile it is rendered in (SPEC §7, tiles): small tiles and
    crops give exactly the pixels of one untiled evaluation."""
    parsed = read_file(golden_bytes(name))
    synthesis = Synthesis(parsed, file_latents(parsed))
    for size, tiles in TILINGS:
        width, height = (parsed.header.width, parsed.header.height) if size == "native" else size
        reference = untiled(synthesis, width, height)
        for tile_pixels in tiles:
            monkeypatch.setattr(C, "DECODE_TILE_PIXELS", tile_pixels)
            np.testing.assert_array_equal(synthesis.render(width, height), reference,
                                          err_msg=f"{width}x{height} in tiles of {tile_pixels}")
        box = (width // 3, height // 4, width - width // 5, height)
        np.testing.assert_array_equal(synthesis.render(width, height, box), reference[box[1]:, box[0] : box[2]])


def test_a_row_wider_than_a_tile_renders_like_one_tile() -> None:
    """With the real tile size: a row wider than a tile is rendered in column tiles (the last one 5 pixels
    wide), and equals one untiled evaluation."""
    data = golden_bytes("parrot_128x96_q3.shc")
    parsed = read_file(data)
    synthesis = Synthesis(parsed, file_latents(parsed))
    wide_width = C.DECODE_TILE_PIXELS + 5
    np.testing.assert_array_equal(decode_bytes(data, size=(wide_width, 1)), untiled(synthesis, wide_width, 1))


def test_mlp_of_a_pixel_does_not_depend_on_its_tile() -> None:
    """Below the 8-bit rounding: the float MLP output of every pixel is the same bits whether it is
    evaluated with all the others, in chunks of any width, or alone (a one-column product must not take
    BLAS's matrix-vector path, which sums in another order)."""
    parsed = read_file(golden_bytes("lighthouse_96x128_q5.shc"))
    synthesis = Synthesis(parsed, file_latents(parsed))
    width, height = 101, 67
    features = synthesis.tile_features(width, height, np.arange(width), np.arange(height))
    whole = synthesis.mlp(features.copy())
    for chunk in (1, 2, 3, 16, 31, 1000):
        parts = [synthesis.mlp(features[:, start : start + chunk].copy()) for start in range(0, features.shape[1], chunk)]
        np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole, err_msg=f"chunks of {chunk}")
    alone = [synthesis.mlp(features[:, [k]].copy()) for k in range(0, features.shape[1], 97)]
    np.testing.assert_array_equal(np.concatenate(alone, axis=1), whole[:, ::97])


# ---------------------------------------------------------------------------------------------- grid


def test_spatial_hash_test_vector() -> None:
    """Hand-computed hashes: h(x, y) = ((x * 1) XOR (y * 2654435761 mod 2**32)) mod 2**log2_hashmap_size.

    Table of 2**4 rows, level of 15 x 15 cells (256 vertices > 16 rows, so the level is hashed); the point
    (3.25, 5.5) in grid units lies in cell (3, 5), its corners are (3,5), (4,5), (3,6), (4,6):
      y = 5: 5 * 2654435761 = 13272178805 = 3 * 2**32 + 387276917, and 387276917 = 0x1715_6075 -> low 4 bits 0101 = 5
      y = 6: 6 * 2654435761 = 15926614566 = 3 * 2**32 + 3041712678, 3041712678 = 0xB54C_DA26 -> low 4 bits 0110 = 6
      (3,5): 0011 ^ 0101 = 0110 = 6    (4,5): 0100 ^ 0101 = 0001 = 1
      (3,6): 0011 ^ 0110 = 0101 = 5    (4,6): 0100 ^ 0110 = 0010 = 2
    Bilinear weights with fx = 0.25, fy = 0.5: (0.75 * 0.5, 0.25 * 0.5, 0.75 * 0.5, 0.25 * 0.5).

    Table of 2**20 rows, level of 4095 x 4095 cells, point (1000.5, 2000.5), corner (1000, 2000):
      2000 * 2654435761 = 5308871522000 = 1236 * 2**32 + 291944144, and 291944144 = 0x1166_B6D0
      1000 = 0x0000_03E8; 0x1166_B6D0 ^ 0x0000_03E8 = 0x1166_B538; mod 2**20 -> 0x6_B538 = 439608
    (Since 2**32 is a multiple of every table size, wrapping in uint32 never changes the index.)
    """
    # pixel 6 of 30 sits at 13/60 * 15 = 3.25, pixel 5 of 15 at 11/30 * 15 = 5.5
    idx, w = corner_indices_weights(np.array([6]), np.array([5]), 30, 15, 15, 15, 4)
    assert idx.tolist() == [[6, 1, 5, 2]]
    np.testing.assert_array_equal(w, np.array([[0.375, 0.125, 0.375, 0.125]], dtype=np.float32))
    assert level_num_rows(15, 15, 4) == (16, False)

    idx, _ = corner_indices_weights(np.array([1000]), np.array([2000]), 4095, 4095, 4095, 4095, 20)
    assert idx[0, 0] == 439608
    assert (1000 ^ (2000 * 2654435761 % 2**32)) % 2**20 == 439608  # the same, in Python integers


def test_dense_levels_index_rows_directly() -> None:
    # 4 x 3 cells: 5 x 4 = 20 vertices fit in 2**5 rows, row = y * (nx + 1) + x
    assert level_num_rows(4, 3, 5) == (20, True)
    # pixels (2, 1) and (3, 2) of a 4 x 3 output sit at (2.5, 1.5) and (3.5, 2.5) in grid units
    idx, w = corner_indices_weights(np.array([2, 3]), np.array([1, 2]), 4, 3, 4, 3, 5)
    assert idx.tolist() == [[7, 8, 12, 13], [13, 14, 18, 19]]
    np.testing.assert_array_equal(w, np.full((2, 4), 0.25, dtype=np.float32))


def test_axis_samples_are_the_exact_rational_positions() -> None:
    """Cell, remainder and bilinear weights of pixel i on w pixels over n cells, against exact rational
    arithmetic."""
    rng = np.random.default_rng(0)
    for size, cells in [(1, 1), (1, 4096), (4000, 1), (667, 37), (1000, 1 << 20), (3, 2), (1 << 20, 12345)]:
        pixels = np.unique(np.concatenate([[0, size - 1], rng.integers(0, size, 200)]))
        cell, remainder, denominator = axis_samples(size, cells, pixels)
        assert denominator == 2 * size
        vertices, (w0, w1) = axis_taps(size, cells, pixels, C.INTERPOLATION_BILINEAR)
        np.testing.assert_array_equal(vertices, np.stack([cell, cell + 1]))
        for i, c, r, a, b in zip(pixels.tolist(), cell.tolist(), remainder.tolist(), w0.tolist(), w1.tolist()):
            x = Fraction(2 * i + 1, 2 * size) * cells
            assert c == min(int(x), cells - 1)
            assert Fraction(r, denominator) == x - c
            assert b == float(np.float32(float(x - c)))  # float(Fraction) is correctly rounded, as is /
            assert a == float(np.float32(float(1 - (x - c))))


def cubic_b_spline(t: Fraction) -> Fraction:
    """The centred uniform cubic B-spline kernel, exactly: ``(4 - 6t^2 + 3|t|^3) / 6`` on ``|t| <= 1``,
    ``(2 - |t|)^3 / 6`` on ``1 <= |t| <= 2``, 0 beyond. Written from the kernel's textbook definition, not
    from the per-tap polynomials of SPEC §7 / :func:`axis_taps`, so that a slip in those is caught."""
    t = abs(t)
    if t <= 1:
        return (4 - 6 * t**2 + 3 * t**3) / 6
    if t <= 2:
        return (2 - t) ** 3 / 6
    return Fraction(0)


def exact_b_spline_taps(size: int, cells: int, pixel: int) -> list[tuple[int, Fraction]]:
    """Vertices (clamped to ``0 .. cells``) and exact weights that blend pixel ``pixel`` of an axis of
    ``size`` pixels over ``cells`` cells: every vertex ``v`` with ``|x - v| < 2`` around the pixel's exact
    position ``x = (pixel + 1/2) / size * cells``, weighted ``B(x - v)``, in ascending ``v``."""
    x = Fraction(2 * pixel + 1, 2 * size) * cells
    first = math.floor(x) - 1
    return [(min(max(v, 0), cells), cubic_b_spline(x - v)) for v in range(first, first + 4)]


# (size, cells): one pixel per cell and many, far more cells than pixels, odd ratios, the extremes
B_SPLINE_AXES = [(1, 1), (1, 4096), (2, 1), (3, 2), (4000, 1), (667, 37), (64, 16), (48, 12), (37, 16),
                 (1000, 1 << 20), (1 << 20, 12345), (4096, 4095)]


def test_bspline_taps_are_the_exact_cubic_b_spline() -> None:
    """The B-spline taps (vertices and float32 weights) of :func:`axis_taps` against exact rational
    arithmetic: each weight is B(x - v) rounded to float32 (within half a float32 ulp, plus the float64
    rounding of the SPEC's operation order), every vertex is the clamped neighbour, and the exact weights of
    a pixel sum to 1 (so the reference itself is a partition of unity). Also the SPEC §7 float64 operation
    order in plain Python floats (no numpy): the same weight bits."""
    rng = np.random.default_rng(1)
    exact_hits = total = 0
    for size, cells in B_SPLINE_AXES:
        pixels = np.unique(np.concatenate([[0, size - 1], rng.integers(0, size, 150)]))
        vertices, weights = axis_taps(size, cells, pixels, C.INTERPOLATION_BSPLINE)
        assert vertices.shape == weights.shape == (4, pixels.size)
        assert vertices.dtype == np.int64 and weights.dtype == np.float32
        for k, pixel in enumerate(pixels.tolist()):
            reference = exact_b_spline_taps(size, cells, pixel)
            assert sum(w for _, w in reference) == 1
            assert vertices[:, k].tolist() == [v for v, _ in reference], (size, cells, pixel)
            for tap, (_, exact) in enumerate(reference):
                got = float(weights[tap, k])
                nearest = np.float32(float(exact))  # float(Fraction) is correctly rounded
                half_ulp = Fraction(float(np.spacing(np.abs(nearest)))) / 2 if exact else Fraction(0)
                assert abs(Fraction(got) - exact) <= half_ulp + Fraction(1, 2**50), (size, cells, pixel, tap)
                exact_hits += got == float(nearest)
                total += 1
            # SPEC §7, step 3, operation by operation in IEEE binary64 (Python floats), then float32
            x = Fraction(2 * pixel + 1, 2 * size) * cells
            cell = min(math.floor(x), cells - 1)
            f = float((2 * pixel + 1) * cells - 2 * size * cell) / float(2 * size)
            g = 1.0 - f
            f2 = f * f
            f3 = f2 * f
            spec = [g * g * g / 6.0, (3.0 * f3 - 6.0 * f2 + 4.0) / 6.0, (-3.0 * f3 + 3.0 * f2 + 3.0 * f + 1.0) / 6.0,
                    f3 / 6.0]
            assert [float(np.float32(w)) for w in spec] == weights[:, k].tolist(), (size, cells, pixel)
    assert exact_hits >= 0.99 * total  # double rounding (float64, then float32) only rarely moves a weight


def test_bspline_taps_at_vertices_and_midpoints() -> None:
    """Hand-checked values: a pixel centred on a vertex gets (1/6, 4/6, 1/6, 0); one halfway between two
    vertices (1/48, 23/48, 23/48, 1/48); at the image edge the clamped vertex appears twice."""
    # 2 pixels over 2 cells: x = 0.5 and 1.5 (midpoints); 4 pixels over 2 cells: x = 0.25, 0.75, 1.25, 1.75
    vertices, weights = axis_taps(2, 2, np.arange(2), C.INTERPOLATION_BSPLINE)
    assert vertices.T.tolist() == [[0, 0, 1, 2], [0, 1, 2, 2]]
    midpoint = [float(np.float32(w)) for w in (1 / 48, 23 / 48, 23 / 48, 1 / 48)]
    assert weights.T.tolist() == [midpoint, midpoint]
    # 1 pixel over 2 cells sits at x = 1, on the middle vertex: vertices 0, 1, 2, 3 -> clamped to 2
    vertices, weights = axis_taps(1, 2, np.arange(1), C.INTERPOLATION_BSPLINE)
    assert vertices[:, 0].tolist() == [0, 1, 2, 2]
    assert weights[:, 0].tolist() == [float(np.float32(w)) for w in (1 / 6, 4 / 6, 1 / 6, 0.0)]


def test_decoder_blends_level_features_with_the_exact_b_spline() -> None:
    """End to end through the decoder's tiled, separable blend: each level's feature of a golden file at an
    odd output size is the tensor-product sum of B(x - v) B(y - u) over its 4 x 4 clamped vertices, taken
    with exact weights and float64 sums (within float32 rounding)."""
    parsed = read_file(golden_bytes("parrot_128x96_q3.shc"))
    assert parsed.header.config.interpolation == C.INTERPOLATION_BSPLINE
    synthesis = Synthesis(parsed, file_latents(parsed))
    width, height = 211, 37  # neither a multiple nor a divisor of any level's cells
    rng = np.random.default_rng(2)
    columns = np.unique(np.concatenate([[0, width - 1], rng.integers(0, width, 12)]))
    rows = np.unique(np.concatenate([[0, height - 1], rng.integers(0, height, 6)]))
    features = synthesis.tile_features(width, height, columns, rows)
    feat_dim = parsed.header.config.feat_dim
    features = features.reshape(parsed.header.config.num_levels, feat_dim, rows.size, columns.size)
    for level in synthesis.layout.levels:
        table = synthesis.feature_tables_t[level.index].astype(np.float64)
        scale = float(np.abs(table).max())
        for r, row in enumerate(rows.tolist()):
            y_taps = exact_b_spline_taps(height, level.ny, row)
            for c, column in enumerate(columns.tolist()):
                x_taps = exact_b_spline_taps(width, level.nx, column)
                expected = np.zeros(feat_dim)
                for u, wy in y_taps:
                    for v, wx in x_taps:
                        expected += table[:, int(level.vertex_rows(np.array(v), np.array(u)))] * float(wx * wy)
                np.testing.assert_allclose(features[level.index, :, r, c], expected, rtol=0, atol=4e-7 * scale,
                                           err_msg=f"level {level.index}, pixel ({column}, {row})")


# ---------------------------------------------------------------------------------------------- no torch


def test_decoding_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "import shc.format, shc.tools.fuzz\n"
        "from shc.format.decoder import decode_bytes\n"
        f"image = decode_bytes(open({str(DATA_DIR / GOLDEN_NAMES[0])!r}, 'rb').read(), scale=0.5)\n"
        "assert image.ndim == 3\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False", result.stderr


def test_to_uint8_is_defined_for_nan_and_infinities() -> None:
    from shc.format.decoder import to_uint8

    rgb = np.array([[np.nan, np.inf, -np.inf], [0.5, 1.0 / 510.0, 3.0 / 510.0]], dtype=np.float32)
    # NaN -> 0, +inf -> 255, -inf -> 0; 0.5 -> 127.5 -> 128 (half to even), 0.5 -> 0, 1.5 -> 2
    assert to_uint8(rgb).tolist() == [[0, 255, 0], [128, 0, 2]]


def test_feature_tables_are_bounded_like_the_latents() -> None:
    # one hashed level of 2**24 rows: 2**24 latents is allowed, but 2 features per row would make the
    # decoder allocate 2**25 floats, so the header is refused before anything is allocated
    config = ModelConfig(num_levels=1, log2_hashmap_size=24, latent_dim=1, feat_dim=2, mlp_width=4, mlp_depth=1)
    header = Header(64, 64, config, ((5000, 5000),))
    with pytest.raises(ShcFormatError, match="feature-table values, more than the limit"):
        header.validate()
    Header(64, 64, ModelConfig(1, 24, 1, 1, 4, 1), ((5000, 5000),)).validate()  # F = 1 stays valid


# ---------------------------------------------------------------------------------------------- versions / float16


def test_version_2_files_still_decode() -> None:
    """A version-2 file (no latent_coding byte) decodes to the pixels it always did."""
    data = (COMPAT_DIR / "parrot_64x48_q1_v2.shc").read_bytes()
    assert data[4] == 2 and sha256(data) == "2c8e09cb77fe4f27db057986dc1470d0ff0efa8b30058f32fe53ab22a8bcdaeb"
    parsed = read_file(data)
    assert parsed.header.range_coded and (parsed.header.width, parsed.header.height) == (64, 48)
    pixels = decode_bytes(data)
    assert sha256(pixels.tobytes()) == "ad2f3cc63e0b892c4a1b20d09e7fd024d94d53384f950bbb4bd0d097edfe2fb0"


@pytest.mark.parametrize("name", COMPAT_NAMES)
def test_older_version_files_still_decode(name: str) -> None:
    """The golden files of earlier versions decode to the pixels recorded when they were made
    (tests/data/compat/compat.json): version 3 (u32 level cells, int8 weights with a f32 scale, stored count
    tables), version 4 (no channels byte, no META: RGB without metadata), version 5 (no context_width:
    every level coded with its group's table; RGBA and META files among them) and version 6 (LATN holds the
    latents themselves, one range-coder stream: no segment index, nothing after LATN)."""
    entry = COMPAT["files"][name]
    data = (COMPAT_DIR / name).read_bytes()
    version = entry["format_version"]
    assert data[4] == version and version in (3, 4, 5, 6) and name.endswith(f"_v{version}.shc")
    assert sha256(data) == entry["sha256"], f"the version-{version} .shc file itself changed"
    parsed = read_file(data)
    header = parsed.header
    assert (header.width, header.height) == (entry["width"], entry["height"])
    assert len(section_payload(data, b"HEAD")) == head_payload_bytes(header.config.num_levels, version=version)
    channels = entry.get("channels", 3)
    assert header.config.channels == channels and (version >= 5 or channels == 3)
    for attribute in ("icc_profile", "exif"):
        value = getattr(parsed, attribute)
        assert (None if value is None else sha256(value)) == entry.get(f"{attribute}_sha256")
    if version < CONTEXT_SINCE:
        # versions before 6 have no context network: one table per (group, dimension), as in SPEC §5
        assert header.config.context_width == 0 and parsed.context is None and header.layout.context_levels == ()
        assert len(parsed.tables) == header.config.num_groups * header.config.latent_dim
    else:
        assert header.config.context_width == (0 if parsed.context is None else parsed.context.width)
        assert len(parsed.tables) == len(header.layout.table_keys)
    # one segment, the LATN payload itself, and the file ends with LATN's CRC
    assert header.version == version and len(header.layout.segments) == 1
    (words,) = parsed.latent_segments
    assert file_parts(data)[1] == b"" and words.astype("<u4").tobytes() == section_payload(data, b"LATN")
    if version == 3:
        assert all(table.histogram is None for table in parsed.tables)  # count tables, used as stored
        assert int(np.abs(parsed.weights.values).max()) <= C.WEIGHT_INT_MAX
    else:
        assert all(table.histogram is not None for table in parsed.tables)
    pixels = decode_bytes(data)
    assert pixels.shape == (entry["height"], entry["width"], channels) and pixels.dtype == np.uint8
    assert sha256(pixels.tobytes()) == entry["decoded_sha256"], "the normative decoder's output changed"


def test_the_compat_set_has_every_older_version() -> None:
    """compat.json lists exactly the files in tests/data/compat, and every version the reader accepts
    before the current one has vectors (version 2 is pinned by test_version_2_files_still_decode)."""
    assert sorted(path.name for path in COMPAT_DIR.glob("*.shc")) == sorted([*COMPAT_NAMES, "parrot_64x48_q1_v2.shc"])
    versions = {entry["format_version"] for entry in COMPAT["files"].values()}
    assert versions | {2} == set(C.READABLE_VERSIONS) - {C.FORMAT_VERSION}
    v5 = {name for name in COMPAT_NAMES if name.endswith("_v5.shc")}
    assert v5 == {name.replace(".shc", "_v5.shc") for name in GOLDEN_NAMES}  # the whole version-5 golden set
    v6 = {name for name in COMPAT_NAMES if name.endswith("_v6.shc")}
    assert v6 == {name.replace(".shc", "_v6.shc") for name in GOLDEN_NAMES}  # and the whole version-6 one
    for name in GOLDEN_NAMES:  # the version-7 golden files are the same encodes: the same pixels
        assert COMPAT["files"][name.replace(".shc", "_v6.shc")]["decoded_sha256"] == GOLDEN["files"][name]["decoded_sha256"]


def test_version_5_rgb_files_decode_like_their_version_4_copies() -> None:
    """The same encodes written as version 4 and as version 5 (one more HEAD byte, ``channels`` = 3, and
    no META): the pixels of an RGB file do not change with the version."""
    v4_names = [name for name, entry in COMPAT["files"].items() if entry["format_version"] == 4]
    pairs = [(name, name.replace("_v4.shc", "_v5.shc")) for name in v4_names]
    assert len(pairs) == 3
    for v4, v5 in pairs:
        assert len((COMPAT_DIR / v5).read_bytes()) == len((COMPAT_DIR / v4).read_bytes()) + 1
        assert COMPAT["files"][v5]["decoded_sha256"] == COMPAT["files"][v4]["decoded_sha256"]
        np.testing.assert_array_equal(decode_bytes((COMPAT_DIR / v5).read_bytes()),
                                      decode_bytes((COMPAT_DIR / v4).read_bytes()))


@pytest.mark.parametrize("name", sorted(n for n in COMPAT_NAMES if n.endswith("_v6.shc")))
def test_version_6_files_rewritten_as_version_7_keep_latents_and_pixels(name: str) -> None:
    """SPEC §9: a version-6 file rewritten in version 7 (``format.entropy.rewrite_file``) keeps HEAD, META,
    WGHT and TABL byte for byte; its grid is small (one segment), so its LATN payload becomes the index of
    one segment (length, CRC32) and the old payload follows as that segment: 8 bytes more. The latents and
    pixels are the same, and the result is the version-7 golden file made from that encode."""
    old = (COMPAT_DIR / name).read_bytes()
    new = rewrite_file(old)
    assert old[4] == 6 and new[4] == C.FORMAT_VERSION == 7 and len(new) == len(old) + 8
    assert new == golden_bytes(name.replace("_v6.shc", ".shc"))
    old_sections, old_tail = file_parts(old)
    new_sections, new_tail = file_parts(new)
    assert [tag for tag, _ in new_sections] == [tag for tag, _ in old_sections] and old_tail == b""
    for (tag, a), (_, b) in zip(old_sections, new_sections):
        if tag != b"LATN":
            assert a == b, tag
    payload = section_payload(old, b"LATN")
    assert section_payload(new, b"LATN") == struct.pack("<II", len(payload), zlib.crc32(payload))
    assert new_tail == payload
    parsed, reread = read_file(old), read_file(new)
    assert reread.header == replace(parsed.header, version=7)
    assert (reread.context is None) == (parsed.context is None)
    for field in ("w1", "b1", "w2", "level_bias", "level_low", "level_span") if parsed.context is not None else ():
        np.testing.assert_array_equal(getattr(reread.context, field), getattr(parsed.context, field))
    for got, want in zip(file_latents(reread), file_latents(parsed), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(decode_bytes(new), decode_bytes(old))
    assert rewrite_file(new) == new  # version 7 rewritten: the same bytes
    # the writer refuses a header read from version 6 (its layout is not version 7's)
    with pytest.raises(ValueError, match="files are written in version 7; this header was read from version 6"):
        write_file(parsed.header, parsed.weights, parsed.tables, parsed.latent_segments,
                   icc_profile=parsed.icc_profile, exif=parsed.exif, context=parsed.context)


@pytest.mark.parametrize("name", sorted(n for n in COMPAT_NAMES if n.endswith("_v5.shc")))
def test_version_5_files_rewritten_as_version_7_without_context(name: str) -> None:
    """SPEC §9: with ``context_width`` = 0 a version-7 file of a version-5 encode has one more HEAD byte (0,
    after ``channels``), the same WGHT and TABL, and its one segment holds the old LATN payload: the same
    latents and pixels."""
    old = (COMPAT_DIR / name).read_bytes()
    new = rewrite_file(old)
    assert new[4] == C.FORMAT_VERSION == 7 and len(new) == len(old) + 1 + 8
    old_head, new_head = section_payload(old, b"HEAD"), section_payload(new, b"HEAD")
    assert new_head == old_head[:19] + b"\x00" + old_head[19:]
    for tag in (b"WGHT", b"TABL"):
        assert section_payload(new, tag) == section_payload(old, tag)
    assert file_parts(new)[1] == section_payload(old, b"LATN")
    parsed, reread = read_file(old), read_file(new)
    assert reread.header == replace(parsed.header, version=7) and reread.context is None
    for got, want in zip(file_latents(reread), file_latents(parsed), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(decode_bytes(new), decode_bytes(old))


def _count_tables(tables) -> bytes:
    """Versions 2-3 TABL: per table i32 min_symbol, u16 n, n x u16 (count - 1)."""
    return b"".join(
        struct.pack("<iH", t.min_symbol, len(t.counts)) + (t.counts.astype(np.int64) - 1).astype("<u2").tobytes()
        for t in tables
    )


def _int8_weights(header: Header, scales, values) -> bytes:
    """Versions 2-3 WGHT: per tensor f32 scale, then its values as i8."""
    out, offset = b"", 0
    for (_, shape), scale in zip(weight_shapes(header), scales):
        count = int(np.prod(shape))
        out += struct.pack("<f", float(scale)) + np.asarray(values[offset : offset + count]).astype("i1").tobytes()
        offset += count
    return out


@functools.cache
def _valid_small_v3() -> tuple[Built, bytes]:
    """``_valid_small()`` as a version-3 file written by hand: the same counts (derived from the histogram)
    and range-coder words, weights clipped to int8."""
    built = _valid_small()
    clipped = np.clip(built.weights.values, -C.WEIGHT_INT_MAX, C.WEIGHT_INT_MAX)
    data = container(
        header_head_payload(built.header, version=3),
        _int8_weights(built.header, built.weights.scales, clipped),
        _count_tables(built.tables),
        built.words[0].astype("<u4").tobytes(),  # one segment: the LATN payload of versions before 7
        version=3,
    )
    return built, data


def test_hand_built_version_3_file_decodes_like_version_4() -> None:
    built, data = _valid_small_v3()
    parsed = read_file(data)
    assert parsed.header == replace(built.header, version=3) and parsed.tables[0].histogram is None
    np.testing.assert_array_equal(parsed.tables[0].counts, built.tables[0].counts)
    for got, want in zip(decode_latents(parsed.header, parsed.tables, parsed.latent_segments), built.latents):
        np.testing.assert_array_equal(got, want)
    assert decode_bytes(data).shape == (12, 20, 3)


def _v3_with(tag: bytes, payload: bytes) -> bytes:
    return replace_section(_valid_small_v3()[1], tag, payload)


def _v3_weights(scale: float = 0.01, value: int = 1) -> bytes:
    header = _valid_small().header
    return b"".join(
        struct.pack("<f", scale) + np.full(int(np.prod(shape)), value, dtype="i1").tobytes()
        for _, shape in weight_shapes(header)
    )


def _v3_table(*fields: int) -> bytes:
    return struct.pack("<iH" + "H" * (len(fields) - 2), *fields)


MALFORMED_V3 = {
    "weights_count": (lambda: _v3_with(b"WGHT", b"\x00\x3c" * 3), "WGHT section has 6 bytes, the header implies"),
    "weights_exp_golomb": (  # a version-4 WGHT in a version-3 file
        lambda: _v3_with(b"WGHT", section_payload(_valid_small().data, b"WGHT")), "WGHT section has .* bytes"
    ),
    "weights_nan_scale": (lambda: _v3_with(b"WGHT", _v3_weights(scale=float("nan"))), "non-finite or negative"),
    "weights_negative_scale": (lambda: _v3_with(b"WGHT", _v3_weights(scale=-1.0)), "non-finite or negative"),
    "weights_int_minus_128": (lambda: _v3_with(b"WGHT", _v3_weights(value=-128)), r"weight outside \[-127, 127\]"),
    "table_zero_symbols": (lambda: _v3_with(b"TABL", _v3_table(0, 0)), "table 0 has 0 symbols"),
    "table_too_many_symbols": (lambda: _v3_with(b"TABL", _v3_table(0, 4097)), "table 0 has 4097 symbols"),
    "table_bad_sum": (lambda: _v3_with(b"TABL", _v3_table(0, 2, 5, 5)), r"sum to 2\*\*15"),
    "table_symbol_range": (lambda: _v3_with(b"TABL", _v3_table(C.MAX_SYMBOL, 2, 16383, 16383)), "exceeds"),
    "table_extra_bytes": (lambda: _v3_with(b"TABL", _v3_table(-1, 2, 16383, 16383, 0)), "TABL section: 2 unexpected"),
    "table_histograms": (  # a version-4 TABL in a version-3 file
        lambda: _v3_with(b"TABL", section_payload(_valid_small().data, b"TABL")), "TABL section|table 0"
    ),
    "head_u16_cells": (  # a version-4 HEAD in a version-3 file: 4 bytes short per level
        lambda: _v3_with(b"HEAD", header_head_payload(_valid_small().header)), "truncated while reading level 0 cells"
    ),
}


@pytest.mark.parametrize("case", MALFORMED_V3)
def test_malformed_version_3_files_are_clean_errors(case: str) -> None:
    make, match = MALFORMED_V3[case]
    with pytest.raises(ShcFormatError, match=match):
        decode_bytes(make())


def _float16_file(rng: np.random.Generator) -> tuple[Header, QuantizedWeights, list[np.ndarray], bytes]:
    """A float16 file (no tables): its header, weights, latents per level ``(rows, 2)`` (float16 values) and bytes."""
    header = Header(24, 16, ModelConfig(num_levels=3, log2_hashmap_size=5, latent_dim=2, feat_dim=2, mlp_width=6,
                                        mlp_depth=1, num_groups=2), ((2, 1), (5, 4), (9, 7)), C.LATENTS_FLOAT16)
    shapes = weight_shapes(header)
    weights = QuantizedWeights(rng.uniform(0.005, 0.02, len(shapes)).astype(np.float32) / 16,
                               rng.integers(-2000, 2001, sum(int(np.prod(s)) for _, s in shapes)))
    levels = [rng.normal(0, 2, (rows, 2)).astype(np.float16) for rows in header.level_rows()]
    return header, weights, levels, write_file(header, weights, (), pack_float16_latents(header, levels))


def test_float16_file_round_trip_and_decode() -> None:
    header, weights, levels, data = _float16_file(np.random.default_rng(4))
    # SPEC §6b: one segment (136 latents of 3 small levels), its latents level by level, then dimension, then row
    (values,) = pack_float16_latents(header, levels)
    hand = np.concatenate([level.T.reshape(-1) for level in levels])
    assert values.dtype == np.float16 and values.size == header.total_latents
    np.testing.assert_array_equal(values, hand)
    shapes = weight_shapes(header)
    weight_bits, offset = 0, 0
    for _, shape in shapes:  # each tensor's signed codes in the shortest order
        tensor = [to_unsigned(v) for v in weights.values[offset : offset + int(np.prod(shape))]]
        weight_bits += sum(len(eg_bits(u, shortest_order(tensor))) for u in tensor)
        offset += len(tensor)
    weight_bytes = 5 * len(shapes) + -(-weight_bits // 8)
    assert len(data) == 4 + 1 + 12 * 4 + (FIXED + 4 * 3) + weight_bytes + 0 + 8 + 2 * values.size
    assert data == container(header_head_payload(header), hand_weights(header, weights.scales, weights.values), b"",
                             hand.astype("<f2").tobytes())
    parsed = read_file(data)
    assert parsed.header == header and parsed.tables == ()
    np.testing.assert_array_equal(parsed.weights.values, weights.values)
    latents = file_latents(parsed)
    assert [lat.shape for lat in latents] == [(rows, 2) for rows in header.level_rows()]
    assert all(lat.dtype == np.float32 for lat in latents)
    for got, want in zip(latents, levels, strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float32))
    pixels = decode_bytes(data)
    reference = Synthesis(parsed, [lat.astype(np.float32) for lat in latents]).render(24, 16)
    np.testing.assert_array_equal(pixels, reference)
    assert len(np.unique(pixels)) > 10


def test_float16_file_errors() -> None:
    header, weights, levels, data = _float16_file(np.random.default_rng(5))
    (values,) = pack_float16_latents(header, levels)
    for cut in range(len(data)):
        with pytest.raises(ShcFormatError):
            read_file(data[:cut])
    nan = values.copy()
    nan[7] = np.float16("nan")
    with pytest.raises(ShcFormatError, match="^latent segment 0 has a non-finite float16 latent$"):
        read_file(with_segments(data, [nan.astype("<f2").tobytes()]))
    with pytest.raises(ShcFormatError, match=r"^latent segment 0 has 270 bytes, its 136 float16 latents need 272$"):
        read_file(with_segments(data, [values[:-1].astype("<f2").tobytes()]))
    with pytest.raises(ShcFormatError, match="^latent segment 0 is corrupted"):  # a flipped bit: the CRC says so
        read_file(data[:-5] + bytes([data[-5] ^ 0x40]) + data[-4:])
    with pytest.raises(ShcFormatError, match="TABL section: 64 unexpected trailing bits"):
        read_file(replace_section(data, b"TABL", b"\x00" * 8))  # no tables: the TABL payload must be empty
    with pytest.raises(ShcFormatError, match="TABL section: 8 unexpected trailing bits"):
        read_file(replace_section(data, b"TABL", b"\x00"))
    bad_coding = bytearray(replace_section(data, b"HEAD", head_payload(latent_coding=2)))
    with pytest.raises(ShcFormatError, match="latent_coding=2"):
        read_file(bytes(bad_coding))
    with pytest.raises(ValueError, match="1 tables given, the header implies 0"):
        write_file(header, weights, (Table.from_histogram(0, [5]),), (values,))
    with pytest.raises(ValueError, match="finite latents"):
        write_file(header, weights, (), (np.where(np.arange(values.size) == 3, np.inf, values),))
    with pytest.raises(ValueError, match="needs 136 finite latents, got 135"):
        write_file(header, weights, (), (values[:-1],))
    with pytest.raises(ValueError, match="give one array per segment"):  # the latents of version 6: one array
        write_file(header, weights, (), values)


def test_level_far_finer_than_the_output_decodes_in_bounded_memory() -> None:
    """A (hashed) level of 65535 x 65535 cells (the most version 4 stores) rendered at 64x48: the separable
    decoder gathers only the vertices each tile touches, never a block of the level's own size (found by
    the fuzzer with 2^20 x 2^20 cells, which versions 2-3 can still declare)."""
    rng = np.random.default_rng(9)
    latents = [rng.integers(-4, 5, (256, 1)).astype(np.int32)]
    for version, side in [(C.FORMAT_VERSION, C.MAX_CELLS_U16), (3, 1 << 20)]:
        header = Header(64, 48, ModelConfig(num_levels=1, log2_hashmap_size=8, mlp_width=4, mlp_depth=1),
                        ((side, side),))
        weights = random_weights(rng, header)
        tables = histogram_tables(header, latents)
        words = encode_latents(header, tables, latents)
        if version == C.FORMAT_VERSION:
            data = write_file(header, weights, tables, words)
        else:
            data = container(header_head_payload(header, version=3), _int8_weights(header, weights.scales, weights.values),
                             _count_tables(tables), words[0].astype("<u4").tobytes(), version=3)
        tracemalloc.start()
        try:
            pixels = decode_bytes(data)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert pixels.shape == (48, 64, 3)
        assert peak < 16 << 20
        parsed = read_file(data)
        assert parsed.header.level_cells == ((side, side),)
        synthesis = Synthesis(parsed, decode_latents(parsed.header, parsed.tables, parsed.latent_segments))
        np.testing.assert_array_equal(synthesis.tile_features(64, 48, np.arange(64), np.arange(48)),
                                      synthesis.features(64, 48, np.tile(np.arange(64), 48), np.repeat(np.arange(48), 64)))
