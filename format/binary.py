"""Bounded little-endian reading: never trust a length read from the file."""

from __future__ import annotations

import struct

from shc.format.errors import ShcFormatError

__all__ = ["FileReader", "Reader"]


class Reader:
    """Reads fields from a bytes buffer; every short read raises :class:`ShcFormatError` naming the field."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    @property
    def position(self) -> int:
        return self._pos

    def bytes(self, num_bytes: int, field: str) -> bytes:
        if num_bytes < 0 or num_bytes > self.remaining:
            msg = f"{self._what}: truncated while reading {field} ({num_bytes} bytes needed, {self.remaining} left)"
            raise ShcFormatError(msg)
        out = bytes(self._data[self._pos : self._pos + num_bytes])
        self._pos += num_bytes
        return out

    def unpack(self, fmt: str, field: str) -> tuple:
        return struct.unpack("<" + fmt, self.bytes(struct.calcsize("<" + fmt), field))

    def u8(self, field: str) -> int:
        return self.unpack("B", field)[0]

    def u16(self, field: str) -> int:
        return self.unpack("H", field)[0]

    def u32(self, field: str) -> int:
        return self.unpack("I", field)[0]

    def i32(self, field: str) -> int:
        return self.unpack("i", field)[0]

    def expect_end(self) -> None:
        if self.remaining:
            msg = f"{self._what}: {self.remaining} unexpected trailing bytes"
            raise ShcFormatError(msg)


class FileReader(Reader):
    """The same reads from a seekable binary file, without loading it: a reader of a large file's front
    (its sections before the latents) that knows how many bytes the file has left."""

    def __init__(self, handle, what: str) -> None:
        self._handle = handle
        self._pos = handle.tell()
        self._size = handle.seek(0, 2)
        handle.seek(self._pos)
        self._what = what

    @property
    def remaining(self) -> int:
        return self._size - self._pos

    def bytes(self, num_bytes: int, field: str) -> bytes:
        if num_bytes < 0 or num_bytes > self.remaining:
            msg = f"{self._what}: truncated while reading {field} ({num_bytes} bytes needed, {self.remaining} left)"
            raise ShcFormatError(msg)
        self._handle.seek(self._pos)
        out = self._handle.read(num_bytes)
        if len(out) != num_bytes:
            msg = f"{self._what}: truncated while reading {field}"
            raise ShcFormatError(msg)
        self._pos += num_bytes
        return out
