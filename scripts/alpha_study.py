"""Alpha as the network's fourth output, or as a separate grid? Driver of ``scripts/alpha_study.sh``.

For one photo and one alpha mask it writes the RGBA input (``<out>/<image>_<mask>.png``), then encodes
(a) the RGBA image as one file (format v5, HEAD ``channels`` = 4: one grid, one MLP with four outputs), and
(b) the RGB image alone plus the alpha plane as its own file (replicated to R = G = B, decoded as the
rounded mean of the three): two grids, two files. Both at the same preset and quality; (b) also with the
alpha file at other qualities. It prints one table and writes ``<out>/<image>_<mask>.json``.

    python scripts/alpha_study.py IMAGE --mask ellipse --out results/alpha --preset fast --quality 3
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from shc.codec.encoder import encode_image
from shc.format.decoder import decode_bytes
from shc.metrics import psnr_db, psnr_rgb_alpha_db


def ellipse_mask(height: int, width: int, edge: float = 24.0) -> np.ndarray:
    """A centred ellipse (80 % of each side), opaque inside, fading out over about ``edge`` pixels."""
    yy, xx = np.mgrid[:height, :width]
    dx, dy = (xx + 0.5 - width / 2) / (0.4 * width), (yy + 0.5 - height / 2) / (0.4 * height)
    distance = (np.hypot(dx, dy) - 1.0) * 0.4 * min(width, height)  # about pixels outside the rim
    return np.rint(np.clip(0.5 - distance / edge, 0.0, 1.0) * 255).astype(np.uint8)


def threshold_mask(rgb: np.ndarray, low: float = 70.0, high: float = 110.0) -> np.ndarray:
    """A cut-out that follows the photo's own detail: luma ramped from transparent (``low``) to opaque (``high``)."""
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.rint(np.clip((luma - low) / (high - low), 0.0, 1.0) * 255).astype(np.uint8)


MASKS = {"ellipse": lambda rgb: ellipse_mask(*rgb.shape[:2]), "threshold": threshold_mask}


def encode(pixels: np.ndarray, preset: str, quality: int) -> tuple[bytes, np.ndarray, float]:
    start = time.perf_counter()
    data = encode_image(pixels, preset=preset, quality=quality, seed=0).data
    return data, decode_bytes(data), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--mask", choices=sorted(MASKS), default="ellipse")
    parser.add_argument("--out", type=Path, default=Path("results/alpha"))
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--quality", type=int, default=3)
    parser.add_argument("--alpha-qualities", default="1,3", help="qualities of the separate alpha file (b)")
    args = parser.parse_args(argv)

    rgb = np.asarray(Image.open(args.image).convert("RGB"))
    alpha = MASKS[args.mask](rgb)
    rgba = np.dstack([rgb, alpha])
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.image.stem}_{args.mask}"
    Image.fromarray(rgba, "RGBA").save(args.out / f"{stem}.png", compress_level=9)
    pixels = rgb.shape[0] * rgb.shape[1]

    rows = []
    data, decoded, seconds = encode(rgba, args.preset, args.quality)
    rgb_db, alpha_db = psnr_rgb_alpha_db(decoded, rgba)
    rows.append({"method": "a: 4th output", "alpha_quality": args.quality, "bytes": len(data), "rgb_bytes": None,
                 "alpha_bytes": None, "rgb_psnr_db": rgb_db, "alpha_psnr_db": alpha_db, "seconds": seconds})
    rgb_data, rgb_decoded, rgb_seconds = encode(rgb, args.preset, args.quality)
    rgb_only_db = psnr_db(rgb_decoded, rgb)
    for quality in (int(q) for q in args.alpha_qualities.split(",")):
        alpha_data, alpha_decoded, alpha_seconds = encode(np.repeat(alpha[..., None], 3, axis=2), args.preset, quality)
        alpha_hat = np.rint(alpha_decoded.astype(np.float64).mean(axis=2)).astype(np.uint8)
        rows.append({"method": "b: separate grid", "alpha_quality": quality, "bytes": len(rgb_data) + len(alpha_data),
                     "rgb_bytes": len(rgb_data), "alpha_bytes": len(alpha_data), "rgb_psnr_db": rgb_only_db,
                     "alpha_psnr_db": psnr_db(alpha_hat, alpha), "seconds": rgb_seconds + alpha_seconds})
    for row in rows:
        row["bpp"] = row["bytes"] * 8 / pixels
    report = {
        "image": args.image.name, "mask": args.mask, "width": rgb.shape[1], "height": rgb.shape[0],
        "preset": args.preset, "quality": args.quality, "mask_mean_alpha": float(alpha.mean() / 255),
        "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}", "rows": rows,
    }
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{stem}: {rgb.shape[1]}x{rgb.shape[0]}, {args.preset} q{args.quality}")
    print(f"  {'method':18s} {'alpha q':>7s} {'bytes':>7s} {'bpp':>7s} {'RGB dB':>7s} {'alpha dB':>8s} {'time':>6s}")
    for r in rows:
        print(f"  {r['method']:18s} {r['alpha_quality']:7d} {r['bytes']:7d} {r['bpp']:7.4f} {r['rgb_psnr_db']:7.2f} "
              f"{r['alpha_psnr_db']:8.2f} {r['seconds']:5.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
