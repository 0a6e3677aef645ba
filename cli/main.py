"""The ``shc`` command: encode, decode, info (and bench).

Exit codes: 0 success, 1 usage error (bad option, existing output without --force), 2 bad input
(unreadable image, malformed .shc file), 130 interrupted. Errors are one line on stderr, no traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import sys
import threading
from io import BytesIO
from pathlib import Path

import click

from shc.cli.bench import bench
from shc.cli.common import EXIT_USAGE, BadInputError, UsageError, check_input, read_input, write_output
from shc.codec.presets import DEFAULT_QUALITY, PRESETS, QUALITIES  # no torch
from shc.format.constants import DEFAULT_MAX_OUTPUT_PIXELS, INTERPOLATION_BILINEAR, INTERPOLATION_BSPLINE
from shc.format.errors import ShcFormatError
from shc.images import ImageInputError

__all__ = ["cli", "main"]

INTERPOLATIONS = {"bspline": INTERPOLATION_BSPLINE, "bilinear": INTERPOLATION_BILINEAR}
"""``--interpolation`` names of the HEAD ``interpolation`` values (also how reports name them)."""
INTERPOLATION_NAMES = {value: name for name, value in INTERPOLATIONS.items()}



class _Group(click.Group):
    """A click group whose usage errors exit with 1 (click's default is 2, which we keep for bad input)."""

    def make_context(self, *args, **kwargs):  # type: ignore[override]
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:
            error.exit_code = EXIT_USAGE
            raise

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            error.exit_code = EXIT_USAGE
            raise
        except KeyboardInterrupt:
            click.echo("Error: interrupted; no output was written", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shc")
def cli() -> None:
    """shc: a neural image codec (SHACIRA hash-grid implicit neural representation).

    \b
    shc encode photo.png -o photo.shc          # overfit a small network to the photo
    shc decode photo.shc -o photo.png          # decode at native size (no GPU, no torch)
    shc decode photo.shc --scale 2 -o big.png  # ... or at any resolution
    shc info photo.shc                         # header and bits per section
    """


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        msg = f"--size must look like 1536x1024, got {text!r}"
        raise UsageError(msg) from None
    if width < 1 or height < 1:
        msg = f"--size must be positive, got {text!r}"
        raise UsageError(msg)
    return width, height


def _check_device(device: str) -> None:
    """Refuse a torch device string that cannot be used here, as a usage error (not a traceback later)."""
    if device == "cpu":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        msg = f"--device {device!r} is not a torch device (use cpu, cuda, cuda:1, mps ...)"
        raise UsageError(msg) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            msg = f"--device {device} requested but CUDA is not available"
            raise UsageError(msg)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            msg = f"--device {device} requested but only {torch.cuda.device_count()} CUDA device(s) are present"
            raise UsageError(msg)
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            msg = f"--device {device} requested but MPS is not available"
            raise UsageError(msg)
    elif dev.type != "cpu":
        msg = f"--device {device}: only cpu, cuda and mps are supported"
        raise UsageError(msg)


class _Progress:
    """tqdm bar for the encoder's per-step callback: step, last hard-scored PSNR and bpp, ETA."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="encode", unit="step", file=sys.stderr, disable=not enabled, leave=False)
        self.interrupted = False

    def __call__(self, step: int, scored, train_bpp: float) -> None:
        if self.interrupted:  # Ctrl-C seen during the step: stop here, in plain Python, between steps
            raise KeyboardInterrupt
        if scored is not None:
            self.bar.set_postfix(psnr=f"{scored.psnr_db:.2f}dB", bpp=f"{scored.bpp:.3f}", refresh=False)
        self.bar.update(step - self.bar.n)

    def close(self) -> None:
        self.bar.close()

    @contextlib.contextmanager
    def deferring_interrupts(self):
        """While training, Ctrl-C only sets a flag that the next step's callback turns into
        KeyboardInterrupt (a second Ctrl-C interrupts at once): an interrupt raised inside torch's
        autograd can leave the process hanging instead of exiting."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


@cli.command()
@click.argument("input_path", metavar="IN")
@click.option("-o", "--output", required=True, help="Output .shc file, or - for stdout.")
@click.option("--preset", type=click.Choice([p.name for p in PRESETS]), default="default", show_default=True,
              help="; ".join(f"{p.name}: {p.summary}" for p in PRESETS) + ".")
@click.option("--quality", "-q", type=click.IntRange(QUALITIES[0].level, QUALITIES[-1].level), default=None,
              help=f"{QUALITIES[0].level} (smallest file) .. {QUALITIES[-1].level} (best picture). Picks hash-table "
                   f"size, finest grid level and rate weight. [default: {DEFAULT_QUALITY}]")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Override the preset's training steps.")
@click.option("--device", default="cpu", show_default=True, help="Torch device for training: cpu, cuda, cuda:1 ...")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Random seed (same seed, same file on a device).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the report as one JSON object (psnr_db is null when the decoded image is exact).")
@click.option("--force", "-f", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when stderr is a terminal].")
@click.option("--no-entropy", is_flag=True,
              help="Baseline for comparisons: store the grid as raw float16 latents, without SHACIRA's "
                   "quantization and entropy coding (files are many times larger).")
@click.option("--interpolation", type=click.Choice(list(INTERPOLATIONS)), default=None,
              help="How each grid level is blended: the smooth cubic B-spline (default presets) or bilinear, "
                   "as in the paper (the paper preset) [default: the preset's].")
def encode(input_path, output, preset, quality, steps, device, seed, as_json, force, progress, no_entropy,
           interpolation) -> None:
    """Encode the image IN (PNG, JPEG, ...; - for stdin) to a .shc file.

    The encoder trains a small network on the image, writes the file, then decodes that file and
    reports what you will get: bytes, bits per pixel from the file size, and PSNR of the decoded
    8-bit image against the input.
    """
    from shc.codec.presets import settings_for
    from shc.images import load_rgb

    if output != "-" and Path(output).exists() and not force:
        msg = f"{output} exists; use --force to overwrite it"
        raise UsageError(msg)
    try:
        settings = settings_for(preset, quality, steps, entropy_coding=not no_entropy)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if interpolation is not None:
        settings = dataclasses.replace(settings, interpolation=INTERPOLATIONS[interpolation])
    from shc.cli.encoder import encode_image  # without torch: one line naming shc[encode], exit 2

    _check_device(device)
    try:
        if input_path == "-":
            source = read_input(input_path)
        else:
            check_input(input_path, max_bytes=1 << 31)  # existence, directory and size, without reading it
            source = input_path
        rgb = load_rgb(source)
    except ImageInputError as error:
        raise BadInputError(str(error)) from None

    bar = _Progress(settings.steps, sys.stderr.isatty() if progress is None else progress)
    try:
        with bar.deferring_interrupts():
            result = encode_image(rgb, settings=settings, device=device, seed=seed, progress=bar)
        if bar.interrupted:  # Ctrl-C after the last step: still no output
            raise KeyboardInterrupt
    finally:
        bar.close()
    write_output(output, result.data, force)
    report = {
        "input": input_path,
        "output": output,
        "width": result.width,
        "height": result.height,
        "preset": preset,
        "quality": quality if quality is not None else DEFAULT_QUALITY,
        "steps": settings.steps,
        "entropy_coding": settings.entropy_coding,
        "interpolation": INTERPOLATION_NAMES[settings.interpolation],
        "device": device,
        "bytes": result.num_bytes,
        "bpp": round(result.bpp, 5),
        # JSON has no infinity: a lossless decode (PSNR = inf) is reported as null.
        "psnr_db": round(result.psnr_db, 3) if math.isfinite(result.psnr_db) else None,
        "encode_seconds": round(result.encode_seconds, 2),
    }
    stream_is_data = output == "-"
    if as_json:
        click.echo(json.dumps(report), err=stream_is_data)
    else:
        click.echo(
            f"{output}: {result.num_bytes} bytes, {result.bpp:.4f} bpp, PSNR {result.psnr_db:.2f} dB "
            f"({result.width}x{result.height}, {preset} q{report['quality']}, {settings.steps} steps, "
            f"{result.encode_seconds:.1f} s on {device})",
            err=stream_is_data,
        )


@cli.command()
@click.argument("input_path", metavar="IN")
@click.option("-o", "--output", required=True, help="Output image (PNG unless the extension says otherwise), or - for PNG on stdout.")
@click.option("--scale", type=float, default=None, help="Render at SCALE times the native size (any positive number).")
@click.option("--size", default=None, metavar="WxH", help="Render at exactly W x H pixels (aspect ratio is yours).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_OUTPUT_PIXELS, show_default=True,
              help="Refuse to render more pixels than this (decompression-bomb guard).")
@click.option("--png-level", type=click.IntRange(0, 9), default=1, show_default=True,
              help="zlib level of PNG output: 1 writes fastest, 9 smallest (the pixels are the same).")
@click.option("--force", "-f", is_flag=True, help="Overwrite OUTPUT if it exists.")
def decode(input_path, output, scale, size, max_pixels, png_level, force) -> None:
    """Decode the .shc file IN (- for stdin) to an 8-bit RGB image, at any resolution."""
    from PIL import Image

    from shc.format.decoder import decode_bytes

    if scale is not None and size is not None:
        msg = "give --scale or --size, not both"
        raise UsageError(msg)
    if scale is not None and not (scale > 0 and scale < float("inf")):
        msg = f"--scale must be a positive number, got {scale}"
        raise UsageError(msg)
    if output != "-" and Path(output).exists() and not force:
        msg = f"{output} exists; use --force to overwrite it"
        raise UsageError(msg)
    data = read_input(input_path)
    try:
        pixels = decode_bytes(data, scale=scale, size=_parse_size(size), max_pixels=max_pixels)
    except ShcFormatError as error:
        raise BadInputError(f"{input_path}: {error}") from None
    buffer = BytesIO()
    fmt = "PNG" if output == "-" else Image.registered_extensions().get(Path(output).suffix.lower(), "PNG")
    options = {"compress_level": png_level} if fmt == "PNG" else {}
    try:
        Image.fromarray(pixels).save(buffer, format=fmt, **options)
    except (KeyError, ValueError, OSError) as error:
        raise UsageError(f"cannot write {output}: {error}") from None
    write_output(output, buffer.getvalue(), force)


@cli.command()
@click.argument("input_path", metavar="IN")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(input_path, as_json) -> None:
    """Show the header of the .shc file IN and the bits spent on each section."""
    from shc.format.container import read_file

    data = read_input(input_path)
    try:
        parsed = read_file(data)
    except ShcFormatError as error:
        raise BadInputError(f"{input_path}: {error}") from None
    header, cfg = parsed.header, parsed.header.config
    pixels = header.width * header.height
    sections = {
        name: {"bytes": num, "bits": num * 8, "bpp": round(num * 8 / pixels, 5)}
        for name, num in parsed.section_bytes.items()
    }
    report = {
        "file": input_path,
        "format_version": data[4],
        "width": header.width,
        "height": header.height,
        "bytes": len(data),
        "bpp": round(len(data) * 8 / pixels, 5),
        "config": {
            "num_levels": cfg.num_levels,
            "log2_hashmap_size": cfg.log2_hashmap_size,
            "latent_dim": cfg.latent_dim,
            "feat_dim": cfg.feat_dim,
            "mlp_width": cfg.mlp_width,
            "mlp_depth": cfg.mlp_depth,
            "num_groups": cfg.num_groups,
        },
        "level_cells": [list(c) for c in header.level_cells],
        "num_latents": header.total_latents,
        "latent_coding": "range-coded" if header.range_coded else "float16",
        "tables": [{"min_symbol": t.min_symbol, "num_symbols": len(t.counts)} for t in parsed.tables],
        "sections": sections,
    }
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"{input_path}: .shc version {report['format_version']}, {header.width}x{header.height}, "
               f"{len(data)} bytes, {report['bpp']:.4f} bpp")
    click.echo(f"  grid: {cfg.num_levels} levels, table 2^{cfg.log2_hashmap_size}, latent dim {cfg.latent_dim}, "
               f"{header.total_latents} {report['latent_coding']} latents; features {cfg.feat_dim}/level; "
               f"MLP {cfg.mlp_depth} x {cfg.mlp_width}; {cfg.num_groups} probability group(s); "
               f"{'cubic B-spline' if cfg.interpolation == INTERPOLATION_BSPLINE else 'bilinear'} interpolation")
    click.echo(f"  levels (cells): {' '.join(f'{nx}x{ny}' for nx, ny in header.level_cells)}")
    for name, sec in sections.items():
        share = 100.0 * sec["bytes"] / len(data)
        click.echo(f"  {name:8s} {sec['bytes']:9d} bytes  {sec['bpp']:.4f} bpp  {share:5.1f} %")


cli.add_command(bench)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="shc")


if __name__ == "__main__":  # pragma: no cover
    main()
