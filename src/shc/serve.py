"""``shc serve``: a Deep Zoom viewer for one ``.shc`` file over HTTP, each tile rendered when it is requested.

Where :mod:`shc.deepzoom` (``shc tiles``) renders the whole pyramid up front, the server renders a tile the
first time a viewer asks for it (and keeps the last :data:`CACHE_TILES` encoded tiles), so the first screen
costs the tiles on it, not the pyramid. Routes (anything else is a 404, and a failure is a one-line 500,
never a traceback):

- ``/``: the OpenSeadragon page, its tile source the URL ``image.dzi``;
- ``/image.dzi``: the Deep Zoom XML (tile size, overlap, format, size);
- ``/image_files/<level>/<column>_<row>.<jpg|png>``: one tile, the same bytes ``shc tiles`` would write;
- ``/openseadragon/...``: the vendored viewer's files (only those: the path is looked up, never joined).

All access to the file goes through :class:`TileRenderer`; the rest of this module knows only its size,
channels, ICC profile and ``render``.
"""

from __future__ import annotations

import mimetypes
import re
import socket
import sys
import threading
import time
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from shc.deepzoom import (
    VIEWER, deep_zoom_levels, dzi_xml, encode_tile, tile_box, tile_format, tile_grid, viewer_page,
)
from shc.format.reader import RegionRenderer, ShcReader, preview_levels

__all__ = ["CACHE_TILES", "RENDER_THREADS", "TileRenderer", "TileServer", "make_server"]

CACHE_TILES = 256
"""Encoded tiles kept in memory (least recently used out first): a few screens of 254-pixel tiles."""
RENDER_THREADS = 2
"""Tiles rendered at the same time (more requests wait): two, for this project's 2-core machines. A render
spends ~90 % of its time in numpy calls that release the GIL (the MLP's matrix products, the grid gathers),
so a second one can use a free core; with no free core the second costs ~2 % (measured:
results/deepzoom/README.md)."""


class TileRenderer:
    """Everything the server reads from the file: its size, channels and ICC profile, and any region of the
    image rendered at any level's size. It reads the file's front and its whole (coarse) levels on opening,
    then each chunk of a large level the first time a tile needs it (:class:`shc.format.reader.RegionRenderer`):
    the first screen of a gigapixel file costs what its tiles cost. ``render`` may be called from several
    threads.

    Raises :class:`shc.ShcFormatError` for a malformed file, OSError for an unreadable one.
    """

    def __init__(self, path: str | Path) -> None:
        self._regions = RegionRenderer(ShcReader(Path(path)))
        header = self._regions.header
        self.width: int = header.width
        self.height: int = header.height
        self.channels: int = header.config.channels
        self.icc_profile: bytes | None = self._regions.reader.icc_profile

    def render(self, level_width: int, level_height: int, box: tuple[int, int, int, int]) -> np.ndarray:
        """uint8 ``(bottom - top, right - left, channels)``: the region ``box = (left, top, right, bottom)`` of
        the image rendered at ``level_width x level_height``, from the prefix of grid levels that size needs
        (:func:`shc.format.reader.preview_levels`, as ``shc tiles``): a zoomed-out view reads no fine chunk."""
        levels = preview_levels(self._regions.header, level_width, level_height)
        return self._regions.render(level_width, level_height, box, levels)


class _TileCache:
    """The last ``capacity`` encoded tiles, least recently used out first; safe across threads."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._tiles: OrderedDict[tuple[int, int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int, int]) -> bytes | None:
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
            return tile

    def put(self, key: tuple[int, int, int], tile: bytes) -> None:
        with self._lock:
            self._tiles[key] = tile
            self._tiles.move_to_end(key)
            while len(self._tiles) > self.capacity:
                self._tiles.popitem(last=False)


_TILE_PATH = re.compile(r"/image_files/(0|[1-9][0-9]{0,2})/(0|[1-9][0-9]{0,8})_(0|[1-9][0-9]{0,8})\.(jpg|png)")
"""A tile's URL path; numbers without leading zeros, so that a tile has one URL (and one cache entry)."""


class TileServer(ThreadingHTTPServer):
    """An HTTP server for one renderer's Deep Zoom pyramid (the routes are in the module docstring)."""

    daemon_threads = True  # Ctrl-C does not wait for a browser's open connections
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], renderer: TileRenderer, *, tile_size: int = 254, overlap: int = 1,
        fmt: str | None = None, quality: int = 90, title: str = "shc", cache_tiles: int = CACHE_TILES,
        render_threads: int = RENDER_THREADS, log: bool = False,
    ) -> None:
        self.renderer = renderer
        self.tile_size, self.overlap, self.quality, self.log = tile_size, overlap, quality, log
        self.format = tile_format(renderer.channels, fmt)
        self.levels = deep_zoom_levels(renderer.width, renderer.height)
        self.cache = _TileCache(cache_tiles)
        self.render_slots = threading.BoundedSemaphore(render_threads)
        self.pages = {
            "/": ("text/html; charset=utf-8", viewer_page("image.dzi", title).encode()),
            "/image.dzi": ("application/xml", dzi_xml(renderer.width, renderer.height, tile_size, overlap,
                                                      self.format).encode()),
        }
        self.viewer_files = {f"/openseadragon/{p.relative_to(VIEWER).as_posix()}": p
                             for p in VIEWER.rglob("*") if p.is_file()}
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def handle_error(self, request: object, client_address: tuple) -> None:
        """A browser that drops a connection (it often cancels tiles it no longer needs) is not an error;
        anything else is one line on stderr, not socketserver's traceback."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            sys.stderr.write(f"shc serve: {client_address[0]}: {type(error).__name__}: {error}\n")

    def tile(self, level_index: int, column: int, row: int) -> bytes | None:
        """The encoded tile, rendered now or from the cache; None when the pyramid has no such tile."""
        if level_index >= len(self.levels):
            return None
        level = self.levels[level_index]
        columns, rows = tile_grid(level, self.tile_size)
        if column >= columns or row >= rows:
            return None
        key = (level_index, column, row)
        tile = self.cache.get(key)
        if tile is None:
            box = tile_box(level, column, row, self.tile_size, self.overlap)
            with self.render_slots:
                pixels = self.renderer.render(level.width, level.height, box)
            tile = encode_tile(pixels, self.format, self.quality, self.renderer.icc_profile)
            self.cache.put(key, tile)
        return tile


class _Handler(BaseHTTPRequestHandler):
    server: TileServer
    server_version = "shc-serve"
    protocol_version = "HTTP/1.1"  # keep-alive: a viewer fetches many tiles over a few connections
    timeout = 60

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        start = time.perf_counter()
        try:
            status, content_type, body = self._route(urlsplit(self.path).path)
        except Exception as error:  # noqa: BLE001 - one line in the log, a plain 500 to the client
            sys.stderr.write(f"shc serve: {self.path}: {type(error).__name__}: {error}\n")
            status, content_type, body = HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain", b"internal error\n"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)
        if self.server.log:
            sys.stderr.write(f"{self.command} {self.path} {int(status)} {len(body)} B "
                             f"{(time.perf_counter() - start) * 1000:.0f} ms\n")

    def _route(self, path: str) -> tuple[int, str, bytes]:
        server = self.server
        if path in server.pages:
            return (HTTPStatus.OK, *server.pages[path])
        if path.startswith("/openseadragon/"):
            file = server.viewer_files.get(unquote(path))
            if file is not None:
                content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                return HTTPStatus.OK, content_type, file.read_bytes()
        match = _TILE_PATH.fullmatch(path)
        if match and match.group(4) == server.format:
            tile = server.tile(int(match.group(1)), int(match.group(2)), int(match.group(3)))
            if tile is not None:
                return HTTPStatus.OK, f"image/{'jpeg' if server.format == 'jpg' else 'png'}", tile
        return HTTPStatus.NOT_FOUND, "text/plain", b"not found\n"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        """Requests are logged by :meth:`do_GET` (with ``log``); http.server's own lines (a malformed request
        line, a timeout) go nowhere."""


def make_server(
    path: str | Path, host: str = "127.0.0.1", port: int = 8000, **options: object
) -> TileServer:
    """A :class:`TileServer` for the file at ``path``, bound (``port=0``: a free port; see ``.url``), not yet
    serving: call ``serve_forever()``. ``options``: :class:`TileServer`'s keywords."""
    return TileServer((host, port), TileRenderer(path), **options)  # type: ignore[arg-type]
