"""What every ``shc`` subcommand shares: exit codes, one-line errors, and safe output writing."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

import click

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_USAGE",
    "BadInputError",
    "UsageError",
    "check_input",
    "read_input",
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
    """Write atomically: a temporary file in the same folder, then ``os.replace``.

    ``-`` writes to stdout. An existing file is never overwritten without ``force``, and an interrupted
    write (Ctrl-C, full disk) leaves the old file, or nothing, in place — never a partial output.
    """
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.is_dir():
        msg = f"{path} is a directory"
        raise UsageError(msg)
    if target.exists() and not force:
        msg = f"{path} exists; use --force to overwrite it"
        raise UsageError(msg)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        msg = f"{folder}: no such directory"
        raise UsageError(msg)
    mode = _new_file_mode(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(tmp, mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
