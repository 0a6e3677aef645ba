"""An integer frequency table (SPEC §5): the counts the range coder uses, derived from a histogram in
integers on both sides, and the TABL syntax of one table (version 4 on: exp-Golomb codes; versions 2-3:
the counts themselves).

The context model's tables (:func:`shc.format.context.context_counts`) are made by the same
:meth:`Table.from_histogram`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shc.format import constants as C
from shc.format.binary import Reader
from shc.format.errors import ShcFormatError
from shc.format.expgolomb import MAX_ORDER, BitReader, zigzag
from shc.format.header import Header

__all__ = ["Table", "parse_count_tables", "read_table_codes", "table_codes", "table_symbol_counts"]


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


def table_symbol_counts(header: Header) -> list[int]:
    """How many latents each table codes (its histogram's sum), from the layout."""
    counts = [0] * header.layout.num_tables
    for run in header.layout.coding_runs():
        counts[run.table] += run.level.rows
    return counts


def parse_count_tables(payload: bytes, header: Header) -> tuple[Table, ...]:
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
