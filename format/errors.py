"""The one error type for malformed or unsupported ``.shc`` input."""

from __future__ import annotations

__all__ = ["ShcFormatError"]


class ShcFormatError(ValueError):
    """A ``.shc`` file is malformed, truncated, corrupted, unsupported, or asks for more than the limits allow.

    Every failure while reading untrusted bytes is raised as (or wrapped into) this type, so callers and the
    CLI (exit code 2) need to handle exactly one exception.
    """
