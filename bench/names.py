"""The benchmark's codec names, importable without loading any codec (``shc --help`` shows them, and the
``shc decode`` start-up should not pay for the benchmark's imports)."""

from __future__ import annotations

__all__ = ["CLASSIC_CODEC_NAMES", "CODEC_NAMES"]

CLASSIC_CODEC_NAMES: tuple[str, ...] = ("jpeg420", "jpeg444", "webp", "avif", "heic", "jpeg2000")
"""Keys of :data:`shc.bench.classic.CLASSIC_CODECS`, in the same order (a test checks it)."""

CODEC_NAMES: tuple[str, ...] = ("shc", "ngp", *CLASSIC_CODEC_NAMES)
"""Every ``--codecs`` name, shc first. ``ngp`` is shc without entropy coding (float16 latents stored raw),
the Instant-NGP-style baseline that shows what SHACIRA's quantization and entropy coding save."""
