"""``shc inspect``: what each grid level holds and costs.

Prints the bits each level's latents cost (under the file's own coding tables) and, with ``-o``, writes one
PNG montage of every level's feature map (SHACIRA appendix §4) captioned with those bits. Registered in
:mod:`shc.cli.main` with ``cli.add_command(inspect)``.
"""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import click

from shc.cli.common import BadInputError, read_input, refuse_existing, write_output
from shc.format.errors import ShcFormatError

__all__ = ["inspect"]

DEFAULT_TILE = 256
"""Default long side of a montage tile (the same as :data:`shc.format.inspect.DEFAULT_TILE`, which is not
imported at start-up so that ``shc --help`` stays fast)."""


@click.command()
@click.argument("input_path", metavar="IN")
@click.option("-o", "--output", default=None,
              help="Write the montage of the levels' feature maps to this PNG (- for stdout; the table then goes "
                   "to stderr).")
@click.option("--tile", type=click.IntRange(16, 1024), default=DEFAULT_TILE, show_default=True,
              help="Long side of each level's tile in pixels (the grid is rendered at that size, whatever the "
                   "image's; memory grows with its square).")
@click.option("--columns", type=click.IntRange(min=1), default=None,
              help="Tiles per montage row [default: about the square root of the number of levels].")
@click.option("--json", "as_json", is_flag=True, help="Print the per-level bits as one JSON object.")
@click.option("--force", "-f", is_flag=True, help="Overwrite OUTPUT if it exists.")
def inspect(input_path, output, tile, columns, as_json, force) -> None:
    """Show the bits each grid level of the .shc file IN costs, and draw every level's feature map.

    Bits are the ideal range-coder cost of each level's latents under the file's coding tables
    (-log2 of each latent's probability; the LATN section is a few bytes more), or 16 per latent for
    a float16 (--no-entropy) file. The montage shows level 0 (coarsest) to the finest, each tile
    stretched to its own min..max: one feature per level as gray, more as R, G, B of the first three.
    """
    from shc.format.container import read_file
    from shc.format.entropy import file_latents
    from shc.format.inspect import latent_payload_bytes, level_stats, montage

    if output is not None:
        refuse_existing(output, force)
    data = read_input(input_path)
    try:
        parsed = read_file(data)
        latents = file_latents(parsed)
    except ShcFormatError as error:
        raise BadInputError(f"{input_path}: {error}") from None
    header = parsed.header
    stats = level_stats(parsed, latents)
    png = None
    if output is not None:
        name = "stdin" if input_path == "-" else Path(input_path).name
        image = montage(parsed, latents, tile=tile, columns=columns, num_bytes=len(data), name=name)
        buffer = BytesIO()
        image.save(buffer, format="PNG", optimize=False)
        png = buffer.getvalue()
    total_bits = sum(s.bits for s in stats)
    report = {
        "file": input_path,
        "output": output,
        "width": header.width,
        "height": header.height,
        "bytes": len(data),
        "bpp": round(len(data) * 8 / (header.width * header.height), 5),
        "latent_coding": "range-coded" if header.range_coded else "float16",
        "latent_bits": round(total_bits, 3),
        "latn_payload_bytes": latent_payload_bytes(parsed),
        "levels": [
            {"level": s.index, "nx": s.nx, "ny": s.ny, "storage": "dense" if s.dense else "hashed",
             "rows": s.rows, "latents": s.num_latents, "bits": round(s.bits, 3), "share": round(s.share, 5)}
            for s in stats
        ],
    }
    to_stderr = output == "-"  # stdout carries the PNG
    if png is not None:
        write_output(output, png, force)
    if as_json:
        click.echo(json.dumps(report), err=to_stderr)
        return

    def echo(line: str) -> None:
        click.echo(line, err=to_stderr)

    echo(f"{input_path}: {header.width}x{header.height}, {len(data)} bytes, {report['bpp']:.4f} bpp; "
         f"{report['latent_coding']} latents: {total_bits:.1f} bits ({total_bits / 8:.1f} bytes), "
         f"LATN payload {report['latn_payload_bytes']} bytes")
    echo(f"{'level':>5}  {'cells':>9}  {'storage':7}  {'latents':>8}  {'bits':>10}  {'%':>6}")
    for s in stats:
        echo(f"{s.index:5d}  {f'{s.nx}x{s.ny}':>9}  {'dense' if s.dense else 'hashed':7}  {s.num_latents:8d}  "
             f"{s.bits:10.1f}  {100.0 * s.share:6.1f}")
    echo(f"{'total':>5}  {'':9}  {'':7}  {header.total_latents:8d}  {total_bits:10.1f}  "
         f"{100.0 if total_bits > 0 else 0.0:6.1f}")
