"""shc against a classic codec at the same or lower file size: the "beats JPEG by N dB" check.

    python studies/same_size/run.py ORIGINAL.png FILE.shc [--codec jpeg420]

For the ``.shc`` file's byte count, finds the classic codec's highest quality (Pillow's 1..100 scale)
whose output is not larger, and prints both files' bytes, bpp and RGB PSNR (each decoded to 8 bits).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shc.bench import CLASSIC_CODECS, best_quality_within
from shc.format.decoder import decode_bytes
from shc.images import load_rgb
from shc.metrics import psnr_db

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python studies/same_size/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("original", type=Path)
    parser.add_argument("shc_file", type=Path)
    parser.add_argument("--codec", default="jpeg420", choices=["jpeg420", "jpeg444", "webp", "avif"])
    args = parser.parse_args(argv)
    rgb = load_rgb(args.original)
    pixels = rgb.shape[0] * rgb.shape[1]
    data = args.shc_file.read_bytes()
    shc_psnr = psnr_db(decode_bytes(data), rgb)
    print(f"shc     : {len(data):7d} bytes  {len(data) * 8 / pixels:.4f} bpp  PSNR {shc_psnr:.2f} dB")
    codec = CLASSIC_CODECS[args.codec]
    found = best_quality_within(codec, rgb, len(data))
    if found is None:
        print(f"{args.codec}: no quality fits in {len(data)} bytes")
        return 0
    quality, other = found
    other_psnr = psnr_db(codec.decode(other), rgb)
    print(f"{args.codec:8s}: {len(other):7d} bytes  {len(other) * 8 / pixels:.4f} bpp  PSNR {other_psnr:.2f} dB"
          f"  (quality {quality}, the highest not larger than the .shc file)")
    print(f"shc - {args.codec}: {shc_psnr - other_psnr:+.2f} dB at {len(data) - len(other):+d} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
