"""The ``.shc`` file format and its normative decoder. Imports numpy and constriction only, never torch."""

from shc.format.constants import FORMAT_VERSION, MAGIC
from shc.format.container import ShcFile, read_file, write_file
from shc.format.decoder import DecodedImage, Synthesis, decode_bytes, decode_image, output_size
from shc.format.entropy import decode_latents, encode_latents, histogram_tables
from shc.format.errors import ShcFormatError
from shc.format.header import Header, ModelConfig
from shc.format.table import Table
from shc.format.weights import QuantizedWeights, weight_shapes

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
