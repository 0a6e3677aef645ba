"""The encoder as ``shc encode`` uses it: importing this module is the check that torch is installed.

Without torch (a decode-only ``pip install shc``), ``from shc.cli.encoder import encode_image`` raises
:class:`MissingEncoderError`, which click prints as one ``Error: ...`` line naming ``shc[encode]``, exit
status 2, before the image is read. torch itself is imported on the first call of :func:`encode_image`, so
``shc encode`` with a bad option or a missing input still answers without the torch import.
"""

from __future__ import annotations

from typing import Any

import click

from shc._optional import TorchMissingError, load_encoder, missing_torch_message, torch_installed
from shc.cli.common import EXIT_BAD_INPUT, limit_threads

__all__ = ["MissingEncoderError", "encode_image", "join_process_group"]


class MissingEncoderError(click.ClickException):
    """PyTorch is not installed (or cannot be imported): one ``Error: ...`` line, exit status 2."""

    exit_code = EXIT_BAD_INPUT


if not torch_installed():
    raise MissingEncoderError(missing_torch_message())


def encode_image(*args: Any, threads: int | None = None, **kwargs: Any) -> Any:
    """:func:`shc.codec.encoder.encode_image`; a torch that fails to import is a :class:`MissingEncoderError`.

    ``threads`` (``--threads``) is applied once torch is imported: set before, it would not reach torch's
    own thread pool."""
    try:
        encode = load_encoder()
    except TorchMissingError as error:
        raise MissingEncoderError(str(error)) from None
    limit_threads(threads)
    return encode(*args, **kwargs)


def join_process_group(device: str) -> int:
    """Under torchrun, join the data-parallel group (:mod:`shc.codec.distributed`); this process's rank (0
    without torchrun, without importing torch). Only rank 0 writes files and reports."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    try:
        load_encoder()
    except TorchMissingError as error:
        raise MissingEncoderError(str(error)) from None
    from shc.codec.distributed import init_from_environment

    return init_from_environment(device)
