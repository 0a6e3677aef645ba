"""Rate-distortion benchmark: shc against classic codecs, measured side by side with the same code.

Modules, by role:

* :mod:`~shc.bench.base` - the :class:`Codec` interface (name, description, qualities, encode, decode).
* :mod:`~shc.bench.classic` - JPEG 4:2:0/4:4:4, WebP, AVIF, HEIC, JPEG 2000 through Pillow/pillow-heif.
* :mod:`~shc.bench.shc_codec` - shc itself behind the same interface (imported lazily).
* :mod:`~shc.bench.metrics` - MS-SSIM in numpy; :mod:`~shc.bench.bdrate` - Bjøntegaard deltas.
* :mod:`~shc.bench.runner` - the resumable measurement loop and its reports (CSV, JSON, BD table, plot).
* :mod:`~shc.bench.sweep` - ``shc sweep``: one rate-distortion curve per value of one hyperparameter (appendix §3).
* :mod:`~shc.bench.study` - what the studies beside the package (``studies/``) share: meta.json, figures,
  CSV rows, encoder overrides.

The one-off studies behind ``results/`` are not part of the package: each is a script in ``studies/NAME/``
that imports the package, these helpers from :mod:`shc.bench` included.

    >>> from pathlib import Path
    >>> from shc.bench import make_codecs, run_benchmark
    >>> images = sorted(Path("kodak").glob("*.png"))
    >>> curves = run_benchmark(images, make_codecs(["jpeg420", "webp"]), Path("out"))  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "CLASSIC_CODECS",
    "CODEC_NAMES",
    "Codec",
    "append_csv_row",
    "bd_psnr",
    "bd_rate",
    "best_quality_within",
    "classic_per_image",
    "make_codecs",
    "ms_ssim",
    "parse_overrides",
    "run_benchmark",
    "write_figures",
    "write_study_meta",
]

# Resolved on first use, so `shc decode` (whose CLI registers `shc bench`) does not pay for the runner's
# imports (tqdm, matplotlib helpers) at start-up.
_HOMES = {
    "CLASSIC_CODECS": "shc.bench.classic",
    "best_quality_within": "shc.bench.classic",
    "Codec": "shc.bench.base",
    "bd_psnr": "shc.bench.bdrate",
    "bd_rate": "shc.bench.bdrate",
    "ms_ssim": "shc.bench.metrics",
    "CODEC_NAMES": "shc.bench.names",
    "make_codecs": "shc.bench.registry",
    "run_benchmark": "shc.bench.runner",
    "append_csv_row": "shc.bench.study",
    "classic_per_image": "shc.bench.study",
    "parse_overrides": "shc.bench.study",
    "write_figures": "shc.bench.study",
    "write_study_meta": "shc.bench.study",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    msg = f"module 'shc.bench' has no attribute {name!r}"
    raise AttributeError(msg)
