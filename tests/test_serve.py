"""``shc serve``: the page, the DZI XML and every tile over HTTP (each the bytes ``shc tiles`` writes), 404s
for what the pyramid does not hold, no way out of the viewer's folder, a one-line 500 when rendering fails,
the tile cache, the CLI's errors and its clean stop, and (slow) the page in headless Chromium."""

from __future__ import annotations

import http.client
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from shc.cli.main import cli
from shc.deepzoom import DZI_NAMESPACE, deep_zoom_levels, tile_boxes, write_deep_zoom
from shc.serve import TileRenderer, TileServer, _TileCache, make_server

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "parrot_128x96_q3.shc"
RGBA = DATA / "parrot_rgba_64x48_q3.shc"


@contextmanager
def running(server: TileServer) -> Iterator[TileServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def get(server: TileServer, path: str) -> tuple[int, str, bytes]:
    """Status, content type and body of ``GET path``, the path sent exactly as given (no normalization)."""
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def golden() -> Iterator[TileServer]:
    with running(make_server(GOLDEN, port=0)) as server:
        yield server


def test_page_points_at_the_dzi_and_its_scripts_are_served(golden):
    status, content_type, body = get(golden, "/")
    assert status == 200 and content_type.startswith("text/html")
    page = body.decode()
    assert 'tileSources: "image.dzi"' in page
    prefix = re.search(r'prefixUrl: "([^"]+)"', page).group(1)
    for src in [*re.findall(r'src="([^"]+)"', page), prefix + "home_rest.png"]:
        status, _, body = get(golden, "/" + src)
        assert status == 200 and body, src
    assert get(golden, "/openseadragon/openseadragon.min.js")[1] == "text/javascript"


def test_dzi_describes_the_file(golden):
    status, content_type, body = get(golden, "/image.dzi")
    assert status == 200 and content_type == "application/xml"
    root = ET.fromstring(body)
    assert root.tag == f"{{{DZI_NAMESPACE}}}Image"
    assert (root.get("Format"), root.get("Overlap"), root.get("TileSize")) == ("jpg", "1", "254")
    size = root.find(f"{{{DZI_NAMESPACE}}}Size")
    renderer = golden.renderer
    assert (int(size.get("Width")), int(size.get("Height"))) == (renderer.width, renderer.height) == (128, 96)
    assert get(golden, "/image.dzi?cache=1")[2] == body  # a query string is ignored


@pytest.mark.parametrize(("path", "fmt"), [(GOLDEN, "jpg"), (RGBA, "png"), (GOLDEN, "png")])
def test_every_tile_is_the_one_shc_tiles_writes(tmp_path, path, fmt):
    """Small tiles, so that levels have several: each served tile has its box's size, is byte for byte the
    file ``shc tiles`` writes (the same rendering, saved with the same settings) and, as PNG, is exactly the
    decoder's rendering of that region of that level."""
    write_deep_zoom(path.read_bytes(), tmp_path, tile_size=32, overlap=2, fmt=fmt)
    renderer = TileRenderer(path)
    with running(TileServer(("127.0.0.1", 0), renderer, tile_size=32, overlap=2, fmt=fmt)) as server:
        for level in deep_zoom_levels(renderer.width, renderer.height):
            native = renderer.render(level.width, level.height, (0, 0, level.width, level.height))
            for column, row, (left, top, right, bottom) in tile_boxes(level, 32, 2):
                name = f"image_files/{level.index}/{column}_{row}.{fmt}"
                status, content_type, body = get(server, "/" + name)
                assert status == 200 and content_type == ("image/jpeg" if fmt == "jpg" else "image/png"), name
                assert body == (tmp_path / name).read_bytes(), name
                with Image.open(BytesIO(body)) as tile:
                    assert tile.size == (right - left, bottom - top)
                    assert tile.mode == ("RGBA" if renderer.channels == 4 else "RGB")
                    if fmt == "png":
                        assert np.array_equal(np.asarray(tile), native[top:bottom, left:right]), name


@pytest.mark.parametrize("path", [
    "/image_files/8/0_0.jpg",    # no level 8 (128 x 96: levels 0..7)
    "/image_files/7/1_0.jpg",    # one 254-pixel tile per level
    "/image_files/7/0_1.jpg",
    "/image_files/7/0_0.png",    # not the pyramid's format
    "/image_files/7/00_0.jpg",   # one URL per tile: no leading zeros
    "/image_files/07/0_0.jpg",
    "/image_files/-1/0_0.jpg",
    "/image_files/7/0_0",
    "/image_files/7/0-0.jpg",
    "/image_files/7/",
    "/image_files/99999999999999999999/0_0.jpg",
    "/image_files/7/0_99999999999999999999.jpg",
    "/index.html/",
    "/image.dzi/",
    "/nothing",
    "/openseadragon/",
    "/openseadragon/images/",
    "/openseadragon/no-such-file.js",
])
def test_what_the_pyramid_does_not_hold_is_a_404(golden, path):
    status, content_type, body = get(golden, path)
    assert (status, content_type, body) == (404, "text/plain", b"not found\n")


@pytest.mark.parametrize("path", [
    "/openseadragon/../deepzoom.py",
    "/openseadragon/../../../../../../etc/passwd",
    "/openseadragon/%2e%2e/deepzoom.py",
    "/openseadragon/..%2fdeepzoom.py",
    "/openseadragon/images/../../serve.py",
    "/openseadragon/images/%2E%2E%2F%2E%2E%2Fserve.py",
    "/openseadragon//etc/passwd",
    "/openseadragon/%2Fetc%2Fpasswd",
    "/openseadragon/..\\deepzoom.py",
    "/../src/shc/serve.py",
    "//etc/passwd",
    "/openseadragon/./LICENSE.txt",
])
def test_no_path_leaves_the_viewer_folder(golden, path):
    status, _, body = get(golden, path)
    assert status == 404 and body == b"not found\n"
    assert get(golden, "/openseadragon/LICENSE.txt")[0] == 200  # the same file by its one plain name is served


def test_tiles_are_rendered_once_then_served_from_the_cache():
    renderer = TileRenderer(GOLDEN)
    calls = []
    render = renderer.render
    renderer.render = lambda *args: calls.append(args) or render(*args)  # type: ignore[method-assign]
    with running(TileServer(("127.0.0.1", 0), renderer, tile_size=32, cache_tiles=2)) as server:
        first = get(server, "/image_files/7/0_0.jpg")[2]
        assert get(server, "/image_files/7/0_0.jpg")[2] == first and len(calls) == 1
        get(server, "/image_files/7/1_0.jpg")
        get(server, "/image_files/7/2_0.jpg")  # the cache holds two: 0_0 is out
        assert get(server, "/image_files/7/0_0.jpg")[2] == first and len(calls) == 4
        assert calls[0] == (128, 96, (0, 0, 33, 33))


def test_cache_drops_the_least_recently_used():
    cache = _TileCache(2)
    cache.put((0, 0, 0), b"a")
    cache.put((0, 0, 1), b"b")
    assert cache.get((0, 0, 0)) == b"a"  # now the most recent
    cache.put((0, 0, 2), b"c")
    assert (cache.get((0, 0, 0)), cache.get((0, 0, 1)), cache.get((0, 0, 2))) == (b"a", None, b"c")


def test_parallel_requests_get_their_own_tiles(tmp_path):
    write_deep_zoom(GOLDEN.read_bytes(), tmp_path, tile_size=32, overlap=1)
    names = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "image_files").rglob("*.jpg"))
    with running(TileServer(("127.0.0.1", 0), TileRenderer(GOLDEN), tile_size=32, cache_tiles=4)) as server:
        with ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(lambda name: get(server, "/" + name)[2], names * 2))
    assert bodies == [(tmp_path / name).read_bytes() for name in names * 2]


def test_a_failing_render_is_a_one_line_500(capsys):
    class Broken(TileRenderer):
        def render(self, level_width, level_height, box):
            msg = "no pixels today"
            raise RuntimeError(msg)

    with running(TileServer(("127.0.0.1", 0), Broken(GOLDEN))) as server:
        status, content_type, body = get(server, "/image_files/7/0_0.jpg")
        assert (status, content_type, body) == (500, "text/plain", b"internal error\n")
        assert get(server, "/image.dzi")[0] == 200  # the server goes on
    log = capsys.readouterr().err
    assert log == "shc serve: /image_files/7/0_0.jpg: RuntimeError: no pixels today\n"


@pytest.mark.parametrize(("request_line", "status"), [
    (b"BREW /image.dzi HTTP/1.1", b"HTTP/1.1 501 "),
    # http.server answers a request line whose version it cannot read as HTTP/0.9: a page, no status line
    (b"GET /image.dzi HTTP/2.0", b"Error code: 505"),
    (b"NONSENSE", b"Error code: 400"),
])
def test_a_malformed_request_gets_an_error_not_a_traceback(golden, request_line, status):
    with socket.create_connection(golden.server_address[:2], timeout=10) as raw:
        raw.sendall(request_line + b"\r\nHost: x\r\n\r\n")
        answer = raw.recv(65536)
    assert status in answer, answer
    assert b"Traceback" not in answer


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.shc"
    bad.write_bytes(GOLDEN.read_bytes()[:50])
    result = invoke("serve", bad, "--port", "0")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {bad}: ") and len(result.stderr.strip().splitlines()) == 1
    result = invoke("serve", tmp_path / "missing.shc", "--port", "0")
    assert result.exit_code == 2 and "missing.shc" in result.stderr
    result = invoke("serve", RGBA, "--port", "0", "--format", "jpg")
    assert result.exit_code == 1 and "alpha" in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", GOLDEN, "--port", port)
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port 0" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "shc serve big.shc --port 0" in invoke("serve", "--help").output


# the CLI as a user runs it, in an environment without torch (the decode-only install)
NO_TORCH = "import sys; sys.modules['torch'] = None\nfrom shc.cli.main import main\nmain(sys.argv[1:])\n"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_the_url_serves_and_stops_cleanly(stop):
    process = subprocess.Popen([sys.executable, "-c", NO_TORCH, "serve", str(GOLDEN), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert url, line + process.stderr.read()
        connection = http.client.HTTPConnection("127.0.0.1", int(url.group(1)), timeout=30)
        connection.request("GET", "/image_files/7/0_0.jpg")
        response = connection.getresponse()
        assert response.status == 200 and Image.open(BytesIO(response.read())).size == (128, 96)
        connection.close()
        process.send_signal(stop)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert err == "stopped\n"


@pytest.mark.slow
def test_the_page_draws_in_headless_chromium(tmp_path):
    """scripts/serve_screenshot.sh: Chromium (from npm) loads the page from `shc serve`, the viewer draws every
    tile of its first screen, and the screenshot is a 1024 x 768 picture, not a blank page."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: the Chromium check needs node and npm")
    out = tmp_path / "serve.png"
    done = subprocess.run([str(REPO / "scripts" / "serve_screenshot.sh"), str(GOLDEN), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"first screen fully drawn after \d+ ms \(\d+ tiles\)", done.stdout), done.stdout
    with Image.open(out) as shot:
        assert shot.format == "PNG" and shot.size == (1024, 768)
        pixels = np.asarray(shot.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000  # the parrot, not a flat page


def test_sigterm_stops_the_server_even_when_its_parent_blocked_it():
    """A signal mask is inherited across exec: a server started by a process that blocks SIGTERM (a test
    runner, a job system) must still stop on `kill`."""
    process = subprocess.Popen([sys.executable, "-c", NO_TORCH, "serve", str(GOLDEN), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}))
    try:
        assert re.search(r"http://127\.0\.0\.1:\d+/", process.stdout.readline())
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0 and "stopped" in err
    finally:
        process.kill()
