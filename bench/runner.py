"""Measure every image x codec x quality point, resumably, then write the derived reports.

Each measurement is one encode and one decode, timed separately with ``time.perf_counter``, plus bpp
(file bytes * 8 / pixels), RGB PSNR (:func:`shc.metrics.psnr_db`) and MS-SSIM
(:func:`shc.bench.metrics.ms_ssim`). The row goes to ``per_image.csv`` and is flushed before the next
encode starts, so a killed run loses at most the measurement in progress and a rerun skips the rest.

Outputs in ``out_dir``: ``per_image.csv``, ``<codec>.json`` (CompressAI schema), ``bd_table.md`` and
``bd_table.csv``, ``rd.png`` and ``meta.json``.
"""

from __future__ import annotations

import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from shc.bench.base import Codec, format_quality
from shc.bench.meta import check_resumable, collect_meta, write_meta
from shc.bench.metrics import ms_ssim
from shc.bench.plot import plot_rd
from shc.bench.report import Curve, curve_from_rows, read_published, write_bd_table, write_codec_json
from shc.bench.results import ResultsFile
from shc.metrics import psnr_db

__all__ = ["load_rgb", "measure", "run_benchmark"]


def load_rgb(path: Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB (alpha dropped, palettes expanded)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def measure(codec: Codec, rgb: np.ndarray, quality: float) -> dict[str, float]:
    """Encode and decode one image at one quality point; returns the CSV's numeric fields.

    Raises:
        ValueError: If the decoded image does not have the input's shape and dtype.
    """
    start = time.perf_counter()
    data = codec.encode(rgb, quality)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = np.asarray(codec.decode(data))
    decode_s = time.perf_counter() - start
    if decoded.shape != rgb.shape or decoded.dtype != np.uint8:
        msg = f"{codec.name} decoded {decoded.dtype} {decoded.shape}, expected uint8 {rgb.shape}"
        raise ValueError(msg)
    height, width = rgb.shape[:2]
    return {
        "bytes": len(data),
        "bpp": len(data) * 8 / (width * height),
        "psnr_rgb": psnr_db(rgb, decoded),
        "ms_ssim_rgb": ms_ssim(rgb, decoded),
        "encode_s": encode_s,
        "decode_s": decode_s,
    }


def _csv_row(codec: str, image: str, quality: str, values: dict[str, float]) -> dict[str, str]:
    return {
        "codec": codec,
        "image": image,
        "quality": quality,
        "bytes": str(int(values["bytes"])),
        "bpp": f"{values['bpp']:.6f}",
        "psnr_rgb": f"{values['psnr_rgb']:.4f}",
        "ms_ssim_rgb": f"{values['ms_ssim_rgb']:.6f}",
        "encode_s": f"{values['encode_s']:.4f}",
        "decode_s": f"{values['decode_s']:.4f}",
    }


def _image_names(images: Sequence[Path]) -> list[str]:
    names = [Path(path).stem for path in images]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        msg = f"image names must be unique without extension; repeated: {', '.join(duplicates)}"
        raise ValueError(msg)
    return names


def _require_matplotlib() -> None:
    """Fail before hours of measuring, not when drawing the plot at the end."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        msg = "the benchmark plot needs matplotlib: pip install 'shc[bench]'"
        raise ImportError(msg) from error


def run_benchmark(
    images: Sequence[Path],
    codecs: Sequence[Codec],
    out_dir: Path,
    progress: bool = True,
    reference: str = "shc",
    published_csv: Path | None = None,
    command: str | None = None,
    title: str = "Kodak",
) -> dict[str, Curve]:
    """Measure what ``out_dir/per_image.csv`` lacks, then rewrite the JSON files, BD table and plot.

    Args:
        images: Image files; the CSV names them by file stem, which must be unique.
        codecs: Objects following :class:`shc.bench.base.Codec`; names must be unique.
        out_dir: Results folder, created if missing; an earlier run's CSV there is resumed.
        progress: Show a tqdm bar on stderr.
        reference: Codec whose BD-rate/BD-PSNR against every other curve goes in ``bd_table.md``.
        published_csv: Optional ``codec,bpp,psnr_rgb,source`` CSV drawn dashed and used as BD anchors.
        command: Command line recorded in ``meta.json`` (default: ``sys.argv``).
        title: Dataset name for the plot title.

    Returns:
        Curves by codec name (measured, then published).

    Raises:
        ValueError: On duplicate image or codec names, or if ``out_dir`` holds results of a
            same-named codec measured with other settings (see :func:`shc.bench.meta.check_resumable`).
    """
    out_dir = Path(out_dir)
    names = _image_names(images)
    codec_names = [codec.name for codec in codecs]
    if len(set(codec_names)) != len(codec_names):
        msg = f"codec names must be unique, got {codec_names}"
        raise ValueError(msg)
    _require_matplotlib()
    published = read_published(Path(published_csv)) if published_csv is not None else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    check_resumable(out_dir, codecs)
    meta = collect_meta(command if command is not None else shlex.join(sys.argv), codecs, names)
    write_meta(out_dir, meta)

    with ResultsFile(out_dir / "per_image.csv") as results:
        todo = [
            (codec, path, name, quality)
            for codec in codecs
            for path, name in zip(images, names)
            for quality in codec.qualities
            if (codec.name, name, format_quality(quality)) not in results
        ]
        cache: dict[str, np.ndarray] = {}
        with tqdm(todo, disable=not progress, unit="pt", desc="bench", file=sys.stderr) as bar:
            for codec, path, name, quality in bar:
                bar.set_postfix_str(f"{codec.name} {name} q={format_quality(quality)}", refresh=False)
                if name not in cache:
                    cache[name] = load_rgb(Path(path))
                try:
                    values = measure(codec, cache[name], quality)
                except Exception as error:
                    if hasattr(error, "add_note"):  # Python 3.11+: say where, keep the exception type
                        error.add_note(f"while measuring {codec.name} on {name} at q={format_quality(quality)}")
                    raise
                results.append(_csv_row(codec.name, name, format_quality(quality), values))
        rows = list(results.rows.values())

    curves: dict[str, Curve] = {}
    for codec in codecs:
        description = getattr(codec, "description", codec.name)
        curve, skipped = curve_from_rows(rows, codec.name, description, names, codec.qualities)
        if skipped:
            warnings.warn(f"{codec.name}: quality point(s) {', '.join(skipped)} lack some images", stacklevel=2)
        write_codec_json(curve, out_dir, len(names))
        curves[codec.name] = curve
    curves.update({name: curve for name, curve in published.items() if name not in curves})
    write_bd_table(list(curves.values()), reference, out_dir)
    plot_rd(list(curves.values()), out_dir / "rd.png", title=title)
    write_meta(out_dir, {**meta, "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return curves
