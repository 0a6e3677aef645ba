"""Exp-Golomb codes of integers, packed MSB-first into bytes (SPEC §3, §5): the side information's coder.

Small integer sets (network weights, table histograms) are stored with these universal codes: they need no
table of their own, cost about ``2 log2(|v|) + 1`` bits, and are exactly specified by integer arithmetic.
An unsigned ``n`` in order ``k`` is ``n + 2**k`` written in binary (``b`` bits) after ``b - 1 - k`` zero
bits; a signed ``v`` is first mapped to ``2v`` (``v >= 0``) or ``-2v - 1`` (``v < 0``).
"""

from __future__ import annotations

import numpy as np

from shc.format.errors import ShcFormatError

__all__ = ["MAX_ORDER", "BitReader", "best_order", "code_bits", "pack", "zigzag"]

MAX_ORDER = 24
"""Largest order ``k`` a file may use."""
MAX_PREFIX_ZEROS = 32
"""Longest run of leading zeros a reader accepts (no stored integer needs more)."""


def zigzag(values: np.ndarray) -> np.ndarray:
    """Signed -> unsigned: 0, -1, 1, -2, 2 ... -> 0, 1, 2, 3, 4 ... (int64 in, int64 out)."""
    v = np.asarray(values, dtype=np.int64)
    return np.where(v >= 0, 2 * v, -2 * v - 1)


def _bit_length(m: np.ndarray) -> np.ndarray:
    """Bits of each positive int64 (exact: no float logarithm)."""
    lengths = np.zeros(m.shape, dtype=np.int64)
    rest = m.copy()
    while np.any(rest):
        nonzero = rest > 0
        lengths += nonzero
        rest >>= 1
    return lengths


def code_bits(unsigned: np.ndarray, order: int) -> int:
    """Total bits of the order-``order`` codes of non-negative integers ``unsigned``."""
    m = np.asarray(unsigned, dtype=np.int64) + (1 << order)
    return int(np.sum(2 * _bit_length(m) - 1 - order))


def best_order(unsigned: np.ndarray, max_order: int = 16) -> int:
    """The order ``0..max_order`` that codes ``unsigned`` in the fewest bits (lowest order on a tie)."""
    costs = [code_bits(unsigned, k) for k in range(max_order + 1)]
    return int(np.argmin(costs))


def pack(codes: list[tuple[np.ndarray, int]]) -> bytes:
    """Concatenate the codes of each ``(non-negative integers, order)`` run, MSB first, zero-padded to a byte."""
    pieces = []
    for unsigned, order in codes:
        m = np.asarray(unsigned, dtype=np.int64).reshape(-1) + (1 << order)
        if m.size == 0:
            continue
        width = _bit_length(m)
        zeros = width - 1 - order
        total = zeros + width
        bits = np.zeros(int(total.sum()), dtype=np.uint8)
        start = np.concatenate([[0], np.cumsum(total)[:-1]]) + zeros  # where each m's bits begin
        owner = np.repeat(np.arange(m.size), width)
        position = np.arange(owner.size) - np.repeat(np.cumsum(width) - width, width)  # 0 = most significant
        bits[np.repeat(start, width) + position] = (m[owner] >> (width[owner] - 1 - position)) & 1
        pieces.append(bits)
    if not pieces:
        return b""
    return np.packbits(np.concatenate(pieces)).tobytes()


class BitReader:
    """Reads exp-Golomb codes from a byte string; every malformed or short code is a :class:`ShcFormatError`."""

    def __init__(self, data: bytes, what: str) -> None:
        self._bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
        self._ones = np.flatnonzero(self._bits)
        self._pos = 0
        self._what = what

    def unsigned(self, order: int, field: str) -> int:
        at = int(np.searchsorted(self._ones, self._pos))
        if at == self._ones.size:
            msg = f"{self._what}: truncated while reading {field}"
            raise ShcFormatError(msg)
        first_one = int(self._ones[at])
        zeros = first_one - self._pos
        if zeros > MAX_PREFIX_ZEROS:
            msg = f"{self._what}: invalid code for {field} ({zeros} leading zero bits)"
            raise ShcFormatError(msg)
        end = first_one + zeros + order + 1
        if end > self._bits.size:
            msg = f"{self._what}: truncated while reading {field}"
            raise ShcFormatError(msg)
        m = 0
        for bit in self._bits[first_one:end].tolist():
            m = (m << 1) | bit
        self._pos = end
        return m - (1 << order)

    def signed(self, order: int, field: str) -> int:
        u = self.unsigned(order, field)
        return u // 2 if u % 2 == 0 else -(u + 1) // 2

    def signed_array(self, count: int, order: int, field: str) -> np.ndarray:
        return np.array([self.signed(order, field) for _ in range(count)], dtype=np.int64)

    def unsigned_array(self, count: int, order: int, field: str) -> np.ndarray:
        return np.array([self.unsigned(order, field) for _ in range(count)], dtype=np.int64)

    def expect_end(self) -> None:
        """Only zero padding (fewer than 8 bits, up to the end of the last byte) may remain."""
        rest = self._bits.size - self._pos
        if rest >= 8 or np.any(self._bits[self._pos :]):
            msg = f"{self._what}: {rest} unexpected trailing bits"
            raise ShcFormatError(msg)
