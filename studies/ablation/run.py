"""One change at a time: the same images and qualities encoded with the preset as it is and with each
variant (``--variant NAME:field=value,...`` overriding :class:`EncoderSettings` fields), side by side.

    python studies/ablation/run.py IMAGES... -o DIR [--preset default] [--qualities 3] \\
        --variant anneal_0.5:anneal=0.5 [--variant ...] [--threads 2]

One JSON line per encode in ``ablation.jsonl`` (a rerun skips the points already there); ``ablation.md``:
per variant and image, the file's bytes and decoded PSNR against the preset's, and the change of the
encoder's own objective (MSE on [0, 1] + λ · bpp, from the file), so that a variant with fewer bytes and
fewer dB can still be ranked.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from shc.bench import parse_overrides


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:field=value,field=value`` → (NAME, overrides)."""
    name, _, fields = text.partition(":")
    if not name:
        msg = f"--variant {text!r}: give NAME:field=value,..."
        raise SystemExit(msg)
    return name, parse_overrides([f for f in fields.split(",") if f])


def rd_cost(row: dict) -> float:
    """The encoder's objective, from the file: MSE on [0, 1] RGB + λ · bpp."""
    return 10 ** (-row["psnr_db"] / 10) + row["lmbda"] * row["bpp"]


def encode_row(path: Path, preset: str, quality: float, variant: str, overrides: dict) -> dict:
    from shc.codec.encoder import encode_image
    from shc.codec.presets import settings_for, settings_for_image
    from shc.images import load_image

    source = load_image(path, strip=True)
    height, width, _ = source.pixels.shape
    settings = dataclasses.replace(settings_for_image(settings_for(preset, quality), width, height), **overrides)
    result = encode_image(source, settings=settings)
    return {"image": path.stem, "preset": preset, "quality": quality, "variant": variant, "overrides": overrides,
            "bytes": len(result.data), "bpp": len(result.data) * 8 / (width * height), "psnr_db": result.psnr_db,
            "lmbda": settings.lmbda, "encode_seconds": round(result.encode_seconds, 1)}


def table(rows: list[dict]) -> str:
    base = {(r["image"], r["quality"]): r for r in rows if r["variant"] == "preset"}
    lines = ["| variant | image | q | bytes (preset → variant) | Δ bytes | PSNR (preset → variant) | Δ dB | Δ RD cost |",
             "|---|---|---|---|---|---|---|---|"]
    summary = []
    for variant in sorted({r["variant"] for r in rows} - {"preset"}):
        deltas = []
        for r in sorted((r for r in rows if r["variant"] == variant), key=lambda r: (r["quality"], r["image"])):
            b = base.get((r["image"], r["quality"]))
            if b is None:
                continue
            d_bytes = r["bytes"] / b["bytes"] - 1
            d_db = r["psnr_db"] - b["psnr_db"]
            d_cost = rd_cost(r) / rd_cost(b) - 1
            deltas.append((d_bytes, d_db, d_cost))
            lines.append(f"| {variant} | {r['image']} | {r['quality']:g} | {b['bytes']:,} → {r['bytes']:,} | "
                         f"{100 * d_bytes:+.1f} % | {b['psnr_db']:.2f} → {r['psnr_db']:.2f} | {d_db:+.2f} | "
                         f"{100 * d_cost:+.1f} % |")
        if deltas:
            mean = np.mean(deltas, axis=0)
            summary.append(f"- **{variant}**: mean Δ bytes {100 * mean[0]:+.1f} %, Δ PSNR {mean[1]:+.2f} dB, "
                           f"Δ RD cost {100 * mean[2]:+.1f} % over {len(deltas)} encodes; RD cost lower on "
                           f"{sum(d[2] < 0 for d in deltas)} of {len(deltas)}")
    return "\n".join(lines + [""] + summary) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python studies/ablation/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("-o", "--out-dir", type=Path, required=True)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--qualities", default="3")
    parser.add_argument("--variant", action="append", default=[], required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    variants = [("preset", {})] + [parse_variant(v) for v in args.variant]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log = args.out_dir / "ablation.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line] if log.exists() else []
    done = {(r["image"], r["preset"], r["quality"], r["variant"]) for r in rows}
    for quality in (float(q) for q in args.qualities.split(",")):
        for path in args.images:
            for name, overrides in variants:
                if (path.stem, args.preset, quality, name) in done:
                    continue
                row = encode_row(path, args.preset, quality, name, overrides)
                rows.append(row)
                with log.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(json.dumps(row), file=sys.stderr, flush=True)
    text = table(rows)
    (args.out_dir / "ablation.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
