"""The one interface every benchmarked codec implements, so the runner treats shc and JPEG alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Codec", "format_quality"]


@runtime_checkable
class Codec(Protocol):
    """A codec the runner can measure: in-memory encode and decode of 8-bit RGB arrays.

    Attributes:
        name: Short identifier used in the CSV, the JSON file name, the plot legend and ``--codecs``.
        description: Human-readable settings (library, version, options). The runner refuses to resume
            a results folder whose earlier run used another description under the same name, so any
            setting that changes the bytes belongs here.
        qualities: Default quality points, one RD point each.
    """

    name: str
    description: str
    qualities: Sequence[float]

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        """Compress an HxWx3 uint8 array at one quality point; returns the complete file bytes."""
        ...

    def decode(self, data: bytes) -> np.ndarray:
        """Decompress bytes from :meth:`encode` to an HxWx3 uint8 array."""
        ...


def format_quality(quality: float) -> str:
    """Canonical text of a quality point, so ``3``, ``3.0`` and ``"3"`` name the same CSV row."""
    value = float(quality)
    if value.is_integer():
        return str(int(value))
    return repr(value)
