"""Regenerate the golden ``.shc`` files, their decoded PNGs and ``golden.json`` (needs torch).

Run from the repository root::

    .venv/bin/python tests/data/make_golden.py

The golden files pin the byte layout and the normative decoder: ``tests/test_format.py`` checks that each
file still decodes to the stored pixel hash, and the fuzz harness (``python -m shc.tools.fuzz``) uses them
as seeds: each ``.shc`` is also written to ``tools/seeds/`` (shipped as package data, so the fuzzer finds it
in any install; ``tests/test_fuzz.py`` checks that the copies match). Regenerate only when the format
version changes or the encoder is meant to produce new bytes; the decode hashes must never change for the
same ``.shc`` bytes unless the normative decoder changes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from shc.codec.encoder import encode_image
from shc.format.constants import FORMAT_VERSION
from shc.format.decoder import decode_bytes

DATA_DIR = Path(__file__).resolve().parent
SEEDS_DIR = DATA_DIR.parents[1] / "tools" / "seeds"
"""The fuzzer's package-data copies of the golden ``.shc`` files (``shc.tools.fuzz.SEEDS_DIR``)."""
MAX_FILE_BYTES = 30_000

# (output stem, source PNG, quality, steps): small step counts keep generation quick and files small.
GOLDEN = [
    ("parrot_64x48_q1", "parrot_64x48.png", 1, 40),
    ("parrot_128x96_q3", "parrot_128x96.png", 3, 80),
    ("lighthouse_96x128_q5", "lighthouse_96x128.png", 5, 120),
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pixel_sha256(pixels: np.ndarray) -> str:
    """Hash of decoded pixels: the C-ordered uint8 ``(height, width, 3)`` buffer, nothing else."""
    return sha256(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())


def main() -> int:
    entries = {}
    for stem, source, quality, steps in GOLDEN:
        result = encode_image(DATA_DIR / source, preset="fast", quality=quality, steps=steps, seed=0)
        data = result.data
        if len(data) >= MAX_FILE_BYTES:
            msg = f"{stem}.shc is {len(data)} bytes, over the {MAX_FILE_BYTES}-byte budget for golden files"
            raise SystemExit(msg)
        pixels = decode_bytes(data)
        (DATA_DIR / f"{stem}.shc").write_bytes(data)
        (SEEDS_DIR / f"{stem}.shc").write_bytes(data)
        Image.fromarray(pixels).save(DATA_DIR / f"{stem}.decoded.png")
        entries[f"{stem}.shc"] = {
            "source": source,
            "preset": "fast",
            "quality": quality,
            "steps": steps,
            "seed": 0,
            "num_bytes": len(data),
            "width": int(pixels.shape[1]),
            "height": int(pixels.shape[0]),
            "psnr_db": round(float(result.psnr_db), 3),
            "sha256": sha256(data),
            "decoded_png": f"{stem}.decoded.png",
            "decoded_sha256": pixel_sha256(pixels),
        }
        print(f"{stem}.shc: {len(data)} bytes, {result.psnr_db:.2f} dB, {result.encode_seconds:.1f} s", file=sys.stderr)
    golden = {
        "format_version": FORMAT_VERSION,
        "decoded_sha256_of": "C-ordered uint8 (height, width, 3) RGB pixels from shc.format.decoder.decode_bytes",
        "files": entries,
    }
    (DATA_DIR / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    for stale in sorted(SEEDS_DIR.glob("*.shc")):  # a seed whose golden file is gone would drift
        if stale.name not in entries:
            stale.unlink()
            print(f"removed stale seed {stale.relative_to(DATA_DIR.parents[1])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
