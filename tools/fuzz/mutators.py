"""The mutators: each takes a seed and returns bytes that differ from it in one way a broken or hostile file
could (bit flips; HEAD, TABL, context and META fields; section lengths and sizes; weights; the segment
index and the segments; truncations, splices, random bytes). Most re-fix the CRC32 of what they touch, so
that the change reaches the parser and the range decoder. :data:`MUTATORS` lists them with their weights;
:func:`mutate` applies one.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from shc.format import constants as C
from shc.format.container import frame_section
from shc.format.context import CONTEXT_TENSORS, MAX_BIAS, MAX_LEVEL_SPAN, MAX_WEIGHT
from shc.format.errors import ShcFormatError
from shc.format.expgolomb import MAX_ORDER, pack, zigzag
from shc.format.header import Header, head_payload_bytes
from shc.format.metadata import EXIF_PREFIX, ICC_HEADER_BYTES, ICC_SIGNATURE
from shc.format.table import table_symbol_counts
from shc.format.weights import weight_shapes
from shc.tools.fuzz.seeds import Seed, parsed_seed
from shc.tools.fuzz.syntax import (
    LENGTH_AT,
    PREFIX,
    ContextCodes,
    HistogramTable,
    MetaEntry,
    Sections,
    assemble,
    context_shapes,
    count_table_fields,
    fake_exif,
    fake_icc,
    head_fields,
    interesting_value,
    meta_entries,
    pack_histograms,
    pack_index,
    pack_meta,
    pack_tabl,
    read_tabl,
    set_field,
    split_segments,
    truncation_points,
)

__all__ = ["MUTATORS", "Mutator", "mutate"]

Mutator = Callable[[np.random.Generator, Seed, Sequence[Seed]], bytes]


def _exif_entry(rng: np.random.Generator) -> MetaEntry:
    value = fake_exif(rng)
    return b"EXIF", len(value), value


def _pick_section(rng: np.random.Generator, sections: Sections) -> int:
    return int(rng.integers(len(sections)))


def _index(sections: Sections, where: int | bytes) -> int:
    """The position of a section given by position or by tag (META shifts the ones after HEAD)."""
    return where if isinstance(where, int) else [tag for tag, _ in sections].index(where)


def _payload(sections: Sections, tag: bytes) -> bytes:
    return sections[_index(sections, tag)][1]


def _with_payload(sections: Sections, where: int | bytes, payload: bytes) -> Sections:
    """``sections`` with one payload replaced; ``where`` is a position or a tag."""
    index = _index(sections, where)
    out = list(sections)
    out[index] = (out[index][0], payload)
    return out


def _bit_flip(rng, seed, seeds):
    """1-4 random bits flipped anywhere; CRCs left as they are (mostly CRC errors, on purpose)."""
    data = bytearray(seed.data)
    if not data:
        return bytes(data)
    for _ in range(rng.integers(1, 5)):
        pos = int(rng.integers(len(data)))
        data[pos] ^= 1 << int(rng.integers(8))
    return bytes(data)


def _mutate_payload_bytes(rng, seed, change) -> bytes:
    """1-4 bytes of one section's payload replaced by ``change(old_byte)``, CRC re-fixed."""
    sections = seed.sections
    index = _pick_section(rng, sections)
    payload = bytearray(sections[index][1])
    if payload:
        for _ in range(rng.integers(1, 5)):
            pos = int(rng.integers(len(payload)))
            payload[pos] = change(payload[pos])
    return seed.rebuild(_with_payload(sections, index, bytes(payload)))


def _payload_bit_flip(rng, seed, seeds):
    """1-4 bits flipped inside one section's payload (in version 4 WGHT and TABL: inside exp-Golomb bit
    streams), CRC re-fixed."""
    return _mutate_payload_bytes(rng, seed, lambda old: old ^ (1 << int(rng.integers(8))))


def _payload_byte_set(rng, seed, seeds):
    """1-4 payload bytes of one section set to boundary or random values, CRC re-fixed."""
    return _mutate_payload_bytes(
        rng, seed, lambda old: int(rng.choice([0, 1, 0x7F, 0x80, 0xFE, 0xFF, int(rng.integers(256))]))
    )


def _head_field(rng, seed, seeds):
    """1-3 HEAD fields (any of them, level cells included) set to boundary/nearby values, CRC re-fixed."""
    sections = seed.sections
    payload = _payload(sections, b"HEAD")
    fields = head_fields(payload, seed.version)
    for _ in range(rng.integers(1, 4)):
        payload = _set_random_field(rng, payload, fields)
    return seed.rebuild(_with_payload(sections, b"HEAD", payload))


def _set_random_field(rng, payload: bytes, fields) -> bytes:
    """One of ``fields`` (name, struct code, offset) set to an interesting value near or far from its own."""
    _, code, offset = fields[int(rng.integers(len(fields)))]
    (original,) = struct.unpack_from("<" + code, payload, offset)
    return set_field(payload, code, offset, interesting_value(rng, code, original))


def _huge_header(rng, seed, seeds):
    """Image size, level cells or hash size pushed to (and past) their limits, CRC re-fixed (values are
    clamped to the field's type: version 4 level cells are u16)."""
    sections = seed.sections
    payload = _payload(sections, b"HEAD")
    big = [C.MAX_IMAGE_SIDE, C.MAX_IMAGE_SIDE + 1, 0xFFFFFFFF, 1 << 31, C.MAX_GRID_CELLS_PER_SIDE]
    for name, code, offset in head_fields(payload, seed.version):
        roll = rng.random()
        if name in ("width", "height") and roll < 0.5:
            payload = set_field(payload, code, offset, int(rng.choice(big + [1, 2])))
        elif name.startswith("level") and roll < 0.3:
            payload = set_field(payload, code, offset, int(rng.choice(big + [4095, 65535, C.MAX_CELLS_U16 - 1])))
        elif name == "log2_hashmap_size" and roll < 0.5:
            payload = set_field(payload, code, offset, int(rng.choice([C.MAX_LOG2_HASHMAP_SIZE, 25, 255])))
    return seed.rebuild(_with_payload(sections, b"HEAD", payload))


def _table_field(rng, seed, seeds):
    """TABL changed where it matters, CRC re-fixed. Version 4 (exp-Golomb histograms, re-packed): counts
    moved between symbols (the sum stays right, so the range decoder runs with another model and the
    histogram check must catch it), a count changed, a first/last count zeroed, min_symbol or the table size
    changed, another order (valid or above ``MAX_ORDER``), a histogram whose int64 sum wraps around, tables
    dropped or added, trailing bits; a version 6 context block is kept as it is (:func:`_context_field`
    changes it). Versions 2-3: a field (min_symbol, num_symbols or a count) changed."""
    sections = seed.sections
    if seed.version < C.COMPACT_SIDE_INFO_VERSION:
        return _count_table_field(rng, seed, sections)
    payload = _payload(sections, b"TABL")
    header = parsed_seed(seed.data).header if _is_valid(seed) else None
    parsed_tabl = read_tabl(payload, header) if header is not None and header.range_coded else None
    context, tables = parsed_tabl if parsed_tabl is not None else (None, None)
    if not tables:  # a float16 seed (no tables): junk in its empty TABL
        junk = bytes(rng.integers(0, 256, int(rng.integers(1, 5)), dtype=np.uint8))
        return seed.rebuild(_with_payload(sections, b"TABL", payload + junk))
    coded = table_symbol_counts(header)
    for _ in range(int(rng.choice([1, 1, 1, 2, 3]))):
        index = int(rng.integers(len(tables)))
        _mutate_histogram(rng, tables, index, coded[index])
    trailing: list[tuple[np.ndarray, int]] = []
    roll = rng.random()
    if roll < 0.05:
        trailing = [(np.array([int(rng.integers(0, 64))]), 0)]  # a whole extra code: non-zero trailing bits
    elif roll < 0.08:
        tables.append(HistogramTable(0, 0, np.array([1])))  # one table too many
    elif roll < 0.11:
        tables.pop()  # one table too few
    out = pack_tabl(context, tables, trailing)
    if roll > 0.97:
        out += b"\x00"  # a whole byte of zero padding
    return seed.rebuild(_with_payload(sections, b"TABL", out))


def _mutate_histogram(rng: np.random.Generator, tables: list[HistogramTable], index: int, coded: int) -> None:
    table = tables[index]
    hist = table.histogram.copy()
    n = hist.size
    choice = int(rng.choice(8, p=[0.25, 0.15, 0.1, 0.15, 0.12, 0.13, 0.05, 0.05]))
    if choice == 0 and n < 2:
        choice = 1
    if choice == 0:  # move occurrences between two symbols: the sum stays right
        a, b = (int(i) for i in rng.choice(n, 2, replace=False))
        move = int(rng.integers(0, hist[a] + 1))
        hist[a] -= move
        hist[b] += move
    elif choice == 1:  # one count off: the sum no longer matches the layout
        k = int(rng.integers(n))
        hist[k] = max(0, int(hist[k]) + int(rng.choice([-2, -1, 1, 2, coded, 1 << 20, 1 << 40])))
    elif choice == 2:  # first or last symbol never occurs (the sum kept right where possible)
        k = 0 if rng.random() < 0.5 else n - 1
        if n >= 2:
            hist[n - 1 - k] += hist[k]
        hist[k] = 0
    elif choice == 3:  # another min_symbol: shifted (a valid file with other latents) or at/past the limits
        shift = [-1, 1, -2, 2, -(1 << 31), 1 << 40]
        edges = [C.MIN_SYMBOL, C.MIN_SYMBOL - 1, C.MAX_SYMBOL - n + 1, C.MAX_SYMBOL - n + 2, C.MAX_SYMBOL]
        table.min_symbol = int(rng.choice(edges)) if rng.random() < 0.5 else table.min_symbol + int(rng.choice(shift))
    elif choice == 4:  # another size: symbols added (zero or not) or dropped, up to past MAX_TABLE_SYMBOLS
        size = int(rng.choice([1, 2, max(n - 1, 1), n + 1, n + 2, C.MAX_TABLE_SYMBOLS, C.MAX_TABLE_SYMBOLS + 1]))
        grown = np.zeros(size, dtype=np.int64)
        grown[: min(n, size)] = hist[: min(n, size)]
        if size > n and rng.random() < 0.5:
            grown[-1] = int(rng.integers(0, 3))
        hist = grown
    elif choice == 5:  # another order: a valid one (the same table, other bits) or one above MAX_ORDER
        table.order = int(rng.choice([0, 1, 2, 5, 10, 16, MAX_ORDER, MAX_ORDER + 1, 31, 40]))
    elif choice == 6:  # huge entries whose int64 sum wraps around to the right total
        big = 1 << 56
        hist = np.concatenate([[max(coded - 1, 0)], np.full(256, big, dtype=np.int64), [1]]).astype(np.int64)
        table.order = MAX_ORDER
    else:  # a huge count: its code's zero prefix is near or past the reader's limit
        hist[int(rng.integers(n))] = (1 << int(rng.choice([16, 31, 32, 33, 40]))) - 1
    table.histogram = hist


_WEIGHT_VALUES = [MAX_WEIGHT, -MAX_WEIGHT, MAX_WEIGHT + 1, -MAX_WEIGHT - 1, 0, 1, -1, 1 << 40]
_BIAS_VALUES = [MAX_BIAS, -MAX_BIAS, MAX_BIAS + 1, -MAX_BIAS - 1, 0, 1 << 12, -(1 << 12), 1 << 40]


def _context_field(rng, seed, seeds):
    """A version 6 context block (SPEC §5a) changed, CRC re-fixed: its codes decoded, integers changed and
    re-packed (a weight or bias at, past or far beyond its bound, a tensor negated, halved or zeroed, a
    level's low or span moved, also out of the symbol range or past ``MAX_LEVEL_SPAN``: valid networks
    predict other centres and buckets, so LATN decodes to other latents, which may leave their range), a
    tensor re-coded at another order (an equivalent file) or its order set above ``MAX_ORDER``, the block
    cut short or followed by a code; or HEAD ``context_width`` changed under the same TABL. A version 6
    seed without a network gets one: HEAD ``context_width`` set and a random block prepended, its tables
    kept or reduced to those the new layout has. Older seeds: :func:`_table_field`."""
    sections = seed.sections
    if seed.version < C.CONTEXT_VERSION or not _is_valid(seed) or not parsed_seed(seed.data).header.range_coded:
        return _table_field(rng, seed, seeds)
    parsed = parsed_seed(seed.data)
    header = parsed.header
    head = _payload(sections, b"HEAD")
    at = {name: (code, offset) for name, code, offset in head_fields(head, seed.version)}["context_width"]
    parsed_tabl = read_tabl(_payload(sections, b"TABL"), header)
    if parsed_tabl is None:
        return _table_field(rng, seed, seeds)
    context, tables = parsed_tabl
    if context is None:
        return _add_context(rng, seed, header, head, at, tables)
    if rng.random() < 0.1:  # another width: the same TABL now misparses (or is a network of another shape)
        width = int(rng.choice([0, 1, header.config.context_width - 1, header.config.context_width + 1,
                                C.MAX_CONTEXT_WIDTH, C.MAX_CONTEXT_WIDTH + 1, 255]))
        head = set_field(head, *at, max(width, 0))
        return seed.rebuild(_with_payload(sections, b"HEAD", head))
    trailing: list[tuple[np.ndarray, int]] = []
    cut = 0
    for _ in range(int(rng.choice([1, 1, 2, 3]))):
        choice = int(rng.choice(7, p=[0.2, 0.15, 0.15, 0.15, 0.15, 0.1, 0.1]))
        tensor = int(rng.integers(len(context.tensors)))
        values = context.tensors[tensor]
        if choice == 0 and values.size:  # one value at, past or far beyond its bound, or nudged
            bounds = _BIAS_VALUES if CONTEXT_TENSORS[tensor] in ("b1", "level_bias") else _WEIGHT_VALUES
            k = int(rng.integers(values.size))
            values[k] = int(rng.choice(bounds)) if rng.random() < 0.6 else values[k] + int(rng.integers(-4096, 4097))
        elif choice == 1 and values.size:  # a whole tensor negated, halved, doubled or zeroed: a valid network
            values[:] = [-values, values // 2, 2 * values, 0 * values][int(rng.integers(4))]
        elif choice == 2 and context.low.size:  # a level's low moved: other clipping, also out of range
            slot = int(rng.integers(context.low.size))
            span = int(context.span[slot])
            edges = [C.MIN_SYMBOL, C.MIN_SYMBOL - 1, C.MAX_SYMBOL - span + 1, C.MAX_SYMBOL - span + 2, -(1 << 31)]
            context.low[slot] = int(rng.choice(edges)) if rng.random() < 0.3 else context.low[slot] + int(
                rng.choice([-2, -1, 1, 2]))
        elif choice == 3 and context.span.size:  # a level's span changed: other tables, also past the limit
            slot = int(rng.integers(context.span.size))
            span = int(context.span[slot])
            context.span[slot] = int(rng.choice([1, 2, max(span - 1, 1), span + 1, span + 2, MAX_LEVEL_SPAN,
                                                 MAX_LEVEL_SPAN + 1, 1 << 20]))
        elif choice == 4:  # re-coded at another valid order (an equivalent file) or one above MAX_ORDER
            context.orders[tensor] = int(rng.choice([0, 1, 3, 8, 12, 16, MAX_ORDER, MAX_ORDER + 1, 40]))
        elif choice == 5:  # the order changed but the values coded at the old one: they misparse
            old = context.orders[tensor]
            codes = context.codes()
            codes[2 * tensor] = (np.array([int(rng.choice([0, 1, 2, 5, max(old - 1, 0), old + 1]))]), 0)
            stream = pack_histograms(tables, [], codes)
            return seed.rebuild(_with_payload(sections, b"TABL", stream))
        elif rng.random() < 0.5:  # the block cut short: the tables start where level ranges were expected
            cut = int(rng.integers(1, 2 * max(context.low.size, 1) + 1))
        else:
            trailing = [(np.array([int(rng.integers(0, 64))]), 0)]
    codes = context.codes()
    if cut:
        ranges, order = codes[-1]
        codes[-1] = (ranges[: max(ranges.size - cut, 0)], order)
    stream = pack_histograms(tables, trailing, codes)
    return seed.rebuild(_with_payload(sections, b"TABL", stream))


def _add_context(rng, seed, header: Header, head: bytes, at: tuple[str, int], tables) -> bytes:
    """A context network where the seed has none: HEAD ``context_width`` set, a random valid block before
    the tables (latent ranges drawn small), the tables kept or reduced to the new layout's (the LATN words
    were coded without the network: mostly errors, sometimes other latents that decode)."""
    width = int(rng.integers(1, C.MAX_CONTEXT_WIDTH + 1))
    head = set_field(head, *at, width)
    new = replace(header, config=replace(header.config, context_width=width))
    levels = len(new.layout.context_levels)
    tensors = [rng.integers(-(1 << 14), (1 << 14) + 1, int(np.prod(shape))).astype(np.int64)
               for shape in context_shapes(width, levels)]
    low = rng.integers(-4, 1, levels).astype(np.int64)
    codes = ContextCodes([int(rng.integers(0, 15)) for _ in tensors], tensors, low,
                         rng.integers(1, 9, levels).astype(np.int64))
    if rng.random() < 0.5 and new.config.latent_dim == 1:  # only the tables the new layout has
        old_keys = header.layout.table_keys
        tables = [tables[old_keys.index(key)] for key in new.layout.table_keys if key in old_keys]
    sections = _with_payload(seed.sections, b"HEAD", head)
    return seed.rebuild(_with_payload(sections, b"TABL", pack_tabl(codes, tables)))


def _count_table_field(rng, seed, sections):
    """Versions 2-3: a TABL field changed, or a count moved between two symbols (the table stays valid)."""
    payload = _payload(sections, b"TABL")
    fields = count_table_fields(payload)
    if not fields:
        return seed.rebuild(sections)
    if rng.random() < 0.4:
        counts = [f for f in fields if ".count" in f[0]]
        if len(counts) >= 2:
            (_, _, a), (_, _, b) = (counts[i] for i in rng.choice(len(counts), 2, replace=False))
            (va,), (vb,) = struct.unpack_from("<H", payload, a), struct.unpack_from("<H", payload, b)
            move = int(rng.integers(0, va + 1))  # stored counts are count - 1, so moving <= va keeps a >= 1
            if vb + move <= 0xFFFF:
                payload = set_field(set_field(payload, "H", a, va - move), "H", b, vb + move)
            return seed.rebuild(_with_payload(sections, b"TABL", payload))
    return seed.rebuild(_with_payload(sections, b"TABL", _set_random_field(rng, payload, fields)))


def _bit_flips(rng, seed: Seed, where: int | bytes) -> bytes:
    """1-4 bits flipped in one section's payload (by position or tag), CRC re-fixed."""
    sections = seed.sections
    index = _index(sections, where)
    payload = bytearray(sections[index][1])
    for _ in range(rng.integers(1, 5) if payload else 0):
        payload[int(rng.integers(len(payload)))] ^= 1 << int(rng.integers(8))
    return seed.rebuild(_with_payload(sections, index, bytes(payload)))


def _is_valid(seed: Seed) -> bool:
    try:
        parsed_seed(seed.data)
    except ShcFormatError:
        return False
    return True


def _section_length(rng, seed, seeds):
    """One section's declared length set to a wrong, boundary or huge value (framing broken, CRC untouched)."""
    sections = seed.sections
    index = _pick_section(rng, sections)
    parts = [seed.prefix] + [frame_section(tag, payload) for tag, payload in sections]
    length = len(sections[index][1])
    value = int(rng.choice([0, 1, 3, length - 1, length + 1, length + 4, length * 2, C.MAX_SECTION_BYTES,
                            C.MAX_SECTION_BYTES + 1, 1 << 31, 0xFFFFFFFF, int(rng.integers(1 << 32))]))
    part = bytearray(parts[index + 1])
    struct.pack_into("<I", part, LENGTH_AT, min(max(value, 0), 0xFFFFFFFF))
    parts[index + 1] = bytes(part)
    return b"".join(parts) + seed.tail


def _section_resize(rng, seed, seeds):
    """Bytes inserted into or deleted from one section's payload, with length and CRC re-fixed."""
    sections = seed.sections
    index = _pick_section(rng, sections)
    payload = sections[index][1]
    count = int(rng.choice([1, 2, 3, 4, 8, int(rng.integers(1, 64))]))
    pos = int(rng.integers(len(payload) + 1))
    if rng.random() < 0.5 and payload:
        payload = payload[:pos] + payload[pos + count :]
    else:
        payload = payload[:pos] + bytes(rng.integers(0, 256, count, dtype=np.uint8)) + payload[pos:]
    return seed.rebuild(_with_payload(sections, index, payload))


def _random_words(rng, old: bytes) -> bytes:
    """Random words in place of ``old`` (a range-coded stream): empty to twice as long, sometimes after a
    prefix of the real words (which then decode further before they fail)."""
    num_words = len(old) // 4
    choices = [0, 1, 2, num_words - 1, num_words, num_words + 1, int(rng.integers(2 * num_words + 2))]
    new_words = max(int(rng.choice(choices)), 0)  # a seed may have no words at all (one-symbol tables only)
    words = rng.integers(0, 1 << 32, new_words, dtype=np.uint64).astype("<u4")
    if rng.random() < 0.3 and new_words:
        keep = np.frombuffer(old[: 4 * num_words], dtype="<u4")[: int(rng.integers(new_words + 1))]
        words[: keep.size] = keep
    return words.tobytes()


def _segments(seed: Seed) -> list[bytes] | None:
    """A version-7 seed's latent segments (None for an older seed, or one whose index does not add up)."""
    if seed.version < C.SEGMENTED_VERSION or seed.sections is None:
        return None
    return split_segments(_payload(seed.sections, b"LATN"), seed.tail)


def _with_segments(seed: Seed, segments: Sequence[bytes], entries: Sequence[tuple[int, int]] | None = None) -> bytes:
    """The seed with other latent segments after LATN and an index of ``entries`` (default: the true length
    and CRC32 of each segment, so the mutation reaches the segment's decoder), LATN's CRC re-fixed."""
    if entries is None:
        entries = [(len(raw), zlib.crc32(raw)) for raw in segments]
    sections = _with_payload(seed.sections, b"LATN", pack_index(entries))
    return seed.rebuild(sections, tail=b"".join(segments))


def _latent_words(rng, seed, seeds):
    """Version 7: one latent segment replaced by random words (empty to twice as long), its index entry
    (length and CRC32) re-fixed; before version 7 the LATN payload, its CRC re-fixed."""
    segments = _segments(seed)
    if segments is None:
        sections = seed.sections
        return seed.rebuild(_with_payload(sections, b"LATN", _random_words(rng, _payload(sections, b"LATN"))))
    k = int(rng.integers(len(segments)))
    segments[k] = _random_words(rng, segments[k])
    return _with_segments(seed, segments)


def _segment_index(rng, seed, seeds):
    """Version 7: the LATN index (SPEC §6) changed, LATN's CRC re-fixed: a segment's length set to a
    nearby, zero, unaligned, another segment's or a huge value (its CRC kept: truncation, misaligned or
    CRC errors, trailing bytes); the boundary between two segments moved by whole words with both CRCs
    re-fixed (each segment then decodes other words); a CRC changed; entries dropped, repeated or added
    (another count than the layout's); two segments swapped, entries and bytes together; a partial entry;
    every segment emptied. Before version 7: :func:`_latent_words`."""
    segments = _segments(seed)
    if segments is None:
        return _latent_words(rng, seed, seeds)
    entries = [(len(raw), zlib.crc32(raw)) for raw in segments]
    k = int(rng.integers(len(entries)))
    length, crc = entries[k]
    choice = int(rng.choice(8, p=[0.25, 0.15, 0.1, 0.15, 0.1, 0.1, 0.1, 0.05]))
    if choice == 0:  # a length that lies, the bytes as they are
        other = entries[int(rng.integers(len(entries)))][0]
        lies = [0, 1, length - 1, length + 1, length - 4, length + 4, length + 8, 2 * length, other,
                C.MAX_SECTION_BYTES, C.MAX_SECTION_BYTES + 4, 0xFFFFFFFC, 0xFFFFFFFF, int(rng.integers(1 << 32))]
        entries[k] = (max(int(rng.choice(lies)), 0), crc)
        return _with_segments(seed, segments, entries)
    if choice == 1 and len(segments) > 1:  # a boundary moved by whole words, both CRCs right
        j = min(k, len(segments) - 2)
        joined = segments[j] + segments[j + 1]
        cut = min(max(len(segments[j]) + 4 * int(rng.choice([-2, -1, 1, 2])), 0), len(joined))
        segments[j], segments[j + 1] = joined[:cut], joined[cut:]
        return _with_segments(seed, segments)
    if choice in (1, 2):  # a wrong CRC
        entries[k] = (length, crc ^ (1 << int(rng.integers(32))))
        return _with_segments(seed, segments, entries)
    if choice == 3:  # another number of entries than the layout's segments
        roll = rng.random()
        if roll < 0.4:
            del entries[k]
        elif roll < 0.7:
            entries.insert(k, entries[k])
        else:
            entries.append((0, 0))
        return _with_segments(seed, segments, entries)
    if choice == 4 and len(segments) > 1:  # two segments swapped: every CRC right, each decoded as the other
        j = int(rng.integers(len(segments)))
        segments[k], segments[j] = segments[j], segments[k]
        return _with_segments(seed, segments)
    if choice in (4, 5):  # a partial entry: not a whole number of 8-byte entries
        payload = pack_index(entries)
        cut = int(rng.integers(1, C.SEGMENT_INDEX_ENTRY_BYTES))
        payload = payload[:-cut] if rng.random() < 0.5 else payload + bytes(C.SEGMENT_INDEX_ENTRY_BYTES - cut)
        return seed.rebuild(_with_payload(seed.sections, b"LATN", payload))
    if choice == 6:  # an entry from another seed, or the whole index of another seed with its segments
        other = _segments(seeds[int(rng.integers(len(seeds)))])
        if other:
            if rng.random() < 0.5:
                return _with_segments(seed, other)
            segments[k] = other[int(rng.integers(len(other)))]
            return _with_segments(seed, segments)
    return _with_segments(seed, [b""] * len(segments))  # every segment empty


def _segment_bytes(rng, seed, seeds):
    """Version 7: bytes changed inside one latent segment: 1-4 bits flipped or bytes set, its CRC32 in the
    index re-fixed (the segment's range decoder or float16 check meets them) or left (a CRC error naming
    the segment); or its bytes cut short or extended by whole words, length and CRC re-fixed. Before
    version 7: :func:`_latent_words`."""
    segments = _segments(seed)
    if segments is None:
        return _latent_words(rng, seed, seeds)
    filled = [k for k, raw in enumerate(segments) if raw] or [0]
    k = int(rng.choice(filled))
    raw = bytearray(segments[k])
    entries = [(len(r), zlib.crc32(r)) for r in segments]
    roll = rng.random()
    if roll < 0.7 and raw:
        for _ in range(int(rng.integers(1, 5))):
            pos = int(rng.integers(len(raw)))
            if rng.random() < 0.7:
                raw[pos] ^= 1 << int(rng.integers(8))
            else:
                raw[pos] = int(rng.choice([0, 0xFF, 0x7C, 0x80, int(rng.integers(256))]))
    elif roll < 0.85:
        raw = raw[: max(len(raw) - 4 * int(rng.integers(1, 4)), 0)]
    else:
        raw += rng.integers(0, 256, 4 * int(rng.integers(1, 4)), dtype=np.uint8).tobytes()
    segments[k] = bytes(raw)
    if len(raw) != entries[k][0] or rng.random() < 0.6:
        entries[k] = (len(raw), zlib.crc32(raw))
    return _with_segments(seed, segments, entries)


def _segment_truncate(rng, seed, seeds):
    """Cut at a section or latent-segment boundary, or one byte before or after it
    (:func:`truncation_points`; every one of them is covered by ``--sweep-boundaries``)."""
    points = truncation_points(seed.data)
    if not points:
        return _truncate(rng, seed, seeds)
    return seed.data[: int(rng.choice(points))]


_SPECIAL_STEPS = [np.inf, -np.inf, np.nan, -0.0, -1.0, 3.0e38, float(np.finfo(np.float32).max), 1e-45, 0.0, 1e4]


def _special_weights(rng, seed, seeds):
    """WGHT changed where it matters, CRC re-fixed. Version 4 (per tensor f32 step + u8 order at a 5-byte
    stride, then one exp-Golomb bit stream): steps set to inf, NaN, -0, negative, huge, subnormal or zero;
    orders set above ``MAX_ORDER`` or to another value (the codes then misparse); values set to or past
    ``WEIGHT_CODE_MAX`` and re-packed; everything re-packed at other valid orders (an equivalent file);
    codes truncated or followed by trailing bits. Versions 2-3: f32 scales and int8 values set to -128."""
    sections = seed.sections
    if seed.version < C.COMPACT_SIDE_INFO_VERSION:
        return _special_int8_weights(rng, seed, sections)
    if not _is_valid(seed):
        return _bit_flips(rng, seed, b"WGHT")
    parsed = parsed_seed(seed.data)
    shapes = weight_shapes(parsed.header)
    heads = bytearray(_payload(sections, b"WGHT")[: 5 * len(shapes)])
    orders = [heads[5 * i + 4] for i in range(len(shapes))]
    values = parsed.weights.values.copy()
    sizes = [int(np.prod(shape)) for _, shape in shapes]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    truncate, trailing = 0, []
    for _ in range(rng.integers(1, 4)):
        tensor = int(rng.integers(len(shapes)))
        roll = rng.random()
        if roll < 0.3:
            step = _SPECIAL_STEPS[int(rng.integers(len(_SPECIAL_STEPS)))]
            heads[5 * tensor : 5 * tensor + 4] = struct.pack("<f", step)
        elif roll < 0.45:  # the order byte alone: the codes stay, so they misparse (or it is above MAX_ORDER)
            heads[5 * tensor + 4] = int(rng.choice([0, 1, 2, 8, 16, MAX_ORDER, MAX_ORDER + 1, 0x80, 0xFF]))
        elif roll < 0.65:  # values at and past the limit, coded with the tensor's order
            at = int(rng.integers(starts[tensor], starts[tensor + 1]))
            limit = C.WEIGHT_CODE_MAX
            values[at] = int(rng.choice([limit, -limit, limit + 1, -limit - 1, 1 << 31, -(1 << 40)]))
        elif roll < 0.8:  # re-coded with another order, stored with it: an equivalent file
            orders[tensor] = int(rng.choice([0, 1, 3, 7, 12, 16, MAX_ORDER]))
            heads[5 * tensor + 4] = orders[tensor]
        elif roll < 0.9:
            truncate = int(rng.integers(1, 4))
        else:
            trailing = [(np.array([int(rng.integers(0, 8))]), 0)]
    codes = [(zigzag(values[starts[i] : starts[i + 1]]), orders[i]) for i in range(len(shapes))]
    stream = pack(codes + trailing)
    return seed.rebuild(_with_payload(sections, b"WGHT", bytes(heads) + stream[: len(stream) - truncate]))


def _special_int8_weights(rng, seed, sections):
    """Versions 2-3: weight scales set to special floats, or int8 values set to -128."""
    payload = bytearray(_payload(sections, b"WGHT"))
    if not _is_valid(seed):
        return _bit_flips(rng, seed, b"WGHT")
    header = parsed_seed(seed.data).header
    starts, offset = [], 0
    for _, shape in weight_shapes(header):
        starts.append(offset)
        offset += 4 + int(np.prod(shape))
    for _ in range(rng.integers(1, 4)):
        start = starts[int(rng.integers(len(starts)))]
        if rng.random() < 0.6:
            payload[start : start + 4] = struct.pack("<f", _SPECIAL_STEPS[int(rng.integers(len(_SPECIAL_STEPS)))])
        elif offset > start + 4:
            payload[int(rng.integers(start + 4, offset))] = 0x80  # int8 -128, outside the allowed range
    return seed.rebuild(_with_payload(sections, b"WGHT", bytes(payload)))


def _tag_version(rng, seed, seeds):
    """Magic, version byte (also another readable version: the layout then misparses) or a section tag
    changed, or two sections swapped (CRCs stay consistent)."""
    sections = seed.sections
    choice = rng.integers(4)
    if choice == 0:
        prefix = bytearray(seed.prefix)
        prefix[int(rng.integers(len(C.MAGIC)))] ^= 1 << int(rng.integers(8))
        return seed.rebuild(sections, bytes(prefix))
    if choice == 1:
        version = int(rng.choice([0, 1, *C.READABLE_VERSIONS, C.FORMAT_VERSION + 1, 0x7F, 0xFF]))
        return seed.rebuild(sections, C.MAGIC + bytes([version]))
    index = _pick_section(rng, sections)
    if choice == 2:
        tag = rng.choice([b"head", b"WGHT", b"XXXX", b"\0\0\0\0", bytes(rng.integers(0, 256, 4, dtype=np.uint8))])
        out = list(sections)
        out[index] = (bytes(tag), out[index][1])
        return seed.rebuild(out)
    other = _pick_section(rng, sections)
    out = list(sections)
    out[index], out[other] = out[other], out[index]
    return seed.rebuild(out)


def _truncate(rng, seed, seeds):
    """Cut at a random length (every length is covered by ``--sweep-truncations``)."""
    return seed.data[: int(rng.integers(len(seed.data)))] if seed.data else seed.data


def _append(rng, seed, seeds):
    """Trailing bytes after the last section: a few random bytes, or a repeated section."""
    if rng.random() < 0.5 or seed.sections is None:
        return seed.data + bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
    tag, payload = seed.sections[_pick_section(rng, seed.sections)]
    return seed.data + frame_section(tag, payload)


def _splice_sections(rng, seed, seeds):
    """Each section from this seed or another by tag (all CRCs valid): mismatched header, weights, tables,
    latents; sometimes the other seed's META added. A version-7 LATN index taken from the other seed comes
    with its segments half of the time (an index that matches the bytes after it, not the header)."""
    other = seeds[int(rng.integers(len(seeds)))]
    mine, theirs = seed.sections, other.sections
    if theirs is None:
        return _splice_bytes(rng, seed, seeds)
    their = dict(theirs)
    picks = rng.random(len(mine)) < 0.5
    if not picks.any():
        picks[int(rng.integers(len(mine)))] = True
    out = [(tag, their[tag]) if pick and tag in their else (tag, payload) for pick, (tag, payload) in zip(picks, mine)]
    if C.META_TAG in their and C.META_TAG not in dict(mine) and rng.random() < 0.3:
        out.insert(1, (C.META_TAG, their[C.META_TAG]))
    took_latn = bool(picks[[tag for tag, _ in mine].index(b"LATN")])
    return seed.rebuild(out, tail=other.tail if took_latn and rng.random() < 0.5 else None)


def _splice_bytes(rng, seed, seeds):
    """A prefix of this seed followed by a suffix of another one."""
    other = seeds[int(rng.integers(len(seeds)))].data
    return seed.data[: int(rng.integers(len(seed.data) + 1))] + other[int(rng.integers(len(other) + 1)) :]


def _random_bytes(rng, seed, seeds):
    """Random bytes: raw, after a valid magic and version, or as four well-framed sections with random payloads
    (a LATN of whole 8-byte index entries, then random bytes where the segments would be)."""
    choice = rng.integers(3)
    if choice == 0:
        return bytes(rng.integers(0, 256, int(rng.integers(0, 257)), dtype=np.uint8))
    if choice == 1:
        return PREFIX + bytes(rng.integers(0, 256, int(rng.integers(0, 257)), dtype=np.uint8))
    head_len = head_payload_bytes(int(rng.integers(0, 4)))
    lengths = [head_len, int(rng.integers(0, 128)), int(rng.integers(0, 64)), 8 * int(rng.integers(0, 16))]
    sections = [(tag, bytes(rng.integers(0, 256, n, dtype=np.uint8))) for tag, n in zip(C.SECTION_TAGS, lengths)]
    if rng.random() < 0.3:  # and a META of random bytes
        sections.insert(1, (C.META_TAG, bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8))))
    return assemble(sections, tail=bytes(rng.integers(0, 256, 4 * int(rng.integers(0, 32)), dtype=np.uint8)))


def _metadata(rng, seed, seeds):
    """META changed, CRC re-fixed: removed (a valid file), inserted (valid entries: version 5 decodes,
    earlier versions must refuse the tag), or its entries re-framed: an unknown or repeated key, the keys
    out of order, a declared length that lies (also past ``MAX_META_ENTRY_BYTES``), a zero-length entry, an
    ICC profile or EXIF block whose first bytes are wrong or that is cut short, bits flipped where a value
    is free (still valid), trailing bytes, no entries at all."""
    sections = list(seed.sections)
    if C.META_TAG not in [tag for tag, _ in sections]:
        values = [(b"ICCP", fake_icc(rng, int(rng.integers(128, 600)))), (b"EXIF", fake_exif(rng))]
        kept = [(key, value) for key, value in values if rng.random() < 0.7] or values[1:]
        sections.insert(1, (C.META_TAG, pack_meta([(key, len(value), value) for key, value in kept])))
        if rng.random() < 0.25:  # the valid insertion as it is
            return seed.rebuild(sections)
    index = [tag for tag, _ in sections].index(C.META_TAG)
    entries = meta_entries(sections[index][1]) or [_exif_entry(rng)]
    at = int(rng.integers(len(entries)))
    key, length, value = entries[at]
    free_from = ICC_HEADER_BYTES if key == b"ICCP" else len(EXIF_PREFIX) + 4  # bytes no check looks at
    choice = int(rng.integers(10))
    if choice == 0:  # removed: a file without metadata
        del sections[index]
        return seed.rebuild(sections)
    if choice == 1:
        keys = [b"iccp", b"XXXX", b"\0\0\0\0", b"ICCP", b"EXIF", bytes(rng.integers(0, 256, 4, dtype=np.uint8))]
        entries[at] = (keys[int(rng.integers(len(keys)))], length, value)
    elif choice == 2:  # the declared length lies: the entries misframe
        lies = [0, length - 1, length + 1, length + 4, C.MAX_META_ENTRY_BYTES, C.MAX_META_ENTRY_BYTES + 1,
                0xFFFFFFFF, int(rng.integers(1 << 32))]
        entries[at] = (key, max(lies[int(rng.integers(len(lies)))], 0), value)
    elif choice == 3:
        entries.append(entries[at])  # a repeated key
    elif choice == 4:
        if len(entries) > 1:
            entries.reverse()  # out of order
        else:
            entries.insert(0, _exif_entry(rng))  # EXIF before ICCP, or EXIF twice
    elif choice == 5:
        broken = bytearray(value)
        checked = range(ICC_SIGNATURE[0], ICC_SIGNATURE[0] + 4) if key == b"ICCP" else range(free_from)
        roll = rng.random()
        if roll < 0.5 and len(broken) >= checked.stop:  # the ICC signature, or the EXIF prefix and TIFF mark
            pos = int(rng.choice(checked))
            broken[pos] = (broken[pos] + int(rng.integers(1, 256))) % 256
        else:  # cut short: anywhere, or below the bytes the check needs
            broken = broken[: int(rng.integers(len(broken) + 1 if roll < 0.75 else min(len(broken), free_from) + 1))]
        entries[at] = (key, len(broken), bytes(broken))
    elif choice == 6 and len(value) > free_from:
        flipped = bytearray(value)
        for _ in range(int(rng.integers(1, 5))):
            flipped[int(rng.integers(free_from, len(flipped)))] ^= 1 << int(rng.integers(8))
        entries[at] = (key, length, bytes(flipped))
    elif choice == 7:
        junk = rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8).tobytes()
        return seed.rebuild(_with_payload(sections, index, pack_meta(entries) + junk))
    elif choice == 8:
        entries = []
    elif choice == 9:
        entries[at] = (key, 0, b"")  # a zero-length entry
    return seed.rebuild(_with_payload(sections, index, pack_meta(entries)))


MUTATORS: dict[str, tuple[Mutator, float, bool]] = {
    # name: (mutator, relative weight, needs a well-framed seed)
    "bit_flip": (_bit_flip, 1.0, False),
    "payload_bit_flip": (_payload_bit_flip, 2.0, True),
    "payload_byte_set": (_payload_byte_set, 1.5, True),
    "head_field": (_head_field, 3.0, True),
    "huge_header": (_huge_header, 1.0, True),
    "table_field": (_table_field, 2.0, True),
    "context_field": (_context_field, 1.5, True),
    "section_length": (_section_length, 1.0, True),
    "section_resize": (_section_resize, 1.0, True),
    "latent_words": (_latent_words, 1.5, True),
    "special_weights": (_special_weights, 0.5, True),
    "tag_version": (_tag_version, 0.5, True),
    "metadata": (_metadata, 1.0, True),
    "truncate": (_truncate, 1.0, False),
    "append": (_append, 0.5, False),
    "splice_sections": (_splice_sections, 1.0, True),
    "splice_bytes": (_splice_bytes, 0.5, False),
    "random_bytes": (_random_bytes, 1.0, False),
    "segment_index": (_segment_index, 1.5, True),
    "segment_bytes": (_segment_bytes, 1.5, True),
    "segment_truncate": (_segment_truncate, 1.0, True),
}


def mutate(rng: np.random.Generator, seed: Seed, seeds: Sequence[Seed], name: str | None = None) -> tuple[str, bytes]:
    """Apply one mutator (chosen by weight unless ``name`` is given) to ``seed``; returns (mutator name, bytes)."""
    framed = seed.sections is not None
    names = [n for n, (_, _, needs_framing) in MUTATORS.items() if framed or not needs_framing]
    if name is None:
        weights = np.array([MUTATORS[n][1] for n in names])
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    return name, MUTATORS[name][0](rng, seed, seeds)
