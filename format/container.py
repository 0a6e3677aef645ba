"""The ``.shc`` container: magic, version, then CRC-protected sections (byte layout in SPEC.md): HEAD, the
optional META (version 5: ICC profile and EXIF), WGHT, TABL and LATN.

This module only moves validated fields between bytes and plain dataclasses; it knows nothing about
PyTorch. Every declared count is checked against the limits in :mod:`shc.format.constants` and against the
bytes actually present before anything is allocated.

The sections have rooms of their own: HEAD :mod:`~shc.format.header`, META :mod:`~shc.format.metadata`,
WGHT :mod:`~shc.format.weights`, TABL :mod:`~shc.format.table` (and the context network's codes in
:mod:`~shc.format.context`), the latent segments and their index :mod:`~shc.format.segments`. This module
frames them, puts them in order, and reads and writes whole files.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace

import numpy as np

from shc.format import constants as C
from shc.format.binary import Reader
from shc.format.context import ContextParams, context_codes, read_context
from shc.format.errors import ShcFormatError
from shc.format.expgolomb import BitReader, best_order, pack
from shc.format.header import (
    HEAD_FIELDS,
    Header,
    ModelConfig,
    head_layout,
    head_payload_bytes,
    header_payload,
    parse_header,
)
from shc.format.metadata import METADATA_FIELDS, metadata_payload, read_metadata
from shc.format.segments import (
    SegmentIndex,
    check_segment,
    complete_levels,
    parse_segment_index,
    segment_index,
    segment_values,
    truncation_error,
)
from shc.format.table import Table, parse_count_tables, read_table_codes, table_codes, table_symbol_counts
from shc.format.weights import QuantizedWeights, parse_weights, weight_shapes, weights_payload

__all__ = [
    "ShcFile",
    "file_prefix",
    "frame_section",
    "read_file",
    "read_front",
    "read_header",
    "section_order",
    "tables_payload",
    "write_file",
    # at home in the section modules; format/decoder.py, format/reader.py and tests/test_format.py import
    # them from here
    "HEAD_FIELDS",
    "Header",
    "ModelConfig",
    "QuantizedWeights",
    "Table",
    "check_segment",
    "complete_levels",
    "head_layout",
    "head_payload_bytes",
    "segment_values",
    "table_symbol_counts",
    "truncation_error",
    "weight_shapes",
]


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


# ---------------------------------------------------------------------------------------------- framing


def section_order(version: int = C.FORMAT_VERSION) -> tuple[bytes, ...]:
    """The section tags a file of ``version`` may hold, in order; META (version 5 on) is the optional one."""
    if version < C.METADATA_VERSION:
        return C.SECTION_TAGS
    return C.SECTION_TAGS[:1] + (C.META_TAG,) + C.SECTION_TAGS[1:]


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


# ---------------------------------------------------------------------------------------------- TABL


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


def _parse_tables(payload: bytes, header: Header, version: int) -> tuple[tuple[Table, ...], ContextParams | None]:
    if version < C.COMPACT_SIDE_INFO_VERSION:
        return parse_count_tables(payload, header), None
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


# ---------------------------------------------------------------------------------------------- files


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
        b"HEAD": header_payload(header),
        b"WGHT": weights_payload(header, weights),
        b"TABL": tables_payload(tables, context),
        b"LATN": segment_index(segments),
    }
    if metadata:
        payloads[C.META_TAG] = metadata
    sections = b"".join(frame_section(tag, payloads[tag]) for tag in section_order() if tag in payloads)
    return file_prefix() + sections + b"".join(segments)


def read_front(reader: Reader) -> tuple[ShcFile, SegmentIndex, bytes | None]:
    """Everything before the latents, parsed and validated (magic, version, HEAD, META, WGHT, TABL and the
    LATN section), from a reader at the start of the file. Returns the file without latents, where its
    segments lie and, before version 7, the LATN payload (the one segment, already CRC-checked)."""
    reader, version = _read_prefix(reader)
    sections = _read_sections(reader, version)
    header = parse_header(sections[b"HEAD"], version)
    metadata = read_metadata(sections[C.META_TAG]) if C.META_TAG in sections else {}
    weights = parse_weights(sections[b"WGHT"], header, version)
    tables, context = _parse_tables(sections[b"TABL"], header, version)
    latent_payload = sections[b"LATN"]
    section_bytes = {"header": C.FILE_PREFIX_BYTES + C.SECTION_FRAME_BYTES + len(sections[b"HEAD"])}
    for key, tag in (("metadata", C.META_TAG), ("weights", b"WGHT"), ("tables", b"TABL"), ("latents", b"LATN")):
        if tag in sections:
            section_bytes[key] = C.SECTION_FRAME_BYTES + len(sections[tag])
    if version >= C.SEGMENTED_VERSION:
        index = parse_segment_index(latent_payload, header, reader.position)
        section_bytes["latents"] += sum(index.lengths)
        legacy = None
    else:
        start = reader.position - C.SECTION_CRC_BYTES - len(latent_payload)
        index = SegmentIndex((start,), (len(latent_payload),), None)
        legacy = latent_payload
    fields = {METADATA_FIELDS[key]: value for key, value in metadata.items()}
    return ShcFile(header, weights, tables, (), section_bytes, context=context, **fields), index, legacy


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
    return parse_header(payload, version)
