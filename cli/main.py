"""The ``shc`` command: encode, decode, info, inspect, tiles, serve, bench, sweep — each in its own module, imported
only when that command runs (``shc decode`` never imports the encoder's or the benchmark's modules).

Exit codes: 0 success, 1 usage error (bad option, existing output without --force), 2 bad input
(unreadable image, malformed .shc file; in a batch: some file failed), 130 interrupted. Errors are one
line on stderr, no traceback.
"""

from __future__ import annotations

import importlib

import click

from shc.cli.common import EXIT_USAGE

__all__ = ["COMMANDS", "cli", "main"]

COMMANDS = {
    "encode": ("shc.cli.encode_cmd", "encode"),
    "decode": ("shc.cli.decode_cmd", "decode"),
    "info": ("shc.cli.info_cmd", "info"),
    "inspect": ("shc.cli.inspect_cmd", "inspect"),
    "tiles": ("shc.cli.tiles_cmd", "tiles"),
    "serve": ("shc.cli.serve_cmd", "serve"),
    "bench": ("shc.cli.bench", "bench"),
    "sweep": ("shc.cli.sweep_cmd", "sweep"),
}
"""Subcommand name -> (module, attribute): loaded on first use, so each command pays only for its imports."""


class _Group(click.Group):
    """A click group whose usage errors exit with 1 (click's default is 2, which we keep for bad input),
    and whose commands are imported when they are looked up (:data:`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attribute)

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
    shc inspect photo.shc -o levels.png        # bits and feature map of every grid level
    shc tiles big.shc -o big/                  # Deep Zoom pyramid + offline viewer (big/index.html)
    shc serve big.shc                          # the same viewer over HTTP, tiles rendered on request
    shc encode *.png --out-dir shc/            # many files in one process (--json, --skip-existing)
    """


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="shc")


if __name__ == "__main__":  # pragma: no cover
    main()
