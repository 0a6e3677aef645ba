"""Codec names accepted by ``shc bench --codecs`` and how each becomes a codec object."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

from shc.bench.base import Codec
from shc.bench.classic import CLASSIC_CODECS
from shc.bench.names import CODEC_NAMES
from shc.bench.shc_codec import DEFAULT_SHC_QUALITIES, ShcCodec

__all__ = ["CODEC_NAMES", "make_codecs"]


_NEEDS = {"heic": ("pillow_heif", "pillow-heif")}  # codec -> (module, pip name) it cannot run without


def make_codecs(
    names: Sequence[str],
    shc_qualities: Sequence[float] | None = None,
    shc_options: Mapping[str, Any] | None = None,
    ngp_qualities: Sequence[float] | None = None,
) -> list[Codec]:
    """Build codecs by name, in the given order.

    Args:
        names: Names from :data:`CODEC_NAMES`.
        shc_qualities: Quality points for shc (default :data:`shc.bench.shc_codec.DEFAULT_SHC_QUALITIES`).
        shc_options: ``preset``/``steps``/``device``/``seed`` for :func:`shc.encode`.
        ngp_qualities: Quality points of the ``ngp`` baseline (default: ``shc_qualities``).

    Raises:
        ValueError: For an unknown or repeated name, or a codec whose library is not installed.
    """
    codecs: list[Codec] = []
    for name in names:
        if name not in CODEC_NAMES:
            msg = f"unknown codec {name!r}; choose from {', '.join(CODEC_NAMES)}"
            raise ValueError(msg)
        if any(codec.name == name for codec in codecs):
            msg = f"codec {name!r} given twice"
            raise ValueError(msg)
        module, package = _NEEDS.get(name, (None, None))
        if module is not None and importlib.util.find_spec(module) is None:
            msg = f"codec {name!r} needs {package}: pip install 'shc[bench]'"
            raise ValueError(msg)
        if name in ("shc", "ngp"):
            chosen = ngp_qualities if name == "ngp" and ngp_qualities else shc_qualities
            qualities = tuple(chosen) if chosen else DEFAULT_SHC_QUALITIES
            options = dict(shc_options or {})
            if name == "ngp":
                options["entropy_coding"] = False
            codecs.append(ShcCodec(name=name, qualities=qualities, options=options))
        else:
            codecs.append(CLASSIC_CODECS[name])
    return codecs
