"""The optional META section (SPEC §2a, version 5 on): the ICC profile and the EXIF block, an entry each,
checked the same way by the reader, the writer and the image loader.
"""

from __future__ import annotations

import struct

from shc.format import constants as C
from shc.format.binary import Reader
from shc.format.errors import ShcFormatError

__all__ = [
    "EXIF_PREFIX",
    "ICC_HEADER_BYTES",
    "ICC_SIGNATURE",
    "METADATA_FIELDS",
    "TIFF_BYTE_ORDERS",
    "metadata_payload",
    "metadata_problem",
    "read_metadata",
]

METADATA_FIELDS: dict[bytes, str] = {b"ICCP": "icc_profile", b"EXIF": "exif"}
"""META entry keys in file order (``C.META_KEYS``) and the :class:`~shc.format.container.ShcFile` attribute
each one fills."""

EXIF_PREFIX = b"Exif\x00\x00"
"""How an EXIF entry starts (as in a JPEG APP1 segment and Pillow's ``Image.Exif().tobytes()``) ..."""
TIFF_BYTE_ORDERS = (b"II*\x00", b"MM\x00*")
"""... followed by a TIFF header: little- or big-endian."""
ICC_HEADER_BYTES = 128
ICC_SIGNATURE = (36, b"acsp")
"""Every ICC profile has a 128-byte header with the signature ``acsp`` at byte 36."""


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
