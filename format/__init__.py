"""The ``.shc`` file format and its normative decoder. Imports numpy and constriction only, never torch."""

from shc.format.constants import FORMAT_VERSION, MAGIC
from shc.format.container import (
    Header,
    ModelConfig,
    QuantizedWeights,
    ShcFile,
    Table,
    read_file,
    weight_shapes,
    write_file,
)
from shc.format.decoder import DecodedImage, Synthesis, decode_bytes, decode_image, output_size
from shc.format.entropy import decode_latents, encode_latents, histogram_tables
from shc.format.errors import ShcFormatError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "DecodedImage",
    "Header",
    "ModelConfig",
    "QuantizedWeights",
    "ShcFile",
    "ShcFormatError",
    "Synthesis",
    "Table",
    "decode_bytes",
    "decode_image",
    "decode_latents",
    "encode_latents",
    "output_size",
    "histogram_tables",
    "read_file",
    "weight_shapes",
    "write_file",
]
