"""Fuzz harness for the ``.shc`` reader and the normative decoder (numpy and constriction only, never torch).

Usage::

    python -m shc.tools.fuzz [--cases N] [--seed S] [--time-limit SECONDS] [--sweep-boundaries] [FILES...]

Each case takes one seed file, mutates it and runs :func:`shc.format.decoder.decode_image` on the result,
then reads the same bytes with :class:`shc.format.reader.ShcReader` (:func:`check_reader`; ``--no-reader``
skips it): a file that decodes must open whole and render the same pixels in full and in a region (from
only the segments the region needs), and render from its first level; a file cut short in its latents must
render its complete levels (or refuse with a ShcFormatError); any other refused file must be refused by
the reader too. The outcome is one of:

* ``error``: a clean :class:`~shc.format.errors.ShcFormatError` with a non-empty message;
* ``decoded``: a uint8 ``(height, width, channels)`` image whose size and channels match the file's header,
  with the file's ICC profile and EXIF block (None or non-empty bytes);
* ``failure``: anything else: another exception type (from the decoder or the reader), a wrong result, a
  reader that disagrees with the decoder, a case slower than ``--case-seconds``, or one whose peak traced
  allocation exceeds ``--memory-limit-mb``.

The run exits non-zero if there was any failure, or if an unmutated seed did not decode.

Most mutators re-fix the CRC32 of the section they touch (and of a latent segment, in the version-7 index),
so the mutation reaches the parser and the range decoder instead of stopping at the checksum. Seeds are the
files given on the command line, or by default the seed files shipped inside this package
(``shc/tools/seeds/*.shc``, package data, so that any install finds them: byte-identical copies of the golden
files ``tests/data/*.shc``, written together with them by ``tests/data/make_golden.py`` and checked equal by
``tests/test_fuzz.py``) plus six small synthetic files built here: one with a hashed level, two latent
dimensions, two groups and a one-symbol table; one with a 4096-symbol table, no hidden layer and weights up
to ``WEIGHT_CODE_MAX`` (the golden files only have dense levels and small tables); one with float16 latents
(no entropy coding); one RGBA file (HEAD ``channels`` = 4) with a META section; one with a context network
(SPEC §5a) over dense levels between hashed ones; one with chunked levels (SPEC §4a: a dense level in 4
chunks, a hashed one in 6, eleven latent segments, :data:`CHUNKED_CELLS`). Files of versions 2-6 given on
the command line are mutated in their own layout (versions 2-3: u32 level cells, int8 weights, count tables;
4-5: no context network; 2-6: LATN holds the latents, no segments); the default seeds are all version 7
(exp-Golomb weights and table histograms, SPEC §3, §5, whose mutators decode the bit streams, change the
integers and re-pack them; the context block at the start of TABL, whose mutator does the same with the
network's integers and level ranges, or adds a network to a file without one; the optional META section,
whose mutator re-frames its entries, and inserts or removes the section; the LATN segment index and the
segments after it, SPEC §6, whose mutators change lengths, CRCs and the number of entries, move the
boundaries between segments, change bytes inside one segment, and cut the file at every boundary).
Case ``i`` of seed ``S`` is reproducible on its own: its random generator is
``numpy.random.default_rng([S, i])``, and ``--case i`` reruns just that case. ``--sweep-truncations``
decodes every truncation of every seed, ``--sweep-boundaries`` the cuts at every section and segment
boundary and one byte either side (:func:`truncation_points`).

``--max-pixels`` defaults to 2**20 rather than the library's default: a header mutation may legitimately
ask for a large image, and a 1-megapixel decode of the golden files already takes about 3 s on 2 cores.
"""

from __future__ import annotations

import argparse
import faulthandler
import functools
import re
import struct
import sys
import time
import tracemalloc
import traceback
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from shc.format import constants as C
from shc.format.container import ShcFile, file_prefix, frame_section, read_file, section_order, write_file
from shc.format.header import Header, ModelConfig, head_layout, head_payload_bytes
from shc.format.metadata import EXIF_PREFIX, ICC_HEADER_BYTES, ICC_SIGNATURE
from shc.format.table import read_table_codes, table_codes, table_symbol_counts
from shc.format.weights import QuantizedWeights, weight_shapes
from shc.format.context import CONTEXT_INPUTS, CONTEXT_TENSORS, MAX_BIAS, MAX_LEVEL_SPAN, MAX_WEIGHT, ContextParams
from shc.format.decoder import DecodedImage, decode_image
from shc.format.entropy import encode_latents, histogram_tables, pack_float16_latents
from shc.format.errors import ShcFormatError
from shc.format.expgolomb import MAX_ORDER, BitReader, best_order, pack, zigzag
from shc.format.reader import ShcReader

__all__ = [
    "CHUNKED_CELLS",
    "CaseRun",
    "ContextCodes",
    "FuzzReport",
    "HistogramTable",
    "Seed",
    "check_case",
    "check_reader",
    "default_seeds",
    "fake_exif",
    "fake_icc",
    "main",
    "meta_entries",
    "mutate",
    "pack_histograms",
    "pack_index",
    "pack_meta",
    "pack_tabl",
    "random_context",
    "random_weights",
    "read_histograms",
    "read_tabl",
    "run_case",
    "run_fuzz",
    "segment_entries",
    "split_file",
    "split_segments",
    "synthetic_seeds",
    "table_latents",
    "truncation_points",
]

SEEDS_DIR = Path(__file__).resolve().parent / "seeds"
"""Valid encoder-made files shipped as package data (copies of the golden files in tests/data), so the
fuzzer finds its seeds in any install, editable or not."""

DEFAULT_MAX_PIXELS = 1 << 20
DEFAULT_CASE_SECONDS = 10.0
DEFAULT_MEMORY_LIMIT_MB = 1024
PREFIX = file_prefix()

Sections = list[tuple[bytes, bytes]]

# ---------------------------------------------------------------------------------------------- framing


# Sections are framed by the container's frame_section: tag, u32 length, payload, u32 CRC32.
_LENGTH_AT = C.SECTION_TAG_BYTES
"""Offset of the u32 length inside a framed section."""
_PAYLOAD_AT = C.SECTION_TAG_BYTES + C.SECTION_LENGTH_BYTES
"""Offset of the payload inside a framed section."""


def assemble(sections: Sections, prefix: bytes = PREFIX, tail: bytes = b"") -> bytes:
    """A whole file from ``(tag, payload)`` pairs, every CRC correct, followed by ``tail`` (version 7: the
    latent segments after LATN)."""
    return prefix + b"".join(frame_section(tag, payload) for tag, payload in sections) + tail


def split_file(data: bytes) -> tuple[Sections, bytes] | None:
    """The ``(tag, payload)`` pairs of a well-framed file of a readable version, with or (version 5) without
    META, in the section order (CRCs not checked), and what follows LATN: a version-7 file's latent segments
    (SPEC §6; empty before version 7, whose LATN ends the file); or None."""
    if data[: len(C.MAGIC)] != C.MAGIC or len(data) < C.FILE_PREFIX_BYTES or data[4] not in C.READABLE_VERSIONS:
        return None
    segmented = data[4] >= C.SEGMENTED_VERSION
    pos, sections = C.FILE_PREFIX_BYTES, []
    while pos < len(data):
        if pos + _PAYLOAD_AT > len(data):
            return None
        tag = data[pos : pos + C.SECTION_TAG_BYTES]
        (length,) = struct.unpack_from("<I", data, pos + _LENGTH_AT)
        end = pos + _PAYLOAD_AT + length
        if end + C.SECTION_CRC_BYTES > len(data):
            return None
        sections.append((tag, data[pos + _PAYLOAD_AT : end]))
        pos = end + C.SECTION_CRC_BYTES
        if segmented and tag == C.SECTION_TAGS[-1]:
            break
    tags = [tag for tag, _ in sections]
    return (sections, data[pos:]) if tags in (list(C.SECTION_TAGS), list(section_order(data[4]))) else None


def split_sections(data: bytes) -> Sections | None:
    """The sections of :func:`split_file` (without what follows LATN), or None."""
    parts = split_file(data)
    return None if parts is None else parts[0]


def segment_entries(payload: bytes) -> list[tuple[int, int]] | None:
    """The ``(length, crc32)`` entries of a version-7 LATN payload (the segment index, SPEC §6), or None
    when it is not a whole number of 8-byte entries."""
    if len(payload) % C.SEGMENT_INDEX_ENTRY_BYTES:
        return None
    return [struct.unpack_from("<II", payload, at) for at in range(0, len(payload), C.SEGMENT_INDEX_ENTRY_BYTES)]


def pack_index(entries: Sequence[tuple[int, int]]) -> bytes:
    """A LATN payload from ``(length, crc32)`` entries written as given (each clamped to a u32)."""
    return b"".join(struct.pack("<II", length & 0xFFFFFFFF, crc & 0xFFFFFFFF) for length, crc in entries)


def split_segments(payload: bytes, tail: bytes) -> list[bytes] | None:
    """The segments' bytes: ``tail`` cut at the lengths of the index ``payload``; None unless they add up."""
    entries = segment_entries(payload)
    if entries is None or sum(length for length, _ in entries) != len(tail):
        return None
    out, at = [], 0
    for length, _ in entries:
        out.append(tail[at : at + length])
        at += length
    return out


def truncation_points(data: bytes) -> list[int]:
    """Lengths to cut a file at (each < ``len(data)``): the end of the prefix and of every section, and
    (version 7) the start and end of every latent segment, each also one byte shorter and one longer; so
    that every boundary a download can stop at is covered (SPEC §6: a file cut short)."""
    parts = split_file(data)
    if parts is None:
        return []
    sections, tail = parts
    ends, pos = [C.FILE_PREFIX_BYTES], C.FILE_PREFIX_BYTES
    for _, payload in sections:
        pos += C.SECTION_FRAME_BYTES + len(payload)
        ends.append(pos)
    segments = split_segments(sections[-1][1], tail) if data[4] >= C.SEGMENTED_VERSION else None
    for raw in segments or []:
        pos += len(raw)
        ends.append(pos)
    return sorted({cut for end in ends for cut in (end - 1, end, end + 1) if 0 <= cut < len(data)})


# ---------------------------------------------------------------------------------------------- header fields

def head_fields(payload: bytes, version: int = C.FORMAT_VERSION) -> list[tuple[str, str, int]]:
    """``(name, struct code, offset)`` of every field in a HEAD payload, level cells included: the container's
    :func:`~shc.format.header.head_layout` for as many levels as the payload has room for."""
    fixed_bytes = head_payload_bytes(0, version)
    level_bytes = head_payload_bytes(1, version) - fixed_bytes
    fields = head_layout(max(0, (len(payload) - fixed_bytes) // level_bytes), version)
    return [f for f in fields if f[2] + struct.calcsize("<" + f[1]) <= len(payload)]


def count_table_fields(payload: bytes) -> list[tuple[str, str, int]]:
    """``(name, struct code, offset)`` of every field in a version 2-3 TABL payload: i32 min_symbol,
    u16 count, u16 counts-1."""
    fields, pos, index = [], 0, 0
    while pos + 6 <= len(payload):
        (num_symbols,) = struct.unpack_from("<H", payload, pos + 4)
        fields += [(f"table{index}.min_symbol", "i", pos), (f"table{index}.num_symbols", "H", pos + 4)]
        fields += [(f"table{index}.count{k}", "H", pos + 6 + 2 * k) for k in range(min(num_symbols, 8))]
        pos += 6 + 2 * num_symbols
        index += 1
    return [f for f in fields if f[2] + struct.calcsize("<" + f[1]) <= len(payload)]


@dataclass
class HistogramTable:
    """One table of a version 4 TABL payload as stored (SPEC §5): no check beyond what parsing needs."""

    min_symbol: int
    order: int
    histogram: np.ndarray  # int64


def read_histograms(payload: bytes, num_tables: int) -> list[HistogramTable] | None:
    """The tables of a version 4 TABL payload (bit stream of exp-Golomb codes), or None if it does not parse.

    Only the bit syntax is checked (:func:`read_table_codes`), not the sums or the symbol range: the
    mutators start from these.
    """
    bits = BitReader(payload, "TABL section")
    try:
        return [HistogramTable(*read_table_codes(bits, index)) for index in range(num_tables)]
    except ShcFormatError:
        return None


def pack_histograms(tables: Sequence[HistogramTable], trailing: Sequence[tuple[np.ndarray, int]] = (),
                    leading: Sequence[tuple[np.ndarray, int]] = ()) -> bytes:
    """A version 4 TABL payload: ``leading`` (version 6: the context block), each table's codes
    (:func:`table_codes`; histogram entries must be >= 0, the order may be any, also above ``MAX_ORDER``),
    then ``trailing``."""
    codes: list[tuple[np.ndarray, int]] = list(leading)
    for table in tables:
        codes += table_codes(table.min_symbol, table.histogram, table.order)
    return pack(codes + list(trailing))


@dataclass
class ContextCodes:
    """The context network at the start of a version 6 TABL payload as stored (SPEC §5a): per tensor of
    :data:`~shc.format.context.CONTEXT_TENSORS` its order and values (flat), per context level its
    ``low`` and ``span``. Only the bit syntax is checked, not the bounds: the mutators start from these."""

    orders: list[int]
    tensors: list[np.ndarray]  # int64, flat, in CONTEXT_TENSORS order
    low: np.ndarray  # int64 (context levels,)
    span: np.ndarray  # int64 (context levels,), >= 1 (stored as span - 1)

    @classmethod
    def of(cls, params: ContextParams) -> ContextCodes:
        """The codes the writer stores for ``params``: each tensor in its cheapest order."""
        tensors = [np.asarray(getattr(params, name), dtype=np.int64).reshape(-1) for name in CONTEXT_TENSORS]
        orders = [best_order(zigzag(values)) for values in tensors]
        return cls(orders, tensors, params.level_low.astype(np.int64), params.level_span.astype(np.int64))

    def codes(self) -> list[tuple[np.ndarray, int]]:
        """The exp-Golomb codes (for :func:`shc.format.expgolomb.pack`), orders as given (any, also above
        ``MAX_ORDER``)."""
        out: list[tuple[np.ndarray, int]] = []
        for order, values in zip(self.orders, self.tensors):
            out += [(np.array([order]), 0), (zigzag(values), order)]
        ranges = np.stack([zigzag(self.low), self.span - 1], axis=1).reshape(-1)
        return [*out, (ranges, 0)]


def context_shapes(width: int, levels: int) -> list[tuple[int, ...]]:
    """Shapes of the context tensors (SPEC §5a) of a network of ``width`` hidden units for ``levels``
    context levels, in :data:`~shc.format.context.CONTEXT_TENSORS` order."""
    return [(width, CONTEXT_INPUTS), (width,), (2, width), (levels, 2)]


def read_context_codes(bits: BitReader, width: int, levels: int) -> ContextCodes:
    """The syntax of a context block (orders bounded by ``MAX_ORDER``, nothing else checked)."""
    orders, tensors = [], []
    for name, shape in zip(CONTEXT_TENSORS, context_shapes(width, levels)):
        order = bits.unsigned(0, f"context {name} order")
        if order > MAX_ORDER:
            msg = f"context {name} order {order} is above {MAX_ORDER}"
            raise ShcFormatError(msg)
        orders.append(order)
        tensors.append(bits.signed_array(int(np.prod(shape)), order, f"context {name}"))
    low = np.array([bits.signed(0, "low") if k % 2 == 0 else bits.unsigned(0, "span") for k in range(2 * levels)],
                   dtype=np.int64).reshape(levels, 2)
    return ContextCodes(orders, tensors, low[:, 0].copy(), low[:, 1] + 1)


def read_tabl(payload: bytes, header: Header) -> tuple[ContextCodes | None, list[HistogramTable]] | None:
    """A TABL payload of exp-Golomb codes (versions 4-6) split into its context block (version 6 with
    ``context_width`` > 0, else None) and its histogram tables (as many as the layout implies; none for
    float16 latents), or None if it does not parse. Only the bit syntax is checked."""
    bits = BitReader(payload, "TABL section")
    width = header.config.context_width
    try:
        context = read_context_codes(bits, width, len(header.layout.context_levels)) if width else None
        count = header.layout.num_tables if header.range_coded else 0
        return context, [HistogramTable(*read_table_codes(bits, index)) for index in range(count)]
    except ShcFormatError:
        return None


def pack_tabl(context: ContextCodes | None, tables: Sequence[HistogramTable],
              trailing: Sequence[tuple[np.ndarray, int]] = ()) -> bytes:
    """A TABL payload: the context block (if any), then :func:`pack_histograms` of the tables."""
    return pack_histograms(tables, trailing, [] if context is None else context.codes())


MetaEntry = tuple[bytes, int, bytes]
"""One META entry as framed: key, declared u32 length, value (the length may lie, on purpose)."""


def meta_entries(payload: bytes) -> list[MetaEntry] | None:
    """The entries of a META payload as framed (SPEC §2a; only the framing is checked), or None."""
    entries, pos = [], 0
    while pos < len(payload):
        if pos + C.META_ENTRY_HEAD_BYTES > len(payload):
            return None
        key = payload[pos : pos + 4]
        (length,) = struct.unpack_from("<I", payload, pos + 4)
        end = pos + C.META_ENTRY_HEAD_BYTES + length
        if end > len(payload):
            return None
        entries.append((key, length, payload[pos + C.META_ENTRY_HEAD_BYTES : end]))
        pos = end
    return entries


def pack_meta(entries: Sequence[MetaEntry]) -> bytes:
    """A META payload from entries written as given: key, the declared length (u32), the value."""
    return b"".join(key + struct.pack("<I", length & 0xFFFFFFFF) + value for key, length, value in entries)


def fake_icc(rng: np.random.Generator, size: int = 160) -> bytes:
    """Bytes that pass the format's ICC check (a 128-byte header with ``acsp``), random otherwise: what a
    profile means is Pillow's business, not the decoder's."""
    at, signature = ICC_SIGNATURE
    data = bytearray(rng.integers(0, 256, max(size, ICC_HEADER_BYTES), dtype=np.uint8).tobytes())
    data[at : at + len(signature)] = signature
    return bytes(data)


def fake_exif(rng: np.random.Generator, size: int = 40) -> bytes:
    """``Exif\\0\\0``, a big-endian TIFF header, random bytes: passes the format's EXIF check."""
    return EXIF_PREFIX + b"MM\x00*" + rng.integers(0, 256, size, dtype=np.uint8).tobytes()


def _exif_entry(rng: np.random.Generator) -> MetaEntry:
    value = fake_exif(rng)
    return b"EXIF", len(value), value


_LIMITS = {
    "B": (0, 0xFF),
    "H": (0, 0xFFFF),
    "I": (0, 0xFFFFFFFF),
    "i": (-(1 << 31), (1 << 31) - 1),
}
_INTERESTING = {
    "B": [0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 23, 24, 25, 31, 32, 33, 127, 128, 255],
    "H": [0, 1, 2, 3, 15, 16, 255, 256, 4095, 4096, 4097, 32767, 32768, 65534, 65535],
    "I": [0, 1, 2, 3, 4095, 4096, 65535, 65536, C.MAX_IMAGE_SIDE - 1, C.MAX_IMAGE_SIDE, C.MAX_IMAGE_SIDE + 1,
          1 << 24, (1 << 31) - 1, 1 << 31, 0xFFFFFFFE, 0xFFFFFFFF],
    "i": [0, 1, -1, 2, -2, C.MIN_SYMBOL, C.MIN_SYMBOL - 1, C.MAX_SYMBOL, C.MAX_SYMBOL + 1, -(1 << 31),
          (1 << 31) - 1, 4096, -4096],
}


def interesting_value(rng: np.random.Generator, code: str, original: int) -> int:
    """A boundary value for a field of struct type ``code``, or a value near the original, clamped to the type."""
    low, high = _LIMITS[code]
    choice = rng.integers(4)
    if choice == 0:
        value = int(rng.choice(_INTERESTING[code]))
    elif choice == 1:
        value = original + int(rng.choice([-2, -1, 1, 2]))
    elif choice == 2:
        value = int(rng.choice([original * 2, original // 2, original * 16, original + 256, original + 65536, 0]))
    else:
        value = int(rng.integers(low, high, endpoint=True))
    return min(max(value, low), high)


def set_field(payload: bytes, code: str, offset: int, value: int) -> bytes:
    """``payload`` with the field of struct type ``code`` at ``offset`` set to ``value`` (clamped to the type)."""
    low, high = _LIMITS[code]
    out = bytearray(payload)
    struct.pack_into("<" + code, out, offset, min(max(int(value), low), high))
    return bytes(out)


# ---------------------------------------------------------------------------------------------- seeds


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes

    @property
    def sections(self) -> Sections | None:
        return split_sections(self.data)

    @property
    def tail(self) -> bytes:
        """What follows the LATN section: a version-7 file's latent segments (empty before version 7)."""
        parts = split_file(self.data)
        return b"" if parts is None else parts[1]

    def rebuild(self, sections: Sections, prefix: bytes | None = None, tail: bytes | None = None) -> bytes:
        """A file of ``sections`` (CRCs re-fixed) after this seed's magic and version (or ``prefix``),
        followed by this seed's latent segments (or ``tail``)."""
        return assemble(sections, self.prefix if prefix is None else prefix, self.tail if tail is None else tail)

    @property
    def prefix(self) -> bytes:
        """Magic and version byte: mutated files keep the seed's version."""
        return self.data[: C.FILE_PREFIX_BYTES]

    @property
    def version(self) -> int:
        return self.data[4] if len(self.data) > 4 else C.FORMAT_VERSION


@functools.lru_cache(maxsize=64)
def _parsed(data: bytes) -> ShcFile:
    """The parsed seed (seeds are valid files; parsing a version 4 WGHT section is a Python loop, so cache it)."""
    return read_file(data)


def table_latents(rng: np.random.Generator, header: Header, table_specs: Sequence[tuple[np.ndarray, int]]) -> list[np.ndarray]:
    """Integer latents for a range-coded header, one ``(rows, latent_dim)`` int32 array per level.

    ``table_specs`` gives per table a PMF over ``min_symbol ..`` and ``min_symbol``: the latents each table
    codes are drawn from its PMF, and its lowest and highest symbols are placed once each, so that the
    table's histogram (SPEC §5) spans exactly the PMF's symbols.
    """
    layout = header.layout
    latents = [np.zeros((rows, layout.latent_dim), dtype=np.int32) for rows in header.level_rows()]
    runs: list[list] = [[] for _ in range(layout.num_tables)]
    for run in layout.coding_runs():
        runs[run.table].append(run)
    for index, (pmf, min_symbol) in enumerate(table_specs):
        p = np.asarray(pmf, dtype=np.float64)
        total = sum(run.level.rows for run in runs[index])
        values = min_symbol + rng.choice(p.size, size=total, p=p / p.sum())
        values[0], values[-1] = min_symbol, min_symbol + p.size - 1
        start = 0
        for run in runs[index]:
            latents[run.level.index][:, run.dim] = values[start : start + run.level.rows]
            start += run.level.rows
    return latents


def _synthetic_file(
    rng: np.random.Generator,
    width: int,
    height: int,
    config: ModelConfig,
    cells: tuple[tuple[int, int], ...],
    table_specs: list[tuple[np.ndarray, int]],
    weight_limit: int = C.WEIGHT_INT_MAX,
    **metadata: bytes,
) -> bytes:
    header = Header(width, height, config, cells)
    header.validate()
    latents = table_latents(rng, header, table_specs)
    tables = histogram_tables(header, latents)
    weights = random_weights(rng, header, weight_limit)
    return write_file(header, weights, tables, encode_latents(header, tables, latents), **metadata)


def random_weights(rng: np.random.Generator, header: Header, limit: int = C.WEIGHT_INT_MAX) -> QuantizedWeights:
    """Valid weights for ``header``: integers in ``[-limit, limit]`` (int64), with small random steps scaled
    so that the weights stay about as large as int8 ones with steps in [0.002, 0.02]."""
    shapes = weight_shapes(header)
    scales = (rng.uniform(0.002, 0.02, len(shapes)) * C.WEIGHT_INT_MAX / limit).astype(np.float32)
    values = rng.integers(-limit, limit + 1, sum(int(np.prod(shape)) for _, shape in shapes)).astype(np.int64)
    return QuantizedWeights(scales, values)


def random_context(rng: np.random.Generator, header: Header, latents: list[np.ndarray]) -> ContextParams:
    """A valid context network (SPEC §5a) for ``header``'s context levels, whose ranges are those of
    ``latents``: weights that spread the predictions over several centres and many scale buckets, and
    hidden unit 0 holding the extreme values (``MAX_WEIGHT`` and ``-MAX_BIAS``) but never firing."""
    width = header.config.context_width
    levels = header.layout.context_levels
    w1 = rng.integers(-3 << 12, (3 << 12) + 1, (width, CONTEXT_INPUTS))
    b1 = rng.integers(-8 << 12, (8 << 12) + 1, width)
    w2 = np.stack([rng.integers(-512, 513, width), rng.integers(-256, 257, width)])
    w1[0], b1[0] = MAX_WEIGHT, -MAX_BIAS  # h_0 = max(2^20 (x_1 + .. + x_6 - x_0) - 2^27, 0): 0 while that sum < 128
    w1[0, 0] = -MAX_WEIGHT
    w2[:, 0] = [MAX_WEIGHT, -MAX_WEIGHT]
    bias = np.stack([rng.integers(-4096, 4097, len(levels)), rng.integers(-8192, 8193, len(levels))], axis=1)
    values = [np.asarray(latents[level.index][:, 0], dtype=np.int64) for level in levels]
    low = np.array([int(v.min()) for v in values], dtype=np.int64)
    span = np.array([int(v.max()) - int(v.min()) + 1 for v in values], dtype=np.int64)
    return ContextParams(w1.astype(np.int64), b1.astype(np.int64), w2.astype(np.int64), bias.astype(np.int64),
                         low, span)


def _synthetic_context_file(rng: np.random.Generator) -> bytes:
    """Version 6 with a context network: six levels (dense, dense, hashed, dense, hashed, dense) in five
    groups. Levels 1, 3 and 5 are context levels (level 3's parent is hashed; level 5's latents are all
    equal: span 1, nothing coded), so groups 2 and 4 have no table and the tables are those of groups 0, 1
    and 3."""
    config = ModelConfig(num_levels=6, log2_hashmap_size=5, mlp_width=6, mlp_depth=1, num_groups=5,
                         interpolation=C.INTERPOLATION_BSPLINE, context_width=6)
    header = Header(28, 20, config, ((2, 1), (4, 3), (9, 7), (5, 4), (12, 9), (3, 3)))
    header.validate()
    laplace = np.exp(-np.abs(np.arange(-6, 7)) / 1.5)
    latents = table_latents(rng, header, [(laplace, -6), (np.array([1, 3, 1.0]), -1), (laplace, -6)])
    for level in header.layout.context_levels:
        scale = 0.3 + 2.0 * rng.random(level.rows)  # rows of very different scales: the buckets differ
        values = np.clip(np.rint(rng.laplace(0.0, scale)), -9, 9).astype(np.int32)
        latents[level.index][:, 0] = 2 if level.index == 5 else values
    context = random_context(rng, header, latents)
    tables = histogram_tables(header, latents)
    weights = random_weights(rng, header)
    return write_file(header, weights, tables, encode_latents(header, tables, latents, context), context=context)


CHUNKED_CELLS = ((10, 8), (100, 80), (400, 350), (1100, 900))
"""The level cells of the chunked seed (SPEC §4a with T = 18): levels 0 and 1 whole (99 and 8,181 rows), level
2 dense with 401 x 351 vertices (more than 2^17 rows) in 2 x 2 chunks of 256^2, level 3 hashed (1101 x 901
vertices into 2^18 rows) in 3 x 2 chunks of 512^2 vertices with 43,690 rows each: 1 + 4 + 6 = 11 segments."""


def _synthetic_chunked_file(rng: np.random.Generator) -> bytes:
    """Version 7 with chunked levels (:data:`CHUNKED_CELLS`), 240 x 200 pixels, two groups, the B-spline and
    a context network on level 1 (whole, as are its coarser levels: SPEC §5a): eleven segments. The
    factorized latents are mostly 0 (the file is about 10 KB), the context level's spread."""
    config = ModelConfig(num_levels=4, log2_hashmap_size=18, mlp_width=6, mlp_depth=1, num_groups=2,
                         interpolation=C.INTERPOLATION_BSPLINE, context_width=4)
    header = Header(240, 200, config, CHUNKED_CELLS)
    header.validate()
    sparse = np.array([0.002, 0.01, 0.976, 0.01, 0.002])
    latents = table_latents(rng, header, [(sparse, -2), (sparse, -2)])
    for level in header.layout.context_levels:
        latents[level.index][:, 0] = np.clip(np.rint(rng.laplace(0.0, 1.0, level.rows)), -6, 6).astype(np.int32)
    context = random_context(rng, header, latents)
    tables = histogram_tables(header, latents)
    weights = random_weights(rng, header)
    return write_file(header, weights, tables, encode_latents(header, tables, latents, context), context=context)


def synthetic_seeds() -> list[Seed]:
    """Five small valid files covering what the golden files do not (deterministic, built with numpy only):
    a hashed level with several tables, a 4096-symbol table (and weights up to ``WEIGHT_CODE_MAX``),
    float16 (no-entropy) latents, an RGBA file with a META section (both entries), and a context network
    (SPEC §5a) over dense levels between hashed ones, with groups that have no table."""
    rng = np.random.default_rng(20240501)
    laplace = np.exp(-np.abs(np.arange(-20, 20)) / 3.0)
    hashed = _synthetic_file(
        rng,
        32,
        24,
        ModelConfig(
            num_levels=3, log2_hashmap_size=4, latent_dim=2, feat_dim=2, mlp_width=8, mlp_depth=1, num_groups=2
        ),
        ((2, 1), (5, 4), (9, 7)),  # 6 dense rows, then 30 and 80 vertices hashed into 16 rows each
        [(np.ones(1), 0), (np.array([1, 2, 5, 9, 5, 2, 1.0]), -3), (np.array([3, 1.0]), 0), (laplace, -20)],
    )
    wide = _synthetic_file(
        rng,
        16,
        16,
        ModelConfig(num_levels=1, log2_hashmap_size=8, latent_dim=1, feat_dim=1, mlp_width=4, mlp_depth=0),
        ((8, 8),),
        [(np.exp(-np.abs(np.arange(-2048, 2048)) / 40.0), -2048)],
        weight_limit=C.WEIGHT_CODE_MAX,
    )
    # the no-entropy variant: float16 latents, no tables
    raw_header = Header(20, 12, ModelConfig(num_levels=2, log2_hashmap_size=5, mlp_width=4, mlp_depth=1),
                        ((3, 2), (8, 5)), C.LATENTS_FLOAT16)
    raw_weights = random_weights(rng, raw_header)
    raw_levels = [rng.normal(0, 3, (rows, 1)) for rows in raw_header.level_rows()]
    raw = write_file(raw_header, raw_weights, (), pack_float16_latents(raw_header, raw_levels))
    rgba = _synthetic_file(
        rng, 12, 10, ModelConfig(num_levels=2, log2_hashmap_size=5, mlp_width=4, mlp_depth=1, channels=C.CHANNELS_RGBA),
        ((2, 2), (6, 5)), [(np.array([1, 4, 1.0]), -1)], icc_profile=fake_icc(rng), exif=fake_exif(rng),
    )
    context = _synthetic_context_file(rng)
    chunked = _synthetic_chunked_file(rng)
    return [Seed("synthetic_hashed", hashed), Seed("synthetic_table4096", wide), Seed("synthetic_float16", raw),
            Seed("synthetic_rgba_meta", rgba), Seed("synthetic_context", context), Seed("synthetic_chunked", chunked)]


def default_seeds() -> list[Seed]:
    """The shipped seed files (:data:`SEEDS_DIR`) followed by :func:`synthetic_seeds`."""
    golden = [Seed(path.name, path.read_bytes()) for path in sorted(SEEDS_DIR.glob("*.shc"))]
    return golden + synthetic_seeds()


# ---------------------------------------------------------------------------------------------- mutators

Mutator = Callable[[np.random.Generator, Seed, Sequence[Seed]], bytes]


def _pick_section(rng: np.random.Generator, sections: Sections) -> int:
    return int(rng.integers(len(sections)))


def _index(sections: Sections, where: int | bytes) -> int:
    """The position of a section given by position or by tag (META shifts the ones after HEAD)."""
    return where if isinstance(where, int) else [tag for tag, _ in sections].index(where)


def _payload(sections: Sections, tag: bytes) -> bytes:
    return sections[_index(sections, tag)][1]


def _with_payload(sections: Sections, where: int | bytes, payload: bytes) -> Sections:
    """``sections`` with one payload replaced; ``where`` is a position or a tag."""
    index = _index(sections, where)
    out = list(sections)
    out[index] = (out[index][0], payload)
    return out


def _bit_flip(rng, seed, seeds):
    """1-4 random bits flipped anywhere; CRCs left as they are (mostly CRC errors, on purpose)."""
    data = bytearray(seed.data)
    if not data:
        return bytes(data)
    for _ in range(rng.integers(1, 5)):
        pos = int(rng.integers(len(data)))
        data[pos] ^= 1 << int(rng.integers(8))
    return bytes(data)


def _mutate_payload_bytes(rng, seed, change) -> bytes:
    """1-4 bytes of one section's payload replaced by ``change(old_byte)``, CRC re-fixed."""
    sections = seed.sections
    index = _pick_section(rng, sections)
    payload = bytearray(sections[index][1])
    if payload:
        for _ in range(rng.integers(1, 5)):
            pos = int(rng.integers(len(payload)))
            payload[pos] = change(payload[pos])
    return seed.rebuild(_with_payload(sections, index, bytes(payload)))


def _payload_bit_flip(rng, seed, seeds):
    """1-4 bits flipped inside one section's payload (in version 4 WGHT and TABL: inside exp-Golomb bit
    streams), CRC re-fixed."""
    return _mutate_payload_bytes(rng, seed, lambda old: old ^ (1 << int(rng.integers(8))))


def _payload_byte_set(rng, seed, seeds):
    """1-4 payload bytes of one section set to boundary or random values, CRC re-fixed."""
    return _mutate_payload_bytes(
        rng, seed, lambda old: int(rng.choice([0, 1, 0x7F, 0x80, 0xFE, 0xFF, int(rng.integers(256))]))
    )


def _head_field(rng, seed, seeds):
    """1-3 HEAD fields (any of them, level cells included) set to boundary/nearby values, CRC re-fixed."""
    sections = seed.sections
    payload = _payload(sections, b"HEAD")
    fields = head_fields(payload, seed.version)
    for _ in range(rng.integers(1, 4)):
        payload = _set_random_field(rng, payload, fields)
    return seed.rebuild(_with_payload(sections, b"HEAD", payload))


def _set_random_field(rng, payload: bytes, fields) -> bytes:
    """One of ``fields`` (name, struct code, offset) set to an interesting value near or far from its own."""
    _, code, offset = fields[int(rng.integers(len(fields)))]
    (original,) = struct.unpack_from("<" + code, payload, offset)
    return set_field(payload, code, offset, interesting_value(rng, code, original))


def _huge_header(rng, seed, seeds):
    """Image size, level cells or hash size pushed to (and past) their limits, CRC re-fixed (values are
    clamped to the field's type: version 4 level cells are u16)."""
    sections = seed.sections
    payload = _payload(sections, b"HEAD")
    big = [C.MAX_IMAGE_SIDE, C.MAX_IMAGE_SIDE + 1, 0xFFFFFFFF, 1 << 31, C.MAX_GRID_CELLS_PER_SIDE]
    for name, code, offset in head_fields(payload, seed.version):
        roll = rng.random()
        if name in ("width", "height") and roll < 0.5:
            payload = set_field(payload, code, offset, int(rng.choice(big + [1, 2])))
        elif name.startswith("level") and roll < 0.3:
            payload = set_field(payload, code, offset, int(rng.choice(big + [4095, 65535, C.MAX_CELLS_U16 - 1])))
        elif name == "log2_hashmap_size" and roll < 0.5:
            payload = set_field(payload, code, offset, int(rng.choice([C.MAX_LOG2_HASHMAP_SIZE, 25, 255])))
    return seed.rebuild(_with_payload(sections, b"HEAD", payload))


def _table_field(rng, seed, seeds):
    """TABL changed where it matters, CRC re-fixed. Version 4 (exp-Golomb histograms, re-packed): counts
    moved between symbols (the sum stays right, so the range decoder runs with another model and the
    histogram check must catch it), a count changed, a first/last count zeroed, min_symbol or the table size
    changed, another order (valid or above ``MAX_ORDER``), a histogram whose int64 sum wraps around, tables
    dropped or added, trailing bits; a version 6 context block is kept as it is (:func:`_context_field`
    changes it). Versions 2-3: a field (min_symbol, num_symbols or a count) changed."""
    sections = seed.sections
    if seed.version < C.COMPACT_SIDE_INFO_VERSION:
        return _count_table_field(rng, seed, sections)
    payload = _payload(sections, b"TABL")
    header = _parsed(seed.data).header if _is_valid(seed) else None
    parsed_tabl = read_tabl(payload, header) if header is not None and header.range_coded else None
    context, tables = parsed_tabl if parsed_tabl is not None else (None, None)
    if not tables:  # a float16 seed (no tables): junk in its empty TABL
        junk = bytes(rng.integers(0, 256, int(rng.integers(1, 5)), dtype=np.uint8))
        return seed.rebuild(_with_payload(sections, b"TABL", payload + junk))
    coded = table_symbol_counts(header)
    for _ in range(int(rng.choice([1, 1, 1, 2, 3]))):
        index = int(rng.integers(len(tables)))
        _mutate_histogram(rng, tables, index, coded[index])
    trailing: list[tuple[np.ndarray, int]] = []
    roll = rng.random()
    if roll < 0.05:
        trailing = [(np.array([int(rng.integers(0, 64))]), 0)]  # a whole extra code: non-zero trailing bits
    elif roll < 0.08:
        tables.append(HistogramTable(0, 0, np.array([1])))  # one table too many
    elif roll < 0.11:
        tables.pop()  # one table too few
    out = pack_tabl(context, tables, trailing)
    if roll > 0.97:
        out += b"\x00"  # a whole byte of zero padding
    return seed.rebuild(_with_payload(sections, b"TABL", out))


def _mutate_histogram(rng: np.random.Generator, tables: list[HistogramTable], index: int, coded: int) -> None:
    table = tables[index]
    hist = table.histogram.copy()
    n = hist.size
    choice = int(rng.choice(8, p=[0.25, 0.15, 0.1, 0.15, 0.12, 0.13, 0.05, 0.05]))
    if choice == 0 and n < 2:
        choice = 1
    if choice == 0:  # move occurrences between two symbols: the sum stays right
        a, b = (int(i) for i in rng.choice(n, 2, replace=False))
        move = int(rng.integers(0, hist[a] + 1))
        hist[a] -= move
        hist[b] += move
    elif choice == 1:  # one count off: the sum no longer matches the layout
        k = int(rng.integers(n))
        hist[k] = max(0, int(hist[k]) + int(rng.choice([-2, -1, 1, 2, coded, 1 << 20, 1 << 40])))
    elif choice == 2:  # first or last symbol never occurs (the sum kept right where possible)
        k = 0 if rng.random() < 0.5 else n - 1
        if n >= 2:
            hist[n - 1 - k] += hist[k]
        hist[k] = 0
    elif choice == 3:  # another min_symbol: shifted (a valid file with other latents) or at/past the limits
        shift = [-1, 1, -2, 2, -(1 << 31), 1 << 40]
        edges = [C.MIN_SYMBOL, C.MIN_SYMBOL - 1, C.MAX_SYMBOL - n + 1, C.MAX_SYMBOL - n + 2, C.MAX_SYMBOL]
        table.min_symbol = int(rng.choice(edges)) if rng.random() < 0.5 else table.min_symbol + int(rng.choice(shift))
    elif choice == 4:  # another size: symbols added (zero or not) or dropped, up to past MAX_TABLE_SYMBOLS
        size = int(rng.choice([1, 2, max(n - 1, 1), n + 1, n + 2, C.MAX_TABLE_SYMBOLS, C.MAX_TABLE_SYMBOLS + 1]))
        grown = np.zeros(size, dtype=np.int64)
        grown[: min(n, size)] = hist[: min(n, size)]
        if size > n and rng.random() < 0.5:
            grown[-1] = int(rng.integers(0, 3))
        hist = grown
    elif choice == 5:  # another order: a valid one (the same table, other bits) or one above MAX_ORDER
        table.order = int(rng.choice([0, 1, 2, 5, 10, 16, MAX_ORDER, MAX_ORDER + 1, 31, 40]))
    elif choice == 6:  # huge entries whose int64 sum wraps around to the right total
        big = 1 << 56
        hist = np.concatenate([[max(coded - 1, 0)], np.full(256, big, dtype=np.int64), [1]]).astype(np.int64)
        table.order = MAX_ORDER
    else:  # a huge count: its code's zero prefix is near or past the reader's limit
        hist[int(rng.integers(n))] = (1 << int(rng.choice([16, 31, 32, 33, 40]))) - 1
    table.histogram = hist


_WEIGHT_VALUES = [MAX_WEIGHT, -MAX_WEIGHT, MAX_WEIGHT + 1, -MAX_WEIGHT - 1, 0, 1, -1, 1 << 40]
_BIAS_VALUES = [MAX_BIAS, -MAX_BIAS, MAX_BIAS + 1, -MAX_BIAS - 1, 0, 1 << 12, -(1 << 12), 1 << 40]


def _context_field(rng, seed, seeds):
    """A version 6 context block (SPEC §5a) changed, CRC re-fixed: its codes decoded, integers changed and
    re-packed (a weight or bias at, past or far beyond its bound, a tensor negated, halved or zeroed, a
    level's low or span moved, also out of the symbol range or past ``MAX_LEVEL_SPAN``: valid networks
    predict other centres and buckets, so LATN decodes to other latents, which may leave their range), a
    tensor re-coded at another order (an equivalent file) or its order set above ``MAX_ORDER``, the block
    cut short or followed by a code; or HEAD ``context_width`` changed under the same TABL. A version 6
    seed without a network gets one: HEAD ``context_width`` set and a random block prepended, its tables
    kept or reduced to those the new layout has. Older seeds: :func:`_table_field`."""
    sections = seed.sections
    if seed.version < C.CONTEXT_VERSION or not _is_valid(seed) or not _parsed(seed.data).header.range_coded:
        return _table_field(rng, seed, seeds)
    parsed = _parsed(seed.data)
    header = parsed.header
    head = _payload(sections, b"HEAD")
    at = {name: (code, offset) for name, code, offset in head_fields(head, seed.version)}["context_width"]
    parsed_tabl = read_tabl(_payload(sections, b"TABL"), header)
    if parsed_tabl is None:
        return _table_field(rng, seed, seeds)
    context, tables = parsed_tabl
    if context is None:
        return _add_context(rng, seed, header, head, at, tables)
    if rng.random() < 0.1:  # another width: the same TABL now misparses (or is a network of another shape)
        width = int(rng.choice([0, 1, header.config.context_width - 1, header.config.context_width + 1,
                                C.MAX_CONTEXT_WIDTH, C.MAX_CONTEXT_WIDTH + 1, 255]))
        head = set_field(head, *at, max(width, 0))
        return seed.rebuild(_with_payload(sections, b"HEAD", head))
    trailing: list[tuple[np.ndarray, int]] = []
    cut = 0
    for _ in range(int(rng.choice([1, 1, 2, 3]))):
        choice = int(rng.choice(7, p=[0.2, 0.15, 0.15, 0.15, 0.15, 0.1, 0.1]))
        tensor = int(rng.integers(len(context.tensors)))
        values = context.tensors[tensor]
        if choice == 0 and values.size:  # one value at, past or far beyond its bound, or nudged
            bounds = _BIAS_VALUES if CONTEXT_TENSORS[tensor] in ("b1", "level_bias") else _WEIGHT_VALUES
            k = int(rng.integers(values.size))
            values[k] = int(rng.choice(bounds)) if rng.random() < 0.6 else values[k] + int(rng.integers(-4096, 4097))
        elif choice == 1 and values.size:  # a whole tensor negated, halved, doubled or zeroed: a valid network
            values[:] = [-values, values // 2, 2 * values, 0 * values][int(rng.integers(4))]
        elif choice == 2 and context.low.size:  # a level's low moved: other clipping, also out of range
            slot = int(rng.integers(context.low.size))
            span = int(context.span[slot])
            edges = [C.MIN_SYMBOL, C.MIN_SYMBOL - 1, C.MAX_SYMBOL - span + 1, C.MAX_SYMBOL - span + 2, -(1 << 31)]
            context.low[slot] = int(rng.choice(edges)) if rng.random() < 0.3 else context.low[slot] + int(
                rng.choice([-2, -1, 1, 2]))
        elif choice == 3 and context.span.size:  # a level's span changed: other tables, also past the limit
            slot = int(rng.integers(context.span.size))
            span = int(context.span[slot])
            context.span[slot] = int(rng.choice([1, 2, max(span - 1, 1), span + 1, span + 2, MAX_LEVEL_SPAN,
                                                 MAX_LEVEL_SPAN + 1, 1 << 20]))
        elif choice == 4:  # re-coded at another valid order (an equivalent file) or one above MAX_ORDER
            context.orders[tensor] = int(rng.choice([0, 1, 3, 8, 12, 16, MAX_ORDER, MAX_ORDER + 1, 40]))
        elif choice == 5:  # the order changed but the values coded at the old one: they misparse
            old = context.orders[tensor]
            codes = context.codes()
            codes[2 * tensor] = (np.array([int(rng.choice([0, 1, 2, 5, max(old - 1, 0), old + 1]))]), 0)
            stream = pack_histograms(tables, [], codes)
            return seed.rebuild(_with_payload(sections, b"TABL", stream))
        elif rng.random() < 0.5:  # the block cut short: the tables start where level ranges were expected
            cut = int(rng.integers(1, 2 * max(context.low.size, 1) + 1))
        else:
            trailing = [(np.array([int(rng.integers(0, 64))]), 0)]
    codes = context.codes()
    if cut:
        ranges, order = codes[-1]
        codes[-1] = (ranges[: max(ranges.size - cut, 0)], order)
    stream = pack_histograms(tables, trailing, codes)
    return seed.rebuild(_with_payload(sections, b"TABL", stream))


def _add_context(rng, seed, header: Header, head: bytes, at: tuple[str, int], tables) -> bytes:
    """A context network where the seed has none: HEAD ``context_width`` set, a random valid block before
    the tables (latent ranges drawn small), the tables kept or reduced to the new layout's (the LATN words
    were coded without the network: mostly errors, sometimes other latents that decode)."""
    width = int(rng.integers(1, C.MAX_CONTEXT_WIDTH + 1))
    head = set_field(head, *at, width)
    new = replace(header, config=replace(header.config, context_width=width))
    levels = len(new.layout.context_levels)
    tensors = [rng.integers(-(1 << 14), (1 << 14) + 1, int(np.prod(shape))).astype(np.int64)
               for shape in context_shapes(width, levels)]
    low = rng.integers(-4, 1, levels).astype(np.int64)
    codes = ContextCodes([int(rng.integers(0, 15)) for _ in tensors], tensors, low,
                         rng.integers(1, 9, levels).astype(np.int64))
    if rng.random() < 0.5 and new.config.latent_dim == 1:  # only the tables the new layout has
        old_keys = header.layout.table_keys
        tables = [tables[old_keys.index(key)] for key in new.layout.table_keys if key in old_keys]
    sections = _with_payload(seed.sections, b"HEAD", head)
    return seed.rebuild(_with_payload(sections, b"TABL", pack_tabl(codes, tables)))


def _count_table_field(rng, seed, sections):
    """Versions 2-3: a TABL field changed, or a count moved between two symbols (the table stays valid)."""
    payload = _payload(sections, b"TABL")
    fields = count_table_fields(payload)
    if not fields:
        return seed.rebuild(sections)
    if rng.random() < 0.4:
        counts = [f for f in fields if ".count" in f[0]]
        if len(counts) >= 2:
            (_, _, a), (_, _, b) = (counts[i] for i in rng.choice(len(counts), 2, replace=False))
            (va,), (vb,) = struct.unpack_from("<H", payload, a), struct.unpack_from("<H", payload, b)
            move = int(rng.integers(0, va + 1))  # stored counts are count - 1, so moving <= va keeps a >= 1
            if vb + move <= 0xFFFF:
                payload = set_field(set_field(payload, "H", a, va - move), "H", b, vb + move)
            return seed.rebuild(_with_payload(sections, b"TABL", payload))
    return seed.rebuild(_with_payload(sections, b"TABL", _set_random_field(rng, payload, fields)))


def _bit_flips(rng, seed: Seed, where: int | bytes) -> bytes:
    """1-4 bits flipped in one section's payload (by position or tag), CRC re-fixed."""
    sections = seed.sections
    index = _index(sections, where)
    payload = bytearray(sections[index][1])
    for _ in range(rng.integers(1, 5) if payload else 0):
        payload[int(rng.integers(len(payload)))] ^= 1 << int(rng.integers(8))
    return seed.rebuild(_with_payload(sections, index, bytes(payload)))


def _is_valid(seed: Seed) -> bool:
    try:
        _parsed(seed.data)
    except ShcFormatError:
        return False
    return True


def _section_length(rng, seed, seeds):
    """One section's declared length set to a wrong, boundary or huge value (framing broken, CRC untouched)."""
    sections = seed.sections
    index = _pick_section(rng, sections)
    parts = [seed.prefix] + [frame_section(tag, payload) for tag, payload in sections]
    length = len(sections[index][1])
    value = int(rng.choice([0, 1, 3, length - 1, length + 1, length + 4, length * 2, C.MAX_SECTION_BYTES,
                            C.MAX_SECTION_BYTES + 1, 1 << 31, 0xFFFFFFFF, int(rng.integers(1 << 32))]))
    part = bytearray(parts[index + 1])
    struct.pack_into("<I", part, _LENGTH_AT, min(max(value, 0), 0xFFFFFFFF))
    parts[index + 1] = bytes(part)
    return b"".join(parts) + seed.tail


def _section_resize(rng, seed, seeds):
    """Bytes inserted into or deleted from one section's payload, with length and CRC re-fixed."""
    sections = seed.sections
    index = _pick_section(rng, sections)
    payload = sections[index][1]
    count = int(rng.choice([1, 2, 3, 4, 8, int(rng.integers(1, 64))]))
    pos = int(rng.integers(len(payload) + 1))
    if rng.random() < 0.5 and payload:
        payload = payload[:pos] + payload[pos + count :]
    else:
        payload = payload[:pos] + bytes(rng.integers(0, 256, count, dtype=np.uint8)) + payload[pos:]
    return seed.rebuild(_with_payload(sections, index, payload))


def _random_words(rng, old: bytes) -> bytes:
    """Random words in place of ``old`` (a range-coded stream): empty to twice as long, sometimes after a
    prefix of the real words (which then decode further before they fail)."""
    num_words = len(old) // 4
    choices = [0, 1, 2, num_words - 1, num_words, num_words + 1, int(rng.integers(2 * num_words + 2))]
    new_words = max(int(rng.choice(choices)), 0)  # a seed may have no words at all (one-symbol tables only)
    words = rng.integers(0, 1 << 32, new_words, dtype=np.uint64).astype("<u4")
    if rng.random() < 0.3 and new_words:
        keep = np.frombuffer(old[: 4 * num_words], dtype="<u4")[: int(rng.integers(new_words + 1))]
        words[: keep.size] = keep
    return words.tobytes()


def _segments(seed: Seed) -> list[bytes] | None:
    """A version-7 seed's latent segments (None for an older seed, or one whose index does not add up)."""
    if seed.version < C.SEGMENTED_VERSION or seed.sections is None:
        return None
    return split_segments(_payload(seed.sections, b"LATN"), seed.tail)


def _with_segments(seed: Seed, segments: Sequence[bytes], entries: Sequence[tuple[int, int]] | None = None) -> bytes:
    """The seed with other latent segments after LATN and an index of ``entries`` (default: the true length
    and CRC32 of each segment, so the mutation reaches the segment's decoder), LATN's CRC re-fixed."""
    if entries is None:
        entries = [(len(raw), zlib.crc32(raw)) for raw in segments]
    sections = _with_payload(seed.sections, b"LATN", pack_index(entries))
    return seed.rebuild(sections, tail=b"".join(segments))


def _latent_words(rng, seed, seeds):
    """Version 7: one latent segment replaced by random words (empty to twice as long), its index entry
    (length and CRC32) re-fixed; before version 7 the LATN payload, its CRC re-fixed."""
    segments = _segments(seed)
    if segments is None:
        sections = seed.sections
        return seed.rebuild(_with_payload(sections, b"LATN", _random_words(rng, _payload(sections, b"LATN"))))
    k = int(rng.integers(len(segments)))
    segments[k] = _random_words(rng, segments[k])
    return _with_segments(seed, segments)


def _segment_index(rng, seed, seeds):
    """Version 7: the LATN index (SPEC §6) changed, LATN's CRC re-fixed: a segment's length set to a
    nearby, zero, unaligned, another segment's or a huge value (its CRC kept: truncation, misaligned or
    CRC errors, trailing bytes); the boundary between two segments moved by whole words with both CRCs
    re-fixed (each segment then decodes other words); a CRC changed; entries dropped, repeated or added
    (another count than the layout's); two segments swapped, entries and bytes together; a partial entry;
    every segment emptied. Before version 7: :func:`_latent_words`."""
    segments = _segments(seed)
    if segments is None:
        return _latent_words(rng, seed, seeds)
    entries = [(len(raw), zlib.crc32(raw)) for raw in segments]
    k = int(rng.integers(len(entries)))
    length, crc = entries[k]
    choice = int(rng.choice(8, p=[0.25, 0.15, 0.1, 0.15, 0.1, 0.1, 0.1, 0.05]))
    if choice == 0:  # a length that lies, the bytes as they are
        other = entries[int(rng.integers(len(entries)))][0]
        lies = [0, 1, length - 1, length + 1, length - 4, length + 4, length + 8, 2 * length, other,
                C.MAX_SECTION_BYTES, C.MAX_SECTION_BYTES + 4, 0xFFFFFFFC, 0xFFFFFFFF, int(rng.integers(1 << 32))]
        entries[k] = (max(int(rng.choice(lies)), 0), crc)
        return _with_segments(seed, segments, entries)
    if choice == 1 and len(segments) > 1:  # a boundary moved by whole words, both CRCs right
        j = min(k, len(segments) - 2)
        joined = segments[j] + segments[j + 1]
        cut = min(max(len(segments[j]) + 4 * int(rng.choice([-2, -1, 1, 2])), 0), len(joined))
        segments[j], segments[j + 1] = joined[:cut], joined[cut:]
        return _with_segments(seed, segments)
    if choice in (1, 2):  # a wrong CRC
        entries[k] = (length, crc ^ (1 << int(rng.integers(32))))
        return _with_segments(seed, segments, entries)
    if choice == 3:  # another number of entries than the layout's segments
        roll = rng.random()
        if roll < 0.4:
            del entries[k]
        elif roll < 0.7:
            entries.insert(k, entries[k])
        else:
            entries.append((0, 0))
        return _with_segments(seed, segments, entries)
    if choice == 4 and len(segments) > 1:  # two segments swapped: every CRC right, each decoded as the other
        j = int(rng.integers(len(segments)))
        segments[k], segments[j] = segments[j], segments[k]
        return _with_segments(seed, segments)
    if choice in (4, 5):  # a partial entry: not a whole number of 8-byte entries
        payload = pack_index(entries)
        cut = int(rng.integers(1, C.SEGMENT_INDEX_ENTRY_BYTES))
        payload = payload[:-cut] if rng.random() < 0.5 else payload + bytes(C.SEGMENT_INDEX_ENTRY_BYTES - cut)
        return seed.rebuild(_with_payload(seed.sections, b"LATN", payload))
    if choice == 6:  # an entry from another seed, or the whole index of another seed with its segments
        other = _segments(seeds[int(rng.integers(len(seeds)))])
        if other:
            if rng.random() < 0.5:
                return _with_segments(seed, other)
            segments[k] = other[int(rng.integers(len(other)))]
            return _with_segments(seed, segments)
    return _with_segments(seed, [b""] * len(segments))  # every segment empty


def _segment_bytes(rng, seed, seeds):
    """Version 7: bytes changed inside one latent segment: 1-4 bits flipped or bytes set, its CRC32 in the
    index re-fixed (the segment's range decoder or float16 check meets them) or left (a CRC error naming
    the segment); or its bytes cut short or extended by whole words, length and CRC re-fixed. Before
    version 7: :func:`_latent_words`."""
    segments = _segments(seed)
    if segments is None:
        return _latent_words(rng, seed, seeds)
    filled = [k for k, raw in enumerate(segments) if raw] or [0]
    k = int(rng.choice(filled))
    raw = bytearray(segments[k])
    entries = [(len(r), zlib.crc32(r)) for r in segments]
    roll = rng.random()
    if roll < 0.7 and raw:
        for _ in range(int(rng.integers(1, 5))):
            pos = int(rng.integers(len(raw)))
            if rng.random() < 0.7:
                raw[pos] ^= 1 << int(rng.integers(8))
            else:
                raw[pos] = int(rng.choice([0, 0xFF, 0x7C, 0x80, int(rng.integers(256))]))
    elif roll < 0.85:
        raw = raw[: max(len(raw) - 4 * int(rng.integers(1, 4)), 0)]
    else:
        raw += rng.integers(0, 256, 4 * int(rng.integers(1, 4)), dtype=np.uint8).tobytes()
    segments[k] = bytes(raw)
    if len(raw) != entries[k][0] or rng.random() < 0.6:
        entries[k] = (len(raw), zlib.crc32(raw))
    return _with_segments(seed, segments, entries)


def _segment_truncate(rng, seed, seeds):
    """Cut at a section or latent-segment boundary, or one byte before or after it
    (:func:`truncation_points`; every one of them is covered by ``--sweep-boundaries``)."""
    points = truncation_points(seed.data)
    if not points:
        return _truncate(rng, seed, seeds)
    return seed.data[: int(rng.choice(points))]


_SPECIAL_STEPS = [np.inf, -np.inf, np.nan, -0.0, -1.0, 3.0e38, float(np.finfo(np.float32).max), 1e-45, 0.0, 1e4]


def _special_weights(rng, seed, seeds):
    """WGHT changed where it matters, CRC re-fixed. Version 4 (per tensor f32 step + u8 order at a 5-byte
    stride, then one exp-Golomb bit stream): steps set to inf, NaN, -0, negative, huge, subnormal or zero;
    orders set above ``MAX_ORDER`` or to another value (the codes then misparse); values set to or past
    ``WEIGHT_CODE_MAX`` and re-packed; everything re-packed at other valid orders (an equivalent file);
    codes truncated or followed by trailing bits. Versions 2-3: f32 scales and int8 values set to -128."""
    sections = seed.sections
    if seed.version < C.COMPACT_SIDE_INFO_VERSION:
        return _special_int8_weights(rng, seed, sections)
    if not _is_valid(seed):
        return _bit_flips(rng, seed, b"WGHT")
    parsed = _parsed(seed.data)
    shapes = weight_shapes(parsed.header)
    heads = bytearray(_payload(sections, b"WGHT")[: 5 * len(shapes)])
    orders = [heads[5 * i + 4] for i in range(len(shapes))]
    values = parsed.weights.values.copy()
    sizes = [int(np.prod(shape)) for _, shape in shapes]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    truncate, trailing = 0, []
    for _ in range(rng.integers(1, 4)):
        tensor = int(rng.integers(len(shapes)))
        roll = rng.random()
        if roll < 0.3:
            step = _SPECIAL_STEPS[int(rng.integers(len(_SPECIAL_STEPS)))]
            heads[5 * tensor : 5 * tensor + 4] = struct.pack("<f", step)
        elif roll < 0.45:  # the order byte alone: the codes stay, so they misparse (or it is above MAX_ORDER)
            heads[5 * tensor + 4] = int(rng.choice([0, 1, 2, 8, 16, MAX_ORDER, MAX_ORDER + 1, 0x80, 0xFF]))
        elif roll < 0.65:  # values at and past the limit, coded with the tensor's order
            at = int(rng.integers(starts[tensor], starts[tensor + 1]))
            limit = C.WEIGHT_CODE_MAX
            values[at] = int(rng.choice([limit, -limit, limit + 1, -limit - 1, 1 << 31, -(1 << 40)]))
        elif roll < 0.8:  # re-coded with another order, stored with it: an equivalent file
            orders[tensor] = int(rng.choice([0, 1, 3, 7, 12, 16, MAX_ORDER]))
            heads[5 * tensor + 4] = orders[tensor]
        elif roll < 0.9:
            truncate = int(rng.integers(1, 4))
        else:
            trailing = [(np.array([int(rng.integers(0, 8))]), 0)]
    codes = [(zigzag(values[starts[i] : starts[i + 1]]), orders[i]) for i in range(len(shapes))]
    stream = pack(codes + trailing)
    return seed.rebuild(_with_payload(sections, b"WGHT", bytes(heads) + stream[: len(stream) - truncate]))


def _special_int8_weights(rng, seed, sections):
    """Versions 2-3: weight scales set to special floats, or int8 values set to -128."""
    payload = bytearray(_payload(sections, b"WGHT"))
    if not _is_valid(seed):
        return _bit_flips(rng, seed, b"WGHT")
    header = _parsed(seed.data).header
    starts, offset = [], 0
    for _, shape in weight_shapes(header):
        starts.append(offset)
        offset += 4 + int(np.prod(shape))
    for _ in range(rng.integers(1, 4)):
        start = starts[int(rng.integers(len(starts)))]
        if rng.random() < 0.6:
            payload[start : start + 4] = struct.pack("<f", _SPECIAL_STEPS[int(rng.integers(len(_SPECIAL_STEPS)))])
        elif offset > start + 4:
            payload[int(rng.integers(start + 4, offset))] = 0x80  # int8 -128, outside the allowed range
    return seed.rebuild(_with_payload(sections, b"WGHT", bytes(payload)))


def _tag_version(rng, seed, seeds):
    """Magic, version byte (also another readable version: the layout then misparses) or a section tag
    changed, or two sections swapped (CRCs stay consistent)."""
    sections = seed.sections
    choice = rng.integers(4)
    if choice == 0:
        prefix = bytearray(seed.prefix)
        prefix[int(rng.integers(len(C.MAGIC)))] ^= 1 << int(rng.integers(8))
        return seed.rebuild(sections, bytes(prefix))
    if choice == 1:
        version = int(rng.choice([0, 1, *C.READABLE_VERSIONS, C.FORMAT_VERSION + 1, 0x7F, 0xFF]))
        return seed.rebuild(sections, C.MAGIC + bytes([version]))
    index = _pick_section(rng, sections)
    if choice == 2:
        tag = rng.choice([b"head", b"WGHT", b"XXXX", b"\0\0\0\0", bytes(rng.integers(0, 256, 4, dtype=np.uint8))])
        out = list(sections)
        out[index] = (bytes(tag), out[index][1])
        return seed.rebuild(out)
    other = _pick_section(rng, sections)
    out = list(sections)
    out[index], out[other] = out[other], out[index]
    return seed.rebuild(out)


def _truncate(rng, seed, seeds):
    """Cut at a random length (every length is covered by ``--sweep-truncations``)."""
    return seed.data[: int(rng.integers(len(seed.data)))] if seed.data else seed.data


def _append(rng, seed, seeds):
    """Trailing bytes after the last section: a few random bytes, or a repeated section."""
    if rng.random() < 0.5 or seed.sections is None:
        return seed.data + bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
    tag, payload = seed.sections[_pick_section(rng, seed.sections)]
    return seed.data + frame_section(tag, payload)


def _splice_sections(rng, seed, seeds):
    """Each section from this seed or another by tag (all CRCs valid): mismatched header, weights, tables,
    latents; sometimes the other seed's META added. A version-7 LATN index taken from the other seed comes
    with its segments half of the time (an index that matches the bytes after it, not the header)."""
    other = seeds[int(rng.integers(len(seeds)))]
    mine, theirs = seed.sections, other.sections
    if theirs is None:
        return _splice_bytes(rng, seed, seeds)
    their = dict(theirs)
    picks = rng.random(len(mine)) < 0.5
    if not picks.any():
        picks[int(rng.integers(len(mine)))] = True
    out = [(tag, their[tag]) if pick and tag in their else (tag, payload) for pick, (tag, payload) in zip(picks, mine)]
    if C.META_TAG in their and C.META_TAG not in dict(mine) and rng.random() < 0.3:
        out.insert(1, (C.META_TAG, their[C.META_TAG]))
    took_latn = bool(picks[[tag for tag, _ in mine].index(b"LATN")])
    return seed.rebuild(out, tail=other.tail if took_latn and rng.random() < 0.5 else None)


def _splice_bytes(rng, seed, seeds):
    """A prefix of this seed followed by a suffix of another one."""
    other = seeds[int(rng.integers(len(seeds)))].data
    return seed.data[: int(rng.integers(len(seed.data) + 1))] + other[int(rng.integers(len(other) + 1)) :]


def _random_bytes(rng, seed, seeds):
    """Random bytes: raw, after a valid magic and version, or as four well-framed sections with random payloads
    (a LATN of whole 8-byte index entries, then random bytes where the segments would be)."""
    choice = rng.integers(3)
    if choice == 0:
        return bytes(rng.integers(0, 256, int(rng.integers(0, 257)), dtype=np.uint8))
    if choice == 1:
        return PREFIX + bytes(rng.integers(0, 256, int(rng.integers(0, 257)), dtype=np.uint8))
    head_len = head_payload_bytes(int(rng.integers(0, 4)))
    lengths = [head_len, int(rng.integers(0, 128)), int(rng.integers(0, 64)), 8 * int(rng.integers(0, 16))]
    sections = [(tag, bytes(rng.integers(0, 256, n, dtype=np.uint8))) for tag, n in zip(C.SECTION_TAGS, lengths)]
    if rng.random() < 0.3:  # and a META of random bytes
        sections.insert(1, (C.META_TAG, bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8))))
    return assemble(sections, tail=bytes(rng.integers(0, 256, 4 * int(rng.integers(0, 32)), dtype=np.uint8)))


def _metadata(rng, seed, seeds):
    """META changed, CRC re-fixed: removed (a valid file), inserted (valid entries: version 5 decodes,
    earlier versions must refuse the tag), or its entries re-framed: an unknown or repeated key, the keys
    out of order, a declared length that lies (also past ``MAX_META_ENTRY_BYTES``), a zero-length entry, an
    ICC profile or EXIF block whose first bytes are wrong or that is cut short, bits flipped where a value
    is free (still valid), trailing bytes, no entries at all."""
    sections = list(seed.sections)
    if C.META_TAG not in [tag for tag, _ in sections]:
        values = [(b"ICCP", fake_icc(rng, int(rng.integers(128, 600)))), (b"EXIF", fake_exif(rng))]
        kept = [(key, value) for key, value in values if rng.random() < 0.7] or values[1:]
        sections.insert(1, (C.META_TAG, pack_meta([(key, len(value), value) for key, value in kept])))
        if rng.random() < 0.25:  # the valid insertion as it is
            return seed.rebuild(sections)
    index = [tag for tag, _ in sections].index(C.META_TAG)
    entries = meta_entries(sections[index][1]) or [_exif_entry(rng)]
    at = int(rng.integers(len(entries)))
    key, length, value = entries[at]
    free_from = ICC_HEADER_BYTES if key == b"ICCP" else len(EXIF_PREFIX) + 4  # bytes no check looks at
    choice = int(rng.integers(10))
    if choice == 0:  # removed: a file without metadata
        del sections[index]
        return seed.rebuild(sections)
    if choice == 1:
        keys = [b"iccp", b"XXXX", b"\0\0\0\0", b"ICCP", b"EXIF", bytes(rng.integers(0, 256, 4, dtype=np.uint8))]
        entries[at] = (keys[int(rng.integers(len(keys)))], length, value)
    elif choice == 2:  # the declared length lies: the entries misframe
        lies = [0, length - 1, length + 1, length + 4, C.MAX_META_ENTRY_BYTES, C.MAX_META_ENTRY_BYTES + 1,
                0xFFFFFFFF, int(rng.integers(1 << 32))]
        entries[at] = (key, max(lies[int(rng.integers(len(lies)))], 0), value)
    elif choice == 3:
        entries.append(entries[at])  # a repeated key
    elif choice == 4:
        if len(entries) > 1:
            entries.reverse()  # out of order
        else:
            entries.insert(0, _exif_entry(rng))  # EXIF before ICCP, or EXIF twice
    elif choice == 5:
        broken = bytearray(value)
        checked = range(ICC_SIGNATURE[0], ICC_SIGNATURE[0] + 4) if key == b"ICCP" else range(free_from)
        roll = rng.random()
        if roll < 0.5 and len(broken) >= checked.stop:  # the ICC signature, or the EXIF prefix and TIFF mark
            pos = int(rng.choice(checked))
            broken[pos] = (broken[pos] + int(rng.integers(1, 256))) % 256
        else:  # cut short: anywhere, or below the bytes the check needs
            broken = broken[: int(rng.integers(len(broken) + 1 if roll < 0.75 else min(len(broken), free_from) + 1))]
        entries[at] = (key, len(broken), bytes(broken))
    elif choice == 6 and len(value) > free_from:
        flipped = bytearray(value)
        for _ in range(int(rng.integers(1, 5))):
            flipped[int(rng.integers(free_from, len(flipped)))] ^= 1 << int(rng.integers(8))
        entries[at] = (key, length, bytes(flipped))
    elif choice == 7:
        junk = rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8).tobytes()
        return seed.rebuild(_with_payload(sections, index, pack_meta(entries) + junk))
    elif choice == 8:
        entries = []
    elif choice == 9:
        entries[at] = (key, 0, b"")  # a zero-length entry
    return seed.rebuild(_with_payload(sections, index, pack_meta(entries)))


MUTATORS: dict[str, tuple[Mutator, float, bool]] = {
    # name: (mutator, relative weight, needs a well-framed seed)
    "bit_flip": (_bit_flip, 1.0, False),
    "payload_bit_flip": (_payload_bit_flip, 2.0, True),
    "payload_byte_set": (_payload_byte_set, 1.5, True),
    "head_field": (_head_field, 3.0, True),
    "huge_header": (_huge_header, 1.0, True),
    "table_field": (_table_field, 2.0, True),
    "context_field": (_context_field, 1.5, True),
    "section_length": (_section_length, 1.0, True),
    "section_resize": (_section_resize, 1.0, True),
    "latent_words": (_latent_words, 1.5, True),
    "special_weights": (_special_weights, 0.5, True),
    "tag_version": (_tag_version, 0.5, True),
    "metadata": (_metadata, 1.0, True),
    "truncate": (_truncate, 1.0, False),
    "append": (_append, 0.5, False),
    "splice_sections": (_splice_sections, 1.0, True),
    "splice_bytes": (_splice_bytes, 0.5, False),
    "random_bytes": (_random_bytes, 1.0, False),
    "segment_index": (_segment_index, 1.5, True),
    "segment_bytes": (_segment_bytes, 1.5, True),
    "segment_truncate": (_segment_truncate, 1.0, True),
}


def mutate(rng: np.random.Generator, seed: Seed, seeds: Sequence[Seed], name: str | None = None) -> tuple[str, bytes]:
    """Apply one mutator (chosen by weight unless ``name`` is given) to ``seed``; returns (mutator name, bytes)."""
    framed = seed.sections is not None
    names = [n for n, (_, _, needs_framing) in MUTATORS.items() if framed or not needs_framing]
    if name is None:
        weights = np.array([MUTATORS[n][1] for n in names])
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    return name, MUTATORS[name][0](rng, seed, seeds)


# ---------------------------------------------------------------------------------------------- running


@dataclass
class CaseResult:
    index: int
    seed_name: str
    mutator: str
    outcome: str  # "error", "decoded" or "failure"
    seconds: float
    peak_bytes: int
    detail: str  # the ShcFormatError message, the decoded size, or why it failed (with traceback)
    data: bytes = b""
    warnings: tuple[str, ...] = ()
    reader: str = ""  # what ShcReader did (check_reader), "" when not checked


@dataclass(frozen=True)
class CaseRun:
    """What one decode of a case gave (:func:`check_case`)."""

    outcome: str  # "error", "decoded" or "failure"
    seconds: float
    peak_bytes: int
    detail: str  # the ShcFormatError message, the decoded size, or why it failed (with traceback)
    warnings: tuple[str, ...] = ()
    reader: str = ""
    """What :class:`~shc.format.reader.ShcReader` did with the same bytes (:func:`check_reader`); "" when
    not checked."""


def run_case(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    case_seconds: float = DEFAULT_CASE_SECONDS,
    memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_MB << 20,
    reader: bool = True,
) -> tuple[str, float, int, str, tuple[str, ...]]:
    """Decode ``data`` once and classify it: ``(outcome, seconds, peak traced bytes, detail, warnings)``
    (:func:`check_case`, which also says what ShcReader did)."""
    run = check_case(data, max_pixels, case_seconds, memory_limit_bytes, reader)
    return run.outcome, run.seconds, run.peak_bytes, run.detail, run.warnings


def check_case(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    case_seconds: float = DEFAULT_CASE_SECONDS,
    memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_MB << 20,
    reader: bool = True,
) -> CaseRun:
    """Decode ``data`` with :func:`~shc.format.decoder.decode_image`, then (``reader``) read it again with
    :class:`~shc.format.reader.ShcReader` (:func:`check_reader`), and classify the case.

    Time and the peak allocation cover both. The peak is measured only while :mod:`tracemalloc` is tracing
    (numpy reports its buffers to it); otherwise it is 0 and ``memory_limit_bytes`` is not checked.
    """
    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    note = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = None
        try:
            image = decode_image(data, max_pixels=max_pixels)
        except ShcFormatError as error:
            outcome, detail = ("error", str(error)) if str(error) else ("failure", "ShcFormatError with no message")
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001 - anything else is exactly what we are looking for
            outcome = "failure"
            detail = f"{type(error).__module__}.{type(error).__qualname__} escaped:\n{traceback.format_exc()}"
        else:
            outcome, detail = _check_image(data, image, max_pixels)
        if reader and outcome != "failure":
            try:
                outcome, detail, note = check_reader(data, outcome, detail, image)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as error:  # noqa: BLE001
                outcome, note = "failure", "raised"
                detail = (f"ShcReader: {type(error).__module__}.{type(error).__qualname__} escaped "
                          f"(decode_image: {detail.splitlines()[0] if detail else ''}):\n{traceback.format_exc()}")
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - base if tracing else 0
    if outcome != "failure" and seconds > case_seconds:
        outcome, detail = "failure", f"too slow: {seconds:.2f} s > {case_seconds} s ({detail})"
    if outcome != "failure" and memory_limit_bytes is not None and tracing and peak > memory_limit_bytes:
        limit_mib = memory_limit_bytes / 2**20
        outcome, detail = "failure", f"peak allocation {peak / 2**20:.0f} MiB > {limit_mib:.0f} MiB ({detail})"
    kinds = tuple(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
    return CaseRun(outcome, seconds, peak, detail, kinds, note)


PREFIX_RENDER_SIDE = 48
"""Longest side of the rendering of what a truncated file holds (:func:`check_reader`): any size checks the
same reads and decodes."""


def check_reader(data: bytes, outcome: str, detail: str, decoded: DecodedImage | None) -> tuple[str, str, str]:
    """Read ``data`` again with :class:`~shc.format.reader.ShcReader` and check it against what
    :func:`~shc.format.decoder.decode_image` did (``outcome``, ``detail``, ``decoded``); returns the
    possibly changed ``(outcome, detail)`` and a note of what the reader did.

    - decoded: the reader opens it whole (not truncated, every level complete); its full rendering, the
      bottom-right quarter rendered alone (the segments :func:`~shc.format.reader.region_segments` picks),
      and a rendering from the first level alone (SPEC §6) succeed, the first two equal to the decoded pixels;
    - refused, and the reader finds the file cut short in its latents (version 7): with ``complete_levels``
      = K >= 1 it renders the prefix of K levels, or refuses with a ShcFormatError (a corrupted segment);
      with K = 0 it refuses any prefix;
    - refused otherwise: the reader refuses at open, or its full decode refuses too (unless decode_image
      refused only the output size, which the reader does not check).

    Any exception other than ShcFormatError propagates (the caller makes it a failure)."""
    try:
        reader = ShcReader(data)
    except ShcFormatError as error:
        if outcome == "decoded":
            return "failure", f"decode_image decoded the file, ShcReader refused it: {error}", "refused a valid file"
        return outcome, detail, "refused at open"
    header = reader.header
    levels = len(header.layout.levels)
    width, height = header.width, header.height
    if outcome == "decoded":
        if reader.truncated or reader.complete_levels != levels:
            return "failure", f"ShcReader found {reader.complete_levels} of {levels} levels in a whole file", "wrong"
        pixels = decoded.pixels
        with np.errstate(over="ignore", invalid="ignore"):  # as decode_image: weights that overflow float32
            if not np.array_equal(reader.synthesis().render(width, height), pixels):
                return "failure", "ShcReader's full rendering differs from decode_image's", "differs"
            box = (width // 2, height // 2, width, height)
            region = reader.synthesis(width, height, box=box).render(width, height, box)
            if not np.array_equal(region, pixels[box[1] :, box[0] :]):
                return "failure", f"ShcReader's rendering of region {box} differs from decode_image's", "differs"
            side = _preview_size(width, height)
            reader.synthesis(*side, levels=1).render(*side)
        return outcome, detail, "whole: full, region and first level rendered"
    if reader.truncated:
        complete = reader.complete_levels
        side = _preview_size(width, height)
        try:
            synthesis = reader.synthesis(*side, levels=max(complete, 1))
        except ShcFormatError:
            return outcome, detail, "cut short: prefix refused" if complete else "cut short: no complete level"
        if not complete:
            return "failure", "ShcReader rendered a level of a file that holds none whole", "rendered a missing level"
        with np.errstate(over="ignore", invalid="ignore"):
            synthesis.render(*side)
        return outcome, detail, "cut short: complete levels rendered"
    if "pixels exceeds the limit of" in detail:
        return outcome, detail, "whole: output size refused"
    try:
        reader.synthesis()
    except ShcFormatError:
        return outcome, detail, "whole: refused too"
    return "failure", f"ShcReader decoded a file that decode_image refused ({detail})", "decoded a refused file"


def _preview_size(width: int, height: int) -> tuple[int, int]:
    scale = PREFIX_RENDER_SIDE / max(width, height)
    return max(1, min(width, round(width * scale))), max(1, min(height, round(height * scale)))


def _check_image(data: bytes, decoded: object, max_pixels: int) -> tuple[str, str]:
    if not isinstance(decoded, DecodedImage):
        return "failure", f"decode_image returned {type(decoded).__name__}, not a DecodedImage"
    parsed = read_file(data)
    header = parsed.header
    image = decoded.pixels
    channels = header.config.channels
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape[2:] == (channels,)):
        got = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        return "failure", f"decode_image returned {got}, not a uint8 (height, width, {channels}) array"
    for name in ("icc_profile", "exif"):
        value = getattr(decoded, name)
        if value is not None and not (isinstance(value, bytes) and 1 <= len(value) <= C.MAX_META_ENTRY_BYTES):
            return "failure", f"decode_image returned a {name} of {type(value).__name__} {len(value)}"
        if value != getattr(parsed, name):
            return "failure", f"decode_image returned another {name} than read_file"
    if image.shape[:2] != (header.height, header.width):
        return "failure", f"decoded {image.shape[1]}x{image.shape[0]}, the header says {header.width}x{header.height}"
    if image.shape[0] * image.shape[1] > max_pixels:
        return "failure", f"decoded {image.shape[1]}x{image.shape[0]} despite max_pixels={max_pixels}"
    return "decoded", f"{image.shape[1]}x{image.shape[0]}"


@dataclass
class FuzzReport:
    cases: int = 0
    clean_errors: int = 0
    decoded: int = 0
    num_failures: int = 0
    failures: list[CaseResult] = field(default_factory=list)  # the first few, with their inputs
    seeds_total: int = 0
    seeds_decoded: int = 0
    seed_problems: list[str] = field(default_factory=list)
    per_mutator: dict[str, Counter] = field(default_factory=dict)
    error_kinds: Counter = field(default_factory=Counter)
    reader_kinds: Counter = field(default_factory=Counter)
    warning_kinds: Counter = field(default_factory=Counter)
    cases_with_warnings: int = 0
    slowest: CaseResult | None = None
    largest: CaseResult | None = None
    seconds: float = 0.0
    stopped_early: bool = False
    keep_failures: int = 20

    @property
    def ok(self) -> bool:
        return self.num_failures == 0 and self.seeds_decoded == self.seeds_total

    def add(self, result: CaseResult) -> None:
        self.cases += 1
        counts = self.per_mutator.setdefault(result.mutator, Counter())
        counts[result.outcome] += 1
        if result.outcome == "error":
            self.clean_errors += 1
            self.error_kinds[_message_kind(result.detail)] += 1
        elif result.outcome == "decoded":
            self.decoded += 1
        else:
            self.num_failures += 1
            if len(self.failures) < self.keep_failures:
                self.failures.append(result)
        if result.reader:
            self.reader_kinds[result.reader] += 1
        if result.warnings:
            self.cases_with_warnings += 1
            self.warning_kinds.update(result.warnings)
        if self.slowest is None or result.seconds > self.slowest.seconds:
            self.slowest = result
        if self.largest is None or result.peak_bytes > self.largest.peak_bytes:
            self.largest = result


def _message_kind(message: str) -> str:
    """An error message with its numbers and quoted bytes blanked, so that messages group by the check that fired."""
    kind = re.sub(r"b'[^']*'|b\"[^\"]*\"", "b'…'", message)
    return re.sub(r"(?<![A-Za-z_*\d])-?\d+(\.\d+)?", "N", kind)[:100]


def run_fuzz(
    seeds: Sequence[Seed],
    cases: int = 1000,
    seed: int = 0,
    time_limit: float | None = None,
    case_seconds: float = DEFAULT_CASE_SECONDS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
    sweep_truncations: bool = False,
    only_cases: Sequence[int] | None = None,
    keep_failures: int = 20,
    watchdog_seconds: float | None = None,
    progress: Callable[[FuzzReport], None] | None = None,
    sweep_boundaries: bool = False,
    reader: bool = True,
) -> FuzzReport:
    """Decode every seed unmutated, then ``cases`` mutated cases (and optionally every truncation of every
    seed, or ``sweep_boundaries``: its cuts at every section and latent-segment boundary and one byte either
    side, :func:`truncation_points`). ``reader``: check every case with ShcReader too (:func:`check_reader`).

    ``watchdog_seconds`` arms :func:`faulthandler.dump_traceback_later` around each case: a case that truly
    hangs then prints every thread's traceback and ends the process with exit status 1, rather than hanging.
    """
    if not seeds:
        msg = "no seed files to fuzz"
        raise ValueError(msg)
    report = FuzzReport(seeds_total=len(seeds), keep_failures=keep_failures)
    start = time.perf_counter()
    memory_limit = None if not memory_limit_mb else memory_limit_mb << 20
    started_tracing = memory_limit is not None and not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()

    def one(index: int, seed_obj: Seed, mutator: str, data: bytes) -> CaseResult:
        if watchdog_seconds:
            faulthandler.dump_traceback_later(watchdog_seconds, exit=True)
        try:
            run = check_case(data, max_pixels, case_seconds, memory_limit, reader)
        finally:
            if watchdog_seconds:
                faulthandler.cancel_dump_traceback_later()
        kept = data if run.outcome == "failure" else b""
        return CaseResult(index, seed_obj.name, mutator, run.outcome, run.seconds, run.peak_bytes, run.detail, kept,
                          run.warnings, run.reader)

    try:
        for seed_obj in seeds:
            result = one(-1, seed_obj, "unmutated", seed_obj.data)
            report.add(result)
            if result.outcome == "decoded":
                report.seeds_decoded += 1
            else:
                report.seed_problems.append(f"{seed_obj.name}: {result.outcome}: {result.detail.splitlines()[0]}")
        indices = range(cases) if only_cases is None else only_cases
        for index in indices:
            if time_limit is not None and time.perf_counter() - start > time_limit:
                report.stopped_early = True
                break
            rng = np.random.default_rng([seed, index])
            seed_obj = seeds[int(rng.integers(len(seeds)))]
            mutator, data = mutate(rng, seed_obj, seeds)
            report.add(one(index, seed_obj, mutator, data))
            if progress is not None and report.cases % 500 == 0:
                progress(report)
        if sweep_boundaries and not report.stopped_early:
            for seed_obj in seeds:
                for length in truncation_points(seed_obj.data):
                    if time_limit is not None and time.perf_counter() - start > time_limit:
                        report.stopped_early = True
                        break
                    report.add(one(length, seed_obj, "boundary_sweep", seed_obj.data[:length]))
        if sweep_truncations and not report.stopped_early:
            for seed_obj in seeds:
                for length in range(len(seed_obj.data)):
                    if time_limit is not None and time.perf_counter() - start > time_limit:
                        report.stopped_early = True
                        break
                    report.add(one(length, seed_obj, "truncate_sweep", seed_obj.data[:length]))
    finally:
        if started_tracing:
            tracemalloc.stop()
    report.seconds = time.perf_counter() - start
    return report


def format_report(report: FuzzReport, seed: int, show_failures: int = 5) -> str:
    lines = [
        f"shc fuzz: {report.cases} cases ({report.seeds_total} seeds, --seed {seed}) in {report.seconds:.1f} s"
        + (" (stopped at --time-limit)" if report.stopped_early else ""),
        f"  clean errors (ShcFormatError): {report.clean_errors}",
        f"  successful decodes:            {report.decoded}",
        f"  failures:                      {report.num_failures}",
        f"  seeds decoded unmutated:       {report.seeds_decoded}/{report.seeds_total}",
    ]
    lines += [f"    seed problem: {problem}" for problem in report.seed_problems]
    if report.slowest is not None:
        s = report.slowest
        what = s.detail.splitlines()[0][:80]
        lines.append(f"  slowest case: {s.seconds:.3f} s (case {s.index}, {s.mutator} of {s.seed_name}: {what})")
    if report.largest is not None and report.largest.peak_bytes:
        m = report.largest
        where = f"case {m.index}, {m.mutator} of {m.seed_name}"
        lines.append(f"  largest peak allocation: {m.peak_bytes / 2**20:.1f} MiB ({where})")
    lines.append(f"  cases with numpy warnings: {report.cases_with_warnings}")
    lines += [f"    {count:6d}  {kind}" for kind, count in report.warning_kinds.most_common(5)]
    lines.append("  per mutator:            cases   errors  decoded failures")
    for name in sorted(report.per_mutator):
        c = report.per_mutator[name]
        lines.append(f"    {name:20s} {sum(c.values()):7d} {c['error']:8d} {c['decoded']:8d} {c['failure']:8d}")
    if report.reader_kinds:
        lines.append("  ShcReader on the same bytes (whole: full, region, prefix; cut short: the complete levels):")
        lines += [f"    {count:6d}  {kind}" for kind, count in sorted(report.reader_kinds.items())]
    lines.append(f"  checks that fired ({len(report.error_kinds)} kinds, most frequent first):")
    lines += [f"    {count:6d}  {kind}" for kind, count in report.error_kinds.most_common(25)]
    for failure in report.failures[:show_failures]:
        where = f"case {failure.index} ({failure.mutator} of {failure.seed_name})"
        lines.append(f"--- failure: {where}, {failure.seconds:.2f} s")
        lines.append(failure.detail.rstrip())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shc.tools.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="seed .shc files (default: the shipped seeds + synthetic)")
    parser.add_argument("--cases", type=int, default=1000, help="mutated cases to run (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; case i uses default_rng([seed, i])")
    parser.add_argument("--time-limit", type=float, default=None, help="start no new case after this many seconds")
    parser.add_argument("--case-seconds", type=float, default=DEFAULT_CASE_SECONDS, help="a slower case is a failure")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="decode_image(max_pixels=...)")
    parser.add_argument("--memory-limit-mb", type=int, default=DEFAULT_MEMORY_LIMIT_MB,
                        help="a case whose peak traced allocation is larger is a failure (0: do not trace)")
    parser.add_argument("--sweep-truncations", action="store_true", help="also decode every truncation of every seed")
    parser.add_argument("--sweep-boundaries", action="store_true",
                        help="also decode each seed cut at every section and latent-segment boundary, and one byte "
                             "before and after each")
    parser.add_argument("--only-seed", action="append", default=None, metavar="NAME",
                        help="use only the seed(s) of this name (repeatable; e.g. synthetic_chunked)")
    parser.add_argument("--no-reader", action="store_true",
                        help="do not check each case with ShcReader too (full, region, prefix and truncated reads)")
    parser.add_argument("--case", type=int, action="append", dest="only_cases", help="run only case i (repeatable)")
    parser.add_argument("--save-failures", type=Path, default=None, help="write each failing input into this folder")
    parser.add_argument("--no-synthetic", action="store_true", help="without FILES: use the shipped seed files only")
    args = parser.parse_args(argv)

    if args.files:
        seeds = [Seed(path.name, path.read_bytes()) for path in args.files]
    else:
        seeds = default_seeds()
        if args.no_synthetic:
            seeds = [s for s in seeds if not s.name.startswith("synthetic_")]
    if args.only_seed:
        unknown = sorted(set(args.only_seed) - {s.name for s in seeds})
        if unknown:
            parser.error(f"no seed named {', '.join(unknown)} (seeds: {', '.join(s.name for s in seeds)})")
        seeds = [s for s in seeds if s.name in args.only_seed]
    watchdog = max(60.0, 6 * args.case_seconds)

    def progress(report: FuzzReport) -> None:
        print(f"  ... {report.cases} cases, {report.num_failures} failures", file=sys.stderr, flush=True)

    report = run_fuzz(
        seeds,
        cases=args.cases,
        seed=args.seed,
        time_limit=args.time_limit,
        case_seconds=args.case_seconds,
        max_pixels=args.max_pixels,
        memory_limit_mb=args.memory_limit_mb or None,
        sweep_truncations=args.sweep_truncations,
        sweep_boundaries=args.sweep_boundaries,
        reader=not args.no_reader,
        only_cases=args.only_cases,
        watchdog_seconds=watchdog,
        progress=progress,
    )
    print(format_report(report, args.seed))
    if args.save_failures is not None and report.failures:
        args.save_failures.mkdir(parents=True, exist_ok=True)
        for failure in report.failures:
            name = f"case{failure.index}-{failure.mutator}-{failure.seed_name}.bin"
            (args.save_failures / name).write_bytes(failure.data)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
