"""Rate-distortion benchmark: shc against classic codecs, measured side by side with the same code.

Modules, by role:

* :mod:`~shc.bench.base` - the :class:`Codec` interface (name, description, qualities, encode, decode).
* :mod:`~shc.bench.classic` - JPEG 4:2:0/4:4:4, WebP, AVIF, HEIC, JPEG 2000 through Pillow/pillow-heif.
* :mod:`~shc.bench.shc_codec` - shc itself behind the same interface (imported lazily).
* :mod:`~shc.bench.metrics` - MS-SSIM in numpy; :mod:`~shc.bench.bdrate` - Bjøntegaard deltas.
* :mod:`~shc.bench.runner` - the resumable measurement loop and its reports (CSV, JSON, BD table, plot).

    >>> from pathlib import Path
    >>> from shc.bench import make_codecs, run_benchmark
    >>> images = sorted(Path("kodak").glob("*.png"))
    >>> curves = run_benchmark(images, make_codecs(["jpeg420", "webp"]), Path("out"))  # doctest: +SKIP
"""

from __future__ import annotations

from shc.bench.base import Codec
from shc.bench.bdrate import bd_psnr, bd_rate
from shc.bench.metrics import ms_ssim
from shc.bench.registry import CODEC_NAMES, make_codecs
from shc.bench.runner import run_benchmark

__all__ = ["CODEC_NAMES", "Codec", "bd_psnr", "bd_rate", "make_codecs", "ms_ssim", "run_benchmark"]
