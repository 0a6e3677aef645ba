"""What the studies beside the package (``studies/NAME/run.py``) share, besides the codec itself: their
``meta.json`` and figures files, a CSV that grows a row at a time, and ``--set name=value`` encoder
overrides. They import these from :mod:`shc.bench` (``from shc.bench import write_study_meta``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shc.bench.meta import collect_meta

__all__ = ["append_csv_row", "classic_per_image", "parse_overrides", "write_figures", "write_study_meta"]


def parse_overrides(items: list[str]) -> dict:
    """``name=value`` pairs for :class:`~shc.codec.presets.EncoderSettings` fields (values parsed as JSON, else
    kept as text)."""
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def write_figures(path: Path | None, figures: dict[str, Any]) -> None:
    """Write a benchmark's figures as indented JSON to ``path`` (its folder made), when one is given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def write_study_meta(out_dir: Path, script: str, argv: Sequence[str], images: Sequence[str], **extra: Any) -> None:
    """``meta.json`` of a study run as ``python SCRIPT ARGV`` (``script``: e.g. ``studies/large/run.py``; no
    classic codecs): machine, libraries, revision, the command, and ``extra`` settings."""
    import shlex

    meta = collect_meta(" ".join(["python", script, *map(shlex.quote, argv)]), [], list(images))
    del meta["codecs"]
    (out_dir / "meta.json").write_text(json.dumps({**meta, **extra}, indent=2) + "\n")


def append_csv_row(path: Path, fields: Sequence[str], row: dict[str, Any]) -> None:
    """Append ``row`` to the CSV at ``path`` (its header first if the file is new) and print it as one line:
    a study that is interrupted keeps what it measured, and resumes from it."""
    import csv

    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(" ".join(f"{k}={row[k]}" for k in fields), flush=True)


def classic_per_image(classic: Path) -> dict[tuple[str, str], tuple[list[float], list[float]]]:
    """The classic codecs' curve of every image in a ``shc bench`` folder (``per_image.csv``):
    ``(codec, image) -> (bpp list, PSNR list)``, for per-image BD-rates."""
    curves: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    with (classic / "per_image.csv").open() as handle:
        for row in csv.DictReader(handle):
            curve = curves.setdefault((row["codec"], row["image"]), ([], []))
            curve[0].append(float(row["bpp"]))
            curve[1].append(float(row["psnr_rgb"]))
    return curves
