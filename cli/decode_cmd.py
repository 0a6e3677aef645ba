"""``shc decode``: .shc files to images at any resolution, with their colour profile and EXIF (no torch)."""

from __future__ import annotations

import time

import click

from shc.cli.batch import Job, plan_jobs, run_jobs
from shc.cli.common import (
    BadInputError,
    UsageError,
    check_input,
    image_format,
    limit_threads,
    open_output,
    read_input,
    refuse_existing,
    write_output,
)
from shc.format.constants import DEFAULT_MAX_OUTPUT_PIXELS
from shc.format.errors import ShcFormatError

__all__ = ["decode"]

OUTPUT_FORMATS = {"png": "PNG", "ppm": "PPM"}
"""``--format`` choices: the formats for ``-o -`` (a file's extension picks any format Pillow writes)."""


def _parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        msg = f"--crop must look like X,Y,W,H (e.g. 0,0,512,512), got {text!r}"
        raise UsageError(msg) from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        msg = f"--crop needs X, Y >= 0 and W, H >= 1, got {text!r}"
        raise UsageError(msg)
    return x, y, w, h


def _crop_box(region: tuple[int, int, int, int] | None, width: int, height: int,
              max_pixels: int | None) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) to render of a ``width x height`` output: all of it, or ``--crop``
    (which must lie inside it; the pixel limit then applies to the crop)."""
    if region is None:
        return 0, 0, width, height
    x, y, w, h = region
    if x + w > width or y + h > height:
        msg = f"--crop {x},{y},{w},{h} is not inside the {width}x{height} output"
        raise UsageError(msg)
    if max_pixels is not None and w * h > max_pixels:
        msg = f"--crop of {w * h} pixels exceeds the limit of {max_pixels} pixels (raise it with --max-pixels)"
        raise BadInputError(msg)
    return x, y, x + w, y + h


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


@click.command()
@click.argument("inputs", metavar="IN...", nargs=-1, required=True)
@click.option("-o", "--output", default=None,
              help="Output image (one input; its extension picks the format, PNG if unknown), or - for stdout.")
@click.option("--out-dir", default=None, metavar="DIR",
              help="Write each input's IN-stem.png (or --format) into DIR (created if missing).")
@click.option("--format", "fmt", type=click.Choice(list(OUTPUT_FORMATS)), default=None,
              help="Output format, whatever the extension; for -o - [default: from the extension, else png].")
@click.option("--scale", type=float, default=None, help="Render at SCALE times the native size (any positive number).")
@click.option("--size", default=None, metavar="WxH", help="Render at exactly W x H pixels (aspect ratio is yours).")
@click.option("--crop", "region", default=None, metavar="X,Y,W,H",
              help="Render only this region of the output (in output pixels, after --scale/--size): "
                   "the cost grows with the region, not the image.")
@click.option("--levels", type=click.IntRange(min=1), default=None, metavar="K",
              help="Render a level-of-detail preview from the first K grid levels only: reads just the file's "
                   "prefix (says how many bytes), and renders what a truncated download holds.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_OUTPUT_PIXELS, show_default=True,
              help="Refuse to render more pixels than this (decompression-bomb guard).")
@click.option("--png-level", type=click.IntRange(0, 9), default=1, show_default=True,
              help="zlib level of PNG output: 1 writes fastest, 9 smallest (the pixels are the same).")
@click.option("--background", default=None, metavar="COLOR",
              help="Flatten alpha over this colour (white, #808080 ...); needed for formats without alpha (PPM, JPEG).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Render with N threads (the pixels are the same for any N) [default: one per core, at most 4].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file (size, time).")
@click.option("--force", "-f", is_flag=True, help="Overwrite outputs that exist.")
@click.option("--skip-existing", is_flag=True, help="Leave inputs whose output exists alone (resume a batch).")
@click.option("--quiet", is_flag=True, help="No report lines and no summary (errors still show).")
def decode(inputs, output, out_dir, fmt, scale, size, region, levels, max_pixels, png_level, background, threads, as_json,
           force, skip_existing, quiet) -> None:
    """Decode .shc files (- for stdin) to 8-bit images, at any resolution.

    The ICC colour profile and EXIF that the file carries are attached to the output (PNG: iCCP and
    eXIf); an image with alpha is written as RGBA.

    \b
    shc decode photo.shc -o photo.png
    shc decode photo.shc --scale 2 -o big.png
    shc decode big.shc --crop 4096,2048,1024,1024 -o detail.png
    shc decode big.shc --levels 6 --size 1024x768 -o preview.png
    shc decode *.shc --out-dir png/ --json
    shc decode photo.shc -o - --format ppm | display
    """
    if scale is not None and size is not None:
        raise UsageError("give --scale or --size, not both")
    if scale is not None and not (0 < scale < float("inf")):
        msg = f"--scale must be a positive number, got {scale}"
        raise UsageError(msg)
    wanted = _parse_size(size)
    region = _parse_crop(region)
    suffix = "." + (fmt or "png")
    jobs = plan_jobs(inputs, output, out_dir, suffix)
    single = output is not None
    if single and not skip_existing:
        refuse_existing(output, force)  # before the options are worked out and torch is imported
    flatten = None
    if background is not None:
        from shc.images import parse_background

        try:
            flatten = parse_background(background)
        except ValueError as error:
            raise UsageError(f"--background: {error}") from None
    limit_threads(threads)

    def work(job: Job) -> dict:
        from shc.format.decoder import output_size
        from shc.format.reader import ShcReader

        start = time.perf_counter()
        # a file is read where it lies (seeking to the latent segments a crop or a preview needs); stdin whole
        if job.source == "-":
            source = read_input(job.source)
        else:
            check_input(job.source)
            source = job.source
        try:
            with ShcReader(source) as reader:
                header = reader.header
                width, height = output_size(header, scale, wanted, None if region else max_pixels)
                box = _crop_box(region, width, height, max_pixels)
                if levels is not None and levels > header.config.num_levels:
                    msg = f"--levels {levels}: {job.source} has {header.config.num_levels} levels"
                    raise UsageError(msg)
                partial = region is not None or levels is not None
                synthesis = reader.synthesis(width, height, box if region else None, levels) if partial else reader.synthesis()
                synthesis.threads = threads
                bytes_read, file_bytes = reader.bytes_read, reader.size
        except OSError as error:
            raise BadInputError(f"{job.source}: {error.strerror or error}") from None
        except ShcFormatError as error:
            raise BadInputError(f"{job.source}: {error}") from None
        left, top, right, bottom = box
        out_format = OUTPUT_FORMATS[fmt] if fmt else image_format(job.output)
        channels = 3 if flatten is not None else header.config.channels
        icc, exif = reader.icc_profile, reader.exif
        if out_format == "PNG":  # streamed: one strip in memory, compressed while the next renders
            from shc.pngstream import write_png

            strips = (strip for _, strip in synthesis.render_strips(width, height, box))
            if flatten is not None and header.config.channels == 4:
                from shc.images import composite

                strips = (composite(strip, flatten) for strip in strips)
            with open_output(job.output, force) as handle:
                write_png(handle, strips, right - left, bottom - top, channels, icc_profile=icc, exif=exif,
                          level=png_level)
                size = handle.tell() if job.output != "-" else None
        else:
            from shc.format.decoder import DecodedImage
            from shc.images import save_image_bytes

            decoded = DecodedImage(synthesis.render(width, height, box), icc, exif)
            try:
                encoded = save_image_bytes(decoded, out_format, background=flatten)
            except ValueError as error:
                raise UsageError(f"cannot write {job.output}: {error}") from None
            write_output(job.output, encoded, force)
            size = len(encoded)
        return {
            "input": job.source,
            "output": job.output,
            "width": right - left,
            "height": bottom - top,
            "channels": channels,
            "format": out_format,
            "bytes": size,
            "icc_profile": icc is not None,
            "exif": exif is not None,
            "levels": header.config.num_levels if levels is None else levels,
            "bytes_read": bytes_read,
            "file_bytes": file_bytes,
            "seconds": round(time.perf_counter() - start, 4),
        }

    def describe(report: dict) -> str | None:
        if report["output"] == "-":
            return None
        line = f"{report['output']}: {report['width']}x{report['height']} {report['format']}, {report['seconds']:.2f} s"
        if levels is not None or region is not None:
            line += f", read {report['bytes_read']:,} of {report['file_bytes']:,} bytes ({report['levels']} levels)"
        return line

    # a single decode is silent, unless it read only part of the file: then it says how much
    run_jobs("decode", jobs, work, describe, as_json=as_json, quiet=quiet or (single and levels is None),
             skip_existing=skip_existing,
             force=force, single=single)
