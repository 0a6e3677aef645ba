"""Turn per-image rows into curves: CompressAI-style JSON per codec and a Bjøntegaard table.

A curve point is the mean over images of the per-image values at one quality point (the CompressAI
convention: per-image PSNR averaged, not PSNR of the mean MSE). Points are kept only when every image
of the run has a row, so each point of a curve averages the same images.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shc.bench.base import format_quality
from shc.bench.bdrate import bd_psnr, bd_rate

__all__ = ["Curve", "read_published", "curve_from_rows", "write_bd_table", "write_codec_json"]

_JSON_KEYS = {  # CompressAI results key -> per_image.csv column
    "bpp": "bpp",
    "psnr-rgb": "psnr_rgb",
    "ms-ssim-rgb": "ms_ssim_rgb",
    "encoding_time": "encode_s",
    "decoding_time": "decode_s",
}


@dataclass
class Curve:
    """One codec's rate-distortion curve, sorted by bpp.

    Attributes:
        name: Codec name.
        description: Settings (measured) or source (published).
        results: CompressAI key (``bpp``, ``psnr-rgb``, ...) to one value per point; measured curves
            also carry ``quality``.
        published: True for points read from a published CSV rather than measured here.
    """

    name: str
    description: str
    results: dict[str, list[float]] = field(default_factory=dict)
    published: bool = False

    @property
    def bpp(self) -> list[float]:
        return self.results.get("bpp", [])

    @property
    def psnr(self) -> list[float]:
        return self.results.get("psnr-rgb", [])


def curve_from_rows(
    rows: Iterable[Mapping[str, str]], name: str, description: str, images: Sequence[str], qualities: Sequence[float]
) -> tuple[Curve, list[str]]:
    """Average the CSV rows of one codec over ``images`` at each quality point.

    Returns:
        The curve and the quality points skipped because some image had no row.
    """
    by_key = {(row["image"], row["quality"]): row for row in rows if row["codec"] == name}
    points, skipped = [], []
    for quality in qualities:
        label = format_quality(quality)
        found = [by_key.get((image, label)) for image in images]
        if not images or any(row is None for row in found):
            skipped.append(label)
            continue
        means = {key: float(np.mean([float(row[column]) for row in found])) for key, column in _JSON_KEYS.items()}
        points.append((means, float(quality)))
    points.sort(key=lambda point: point[0]["bpp"])
    results: dict[str, list[float]] = {key: [means[key] for means, _ in points] for key in _JSON_KEYS}
    results["quality"] = [quality for _, quality in points]
    return Curve(name, description, results), skipped


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN/Infinity: unknown MS-SSIM (small image) or lossless PSNR become null."""
    return value if math.isfinite(value) else None


def write_codec_json(curve: Curve, out_dir: Path, num_images: int) -> Path:
    """Write ``<name>.json`` in the CompressAI results schema (plus ``quality`` and ``num_images``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", curve.name)
    path = out_dir / f"{safe}.json"
    payload = {
        "name": curve.name,
        "description": curve.description,
        "num_images": num_images,
        "results": {key: [_finite_or_none(v) for v in values] for key, values in curve.results.items()},
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def read_published(path: Path) -> dict[str, Curve]:
    """Read a ``codec,bpp,psnr_rgb,source`` CSV into one published curve per codec, sorted by bpp.

    Raises:
        ValueError: If a column is missing or a number does not parse.
    """
    points: dict[str, list[tuple[float, float]]] = {}
    sources: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"codec", "bpp", "psnr_rgb"} - set(reader.fieldnames or ())
        if missing:
            msg = f"{path}: missing column(s) {', '.join(sorted(missing))}"
            raise ValueError(msg)
        for line, row in enumerate(reader, start=2):
            try:
                point = (float(row["bpp"]), float(row["psnr_rgb"]))
            except (TypeError, ValueError) as error:
                msg = f"{path}:{line}: bad number in {row}"
                raise ValueError(msg) from error
            points.setdefault(row["codec"], []).append(point)
            sources.setdefault(row["codec"], row.get("source") or "published")
    curves = {}
    for name, pairs in points.items():
        pairs.sort()
        results = {"bpp": [b for b, _ in pairs], "psnr-rgb": [p for _, p in pairs]}
        curves[name] = Curve(name, sources[name], results, published=True)
    return curves


def _bd(anchor: Curve, test: Curve) -> tuple[float, float]:
    if len(anchor.bpp) < 2 or len(test.bpp) < 2:
        return float("nan"), float("nan")
    return (
        bd_rate(anchor.bpp, anchor.psnr, test.bpp, test.psnr),
        bd_psnr(anchor.bpp, anchor.psnr, test.bpp, test.psnr),
    )


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}" if math.isfinite(value) else "n/a"


def write_bd_table(curves: Sequence[Curve], reference: str, out_dir: Path) -> tuple[Path, Path]:
    """Write ``bd_table.md`` and ``bd_table.csv``: the reference codec judged against every other curve.

    Each row takes another codec as the anchor and reports the reference's BD-rate (negative: the
    reference needs fewer bits for the same PSNR) and BD-PSNR (positive: it has higher PSNR at equal
    rate). ``nan`` marks curves with under two points or no overlap with the reference.
    """
    md_path, csv_path = out_dir / "bd_table.md", out_dir / "bd_table.csv"
    by_name = {curve.name: curve for curve in curves if not curve.published}
    test = by_name.get(reference)
    rows = []
    if test is not None:
        for anchor in curves:
            if anchor is test:
                continue
            rate, psnr = _bd(anchor, test)
            kind = "published" if anchor.published else "measured"
            rows.append((anchor.name, kind, len(anchor.bpp), rate, psnr, anchor.description))
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reference", "anchor", "kind", "points", "bd_rate_pct", "bd_psnr_db", "anchor_description"])
        for name, kind, count, rate, psnr, description in rows:
            writer.writerow([reference, name, kind, count, f"{rate:.3f}", f"{psnr:.4f}", description])
    lines = [f"# Bjøntegaard deltas of {reference}", ""]
    if test is None:
        lines.append(f"No measured curve named `{reference}` in this run: nothing to compare.")
    else:
        lines += [
            f"BD-rate and BD-PSNR of **{reference}** against each anchor, on the mean RGB-PSNR curves "
            "(cubic fit, VCEG-M33). BD-rate < 0: "
            f"{reference} needs fewer bits than the anchor for the same PSNR; BD-PSNR > 0: it has higher "
            "PSNR at the same bpp. `nan`: fewer than two points or no overlapping range.",
            "",
            "| anchor | kind | points | BD-rate (%) | BD-PSNR (dB) |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {name} | {kind} | {count} | {_signed(rate, 2)} | {_signed(psnr, 3)} |"
            for name, kind, count, rate, psnr, _ in rows
        ]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return md_path, csv_path
