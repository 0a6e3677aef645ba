"""``shc serve``: a Deep Zoom viewer for one .shc file over HTTP, tiles rendered on request (no torch)."""

from __future__ import annotations

import signal
import threading

import click

from shc.cli.common import BadInputError, UsageError, check_input
from shc.cli.tiles_cmd import tile_options
from shc.format.errors import ShcFormatError

__all__ = ["serve"]


@click.command()
@click.argument("input_path", metavar="FILE")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface, visible to the network).")
@tile_options
@click.option("--verbose", "-v", is_flag=True, help="Log every request (status, bytes, milliseconds) to stderr.")
def serve(input_path, port, host, tile_size, overlap, fmt, quality, verbose) -> None:
    """Serve a Deep Zoom viewer (OpenSeadragon) for the .shc file FILE over HTTP, rendering each tile from
    the grid only when the viewer asks for it (nothing is written to disk). Prints the URL; Ctrl-C stops.

    \b
    shc serve big.shc                  # then open http://127.0.0.1:8000/
    shc serve big.shc --port 0         # a free port (the URL says which)

    The tiles are the ones `shc tiles` would write, byte for byte.
    """
    from shc.serve import TileRenderer, TileServer

    check_input(input_path)
    try:
        renderer = TileRenderer(input_path)
    except ShcFormatError as error:
        raise BadInputError(f"{input_path}: {error}") from None
    except OSError as error:
        raise BadInputError(f"{input_path}: {error.strerror or error}") from None
    try:
        server = TileServer((host, port), renderer, tile_size=tile_size, overlap=overlap, fmt=fmt,
                            quality=quality, title=click.format_filename(input_path, shorten=True), log=verbose)
    except ValueError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        hint = "; --port 0 picks a free one" if port else ""
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}{hint}") from None
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:  # `kill PID` stops the server as Ctrl-C does (a script's background job ignores SIGINT)
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        # a blocked signal mask is inherited from whoever started us (a test runner, a job system): unblock
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    # the server runs in a thread of its own and the main thread only waits, so a signal never lands inside
    # the server's loop (or a render): it ends the wait, and shutdown() stops the loop between requests
    worker = threading.Thread(target=server.serve_forever, name="shc-serve", daemon=True)
    worker.start()
    try:
        click.echo(f"Serving {input_path} ({renderer.width}x{renderer.height}, {server.format} tiles) at "
                   f"{server.url} (Ctrl-C stops)")
        while worker.is_alive():
            worker.join(0.5)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.shutdown()
        server.server_close()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
