"""``shc bench``: the Kodak-style rate-distortion benchmark from the command line.

A thin layer over :func:`shc.bench.run_benchmark`: it finds the images, builds the codecs, and turns
bad arguments into one-line errors. Register it with ``main.add_command(bench)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from shc.bench.names import CODEC_NAMES
from shc.cli.common import BadInputError, UsageError
from shc.codec.presets import PRESETS, QUALITIES  # no torch

__all__ = ["IMAGE_SUFFIXES", "bench"]

IMAGE_SUFFIXES = (".png", ".ppm", ".pnm", ".bmp", ".tif", ".tiff")
"""Lossless formats read from FOLDER (a lossy source would already carry another codec's artifacts)."""

def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_qualities(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(item) for item in _split(text)]
    except ValueError:
        msg = f"--qualities must be comma-separated numbers, got {text!r}"
        raise UsageError(msg) from None
    if not values:
        msg = "--qualities is empty"
        raise UsageError(msg)
    return [int(v) if v.is_integer() else v for v in values]


def find_images(folder: Path, selection: str | None) -> list[Path]:
    """Lossless images in ``folder`` sorted by name, optionally the first N or the named ones.

    Args:
        folder: Directory to scan (not recursive).
        selection: ``None`` for all, ``"4"`` for the first four, or ``"kodim01,kodim19"`` (stems or
            file names).

    Raises:
        BadInputError: If the folder is missing, holds no images, or a named image is absent.
        UsageError: If a count is below 1.
    """
    if not folder.is_dir():
        msg = f"image folder not found: {folder}"
        raise BadInputError(msg)
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        msg = f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}"
        raise BadInputError(msg)
    if selection is None:
        return images
    if selection.strip().isdigit():
        count = int(selection)
        if count < 1:
            msg = f"--images count must be >= 1, got {count}"
            raise UsageError(msg)
        return images[:count]
    by_name = {p.stem: p for p in images} | {p.name: p for p in images}
    wanted = _split(selection)
    missing = [name for name in wanted if name not in by_name]
    if missing:
        msg = f"image(s) not in {folder}: {', '.join(missing)}"
        raise BadInputError(msg)
    return list(dict.fromkeys(by_name[name] for name in wanted))


def _check_shc_options(preset: str | None, qualities: Sequence[float] | None) -> None:
    """Reject a bad preset or quality now, not after hours of classic codecs (without importing torch)."""
    names = [p.name for p in PRESETS]
    if preset is not None and preset not in names:
        msg = f"unknown --preset {preset!r}; choose one of {', '.join(names)}"
        raise UsageError(msg)
    levels = {q.level for q in QUALITIES}
    bad = [q for q in qualities or () if q not in levels]
    if bad:
        msg = f"shc qualities must be in {min(levels)}..{max(levels)}, got {', '.join(map(str, bad))}"
        raise UsageError(msg)


HELP = f"""Measure shc against classic codecs on a folder of images (e.g. Kodak).

For every image x codec x quality point it encodes, decodes, and appends one row to
RESULTS_DIR/per_image.csv: bytes, bpp, RGB PSNR, MS-SSIM, encode and decode seconds. Rows are
flushed as they are measured and never measured twice: rerun the same command to finish a killed
run, or to add images or codecs later.

From the CSV it then writes <codec>.json (CompressAI format: per quality point, the mean over
images), bd_table.md/.csv (Bjøntegaard deltas of --reference against every other curve), rd.png
(PSNR vs bpp) and meta.json (command, machine, library versions).

shc trains one network per image and quality point, so it dominates the run time; try
--images 2 --preset fast first. Classic codecs take about a second per image and quality.

\b
Examples:
  shc bench kodak/ -o runs/kodak
  shc bench kodak/ -o runs/quick --images 4 --codecs shc,jpeg420 --qualities 2,5 --preset fast
  shc bench kodak/ -o runs/classic --codecs jpeg420,webp,avif --reference avif
  shc bench kodak/ -o runs/kodak --published kodak_published_rd.csv

\b
Codecs: {", ".join(CODEC_NAMES)}
  jpeg420/jpeg444  Pillow + libjpeg-turbo, Huffman-optimized   quality 5..90
  webp             libwebp, method 6                           quality 0..90
  avif             libavif + aom, 4:4:4, speed 6               quality 10..80
  heic             pillow-heif + x265, 4:4:4                   quality 10..60
  jpeg2000         OpenJPEG, 9/7 wavelet; quality = target bpp 0.1..2

Exit status: 0 done, 1 usage error, 2 bad input (folder, images, CSV, results folder).
"""


@click.command("bench", help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    metavar="RESULTS_DIR", help="Results folder; created if missing, resumed if it holds a previous run.",
)
@click.option(
    "--codecs", default=",".join(CODEC_NAMES), show_default=True,
    help="Comma-separated codecs to measure, in this order.",
)
@click.option("--qualities", help=f"shc quality points, comma-separated ({QUALITIES[0].level} = smallest .. "
                                  f"{QUALITIES[-1].level} = best) [default: all].")
@click.option("--ngp-qualities", help="Quality points of the ngp baseline (its files are many times larger, so fewer "
                                      "points usually suffice) [default: those of --qualities].")
@click.option("--preset", help=f"shc encoder preset ({', '.join(p.name for p in PRESETS)}).")
@click.option("--steps", type=click.IntRange(min=1), help="Override the preset's shc training steps.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Where shc trains [default: shc's own, cpu].")
@click.option("--seed", type=int, default=0, show_default=True, help="shc training seed (fixed, for reproducibility).")
@click.option(
    "--images", "selection", metavar="N|NAMES",
    help="Only the first N images (sorted by name), or named ones: kodim01,kodim19.",
)
@click.option(
    "--published", type=click.Path(path_type=Path), metavar="CSV",
    help="Published points (codec,bpp,psnr_rgb,source) to draw dashed and use as BD anchors.",
)
@click.option("--reference", help="Codec judged in bd_table.md [default: shc, else the first of --codecs].")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
def bench(
    folder: Path,
    out_dir: Path,
    codecs: str,
    qualities: str | None,
    ngp_qualities: str | None,
    preset: str | None,
    steps: int | None,
    device: str | None,
    seed: int,
    selection: str | None,
    published: Path | None,
    reference: str | None,
    progress: bool,
) -> None:
    from shc.bench.registry import make_codecs
    from shc.bench.runner import run_benchmark

    names = _split(codecs)
    if not names:
        msg = "--codecs is empty"
        raise UsageError(msg)
    shc_qualities = _parse_qualities(qualities)
    baseline_qualities = _parse_qualities(ngp_qualities) or shc_qualities
    if "shc" in names or "ngp" in names:
        _check_shc_options(preset, shc_qualities)
        _check_shc_options(preset, baseline_qualities)
    try:
        codec_list = make_codecs(
            names, shc_qualities, {"preset": preset, "steps": steps, "device": device, "seed": seed},
            ngp_qualities=baseline_qualities,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    if reference is None:
        reference = "shc" if "shc" in names else names[0]
    elif reference not in names:
        msg = f"--reference {reference!r} is not among --codecs ({', '.join(names)})"
        raise UsageError(msg)
    images = find_images(folder, selection)
    if published is not None and not published.is_file():
        msg = f"published CSV not found: {published}"
        raise BadInputError(msg)
    try:
        run_benchmark(images, codec_list, out_dir, progress=progress, reference=reference, published_csv=published)
    except ValueError as error:
        raise BadInputError(str(error)) from None
    except ImportError as error:
        raise UsageError(str(error)) from None
    click.echo(f"results in {out_dir}: per_image.csv, <codec>.json, bd_table.md, rd.png, meta.json")
    click.echo((out_dir / "bd_table.md").read_text(encoding="utf-8"), nl=False)
