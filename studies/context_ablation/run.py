"""The context model's ablation: each (image, quality) trained once, then its file written with every level
factorized (format 6 without a context network, the bytes of 0.6.0 plus one) and with fitted context
networks of a few sizes. Same latents, same weights: the PSNR of the files is the same and the byte
ratio is the whole effect of the coding. Prints one JSON line per point and writes a markdown table.

    python studies/context_ablation/run.py IMAGES_DIR --images kodim01,... --qualities 1,3,5 -o results/context
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from shc.bench import bd_rate, classic_per_image
from shc.codec.encoder import decoded_psnr, make_header
from shc.codec.model import GridINR, PixelGrid
from shc.codec.presets import settings_for, settings_for_image
from shc.codec.prior import FactorizedPrior
from shc.codec.tables import adopt_context, assemble_file
from shc.codec.train import choose_weight_steps, train
from shc.images import load_image

VARIANTS = ((8, 400),)
"""(context width, fit steps): the default. (A 16-wide network fitted for 1,000 steps changed no file of
the first two images either: results/context/README.md.)"""


def _file(model: GridINR, grid: PixelGrid, target: torch.Tensor, lmbda: float, sample) -> bytes:
    steps, _ = choose_weight_steps(model, grid, target, lmbda, sample=sample)
    return assemble_file(model, steps).data


def measure(path: Path, quality: float, preset: str, log2_table: int | None = None) -> dict:
    """One point: training once, then the plain file and each variant's file, sizes, PSNR and fit times.
    ``log2_table`` replaces the quality's hash-table size (2^17 makes every level of a Kodak photo dense)."""
    source = load_image(path, strip=True)
    height, width, channels = source.pixels.shape
    settings = settings_for(preset, quality)
    if log2_table is not None:
        settings = dataclasses.replace(settings, log2_hashmap_size=log2_table)
    settings = settings_for_image(settings, width, height)
    torch.manual_seed(0)
    np.random.seed(0)
    header = make_header(width, height, settings, channels)
    model, prior, grid = GridINR(header), FactorizedPrior(header.config.num_tables), PixelGrid(header, width, height)
    target = torch.from_numpy(source.pixels.reshape(-1, channels).copy())
    start = time.perf_counter()
    train(model, prior, grid, target, settings)
    row = {"image": path.stem, "quality": quality, "log2_table": settings.log2_hashmap_size,
           "lmbda": settings.lmbda, "train_s": round(time.perf_counter() - start, 1)}
    sample = grid.scoring_sample(settings.score_pixels)
    plain = _file(model, grid, target, settings.lmbda, sample)
    row.update(plain_bytes=len(plain), psnr_db=round(decoded_psnr(plain, source.pixels)[0], 4),
               bpp=len(plain) * 8 / (width * height))
    for context_width, fit_steps in VARIANTS:
        candidate = copy.deepcopy(model)
        start = time.perf_counter()
        kept = adopt_context(candidate, context_width, fit_steps)
        fit_s = time.perf_counter() - start
        data = _file(candidate, grid, target, settings.lmbda, sample)
        key = f"w{context_width}_s{fit_steps}"
        row[key] = {"bytes": len(data), "kept": kept, "fit_s": round(fit_s, 1),
                    "psnr_db": round(decoded_psnr(data, source.pixels)[0], 4),
                    "change_pct": round(100 * (len(data) / len(plain) - 1), 2)}
    return row


def table(rows: list[dict]) -> str:
    keys = [f"w{w}_s{s}" for w, s in VARIANTS]
    lines = ["| image | q | bpp (plain) | PSNR dB | " + " | ".join(f"{k} bytes change" for k in keys) + " |",
             "|---|---|---|---|" + "---|" * len(keys)]
    for r in rows:
        lines.append(f"| {r['image']} | {r['quality']:g} | {r['bpp']:.4f} | {r['psnr_db']:.2f} | "
                     + " | ".join(f"{r[k]['change_pct']:+.2f} %" for k in keys) + " |")
    for k in keys:
        lines.append(f"\nmean change {k}: {np.mean([r[k]['change_pct'] for r in rows]):+.2f} %, "
                     f"fit {np.mean([r[k]['fit_s'] for r in rows]):.1f} s")
    return "\n".join(lines) + "\n"


def _curve(rows: list[dict], bytes_of) -> tuple[list[float], list[float]]:
    """Mean bpp and PSNR per quality (in increasing quality) of ``rows``; ``bytes_of(row)``: the file's size."""
    qualities = sorted({r["quality"] for r in rows})
    bpp = [float(np.mean([bytes_of(r) * r["bpp"] / r["plain_bytes"] for r in rows if r["quality"] == q]))
           for q in qualities]
    psnr = [float(np.mean([r["psnr_db"] for r in rows if r["quality"] == q])) for q in qualities]
    return bpp, psnr


def bd_summary(rows: list[dict], classic: Path) -> str:
    """BD-rates of the factorized and the context files against the classic codecs of ``classic`` (a
    results/kodak-cpu folder: ``NAME.json`` mean curves, ``per_image.csv``), over the qualities measured for
    every image: of the mean curves, and per image against WebP and AVIF."""
    images = sorted({r["image"] for r in rows})
    qualities = sorted({r["quality"] for r in rows})
    rows = [r for r in rows if sum(s["quality"] == r["quality"] for s in rows) == len(images)]
    kinds = {"factorized tables": lambda r: r["plain_bytes"], "context network where smaller": lambda r: r["w8_s400"]["bytes"]}
    lines = [f"BD-rate over qualities {', '.join(f'{q:g}' for q in qualities)} ({len(images)} images), against "
             f"{classic}/*.json (mean curves):\n", "| shc files | " + " | ".join(("webp", "avif", "jpeg420")) + " |",
             "|---|---|---|---|"]
    refs = {n: json.loads((classic / f"{n}.json").read_text())["results"] for n in ("webp", "avif", "jpeg420")}
    for name, size in kinds.items():
        bpp, psnr = _curve(rows, size)
        lines.append(f"| {name} | " + " | ".join(
            f"{bd_rate(ref['bpp'], ref['psnr-rgb'], bpp, psnr):+.1f} %" for ref in refs.values()) + " |")
    per = classic_per_image(classic)
    lines += ["", "Per image (context files where smaller): BD-rate vs WebP | vs AVIF\n", "| image | WebP | AVIF |",
              "|---|---|---|"]
    for image in images:
        mine = sorted((r for r in rows if r["image"] == image), key=lambda r: r["quality"])
        bpp = [r["w8_s400"]["bytes"] * r["bpp"] / r["plain_bytes"] for r in mine]
        psnr = [r["psnr_db"] for r in mine]
        lines.append(f"| {image} | " + " | ".join(
            f"{bd_rate(*per[(codec, image)], bpp, psnr):+.1f} %" for codec in ("webp", "avif")) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python studies/context_ablation/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("images_dir", type=Path)
    parser.add_argument("--images", default="kodim01,kodim02,kodim05,kodim13,kodim15,kodim19,kodim21,kodim23")
    parser.add_argument("--qualities", default="1,3,5")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--log2-table", type=int, default=None, help="hash-table size override (log2)")
    parser.add_argument("--classic", type=Path, default=Path("results/kodak-cpu"),
                        help="results of the classic codecs on the same images, for BD-rates (bd.md)")
    parser.add_argument("-o", "--out", type=Path, default=Path("results/context"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / ("ablation.jsonl" if args.log2_table is None else f"ablation-table{args.log2_table}.jsonl")
    done = {(r["image"], r["quality"]) for r in map(json.loads, rows_path.read_text().splitlines())} if rows_path.exists() else set()
    for quality in map(float, args.qualities.split(",")):
        for name in args.images.split(","):
            if (name, quality) in done:
                continue
            row = measure(args.images_dir / f"{name}.png", quality, args.preset, args.log2_table)
            print(json.dumps(row), flush=True)
            with rows_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    table_arg = "" if args.log2_table is None else f" --log2-table {args.log2_table}"
    header = (f"Command: python studies/context_ablation/run.py {args.images_dir} --images {args.images} "
              f"--qualities {args.qualities} --preset {args.preset}{table_arg} -o {args.out}\n"
              f"Machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads.\n\n")
    (args.out / rows_path.with_suffix(".md").name).write_text(header + table(rows))
    qualities = {r["quality"] for r in rows}
    if len(qualities) >= 2 and (args.classic / "per_image.csv").exists() and args.log2_table is None:
        (args.out / "bd.md").write_text(header + bd_summary(rows, args.classic))


if __name__ == "__main__":
    main()
