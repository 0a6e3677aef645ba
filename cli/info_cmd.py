"""``shc info``: the header of .shc files and the bits spent on each section (no torch)."""

from __future__ import annotations

import json

import click

from shc.cli.common import EXIT_BAD_INPUT, BadInputError, read_input
from shc.format.constants import INTERPOLATION_BSPLINE
from shc.format.errors import ShcFormatError

__all__ = ["info"]


def file_report(input_path: str) -> dict:
    """What ``shc info`` says about one file; :class:`BadInputError` for a missing or malformed one."""
    from shc.format.container import read_file

    data = read_input(input_path)
    try:
        parsed = read_file(data)
    except ShcFormatError as error:
        raise BadInputError(f"{input_path}: {error}") from None
    header, cfg = parsed.header, parsed.header.config
    pixels = header.width * header.height
    return {
        "file": input_path,
        "format_version": data[4],
        "width": header.width,
        "height": header.height,
        "channels": cfg.channels,
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
            "context_width": cfg.context_width,
        },
        "context_levels": [level.index for level in header.layout.context_levels],
        "level_cells": [list(c) for c in header.level_cells],
        "segments": len(header.layout.segments),
        "chunked_levels": {str(level.index): level.chunking.count for level in header.layout.levels if level.chunking},
        "prefix_bytes": _prefix_bytes(parsed),
        "num_latents": header.total_latents,
        "latent_coding": "range-coded" if header.range_coded else "float16",
        "interpolation": "bspline" if cfg.interpolation == INTERPOLATION_BSPLINE else "bilinear",
        "icc_profile_bytes": len(parsed.icc_profile) if parsed.icc_profile else 0,
        "exif_bytes": len(parsed.exif) if parsed.exif else 0,
        "tables": [{"min_symbol": t.min_symbol, "num_symbols": len(t.counts)} for t in parsed.tables],
        "sections": {
            name: {"bytes": num, "bits": num * 8, "bpp": round(num * 8 / pixels, 5)}
            for name, num in parsed.section_bytes.items()
        },
    }


def _prefix_bytes(parsed) -> list[int]:
    """Bytes of the file up to the end of each level's segments: what ``--levels K`` reads (K = 1 .. L)."""
    layout = parsed.header.layout
    sizes = [values.nbytes for values in parsed.latent_segments]
    front = sum(parsed.section_bytes.values()) - sum(sizes)
    # segments are coarse to fine, so a prefix's segments are the first ones up to its last
    return [front + sum(sizes[: max(layout.segments_for_levels(count)) + 1])
            for count in range(1, len(layout.levels) + 1)]


def _echo_text(report: dict) -> None:
    cfg = report["config"]
    mode = "RGBA" if report["channels"] == 4 else "RGB"
    click.echo(f"{report['file']}: .shc version {report['format_version']}, {report['width']}x{report['height']} "
               f"{mode}, {report['bytes']} bytes, {report['bpp']:.4f} bpp")
    click.echo(f"  grid: {cfg['num_levels']} levels, table 2^{cfg['log2_hashmap_size']}, latent dim "
               f"{cfg['latent_dim']}, {report['num_latents']} {report['latent_coding']} latents; features "
               f"{cfg['feat_dim']}/level; MLP {cfg['mlp_depth']} x {cfg['mlp_width']}; {cfg['num_groups']} "
               f"probability group(s); "
               f"{'cubic B-spline' if report['interpolation'] == 'bspline' else 'bilinear'} interpolation")
    click.echo(f"  levels (cells): {' '.join(f'{nx}x{ny}' for nx, ny in report['level_cells'])}")
    chunked = ", ".join(f"level {k} in {n}" for k, n in report["chunked_levels"].items())
    click.echo(f"  latents in {report['segments']} segment(s){'; chunks: ' + chunked if chunked else ''}")
    click.echo(f"  bytes to render from the first K levels (--levels K): {' '.join(f'{b:,}' for b in report['prefix_bytes'])}")
    if report["context_levels"]:
        click.echo(f"  context network: {cfg['context_width']} hidden units, codes levels "
                   f"{', '.join(map(str, report['context_levels']))} (SPEC §5a)")
    if report["icc_profile_bytes"] or report["exif_bytes"]:
        click.echo(f"  metadata: ICC profile {report['icc_profile_bytes']} bytes, EXIF {report['exif_bytes']} bytes")
    for name, sec in report["sections"].items():
        share = 100.0 * sec["bytes"] / report["bytes"]
        click.echo(f"  {name:8s} {sec['bytes']:9d} bytes  {sec['bpp']:.4f} bpp  {share:5.1f} %")


@click.command()
@click.argument("inputs", metavar="IN...", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (one line) per file.")
def info(inputs, as_json) -> None:
    """Show the header of .shc files and the bits spent on each section.

    A file that cannot be read is reported on stderr and the others go on; the exit status is then 2.
    """
    failed = False
    for input_path in inputs:
        try:
            report = file_report(input_path)
        except BadInputError as error:
            if len(inputs) == 1:
                raise
            click.echo(f"Error: {error.format_message()}", err=True)
            failed = True
            continue
        if as_json:
            click.echo(json.dumps(report))
        else:
            _echo_text(report)
    if failed:
        raise click.exceptions.Exit(EXIT_BAD_INPUT)
