"""The context network of format version 6 (SPEC §5a): numpy and constriction only, fast.

The reference side of these tests is written from SPEC.md in plain Python integers (and
:class:`fractions.Fraction`): the network, the nearest-vertex and hash arithmetic, the Laplace weights and
their coding tables, the two-pass, bucket-grouped coding order, the exp-Golomb bit strings of the
context block, and (version 7) the chunks of large levels, the segments and the LATN index (§4a, §6). Only the normative constants ``LAPLACE_T`` are taken from the library, and they are checked
against their formula and SPEC's SHA-256.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import struct
import zlib
from dataclasses import replace
from decimal import Decimal, getcontext
from pathlib import Path

import constriction
import numpy as np
import pytest

from shc.format import constants as C
from shc.format.container import read_file, write_file
from shc.format.header import Header, ModelConfig
from shc.format.table import Table
from shc.format.weights import QuantizedWeights, weight_shapes
from shc.format.context import (
    CONTEXT_INPUTS,
    LAPLACE_T,
    MAX_BIAS,
    MAX_LEVEL_SPAN,
    MAX_WEIGHT,
    ContextParams,
    context_counts,
    context_inputs,
    context_sources,
    encode_context_level,
    predict,
)
from shc.format.decoder import decode_bytes
from shc.format.entropy import decode_latents, encode_latents, file_latents, histogram_tables
from shc.format.errors import ShcFormatError
from test_format import eg_bits, reference_counts, signed_eg_bits  # SPEC §3a, §5 by hand (tests/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
COMPAT_DIR = Path(__file__).parent / "data" / "compat"
ONE = 1 << 30
TOTAL = 1 << C.TABLE_PRECISION


# ---------------------------------------------------------------------------------------------- SPEC by hand


def spec_b(j: int) -> float:
    """Bucket j's Laplace scale b_j = 2^(j/8 - 4)."""
    return 2.0 ** (j / 8 - 4)


def spec_hash_row(x: int, y: int, log2_size: int) -> int:
    """SPEC §4: ((x * 1) XOR (y * 2654435761)) mod 2^T, the products wrapping modulo 2^32."""
    return (((x * 1) % (1 << 32)) ^ ((y * 2654435761) % (1 << 32))) % (1 << log2_size)


def spec_row(level, x: int, y: int) -> int:
    return y * (level.nx + 1) + x if level.dense else spec_hash_row(x, y, level.log2_hashmap_size)


def spec_nearest(v: int, cells: int, coarse: int) -> int:
    """SPEC §5a: min(floor((2 v nx' + nx) / (2 nx)), nx')."""
    return min((2 * v * coarse + cells) // (2 * cells), coarse)


def spec_inputs(levels, index: int, x: int, y: int, latents: list[np.ndarray]) -> list[int]:
    """The 7 inputs of vertex (x, y) of context level ``index``: left, right, up, down (0 for an anchor or
    outside the grid), parent and grandparent at the nearest vertex (0 before level 0), anchor flag;
    clamped to -1024 .. 1024."""
    level = levels[index]
    anchor = (x + y) % 2 == 0
    own = latents[index][:, 0]
    out = []
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        nx, ny = x + dx, y + dy
        inside = 0 <= nx <= level.nx and 0 <= ny <= level.ny
        out.append(int(own[ny * (level.nx + 1) + nx]) if inside and not anchor else 0)
    for back in (1, 2):
        if index - back < 0:
            out.append(0)
            continue
        up = levels[index - back]
        row = spec_row(up, spec_nearest(x, level.nx, up.nx), spec_nearest(y, level.ny, up.ny))
        out.append(int(latents[index - back][row, 0]))
    out.append(1 if anchor else 0)
    return [min(max(v, -1024), 1024) for v in out]


def spec_predict(params: ContextParams, slot: int, x: list[int]) -> tuple[int, int]:
    """SPEC §5a in Python integers: hidden units, outputs (floor division is the arithmetic shift), centre
    clipped to the level's range, bucket clipped to 0 .. 88."""
    w1, b1, w2, bias = (getattr(params, n).tolist() for n in ("w1", "b1", "w2", "level_bias"))
    h = [max(sum(w1[j][i] * x[i] for i in range(CONTEXT_INPUTS)) + b1[j], 0) for j in range(len(b1))]
    o = [sum(w2[k][j] * h[j] for j in range(len(h))) // 4096 + bias[slot][k] for k in range(2)]
    low, high = int(params.level_low[slot]), int(params.level_low[slot] + params.level_span[slot] - 1)
    return min(max((o[0] + 2048) // 4096, low), high), min(max((o[1] + 16640) // 512, 0), 88)


def spec_weights(bucket: int, span: int) -> list[int]:
    """SPEC §5a: p_0 = 2^30, p_k = floor(p_{k-1} t / 2^30); residual 0 weighs 2 (2^30 - t), +-r weighs
    floor(p_{2r-1} (2^30 - p_2) / 2^30); residuals -(span - 1) .. span - 1."""
    t = LAPLACE_T[bucket]
    p = [ONE]
    for _ in range(2 * span):
        p.append(p[-1] * t // ONE)
    side = [p[2 * r - 1] * (ONE - p[2]) // ONE for r in range(1, span)]
    return side[::-1] + [2 * (ONE - t)] + side


@functools.cache
def spec_counts(bucket: int, span: int) -> tuple[int, ...]:
    return tuple(reference_counts(spec_weights(bucket, span)))


def spec_model(counts) -> constriction.stream.model.Categorical:
    return constriction.stream.model.Categorical(np.array(counts, dtype=np.float64) / TOTAL, perfect=False)


def spec_chunks(nx: int, ny: int, log2_size: int) -> list[np.ndarray] | None:
    """SPEC §4a: the rows each chunk of a level codes, in coding order, or None for a level coded whole
    (at most 2^17 rows). s = the smallest power of two with s^2 rows >= 2^16 (nx+1)(ny+1); chunk
    k = floor(y / s) cols + floor(x / s); a dense chunk codes its vertices' rows y (nx+1) + x row-major, a
    hashed one its own rows k R .. k R + R - 1, R = floor(2^T / chunks)."""
    vertices = (nx + 1) * (ny + 1)
    dense = vertices <= 1 << log2_size
    rows = vertices if dense else 1 << log2_size
    if rows <= 1 << 17:
        return None
    side = 1
    while side * side * rows < (1 << 16) * vertices:
        side *= 2
    cols, rows_c = -(-(nx + 1) // side), -(-(ny + 1) // side)
    if not dense:
        r = (1 << log2_size) // (cols * rows_c)
        return [np.arange(k * r, (k + 1) * r) for k in range(cols * rows_c)]
    out = []
    for cy in range(rows_c):
        for cx in range(cols):
            xs = range(cx * side, min((cx + 1) * side, nx + 1))
            ys = range(cy * side, min((cy + 1) * side, ny + 1))
            out.append(np.array([y * (nx + 1) + x for y in ys for x in xs]))
    return out


def spec_segments(header: Header) -> list[list[tuple[int, np.ndarray | None]]]:
    """SPEC §6: the segments as lists of pieces ``(level, rows)`` (``rows`` None: the whole level). Walking
    the levels coarse to fine, consecutive whole levels share a segment while it holds at most 2^17
    latents (D rows_l each); each chunk of a chunked level is a segment of its own."""
    segments, current, held = [], [], 0
    for index, (nx, ny) in enumerate(header.level_cells):
        chunks = spec_chunks(nx, ny, header.config.log2_hashmap_size)
        if chunks is not None:
            if current:
                segments.append(current)
            current, held = [], 0
            segments += [[(index, rows)] for rows in chunks]
            continue
        vertices = (nx + 1) * (ny + 1)
        size = header.config.latent_dim * min(vertices, 1 << header.config.log2_hashmap_size)
        if current and held + size > 1 << 17:
            segments.append(current)
            current, held = [], 0
        current.append((index, None))
        held += size
    return segments + ([current] if current else [])


def spec_encode(header: Header, tables, latents: list[np.ndarray], params: ContextParams) -> list[np.ndarray]:
    """SPEC §6 and §5a by hand: per segment (:func:`spec_segments`) a range coder of its own, piece by piece;
    a factorized level (or chunk) dimension by dimension with its table; a context level in two passes
    (anchors, then the others, each row-major), each pass's symbols ``latent - m + span - 1`` grouped by
    bucket (increasing, pass order within a bucket)."""
    layout = header.layout
    slots = {level.index: slot for slot, level in enumerate(layout.context_levels)}
    out = []
    for pieces in spec_segments(header):
        encoder = constriction.stream.queue.RangeEncoder()
        for index, rows in pieces:
            level = layout.levels[index]
            if level.context:
                assert rows is None  # a context level is whole (SPEC §5a)
                slot = slots[index]
                span = int(params.level_span[slot])
                for anchors in (True, False):
                    vertices = [(x, y) for y in range(level.ny + 1) for x in range(level.nx + 1)
                                if ((x + y) % 2 == 0) == anchors]
                    coded = []
                    for x, y in vertices:
                        m, j = spec_predict(params, slot, spec_inputs(layout.levels, level.index, x, y, latents))
                        coded.append((j, int(latents[level.index][y * (level.nx + 1) + x, 0]) - m + span - 1))
                    for bucket in sorted({j for j, _ in coded}):
                        symbols = np.array([s for j, s in coded if j == bucket], dtype=np.int32)
                        if span > 1:
                            encoder.encode(symbols, spec_model(spec_counts(bucket, span)))
                continue
            for dim in range(header.config.latent_dim):
                table = tables[layout.table_keys.index((level.group, dim))]
                if len(table.counts) > 1:
                    values = latents[index][:, dim] if rows is None else latents[index][rows, dim]
                    symbols = values.astype(np.int64) - table.min_symbol
                    encoder.encode(symbols.astype(np.int32), spec_model(table.counts.tolist()))
        out.append(encoder.get_compressed())
    return out


def spec_index(segments) -> bytes:
    """SPEC §6: the LATN payload, per segment u32 length in bytes and u32 CRC32 of its bytes."""
    return b"".join(struct.pack("<II", 4 * words.size, zlib.crc32(words.astype("<u4").tobytes())) for words in segments)


# exp-Golomb (SPEC §3a) as bit strings


def shortest_order(values, signed: bool = True, max_order: int = 16) -> int:
    """The order 0..16 coding ``values`` in the fewest bits, the lowest on a tie (the writer's choice)."""
    unsigned = [(2 * v if v >= 0 else -2 * v - 1) if signed else v for v in (int(v) for v in values)]
    costs = [sum(len(eg_bits(u, k)) for u in unsigned) for k in range(max_order + 1)]
    return costs.index(min(costs))


def bits_to_bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))


def hand_context_bits(tensors: dict, low, span, orders: dict | None = None) -> str:
    """SPEC §5a: per tensor W1, b1, W2, B: EG0(k), then its values row-major as signed codes of order k;
    then per context level signed EG0(low), EG0(span - 1)."""
    bits = ""
    for name in ("w1", "b1", "w2", "level_bias"):
        values = np.asarray(tensors[name]).reshape(-1).tolist()
        k = shortest_order(values) if orders is None else orders[name]
        bits += eg_bits(k, 0) + "".join(signed_eg_bits(v, k) for v in values)
    return bits + "".join(signed_eg_bits(lo, 0) + eg_bits(s - 1, 0) for lo, s in zip(low, span))


def hand_table_bits(table: Table) -> str:
    """SPEC §5: signed EG0(min_symbol), EG0(n - 1), EG0(k), then the histogram in order k."""
    hist = table.histogram.tolist()
    k = shortest_order(hist, signed=False)
    return (signed_eg_bits(table.min_symbol, 0) + eg_bits(len(hist) - 1, 0) + eg_bits(k, 0)
            + "".join(eg_bits(h, k) for h in hist))


def zero_weights(header: Header) -> QuantizedWeights:
    shapes = weight_shapes(header)
    count = sum(int(np.prod(shape)) for _, shape in shapes)
    return QuantizedWeights(np.ones(len(shapes), np.float32), np.zeros(count, np.int64))


def tensors_of(params: ContextParams) -> dict:
    return {name: getattr(params, name) for name in ("w1", "b1", "w2", "level_bias")}


def _parts(data: bytes) -> tuple[dict[bytes, bytes], bytes]:
    """The sections, HEAD to LATN, and what follows LATN (version 7: the latent segments)."""
    pos, out = 5, {}
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos + 4)
        tag = data[pos : pos + 4]
        out[tag] = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if tag == b"LATN" and data[4] >= 7:
            break
    return out, data[pos:]


def sections_of(data: bytes) -> dict[bytes, bytes]:
    return _parts(data)[0]


def with_section(data: bytes, tag: bytes, payload: bytes) -> bytes:
    """``data`` with one payload replaced, its length and CRC re-fixed; the latent segments kept."""
    out = [data[:5]]
    sections, tail = _parts(data)
    for found, old in sections.items():
        new = payload if found == tag else old
        out.append(found + struct.pack("<I", len(new)) + new + struct.pack("<I", zlib.crc32(found + new)))
    return b"".join(out) + tail


# ---------------------------------------------------------------------------------------------- valid files

CASES = {
    # name: (config, level cells): T = 6 (64 rows): (2,1) 6, (5,4) 30, (7,7) 64 dense; (11,8) 108, (15,9) 160,
    # (9,7) 80 hashed. Context levels: the dense ones from level 1 on.
    "three_groups": (
        ModelConfig(num_levels=6, log2_hashmap_size=6, mlp_width=5, mlp_depth=1, num_groups=3, context_width=5,
                    interpolation=C.INTERPOLATION_BSPLINE),
        ((2, 1), (5, 4), (11, 8), (6, 5), (7, 7), (15, 9)),
    ),
    "groups_without_tables": (  # one group per level: groups 1, 3 and 4 hold only context levels
        ModelConfig(num_levels=6, log2_hashmap_size=6, mlp_width=3, mlp_depth=2, num_groups=6, context_width=32),
        ((2, 1), (5, 4), (11, 8), (6, 5), (7, 7), (15, 9)),
    ),
    "hashed_parent": (  # level 2's parent (level 1) is hashed, its grandparent (level 0) dense
        ModelConfig(num_levels=3, log2_hashmap_size=5, mlp_width=4, mlp_depth=1, num_groups=2, context_width=1),
        ((3, 2), (9, 7), (5, 4)),
    ),
    "segments": (  # version 7, T = 17: level 2 hashed into 2^17 rows (whole) fills a segment of its own, so
        # context level 3 (in segment 2) takes its inputs from segments 0 and 1
        ModelConfig(num_levels=4, log2_hashmap_size=17, mlp_width=3, mlp_depth=1, num_groups=2, context_width=3),
        ((2, 1), (5, 4), (400, 350), (7, 7)),
    ),
    "chunked": (  # version 7, T = 18: level 2 is dense with 401 x 351 > 2^17 rows, in 2 x 2 chunks of 256^2
        # vertices; it and the two levels after it are not context levels (a context level and its two coarser
        # levels are whole), level 5 is
        ModelConfig(num_levels=6, log2_hashmap_size=18, mlp_width=3, mlp_depth=1, num_groups=3, context_width=2),
        ((2, 1), (5, 4), (400, 350), (6, 5), (7, 6), (8, 7)),
    ),
}


def random_params(rng: np.random.Generator, width: int, levels: int, low, span) -> ContextParams:
    """A network whose predictions spread over several centres and buckets (small latents as inputs)."""
    return ContextParams(
        w1=rng.integers(-3 << 12, (3 << 12) + 1, (width, CONTEXT_INPUTS)).astype(np.int64),
        b1=rng.integers(-8 << 12, (8 << 12) + 1, width).astype(np.int64),
        w2=np.stack([rng.integers(-512, 513, width), rng.integers(-256, 257, width)]).astype(np.int64),
        level_bias=np.stack([rng.integers(-4096, 4097, levels), rng.integers(-8192, 8193, levels)], 1).astype(np.int64),
        level_low=np.asarray(low, dtype=np.int64),
        level_span=np.asarray(span, dtype=np.int64),
    )


@functools.cache
def build(case: str, seed: int = 0):
    """A valid version-6 file with a context network: random factorized and context latents (context levels
    of very different scales, one of them constant in the first case), random network and weights."""
    config, cells = CASES[case]
    rng = np.random.default_rng([seed, len(case)])
    header = Header(30, 22, config, cells)
    header.validate()
    layout = header.layout
    latents = []
    for level in layout.levels:
        if level.context:
            scale = rng.choice([0.3, 1.5, 6.0]) * (0.3 + rng.random(level.rows))
            values = np.clip(np.rint(rng.laplace(0.0, scale)), -40, 40)
            if case == "three_groups" and level.index == 4:
                values[:] = -7  # span 1: nothing coded
        else:
            values = rng.integers(-3, 4, level.rows)
        latents.append(values.astype(np.int32).reshape(-1, 1))
    ctx = [latents[level.index][:, 0] for level in layout.context_levels]
    params = random_params(rng, config.context_width, len(ctx), [v.min() for v in ctx],
                           [int(v.max()) - int(v.min()) + 1 for v in ctx])
    tables = histogram_tables(header, latents)
    shapes = weight_shapes(header)
    weights = QuantizedWeights(rng.uniform(0.001, 0.01, len(shapes)).astype(np.float32),
                               rng.integers(-300, 301, sum(int(np.prod(s)) for _, s in shapes)).astype(np.int64))
    words = encode_latents(header, tables, latents, params)
    return header, params, tables, latents, weights, words, write_file(header, weights, tables, words, context=params)


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_context_latents_round_trip(case: str, seed: int) -> None:
    header, params, tables, latents, _, words, data = build(case, seed)
    for got, want in zip(decode_latents(header, tables, words, params), latents):
        np.testing.assert_array_equal(got, want)
    parsed = read_file(data)
    assert parsed.header == header and parsed.header.config.context_width == params.width > 0
    for name in ("w1", "b1", "w2", "level_bias", "level_low", "level_span"):
        np.testing.assert_array_equal(getattr(parsed.context, name), getattr(params, name))
    assert [t.min_symbol for t in parsed.tables] == [t.min_symbol for t in tables]
    for got, want in zip(file_latents(parsed), latents):
        np.testing.assert_array_equal(got, want)
    assert decode_bytes(data).shape == (22, 30, 3)
    # what was read writes back to the very same bytes
    again = write_file(parsed.header, parsed.weights, parsed.tables, parsed.latent_segments, context=parsed.context)
    assert again == data


@pytest.mark.parametrize("case", CASES)
def test_layout_of_context_levels_and_tables(case: str) -> None:
    """SPEC §5: context levels are the dense levels l >= 1 that are whole, as are their two coarser levels
    (version 7, §5a); one table per (group, dimension) that still has a factorized level, in increasing
    order, each counting exactly the factorized latents."""
    header, params, tables, latents, *_ = build(case)
    layout = header.layout
    dense = [level.index for level in layout.levels if level.rows == (level.nx + 1) * (level.ny + 1)]
    whole = [spec_chunks(nx, ny, header.config.log2_hashmap_size) is None for nx, ny in header.level_cells]
    assert [level.index for level in layout.context_levels] == [
        i for i in dense if i >= 1 and all(whole[max(0, i - 2) : i + 1])]
    assert [level.index for level in layout.context_levels] == {"chunked": [1, 5], "segments": [1, 3]}.get(
        case, [i for i in dense if i >= 1])
    factorized = [level for level in layout.levels if not level.context]
    assert layout.table_keys == tuple(sorted({(level.group, 0) for level in factorized}))
    assert len(tables) == len(layout.table_keys) and params.level_low.shape == (len(layout.context_levels),)
    for (group, _), table in zip(layout.table_keys, tables):
        assert int(table.histogram.sum()) == sum(level.rows for level in factorized if level.group == group)
    expected_keys = {"three_groups": ((0, 0), (1, 0), (2, 0)), "groups_without_tables": ((0, 0), (2, 0), (5, 0)),
                     "hashed_parent": ((0, 0),),  # levels 0 and 1 (hashed) in group 0; group 1: level 2 only
                     "segments": ((0, 0), (1, 0)),  # levels 0 and 2 (hashed) factorized
                     "chunked": ((0, 0), (1, 0), (2, 0))}  # levels 0; 2 (chunked) and 3; 4
    assert layout.table_keys == expected_keys[case]
    assert header.config.num_tables == header.config.num_groups  # what a file without a network would store


@pytest.mark.parametrize("case", CASES)
def test_latn_words_equal_an_encoder_written_from_the_spec(case: str) -> None:
    """The library's latent segments equal those of the SPEC-by-hand encoder (Python-integer network,
    nearest vertices and hash rows, Laplace tables with Fraction arithmetic, two passes grouped by bucket;
    version 7: the segments and chunks of §4a, §6), and the file is the LATN index of them followed by their
    bytes."""
    header, params, tables, latents, _, words, data = build(case)
    spec = spec_encode(header, tables, latents, params)
    assert len(words) == len(spec) == {"segments": 3, "chunked": 6}.get(case, 1)
    for got, want in zip(words, spec, strict=True):
        np.testing.assert_array_equal(got, want)
    assert sum(w.size for w in words) > 4 * len(words)  # the levels code something: not empty against empty
    sections, tail = _parts(data)
    assert sections[b"LATN"] == spec_index(spec)
    assert tail == b"".join(w.astype("<u4").tobytes() for w in spec)  # the file ends with the last segment


def test_writer_matches_the_spec_layout_of_the_context_block() -> None:
    """TABL = the context block (§5a) then the tables (§5), one bit stream, zero-padded; HEAD has
    context_width at byte 19 (after channels) and is 20 + 4 L bytes."""
    header, params, tables, *_, data = build("three_groups")
    sections = sections_of(data)
    assert data[4] == C.FORMAT_VERSION == 7
    head = sections[b"HEAD"]
    assert len(head) == 20 + 4 * 6 and head[18] == 3 and head[19] == params.width == 5
    assert struct.unpack_from("<" + "HH" * 6, head, 20) == tuple(v for cell in header.level_cells for v in cell)
    bits = hand_context_bits(tensors_of(params), params.level_low.tolist(), params.level_span.tolist())
    bits += "".join(hand_table_bits(t) for t in tables)
    assert sections[b"TABL"] == bits_to_bytes(bits)
    # a reader takes any order <= 24 for a tensor
    orders = {"w1": 24, "b1": 0, "w2": 3, "level_bias": 16}
    other = hand_context_bits(tensors_of(params), params.level_low.tolist(), params.level_span.tolist(), orders)
    changed = with_section(data, b"TABL", bits_to_bytes(other + "".join(hand_table_bits(t) for t in tables)))
    assert changed != data
    np.testing.assert_array_equal(decode_bytes(changed), decode_bytes(data))


def test_constant_context_levels_code_nothing() -> None:
    """A context level of span 1 costs no bits; with a one-symbol table for the rest, LATN is empty."""
    config = ModelConfig(num_levels=3, log2_hashmap_size=8, mlp_width=2, mlp_depth=1, context_width=2)
    header = Header(8, 8, config, ((1, 1), (3, 2), (4, 4)))
    latents = [np.full((rows, 1), value, np.int32) for rows, value in zip(header.level_rows(), (5, -3, 9))]
    params = random_params(np.random.default_rng(3), 2, 2, [-3, 9], [1, 1])
    tables = histogram_tables(header, latents)
    words = encode_latents(header, tables, latents, params)
    assert len(words) == 1 and words[0].size == 0
    data = write_file(header, zero_weights(header), tables, words, context=params)
    assert _parts(data) == ({**sections_of(data), b"LATN": struct.pack("<II", 0, 0)}, b"")  # one empty segment
    decoded = file_latents(read_file(data))
    assert [np.unique(level).tolist() for level in decoded] == [[5], [-3], [9]]


# ---------------------------------------------------------------------------------------------- the integers


def test_laplace_constants_are_their_formula_and_the_spec_hash() -> None:
    """LAPLACE_T[j] = round(2^30 exp(-1 / (2 b_j))), b_j = 2^(j/8 - 4), computed to 60 digits (every value
    is far from a rounding tie, so float64 agrees); their SHA-256 as u32 LE is the one SPEC §5a lists."""
    assert len(LAPLACE_T) == 89
    getcontext().prec = 60
    for j, t in enumerate(LAPLACE_T):
        b = Decimal(2) ** (Decimal(j) / 8 - 4)
        exact = Decimal(ONE) * (-1 / (2 * b)).exp()
        assert t == int(exact.to_integral_value()), j
        assert abs(exact - int(exact) - Decimal("0.5")) > Decimal("0.001"), j
        assert t == round(ONE * math.exp(-1 / (2 * spec_b(j)))), j
    assert all(a < b for a, b in zip(LAPLACE_T, LAPLACE_T[1:])) and 0 < LAPLACE_T[0] and LAPLACE_T[-1] < ONE
    digest = hashlib.sha256(struct.pack("<89I", *LAPLACE_T)).hexdigest()
    assert digest == "1ad985e997c31b67e7b3245ae374d761ab4caa3abbfc69ef34af886e1afebff7"
    spec = (REPO / "SPEC.md").read_text(encoding="utf-8")
    section = spec[spec.index("## 5a.") : spec.index("## 6.")]
    assert re.findall(r"`([0-9a-f]{64})`", section) == [digest]


@pytest.mark.parametrize("span", [1, 2, 3, 17, 300, MAX_LEVEL_SPAN])
def test_context_counts_properties(span: int) -> None:
    """Every (bucket, span) table: 2 span - 1 counts, each >= 1, summing to 2^15; exactly SPEC's integer
    weights turned into counts by §5's rule; the centre the largest and the counts falling away from it;
    symmetric up to the one extra count §5's tie rule gives the lower of two equal remainders; the lower
    the bucket (the smaller the scale), the more of the 2^15 on the centre."""
    previous_centre = TOTAL + 1
    for bucket in range(89):
        counts = context_counts(bucket, span)
        assert counts.dtype == np.uint32 and counts.shape == (2 * span - 1,) and not counts.flags.writeable
        c = counts.astype(np.int64)
        assert c.min() >= 1 and c.sum() == TOTAL
        if bucket in (0, 1, 44, 88) or span <= 17:
            assert c.tolist() == list(spec_counts(bucket, span)), bucket
        mid = span - 1
        assert np.all(np.diff(c[: mid + 1]) >= 0) and np.all(np.diff(c[mid:]) <= 0)
        assert np.abs(c - c[::-1]).max() <= 1
        weights = spec_weights(bucket, span)
        assert weights == weights[::-1]
        if span > 1:
            assert c[mid] < previous_centre  # strictly less peaked as the bucket (scale) grows
            previous_centre = c[mid]
    if span == MAX_LEVEL_SPAN:  # no tail is cut off: the centre holds P(0) = 1 - t of the shared counts
        n = 2 * span - 1
        for bucket in range(89):
            share = 1 + (TOTAL - n) * (1 - LAPLACE_T[bucket] / ONE)
            assert abs(int(context_counts(bucket, span)[span - 1]) - share) <= 1.5, bucket


def test_predict_is_the_spec_formula() -> None:
    """predict() against SPEC §5a in Python integers: random networks on random inputs (negative outputs:
    floor, not truncation; centres clipped at both ends of the level's range; buckets at 0 and 88)."""
    rng = np.random.default_rng(11)
    seen_buckets, seen_centres = set(), set()
    for trial in range(60):
        width = int(rng.integers(1, 33))
        w2_bits = int(rng.integers(4, 13))  # output scales from a few buckets to far past both ends
        params = ContextParams(
            w1=rng.integers(-(1 << 14), (1 << 14) + 1, (width, 7)), b1=rng.integers(-(1 << 16), (1 << 16) + 1, width),
            w2=rng.integers(-(1 << w2_bits), (1 << w2_bits) + 1, (2, width)),
            level_bias=rng.integers(-(1 << 16), (1 << 16) + 1, (3, 2)),
            level_low=np.array([-5, 0, -30000]), level_span=np.array([11, 1, 2048]),
        )
        params.validate(width, 3)
        x = rng.integers(-60, 61, (25, 7))
        x[:, 6] = rng.integers(0, 2, 25)
        for slot in range(3):
            centre, bucket = predict(params, slot, x)
            assert centre.dtype == bucket.dtype == np.int64
            for row in range(25):
                expected = spec_predict(params, slot, x[row].tolist())
                assert (int(centre[row]), int(bucket[row])) == expected, (trial, slot, row)
            if slot == 0:
                seen_centres.update(centre.tolist())
            seen_buckets.update(bucket.tolist())
    assert {0, 88} <= seen_buckets and len(seen_buckets) > 40
    assert {-5, 5} <= seen_centres and len(seen_centres) == 11  # clipped at both ends, every value reached


def test_predict_at_the_bounds_stays_exact_in_int64() -> None:
    """The largest network SPEC allows on the largest inputs: |W| = 2^20, |b| = 2^27, width 32, inputs
    +-1024: int64 arithmetic equals Python's unbounded integers (no intermediate beyond 2^59)."""
    width = C.MAX_CONTEXT_WIDTH
    for sign in (1, -1):
        params = ContextParams(
            w1=np.full((width, 7), sign * MAX_WEIGHT), b1=np.full(width, MAX_BIAS),
            w2=np.array([[MAX_WEIGHT] * width, [-MAX_WEIGHT] * width]), level_bias=np.array([[MAX_BIAS, -MAX_BIAS]]),
            level_low=np.array([C.MIN_SYMBOL]), level_span=np.array([MAX_LEVEL_SPAN]),
        )
        params.validate(width, 1)
        x = np.array([[1024] * 6 + [1], [-1024] * 6 + [0], [1024, -1024, 1024, -1024, 0, 7, 1]])
        centre, bucket = predict(params, 0, x)
        expected = [spec_predict(params, 0, row) for row in x.tolist()]
        assert list(zip(centre.tolist(), bucket.tolist())) == expected
        hidden = 7 * 1024 * MAX_WEIGHT + MAX_BIAS
        assert width * MAX_WEIGHT * hidden < 1 << 59


def test_context_sources_and_inputs_on_a_small_example() -> None:
    """context_sources and context_inputs against SPEC §5a by hand: a dense 4 x 3 level whose parent is a
    hashed 9 x 7 level (T = 5) and grandparent a dense 2 x 1 level."""
    config = ModelConfig(num_levels=3, log2_hashmap_size=5, context_width=1)
    header = Header(16, 12, config, ((2, 1), (9, 7), (4, 3)))
    levels = header.layout.levels
    assert [level.dense for level in levels] == [True, False, True] and levels[2].context and not levels[1].context
    # nearest vertices: x' = min(floor((2 x 9 + 4) / 8), 9), y' = min(floor((2 y 7 + 3) / 6), 7)
    assert [spec_nearest(x, 4, 9) for x in range(5)] == [0, 2, 5, 7, 9]
    assert [spec_nearest(y, 3, 7) for y in range(4)] == [0, 2, 5, 7]
    assert [spec_nearest(x, 4, 2) for x in range(5)] == [0, 1, 1, 2, 2]  # x = 1, 3 lie halfway: rounded up
    rng = np.random.default_rng(5)
    latents = [rng.integers(-2000, 2000, (level.rows, 1)) for level in levels]
    for anchors in (True, False):
        xs = np.array([x for y in range(4) for x in range(5) if ((x + y) % 2 == 0) == anchors])
        ys = np.array([y for y in range(4) for x in range(5) if ((x + y) % 2 == 0) == anchors])
        rows = context_sources(levels, 2, xs, ys, anchors)
        inputs = context_inputs(levels, 2, xs, ys, latents[2][:, 0], (latents[1][:, 0], latents[0][:, 0]), anchors)
        for k, (x, y) in enumerate(zip(xs.tolist(), ys.tolist())):
            own = y * 5 + x
            neighbours = [own - 1 if x > 0 else -1, own + 1 if x < 4 else -1, own - 5 if y > 0 else -1,
                          own + 5 if y < 3 else -1]
            expected = ([-1] * 4 if anchors else neighbours) + [
                spec_hash_row(spec_nearest(x, 4, 9), spec_nearest(y, 3, 7), 5),
                spec_nearest(y, 3, 1) * 3 + spec_nearest(x, 4, 2)]
            assert rows[k].tolist() == expected, (x, y)
            assert inputs[k].tolist() == spec_inputs(levels, 2, x, y, latents), (x, y)
        assert np.abs(inputs).max() == 1024  # latents up to +-2000 are clamped
    assert spec_hash_row(3, 5, 4) == 6  # SPEC §4's test vector
    # a context level 1: no grandparent (its input is 0), the parent is level 0
    first = Header(16, 12, config, ((2, 1), (4, 3), (9, 7))).layout.levels
    assert first[1].context
    rows = context_sources(first, 1, np.array([0, 4, 1]), np.array([3, 0, 0]), False)
    assert rows[:, 5].tolist() == [-1, -1, -1] and rows[:, 4].tolist() == [1 * 3 + 0, 0 * 3 + 2, 0 * 3 + 1]
    assert rows[:, :4].tolist() == [[-1, 16, 10, -1], [3, -1, -1, 9], [0, 2, -1, 6]]


# ---------------------------------------------------------------------------------------------- refusals


def _payload_with(params_tensors: dict, low, span, tables, orders=None) -> bytes:
    bits = hand_context_bits(params_tensors, low, span, orders)
    return bits_to_bytes(bits + "".join(hand_table_bits(t) for t in tables))


def _valid():
    return build("hashed_parent")


BAD_CONTEXT = {
    # name: ((what, index, value): one tensor entry, or "low"/"span" of context level 0, set; message)
    "w1_above": (("w1", (0, 3), MAX_WEIGHT + 1), r"^context model w1 has a value outside \[-1048576, 1048576\]$"),
    "w2_below": (("w2", (1, 0), -MAX_WEIGHT - 1), r"^context model w2 has a value outside \[-1048576, 1048576\]$"),
    "b1_above": (("b1", 0, MAX_BIAS + 1), r"^context model b1 has a value outside \[-134217728, 134217728\]$"),
    "bias_below": (("level_bias", (0, 1), -MAX_BIAS - 1), r"^context model level_bias has a value outside"),
    "w1_huge": (("w1", (0, 0), 1 << 40), r"^context model w1 has a value outside"),
    "span_above": (("span", 0, MAX_LEVEL_SPAN + 1), "latent range is empty, wider than 2048 or outside the symbol"),
    "low_below": (("low", 0, C.MIN_SYMBOL - 1), "outside the symbol range"),
    "high_above": (("low", 0, None), "outside the symbol range"),  # low + span - 1 = MAX_SYMBOL + 1
}


@pytest.mark.parametrize("case", BAD_CONTEXT)
def test_out_of_bound_networks_are_refused(case: str) -> None:
    """The reader refuses (ShcFormatError) what SPEC §5a bounds; the writer refuses it too (ValueError)."""
    header, params, tables, latents, weights, words, data = _valid()
    tensors = {name: value.copy() for name, value in tensors_of(params).items()}
    low, span = params.level_low.tolist(), params.level_span.tolist()
    (what, index, value), match = BAD_CONTEXT[case]
    if what == "low":
        low[index] = C.MAX_SYMBOL - span[index] + 2 if value is None else value
    elif what == "span":
        span[index] = value
    else:
        tensors[what][index] = value
    with pytest.raises(ShcFormatError, match=match):
        read_file(with_section(data, b"TABL", _payload_with(tensors, low, span, tables)))
    bad = ContextParams(**tensors, level_low=np.array(low), level_span=np.array(span))
    with pytest.raises(ShcFormatError, match=match):
        bad.validate(params.width, 1)
    with pytest.raises(ValueError, match=match) as info:
        write_file(header, weights, tables, words, context=bad)
    assert not isinstance(info.value, ShcFormatError)
    # the bounds themselves are valid
    edge = {name: value.copy() for name, value in tensors_of(params).items()}
    edge["w1"][0, 3], edge["w2"][1, 0] = MAX_WEIGHT, -MAX_WEIGHT
    edge["b1"][0], edge["level_bias"][0, 1] = MAX_BIAS, -MAX_BIAS
    read_file(with_section(data, b"TABL", _payload_with(edge, params.level_low.tolist(), [MAX_LEVEL_SPAN], tables)))


def test_span_zero_and_wrong_shapes_are_refused() -> None:
    """A span of 0 cannot be stored (span - 1 is unsigned) but is refused where params are made; so are
    tensors of the wrong shape and a network given where the header has none (or none where it has one)."""
    header, params, tables, latents, weights, words, data = _valid()
    zero = replace(params, level_span=np.array([0]))
    with pytest.raises(ShcFormatError, match="latent range is empty"):
        zero.validate(params.width, 1)
    with pytest.raises(ValueError, match="latent range is empty"):
        write_file(header, weights, tables, words, context=zero)
    with pytest.raises(ShcFormatError, match=r"context model w1 has shape \(1, 6\), expected \(1, 7\)"):
        replace(params, w1=params.w1[:, :6]).validate(1, 1)
    with pytest.raises(ShcFormatError, match=r"level_bias has shape \(1, 2\), expected \(2, 2\)"):
        params.validate(1, 2)
    with pytest.raises(ValueError, match="context network must be given exactly when"):
        write_file(header, weights, tables, words)
    plain = Header(header.width, header.height, replace(header.config, context_width=0), header.level_cells)
    with pytest.raises(ValueError, match="context network must be given exactly when"):
        write_file(plain, weights, histogram_tables(plain, latents), words, context=params)


def test_context_orders_above_24_are_refused() -> None:
    header, params, tables, *_, data = _valid()
    orders = {"w1": 0, "b1": 0, "w2": 25, "level_bias": 0}
    payload = _payload_with(tensors_of(params), params.level_low.tolist(), params.level_span.tolist(), tables, orders)
    with pytest.raises(ShcFormatError, match="^TABL section: context w2 order 25 is above 24$"):
        read_file(with_section(data, b"TABL", payload))


def _head(config: ModelConfig, cells, latent_coding: int = 0, version: int = C.FORMAT_VERSION) -> bytes:
    """SPEC §2 by hand: version 6 has context_width after channels, version 5 does not."""
    fixed = struct.pack("<IIBBBBHBBBBB", 16, 12, config.num_levels, config.log2_hashmap_size, config.latent_dim,
                        config.feat_dim, config.mlp_width, config.mlp_depth, config.num_groups, latent_coding,
                        config.interpolation, config.channels)
    if version >= 6:
        fixed += bytes([config.context_width])
    return fixed + b"".join(struct.pack("<HH", *cell) for cell in cells)


@pytest.mark.parametrize(
    ("config", "latent_coding", "match"),
    [
        (ModelConfig(num_levels=2, log2_hashmap_size=6, latent_dim=2, context_width=4), 0,
         r"^header field context_width=4 needs latent_dim 1, got 2$"),
        (ModelConfig(num_levels=2, log2_hashmap_size=6, context_width=4), 1,
         r"^header field context_width must be 0 for float16 latents$"),
        (ModelConfig(num_levels=2, log2_hashmap_size=6, context_width=33), 0,
         r"context_width=33 is outside the allowed range \[0, 32\]"),
        (ModelConfig(num_levels=2, log2_hashmap_size=6, context_width=255), 0, r"context_width=255 is outside"),
    ],
)
def test_header_refuses_what_a_context_network_cannot_code(config: ModelConfig, latent_coding: int, match: str) -> None:
    """context_width > 0 needs D = 1 and range-coded latents (SPEC §2), and at most 32 hidden units."""
    _, _, _, _, _, _, data = _valid()
    with pytest.raises(ShcFormatError, match=match):
        read_file(with_section(data, b"HEAD", _head(config, ((2, 2), (4, 4)), latent_coding)))
    header = Header(16, 12, config, ((2, 2), (4, 4)), latent_coding)
    with pytest.raises(ShcFormatError, match=match):
        header.validate()


def test_a_latent_outside_its_level_range_is_refused() -> None:
    """LATN coded with a residual the tables allow but that lands outside the level's declared range
    (SPEC §5a: an error): every centre is the top of the range, one latent is one above it."""
    config = ModelConfig(num_levels=2, log2_hashmap_size=8, mlp_width=2, mlp_depth=1, context_width=2)
    header = Header(8, 8, config, ((1, 1), (4, 3)))
    levels = header.layout.levels
    params = ContextParams(np.zeros((2, 7), np.int64), np.zeros(2, np.int64), np.zeros((2, 2), np.int64),
                           np.array([[MAX_BIAS, 0]]), np.array([-2]), np.array([4]))  # range -2 .. 1, centre 1
    values = np.tile(np.array([-2, -1, 0, 1]), 5)
    latents = [np.zeros((4, 1), np.int32), values.reshape(-1, 1).astype(np.int32)]
    tables = histogram_tables(header, latents)
    weights = zero_weights(header)
    good = write_file(header, weights, tables, encode_latents(header, tables, latents, params), context=params)
    np.testing.assert_array_equal(file_latents(read_file(good))[1], latents[1])
    assert predict(params, 0, np.zeros((1, 7), np.int64))[0].tolist() == [1]  # every centre: the top, 1
    for where, value in [(0, 2), (7, 2), (3, 4)]:  # an anchor, a non-anchor, the largest residual (+3)
        wrong = values.copy()
        wrong[where] = value
        with pytest.raises(ValueError, match=r"level 1 latents outside its context range \[-2, 1\]"):
            encode_latents(header, tables, [latents[0], wrong.reshape(-1, 1)], params)
        encoder = constriction.stream.queue.RangeEncoder()  # level 0 has a one-symbol table: nothing to code
        encode_context_level(encoder, params, 0, levels, 1, wrong, (np.zeros(4, np.int64), np.zeros(0, np.int64)))
        data = write_file(header, weights, tables, (encoder.get_compressed(),), context=params)
        with pytest.raises(ShcFormatError, match="^LATN section: a context-coded latent falls outside its level's"):
            decode_bytes(data)


def test_every_truncation_of_a_context_tabl_is_a_clean_error() -> None:
    """TABL cut anywhere (CRC re-fixed): the context block or the tables end early."""
    _, params, *_, data = build("three_groups")
    payload = sections_of(data)[b"TABL"]
    context_bits = len(hand_context_bits(tensors_of(params), params.level_low.tolist(), params.level_span.tolist()))
    messages = set()
    for cut in range(len(payload)):
        with pytest.raises(ShcFormatError, match="^TABL section: truncated while reading ") as info:
            read_file(with_section(data, b"TABL", payload[:cut]))
        messages.add(re.sub(r"(?<= )\d+", "N", str(info.value)))
    assert {m for m in messages if "context" in m} >= {
        "TABL section: truncated while reading context w1 order", "TABL section: truncated while reading context w1",
        "TABL section: truncated while reading context level_bias",
        "TABL section: truncated while reading context level N low"}
    assert any("table N" in m for m in messages) and context_bits < 8 * len(payload)


def test_version_5_files_read_with_context_width_0() -> None:
    """A version-5 file (HEAD without context_width) reads as version 6 with context_width 0: no network,
    a table per (group, dimension). Its HEAD in a version-6 file is one byte short; a version-6 HEAD in a
    version-5 file one byte long."""
    names = sorted(COMPAT_DIR.glob("*_v5.shc"))
    assert len(names) == 5
    for path in names:
        data = path.read_bytes()
        assert data[4] == 5
        parsed = read_file(data)
        assert parsed.header.config.context_width == 0 and parsed.context is None
        assert parsed.header.layout.context_levels == () and len(parsed.tables) == parsed.header.config.num_tables
        assert len(sections_of(data)[b"HEAD"]) == 19 + 4 * parsed.header.config.num_levels
    config = ModelConfig(num_levels=2, log2_hashmap_size=6)
    cells = ((2, 2), (4, 4))
    *_, data = _valid()
    v5_in_v6 = with_section(data, b"HEAD", _head(config, cells, version=5))
    with pytest.raises(ShcFormatError, match="truncated while reading level 1 cells"):
        read_file(v5_in_v6)
    v6_in_v5 = with_section(bytes(data[:4]) + bytes([5]) + data[5:], b"HEAD", _head(config, cells))
    with pytest.raises(ShcFormatError, match="HEAD section: 1 unexpected trailing bytes"):
        read_file(v6_in_v5)
