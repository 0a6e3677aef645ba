"""What every ``shc`` subcommand shares: exit codes, one-line errors, and safe output writing."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_USAGE",
    "BadInputError",
    "UsageError",
    "check_input",
    "image_format",
    "limit_threads",
    "open_output",
    "parse_byte_size",
    "read_input",
    "refuse_existing",
    "write_output",
]

EXIT_USAGE = 1
EXIT_BAD_INPUT = 2


class UsageError(click.ClickException):
    """A bad option value: one ``Error: ...`` line, exit status 1."""

    exit_code = EXIT_USAGE


class BadInputError(click.ClickException):
    """Missing, unreadable or malformed input: one ``Error: ...`` line, exit status 2."""

    exit_code = EXIT_BAD_INPUT


def check_input(path: str, max_bytes: int = 1 << 30) -> None:
    """Check that ``path`` is a readable file of at most ``max_bytes``, without reading it.

    Raises :class:`BadInputError` with the same one-line messages as :func:`read_input`.
    """
    try:
        if Path(path).is_dir():
            msg = f"{path}: is a directory"
            raise BadInputError(msg)
        if Path(path).stat().st_size > max_bytes:
            msg = f"{path}: larger than {max_bytes} bytes"
            raise BadInputError(msg)
        with open(path, "rb"):
            pass
    except OSError as error:
        msg = f"{path}: {error.strerror or error}"
        raise BadInputError(msg) from None


def read_input(path: str, max_bytes: int = 1 << 30) -> bytes:
    """Bytes of a file, or of stdin for ``-``; a missing or unreadable file is a :class:`BadInputError`."""
    if path != "-":
        check_input(path, max_bytes)
    try:
        data = sys.stdin.buffer.read(max_bytes + 1) if path == "-" else Path(path).read_bytes()
    except OSError as error:
        msg = f"{path}: {error.strerror or error}"
        raise BadInputError(msg) from None
    if len(data) > max_bytes:
        msg = f"{path}: larger than {max_bytes} bytes"
        raise BadInputError(msg)
    return data


def _new_file_mode(target: Path) -> int:
    """Permission bits for an output: those of the file it replaces, else ``0o666`` less the umask.

    ``tempfile.mkstemp`` creates files readable by their owner only; without this, every output would be
    ``0600`` instead of what ``open(path, "wb")`` gives.
    """
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_output(path: str, data: bytes, force: bool) -> None:
    """Write ``data`` atomically (:func:`open_output`); ``-`` writes to stdout."""
    with open_output(path, force) as handle:
        handle.write(data)


def refuse_existing(path: str, force: bool, alternative: str = "") -> None:
    """A :class:`UsageError` if the output ``path`` exists and ``force`` is not given (``-`` never exists):
    checked before the work, so an encode does not train for minutes only to find it cannot write."""
    if path != "-" and not force and Path(path).exists():
        msg = f"{path} exists; use --force to overwrite it{alternative}"
        raise UsageError(msg)


@contextlib.contextmanager
def open_output(path: str, force: bool) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through, atomically: a temporary file in the same folder, renamed
    over ``path`` (``os.replace``) when the block ends without an exception. ``-`` is stdout.

    An existing file is never overwritten without ``force``, and an interrupted write (Ctrl-C, full disk,
    a decoding error halfway) leaves the old file, or nothing, in place — never a partial output.
    """
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.is_dir():
        msg = f"{path} is a directory"
        raise UsageError(msg)
    refuse_existing(path, force)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        msg = f"{folder}: no such directory"
        raise UsageError(msg)
    mode = _new_file_mode(target)
    import tempfile  # here, not at start-up: it imports shutil, bz2, lzma and random (~5 ms of every shc run)

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(tmp, mode)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def limit_threads(threads: int | None) -> None:
    """``--threads N``: at most N threads for numpy's BLAS (the decoder's matrix products, through
    threadpoolctl) and for torch when it is loaded (the encoder). ``None`` keeps the libraries' defaults."""
    if threads is None:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


_FAST_FORMATS = {".png": "PNG", ".ppm": "PPM", ".pnm": "PPM", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP",
                 ".gif": "GIF"}
"""Extensions that Pillow's preinit() formats cover: looked up without loading all of Pillow's plugins
(Image.init() costs ~50 ms of every decode's start-up)."""


def image_format(path: str) -> str:
    """The Pillow format name for an output path's extension; PNG for ``-`` or an unknown extension."""
    suffix = Path(path).suffix.lower()
    if path == "-" or not suffix:
        return "PNG"
    if suffix in _FAST_FORMATS:
        return _FAST_FORMATS[suffix]
    from PIL import Image

    return Image.registered_extensions().get(suffix, "PNG")


_BYTE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2}


def parse_byte_size(text: str) -> int:
    """``--target-size``: a byte count, optionally with a unit: ``50000``, ``50k``, ``50KB``, ``48KiB``, ``1.5MB``."""
    import re

    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _BYTE_UNITS:
        msg = f"size must look like 50000, 50KB or 48KiB, got {text!r}"
        raise UsageError(msg)
    value = int(float(match.group(1)) * _BYTE_UNITS[unit])
    if value < 1:
        msg = f"size must be at least 1 byte, got {text!r}"
        raise UsageError(msg)
    return value
