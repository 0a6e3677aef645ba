"""The latent segments of version 7 (SPEC §6): the LATN payload is their index (a u32 length and a u32
CRC-32 each) and the segments follow the sections. Where each lies, how many levels a file cut short still
holds whole, and a segment's bytes as what the range decoder reads.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from shc.format import constants as C
from shc.format.errors import ShcFormatError
from shc.format.header import Header

__all__ = [
    "SegmentIndex",
    "check_segment",
    "complete_levels",
    "parse_segment_index",
    "segment_index",
    "segment_values",
    "truncation_error",
]


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


def parse_segment_index(payload: bytes, header: Header, start: int) -> SegmentIndex:
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


def segment_index(segments: list[bytes]) -> bytes:
    """The LATN payload of version 7 (SPEC §6): per segment its byte length and the CRC-32 of its bytes."""
    return b"".join(struct.pack("<II", len(raw), zlib.crc32(raw)) for raw in segments)
