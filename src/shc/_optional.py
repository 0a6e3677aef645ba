"""The encoder's optional dependency, PyTorch: whether it is there, and the one message that says how to get it.

A plain ``pip install shc`` decodes (numpy + constriction); encoding needs the ``encode`` extra. Nothing here
imports torch until :func:`load_encoder` is called.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

__all__ = ["ENCODE_INSTALL_HINT", "TorchMissingError", "load_encoder", "missing_torch_message", "torch_installed"]

ENCODE_INSTALL_HINT = 'pip install "shc[encode]"'


class TorchMissingError(ImportError):
    """Encoding was asked for, but PyTorch cannot be imported. The message says what to install."""


def missing_torch_message(reason: str = "No module named 'torch'") -> str:
    """One line: encoding needs torch (and why it failed), decoding does not, and the install command."""
    return f"encoding needs PyTorch, which is not available here ({reason}); install it with: {ENCODE_INSTALL_HINT}"


def torch_installed() -> bool:
    """Whether a ``torch`` package can be found, without importing it (cheap: no 1-second torch import)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a half-imported or stubbed-out torch in sys.modules
        return False


def load_encoder() -> Callable[..., Any]:
    """:func:`shc.codec.encoder.encode_image`, importing torch; :class:`TorchMissingError` without it."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        # A torch that is simply absent needs no traceback; one that is there but broken keeps its cause.
        absent = getattr(error, "name", None) == "torch" or not torch_installed()
        raise TorchMissingError(missing_torch_message(str(error) or "import failed")) from (None if absent else error)
    from shc.codec.encoder import encode_image

    return encode_image
