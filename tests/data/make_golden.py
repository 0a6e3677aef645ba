"""Regenerate the golden ``.shc`` files, their decoded PNGs and ``golden.json`` (needs torch, except ``--rescaled``).

Run from the repository root::

    .venv/bin/python tests/data/make_golden.py              # re-encode everything (needs torch)
    .venv/bin/python tests/data/make_golden.py --rescaled   # only refresh the rescaled-decode hashes
    .venv/bin/python tests/data/make_golden.py --redecode   # every decode hash and PNG, golden and compat

The golden files pin the byte layout and the normative decoder: ``tests/test_format.py`` checks that each
file still decodes to the stored pixel hash (and, for the metadata case, to the stored ICC profile and
EXIF), and the fuzz harness (``python -m shc.tools.fuzz``) uses them as seeds: each ``.shc`` is also written
to ``tools/seeds/`` (shipped as package data, so the fuzzer finds it in any install; ``tests/test_fuzz.py``
checks that the copies match). Each entry also pins what the file renders at other sizes
(``rescaled_sha256``: the pixel hash of ``decode_bytes`` at each of ``RESCALED``); ``--rescaled`` recomputes
only those from the stored ``.shc`` files, without encoding anything (for a normative decoder meant to
change its output at other sizes, never to paper over a regression). Regenerate only when the format
version changes or the encoder is meant to produce new bytes; the decode hashes must never change for the
same ``.shc`` bytes unless the normative decoder changes. When the format version changes, first copy the
old golden files to ``tests/data/compat/`` as ``*_v<N>.shc`` and record them in ``compat/compat.json``.

Two golden inputs are derived from ``parrot_64x48.png`` here (deterministically): ``parrot_rgba_64x48.png``
(a soft-edged alpha mask: the RGBA path) and ``parrot_p3_64x48.png`` (the Display P3 profile of
``display_p3.py`` and an EXIF block with Orientation 6: stored 64 x 48, coded 48 x 64).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from shc.format.constants import FORMAT_VERSION
from shc.format.decoder import decode_bytes, decode_image
from shc.images import save_image_bytes

DATA_DIR = Path(__file__).resolve().parent
SEEDS_DIR = DATA_DIR.parents[1] / "tools" / "seeds"
"""The fuzzer's package-data copies of the golden ``.shc`` files (``shc.tools.fuzz.SEEDS_DIR``)."""
MAX_FILE_BYTES = 30_000

# (output stem, source PNG, quality, steps): small step counts keep generation quick and files small.
GOLDEN = [
    ("parrot_64x48_q1", "parrot_64x48.png", 1, 40),
    ("parrot_128x96_q3", "parrot_128x96.png", 3, 80),
    ("lighthouse_96x128_q5", "lighthouse_96x128.png", 5, 120),
    ("parrot_rgba_64x48_q3", "parrot_rgba_64x48.png", 3, 80),  # alpha: HEAD channels = 4
    ("parrot_p3_64x48_q1", "parrot_p3_64x48.png", 1, 40),  # META: ICC profile and EXIF
]
EXIF_MAKE = "shc golden file"
RESCALED = ["scale=0.5", "scale=2", "scale=1.7", "size=37x21", "size=203x5", "size=1x1"]
"""Other output sizes whose decoded pixels are pinned: ``scale=S`` (``decode_bytes(data, scale=S)``) or
``size=WxH`` (``size=(W, H)``): halving, doubling, a scale that is no simple ratio, an odd explicit size, a
wide strip and a single pixel."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pixel_sha256(pixels: np.ndarray) -> str:
    """Hash of decoded pixels: the C-ordered uint8 ``(height, width, channels)`` buffer, nothing else."""
    return sha256(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())


def decode_kwargs(key: str) -> dict:
    """``decode_bytes`` keyword arguments of a ``RESCALED`` key."""
    kind, _, value = key.partition("=")
    if kind == "scale":
        return {"scale": float(value)}
    width, height = value.split("x")
    return {"size": (int(width), int(height))}


def rescaled_hashes(data: bytes) -> dict[str, str]:
    """Pixel hashes of ``data`` decoded at each size of ``RESCALED``."""
    return {key: pixel_sha256(decode_bytes(data, **decode_kwargs(key))) for key in RESCALED}


def soft_alpha(height: int, width: int) -> np.ndarray:
    """An ellipse, opaque inside, fading to transparent over a few pixels; uint8 ``(height, width)``."""
    yy, xx = np.mgrid[:height, :width]
    radius = np.hypot((xx + 0.5 - width / 2) / (0.4 * width), (yy + 0.5 - height / 2) / (0.4 * height))
    return np.rint(np.clip((1.15 - radius) / 0.3, 0.0, 1.0) * 255).astype(np.uint8)


def write_sources() -> None:
    """The derived inputs: an RGBA parrot and a Display P3 parrot with EXIF orientation 6."""
    rgb = np.asarray(Image.open(DATA_DIR / "parrot_64x48.png").convert("RGB"))
    rgba = np.dstack([rgb, soft_alpha(*rgb.shape[:2])])
    Image.fromarray(rgba, "RGBA").save(DATA_DIR / "parrot_rgba_64x48.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    exif[0x010F] = EXIF_MAKE  # Make: something to find again after the orientation is reset
    icc = (DATA_DIR / "display_p3.icc").read_bytes()
    Image.fromarray(rgb).save(DATA_DIR / "parrot_p3_64x48.png", icc_profile=icc, exif=exif.tobytes())


def refresh_rescaled() -> int:
    """Recompute only the ``rescaled_sha256`` of each golden file from its stored bytes (no torch)."""
    path = DATA_DIR / "golden.json"
    golden = json.loads(path.read_text())
    for name, entry in golden["files"].items():
        entry["rescaled_sha256"] = rescaled_hashes((DATA_DIR / name).read_bytes())
    path.write_text(json.dumps(golden, indent=2) + "\n")
    return 0


def refresh_decoded() -> int:
    """Recompute every pixel pin from the stored bytes (no torch): the golden files' native and rescaled
    hashes and decoded PNGs, and the compatibility vectors' hashes. Only for a deliberate change of the
    normative decoder, recorded in SPEC §9 (version 0.10.0: the fixed-point MLP); the files stay as they are."""
    refresh_rescaled()
    path = DATA_DIR / "golden.json"
    golden = json.loads(path.read_text())
    for name, entry in golden["files"].items():
        decoded = decode_image((DATA_DIR / name).read_bytes())
        entry["decoded_sha256"] = pixel_sha256(decoded.pixels)
        (DATA_DIR / entry["decoded_png"]).write_bytes(save_image_bytes(decoded, "PNG"))
    path.write_text(json.dumps(golden, indent=2) + "\n")
    compat_path = DATA_DIR / "compat" / "compat.json"
    compat = json.loads(compat_path.read_text())
    for name, entry in compat["files"].items():
        entry["decoded_sha256"] = pixel_sha256(decode_bytes((DATA_DIR / "compat" / name).read_bytes()))
    compat_path.write_text(json.dumps(compat, indent=2) + "\n")
    return 0


def main() -> int:
    if sys.argv[1:] == ["--rescaled"]:
        return refresh_rescaled()
    if sys.argv[1:] == ["--redecode"]:
        return refresh_decoded()
    from shc.codec.encoder import encode_image

    write_sources()
    entries = {}
    for stem, source, quality, steps in GOLDEN:
        result = encode_image(DATA_DIR / source, preset="fast", quality=quality, steps=steps, seed=0)
        data = result.data
        if len(data) >= MAX_FILE_BYTES:
            msg = f"{stem}.shc is {len(data)} bytes, over the {MAX_FILE_BYTES}-byte budget for golden files"
            raise SystemExit(msg)
        decoded = decode_image(data)
        pixels = decoded.pixels
        (DATA_DIR / f"{stem}.shc").write_bytes(data)
        (SEEDS_DIR / f"{stem}.shc").write_bytes(data)
        (DATA_DIR / f"{stem}.decoded.png").write_bytes(save_image_bytes(decoded, "PNG"))
        entries[f"{stem}.shc"] = {
            "source": source,
            "preset": "fast",
            "quality": quality,
            "steps": steps,
            "seed": 0,
            "num_bytes": len(data),
            "width": int(pixels.shape[1]),
            "height": int(pixels.shape[0]),
            "channels": int(pixels.shape[2]),
            "psnr_db": round(float(result.psnr_db), 3),
            "sha256": sha256(data),
            "decoded_png": f"{stem}.decoded.png",
            "decoded_sha256": pixel_sha256(pixels),
            "rescaled_sha256": rescaled_hashes(data),
        }
        if result.psnr_alpha_db is not None:
            entries[f"{stem}.shc"]["psnr_alpha_db"] = round(float(result.psnr_alpha_db), 3)
        for key, value in (("icc_profile_sha256", decoded.icc_profile), ("exif_sha256", decoded.exif)):
            if value is not None:
                entries[f"{stem}.shc"][key] = sha256(value)
        print(f"{stem}.shc: {len(data)} bytes, {result.psnr_db:.2f} dB, {result.encode_seconds:.1f} s", file=sys.stderr)
    golden = {
        "format_version": FORMAT_VERSION,
        "decoded_sha256_of": "C-ordered uint8 (height, width, channels) pixels from shc.format.decoder.decode_bytes",
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
