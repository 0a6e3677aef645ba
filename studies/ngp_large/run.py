"""shc against its Instant-NGP-style baseline on a large photo (the paper's appendix §6: "similar PSNR to
Instant-NGP while ~9x smaller").

The baseline is the same grid and MLP without quantization or entropy coding (float16 latents stored raw,
``shc encode --no-entropy``). Each side is encoded at several quality levels (for the baseline, the quality
picks the grid: table size, extent, MLP width); the baseline's size at shc's PSNR is interpolated (log size
linear in PSNR between its two neighbouring points), and JPEG is added at shc's file size (Pillow's
highest quality not larger). One JSON line per encode in ``ngp_large.jsonl`` (a rerun skips done points);
the table ``ngp_large.md``.

    python studies/ngp_large/run.py IMAGE -o DIR [--shc 2,3,4] [--ngp 1,2,3] [--threads 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np


def encode_row(image: Path, codec: str, quality: float, architecture: float | None = None,
               steps: int | None = None) -> dict:
    """One encode at the default preset; ``architecture``: the grid and MLP of that quality level (with
    ``quality``'s λ), to compare shc and the baseline on the same grid."""
    from shc.codec.encoder import encode_image
    from shc.codec.presets import settings_for, settings_for_image
    from shc.images import load_image

    source = load_image(image, strip=True)
    height, width, _ = source.pixels.shape
    settings = settings_for("default", quality, steps, entropy_coding=codec == "shc", architecture=architecture)
    result = encode_image(source, settings=settings_for_image(settings, width, height))
    pixels = result.width * result.height
    return {"image": image.name, "codec": codec, "quality": quality, "architecture": architecture,
            "bytes": len(result.data),
            "bpp": len(result.data) * 8 / pixels, "psnr_db": result.psnr_db,
            "encode_seconds": round(result.encode_seconds, 1), "steps": result.training.steps_run,
            "table_log2": result.settings.log2_hashmap_size, "mlp_width": result.settings.mlp_width}


def interpolate_bytes(points: list[dict], psnr: float) -> float | None:
    """Bytes at ``psnr`` on the curve ``points`` (log bytes linear in PSNR between neighbours); None outside."""
    ordered = sorted(points, key=lambda p: p["psnr_db"])
    for low, high in zip(ordered, ordered[1:]):
        if low["psnr_db"] <= psnr <= high["psnr_db"]:
            t = (psnr - low["psnr_db"]) / max(high["psnr_db"] - low["psnr_db"], 1e-9)
            return math.exp((1 - t) * math.log(low["bytes"]) + t * math.log(high["bytes"]))
    return None


def jpeg_at(image: Path, max_bytes: int) -> dict | None:
    from shc.bench import CLASSIC_CODECS, best_quality_within
    from shc.images import load_rgb
    from shc.metrics import psnr_db

    rgb = load_rgb(image)
    codec = CLASSIC_CODECS["jpeg420"]
    found = best_quality_within(codec, rgb, max_bytes)
    if found is None:
        return None
    quality, data = found
    return {"quality": quality, "bytes": len(data), "psnr_db": psnr_db(codec.decode(data), rgb)}


def _curve_name(row: dict) -> str:
    grid = f"grid of q{row['architecture']:g}" if row.get("architecture") else "its quality levels"
    return f"{row['codec']}, {grid}, {row['steps']:,} steps"


def table(rows: list[dict], image: Path, with_jpeg: bool) -> str:
    """Every encode; then, for each shc point, the baseline's bytes at its PSNR on each baseline curve
    (same steps) and JPEG at its size; and each baseline point against each shc curve."""
    curves: dict[str, list[dict]] = {}
    for r in rows:
        curves.setdefault(_curve_name(r), []).append(r)
    lines = ["| curve | quality | bytes | bpp | PSNR (dB) | encode (s) |", "|---|---|---|---|---|---|"]
    for name, curve in sorted(curves.items()):
        for r in sorted(curve, key=lambda r: r["quality"]):
            lines.append(f"| {name} | {r['quality']:g} | {r['bytes']:,} | {r['bpp']:.4f} | {r['psnr_db']:.2f} | "
                         f"{r['encode_seconds']} |")
    lines += ["", "| point | bytes | PSNR | other curve | its bytes at that PSNR | ratio (baseline / shc) |",
              "|---|---|---|---|---|---|"]
    for name, curve in sorted(curves.items()):
        for r in sorted(curve, key=lambda r: r["quality"]):
            for other_name, other in sorted(curves.items()):
                if other[0]["codec"] == r["codec"]:
                    continue
                matched = interpolate_bytes(other, r["psnr_db"])
                ratio = "-"
                if matched:
                    ratio = f"{(matched / r['bytes'] if r['codec'] == 'shc' else r['bytes'] / matched):.1f}x"
                lines.append(f"| {name} q{r['quality']:g} | {r['bytes']:,} | {r['psnr_db']:.2f} | {other_name} | "
                             f"{f'{matched:,.0f}' if matched else 'outside its range'} | {ratio} |")
    if with_jpeg:
        lines += ["", "| shc point | bytes | PSNR | JPEG 4:2:0 (Pillow) at that size or less |", "|---|---|---|---|"]
        for r in sorted((r for r in rows if r["codec"] == "shc"), key=lambda r: r["bytes"]):
            jpeg = jpeg_at(image, r["bytes"])
            jpeg_text = f"q{jpeg['quality']}: {jpeg['bytes']:,} B, {jpeg['psnr_db']:.2f} dB" if jpeg else "none that small"
            lines.append(f"| {_curve_name(r)} q{r['quality']:g} | {r['bytes']:,} | {r['psnr_db']:.2f} | {jpeg_text} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from shc.codec.presets import settings_for

    parser = argparse.ArgumentParser(prog="python studies/ngp_large/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("-o", "--out-dir", type=Path, required=True)
    parser.add_argument("--shc", default="2,3,4", help="quality levels of shc")
    parser.add_argument("--ngp", default="1,2,3", help="quality levels of the no-entropy baseline")
    parser.add_argument("--shc-architecture", type=float, default=None,
                        help="shc's grid and MLP from this quality level (its λ from --shc): the baseline's grid")
    parser.add_argument("--steps", type=int, default=None, help="both sides' steps (default: the preset's)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-jpeg", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log = args.out_dir / "ngp_large.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line] if log.exists() else []
    done = {(r["image"], r["codec"], r["quality"], r.get("architecture"), r["steps"]) for r in rows}
    shc_points = [("shc", float(q), args.shc_architecture) for q in args.shc.split(",")]
    ngp_points = [("ngp", float(q), None) for q in args.ngp.split(",")]
    # alternate the two sides, so that an interrupted run still has points of both
    order = [p for pair in itertools.zip_longest(shc_points, ngp_points) for p in pair if p is not None]
    steps = args.steps or settings_for("default").steps
    for codec, quality, architecture in order:
        if (args.image.name, codec, quality, architecture, steps) not in done:
            row = encode_row(args.image, codec, quality, architecture, steps)
            rows.append(row)
            with log.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), file=sys.stderr, flush=True)
    mine = [r for r in rows if r["image"] == args.image.name]
    text = table(mine, args.image, not args.no_jpeg)
    (args.out_dir / "ngp_large.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
