"""shc: SHACIRA hash-grid neural image codec.

The package is split by role (see README): ``shc.codec`` trains the model (PyTorch, imported lazily; the
``encode`` extra), ``shc.format`` reads and writes ``.shc`` files and holds the normative numpy decoder (no
torch), ``shc.cli`` is the ``shc`` command, ``shc.bench`` compares shc with classic codecs.

    >>> import shc
    >>> data = shc.encode("photo.png", preset="fast")      # doctest: +SKIP
    >>> image = shc.decode(data, scale=2.0)                 # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shc.format.errors import ShcFormatError

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["ShcFormatError", "decode", "encode", "register_opener", "__version__"]


def _package_version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shc")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """``shc.__version__`` is looked up on first use: importlib.metadata costs ~20 ms of every start-up."""
    if name == "__version__":
        return _package_version()
    raise AttributeError(f"module 'shc' has no attribute {name!r}")


def encode(image: Any, **options: Any) -> bytes:
    """Encode an image (path, PIL image or HxWx3 uint8 array) to ``.shc`` bytes.

    Options are those of :func:`shc.codec.encoder.encode_image` (``preset``, ``quality``, ``steps`` or
    ``minutes``, a time budget for which the encoder picks the steps, ``device``, ``seed``, ...). Importing torch happens here, not at ``import shc``; without it (a decode-only
    install) this raises an ImportError whose one-line message says ``pip install "shc[encode]"``.
    """
    from shc._optional import load_encoder

    return load_encoder()(image, **options).data


def decode(data: bytes, scale: float | None = None, size: tuple[int, int] | None = None) -> Image.Image:
    """Decode ``.shc`` bytes to an 8-bit RGB PIL image, at native size, ``scale`` or ``size=(W, H)``."""
    from PIL import Image

    from shc.format.decoder import decode_bytes

    return Image.fromarray(decode_bytes(data, scale=scale, size=size))


def register_opener() -> None:
    """Teach Pillow the ``.shc`` format: ``Image.open`` (recognised by its magic number), ``draft`` and
    ``thumbnail`` (rendered at the reduced size), and ``im.save("x.shc")`` (needs torch).

    Same as ``import shc.pillow``; a function so that ``import shc`` itself stays free of Pillow.
    """
    import shc.pillow  # noqa: F401  (registers the plugin with Pillow on import)
