"""Rate-control accuracy: encode images with ``--target-size``, ``--target-bpp`` and ``--target-psnr`` and
tabulate target vs achieved (bytes of the real file, PSNR of the decoded file).

    python studies/ratecontrol/run.py KODAK_DIR -o results/ratecontrol --images kodim01,kodim23
        [--size 12000] [--bpp 0.5] [--psnr 29] [--preset default]

Writes ``runs.csv`` (one row per encode, appended as it goes, so an interrupted run resumes) and
``table.md`` (the table and a summary: how many land within 3 % of the bits / 0.1 dB of the PSNR), and
``meta.json`` (machine and library versions).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

__all__ = ["main"]

FIELDS = ["image", "target", "value", "bytes", "bpp", "psnr_db", "error", "within", "start_quality", "final_lambda",
          "seconds"]
BITS_TOLERANCE = 0.03
PSNR_TOLERANCE_DB = 0.1


def _run(image: Path, kind: str, value: float, preset: str) -> dict:
    from shc.codec.encoder import encode_image
    from shc.codec.presets import settings_for_image
    from shc.codec.ratecontrol import RateTarget, start_settings
    from shc.images import load_image

    source = load_image(image)
    height, width = source.pixels.shape[:2]
    pixels = width * height
    target = {"size": lambda: RateTarget.size(int(value), pixels), "bpp": lambda: RateTarget("bpp", value),
              "psnr": lambda: RateTarget("psnr", value)}[kind]()
    start = time.perf_counter()
    settings, start_quality = start_settings(target, source.pixels, preset, None)  # as `shc encode` does
    result = encode_image(source, settings=settings_for_image(settings, width, height), rate_target=target)
    seconds = time.perf_counter() - start
    if kind == "size":
        error = result.num_bytes / value - 1
        within = result.num_bytes <= value and error >= -BITS_TOLERANCE
    elif kind == "bpp":
        error = result.bpp / value - 1
        within = abs(error) <= BITS_TOLERANCE
    else:
        error = result.psnr_db - value
        within = abs(error) <= PSNR_TOLERANCE_DB
    return {
        "image": image.stem, "target": kind, "value": value, "bytes": result.num_bytes, "bpp": round(result.bpp, 5),
        "psnr_db": round(result.psnr_db, 3), "error": round(error, 5), "within": within,
        "start_quality": round(start_quality, 2), "final_lambda": f"{result.final_lmbda:.4g}",
        "seconds": round(seconds, 1),
    }


def _table(rows: list[dict]) -> str:
    lines = ["| image | target | achieved bytes | bpp | PSNR dB | error | within |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        unit = {"size": " B", "bpp": " bpp", "psnr": " dB"}[r["target"]]
        error = f"{float(r['error']):+.2f} dB" if r["target"] == "psnr" else f"{100 * float(r['error']):+.2f} %"
        lines.append(f"| {r['image']} | {r['target']} {float(r['value']):g}{unit} | {r['bytes']} | {r['bpp']} | "
                     f"{r['psnr_db']} | {error} | {'yes' if str(r['within']) == 'True' else 'no'} |")
    lines.append("")
    for kind, goal in (("size", "at most the size and within 3 % of it"), ("bpp", "within 3 % of the bpp"),
                       ("psnr", "within 0.1 dB")):
        subset = [r for r in rows if r["target"] == kind]
        if not subset:
            continue
        hits = sum(str(r["within"]) == "True" for r in subset)
        errors = [abs(float(r["error"])) for r in subset]
        worst = f"{max(errors):.2f} dB" if kind == "psnr" else f"{100 * max(errors):.2f} %"
        mean = sum(errors) / len(errors)
        mean_text = f"{mean:.3f} dB" if kind == "psnr" else f"{100 * mean:.2f} %"
        lines.append(f"- {kind}: {hits}/{len(subset)} {goal}; mean |error| {mean_text}, worst {worst}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python studies/ratecontrol/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--images", required=True, help="comma-separated stems")
    parser.add_argument("--size", type=float, default=None, help="--target-size in bytes")
    parser.add_argument("--bpp", type=float, default=None)
    parser.add_argument("--psnr", type=float, default=None)
    parser.add_argument("--preset", default="default")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = args.out / "runs.csv"
    done: list[dict] = []
    if runs.exists():
        with runs.open() as handle:
            done = list(csv.DictReader(handle))
    seen = {(r["image"], r["target"], float(r["value"])) for r in done}
    targets = [(k, v) for k, v in (("size", args.size), ("bpp", args.bpp), ("psnr", args.psnr)) if v is not None]
    from shc.bench import append_csv_row, write_study_meta

    write_study_meta(args.out, "studies/ratecontrol/run.py", argv if argv is not None else sys.argv[1:],
                     args.images.split(","), preset=args.preset)
    for stem in args.images.split(","):
        for kind, value in targets:
            if (stem, kind, float(value)) in seen:
                continue
            row = _run(args.folder / f"{stem}.png", kind, value, args.preset)
            append_csv_row(runs, FIELDS, row)
            done.append(row)
    order = {kind: i for i, (kind, _) in enumerate(targets)}
    rows = sorted(done, key=lambda r: (order.get(r["target"], 9), r["image"]))
    (args.out / "table.md").write_text(_table(rows))
    print(_table(rows))



if __name__ == "__main__":
    main()
