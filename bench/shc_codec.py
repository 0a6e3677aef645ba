"""shc as a benchmark codec: the same in-memory encode/decode interface as the classic codecs.

``shc`` itself (and with it torch) is imported on first use, so listing or running classic codecs
never needs the encoder. The encode options that change the bytes (preset, steps, device, seed) are
part of :attr:`ShcCodec.description`, which the runner uses to refuse mixing two settings in one
results folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DEFAULT_SHC_QUALITIES", "ShcCodec"]

DEFAULT_SHC_QUALITIES: tuple[float, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
"""Default ``quality`` points passed to :func:`shc.encode`."""


@dataclass(frozen=True)
class ShcCodec:
    """Calls ``shc.encode(PIL image, quality=q, **options)`` and ``shc.decode(bytes)``.

    Attributes:
        name: Identifier in the CSV and plot (``shc`` unless two configurations are compared).
        qualities: Quality points to measure.
        options: Extra keyword arguments for :func:`shc.encode` (``preset``, ``steps``, ``device``,
            ``seed``); ``None`` values are dropped so shc's own defaults apply.
    """

    name: str = "shc"
    qualities: tuple[float, ...] = DEFAULT_SHC_QUALITIES
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def encode_options(self) -> dict[str, Any]:
        """The options actually passed to :func:`shc.encode`, besides ``quality``."""
        return {key: value for key, value in self.options.items() if value is not None}

    @property
    def description(self) -> str:
        """shc version and every explicit encode option."""
        from importlib import metadata

        try:
            version = metadata.version("shc")
        except metadata.PackageNotFoundError:
            version = "unknown"
        options = ", ".join(f"{key}={value!r}" for key, value in sorted(self.encode_options.items()))
        return f"shc {version}" + (f": {options}" if options else " (default options)") + ", quality=q"

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        """Encode an HxWx3 uint8 array to ``.shc`` bytes."""
        import shc
        from PIL import Image

        value = int(quality) if float(quality).is_integer() else float(quality)
        return shc.encode(Image.fromarray(rgb), quality=value, **self.encode_options)

    def decode(self, data: bytes) -> np.ndarray:
        """Decode ``.shc`` bytes at native size to an HxWx3 uint8 array."""
        import shc

        return np.asarray(shc.decode(data).convert("RGB"))
