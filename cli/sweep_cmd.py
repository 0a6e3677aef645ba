"""``shc sweep``: the SHACIRA appendix's sensitivity analysis, one hyperparameter at a time (:mod:`shc.bench.sweep`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
import numpy as np

from shc.bench.sweep import APPENDIX, APPENDIX_ROW_LAMBDA, DEFAULT_TABLES, PARAMS  # no torch
from shc.cli.common import BadInputError, UsageError
from shc.codec.presets import PRESETS, QUALITIES

__all__ = ["sweep"]

_PARAM_LINES = "\n".join(
    f"  {name:<11} {param.what}" + (f" [appendix: {APPENDIX[name]}]" if name in APPENDIX else "")
    for name, param in PARAMS.items()
)

HELP = f"""Sensitivity analysis of one hyperparameter (SHACIRA appendix §3).

For each value of --param it trains one file per hash-table size (--tables: 2^13 .. 2^17 rows per
level) and draws PSNR against bpp, one line per value. Every point is a real .shc file: bpp from its
bytes, PSNR (and MS-SSIM) of the decoded image, encode seconds. The parameters not swept keep the
appendix's setting (below; --set changes one), with the --preset's schedule.

\b
Writes into DIR (created if missing):
  sweep.csv      one row per point: param, value, log2_hashmap_size, image, bytes, bpp, psnr_rgb,
                 ms_ssim_rgb, encode_s, decode_s, lmbda, table_rows, steps, config, measured_as
  PARAM.png      the curves of this parameter
  json/          one JSON per curve, in shc bench's (CompressAI) schema
  bd_rates.md    BD-rate / BD-PSNR of every value against the parameter's baseline value
  meta.json      commands, settings, machine, library versions

sweep.csv is rewritten atomically after every point: rerun the same command to finish an
interrupted sweep (points done are skipped), or with another --param into the same DIR. A point
whose settings equal one already measured (the baseline recurs in every sweep) is copied.

\b
λ: the paper weighs the latents' bits per table row, shc per pixel (loss = MSE + λ·bpp). By
default every point gets the appendix's λ = {APPENDIX_ROW_LAMBDA:g} per row, i.e. λ·pixels/rows per bpp,
which moves the curves along the rate axis as the table grows; --lmbda (per bpp) or --quality
(that level's λ) fix shc's λ instead. --param row_lambda sweeps the paper's λ, lmbda shc's.

\b
Parameters (--param; hyphens work too):
{_PARAM_LINES}

\b
Examples:
  shc sweep photo.jpg -o runs/sweep --crop 1920x1080 --param feat_dim --values 1,2,4 \\
      --preset fast --steps 300 --threads 1
  shc sweep photo.jpg -o runs/sweep --crop 1920x1080 --param row_lambda --values 2.5e-5,1e-4,4e-4
  shc sweep kodim23.png -o runs/k23 --param mlp_width --values 16,48,96 --set num_levels=12

Budget: a point costs about what `shc encode` costs at that size; --preset fast --steps 300 on a
1920x1080 crop is 40 - 90 s per point on one CPU thread.

Exit status: 0 done, 1 usage error (options, a DIR holding other settings' points without
--force), 2 bad input (the image; a --param, --values, --tables, --set or --crop the sweep or the
.shc format cannot take), 130 interrupted (the points finished are kept).
"""


@click.command("sweep", help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("image", type=click.Path(dir_okay=True, path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Results folder; created if missing, resumed if it holds an earlier sweep.")
@click.option("--param", required=True, metavar="NAME", help="The hyperparameter to vary (see the list above).")
@click.option("--values", required=True, metavar="A,B,C", help="Its values, comma-separated: one curve each.")
@click.option("--tables", default=",".join(map(str, DEFAULT_TABLES)), show_default=True, metavar="T,T,...",
              help="log2 hash-table sizes (rows per level): the points of each curve.")
@click.option("--set", "fixed", multiple=True, metavar="NAME=VALUE",
              help="Fix a parameter that is not swept to another value than the appendix's (repeatable).")
@click.option("--preset", type=click.Choice([p.name for p in PRESETS]), default="default", show_default=True,
              help="Training schedule (steps, batch, learning rates) and grid extent; the architecture is the "
                   "appendix's.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Override the preset's training steps.")
@click.option("--lmbda", type=click.FloatRange(min=0), default=None,
              help="shc's rate weight per bpp for every point, instead of the appendix's λ per table row.")
@click.option("--row-lambda", type=click.FloatRange(min=0), default=None,
              help=f"The paper's rate weight per table row, converted per point [default: {APPENDIX_ROW_LAMBDA:g}].")
@click.option("--quality", "-q", type=click.FloatRange(QUALITIES[0].level, QUALITIES[-1].level), default=None,
              help="Take shc's λ (per bpp) of this quality level; nothing else of the level.")
@click.option("--crop", default=None, metavar="WxH", help="Train on the centre WxH of the image (e.g. 1920x1080).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Train on the largest centre crop of at most this many pixels with the image's aspect ratio "
                   "(with --crop: a check on it). Also raises the limit on the input's size above Pillow's "
                   "decompression-bomb guard when larger.")
@click.option("--device", default="cpu", show_default=True, help="Torch device for training (cpu, cuda, auto ...).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="At most N CPU threads for torch and numpy [default: the libraries' own].")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Training seed.")
@click.option("--ms-ssim/--no-ms-ssim", "with_ms_ssim", default=True, show_default=True,
              help="MS-SSIM of every decoded file (a few seconds a point at 2 MP).")
@click.option("--force", "-f", is_flag=True,
              help="Measure again points that DIR holds from other settings (another image, crop, steps ...).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars on stderr [default: when stderr is a terminal].")
def sweep(image: Path, out_dir: Path, param: str, values: str, tables: str, fixed: tuple[str, ...], preset: str,
          steps: int | None, lmbda: float | None, row_lambda: float | None, quality: float | None, crop: str | None,
          max_pixels: int | None, device: str, threads: int | None, seed: int, with_ms_ssim: bool, force: bool,
          progress: bool | None) -> None:
    from shc.bench import sweep as sw

    given = [name for name, value in (("--lmbda", lmbda), ("--row-lambda", row_lambda), ("--quality", quality))
             if value is not None]
    if len(given) > 1:
        msg = f"give one rate weight, not {' and '.join(given)}"
        raise UsageError(msg)
    if out_dir.exists() and not out_dir.is_dir():
        msg = f"{out_dir} exists and is not a folder"
        raise UsageError(msg)
    try:
        name = sw.parse_param(param)
        chosen = sw.parse_values(name, values)
        sizes = sw.parse_tables(tables)
        overrides = sw.parse_sets(fixed, name)
        crop_size = sw.parse_size(crop) if crop is not None else None
    except sw.SweepError as error:  # options the sweep cannot take: a usage error, as everywhere in shc
        raise UsageError(str(error)) from None
    if given and name in sw.RATE_PARAMS:
        msg = f"--param {name} sweeps the rate weight; leave out {given[0]}"
        raise UsageError(msg)
    try:
        import matplotlib  # noqa: F401  (checked now, not after an hour of training)
    except ImportError:
        msg = "the sweep's plots need matplotlib: pip install 'shc[bench]'"
        raise UsageError(msg) from None
    rate = sw.base_rate(lmbda, row_lambda, quality)
    base = sw.base_settings(preset, steps, overrides)
    baseline = overrides.get(name, sw.APPENDIX.get(name))  # the value the other parameters' sweeps use
    if name == "lmbda":
        baseline = rate.value if rate.kind == "bpp" else None
    elif name == "row_lambda":
        baseline = rate.value if rate.kind == "row" else None
    if baseline is None or baseline not in chosen:
        baseline = chosen[0]

    pixels, label = _load(image, crop_size, max_pixels)
    height, width = pixels.shape[:2]
    from shc.cli.encode_cmd import Progress, resolve_device

    device = resolve_device(device)
    try:
        points = sw.plan_points(base, rate, name, chosen, sizes, width, height, sw.image_digest(pixels), seed, device)
    except sw.SweepError as error:
        raise BadInputError(str(error)) from None
    from shc.cli.encoder import encode_image  # without torch: one line naming shc[encode], exit 2

    if threads is not None:
        import torch  # noqa: F401  (loaded first, so that --threads reaches its thread pool)

        from shc.cli.common import limit_threads

        limit_threads(threads)
    show = sys.stderr.isatty() if progress is None else progress
    step_bar = (lambda total, title: Progress(total, True, title)) if show else None
    click.echo(f"sweep {name} = {', '.join(map(sw.format_value, chosen))} over 2^{sizes[0]}..2^{sizes[-1]} on "
               f"{label} ({width}x{height}), {rate.describe()}, {preset} preset, {base.steps} steps", err=True)
    try:
        rows = sw.run_sweep(pixels, label, out_dir, points, baseline=baseline, rate=rate, device=device, seed=seed,
                            force=force, with_ms_ssim=with_ms_ssim, progress=show, step_bar=step_bar,
                            command=shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                            extra_meta={"threads": threads, "preset": preset, "crop": crop, "max_pixels": max_pixels,
                                        "source": str(image)},
                            encode=encode_image)
    except sw.ConflictError as error:
        raise UsageError(str(error)) from None
    except sw.SweepError as error:
        raise BadInputError(str(error)) from None
    except KeyboardInterrupt:
        click.echo(f"Error: interrupted; the points finished are in {out_dir / 'sweep.csv'} (rerun to go on)", err=True)
        sys.exit(130)
    done = {row["value"] for row in rows}
    click.echo(f"{len(rows)} points of {name} ({len(done)} values) in {out_dir}: sweep.csv, {name}.png, json/, "
               f"bd_rates.md, meta.json")
    click.echo((out_dir / "bd_rates.md").read_text(encoding="utf-8").split("\n\n", 2)[-1], nl=False)


def _load(image: Path, crop_size: tuple[int, int] | None, max_pixels: int | None):
    """The pixels to train on (RGB, cropped) and their name in the CSV."""
    from PIL import Image

    from shc.bench import sweep as sw
    from shc.images import ImageInputError, load_image

    read_limit = max(Image.MAX_IMAGE_PIXELS or 0, max_pixels or 0) or None
    try:
        source = load_image(str(image), alpha=False, strip=True, max_pixels=read_limit)
    except ImageInputError as error:
        raise BadInputError(str(error)) from None
    pixels = source.pixels  # RGB: alpha=False drops an alpha channel
    height, width = pixels.shape[:2]
    try:
        if crop_size is not None:
            if max_pixels is not None and crop_size[0] * crop_size[1] > max_pixels:
                msg = f"--crop {crop_size[0]}x{crop_size[1]} has more than --max-pixels {max_pixels} pixels"
                raise sw.SweepError(msg)
            pixels = sw.centre_crop(pixels, *crop_size)
        elif max_pixels is not None:
            pixels = sw.centre_crop(pixels, *sw.crop_for_pixels(width, height, max_pixels))
    except sw.SweepError as error:
        raise BadInputError(str(error)) from None
    crop_h, crop_w = pixels.shape[:2]
    label = image.stem if (crop_w, crop_h) == (width, height) else f"{image.stem} centre {crop_w}x{crop_h}"
    return np.ascontiguousarray(pixels), label

