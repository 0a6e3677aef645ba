"""The HEAD section (SPEC §2): its fields, the model configuration and the header they make, and the
payload's bytes both ways.

:data:`HEAD_FIELDS` and :data:`HEAD_LEVEL_FIELDS` are the field table in code: the reader, the writer,
:meth:`Header.validate` and the fuzzer all derive the layout from them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

from shc.format import constants as C
from shc.format.binary import Reader
from shc.format.errors import ShcFormatError
from shc.format.layout import LatentLayout

__all__ = [
    "HEAD_FIELDS",
    "HEAD_LEVEL_FIELDS",
    "HeadField",
    "Header",
    "ModelConfig",
    "head_fixed_fields",
    "head_layout",
    "head_level_fields",
    "head_payload_bytes",
    "header_payload",
    "parse_header",
]


@dataclass(frozen=True)
class HeadField:
    """One field of the HEAD payload (SPEC.md §2): the reader, the writer, :meth:`Header.validate` and the
    fuzzer all derive the layout from :data:`HEAD_FIELDS` and :data:`HEAD_LEVEL_FIELDS`."""

    name: str
    """The :class:`Header` attribute, or the :class:`ModelConfig` one when ``in_config``."""
    code: str
    """:mod:`struct` code, little-endian."""
    low: int
    high: int
    """Allowed range ``low .. high``; a bound that depends on other fields is checked in ``validate``."""
    since_version: int = min(C.READABLE_VERSIONS)
    """First format version whose HEAD has this field."""
    default: int | None = None
    """The value implied by older versions, which lack the field."""
    in_config: bool = False
    note: str = ""
    """Appended to the out-of-range error message."""


HEAD_FIELDS: tuple[HeadField, ...] = (
    HeadField("width", "I", 1, C.MAX_IMAGE_SIDE),
    HeadField("height", "I", 1, C.MAX_IMAGE_SIDE),
    HeadField("num_levels", "B", 1, C.MAX_LEVELS, in_config=True),
    HeadField("log2_hashmap_size", "B", C.MIN_LOG2_HASHMAP_SIZE, C.MAX_LOG2_HASHMAP_SIZE, in_config=True),
    HeadField("latent_dim", "B", 1, C.MAX_LATENT_DIM, in_config=True),
    HeadField("feat_dim", "B", 1, C.MAX_FEAT_DIM, in_config=True),
    HeadField("mlp_width", "H", 1, C.MAX_MLP_WIDTH, in_config=True),
    HeadField("mlp_depth", "B", 0, C.MAX_MLP_DEPTH, in_config=True),
    HeadField("num_groups", "B", 1, C.MAX_LEVELS, in_config=True),  # and <= num_levels (ModelConfig.validate)
    HeadField(
        "latent_coding",
        "B",
        C.LATENTS_RANGE_CODED,
        C.LATENTS_FLOAT16,
        since_version=3,
        default=C.LATENTS_RANGE_CODED,
        note=" (0: range-coded, 1: float16)",
    ),
    HeadField(
        "interpolation",
        "B",
        C.INTERPOLATION_BILINEAR,
        C.INTERPOLATION_BSPLINE,
        since_version=4,
        default=C.INTERPOLATION_BILINEAR,
        in_config=True,
        note=" (0: bilinear, 1: cubic B-spline)",
    ),
    HeadField(
        "channels",
        "B",
        C.CHANNELS_RGB,
        C.CHANNELS_RGBA,
        since_version=C.METADATA_VERSION,
        default=C.CHANNELS_RGB,
        in_config=True,
        note=" (3: RGB, 4: RGBA)",
    ),
    HeadField(
        "context_width",
        "B",
        0,
        C.MAX_CONTEXT_WIDTH,
        since_version=C.CONTEXT_VERSION,
        default=0,
        in_config=True,
        note=" (hidden units of the context network, 0: none)",
    ),
)
"""The fixed HEAD fields in file order."""

HEAD_LEVEL_FIELDS: tuple[HeadField, ...] = (
    HeadField("nx", "I", 1, C.MAX_GRID_CELLS_PER_SIDE),
    HeadField("ny", "I", 1, C.MAX_GRID_CELLS_PER_SIDE),
)
"""What follows the fixed fields once per level: the level's cells along x and y (versions 2-3: u32)."""

HEAD_LEVEL_FIELDS_U16: tuple[HeadField, ...] = (
    HeadField("nx", "H", 1, C.MAX_CELLS_U16),
    HeadField("ny", "H", 1, C.MAX_CELLS_U16),
)
"""The per-level fields from version 4 on: u16 cells."""


def head_level_fields(version: int = C.FORMAT_VERSION) -> tuple[HeadField, ...]:
    """The per-level HEAD fields of format ``version``."""
    return HEAD_LEVEL_FIELDS_U16 if version >= C.COMPACT_SIDE_INFO_VERSION else HEAD_LEVEL_FIELDS


def _level_format(version: int) -> str:
    return "".join(f.code for f in head_level_fields(version))


def head_fixed_fields(version: int = C.FORMAT_VERSION) -> tuple[HeadField, ...]:
    """The fixed HEAD fields that a file of format ``version`` stores, in file order."""
    return tuple(f for f in HEAD_FIELDS if f.since_version <= version)


def _fixed_format(version: int) -> str:
    return "".join(f.code for f in head_fixed_fields(version))


def head_payload_bytes(num_levels: int, version: int = C.FORMAT_VERSION) -> int:
    """HEAD payload length: 20 + 4 * num_levels (version 5: 19 + ..., 4: 18 + ..., version 3: 17 + 8 * num_levels, version 2: 16 + 8 * num_levels)."""
    return struct.calcsize("<" + _fixed_format(version)) + num_levels * struct.calcsize("<" + _level_format(version))


def head_layout(num_levels: int, version: int = C.FORMAT_VERSION) -> list[tuple[str, str, int]]:
    """``(name, struct code, byte offset)`` of every HEAD field; level cells are named ``level{l}.nx``/``.ny``."""
    named = [(f.name, f.code) for f in head_fixed_fields(version)]
    named += [(f"level{level}.{f.name}", f.code) for level in range(num_levels) for f in head_level_fields(version)]
    layout, offset = [], 0
    for name, code in named:
        layout.append((name, code, offset))
        offset += struct.calcsize("<" + code)
    return layout


def _check_range(field: HeadField, value: int, high: int | None = None) -> None:
    high = field.high if high is None else high
    if not field.low <= value <= high:
        msg = f"header field {field.name}={value} is outside the allowed range [{field.low}, {high}]{field.note}"
        raise ShcFormatError(msg)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the grid, latent decoder and MLP; everything the decoder needs besides the numbers."""

    num_levels: int
    log2_hashmap_size: int
    latent_dim: int = 1
    feat_dim: int = 1
    mlp_width: int = 16
    mlp_depth: int = 2
    num_groups: int = 1
    """Probability-model groups: contiguous runs of levels sharing one table per latent dimension."""
    interpolation: int = C.INTERPOLATION_BILINEAR
    """How a level is blended between its vertices (SPEC §7): bilinear, or the cubic B-spline."""
    channels: int = C.CHANNELS_RGB
    """Outputs of the MLP's last layer: 3 (RGB) or 4 (RGBA, straight alpha)."""
    context_width: int = 0
    """Hidden units of the context network (SPEC §5a); 0: every level coded with its histogram table."""

    def validate(self) -> None:
        for field in HEAD_FIELDS:  # in file order: num_levels is checked before num_groups uses it
            if field.in_config:
                high = min(field.high, self.num_levels) if field.name == "num_groups" else field.high
                _check_range(field, getattr(self, field.name), high)
        if self.context_width and self.latent_dim != 1:
            msg = f"header field context_width={self.context_width} needs latent_dim 1, got {self.latent_dim}"
            raise ShcFormatError(msg)

    @property
    def num_tables(self) -> int:
        return self.num_groups * self.latent_dim


@dataclass(frozen=True)
class Header:
    """Image size, architecture and each level's cell counts ``(nx, ny)``."""

    width: int
    height: int
    config: ModelConfig
    level_cells: tuple[tuple[int, int], ...]
    latent_coding: int = C.LATENTS_RANGE_CODED
    """How LATN stores the latents: range-coded integers, or raw float16 (the no-entropy baseline)."""
    version: int = C.FORMAT_VERSION
    """The format version the header was read from (or is written as): version 7 chunks large levels and
    splits the latents into segments (SPEC §4a, §6)."""

    @property
    def range_coded(self) -> bool:
        return self.latent_coding == C.LATENTS_RANGE_CODED

    def validate(self) -> None:
        for field in HEAD_FIELDS:
            if not field.in_config:
                _check_range(field, getattr(self, field.name))
        self.config.validate()
        if len(self.level_cells) != self.config.num_levels:
            msg = f"header lists {len(self.level_cells)} levels, expected {self.config.num_levels}"
            raise ShcFormatError(msg)
        for level, cells in enumerate(self.level_cells):
            for field, value in zip(HEAD_LEVEL_FIELDS, cells, strict=True):
                if not field.low <= value <= field.high:
                    msg = f"level {level} {field.name}={value} is outside the allowed range [{field.low}, {field.high}]"
                    raise ShcFormatError(msg)
        if self.config.context_width and not self.range_coded:
            msg = "header field context_width must be 0 for float16 latents"
            raise ShcFormatError(msg)
        if self.total_latents > C.MAX_TOTAL_LATENTS:
            msg = f"header declares {self.total_latents} latents, more than the limit {C.MAX_TOTAL_LATENTS}"
            raise ShcFormatError(msg)
        feature_values = sum(self.level_rows()) * self.config.feat_dim
        if feature_values > C.MAX_TOTAL_LATENTS:
            # the decoder's float32 feature tables hold rows x feat_dim values: bound them like the latents
            msg = f"header implies {feature_values} feature-table values, more than the limit {C.MAX_TOTAL_LATENTS}"
            raise ShcFormatError(msg)

    @cached_property
    def layout(self) -> LatentLayout:
        """Where every latent lives and in which order it is coded (SPEC §4, §6)."""
        return LatentLayout.from_header(self)

    def level_rows(self) -> list[int]:
        return [level.rows for level in self.layout.levels]

    @property
    def total_latents(self) -> int:
        return self.layout.total_latents


def header_payload(header: Header) -> bytes:
    """The HEAD payload of ``header`` in the current version (its level cells checked to fit it)."""
    fixed = head_fixed_fields(C.FORMAT_VERSION)
    values = [getattr(header.config if f.in_config else header, f.name) for f in fixed]
    out = struct.pack("<" + _fixed_format(C.FORMAT_VERSION), *values)
    for level, cells in enumerate(header.level_cells):
        for field, value in zip(head_level_fields(C.FORMAT_VERSION), cells, strict=True):
            if not field.low <= value <= field.high:
                msg = f"level {level} {field.name}={value}: version {C.FORMAT_VERSION} stores at most {field.high} cells"
                raise ValueError(msg)
    return out + b"".join(struct.pack("<" + _level_format(C.FORMAT_VERSION), *cells) for cells in header.level_cells)


def parse_header(payload: bytes, version: int) -> Header:
    """The header of a HEAD payload of format ``version``, validated (``num_levels`` bounded first)."""
    reader = Reader(payload, "HEAD section")
    read = reader.unpack(_fixed_format(version), "image size and model configuration")
    values = {f.name: f.default for f in HEAD_FIELDS}  # fields this version lacks keep their default
    values.update(zip([f.name for f in head_fixed_fields(version)], read))
    config = ModelConfig(**{f.name: values[f.name] for f in HEAD_FIELDS if f.in_config})
    config.validate()  # bounds num_levels before reading the per-level list
    cells = tuple(reader.unpack(_level_format(version), f"level {level} cells") for level in range(config.num_levels))
    reader.expect_end()
    header_values = {f.name: values[f.name] for f in HEAD_FIELDS if not f.in_config}
    header = Header(config=config, level_cells=cells, version=version, **header_values)
    header.validate()
    return header
