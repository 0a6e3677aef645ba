"""What level-of-detail training costs and buys: each (image, quality) encoded twice with the default preset,
without and with ``prefix_fraction`` (a share of each batch rendered from a random prefix of the levels), and
each file decoded whole and from prefixes of its levels (the others' latents 0, as ``shc decode --levels K``
renders them). Prints one JSON line per encode, appends it to ``prefix.jsonl`` (a rerun skips the points
already there) and writes the BD-rate table ``prefix.md``.

    python studies/prefix_training/run.py IMAGES_DIR --images kodim01,... --qualities 3,1,5 -o results/lod
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
from pathlib import Path

import numpy as np
import torch

from shc.bench import bd_rate
from shc.codec.encoder import encode_image
from shc.codec.presets import settings_for, settings_for_image
from shc.format.container import read_file
from shc.format.decoder import Synthesis
from shc.format.entropy import file_latents
from shc.images import load_image
from shc.metrics import psnr_from_mse

PREFIXES = (3, 6, 9)
"""Levels kept in the preview PSNRs (of the default preset's 12)."""


def prefix_psnr(data: bytes, pixels: np.ndarray, levels: int) -> float:
    """PSNR at native size of the file rendered from its first ``levels`` levels (the others' latents 0)."""
    parsed = read_file(data)
    latents = [lat if index < levels else np.zeros_like(lat) for index, lat in enumerate(file_latents(parsed))]
    height, width, _ = pixels.shape
    decoded = Synthesis(parsed, latents).render(width, height)
    return psnr_from_mse(float(np.mean((decoded[..., :3].astype(np.float64) - pixels[..., :3]) ** 2)))


def preview_psnr(data: bytes, divisor: int) -> tuple[int, float]:
    """A reduced rendering (1/``divisor`` of the size) from the prefix of levels that size needs (what Pillow's
    draft reads), against the rendering of the whole file at that size: (levels used, PSNR in dB)."""
    from shc.format.reader import ShcReader, preview_levels

    reader = ShcReader(data)
    width, height = max(1, reader.header.width // divisor), max(1, reader.header.height // divisor)
    levels = preview_levels(reader.header, width, height)
    prefix = reader.synthesis(width, height, levels=levels).render(width, height)
    whole = ShcReader(data).synthesis().render(width, height)
    return levels, psnr_from_mse(float(np.mean((prefix.astype(np.float64) - whole) ** 2)))


def measure(path: Path, quality: float, fraction: float, keep: Path | None = None) -> dict:
    source = load_image(path, strip=True)
    height, width, _ = source.pixels.shape
    settings = dataclasses.replace(settings_for_image(settings_for("default", quality), width, height),
                                   prefix_fraction=fraction)
    result = encode_image(source, settings=settings)
    row = {"image": path.stem, "quality": quality, "prefix_fraction": fraction, "bytes": result.num_bytes,
           "bpp": result.bpp, "psnr_db": round(result.psnr_db, 4), "seconds": round(result.encode_seconds, 1)}
    for levels in PREFIXES:
        row[f"psnr_prefix{levels}_db"] = round(prefix_psnr(result.data, source.pixels, levels), 3)
    for divisor in (4, 8):
        levels, psnr = preview_psnr(result.data, divisor)
        row[f"preview_1_{divisor}"] = {"levels": levels, "psnr_vs_whole_db": round(psnr, 3)}
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        (keep / f"{path.stem}_q{quality:g}_f{fraction:g}.shc").write_bytes(result.data)
    return row


def report(rows: list[dict], fraction: float) -> str:
    """Per image BD-rate of ``fraction`` against 0 over the qualities both arms have, and preview PSNRs."""
    lines = [f"| image | BD-rate, prefix_fraction {fraction} vs 0 | " +
             " | ".join(f"PSNR from {k} levels, 0 → {fraction}" for k in PREFIXES) + " |",
             "|---|---|" + "---|" * len(PREFIXES)]
    rates = []
    for image in sorted({r["image"] for r in rows}):
        arms = {f: sorted((r for r in rows if r["image"] == image and r["prefix_fraction"] == f),
                          key=lambda r: r["quality"]) for f in (0.0, fraction)}
        common = sorted({r["quality"] for r in arms[0.0]} & {r["quality"] for r in arms[fraction]})
        base = [r for r in arms[0.0] if r["quality"] in common]
        test = [r for r in arms[fraction] if r["quality"] in common]
        bd = (bd_rate([r["bpp"] for r in base], [r["psnr_db"] for r in base],
                      [r["bpp"] for r in test], [r["psnr_db"] for r in test]) if len(common) >= 2 else float("nan"))
        rates.append(bd)
        previews = []
        for k in PREFIXES:
            a = np.mean([r[f"psnr_prefix{k}_db"] for r in base]) if base else float("nan")
            b = np.mean([r[f"psnr_prefix{k}_db"] for r in test]) if test else float("nan")
            previews.append(f"{a:.2f} → {b:.2f}")
        lines.append(f"| {image} (q {', '.join(f'{q:g}' for q in common)}) | {bd:+.2f} % | " + " | ".join(previews) + " |")
    finite = [r for r in rates if np.isfinite(r)]
    if finite:
        lines.append(f"| mean of {len(finite)} | {np.mean(finite):+.2f} % | |" + " |" * (len(PREFIXES) - 1))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python studies/prefix_training/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("images_dir", type=Path)
    parser.add_argument("--images", default="kodim01,kodim02,kodim05,kodim13,kodim15,kodim19,kodim21,kodim23")
    parser.add_argument("--qualities", default="3,1,5")
    parser.add_argument("--fraction", type=float, default=0.125)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a prefix.jsonl whose prefix_fraction 0 rows serve as the baseline (this run encodes --fraction only)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "prefix.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    done = {(r["image"], r["quality"], r["prefix_fraction"]) for r in rows}
    arms = (0.0, args.fraction) if args.baseline is None else (args.fraction,)
    for quality in (float(q) for q in args.qualities.split(",")):
        for name in args.images.split(","):
            for fraction in arms:
                if (name, quality, fraction) in done:
                    continue
                row = measure(args.images_dir / f"{name}.png", quality, fraction, args.out / "files")
                row["machine"] = f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
                print(json.dumps(row), flush=True)
                with log.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                rows.append(row)
                base = [] if args.baseline is None else [json.loads(line) for line in args.baseline.read_text().splitlines()]
                (args.out / "prefix.md").write_text(report(rows + [r for r in base if r["prefix_fraction"] == 0.0],
                                                           args.fraction))


if __name__ == "__main__":
    main()
