"""Large photos: whole-process encode and decode of ``shc`` (time, peak RSS), region decode, and Pillow's
JPEG, WebP and AVIF side by side at similar sizes.

    python studies/large/run.py IMAGE [IMAGE ...] -o results/large-cpu [--quality 3] [--crop 1024] [--keep]

Besides the full decode and a region (``--crop``, median of 3), it renders level-of-detail previews
(``--levels K`` at 1/8 and 1/32 of the size, with the prefix of levels that size needs) and notes the bytes
each partial decode read. ``--keep`` copies each .shc into the output folder; ``--steps`` overrides the
preset's (a region's decode cost does not depend on how long the encoder trained).

Every shc figure comes from a separate ``shc`` process timed with ``/usr/bin/time`` (wall seconds and peak
resident set size), the way a user runs it. PSNR is the encoder's report (the decoder's pixels against the
input, computed strip by strip). The classic codecs are encoded in this process; their PSNR is computed in
strips too (no float copy of a 600 MB image). Writes ``large.csv`` (appended per row), ``meta.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from shc.metrics import channel_squared_errors, psnr_from_mse

__all__ = ["main"]

FIELDS = ["image", "pixels", "codec", "setting", "bytes", "bpp", "psnr_db", "seconds", "peak_rss_mb", "note"]


def _timed(command: list[str]) -> tuple[float, float, str]:
    """Run ``command``; its wall seconds, peak RSS in MB and stdout (raises with its stderr on failure)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        done = subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%e %M", *command],
                              capture_output=True, text=True)
        if done.returncode != 0:
            msg = f"{shlex.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}"
            raise RuntimeError(msg)
        seconds, kilobytes = report.read().split()[-2:]
    return float(seconds), int(kilobytes) / 1024, done.stdout


def _psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    return psnr_from_mse(float(channel_squared_errors(reference, decoded).sum()) / reference.size)


def _classic(rgb: np.ndarray, codec: str, quality: int) -> tuple[int, float, float]:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # our own photo, re-read after encoding (200 MP is above Pillow's bomb limit)
    options = {"jpeg": {"format": "JPEG", "quality": quality, "optimize": True},
               "webp": {"format": "WEBP", "quality": quality, "method": 4},
               "avif": {"format": "AVIF", "quality": quality, "speed": 8}}[codec]
    buffer = io.BytesIO()
    start = time.perf_counter()
    Image.fromarray(rgb).save(buffer, **options)
    seconds = time.perf_counter() - start
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        pixels = np.asarray(decoded.convert("RGB"))
    return len(buffer.getvalue()), seconds, _psnr(rgb, pixels)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python studies/large/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--quality", default="3")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--crop", type=int, default=1024, help="side of the region decode")
    parser.add_argument("--classic", default="jpeg:20,jpeg:50,webp:20,webp:50,avif:30,avif:50",
                        help="codec:quality pairs for Pillow ('' for none)")
    parser.add_argument("--steps", type=int, default=None, help="training steps instead of the preset's")
    parser.add_argument("--keep", action="store_true", help="copy each .shc into the output folder")
    parser.add_argument("--skip-full-decode", action="store_true", help="no streamed decode of the whole image")
    parser.add_argument("--classic-only", action="store_true", help="only the classic codecs (shc already measured)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "large.csv"
    shc = [str(Path(sys.executable).with_name("shc"))]
    from shc.bench import append_csv_row, write_study_meta

    write_study_meta(args.out, "studies/large/run.py", argv if argv is not None else sys.argv[1:],
                     [str(p) for p in args.images])

    def record(row: dict) -> None:
        append_csv_row(table, FIELDS, row)

    with tempfile.TemporaryDirectory() as tmp:
        for image in args.images:
            from shc.images import load_image

            rgb = load_image(image, max_pixels=1 << 30, alpha=False).pixels
            height, width = rgb.shape[:2]
            pixels = width * height
            encoded = Path(tmp) / f"{image.stem}.shc"
            if args.classic_only:
                _classic_rows(args, image, rgb, record)
                continue
            steps = ["--steps", str(args.steps)] if args.steps else []
            seconds, rss, out = _timed([*shc, "encode", str(image), "-o", str(encoded), "-q", args.quality, "--json",
                                        "--preset", args.preset, "--quiet", "--max-pixels", str(1 << 30), "--force",
                                        *steps])
            report = json.loads(out.strip().splitlines()[-1])
            record({"image": image.name, "pixels": pixels, "codec": "shc",
                    "setting": f"encode {args.preset} q{args.quality}",
                    "bytes": report["bytes"], "bpp": report["bpp"], "psnr_db": report["psnr_db"],
                    "seconds": seconds, "peak_rss_mb": round(rss), "note": f"{report['steps']} steps"})
            side = min(args.crop, width, height)
            x, y = (width - side) // 2, (height - side) // 2
            if args.keep:
                (args.out / f"{image.stem}_q{args.quality}.shc").write_bytes(encoded.read_bytes())
            partial = [(f"decode --crop {side}x{side}", ["--crop", f"{x},{y},{side},{side}"])]
            for divisor in (8, 32):
                size = f"{max(1, width // divisor)}x{max(1, height // divisor)}"
                partial.append((f"decode --levels K --size {size} (1/{divisor})", ["--size", size, "--levels", "auto"]))
            for setting, options in partial:
                if "auto" in options:  # the prefix a rendering of that size needs (what Pillow's draft reads)
                    from shc.format.container import read_header
                    from shc.format.reader import preview_levels

                    out_w, out_h = (int(v) for v in options[1].split("x"))
                    with encoded.open("rb") as handle:  # the header is in the first bytes
                        header = read_header(handle.read(4096))
                    options = [*options[:3], str(preview_levels(header, out_w, out_h))]
                walls = []
                for _ in range(3):
                    seconds, rss, out = _timed([*shc, "decode", str(encoded), *options, "--json",
                                                "-o", str(Path(tmp) / "part.png"), "--force"])
                    walls.append(seconds)
                report = json.loads(out.strip().splitlines()[-1])
                record({"image": image.name, "pixels": pixels, "codec": "shc", "setting": setting.replace("K", str(report["levels"])),
                        "bytes": "", "bpp": "", "psnr_db": "", "seconds": float(np.median(walls)),
                        "peak_rss_mb": round(rss),
                        "note": f"median of 3 whole processes; read {report['bytes_read']} of {report['file_bytes']} bytes"})
            if not args.skip_full_decode:
                seconds, rss, _ = _timed([*shc, "decode", str(encoded), "-o", str(Path(tmp) / "full.png"), "--force",
                                          "--max-pixels", str(1 << 30)])
                record({"image": image.name, "pixels": pixels, "codec": "shc", "setting": "decode to PNG (streamed)",
                        "bytes": (Path(tmp) / "full.png").stat().st_size, "bpp": "", "psnr_db": "", "seconds": seconds,
                        "peak_rss_mb": round(rss), "note": "whole process"})
                (Path(tmp) / "full.png").unlink()
            _classic_rows(args, image, rgb, record)
            del rgb


def _classic_rows(args, image: Path, rgb: np.ndarray, record) -> None:
    height, width = rgb.shape[:2]
    for pair in filter(None, args.classic.split(",")):
        codec, quality = pair.split(":")
        if codec == "webp" and max(width, height) > 16383:
            continue
        num_bytes, seconds, psnr = _classic(rgb, codec, int(quality))
        record({"image": image.name, "pixels": width * height, "codec": codec, "setting": f"q{quality}",
                "bytes": num_bytes, "bpp": round(num_bytes * 8 / (width * height), 5), "psnr_db": round(psnr, 3),
                "seconds": round(seconds, 2), "peak_rss_mb": "", "note": "Pillow, in process"})


if __name__ == "__main__":
    main()
