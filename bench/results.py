"""The per-image CSV: one row per (codec, image, quality), appended and flushed as each is measured.

The file is the benchmark's source of truth. Everything else (JSON, BD table, plot) is derived from it,
so a run that was killed, or re-run with more images or codecs, only measures what is missing.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import IO

__all__ = ["COLUMNS", "ResultsFile", "row_key"]

COLUMNS = ("codec", "image", "quality", "bytes", "bpp", "psnr_rgb", "ms_ssim_rgb", "encode_s", "decode_s")
_NUMERIC = COLUMNS[3:]


def row_key(row: dict[str, str]) -> tuple[str, str, str]:
    """The identity of a measurement: (codec, image, quality) as written in the CSV."""
    return row["codec"], row["image"], row["quality"]


def _is_complete(row: dict[str, str | None]) -> bool:
    """False for a line cut short by a kill mid-write (missing fields or a half-written number)."""
    if any(row.get(column) in (None, "") for column in COLUMNS) or None in row:
        return False
    try:
        for column in _NUMERIC:
            float(row[column])  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


class ResultsFile:
    """Appends measurement rows to ``per_image.csv`` and remembers which keys are already there.

    Opening an existing file checks its header, drops incomplete lines (the tail of a killed run,
    including a last line without its newline) by rewriting the file once, and loads every complete row.

    Args:
        path: CSV path; created with a header if missing.

    Raises:
        ValueError: If an existing file has a different header (not a file this harness wrote).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[tuple[str, str, str], dict[str, str]] = {}
        self._handle: IO[str] | None = None
        if path.exists() and path.stat().st_size > 0:
            self._load()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerow(COLUMNS)

    def _load(self) -> None:
        with self.path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                msg = f"{self.path}: unexpected header {reader.fieldnames}, expected {','.join(COLUMNS)}"
                raise ValueError(msg)
            rows = list(reader)
        complete = [row for row in rows if _is_complete(row)]
        if complete and complete[-1] is rows[-1] and not self.path.read_bytes().endswith(b"\n"):
            complete.pop()  # every row is written with its newline: no newline means the write was cut
        for row in complete:
            self.rows[row_key(row)] = row
        if len(complete) != len(rows):
            warnings.warn(f"{self.path}: dropped {len(rows) - len(complete)} incomplete row(s)", stacklevel=3)
            tmp = self.path.with_suffix(".csv.tmp")
            with tmp.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, COLUMNS)
                writer.writeheader()
                writer.writerows(complete)
            os.replace(tmp, self.path)

    def __contains__(self, key: tuple[str, str, str]) -> bool:
        return key in self.rows

    def append(self, row: dict[str, str]) -> None:
        """Write one row and flush it to the OS, so a killed run loses at most the row in progress."""
        if self._handle is None:
            self._handle = self.path.open("a", newline="", encoding="utf-8")
        csv.DictWriter(self._handle, COLUMNS).writerow(row)
        self._handle.flush()
        self.rows[row_key(row)] = row

    def close(self) -> None:
        """Close the append handle (rows stay readable through :attr:`rows`)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
