"""Every magic number of the ``.shc`` format in one place (see SPEC.md)."""

from __future__ import annotations

MAGIC = b"SHC\x1a"
"""First four bytes of every file ("SHC" plus ^Z so a text viewer stops there)."""

FORMAT_VERSION = 7
"""Bumped whenever any byte of the layout or the normative decoding changes."""

READABLE_VERSIONS = (2, 3, 4, 5, 6, 7)
"""Versions this decoder reads: 2 is version 3 without the HEAD ``latent_coding`` byte (always range-coded);
4 stores level cells as u16, weights and table histograms as exp-Golomb codes; 5 adds ``channels`` (alpha)
and the optional META section; 6 adds the context model (HEAD ``context_width``, SPEC §5a, §9); 7 splits the
latents into independently decodable segments, large levels into spatial chunks (SPEC §4a, §6)."""

COMPACT_SIDE_INFO_VERSION = 4
"""First version with u16 level cells, exp-Golomb weights (§3) and histogram tables (§5)."""

METADATA_VERSION = 5
"""First version with the HEAD ``channels`` field and the optional META section (ICC profile, EXIF)."""

CONTEXT_VERSION = 6
"""First version with the HEAD ``context_width`` field and context-coded dense levels (SPEC §5a)."""
SEGMENTED_VERSION = 7
"""First version whose latents are segments (an index with a length and a CRC-32 each, SPEC §6): whole
levels packed coarse to fine, large levels split into spatial chunks (SPEC §4a)."""
WHOLE_LEVEL_MAX_ROWS = 1 << 17
"""A level with at most this many rows (SPEC §4) is coded whole; a larger one in spatial chunks."""
CHUNK_TARGET_ROWS = 1 << 16
"""A chunked level's chunk side is the smallest power of two that gives each chunk about this many rows."""
SEGMENT_MAX_LATENTS = 1 << 17
"""Consecutive whole levels share a segment while it holds at most this many latents."""
SEGMENT_INDEX_ENTRY_BYTES = 8
"""Per segment in the LATN index: u32 byte length and u32 CRC-32 of its bytes."""
MAX_CONTEXT_WIDTH = 32
"""HEAD ``context_width``: hidden units of the context network; 0 = every level factorized (as before)."""

LATENTS_RANGE_CODED = 0
"""HEAD ``latent_coding``: integer latents, range-coded with the TABL tables (SHACIRA)."""
LATENTS_FLOAT16 = 1
"""HEAD ``latent_coding``: float16 latents stored raw, no tables (the Instant-NGP-style baseline)."""

INTERPOLATION_BILINEAR = 0
"""HEAD ``interpolation``: each level blended bilinearly from 2 x 2 vertices (versions 2-3 always)."""
INTERPOLATION_BSPLINE = 1
"""HEAD ``interpolation`` (version 4): each level blended with the cubic B-spline from 4 x 4 vertices."""

CHANNELS_RGB = 3
"""HEAD ``channels`` (version 5): the network outputs R, G, B (every earlier version)."""
CHANNELS_RGBA = 4
"""HEAD ``channels``: the network outputs R, G, B and straight (not premultiplied) alpha."""

FILE_PREFIX_BYTES = len(MAGIC) + 1
"""Bytes before the first section: the magic and the u8 version."""

SECTION_TAGS = (b"HEAD", b"WGHT", b"TABL", b"LATN")
"""The required sections in their order: header, network weights, probability tables, range-coded latents."""
META_TAG = b"META"
"""The optional section (version 5) between HEAD and WGHT: ICC profile and EXIF; absent when there are none."""
META_KEYS = (b"ICCP", b"EXIF")
"""META entry keys, in the order a file stores them (each at most once): the ICC profile, the EXIF block."""
META_ENTRY_HEAD_BYTES = 8
"""Each META entry starts with its 4-byte ASCII key and its u32 length."""
MAX_META_ENTRY_BYTES = 1 << 24
"""The largest META entry (16 MiB); ICC profiles are kilobytes, an EXIF block in a JPEG at most 64 KiB."""

SECTION_TAG_BYTES = 4
"""Each section starts with its 4-byte ASCII tag ..."""
SECTION_LENGTH_BYTES = 4
"""... then its payload length as a u32 ..."""
SECTION_CRC_BYTES = 4
"""... and ends, after the payload, with the u32 CRC-32 of tag + payload."""
SECTION_FRAME_BYTES = SECTION_TAG_BYTES + SECTION_LENGTH_BYTES + SECTION_CRC_BYTES
"""Bytes a section adds around its payload (12)."""

WEIGHT_INT_MAX = 127
"""Versions 2-3 store network weights as int8 in [-127, 127] times one float32 scale per tensor; it is also
the training-time quantization (straight-through) of every version."""
WEIGHT_CODE_MAX = (1 << 15) - 1
"""Version 4: integer weights are exp-Golomb coded and may lie in [-32767, 32767]."""
MAX_CELLS_U16 = (1 << 16) - 1
"""Version 4 stores level cells as u16."""

TABLE_PRECISION = 15
"""Integer frequency tables sum to exactly 2**TABLE_PRECISION; every symbol count is >= 1."""

HASH_PRIMES = (1, 2654435761)
"""Instant-NGP spatial-hash primes for the x and y vertex coordinates (uint32 arithmetic)."""

# Limits checked before anything is allocated. They bound what a hostile header can make us do.
MAX_IMAGE_SIDE = 1 << 20
MAX_LEVELS = 32
MIN_LOG2_HASHMAP_SIZE = 4
MAX_LOG2_HASHMAP_SIZE = 24
MAX_LATENT_DIM = 8
MAX_FEAT_DIM = 8
MAX_MLP_WIDTH = 256
MAX_MLP_DEPTH = 8
MAX_GRID_CELLS_PER_SIDE = 1 << 20
MAX_TOTAL_LATENTS = 1 << 24
MAX_TABLE_SYMBOLS = 1 << 12
MIN_SYMBOL = -(1 << 15)
MAX_SYMBOL = (1 << 15) - 1
MAX_SECTION_BYTES = 1 << 28

DEFAULT_MAX_OUTPUT_PIXELS = 2 * 89_478_485
"""Like Pillow's decompression-bomb error threshold; decoding a larger output is refused unless overridden."""

MLP_CHUNK_PIXELS = 1 << 14
"""The reference decoder runs the MLP on at most this many pixels at a time, so that its activations stay
in the CPU's cache (each pixel is computed on its own: SPEC §7, tiles)."""
FEATURE_LIMIT = float(2**100)
"""Feature values are clamped to ±this (SPEC §7 step 2): a blend of 16 of them stays finite in float32."""
MLP_FRACTION_BITS = 20
"""Fractional bits of the MLP's fixed-point activations (SPEC §7 step 5): a step of 2^-20 ≈ 1e-6, far
below the 8-bit output's 1/255, and with it every layer's sums stay exact integers in float64."""

DECODE_TILE_PIXELS = 1 << 17
"""Pixels decoded per tile: bounds the decoder's working memory independently of the output size."""
