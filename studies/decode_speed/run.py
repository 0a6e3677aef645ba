"""Whole-process decode speed against Pillow's AVIF decoder, side by side in one run.

    python studies/decode_speed/run.py FILE.shc SOURCE.png [--avif-quality 75] [--runs 15]
        [--region FILE.shc X,Y,W,H] [--json OUT.json]

A user's ``shc decode FILE.shc -o out.png`` (a fresh interpreter: start-up, imports, reading, rendering, PNG)
is timed against ``Image.open(photo.avif).save(out.png)`` in a fresh interpreter too (Pillow's AVIF plugin:
libavif), on the same photo, alternately (A B A B ...), so that the machine's drift hits both alike; the
ratio is taken pair by pair and its median printed. Both run with their bytecode cache, as a user's Python
does (``PYTHONDONTWRITEBYTECODE`` unset), after one untimed run each. ``--region`` adds the whole-process
time of ``shc decode FILE --crop X,Y,W,H`` (a region of a large file). Wall-clock seconds (what a user
waits); run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shc_file", type=Path)
    parser.add_argument("source", type=Path, help="the photo the .shc file codes (to make its AVIF)")
    parser.add_argument("--avif-quality", type=int, default=75, help="Pillow's AVIF quality [75, its default]")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--region", nargs=2, metavar=("FILE", "X,Y,W,H"), help="also time a region decode")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    shc_cli = [sys.executable, "-m", "shc.cli.main"]
    figures: dict = {"python": platform.python_version(), "machine": platform.machine(),
                     "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                     "numpy": np.__version__, "runs": args.runs}
    with tempfile.TemporaryDirectory() as tmp:
        avif = Path(tmp) / "photo.avif"
        Image.open(args.source).convert("RGB").save(avif, quality=args.avif_quality)
        decode_shc = [*shc_cli, "decode", str(args.shc_file), "-o", f"{tmp}/shc.png", "--force"]
        decode_avif = [sys.executable, "-c",
                       f"from PIL import Image; Image.open({str(avif)!r}).save({tmp + '/avif.png'!r})"]
        for command in (decode_shc, decode_avif):  # warm-up: bytecode caches, page cache
            _wall(command, env)
        shc_times, avif_times = [], []
        for _ in range(args.runs):
            shc_times.append(_wall(decode_shc, env))
            avif_times.append(_wall(decode_avif, env))
        ratios = [a / b for a, b in zip(shc_times, avif_times)]
        pixels = np.asarray(Image.open(args.source)).shape
        figures.update({
            "photo": args.source.name, "width": pixels[1], "height": pixels[0],
            "shc_bytes": args.shc_file.stat().st_size, "avif_bytes": avif.stat().st_size,
            "avif_quality": args.avif_quality,
            "shc_decode_s": {"min": min(shc_times), "median": statistics.median(shc_times), "max": max(shc_times)},
            "avif_decode_s": {"min": min(avif_times), "median": statistics.median(avif_times), "max": max(avif_times)},
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        })
        print(f"{args.source.name}: shc decode -> PNG {figures['shc_decode_s']['median']:.3f} s "
              f"(min {min(shc_times):.3f}), Pillow AVIF (q{args.avif_quality}, {figures['avif_bytes']:,} B) -> PNG "
              f"{figures['avif_decode_s']['median']:.3f} s (min {min(avif_times):.3f}); "
              f"ratio {figures['ratio_median']:.2f} (pairs: {min(ratios):.2f} .. {max(ratios):.2f}), {args.runs} runs")
        if args.region:
            region_file, box = args.region
            crop = [*shc_cli, "decode", region_file, "--crop", box, "-o", f"{tmp}/region.png", "--force"]
            _wall(crop, env)
            times = [_wall(crop, env) for _ in range(max(3, args.runs // 3))]
            figures["region"] = {"file": Path(region_file).name, "crop": box, "median_s": statistics.median(times),
                                 "min_s": min(times), "max_s": max(times)}
            print(f"{Path(region_file).name} --crop {box}: {statistics.median(times):.3f} s "
                  f"(min {min(times):.3f}, max {max(times):.3f}), {len(times)} runs")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
