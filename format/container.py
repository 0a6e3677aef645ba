"""The ``.shc`` container: magic, version, then CRC-protected sections (byte layout in SPEC.md): HEAD, the
optional META (version 5: ICC profile and EXIF), WGHT, TABL and LATN.

This module only moves validated fields between bytes and plain dataclasses; it knows nothing about
PyTorch. Every declared count is checked against the limits in :mod:`shc.format.constants` and against the
bytes actually present before anything is allocated.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from shc.format import constants as C
from shc.format.binary import Reader
from shc.format.context import CONTEXT_INPUTS, ContextParams
from shc.format.errors import ShcFormatError
from shc.format.expgolomb import MAX_ORDER, BitReader, best_order, pack, zigzag
from shc.format.layout import LatentLayout

__all__ = [
    "HEAD_FIELDS",
    "HEAD_LEVEL_FIELDS",
    "METADATA_FIELDS",
    "HeadField",
    "Header",
    "ModelConfig",
    "QuantizedWeights",
    "SegmentIndex",
    "ShcFile",
    "Table",
    "check_segment",
    "complete_levels",
    "file_prefix",
    "frame_section",
    "head_fixed_fields",
    "head_layout",
    "head_level_fields",
    "head_payload_bytes",
    "metadata_payload",
    "metadata_problem",
    "read_file",
    "read_front",
    "read_header",
    "read_metadata",
    "read_table_codes",
    "section_order",
    "segment_index",
    "segment_values",
    "table_codes",
    "table_symbol_counts",
    "tables_payload",
    "truncation_error",
    "weight_shapes",
    "write_file",
]


# ---------------------------------------------------------------------------------------------- HEAD layout


@dataclass(frozen=True)
class HeadField:
    """One field of the HEAD payload (SPEC.md §2): the reader, the writer, :meth:`Header.validate` and the
    fuzzer all derive the layout from :data:`HEAD_FIELDS` and :data:`HEAD_LEVEL_FIELDS`."""

    name: str
    """The :class:`Header` attribute, or the :class:`ModelConfig` one when ``in_config``."""
    code: str
    """:mod:`struct` code, little-endian."""
    low: int
    high: int
    """Allowed range ``low .. high``; a bound that depends on other fields is checked in ``validate``."""
    since_version: int = min(C.READABLE_VERSIONS)
    """First format version whose HEAD has this field."""
    default: int | None = None
    """The value implied by older versions, which lack the field."""
    in_config: bool = False
    note: str = ""
    """Appended to the out-of-range error message."""


HEAD_FIELDS: tuple[HeadField, ...] = (
    HeadField("width", "I", 1, C.MAX_IMAGE_SIDE),
    HeadField("height", "I", 1, C.MAX_IMAGE_SIDE),
    HeadField("num_levels", "B", 1, C.MAX_LEVELS, in_config=True),
    HeadField("log2_hashmap_size", "B", C.MIN_LOG2_HASHMAP_SIZE, C.MAX_LOG2_HASHMAP_SIZE, in_config=True),
    HeadField("latent_dim", "B", 1, C.MAX_LATENT_DIM, in_config=True),
    HeadField("feat_dim", "B", 1, C.MAX_FEAT_DIM, in_config=True),
    HeadField("mlp_width", "H", 1, C.MAX_MLP_WIDTH, in_config=True),
    HeadField("mlp_depth", "B", 0, C.MAX_MLP_DEPTH, in_config=True),
    HeadField("num_groups", "B", 1, C.MAX_LEVELS, in_config=True),  # and <= num_levels (ModelConfig.validate)
    HeadField(
        "latent_coding",
        "B",
        C.LATENTS_RANGE_CODED,
        C.LATENTS_FLOAT16,
        since_version=3,
        default=C.LATENTS_RANGE_CODED,
        note=" (0: range-coded, 1: float16)",
    ),
    HeadField(
        "interpolation",
        "B",
        C.INTERPOLATION_BILINEAR,
        C.INTERPOLATION_BSPLINE,
        since_version=4,
        default=C.INTERPOLATION_BILINEAR,
        in_config=True,
        note=" (0: bilinear, 1: cubic B-spline)",
    ),
    HeadField(
        "channels",
        "B",
        C.CHANNELS_RGB,
        C.CHANNELS_RGBA,
        since_version=C.METADATA_VERSION,
        default=C.CHANNELS_RGB,
        in_config=True,
        note=" (3: RGB, 4: RGBA)",
    ),
    HeadField(
        "context_width",
        "B",
        0,
        C.MAX_CONTEXT_WIDTH,
        since_version=C.CONTEXT_VERSION,
        default=0,
        in_config=True,
        note=" (hidden units of the context network, 0: none)",
    ),
)
"""The fixed HEAD fields in file order."""

HEAD_LEVEL_FIELDS: tuple[HeadField, ...] = (
    HeadField("nx", "I", 1, C.MAX_GRID_CELLS_PER_SIDE),
    HeadField("ny", "I", 1, C.MAX_GRID_CELLS_PER_SIDE),
)
"""What follows the fixed fields once per level: the level's cells along x and y (versions 2-3: u32)."""

HEAD_LEVEL_FIELDS_U16: tuple[HeadField, ...] = (
    HeadField("nx", "H", 1, C.MAX_CELLS_U16),
    HeadField("ny", "H", 1, C.MAX_CELLS_U16),
)
"""The per-level fields from version 4 on: u16 cells."""


def head_level_fields(version: int = C.FORMAT_VERSION) -> tuple[HeadField, ...]:
    """The per-level HEAD fields of format ``version``."""
    return HEAD_LEVEL_FIELDS_U16 if version >= C.COMPACT_SIDE_INFO_VERSION else HEAD_LEVEL_FIELDS


def _level_format(version: int) -> str:
    return "".join(f.code for f in head_level_fields(version))


def head_fixed_fields(version: int = C.FORMAT_VERSION) -> tuple[HeadField, ...]:
    """The fixed HEAD fields that a file of format ``version`` stores, in file order."""
    return tuple(f for f in HEAD_FIELDS if f.since_version <= version)


def _fixed_format(version: int) -> str:
    return "".join(f.code for f in head_fixed_fields(version))


def head_payload_bytes(num_levels: int, version: int = C.FORMAT_VERSION) -> int:
    """HEAD payload length: 20 + 4 * num_levels (version 5: 19 + ..., 4: 18 + ..., version 3: 17 + 8 * num_levels, version 2: 16 + 8 * num_levels)."""
    return struct.calcsize("<" + _fixed_format(version)) + num_levels * struct.calcsize("<" + _level_format(version))


def head_layout(num_levels: int, version: int = C.FORMAT_VERSION) -> list[tuple[str, str, int]]:
    """``(name, struct code, byte offset)`` of every HEAD field; level cells are named ``level{l}.nx``/``.ny``."""
    named = [(f.name, f.code) for f in head_fixed_fields(version)]
    named += [(f"level{level}.{f.name}", f.code) for level in range(num_levels) for f in head_level_fields(version)]
    layout, offset = [], 0
    for name, code in named:
        layout.append((name, code, offset))
        offset += struct.calcsize("<" + code)
    return layout


def _check_range(field: HeadField, value: int, high: int | None = None) -> None:
    high = field.high if high is None else high
    if not field.low <= value <= high:
        msg = f"header field {field.name}={value} is outside the allowed range [{field.low}, {high}]{field.note}"
        raise ShcFormatError(msg)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the grid, latent decoder and MLP; everything the decoder needs besides the numbers."""

    num_levels: int
    log2_hashmap_size: int
    latent_dim: int = 1
    feat_dim: int = 1
    mlp_width: int = 16
    mlp_depth: int = 2
    num_groups: int = 1
    """Probability-model groups: contiguous runs of levels sharing one table per latent dimension."""
    interpolation: int = C.INTERPOLATION_BILINEAR
    """How a level is blended between its vertices (SPEC §7): bilinear, or the cubic B-spline."""
    channels: int = C.CHANNELS_RGB
    """Outputs of the MLP's last layer: 3 (RGB) or 4 (RGBA, straight alpha)."""
    context_width: int = 0
    """Hidden units of the context network (SPEC §5a); 0: every level coded with its histogram table."""

    def validate(self) -> None:
        for field in HEAD_FIELDS:  # in file order: num_levels is checked before num_groups uses it
            if field.in_config:
                high = min(field.high, self.num_levels) if field.name == "num_groups" else field.high
                _check_range(field, getattr(self, field.name), high)
        if self.context_width and self.latent_dim != 1:
            msg = f"header field context_width={self.context_width} needs latent_dim 1, got {self.latent_dim}"
            raise ShcFormatError(msg)

    @property
    def num_tables(self) -> int:
        return self.num_groups * self.latent_dim


@dataclass(frozen=True)
class Header:
    """Image size, architecture and each level's cell counts ``(nx, ny)``."""

    width: int
    height: int
    config: ModelConfig
    level_cells: tuple[tuple[int, int], ...]
    latent_coding: int = C.LATENTS_RANGE_CODED
    """How LATN stores the latents: range-coded integers, or raw float16 (the no-entropy baseline)."""
    version: int = C.FORMAT_VERSION
    """The format version the header was read from (or is written as): version 7 chunks large levels and
    splits the latents into segments (SPEC §4a, §6)."""

    @property
    def range_coded(self) -> bool:
        return self.latent_coding == C.LATENTS_RANGE_CODED

    def validate(self) -> None:
        for field in HEAD_FIELDS:
            if not field.in_config:
                _check_range(field, getattr(self, field.name))
        self.config.validate()
        if len(self.level_cells) != self.config.num_levels:
            msg = f"header lists {len(self.level_cells)} levels, expected {self.config.num_levels}"
            raise ShcFormatError(msg)
        for level, cells in enumerate(self.level_cells):
            for field, value in zip(HEAD_LEVEL_FIELDS, cells, strict=True):
                if not field.low <= value <= field.high:
                    msg = f"level {level} {field.name}={value} is outside the allowed range [{field.low}, {field.high}]"
                    raise ShcFormatError(msg)
        if self.config.context_width and not self.range_coded:
            msg = "header field context_width must be 0 for float16 latents"
            raise ShcFormatError(msg)
        if self.total_latents > C.MAX_TOTAL_LATENTS:
            msg = f"header declares {self.total_latents} latents, more than the limit {C.MAX_TOTAL_LATENTS}"
            raise ShcFormatError(msg)
        feature_values = sum(self.level_rows()) * self.config.feat_dim
        if feature_values > C.MAX_TOTAL_LATENTS:
            # the decoder's float32 feature tables hold rows x feat_dim values: bound them like the latents
            msg = f"header implies {feature_values} feature-table values, more than the limit {C.MAX_TOTAL_LATENTS}"
            raise ShcFormatError(msg)

    @cached_property
    def layout(self) -> LatentLayout:
        """Where every latent lives and in which order it is coded (SPEC §4, §6)."""
        return LatentLayout.from_header(self)

    def level_rows(self) -> list[int]:
        return [level.rows for level in self.layout.levels]

    @property
    def total_latents(self) -> int:
        return self.layout.total_latents


@dataclass(frozen=True)
class Table:
    """Integer frequency table of one (group, latent dimension): symbols ``min_symbol .. min_symbol+len-1``.

    From version 4 a file stores the table's ``histogram`` (how often each symbol occurs among the latents
    it codes) and both sides derive ``counts`` from it with :meth:`from_histogram`, in integers.
    """

    min_symbol: int
    counts: np.ndarray  # uint32, each >= 1, summing to 2**TABLE_PRECISION
    histogram: np.ndarray | None = None  # int64 occurrences of each symbol (version 4), else None

    @classmethod
    def from_histogram(cls, min_symbol: int, histogram: np.ndarray) -> Table:
        """The coding table of a histogram (SPEC §5), exact integer arithmetic: each of the ``n`` symbols
        gets one count, and the other ``2**15 - n`` are shared in proportion to the histogram, floors
        first, then one more to the symbols with the largest remainders (lowest symbol first on a tie)."""
        hist = np.asarray(histogram, dtype=np.int64)
        n, total = hist.size, int(hist.sum())
        if not 1 <= n <= C.MAX_TABLE_SYMBOLS or total < 1 or int(hist.min()) < 0:
            msg = f"a table histogram needs 1..{C.MAX_TABLE_SYMBOLS} non-negative counts with a positive sum"
            raise ShcFormatError(msg)
        spare = (1 << C.TABLE_PRECISION) - n
        scaled = hist * spare  # < 2**15 * 2**24: no int64 overflow
        counts = scaled // total
        remainders = scaled - counts * total
        order = np.lexsort((np.arange(n), -remainders))  # largest remainder first, then lowest index
        counts[order[: spare - int(counts.sum())]] += 1
        return cls(int(min_symbol), (counts + 1).astype(np.uint32), hist)

    @property
    def max_symbol(self) -> int:
        return self.min_symbol + len(self.counts) - 1

    def validate(self, index: int) -> None:
        n = len(self.counts)
        if not 1 <= n <= C.MAX_TABLE_SYMBOLS:
            msg = f"table {index} has {n} symbols, allowed 1..{C.MAX_TABLE_SYMBOLS}"
            raise ShcFormatError(msg)
        if self.min_symbol < C.MIN_SYMBOL or self.max_symbol > C.MAX_SYMBOL:
            msg = f"table {index} symbol range [{self.min_symbol}, {self.max_symbol}] exceeds [{C.MIN_SYMBOL}, {C.MAX_SYMBOL}]"
            raise ShcFormatError(msg)
        if int(self.counts.min()) < 1 or int(self.counts.sum()) != 1 << C.TABLE_PRECISION:
            msg = f"table {index} counts must be >= 1 and sum to 2**{C.TABLE_PRECISION}"
            raise ShcFormatError(msg)


@dataclass(frozen=True)
class QuantizedWeights:
    """The network weights as stored: per tensor (``weight_shapes`` order) a float32 step and integer values."""

    scales: np.ndarray  # float32, one per tensor (the quantization step), finite and >= 0
    values: np.ndarray  # integers, flat; version 4: each in [-WEIGHT_CODE_MAX, WEIGHT_CODE_MAX] (2-3: int8)

    def dequantized(self, header: Header) -> np.ndarray:
        """Flat float32 weights: ``float32(value) * scale`` (one IEEE multiplication, the same everywhere)."""
        sizes = [int(np.prod(shape)) for _, shape in weight_shapes(header)]
        return self.values.astype(np.float32) * np.repeat(self.scales.astype(np.float32), sizes)

    def validate(self, header: Header) -> None:
        shapes = weight_shapes(header)
        if self.scales.shape != (len(shapes),) or self.values.shape != (_num_weights(header),):
            msg = f"expected {len(shapes)} scales and {_num_weights(header)} weights for this header"
            raise ShcFormatError(msg)
        if not np.all(np.isfinite(self.scales)) or np.any(self.scales < 0):
            msg = "WGHT section has a non-finite or negative weight scale"
            raise ShcFormatError(msg)
        if self.values.size and int(np.abs(self.values.astype(np.int64)).max()) > C.WEIGHT_CODE_MAX:
            msg = f"WGHT section has a weight outside [-{C.WEIGHT_CODE_MAX}, {C.WEIGHT_CODE_MAX}]"
            raise ShcFormatError(msg)


@dataclass(frozen=True)
class ShcFile:
    """A parsed file, nothing evaluated yet: integers, one float32 scale per weight tensor, and the LATN
    payload as range-coder words (or, for a float16 file, the latent values)."""

    header: Header
    weights: QuantizedWeights
    tables: tuple[Table, ...]  # header.layout.table_keys order (group * D + dim before v6); () for float16
    latent_segments: tuple[np.ndarray, ...]
    """Per segment of the layout (SPEC §6): uint32 range-coder words, or float16 latents (header.latent_coding);
    empty for a file opened for partial reads (:class:`shc.format.reader.ShcReader`)."""
    section_bytes: dict[str, int]  # "header", "metadata" (only when META is present), "weights", ...
    context: ContextParams | None = None
    """The context network's integers (SPEC §5a), when the header's ``context_width`` is not 0."""
    icc_profile: bytes | None = None
    """The ICC profile of the pixels (META ``ICCP``); None: none stored (sRGB is the convention)."""
    exif: bytes | None = None
    """The EXIF block (META ``EXIF``: ``Exif\\0\\0`` and a TIFF structure), orientation already applied."""


def weight_shapes(header: Header) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of the stored weights, in file order. Linear layers are ``y = x @ W.T + b``."""
    cfg = header.config
    shapes: list[tuple[str, tuple[int, ...]]] = [
        ("latent_decoder.weight", (cfg.feat_dim, cfg.latent_dim)),
        ("latent_decoder.bias", (cfg.feat_dim,)),
    ]
    dims = [cfg.num_levels * cfg.feat_dim] + [cfg.mlp_width] * cfg.mlp_depth + [cfg.channels]
    for k in range(len(dims) - 1):
        shapes += [(f"mlp.{k}.weight", (dims[k + 1], dims[k])), (f"mlp.{k}.bias", (dims[k + 1],))]
    return shapes


def _num_weights(header: Header) -> int:
    return sum(int(np.prod(shape)) for _, shape in weight_shapes(header))


# ---------------------------------------------------------------------------------------------- META

METADATA_FIELDS: dict[bytes, str] = {b"ICCP": "icc_profile", b"EXIF": "exif"}
"""META entry keys in file order (``C.META_KEYS``) and the :class:`ShcFile` attribute each one fills."""

EXIF_PREFIX = b"Exif\x00\x00"
"""How an EXIF entry starts (as in a JPEG APP1 segment and Pillow's ``Image.Exif().tobytes()``) ..."""
TIFF_BYTE_ORDERS = (b"II*\x00", b"MM\x00*")
"""... followed by a TIFF header: little- or big-endian."""
ICC_HEADER_BYTES = 128
ICC_SIGNATURE = (36, b"acsp")
"""Every ICC profile has a 128-byte header with the signature ``acsp`` at byte 36."""


def section_order(version: int = C.FORMAT_VERSION) -> tuple[bytes, ...]:
    """The section tags a file of ``version`` may hold, in order; META (version 5 on) is the optional one."""
    if version < C.METADATA_VERSION:
        return C.SECTION_TAGS
    return C.SECTION_TAGS[:1] + (C.META_TAG,) + C.SECTION_TAGS[1:]


def metadata_problem(key: bytes, value: bytes) -> str | None:
    """What is wrong with one META entry, or None. Checks its size (1 .. ``MAX_META_ENTRY_BYTES``) and the
    few bytes that say it is what its key claims; the reader, the writer and the image loader share this,
    so nothing is written that a reader would refuse."""
    name = key.decode("ascii", "replace")
    if not 1 <= len(value) <= C.MAX_META_ENTRY_BYTES:
        return f"META {name} entry has {len(value)} bytes, allowed 1..{C.MAX_META_ENTRY_BYTES}"
    at, signature = ICC_SIGNATURE
    if key == b"ICCP" and (len(value) < ICC_HEADER_BYTES or value[at : at + len(signature)] != signature):
        return f"META {name} entry is not an ICC profile (no 128-byte header with the signature 'acsp')"
    if key == b"EXIF" and (value[: len(EXIF_PREFIX)] != EXIF_PREFIX or value[6:10] not in TIFF_BYTE_ORDERS):
        return f"META {name} entry does not start with Exif\\0\\0 and a TIFF header"
    return None


def metadata_payload(entries: dict[bytes, bytes]) -> bytes:
    """The META payload of ``entries`` (key -> value): per entry in ``C.META_KEYS`` order its key, u32
    length and bytes; empty when there are none (the writer then leaves the section out).
    Raises ValueError for an unknown key or an entry :func:`metadata_problem` refuses."""
    out = []
    for key in entries:
        if key not in C.META_KEYS:
            msg = f"unknown META key {key!r} (known: {', '.join(k.decode() for k in C.META_KEYS)})"
            raise ValueError(msg)
    for key in C.META_KEYS:
        if key in entries:
            value = bytes(entries[key])
            problem = metadata_problem(key, value)
            if problem is not None:
                raise ValueError(problem)
            out.append(key + struct.pack("<I", len(value)) + value)
    return b"".join(out)


def read_metadata(payload: bytes) -> dict[bytes, bytes]:
    """The entries of a META payload (SPEC §2a), key -> bytes. Each length is bounded before its bytes are
    read; an empty payload, an unknown, repeated or misordered key, or a refused entry raise
    :class:`ShcFormatError`."""
    if not payload:
        msg = "META section has no entries (a file without metadata leaves the section out)"
        raise ShcFormatError(msg)
    reader = Reader(payload, "META section")
    entries: dict[bytes, bytes] = {}
    while reader.remaining:
        key = reader.bytes(4, "entry key")
        length = reader.u32(f"{key!r} entry length")
        if key not in C.META_KEYS:
            msg = f"META section: unknown key {key!r} (known: {', '.join(k.decode() for k in C.META_KEYS)})"
            raise ShcFormatError(msg)
        if key in entries:
            msg = f"META section: key {key.decode()} occurs twice"
            raise ShcFormatError(msg)
        if entries and C.META_KEYS.index(key) < C.META_KEYS.index(next(reversed(entries))):
            order = ", ".join(k.decode() for k in C.META_KEYS)
            msg = f"META section: key {key.decode()} out of order (the order is {order})"
            raise ShcFormatError(msg)
        if not 1 <= length <= C.MAX_META_ENTRY_BYTES:
            msg = f"META {key.decode()} entry declares {length} bytes, allowed 1..{C.MAX_META_ENTRY_BYTES}"
            raise ShcFormatError(msg)
        value = reader.bytes(length, f"{key.decode()} entry")
        problem = metadata_problem(key, value)
        if problem is not None:
            raise ShcFormatError(problem)
        entries[key] = value
    return entries


# ---------------------------------------------------------------------------------------------- writing


def file_prefix(version: int = C.FORMAT_VERSION) -> bytes:
    """The bytes before the first section: magic, then the version byte (``C.FILE_PREFIX_BYTES`` long)."""
    return C.MAGIC + bytes([version])


def frame_section(tag: bytes, payload: bytes, crc: int | None = None) -> bytes:
    """One section: tag, u32 length, payload, u32 CRC32 of tag + payload (``C.SECTION_FRAME_BYTES`` of framing).

    ``crc`` replaces the checksum (the fuzzer writes wrong ones on purpose); the writer never passes it.
    The tag is written as given: the fuzzer also frames malformed ones.
    """
    crc = zlib.crc32(tag + payload) if crc is None else crc
    return tag + struct.pack("<I", len(payload)) + payload + struct.pack("<I", crc & 0xFFFFFFFF)


def _header_payload(header: Header) -> bytes:
    fixed = head_fixed_fields(C.FORMAT_VERSION)
    values = [getattr(header.config if f.in_config else header, f.name) for f in fixed]
    out = struct.pack("<" + _fixed_format(C.FORMAT_VERSION), *values)
    for level, cells in enumerate(header.level_cells):
        for field, value in zip(head_level_fields(C.FORMAT_VERSION), cells, strict=True):
            if not field.low <= value <= field.high:
                msg = f"level {level} {field.name}={value}: version {C.FORMAT_VERSION} stores at most {field.high} cells"
                raise ValueError(msg)
    return out + b"".join(struct.pack("<" + _level_format(C.FORMAT_VERSION), *cells) for cells in header.level_cells)


def table_codes(min_symbol: int, histogram: np.ndarray, order: int) -> list[tuple[np.ndarray, int]]:
    """The exp-Golomb codes of one version 4 table (SPEC §5): zigzag-EG0(min_symbol), EG0(n - 1),
    EG0(order), then the n histogram counts in order ``order`` (for :func:`shc.format.expgolomb.pack`)."""
    head = np.array([zigzag(min_symbol), max(len(histogram) - 1, 0), order])
    return [(head, 0), (np.asarray(histogram, dtype=np.int64), order)]


def read_table_codes(bits: BitReader, index: int) -> tuple[int, int, np.ndarray]:
    """The syntax of one version 4 table: ``(min_symbol, order, histogram)``. The size and the order are
    bounded before the histogram is read; what the counts must satisfy is checked by the caller."""
    min_symbol = bits.signed(0, f"table {index} min_symbol")
    num_symbols = bits.unsigned(0, f"table {index} size") + 1
    order = bits.unsigned(0, f"table {index} order")
    if not 1 <= num_symbols <= C.MAX_TABLE_SYMBOLS or order > MAX_ORDER:
        msg = f"table {index} has {num_symbols} symbols (allowed 1..{C.MAX_TABLE_SYMBOLS}) or order {order} > {MAX_ORDER}"
        raise ShcFormatError(msg)
    return min_symbol, order, bits.unsigned_array(num_symbols, order, f"table {index} histogram")


CONTEXT_TENSORS = ("w1", "b1", "w2", "level_bias")
"""The context network's integer tensors in TABL order (SPEC §5a), each with its own exp-Golomb order."""


def context_codes(params: ContextParams) -> list[tuple[np.ndarray, int]]:
    """The exp-Golomb codes of a context network (SPEC §5a): per tensor EG0(order) and its values' signed
    codes of that order; then per context level zigzag-EG0(low) and EG0(span - 1)."""
    codes = []
    for name in CONTEXT_TENSORS:
        unsigned = zigzag(getattr(params, name).reshape(-1))
        order = best_order(unsigned)
        codes += [(np.array([order]), 0), (unsigned, order)]
    ranges = np.stack([zigzag(params.level_low), params.level_span - 1], axis=1).reshape(-1)
    return [*codes, (ranges, 0)]


def read_context(bits: BitReader, width: int, levels: int) -> ContextParams:
    """The syntax of :func:`context_codes`, every size bounded by the header; bounds checked."""
    shapes = {"w1": (width, CONTEXT_INPUTS), "b1": (width,), "w2": (2, width), "level_bias": (levels, 2)}
    values = {}
    for name in CONTEXT_TENSORS:
        order = bits.unsigned(0, f"context {name} order")
        if order > MAX_ORDER:
            msg = f"TABL section: context {name} order {order} is above {MAX_ORDER}"
            raise ShcFormatError(msg)
        values[name] = bits.signed_array(int(np.prod(shapes[name])), order, f"context {name}").reshape(shapes[name])
    low = np.zeros(levels, dtype=np.int64)
    span = np.zeros(levels, dtype=np.int64)
    for slot in range(levels):
        low[slot] = bits.signed(0, f"context level {slot} low")
        span[slot] = bits.unsigned(0, f"context level {slot} span") + 1
    params = ContextParams(level_low=low, level_span=span, **values)
    params.validate(width, levels)
    return params


def tables_payload(tables: tuple[Table, ...], context: ContextParams | None = None) -> bytes:
    """Version 4 TABL (SPEC §5): each table's codes (:func:`table_codes`) in its cheapest order; version 6
    puts the context network's codes first (§5a)."""
    codes = [] if context is None else context_codes(context)
    for index, table in enumerate(tables):
        if table.histogram is None:
            msg = f"table {index} has no histogram (version {C.FORMAT_VERSION} stores histograms)"
            raise ValueError(msg)
        codes += table_codes(table.min_symbol, table.histogram, best_order(table.histogram))
    return pack(codes)


def _weights_payload(header: Header, weights: QuantizedWeights) -> bytes:
    """Version 4 WGHT (SPEC §3): per tensor a f32 step and a u8 order k, then every value's signed
    exp-Golomb code of its tensor's order."""
    heads, codes, offset = [], [], 0
    for (_, shape), scale in zip(weight_shapes(header), weights.scales):
        count = int(np.prod(shape))
        unsigned = zigzag(weights.values[offset : offset + count])
        order = best_order(unsigned)
        heads.append(struct.pack("<fB", float(scale), order))
        codes.append((unsigned, order))
        offset += count
    return b"".join(heads) + pack(codes)


def write_file(
    header: Header,
    weights: QuantizedWeights,
    tables: tuple[Table, ...],
    latent_segments,
    *,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    context: ContextParams | None = None,
) -> bytes:
    """Serialize; validates like the reader does, so we never write a file we would refuse to read.

    ``latent_segments``: per segment of the layout (SPEC §6), the range coder's uint32 words, or for a
    float16 header (no tables) the segment's latents in coding order, any float dtype, converted to float16
    (:func:`shc.format.entropy.encode_latents`, :func:`shc.format.entropy.pack_float16_latents`). ``icc_profile`` and ``exif``
    go into the META section, which is left out when both are None. ``context``: the context network,
    required exactly when the header's ``context_width`` is not 0.
    """
    header.validate()
    if header.version != C.FORMAT_VERSION:
        msg = f"files are written in version {C.FORMAT_VERSION}; this header was read from version {header.version}"
        raise ValueError(msg)
    try:
        weights.validate(header)
    except ShcFormatError as error:
        raise ValueError(str(error)) from None
    num_tables = header.layout.num_tables if header.range_coded else 0
    if len(tables) != num_tables:
        msg = f"{len(tables)} tables given, the header implies {num_tables}"
        raise ValueError(msg)
    for index, table in enumerate(tables):
        table.validate(index)
    width = header.config.context_width
    if (context is None) != (width == 0):
        msg = f"the header's context_width is {width}: a context network must be given exactly when it is not 0"
        raise ValueError(msg)
    if context is not None:
        try:
            context.validate(width, len(header.layout.context_levels))
        except ShcFormatError as error:
            raise ValueError(str(error)) from None
    layout = header.layout
    if isinstance(latent_segments, np.ndarray) or len(latent_segments) != len(layout.segments):
        msg = f"the header's layout has {len(layout.segments)} latent segments: give one array per segment"
        raise ValueError(msg)
    segments = []
    for segment, values in zip(layout.segments, latent_segments):
        if header.range_coded:
            segments.append(np.asarray(values, dtype="<u4").tobytes())
            continue
        words = np.asarray(values).astype("<f2")
        expected = layout.segment_latents(segment)
        if words.shape != (expected,) or not np.all(np.isfinite(words)):
            msg = f"float16 segment {segment.index} needs {expected} finite latents, got {words.size}"
            raise ValueError(msg)
        segments.append(words.tobytes())
    for index, raw in enumerate(segments):
        if len(raw) > C.MAX_SECTION_BYTES:
            msg = f"latent segment {index} has {len(raw)} bytes, more than the limit {C.MAX_SECTION_BYTES}"
            raise ValueError(msg)
    given = {"icc_profile": icc_profile, "exif": exif}
    metadata = metadata_payload({key: given[name] for key, name in METADATA_FIELDS.items() if given[name] is not None})
    payloads = {
        b"HEAD": _header_payload(header),
        b"WGHT": _weights_payload(header, weights),
        b"TABL": tables_payload(tables, context),
        b"LATN": segment_index(segments),
    }
    if metadata:
        payloads[C.META_TAG] = metadata
    sections = b"".join(frame_section(tag, payloads[tag]) for tag in section_order() if tag in payloads)
    return file_prefix() + sections + b"".join(segments)


def segment_index(segments: list[bytes]) -> bytes:
    """The LATN payload of version 7 (SPEC §6): per segment its byte length and the CRC-32 of its bytes."""
    return b"".join(struct.pack("<II", len(raw), zlib.crc32(raw)) for raw in segments)


# ---------------------------------------------------------------------------------------------- reading


def _read_prefix(data) -> tuple[Reader, int]:
    """A reader past the magic and the version byte, and the version (checked: one this decoder reads).
    ``data``: the file's bytes, or a :class:`FileReader` at the start of the file."""
    reader = data if isinstance(data, Reader) else Reader(data, "file")
    magic = reader.bytes(min(len(C.MAGIC), reader.remaining), "magic")
    if magic != C.MAGIC:
        msg = "not an .shc file (wrong magic bytes)"
        raise ShcFormatError(msg)
    version = reader.u8("version")
    if version not in C.READABLE_VERSIONS:
        readable = ", ".join(map(str, C.READABLE_VERSIONS))
        msg = f"unsupported .shc format version {version} (this decoder reads versions {readable})"
        raise ShcFormatError(msg)
    return reader, version


def _read_sections(reader: Reader, version: int) -> dict[bytes, bytes]:
    """The framed sections, HEAD to LATN, each checked against its CRC; the reader is left after LATN
    (where a version-7 file's latent segments start)."""
    sections = {}
    order = section_order(version)
    found = None  # a tag already read: the one after an absent optional section
    for index, tag in enumerate(order):
        name = tag.decode()
        if found is None:
            required = next(t for t in order[index:] if t != C.META_TAG).decode()
            found = reader.bytes(C.SECTION_TAG_BYTES, f"{required} section tag")
        if found != tag:
            if tag == C.META_TAG:
                continue
            msg = f"expected section {name}, found tag {found!r}"
            raise ShcFormatError(msg)
        found = None
        length = reader.u32(f"{name} section length")
        if length > C.MAX_SECTION_BYTES:
            msg = f"section {name} declares {length} bytes, more than the limit {C.MAX_SECTION_BYTES}"
            raise ShcFormatError(msg)
        payload = reader.bytes(length, f"{name} section payload")
        crc = reader.u32(f"{name} section CRC32")
        if crc != zlib.crc32(tag + payload):
            msg = f"section {name} is corrupted (CRC32 mismatch)"
            raise ShcFormatError(msg)
        sections[tag] = payload
    return sections


@dataclass(frozen=True)
class SegmentIndex:
    """Where each latent segment lies in the file (SPEC §6): byte ``offsets`` and ``lengths``, and the CRC-32
    each must have (None before version 7, whose single segment is the CRC-checked LATN payload)."""

    offsets: tuple[int, ...]
    lengths: tuple[int, ...]
    crcs: tuple[int, ...] | None

    @property
    def end(self) -> int:
        """The file's length: right after the last segment."""
        return self.offsets[-1] + self.lengths[-1] if self.offsets else 0

    def arrived(self, segment: int, size: int) -> bool:
        """Whether a file of ``size`` bytes holds all of ``segment`` (one cut short may not)."""
        return self.offsets[segment] + self.lengths[segment] <= size


def _parse_segment_index(payload: bytes, header: Header, start: int) -> SegmentIndex:
    """Version 7's LATN payload: per segment of the layout a u32 length and a u32 CRC-32 (SPEC §6)."""
    layout = header.layout
    count = len(layout.segments)
    if len(payload) != C.SEGMENT_INDEX_ENTRY_BYTES * count:
        msg = f"LATN section has {len(payload)} bytes, the index of {count} latent segments needs {C.SEGMENT_INDEX_ENTRY_BYTES * count}"
        raise ShcFormatError(msg)
    entries = np.frombuffer(payload, dtype="<u4").reshape(count, 2).astype(np.int64)
    lengths = entries[:, 0]
    for segment, length in zip(layout.segments, lengths):
        if length > C.MAX_SECTION_BYTES:
            msg = f"latent segment {segment.index} declares {length} bytes, more than the limit {C.MAX_SECTION_BYTES}"
            raise ShcFormatError(msg)
        if header.range_coded and length % 4:
            msg = f"latent segment {segment.index} length {length} is not a multiple of 4"
            raise ShcFormatError(msg)
        if not header.range_coded and length != 2 * layout.segment_latents(segment):
            msg = (f"latent segment {segment.index} has {length} bytes, its "
                   f"{layout.segment_latents(segment)} float16 latents need {2 * layout.segment_latents(segment)}")
            raise ShcFormatError(msg)
    offsets = start + np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return SegmentIndex(tuple(int(v) for v in offsets), tuple(int(v) for v in lengths),
                        tuple(int(v) for v in entries[:, 1]))


def complete_levels(header: Header, index: SegmentIndex, size: int) -> int:
    """How many levels, coarse to fine, a file of ``size`` bytes holds whole (all unless it was cut short)."""
    layout = header.layout
    for count in range(len(layout.levels), 0, -1):
        if all(index.arrived(k, size) for k in layout.segments_for_levels(count)):
            return count
    return 0


def truncation_error(header: Header, index: SegmentIndex, size: int) -> ShcFormatError:
    """The one error of a file cut short in its latents: how much is there, and what can still be rendered."""
    complete = complete_levels(header, index, size)
    levels = len(header.layout.levels)
    hint = (f"its first {complete} of {levels} levels are complete: render them with --levels {complete}"
            if complete else "not even its first level is complete")
    return ShcFormatError(f"the file is truncated ({size} of {index.end} bytes): {hint}")


def segment_values(header: Header, segment: int, raw: bytes) -> np.ndarray:
    """A segment's bytes as what the coder reads: uint32 words, or float16 latents (checked finite)."""
    if header.range_coded:
        if len(raw) % 4:
            msg = f"latent segment {segment} length {len(raw)} is not a multiple of 4"
            raise ShcFormatError(msg)
        return np.frombuffer(raw, dtype="<u4").astype(np.uint32)
    expected = 2 * header.layout.segment_latents(header.layout.segments[segment])
    if len(raw) != expected:
        msg = f"latent segment {segment} has {len(raw)} bytes, its float16 latents need {expected}"
        raise ShcFormatError(msg)
    values = np.frombuffer(raw, dtype="<f2").astype(np.float16)
    if not np.all(np.isfinite(values)):
        msg = f"latent segment {segment} has a non-finite float16 latent"
        raise ShcFormatError(msg)
    return values


def check_segment(index: SegmentIndex, segment: int, raw: bytes) -> None:
    """A segment's bytes against the CRC-32 the index gives it (version 7)."""
    if index.crcs is not None and zlib.crc32(raw) != index.crcs[segment]:
        msg = f"latent segment {segment} is corrupted (CRC32 mismatch)"
        raise ShcFormatError(msg)


def read_front(reader: Reader) -> tuple[ShcFile, SegmentIndex, bytes | None]:
    """Everything before the latents, parsed and validated (magic, version, HEAD, META, WGHT, TABL and the
    LATN section), from a reader at the start of the file. Returns the file without latents, where its
    segments lie and, before version 7, the LATN payload (the one segment, already CRC-checked)."""
    reader, version = _read_prefix(reader)
    sections = _read_sections(reader, version)
    header = _parse_header(sections[b"HEAD"], version)
    metadata = read_metadata(sections[C.META_TAG]) if C.META_TAG in sections else {}
    weights = _parse_weights(sections[b"WGHT"], header, version)
    tables, context = _parse_tables(sections[b"TABL"], header, version)
    latent_payload = sections[b"LATN"]
    section_bytes = {"header": C.FILE_PREFIX_BYTES + C.SECTION_FRAME_BYTES + len(sections[b"HEAD"])}
    for key, tag in (("metadata", C.META_TAG), ("weights", b"WGHT"), ("tables", b"TABL"), ("latents", b"LATN")):
        if tag in sections:
            section_bytes[key] = C.SECTION_FRAME_BYTES + len(sections[tag])
    if version >= C.SEGMENTED_VERSION:
        index = _parse_segment_index(latent_payload, header, reader.position)
        section_bytes["latents"] += sum(index.lengths)
        legacy = None
    else:
        start = reader.position - C.SECTION_CRC_BYTES - len(latent_payload)
        index = SegmentIndex((start,), (len(latent_payload),), None)
        legacy = latent_payload
    fields = {METADATA_FIELDS[key]: value for key, value in metadata.items()}
    return ShcFile(header, weights, tables, (), section_bytes, context=context, **fields), index, legacy


def _parse_header(payload: bytes, version: int) -> Header:
    reader = Reader(payload, "HEAD section")
    read = reader.unpack(_fixed_format(version), "image size and model configuration")
    values = {f.name: f.default for f in HEAD_FIELDS}  # fields this version lacks keep their default
    values.update(zip([f.name for f in head_fixed_fields(version)], read))
    config = ModelConfig(**{f.name: values[f.name] for f in HEAD_FIELDS if f.in_config})
    config.validate()  # bounds num_levels before reading the per-level list
    cells = tuple(reader.unpack(_level_format(version), f"level {level} cells") for level in range(config.num_levels))
    reader.expect_end()
    header_values = {f.name: values[f.name] for f in HEAD_FIELDS if not f.in_config}
    header = Header(config=config, level_cells=cells, version=version, **header_values)
    header.validate()
    return header


def _parse_weights(payload: bytes, header: Header, version: int) -> QuantizedWeights:
    if version < C.COMPACT_SIDE_INFO_VERSION:
        return _parse_int8_weights(payload, header)
    shapes = weight_shapes(header)
    reader = Reader(payload, "WGHT section")
    steps, orders = [], []
    for name, _ in shapes:
        step, order = reader.unpack("fB", f"{name} step and order")
        if order > MAX_ORDER:
            msg = f"WGHT section: {name} order {order} is above {MAX_ORDER}"
            raise ShcFormatError(msg)
        steps.append(step)
        orders.append(order)
    bits = BitReader(reader.bytes(reader.remaining, "weight codes"), "WGHT section")
    values = [bits.signed_array(int(np.prod(shape)), order, f"{name} values") for (name, shape), order in zip(shapes, orders)]
    bits.expect_end()
    weights = QuantizedWeights(np.array(steps, dtype=np.float32), np.concatenate(values))
    weights.validate(header)
    return weights


def _parse_int8_weights(payload: bytes, header: Header) -> QuantizedWeights:
    """Versions 2-3: per tensor a f32 scale and its values as int8."""
    shapes = weight_shapes(header)
    expected = 4 * len(shapes) + _num_weights(header)
    if len(payload) != expected:
        msg = f"WGHT section has {len(payload)} bytes, the header implies {expected}"
        raise ShcFormatError(msg)
    reader = Reader(payload, "WGHT section")
    scales, values = [], []
    for name, shape in shapes:
        scales.append(reader.unpack("f", f"{name} scale")[0])
        values.append(np.frombuffer(reader.bytes(int(np.prod(shape)), f"{name} values"), dtype="i1"))
    weights = QuantizedWeights(np.array(scales, dtype=np.float32), np.concatenate(values).astype(np.int64))
    if int(np.abs(weights.values).max(initial=0)) > C.WEIGHT_INT_MAX:
        msg = f"WGHT section has a weight outside [-{C.WEIGHT_INT_MAX}, {C.WEIGHT_INT_MAX}]"
        raise ShcFormatError(msg)
    weights.validate(header)
    return weights


def _parse_tables(payload: bytes, header: Header, version: int) -> tuple[tuple[Table, ...], ContextParams | None]:
    if version < C.COMPACT_SIDE_INFO_VERSION:
        return _parse_count_tables(payload, header), None
    bits = BitReader(payload, "TABL section")
    width = header.config.context_width
    context = read_context(bits, width, len(header.layout.context_levels)) if width else None
    coded = table_symbol_counts(header)
    tables = []
    for index in range(header.layout.num_tables if header.range_coded else 0):
        min_symbol, _, histogram = read_table_codes(bits, index)
        if int(histogram.max()) > coded[index]:  # also keeps the sum below from wrapping around int64
            msg = f"table {index} histogram has a count above the {coded[index]} latents the table codes"
            raise ShcFormatError(msg)
        if int(histogram.sum()) != coded[index] or histogram[0] == 0 or histogram[-1] == 0:
            msg = (f"table {index} histogram counts {int(histogram.sum())} latents, the header implies {coded[index]}"
                   " (and its first and last symbols must occur)")
            raise ShcFormatError(msg)
        table = Table.from_histogram(min_symbol, histogram)
        table.validate(index)
        tables.append(table)
    bits.expect_end()
    return tuple(tables), context


def table_symbol_counts(header: Header) -> list[int]:
    """How many latents each table codes (its histogram's sum), from the layout."""
    counts = [0] * header.layout.num_tables
    for run in header.layout.coding_runs():
        counts[run.table] += run.level.rows
    return counts


def _parse_count_tables(payload: bytes, header: Header) -> tuple[Table, ...]:
    """Versions 2-3: per table i32 min_symbol, u16 n, n x u16 (count - 1)."""
    reader = Reader(payload, "TABL section")
    tables = []
    for index in range(header.config.num_tables if header.range_coded else 0):
        min_symbol, num_symbols = reader.unpack("iH", f"table {index} range")
        if not 1 <= num_symbols <= C.MAX_TABLE_SYMBOLS:
            msg = f"table {index} has {num_symbols} symbols, allowed 1..{C.MAX_TABLE_SYMBOLS}"
            raise ShcFormatError(msg)
        raw = reader.bytes(2 * num_symbols, f"table {index} counts")
        table = Table(min_symbol, np.frombuffer(raw, dtype="<u2").astype(np.uint32) + 1)
        table.validate(index)
        tables.append(table)
    reader.expect_end()
    return tuple(tables)


def read_file(data: bytes) -> ShcFile:
    """Parse and validate a whole file, every latent segment included (each checked against its CRC-32).
    Raises :class:`ShcFormatError` for anything malformed: a truncated file too (a reader of what a
    truncated file holds: :class:`shc.format.reader.ShcReader`)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        msg = f"expected bytes, got {type(data).__name__}"
        raise TypeError(msg)
    data = bytes(data)
    reader = Reader(data, "file")
    front, index, legacy = read_front(reader)
    if legacy is not None:
        raws = [legacy]
    else:
        raws = []
        for segment, (offset, length) in enumerate(zip(index.offsets, index.lengths)):
            if not index.arrived(segment, len(data)):
                raise truncation_error(front.header, index, len(data))
            raw = data[offset : offset + length]
            check_segment(index, segment, raw)
            raws.append(raw)
    end = index.end if legacy is None else reader.position
    if len(data) > end:
        msg = f"{len(data) - end} bytes of trailing garbage after the last section"
        raise ShcFormatError(msg)
    segments = tuple(segment_values(front.header, k, raw) for k, raw in enumerate(raws))
    return replace(front, latent_segments=segments)


def read_header(data: bytes) -> Header:
    """The header of a file from its first bytes (magic, version, the HEAD section and its CRC), with the
    same checks as :func:`read_file`; whatever follows HEAD, or is missing after it, is not looked at. A
    viewer learns the size and the model this way from a few hundred bytes, without decoding anything.
    Raises :class:`ShcFormatError` when those bytes are malformed or cut short.
    """
    reader, version = _read_prefix(bytes(data))
    tag = C.SECTION_TAGS[0]
    found = reader.bytes(C.SECTION_TAG_BYTES, "HEAD section tag")
    if found != tag:
        msg = f"expected section HEAD, found tag {found!r}"
        raise ShcFormatError(msg)
    payload = reader.bytes(reader.u32("HEAD section length"), "HEAD section payload")
    if reader.u32("HEAD section CRC32") != zlib.crc32(tag + payload):
        msg = "section HEAD is corrupted (CRC32 mismatch)"
        raise ShcFormatError(msg)
    return _parse_header(payload, version)
