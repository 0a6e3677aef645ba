"""Taking a ``.shc`` file apart and putting it back together, below the checks the reader makes: the framed
sections and the latent segments after LATN (SPEC §6), the fields of a HEAD payload, the exp-Golomb codes of
TABL (histogram tables, SPEC §5, and the context block, §5a), the entries of META (§2a), and values that
pass the format's ICC and EXIF checks. Only what parsing needs is checked, so that the mutators
(:mod:`shc.tools.fuzz.mutators`) can start from anything and write anything.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shc.format import constants as C
from shc.format.container import file_prefix, frame_section, section_order
from shc.format.context import CONTEXT_INPUTS, CONTEXT_TENSORS, ContextParams
from shc.format.errors import ShcFormatError
from shc.format.expgolomb import MAX_ORDER, BitReader, best_order, pack, zigzag
from shc.format.header import Header, head_layout, head_payload_bytes
from shc.format.metadata import EXIF_PREFIX, ICC_HEADER_BYTES, ICC_SIGNATURE
from shc.format.table import read_table_codes, table_codes

__all__ = [
    "LENGTH_AT",
    "PAYLOAD_AT",
    "PREFIX",
    "ContextCodes",
    "HistogramTable",
    "MetaEntry",
    "Sections",
    "assemble",
    "context_shapes",
    "count_table_fields",
    "fake_exif",
    "fake_icc",
    "head_fields",
    "interesting_value",
    "meta_entries",
    "pack_histograms",
    "pack_index",
    "pack_meta",
    "pack_tabl",
    "read_context_codes",
    "read_histograms",
    "read_tabl",
    "segment_entries",
    "set_field",
    "split_file",
    "split_sections",
    "split_segments",
    "truncation_points",
]

PREFIX = file_prefix()

Sections = list[tuple[bytes, bytes]]

# Sections are framed by the container's frame_section: tag, u32 length, payload, u32 CRC32.
LENGTH_AT = C.SECTION_TAG_BYTES
"""Offset of the u32 length inside a framed section."""
PAYLOAD_AT = C.SECTION_TAG_BYTES + C.SECTION_LENGTH_BYTES
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
        if pos + PAYLOAD_AT > len(data):
            return None
        tag = data[pos : pos + C.SECTION_TAG_BYTES]
        (length,) = struct.unpack_from("<I", data, pos + LENGTH_AT)
        end = pos + PAYLOAD_AT + length
        if end + C.SECTION_CRC_BYTES > len(data):
            return None
        sections.append((tag, data[pos + PAYLOAD_AT : end]))
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
