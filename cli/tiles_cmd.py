"""``shc tiles``: a Deep Zoom pyramid and an offline viewer page of a .shc file (no torch)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import click

from shc.cli.common import BadInputError, UsageError, read_input
from shc.format.errors import ShcFormatError

__all__ = ["tile_options", "tiles"]

_TILE_OPTIONS = [
    click.option("--tile-size", type=click.IntRange(16, 4096), default=254, show_default=True,
                 help="Tile side in pixels."),
    click.option("--overlap", type=click.IntRange(0, 16), default=1, show_default=True,
                 help="Pixels shared by neighbours."),
    click.option("--format", "fmt", type=click.Choice(["jpg", "png"]), default=None,
                 help="Tile format [default: png for images with alpha, else jpg]."),
    click.option("--quality", type=click.IntRange(1, 100), default=90, show_default=True,
                 help="JPEG tile quality."),
]


def tile_options(command):
    """The pyramid's options, ``tile_size``, ``overlap``, ``fmt`` and ``quality`` (``shc tiles`` and
    ``shc serve``)."""
    for option in reversed(_TILE_OPTIONS):
        command = option(command)
    return command


@click.command()
@click.argument("input_path", metavar="IN")
@click.option("-o", "--output", required=True, metavar="DIR",
              help="Folder to create (index.html, image.dzi, tiles).")
@tile_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--force", "-f", is_flag=True, help="Replace DIR if it exists.")
def tiles(input_path, output, tile_size, overlap, fmt, quality, as_json, force) -> None:
    """Write a Deep Zoom (DZI) pyramid of the .shc file IN, every level rendered natively from the grid
    (not downsampled), with an index.html that shows it with OpenSeadragon (copied in: works offline).

    \b
    shc tiles big.shc -o big/      # then open big/index.html in a browser
    """
    from shc.deepzoom import write_deep_zoom

    target = Path(output)
    if target.exists() and not force:
        msg = f"{output} exists; use --force to replace it"
        raise UsageError(msg)
    if not (target.parent if str(target.parent) else Path(".")).is_dir():
        msg = f"{target.parent}: no such directory"
        raise UsageError(msg)
    data = read_input(input_path)
    # built in a sibling folder and renamed at the end: an error or Ctrl-C leaves no half pyramid
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else "."))
    try:
        summary = write_deep_zoom(data, work, tile_size=tile_size, overlap=overlap, fmt=fmt, quality=quality,
                                  title=Path(input_path).name)
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    except ShcFormatError as error:
        raise BadInputError(f"{input_path}: {error}") from None
    except ValueError as error:
        raise UsageError(str(error)) from None
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    summary["output"] = output
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"{output}: {summary['levels']} levels, {summary['tiles']} {summary['format']} tiles of "
                   f"{tile_size} px; open {target / 'index.html'}")
