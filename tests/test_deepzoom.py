"""``shc tiles``: the Deep Zoom pyramid's geometry, every tile equal to the decoder's native rendering of
that region at that level, the DZI XML, the offline viewer page, and the CLI's error paths."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from shc.cli.main import cli
from shc.deepzoom import DZI_NAMESPACE, deep_zoom_levels, tile_boxes, write_deep_zoom
from shc.format.container import read_file
from shc.format.decoder import Synthesis
from shc.format.entropy import file_latents
from shc.format.reader import preview_levels

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "parrot_128x96_q3.shc"
RGBA = DATA / "parrot_rgba_64x48_q3.shc"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_levels_halve_up_to_the_full_size():
    levels = deep_zoom_levels(768, 512)
    assert [(lv.width, lv.height) for lv in levels][-4:] == [(96, 64), (192, 128), (384, 256), (768, 512)]
    assert (levels[0].width, levels[0].height) == (1, 1) and len(levels) == 11  # ceil(log2 768) + 1
    assert [(lv.width, lv.height) for lv in deep_zoom_levels(5, 3)] == [(1, 1), (2, 1), (3, 2), (5, 3)]
    assert [(lv.width, lv.height) for lv in deep_zoom_levels(1, 1)] == [(1, 1)]


def test_tiles_cover_the_level_with_overlap():
    level = deep_zoom_levels(600, 300)[-1]
    boxes = {(c, r): box for c, r, box in tile_boxes(level, 254, 1)}
    assert set(boxes) == {(c, r) for c in range(3) for r in range(2)}
    assert boxes[0, 0] == (0, 0, 255, 255)
    assert boxes[1, 1] == (253, 253, 509, 300)
    assert boxes[2, 0] == (507, 0, 600, 255)
    covered = np.zeros((300, 600), bool)
    for left, top, right, bottom in boxes.values():
        covered[top:bottom, left:right] = True
    assert covered.all()


@pytest.mark.parametrize(("path", "fmt"), [(GOLDEN, "png"), (RGBA, "png"), (GOLDEN, "jpg")])
def test_every_tile_is_the_native_rendering_of_its_region(tmp_path, path, fmt):
    data = path.read_bytes()
    out = tmp_path / "dz"
    out.mkdir()
    summary = write_deep_zoom(data, out, tile_size=32, overlap=2, fmt=fmt)
    parsed = read_file(data)
    synthesis = Synthesis(parsed, file_latents(parsed))
    width, height = parsed.header.width, parsed.header.height
    count = 0
    for level in deep_zoom_levels(width, height):
        # a reduced level is the rendering from the prefix of grid levels its size needs (SPEC §6)
        native = synthesis.prefix(preview_levels(parsed.header, level.width, level.height)).render(level.width, level.height)
        for column, row, (left, top, right, bottom) in tile_boxes(level, 32, 2):
            with Image.open(out / "image_files" / str(level.index) / f"{column}_{row}.{fmt}") as tile:
                pixels = np.asarray(tile)
            expected = native[top:bottom, left:right]
            assert pixels.shape == expected.shape
            if fmt == "png":
                assert np.array_equal(pixels, expected)
            elif expected.shape[0] * expected.shape[1] >= 256:  # JPEG q90: close, not equal (4:2:0 on tiny
                assert np.abs(pixels.astype(int) - expected).mean() < 4  # tiles is far off: shape only)
            count += 1
    assert summary["tiles"] == count == sum(1 for _ in (out / "image_files").rglob(f"*.{fmt}"))
    root = ET.parse(out / "image.dzi").getroot()
    assert root.tag == f"{{{DZI_NAMESPACE}}}Image"
    assert (root.get("Format"), root.get("Overlap"), root.get("TileSize")) == (fmt, "2", "32")
    size = root.find(f"{{{DZI_NAMESPACE}}}Size")
    assert (int(size.get("Width")), int(size.get("Height"))) == (width, height)


def test_index_page_loads_the_copied_viewer_and_the_tiles(tmp_path):
    out = tmp_path / "dz"
    result = invoke("tiles", GOLDEN, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["format"] == "jpg" and summary["levels"] == 8
    page = (out / "index.html").read_text()
    for src in re.findall(r'src="([^"]+)"', page):
        assert (out / src).is_file(), src
    prefix = re.search(r'prefixUrl: "([^"]+)"', page).group(1)
    assert (out / prefix / "zoomin_rest.png").is_file()
    source = json.loads(re.search(r"tileSources: (\{.*\}),", page).group(1))["Image"]
    assert (out / source["Url"] / "7" / "0_0.jpg").is_file()
    assert source["Size"] == {"Width": "128", "Height": "96"}
    assert (out / "openseadragon" / "LICENSE.txt").is_file()


def test_tiles_cli_errors_leave_nothing_behind(tmp_path):
    existing = tmp_path / "dz"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    result = invoke("tiles", GOLDEN, "-o", existing)
    assert result.exit_code == 1 and "--force" in result.stderr
    assert (existing / "keep.txt").read_text() == "mine"
    bad = tmp_path / "bad.shc"
    bad.write_bytes(GOLDEN.read_bytes()[:50])
    result = invoke("tiles", bad, "-o", tmp_path / "new")
    assert result.exit_code == 2 and "bad.shc" in result.stderr
    result = invoke("tiles", RGBA, "-o", tmp_path / "new", "--format", "jpg")
    assert result.exit_code == 1 and "alpha" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.shc", "dz"]  # no half pyramid, no temp folder
    replaced = invoke("tiles", GOLDEN, "-o", existing, "--force")
    assert replaced.exit_code == 0 and not (existing / "keep.txt").exists()
