"""Super-resolution from the field (the paper's appendix §5): is shc's 2x rendering of a half-size photo
closer to the full-size original than standard upsampling?

Each image is reduced 2x (a 2 x 2 box average: what a sensor with half the pixels records), encoded, and
decoded at 2x (``shc decode --scale 2``). PSNR against the original, next to bilinear, bicubic and Lanczos
upscaling (Pillow) of shc's own native decode and of the lossless half-size image. One JSON line per image
(appended to ``superres.jsonl``; a rerun skips images already there), a table ``superres.md`` and, with
``--crops``, a figure of crops.

    python studies/superres/run.py IMAGES... -o DIR [--quality 7] [--preset default] [--set name=value] [--label L]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from shc.bench import parse_overrides
from shc.format.decoder import decode_bytes
from shc.images import load_rgb
from shc.metrics import psnr_db

FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
           "lanczos": Image.Resampling.LANCZOS}


def half_size(rgb: np.ndarray) -> np.ndarray:
    """The 2 x 2 box average of ``rgb`` (even sides; an odd last row or column is dropped), rounded to 8 bits."""
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    blocks = rgb[:h, :w].astype(np.float64).reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))
    return np.clip(np.round(blocks), 0, 255).astype(np.uint8)


def upscale(rgb: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize(size, FILTERS[method]))


def measure(path: Path, preset: str, quality: float, overrides: dict, keep: Path | None) -> dict:
    from shc.codec.encoder import encode_image
    from shc.codec.presets import settings_for, settings_for_image

    original = load_rgb(path)
    height, width = original.shape[0] // 2 * 2, original.shape[1] // 2 * 2
    original = original[:height, :width]
    half = half_size(original)
    settings = settings_for_image(settings_for(preset, quality), half.shape[1], half.shape[0])
    settings = dataclasses.replace(settings, **overrides)
    result = encode_image(half, settings=settings)
    if keep is not None:
        keep.write_bytes(result.data)
    native = decode_bytes(result.data)
    double = decode_bytes(result.data, size=(width, height))
    row = {
        "image": path.stem, "preset": preset, "quality": quality, "overrides": overrides,
        "bytes": len(result.data), "bpp_half": len(result.data) * 8 / (half.shape[0] * half.shape[1]),
        "psnr_native_db": psnr_db(native, half), "psnr_shc_2x_db": psnr_db(double, original),
        "encode_seconds": round(result.encode_seconds, 1),
    }
    for method in FILTERS:
        row[f"psnr_{method}_of_decode_db"] = psnr_db(upscale(native, (width, height), method), original)
        row[f"psnr_{method}_of_lossless_db"] = psnr_db(upscale(half, (width, height), method), original)
    return row


def table(rows: list[dict]) -> str:
    columns = ["psnr_native_db", "psnr_shc_2x_db", "psnr_bicubic_of_lossless_db", "psnr_lanczos_of_lossless_db",
               "psnr_bilinear_of_lossless_db", "psnr_bicubic_of_decode_db", "psnr_lanczos_of_decode_db"]
    short = ["native", "shc 2x", "bicubic(lossless)", "lanczos(lossless)", "bilinear(lossless)",
             "bicubic(decode)", "lanczos(decode)"]
    lines = ["| image | bpp (half) | " + " | ".join(short) + " |", "|---" * (len(columns) + 2) + "|"]
    for row in rows:
        lines.append(f"| {row['image']} | {row['bpp_half']:.3f} | "
                     + " | ".join(f"{row[c]:.2f}" for c in columns) + " |")
    if rows:
        lines.append("| **mean** | " + f"{np.mean([r['bpp_half'] for r in rows]):.3f} | "
                     + " | ".join(f"**{np.mean([r[c] for r in rows]):.2f}**" for c in columns) + " |")
        wins = sum(r["psnr_shc_2x_db"] >= r["psnr_bicubic_of_lossless_db"] for r in rows)
        lines.append(f"\nshc 2x >= bicubic of the lossless half-size image on {wins} of {len(rows)} images; "
                     f"mean difference {np.mean([r['psnr_shc_2x_db'] - r['psnr_bicubic_of_lossless_db'] for r in rows]):+.2f} dB.")
    return "\n".join(lines) + "\n"


def crops_figure(paths: list[Path], files: Path, out: Path, box: int = 96) -> None:
    """For each image: the same crop of the original, shc's 2x, bicubic of the lossless half and Lanczos
    of shc's native decode (the centre of the image's most detailed 96 x 96 block)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(paths), 4, figsize=(10, 2.6 * len(paths)), squeeze=False)
    for row, path in zip(axes, paths):
        original = load_rgb(path)
        height, width = original.shape[0] // 2 * 2, original.shape[1] // 2 * 2
        original = original[:height, :width]
        data = (files / f"{path.stem}.shc").read_bytes()
        panels = {"original": original, "shc 2x": decode_bytes(data, size=(width, height)),
                  "bicubic (lossless half)": upscale(half_size(original), (width, height), "bicubic"),
                  "Lanczos (shc native)": upscale(decode_bytes(data), (width, height), "lanczos")}
        y, x = _busiest(original, box)
        for ax, (name, image) in zip(row, panels.items()):
            crop = image[y : y + box, x : x + box]
            label = name if name == "original" else f"{name} {psnr_db(image, original):.2f} dB"
            ax.imshow(crop, interpolation="nearest")
            ax.set_title(f"{path.stem}: {label}", fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def _busiest(rgb: np.ndarray, box: int) -> tuple[int, int]:
    grey = rgb.astype(np.float64).mean(axis=2)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]
    best, where = -1.0, (0, 0)
    for y in range(0, energy.shape[0] - box, box // 2):
        for x in range(0, energy.shape[1] - box, box // 2):
            value = energy[y : y + box, x : x + box].sum()
            if value > best:
                best, where = value, (y, x)
    return where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python studies/superres/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("-o", "--out-dir", type=Path, required=True)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--quality", type=float, default=7.0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override an EncoderSettings field (repeatable)")
    parser.add_argument("--label", default="baseline", help="names the results: LABEL.jsonl, LABEL.md, LABEL/")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--crops", type=int, default=0, help="a figure of crops of the first N images")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    overrides = parse_overrides(args.overrides)
    files = args.out_dir / args.label
    files.mkdir(parents=True, exist_ok=True)
    log = args.out_dir / f"{args.label}.jsonl"
    done = {json.loads(line)["image"] for line in log.read_text().splitlines() if line} if log.exists() else set()
    for path in args.images:
        if path.stem in done:
            continue
        start = time.perf_counter()
        row = measure(path, args.preset, args.quality, overrides, files / f"{path.stem}.shc")
        with log.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(f"{path.stem}: shc 2x {row['psnr_shc_2x_db']:.2f} dB, bicubic(lossless) "
              f"{row['psnr_bicubic_of_lossless_db']:.2f}, lanczos(decode) {row['psnr_lanczos_of_decode_db']:.2f} "
              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    wanted = {p.stem for p in args.images}
    rows = [json.loads(line) for line in log.read_text().splitlines() if line]
    rows = [r for r in rows if r["image"] in wanted]
    (args.out_dir / f"{args.label}.md").write_text(table(rows))
    print(table(rows))
    if args.crops:
        crops_figure(args.images[: args.crops], files, args.out_dir / f"{args.label}_crops.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
