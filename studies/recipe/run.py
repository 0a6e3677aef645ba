"""The anchors' training recipe, one change at a time (issue 30): each variant against the preset as it is,
on the same images, qualities and seeds.

    python studies/recipe/run.py IMAGES... -o results/recipe [--preset default] [--qualities 3] \\
        [--seeds 0,1] [--threads 1] --variant softround:proxy=softround [--variant ...]

Each encode is one JSON line in ``DIR/runs.jsonl`` (a rerun skips the points already there); ``DIR/table.md``
gives, per variant, the mean change of bytes, of decoded PSNR and of the encoder's objective (MSE on [0, 1]
+ λ · bpp, from the file) against the baseline of the same image, quality and seed, and the spread of
those changes over seeds (how far the seeds alone move a row). Bytes are the files' and PSNR is the
decoder's, as everywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

BASELINE = "baseline"


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:field=value,field=value`` -> (NAME, overrides of EncoderSettings)."""
    name, _, fields = text.partition(":")
    overrides = {}
    for item in filter(None, fields.split(",")):
        key, _, value = item.partition("=")
        overrides[key] = parse_value(value)
    if not name:
        raise SystemExit(f"--variant {text!r}: give NAME:field=value,...")
    return name, overrides


def encode_row(path: Path, preset: str, quality: float, seed: int, variant: str, overrides: dict) -> dict:
    from shc.codec.encoder import encode_image
    from shc.codec.presets import settings_for, settings_for_image
    from shc.images import load_image

    source = load_image(path, strip=True)
    height, width, _ = source.pixels.shape
    settings = dataclasses.replace(settings_for_image(settings_for(preset, quality), width, height), **overrides)
    start = time.perf_counter()
    result = encode_image(source, settings=settings, seed=seed)
    return {"image": path.stem, "preset": preset, "quality": quality, "seed": seed, "variant": variant,
            "overrides": overrides, "bytes": len(result.data), "bpp": len(result.data) * 8 / (width * height),
            "psnr_db": result.psnr_db, "lmbda": settings.lmbda, "seconds": time.perf_counter() - start}


def rd_cost(row: dict) -> float:
    return 10 ** (-row["psnr_db"] / 10) + row["lmbda"] * row["bpp"]


def table(rows: list[dict]) -> str:
    """Per variant: mean Δbytes %, ΔPSNR dB, Δobjective % against the same point's baseline, with the
    spread over seeds of the per-seed means."""
    base = {(r["image"], r["quality"], r["seed"]): r for r in rows if r["variant"] == BASELINE}
    lines = ["| variant | points | Δ bytes | Δ PSNR | Δ objective | Δ objective per seed | s / encode |",
             "|---|---|---|---|---|---|---|"]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant and (r["image"], r["quality"], r["seed"]) in base]
        if not mine:
            continue
        d_bytes = [100 * (r["bytes"] / base[(r["image"], r["quality"], r["seed"])]["bytes"] - 1) for r in mine]
        d_psnr = [r["psnr_db"] - base[(r["image"], r["quality"], r["seed"])]["psnr_db"] for r in mine]
        d_cost = [100 * (rd_cost(r) / rd_cost(base[(r["image"], r["quality"], r["seed"])]) - 1) for r in mine]
        per_seed = {}
        for r, d in zip(mine, d_cost):
            per_seed.setdefault(r["seed"], []).append(d)
        seeds = ", ".join(f"{seed}: {statistics.mean(v):+.2f} %" for seed, v in sorted(per_seed.items()))
        lines.append(f"| {variant} | {len(mine)} | {statistics.mean(d_bytes):+.2f} % | {statistics.mean(d_psnr):+.3f} dB "
                     f"| {statistics.mean(d_cost):+.2f} % | {seeds} | {statistics.mean(r['seconds'] for r in mine):.0f} |")
    return "\n".join(lines) + "\n"


def bd_table(rows: list[dict], classic: Path) -> str:
    """BD-rate of each variant measured at two or more qualities on every image: of its mean curve (mean bpp
    and PSNR per quality over the images, as results/kodak-cpu's NAME.json) against WebP's and AVIF's mean
    curves and the baseline's, and per image against that image's WebP and AVIF curves (per_image.csv)."""
    from shc.bench import bd_rate, classic_per_image

    refs = {name: json.loads((classic / f"{name}.json").read_text())["results"] for name in ("webp", "avif")}
    per = classic_per_image(classic)
    images = sorted({r["image"] for r in rows})

    def curve(variant: str, image: str | None = None) -> tuple[list[float], list[float]] | None:
        mine = [r for r in rows if r["variant"] == variant and (image is None or r["image"] == image)]
        qualities = sorted({r["quality"] for r in mine})
        points = []
        for quality in qualities:
            at = [r for r in mine if r["quality"] == quality]
            if image is None and {r["image"] for r in at} != set(images):
                continue
            points.append((statistics.mean(r["bpp"] for r in at), statistics.mean(r["psnr_db"] for r in at)))
        return ([p[0] for p in points], [p[1] for p in points]) if len(points) >= 2 else None

    base = curve(BASELINE)
    lines = ["| variant | qualities | vs WebP | vs AVIF | vs baseline | worst image vs WebP |", "|---|---|---|---|---|---|"]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mean = curve(variant)
        if mean is None:
            continue
        per_image = [(bd_rate(*per[("webp", image)], *c), image) for image in images
                     if (c := curve(variant, image)) is not None]
        worst = max(per_image) if per_image else (float("nan"), "-")
        vs_base = f"{bd_rate(*base, *mean):+.1f} %" if base is not None else "-"
        lines.append(f"| {variant} | {len(mean[0])} | {bd_rate(refs['webp']['bpp'], refs['webp']['psnr-rgb'], *mean):+.1f} % "
                     f"| {bd_rate(refs['avif']['bpp'], refs['avif']['psnr-rgb'], *mean):+.1f} % | {vs_base} "
                     f"| {worst[0]:+.1f} % ({worst[1]}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("-o", "--out-dir", type=Path, required=True)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--qualities", default="3")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: bytes independent of the machine's cores)")
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--classic", type=Path, default=Path("results/kodak-cpu"),
                        help="the classic codecs' curves for the BD table (NAME.json, per_image.csv)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    variants = [(BASELINE, {})] + [parse_variant(v) for v in args.variant]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    runs = args.out_dir / "runs.jsonl"
    rows = [json.loads(line) for line in runs.read_text().splitlines()] if runs.exists() else []
    done = {(r["image"], r["quality"], r["seed"], r["variant"]) for r in rows}
    qualities = [float(q) for q in args.qualities.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        for quality in qualities:
            for path in args.images:
                for name, overrides in variants:
                    if (path.stem, quality, seed, name) in done:
                        continue
                    row = encode_row(path, args.preset, quality, seed, name, overrides)
                    rows.append(row)
                    with runs.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    print(f"{path.stem} q{quality:g} seed {seed} {name}: {row['bytes']} B, {row['psnr_db']:.2f} dB, "
                          f"{row['seconds']:.0f} s", flush=True)
                    (args.out_dir / "table.md").write_text(table(rows))
    report = table(rows)
    if len(qualities) >= 2 and (args.classic / "per_image.csv").exists():
        report += "\nBD-rate over the qualities measured (mean curves of the images; per image: the worst):\n\n"
        report += bd_table(rows, args.classic)
    (args.out_dir / "table.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
