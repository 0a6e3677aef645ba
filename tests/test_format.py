"""Tests for the ``.shc`` file format and its normative decoder (shc.format): numpy and constriction only.

Nothing here imports torch; the golden files in ``tests/data`` were made by ``tests/data/make_golden.py``
with the real encoder. Hand-built files are framed by :func:`frame` below, written from the byte layout
rather than with the library's writer, so that the reader is checked against an independent writer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import subprocess
import sys
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shc.format import constants as C
from shc.format.container import Header, ModelConfig, QuantizedWeights, Table, read_file, weight_shapes, write_file
from shc.format.decoder import Synthesis, decode_bytes, output_size, to_uint8
from shc.format.entropy import decode_latents, encode_latents, pmf_to_table
from shc.format.errors import ShcFormatError
from shc.tools.fuzz import random_weights
from shc.format.grid import axis_samples, corner_indices_weights, level_group, level_num_rows

DATA_DIR = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA_DIR / "golden.json").read_text())
GOLDEN_NAMES = sorted(GOLDEN["files"])
PREFIX = C.MAGIC + bytes([C.FORMAT_VERSION])
TOTAL = 1 << C.TABLE_PRECISION


def golden_bytes(name: str) -> bytes:
    return (DATA_DIR / name).read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------- hand-built files


def frame(tag: bytes, payload: bytes) -> bytes:
    """One section as the format lays it out: tag, u32 LE length, payload, u32 LE CRC32(tag + payload)."""
    return tag + struct.pack("<I", len(payload)) + payload + struct.pack("<I", zlib.crc32(tag + payload))


def container(head: bytes, weights: bytes = b"", tables: bytes = b"", latents: bytes = b"") -> bytes:
    return PREFIX + frame(b"HEAD", head) + frame(b"WGHT", weights) + frame(b"TABL", tables) + frame(b"LATN", latents)


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
) -> bytes:
    cells = [(4, 4)] * num_levels if cells is None else cells
    config = (num_levels, log2_hashmap_size, latent_dim, feat_dim, mlp_width, mlp_depth, num_groups, latent_coding)
    fixed = struct.pack("<IIBBBBHBBB", width, height, *config)
    return fixed + b"".join(struct.pack("<II", nx, ny) for nx, ny in cells)


def replace_section(data: bytes, tag: bytes, payload: bytes) -> bytes:
    """``data`` (a valid file) with one section's payload replaced; length and CRC re-fixed."""
    pos, out = len(PREFIX), [data[: len(PREFIX)]]
    while pos < len(data):
        found = data[pos : pos + 4]
        (length,) = struct.unpack_from("<I", data, pos + 4)
        old = data[pos + 8 : pos + 8 + length]
        out.append(frame(found, payload if found == tag else old))
        pos += 12 + length
    return b"".join(out)


@dataclass
class Built:
    header: Header
    weights: QuantizedWeights
    tables: tuple[Table, ...]
    latents: list[np.ndarray]
    words: np.ndarray
    data: bytes


def build(
    config: ModelConfig,
    cells: tuple[tuple[int, int], ...],
    table_specs: list[tuple[np.ndarray, int]],
    width: int = 20,
    height: int = 12,
    seed: int = 0,
) -> Built:
    """A valid file: integer latents drawn half from each table's own PMF, half uniformly over its range
    (so that symbols with count 1 get coded too), random int8 weights with random scales."""
    rng = np.random.default_rng(seed)
    header = Header(width, height, config, cells)
    header.validate()
    tables = tuple(pmf_to_table(np.asarray(pmf, dtype=np.float64), min_symbol) for pmf, min_symbol in table_specs)
    latents = []
    for level, rows in enumerate(header.level_rows()):
        group = level_group(level, config.num_levels, config.num_groups)
        columns = []
        for dim in range(config.latent_dim):
            table = tables[group * config.latent_dim + dim]
            n = len(table.counts)
            drawn = rng.choice(n, size=rows, p=table.counts / TOTAL)
            uniform = rng.integers(0, n, size=rows)
            columns.append(table.min_symbol + np.where(rng.random(rows) < 0.5, drawn, uniform))
        latents.append(np.stack(columns, axis=1).astype(np.int32))
    num_weights = sum(int(np.prod(shape)) for _, shape in weight_shapes(header))
    scales = rng.uniform(0.001, 0.01, len(weight_shapes(header))).astype(np.float32)
    weights = QuantizedWeights(scales, rng.integers(-127, 128, num_weights).astype(np.int8))
    words = encode_latents(header, tables, latents)
    return Built(header, weights, tables, latents, words, write_file(header, weights, tables, words))


def single(pmf, min_symbol: int = 0, cells=((6, 5),), log2_hashmap_size: int = 8) -> dict:
    config = ModelConfig(num_levels=len(cells), log2_hashmap_size=log2_hashmap_size, mlp_width=4, mlp_depth=1)
    return {"config": config, "cells": cells, "table_specs": [(pmf, min_symbol)]}


ENTROPY_CASES = {
    "one_symbol": single(np.ones(1), min_symbol=5),
    "two_symbols": single([0.9, 0.1], min_symbol=-1),
    "skewed_three": single([1e-12, 1.0, 1e-12], min_symbol=-1),  # counts 1, 32766, 1
    "uniform_4096": single(np.ones(4096), min_symbol=-2048, cells=((30, 20),), log2_hashmap_size=10),
    "peaked_4096": single(np.eye(1, 4096, 100).ravel(), min_symbol=-100, cells=((30, 20),), log2_hashmap_size=10),
    "top_of_range": single(np.arange(1.0, 11.0), min_symbol=C.MAX_SYMBOL - 9),
    "bottom_of_range": single(np.arange(10.0, 0.0, -1.0), min_symbol=C.MIN_SYMBOL),
    "hashed_levels": single(
        np.exp(-np.abs(np.arange(-8, 9)) / 2.0), min_symbol=-8, cells=((3, 2), (9, 7), (15, 11)), log2_hashmap_size=5
    ),
    "groups_and_dims": {
        "config": ModelConfig(
            num_levels=3, log2_hashmap_size=4, latent_dim=2, feat_dim=3, mlp_width=5, mlp_depth=2, num_groups=2
        ),
        "cells": ((2, 1), (5, 4), (9, 7)),  # 6 rows dense, then 30 and 80 vertices hashed into 16 rows
        "table_specs": [(np.ones(1), 0), ([1, 2, 5, 9, 5, 2, 1.0], -3), ([3, 1.0], 0), (np.ones(40), -20)],
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
    flat = parsed.weights.dequantized(parsed.header)
    assert flat.dtype == np.float32 and flat.size == built.weights.values.size
    assert len(parsed.tables) == len(built.tables)
    for got, want in zip(parsed.tables, built.tables):
        assert got.min_symbol == want.min_symbol
        np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_array_equal(parsed.latent_words, built.words)
    assert sum(parsed.section_bytes.values()) == len(built.data)
    # what was read writes back to the very same bytes
    assert write_file(parsed.header, parsed.weights, parsed.tables, parsed.latent_words) == built.data


@pytest.mark.parametrize("case", ENTROPY_CASES)
def test_entropy_decoding_is_exact(case: str) -> None:
    built = build(**ENTROPY_CASES[case])
    decoded = decode_latents(built.header, built.tables, built.words)
    assert [d.dtype for d in decoded] == [np.int32] * len(decoded)
    for got, want in zip(decoded, built.latents):
        np.testing.assert_array_equal(got, want)
    # and from the file: the decoder only ever sees the stored integer tables
    parsed = read_file(built.data)
    for got, want in zip(decode_latents(parsed.header, parsed.tables, parsed.latent_words), built.latents):
        np.testing.assert_array_equal(got, want)
    decode_bytes(built.data)  # the whole decoder runs on it


def test_one_symbol_table_costs_no_bits() -> None:
    built = build(**ENTROPY_CASES["one_symbol"])
    assert built.words.size == 0
    assert all(np.all(level == 5) for level in decode_latents(built.header, built.tables, built.words))


def test_encode_refuses_latents_outside_the_table() -> None:
    built = build(**ENTROPY_CASES["two_symbols"])
    latents = [level.copy() for level in built.latents]
    latents[0][0, 0] = 1  # the table covers -1..0
    with pytest.raises(ValueError, match="outside table 0 range"):
        encode_latents(built.header, built.tables, latents)


# ---------------------------------------------------------------------------------------------- GPU vs CPU floats


def test_perturbed_pmfs_give_valid_tables_that_differ_at_most_slightly() -> None:
    """GPU and CPU can compute slightly different float PMFs; each still gives a valid integer table."""
    rng = np.random.default_rng(7)
    identical = 0
    for _ in range(300):
        n = int(rng.integers(2, 300))
        pmf = rng.dirichlet(np.full(n, 0.5))
        for other in (pmf * (1 + 1e-7 * rng.standard_normal(n)), pmf.astype(np.float32).astype(np.float64)):
            a, b = pmf_to_table(pmf, -(n // 2)), pmf_to_table(other, -(n // 2))
            for table in (a, b):
                assert int(table.counts.sum()) == TOTAL and int(table.counts.min()) >= 1
            # each count is the floor or the ceiling of its scaled probability, so a tiny change moves it by <= 2
            assert int(np.abs(a.counts.astype(np.int64) - b.counts.astype(np.int64)).max()) <= 2
            identical += np.array_equal(a.counts, b.counts)
    assert identical > 300  # most perturbations do not change the integers at all


def test_file_decodes_exactly_with_the_tables_it_stores() -> None:
    """The real property: whatever floats the encoder had, the file carries its integer tables.

    A uniform 3-symbol PMF has three equal fractional parts, so the spare count goes by symbol order; a
    1e-7 relative change (a GPU float) moves it to another symbol and the integer tables differ. A file
    encoded with the GPU's table decodes exactly, because the decoder reads that table from the file.
    """
    cpu_pmf = np.ones(3) / 3
    gpu_pmf = cpu_pmf * (1 + np.array([0.0, 0.0, 1e-7]))
    cpu, gpu = pmf_to_table(cpu_pmf, -1), pmf_to_table(gpu_pmf, -1)
    assert cpu.counts.tolist() == [10923, 10923, 10922]
    assert gpu.counts.tolist() == [10923, 10922, 10923]

    config = ModelConfig(num_levels=1, log2_hashmap_size=10)
    built = build(config=config, cells=((40, 20),), table_specs=[(gpu_pmf, -1)])
    parsed = read_file(built.data)
    np.testing.assert_array_equal(parsed.tables[0].counts, gpu.counts)
    decoded = decode_latents(parsed.header, parsed.tables, parsed.latent_words)[0]
    np.testing.assert_array_equal(decoded, built.latents[0])
    # had the decoder rebuilt the table from its own floats, it would have decoded other symbols
    try:
        wrong = decode_latents(parsed.header, (cpu,), parsed.latent_words)[0]
    except ShcFormatError:
        return
    assert not np.array_equal(wrong, built.latents[0])


# ---------------------------------------------------------------------------------------------- pmf_to_table


@pytest.mark.parametrize("n", [1, 2, 3, 17, 256, 4095, 4096])
def test_pmf_to_table_properties(n: int) -> None:
    rng = np.random.default_rng(n)
    pmfs = [
        rng.random(n),
        rng.dirichlet(np.full(n, 0.05)),  # most mass on a few symbols
        np.where(rng.random(n) < 0.5, 0.0, rng.random(n)) + (np.arange(n) == 0),  # many zero-probability symbols
        np.exp(rng.uniform(-700, 700, n)),  # huge dynamic range
        np.full(n, 1e300),  # a sum that overflows float64 unless rescaled
        np.full(n, 5e-324),  # subnormal
    ]
    for pmf in pmfs:
        table = pmf_to_table(pmf, min_symbol=-3)
        assert table.counts.dtype == np.uint32 and table.counts.shape == (n,)
        assert int(table.counts.sum()) == TOTAL
        assert int(table.counts.min()) >= 1
        assert table.min_symbol == -3 and table.max_symbol == -3 + n - 1
        assert np.all(table.counts[pmf == 0] == 1) or n == 1
        # a more probable symbol never gets fewer counts; equal ones favour the lower symbol index (off by
        # at most 1 where float rounding makes different probabilities scale to the same value)
        steps = np.diff(table.counts[np.lexsort((-np.arange(n), pmf))].astype(np.int64))
        tiny = np.any((pmf > 0) & (pmf < pmf.max() * 1e-12))
        assert steps.min(initial=0) >= (-1 if tiny else 0)
        np.testing.assert_array_equal(pmf_to_table(pmf.copy(), -3).counts, table.counts)  # deterministic


@pytest.mark.parametrize(
    ("pmf", "match"),
    [
        ([], "1-D with 1..4096 entries"),
        (np.ones(4097), "1-D with 1..4096 entries"),
        (np.ones((2, 2)), "1-D with 1..4096 entries"),
        ([0.5, np.nan], "finite, non-negative and not all zero"),
        ([0.5, np.inf], "finite, non-negative and not all zero"),
        ([0.5, -0.1, 0.6], "finite, non-negative and not all zero"),
        ([0.0, 0.0], "finite, non-negative and not all zero"),
    ],
)
def test_pmf_to_table_rejects(pmf, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        pmf_to_table(np.asarray(pmf, dtype=np.float64), 0)
    assert not isinstance(info.value, ShcFormatError)  # a caller's mistake, not a malformed file


# ---------------------------------------------------------------------------------------------- malformed files


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_every_truncation_is_a_clean_error(name: str) -> None:
    data = golden_bytes(name)
    for length in range(len(data)):
        with pytest.raises(ShcFormatError, match="truncated|wrong magic"):
            decode_bytes(data[:length])


def test_container_errors_have_distinct_messages() -> None:
    data = golden_bytes(GOLDEN_NAMES[0])
    corrupted = bytearray(data)
    corrupted[-10] ^= 0x01  # inside the LATN payload
    cases = {
        "magic": (b"PNG\x1a" + data[4:], r"^not an \.shc file \(wrong magic bytes\)$"),
        "version": (
            C.MAGIC + bytes([C.FORMAT_VERSION + 1]) + data[5:],
            rf"^unsupported \.shc format version {C.FORMAT_VERSION + 1} \(this decoder reads versions 2, 3\)$",
        ),
        "crc": (bytes(corrupted), r"^section LATN is corrupted \(CRC32 mismatch\)$"),
        "trailing": (data + b"\x00\x01\x02", r"^3 bytes of trailing garbage after the last section$"),
    }
    messages = set()
    for bad, match in cases.values():
        with pytest.raises(ShcFormatError, match=match) as info:
            decode_bytes(bad)
        messages.add(str(info.value))
    assert len(messages) == len(cases)


@functools.cache
def _valid_small() -> Built:
    return build(**ENTROPY_CASES["two_symbols"])


def _weights_payload_with(scale: float = 0.01, value: int = 1) -> bytes:
    """A WGHT payload of the right length for ``_valid_small()`` with every scale / value set as given."""
    header = _valid_small().header
    return b"".join(
        struct.pack("<f", scale) + np.full(int(np.prod(shape)), value, dtype="i1").tobytes()
        for _, shape in weight_shapes(header)
    )


def _with(tag: bytes, payload: bytes) -> bytes:
    return replace_section(_valid_small().data, tag, payload)


def _table(*fields: int) -> bytes:
    return struct.pack("<iH" + "H" * (len(fields) - 2), *fields)


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
    "weights_count": (lambda: _with(b"WGHT", b"\x00\x3c" * 3), "WGHT section has 6 bytes, the header implies"),
    "weights_nan_scale": (
        lambda: _with(b"WGHT", _weights_payload_with(scale=float("nan"))),
        "non-finite or negative weight scale",
    ),
    "weights_negative_scale": (
        lambda: _with(b"WGHT", _weights_payload_with(scale=-1.0)),
        "non-finite or negative weight scale",
    ),
    "weights_int_minus_128": (
        lambda: _with(b"WGHT", _weights_payload_with(value=-128)),
        r"weight outside \[-127, 127\]",
    ),
    "table_zero_symbols": (lambda: _with(b"TABL", _table(0, 0)), "table 0 has 0 symbols"),
    "table_too_many_symbols": (lambda: _with(b"TABL", _table(0, 4097)), "table 0 has 4097 symbols"),
    "table_bad_sum": (lambda: _with(b"TABL", _table(0, 2, 5, 5)), r"sum to 2\*\*15"),
    "table_symbol_range": (lambda: _with(b"TABL", _table(C.MAX_SYMBOL, 2, 16383, 16383)), "exceeds"),
    "table_extra_bytes": (lambda: _with(b"TABL", _table(0, 2, 16383, 16383, 0)), "TABL section: 2 unexpected"),
    "latents_not_words": (lambda: _with(b"LATN", b"\x00" * 5), "not a multiple of 4"),
    "latents_too_long": (
        lambda: _with(b"LATN", _valid_small().words.astype("<u4").tobytes() + b"\x01\x00\x00\x00" * 4),
        "holds more data than the declared latents use|could not be range-decoded",
    ),
    "latents_garbage": (lambda: _with(b"LATN", b"\xff" * 12), "could not be range-decoded"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_files_are_clean_errors(case: str) -> None:
    make, match = MALFORMED[case]
    with pytest.raises(ShcFormatError, match=match):
        decode_bytes(make())


LIMITS = {
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
    "cells_over_limit": (dict(cells=[(C.MAX_GRID_CELLS_PER_SIDE + 1, 4)]), r"level 0 nx=1048577 is outside"),
    "cells_zero": (dict(cells=[(4, 0)]), r"level 0 ny=0 is outside"),
    "total_latents": (
        dict(num_levels=2, log2_hashmap_size=24, cells=[(4095, 4095)] * 2),  # 2 hashed levels of 2**24 rows
        r"declares 33554432 latents, more than the limit 16777216",
    ),
    "total_latents_dims": (
        dict(num_levels=1, log2_hashmap_size=24, latent_dim=2, cells=[(4095, 4095)]),
        r"declares 33554432 latents, more than the limit 16777216",
    ),
}


@pytest.mark.parametrize("case", LIMITS)
def test_header_limits_are_refused_before_allocation(case: str) -> None:
    fields, match = LIMITS[case]
    data = container(head_payload(**fields))
    tracemalloc.start()  # numpy reports its buffers to tracemalloc too
    try:
        with pytest.raises(ShcFormatError, match=match):
            decode_bytes(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated before refusing"


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
    assert first.shape == (entry["height"], entry["width"], 3) and first.dtype == np.uint8
    assert sha256(first.tobytes()) == entry["decoded_sha256"], "the normative decoder's output changed"
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(np.asarray(Image.open(DATA_DIR / entry["decoded_png"]).convert("RGB")), first)


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_file_decodes_at_any_size(name: str) -> None:
    entry = GOLDEN["files"][name]
    data = golden_bytes(name)
    width, height = entry["width"], entry["height"]
    assert decode_bytes(data, scale=0.5).shape == (round(height / 2), round(width / 2), 3)
    assert decode_bytes(data, scale=2).shape == (2 * height, 2 * width, 3)
    assert decode_bytes(data, size=(37, 21)).shape == (21, 37, 3)
    # a row wider than a tile is rendered in column tiles; they match an untiled evaluation of the same pixels
    wide_width = C.DECODE_TILE_PIXELS + 5
    wide = decode_bytes(data, size=(wide_width, 1))
    assert wide.shape == (1, wide_width, 3)
    parsed = read_file(data)
    synthesis = Synthesis(parsed, decode_latents(parsed.header, parsed.tables, parsed.latent_words))
    columns = np.arange(wide_width)
    direct = to_uint8(synthesis.mlp(synthesis.features(wide_width, 1, columns, np.zeros_like(columns))).T)
    assert int(np.abs(direct.astype(np.int16) - wide[0].astype(np.int16)).max()) <= 1


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
    """Cell and weights of pixel i on w pixels over n cells, against exact rational arithmetic."""
    from fractions import Fraction

    rng = np.random.default_rng(0)
    for size, cells in [(1, 1), (1, 4096), (4000, 1), (667, 37), (1000, 1 << 20), (3, 2), (1 << 20, 12345)]:
        pixels = np.unique(np.concatenate([[0, size - 1], rng.integers(0, size, 200)]))
        cell, w0, w1 = axis_samples(size, cells, pixels)
        for i, c, a, b in zip(pixels.tolist(), cell.tolist(), w0.tolist(), w1.tolist()):
            x = Fraction(2 * i + 1, 2 * size) * cells
            assert c == min(int(x), cells - 1)
            assert b == float(np.float32(float(x - c)))  # float(Fraction) is correctly rounded, as is /
            assert a == float(np.float32(float(1 - (x - c))))


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
    data = (DATA_DIR / "compat" / "parrot_64x48_q1_v2.shc").read_bytes()
    assert data[4] == 2 and sha256(data) == "2c8e09cb77fe4f27db057986dc1470d0ff0efa8b30058f32fe53ab22a8bcdaeb"
    parsed = read_file(data)
    assert parsed.header.range_coded and (parsed.header.width, parsed.header.height) == (64, 48)
    pixels = decode_bytes(data)
    assert sha256(pixels.tobytes()) == "b3c9f4150f6c73586e93613401737bf974d8bdea6825175eb89e015bbe831104"


def _float16_file(rng: np.random.Generator) -> tuple[Header, QuantizedWeights, np.ndarray, bytes]:
    header = Header(24, 16, ModelConfig(num_levels=3, log2_hashmap_size=5, latent_dim=2, feat_dim=2, mlp_width=6,
                                        mlp_depth=1, num_groups=2), ((2, 1), (5, 4), (9, 7)), C.LATENTS_FLOAT16)
    shapes = weight_shapes(header)
    weights = QuantizedWeights(rng.uniform(0.005, 0.02, len(shapes)).astype(np.float32),
                               rng.integers(-127, 128, sum(int(np.prod(s)) for _, s in shapes)).astype(np.int8))
    values = rng.normal(0, 2, header.total_latents).astype(np.float16)
    return header, weights, values, write_file(header, weights, (), values)


def test_float16_file_round_trip_and_decode() -> None:
    from shc.format.entropy import file_latents, pack_float16_latents

    header, weights, values, data = _float16_file(np.random.default_rng(4))
    assert len(data) == 4 + 1 + 12 * 4 + (17 + 8 * 3) + 4 * len(weight_shapes(header)) + weights.values.size + 2 * values.size
    parsed = read_file(data)
    assert parsed.header == header and parsed.tables == ()
    latents = file_latents(parsed)
    assert [lat.shape for lat in latents] == [(rows, 2) for rows in header.level_rows()]
    np.testing.assert_array_equal(pack_float16_latents(latents), values)  # LATN order: level, dim, row
    pixels = decode_bytes(data)
    reference = Synthesis(parsed, [lat.astype(np.float32) for lat in latents]).render(24, 16)
    np.testing.assert_array_equal(pixels, reference)
    assert len(np.unique(pixels)) > 10


def test_float16_file_errors() -> None:
    header, weights, values, data = _float16_file(np.random.default_rng(5))
    for cut in range(len(data)):
        with pytest.raises(ShcFormatError):
            read_file(data[:cut])
    nan = values.copy()
    nan[7] = np.float16("nan")
    with pytest.raises(ShcFormatError, match="non-finite float16 latent"):
        read_file(replace_section(data, b"LATN", nan.astype("<f2").tobytes()))
    with pytest.raises(ShcFormatError, match=r"LATN section has \d+ bytes, \d+ float16 latents need"):
        read_file(replace_section(data, b"LATN", values[:-1].astype("<f2").tobytes()))
    with pytest.raises(ShcFormatError, match="TABL section: .*unexpected trailing bytes"):
        read_file(replace_section(data, b"TABL", b"\x00" * 8))
    bad_coding = bytearray(replace_section(data, b"HEAD", head_payload(latent_coding=2)))
    with pytest.raises(ShcFormatError, match="latent_coding=2"):
        read_file(bytes(bad_coding))
    with pytest.raises(ValueError, match="1 tables given, the header implies 0"):
        write_file(header, weights, (Table(0, np.array([1 << 15], np.uint32)),), values)
    with pytest.raises(ValueError, match="finite latents"):
        write_file(header, weights, (), np.where(np.arange(values.size) == 3, np.inf, values))


def test_level_far_finer_than_the_output_decodes_in_bounded_memory() -> None:
    """A (hashed) level of 2^20 x 2^20 cells rendered at 64x48: the separable decoder gathers only the
    vertices each tile touches, never a block of the level's own size (found by the fuzzer)."""
    header = Header(64, 48, ModelConfig(num_levels=1, log2_hashmap_size=8, mlp_width=4, mlp_depth=1),
                    ((1 << 20, 1 << 20),))
    rng = np.random.default_rng(9)
    weights = random_weights(rng, header)
    table = pmf_to_table(np.ones(9), -4)
    latents = [rng.integers(-4, 5, (256, 1)).astype(np.int32)]
    data = write_file(header, weights, (table,), encode_latents(header, (table,), latents))
    tracemalloc.start()
    try:
        pixels = decode_bytes(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pixels.shape == (48, 64, 3)
    assert peak < 16 << 20
    parsed = read_file(data)
    synthesis = Synthesis(parsed, decode_latents(parsed.header, parsed.tables, parsed.latent_words))
    np.testing.assert_array_equal(synthesis.tile_features(64, 48, np.arange(64), np.arange(48)),
                                  synthesis.features(64, 48, np.tile(np.arange(64), 48), np.repeat(np.arange(48), 64)))
