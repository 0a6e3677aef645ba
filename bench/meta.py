"""``meta.json``: what ran, where, with which libraries, so a results folder explains itself.

It also guards resumption: the per-image CSV is keyed by codec name only, so resuming with other
settings under the same name (another ``--steps``, another Pillow) would silently mix two codecs in
one curve. :func:`check_resumable` refuses that.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from shc.bench.base import Codec, format_quality

__all__ = ["check_resumable", "collect_meta", "write_meta"]

_PACKAGES = ("shc", "numpy", "pillow", "pillow-heif", "torch", "constriction", "matplotlib", "click", "tqdm")


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _library_versions() -> dict[str, Any]:
    """Versions of the C libraries that actually produce the classic codecs' bytes."""
    from PIL import features

    names = ("libjpeg_turbo", "webp", "avif", "jpg_2000", "zlib")
    libraries: dict[str, Any] = {name: features.version(name) for name in names}
    try:
        import pillow_heif

        libraries["libheif"] = pillow_heif.libheif_info()
    except ImportError:
        libraries["libheif"] = None
    return libraries


def _git_revision() -> str | None:
    """The git commit of the shc source tree, ``-dirty`` if tracked files outside ``results/`` differ from it;
    None outside a git checkout.

    The package version names a release; the revision names the exact encoder that made the bytes. A
    resumable run writes into a committed results folder, so changes under ``results/`` don't count."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(exclude,top)results")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if changed else "") if commit else None


def _codec_entry(codec: Codec) -> dict[str, Any]:
    return {
        "description": getattr(codec, "description", codec.name),
        "qualities": [format_quality(q) for q in codec.qualities],
    }


def collect_meta(command: str, codecs: Sequence[Codec], images: Sequence[str]) -> dict[str, Any]:
    """Everything needed to reproduce or judge a run (no timings: those are in the CSV)."""
    return {
        "command": command,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
        },
        "python": sys.version,
        "packages": _package_versions(),
        "shc_git_revision": _git_revision(),
        "libraries": _library_versions(),
        "images": list(images),
        "codecs": {codec.name: _codec_entry(codec) for codec in codecs},
    }


def _previous_codecs(path: Path) -> dict[str, dict[str, Any]]:
    """The ``codecs`` entry of an earlier meta.json; empty when missing or unreadable."""
    try:
        codecs = json.loads(path.read_text(encoding="utf-8")).get("codecs", {})
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(codecs, dict):
        return {}
    return {name: entry for name, entry in codecs.items() if isinstance(entry, dict)}


def check_resumable(out_dir: Path, codecs: Sequence[Codec]) -> None:
    """Raise if ``out_dir`` holds results for one of ``codecs`` measured with another description.

    Raises:
        ValueError: Naming the codec and both descriptions.
    """
    path = out_dir / "meta.json"
    if not path.exists():
        return
    previous = _previous_codecs(path)
    for codec in codecs:
        old = previous.get(codec.name, {}).get("description")
        new = getattr(codec, "description", codec.name)
        if old is not None and old != new:
            msg = (
                f"{out_dir} already holds {codec.name} results measured as {old!r}, "
                f"not {new!r}; use another output folder"
            )
            raise ValueError(msg)


def write_meta(out_dir: Path, meta: dict[str, Any]) -> Path:
    """Write ``meta.json``, keeping earlier codecs' entries so a later partial run does not hide them."""
    path = out_dir / "meta.json"
    meta = {**meta, "codecs": {**_previous_codecs(path), **meta["codecs"]}}
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path
