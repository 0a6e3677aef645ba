"""A short run of the fuzz harness (shc.tools.fuzz): no failures, and both clean errors and decodes occur.

The long runs are ``python -m shc.tools.fuzz --cases 10000`` and ``--sweep-boundaries`` /
``--sweep-truncations`` (results/fuzz/).
"""

from __future__ import annotations

import functools
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shc.format import constants as C
from shc.format.container import frame_section, read_file
from shc.format.decoder import decode_bytes
from shc.format.entropy import file_latents
from shc.format.errors import ShcFormatError
from shc.format.expgolomb import MAX_ORDER, pack, zigzag
from shc.format.header import HEAD_FIELDS, head_fixed_fields, head_payload_bytes
from shc.format.weights import weight_shapes
from shc.tools.fuzz import (
    CHUNKED_CELLS,
    SEEDS_DIR,
    ContextCodes,
    Seed,
    check_case,
    default_seeds,
    fake_exif,
    meta_entries,
    mutate,
    pack_histograms,
    pack_meta,
    pack_tabl,
    read_histograms,
    read_tabl,
    run_case,
    run_fuzz,
    segment_entries,
    split_file,
    synthetic_seeds,
    truncation_points,
)
from shc.tools.fuzz.mutators import MUTATORS
from shc.tools.fuzz.syntax import assemble, head_fields, set_field, split_sections


REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO / "tests" / "data"
COMPAT_DIR = GOLDEN_DIR / "compat"
SHIPPED_SEEDS_DIR = REPO / "tools" / "seeds"
NUM_GOLDEN = len(list(GOLDEN_DIR.glob("*.shc")))


@pytest.fixture(scope="module")
def seeds() -> list[Seed]:
    found = default_seeds()
    golden = sum(not s.name.startswith("synthetic_") for s in found)
    assert golden == NUM_GOLDEN == 5, f"seed files missing from {SEEDS_DIR}"
    return found


def test_shipped_seeds_are_the_golden_files() -> None:
    """tools/seeds/*.shc (package data) are byte-identical copies of tests/data/*.shc, so they cannot drift."""
    golden = {path.name: path.read_bytes() for path in GOLDEN_DIR.glob("*.shc")}
    shipped = {path.name: path.read_bytes() for path in SHIPPED_SEEDS_DIR.glob("*.shc")}
    assert golden and sorted(shipped) == sorted(golden), "rerun tests/data/make_golden.py"
    for name, data in golden.items():
        assert shipped[name] == data, f"tools/seeds/{name} differs from tests/data/{name}: rerun make_golden.py"


def test_fuzzer_framing_and_header_layout_come_from_the_container(seeds: list[Seed]) -> None:
    for seed in seeds:
        sections = split_sections(seed.data)
        assert sections is not None
        header = read_file(seed.data).header
        assert len(sections[0][1]) == head_payload_bytes(header.config.num_levels)
        assert [name for name, _, _ in head_fields(sections[0][1])][: len(HEAD_FIELDS)] == [f.name for f in HEAD_FIELDS]
        # version 7: the latent segments follow LATN, as long as its index says
        sections, tail = split_file(seed.data)
        assert len(tail) == sum(length for length, _ in segment_entries(sections[-1][1]))  # 0: flat files
        expected = C.FILE_PREFIX_BYTES + sum(C.SECTION_FRAME_BYTES + len(payload) for _, payload in sections) + len(tail)
        assert len(seed.data) == expected and seed.tail == tail and seed.rebuild(sections) == seed.data
    fixed = head_payload_bytes(0)
    assert fixed == 20 and [f.name for f in head_fixed_fields()][-3:] == ["interpolation", "channels", "context_width"]
    assert [head_payload_bytes(levels) for levels in (1, 12)] == [fixed + 4, fixed + 48]  # versions 4-7: u16 cells
    assert [head_payload_bytes(levels, version=6) for levels in (0, 1, 12)] == [20, 24, 68]  # 7's HEAD is 6's
    assert [head_payload_bytes(levels, version=5) for levels in (0, 1, 12)] == [19, 23, 67]  # SPEC.md §2
    assert [head_payload_bytes(levels, version=4) for levels in (0, 1, 12)] == [18, 22, 66]
    assert [head_payload_bytes(levels, version=3) for levels in (0, 1, 12)] == [17, 25, 113]  # version 3: 17 + 8 L
    assert [head_payload_bytes(levels, version=2) for levels in (0, 1, 12)] == [16, 24, 112]  # version 2: 16 + 8 L
    assert [code for name, code, _ in head_fields(sections[0][1]) if name.startswith("level")] == ["H"] * (
        2 * header.config.num_levels
    )
    framed = frame_section(b"LATN", b"\x01\x02", crc=0xDEADBEEF)
    assert len(framed) == 2 + C.SECTION_FRAME_BYTES and framed[-C.SECTION_CRC_BYTES :] == struct.pack("<I", 0xDEADBEEF)


@pytest.mark.slow
def test_short_fuzz_run_has_no_failures(seeds: list[Seed]) -> None:
    # case_seconds: a hang guard (as in the tests below), not a speed check that a busy machine could fail
    report = run_fuzz(seeds, cases=400, seed=12345, case_seconds=30.0, max_pixels=1 << 18, memory_limit_mb=512)
    details = "\n".join(f.detail for f in report.failures[:3])
    assert report.num_failures == 0, details
    assert report.seeds_decoded == report.seeds_total == len(seeds)  # every unmutated seed decodes
    assert report.cases == 400 + len(seeds)
    assert report.clean_errors > 100
    assert report.decoded > len(seeds)  # some mutated files decode too (e.g. changed weights)
    # the CRC re-fixing mutators get past the checksum: header, table and range-decoder checks fire
    kinds = " | ".join(report.error_kinds)
    for fragment in ("header field", "table", "could not be range-decoded", "CRC32 mismatch", "truncated",
                     "histogram", "WGHT section", "TABL section", "META", "context", "latent segment N is corrupted",
                     "the index of N latent segments"):
        assert fragment in kinds, fragment
    assert set(report.per_mutator) >= set(MUTATORS) | {"unmutated"}
    # the same bytes through ShcReader: whole files in full and in a region, files cut short from their prefix
    assert report.reader_kinds["whole: full, region and first level rendered"] >= report.decoded
    assert report.reader_kinds["whole: refused too"] > 0 and report.reader_kinds["refused at open"] > 100


def test_cases_are_reproducible(seeds: list[Seed]) -> None:
    for index in (0, 17, 399):
        first = mutate(np.random.default_rng([5, index]), seeds[0], seeds)
        second = mutate(np.random.default_rng([5, index]), seeds[0], seeds)
        assert first == second


def test_head_field_mutation_reaches_the_parser(seeds: list[Seed]) -> None:
    """Setting a header field and re-fixing the CRC changes what the parser reads, not the checksum."""
    seed = seeds[0]
    sections = split_sections(seed.data)
    assert sections is not None and [tag for tag, _ in sections] == list(C.SECTION_TAGS)
    assert assemble(sections, tail=seed.tail) == seed.data == seed.rebuild(sections)
    fields = {name: (code, offset) for name, code, offset in head_fields(sections[0][1])}
    header = read_file(seed.data).header
    assert set(fields) >= {"width", "height", "num_groups", f"level{header.config.num_levels - 1}.ny"}
    code, offset = fields["height"]
    taller = seed.rebuild([(b"HEAD", set_field(sections[0][1], code, offset, header.height + 3))] + sections[1:])
    assert read_file(taller).header.height == header.height + 3
    code, offset = fields["num_levels"]
    too_many = seed.rebuild([(b"HEAD", set_field(sections[0][1], code, offset, 200))] + sections[1:])
    with pytest.raises(ShcFormatError, match="num_levels=200"):
        read_file(too_many)


def test_run_case_classifies_outcomes(seeds: list[Seed]) -> None:
    assert run_case(seeds[0].data)[0] == "decoded"
    outcome, _, _, detail, _ = run_case(b"not a file")
    assert (outcome, detail) == ("error", "not an .shc file (wrong magic bytes)")
    outcome, _, _, detail, _ = run_case(seeds[0].data, case_seconds=0.0)  # any decode is "too slow" here
    assert outcome == "failure" and detail.startswith("too slow")
    outcome, _, _, detail, _ = run_case(12345)  # type: ignore[arg-type]  # not bytes: TypeError escapes
    assert outcome == "failure" and "TypeError" in detail
    # what ShcReader did with the same bytes
    assert check_case(seeds[0].data).reader == "whole: full, region and first level rendered"
    assert check_case(b"not a file").reader == "refused at open"
    assert check_case(seeds[0].data, reader=False).reader == ""


def test_synthetic_seeds_cover_hashed_levels_and_big_tables() -> None:
    parsed = {seed.name: read_file(seed.data) for seed in synthetic_seeds()}
    hashed = parsed["synthetic_hashed"].header
    assert hashed.level_rows() == [6, 16, 16] and hashed.config.num_groups == 2 and hashed.config.latent_dim == 2
    assert [len(t.counts) for t in parsed["synthetic_hashed"].tables] == [1, 7, 2, 40]
    assert len(parsed["synthetic_table4096"].tables[0].counts) == 4096
    assert int(np.abs(parsed["synthetic_table4096"].weights.values).max()) > C.WEIGHT_INT_MAX  # beyond int8
    rgba = parsed["synthetic_rgba_meta"]
    assert rgba.header.config.channels == 4 and rgba.icc_profile and rgba.exif and "metadata" in rgba.section_bytes
    context = parsed["synthetic_context"]
    layout = context.header.layout
    assert context.header.config.context_width == 6 and [level.dense for level in layout.levels] == [
        True, True, False, True, False, True]
    assert [level.index for level in layout.context_levels] == [1, 3, 5]  # dense and l >= 1; hashed ones factorized
    assert layout.table_keys == ((0, 0), (1, 0), (3, 0)) and len(context.tables) == 3  # groups 2 and 4: context only
    assert context.context.level_span.tolist()[2] == 1 and context.context.level_span.min() >= 1
    assert int(np.abs(context.context.w1).max()) == int(np.abs(context.context.w2).max()) == 1 << 20  # the bounds
    latents = file_latents(context)
    assert all(len(np.unique(latents[index])) > 5 for index in (1, 3)) and np.all(latents[5] == 2)
    chunked = parsed["synthetic_chunked"]
    layout = chunked.header.layout
    assert chunked.header.level_cells == CHUNKED_CELLS and chunked.header.config.log2_hashmap_size == 18
    assert [level.chunking is not None for level in layout.levels] == [False, False, True, True]
    assert [(level.chunking.side, level.chunking.count, level.chunking.dense, level.chunking.chunk_rows)
            for level in layout.levels[2:]] == [(256, 4, True, 0), (512, 6, False, 43690)]
    assert len(layout.segments) == len(chunked.latent_segments) == 11 and layout.segments[0].levels == (0, 1)
    assert [level.index for level in layout.context_levels] == [1]  # whole, as are its coarser levels
    assert all(words.size > 0 for words in chunked.latent_segments)
    assert all(seed.data[4] == C.FORMAT_VERSION for seed in synthetic_seeds())
    assert sum(len(seed.data) for seed in synthetic_seeds()) < 100_000  # small: the chunked one's latents are sparse
    assert [s.data for s in synthetic_seeds()] == [s.data for s in synthetic_seeds()]  # deterministic


def test_command_line_runs_without_torch(tmp_path) -> None:
    code = (
        "import sys\n"
        "from shc.tools.fuzz import main\n"
        "rc = main(['--cases', '40', '--seed', '3', '--no-synthetic'])\n"
        "print('torch loaded:', 'torch' in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    # run from outside the repository: the seeds are package data, not found relative to the working directory
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    result = run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failures:                      0" in result.stdout
    assert f"seeds decoded unmutated:       {NUM_GOLDEN}/{NUM_GOLDEN}" in result.stdout
    assert "torch loaded: False" in result.stdout

    result = run([sys.executable, "-m", "shc.tools.fuzz", "--cases", "5"])
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"seeds decoded unmutated: +(\d+)/(\d+)", result.stdout)
    assert found and found[1] == found[2] == str(NUM_GOLDEN + len(synthetic_seeds())), result.stdout

    bad = tmp_path / "bad.shc"
    bad.write_bytes(struct.pack("<4s", b"nope"))
    result = run([sys.executable, "-m", "shc.tools.fuzz", "--cases", "5", str(bad)])
    assert result.returncode == 1  # a seed that does not decode fails the run
    assert "seeds decoded unmutated:       0/1" in result.stdout


def test_bit_stream_sections_re_pack_to_the_same_bytes(seeds: list[Seed]) -> None:
    """The version-4 mutators decode TABL and WGHT into integers and re-pack them: unchanged integers give
    the very bytes of the seed, so every change a mutator makes is the one it meant. Version 6 TABL: the
    context block, then the tables of the layout's (group, dimension) pairs."""
    with_context = 0
    for seed in seeds:
        parsed = read_file(seed.data)
        sections = dict(split_sections(seed.data))
        split = read_tabl(sections[b"TABL"], parsed.header)
        assert split is not None
        context, tables = split
        assert pack_tabl(context, tables) == sections[b"TABL"]
        assert len(tables) == (len(parsed.header.layout.table_keys) if parsed.header.range_coded else 0)
        if parsed.context is None:
            assert context is None
            alone = read_histograms(sections[b"TABL"], len(tables))  # the version-5 reader agrees
            assert alone is not None and pack_histograms(alone) == sections[b"TABL"]
        else:
            with_context += 1
            stored = ContextCodes.of(parsed.context)
            assert context.orders == stored.orders and pack(context.codes()) == pack(stored.codes())
            for got, name in zip(context.tensors, ("w1", "b1", "w2", "level_bias")):
                np.testing.assert_array_equal(got, getattr(parsed.context, name).reshape(-1))
            np.testing.assert_array_equal(context.low, parsed.context.level_low)
            np.testing.assert_array_equal(context.span, parsed.context.level_span)
        for table, parsed_table in zip(tables, parsed.tables):
            assert table.min_symbol == parsed_table.min_symbol
            np.testing.assert_array_equal(table.histogram, parsed_table.histogram)
        shapes = weight_shapes(parsed.header)
        heads = sections[b"WGHT"][: 5 * len(shapes)]
        sizes = np.cumsum([0] + [int(np.prod(shape)) for _, shape in shapes])
        codes = [(zigzag(parsed.weights.values[a:b]), heads[5 * i + 4]) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))]
        assert heads + pack(codes) == sections[b"WGHT"]
    assert with_context >= 3  # two golden files and synthetic_context


def test_context_block_at_other_orders_is_the_same_file(seeds: list[Seed]) -> None:
    """A reader takes any order <= MAX_ORDER of a context tensor: re-coded at other orders, a file with a
    context network decodes to the same network, latents and pixels (one above MAX_ORDER is refused)."""
    chosen = [s for s in seeds if read_file(s.data).context is not None]
    assert len(chosen) >= 3
    for number, seed in enumerate(chosen):
        parsed = read_file(seed.data)
        sections = split_sections(seed.data)
        context, tables = read_tabl(dict(sections)[b"TABL"], parsed.header)
        context.orders = [(3 * number + 5 * k) % (MAX_ORDER + 1) for k in range(4)]
        index = [tag for tag, _ in sections].index(b"TABL")
        other = seed.rebuild(sections[:index] + [(b"TABL", pack_tabl(context, tables))] + sections[index + 1 :])
        assert other != seed.data
        reread = read_file(other)
        for name in ("w1", "b1", "w2", "level_bias", "level_low", "level_span"):
            np.testing.assert_array_equal(getattr(reread.context, name), getattr(parsed.context, name))
        for got, want in zip(file_latents(reread), file_latents(parsed)):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(decode_bytes(other), decode_bytes(seed.data))
        context.orders[1] = MAX_ORDER + 1
        bad = seed.rebuild(sections[:index] + [(b"TABL", pack_tabl(context, tables))] + sections[index + 1 :])
        with pytest.raises(ShcFormatError, match=rf"^TABL section: context b1 order {MAX_ORDER + 1} is above"):
            read_file(bad)


@pytest.mark.parametrize(
    ("mutator", "fragments"),
    [
        # counts moved between symbols: the latents decode with another model, and either words are left over
        # (each segment's coder is checked first, version 7) or the latents contradict the histogram
        ("table_field", ["do not match table|holds more data than its latents use", "histogram counts",
                         "first and last symbols", "exceeds", "unexpected trailing bits", "symbols (allowed"]),
        ("special_weights", ["non-finite or negative weight scale", "is above 24", "weight outside [-32767, 32767]",
                             "truncated while reading", "unexpected trailing bits"]),
    ],
)
def test_bit_stream_mutators_reach_the_version_4_checks(seeds: list[Seed], mutator: str, fragments: list[str]) -> None:
    """Histogram and weight mutations get past the bit syntax to the checks behind it, and some of them
    (counts moved, equivalent orders, min_symbol shifted) are valid files that decode."""
    chosen = [s for s in seeds if s.name in ("synthetic_hashed", "lighthouse_96x128_q5.shc", "synthetic_table4096")]
    outcomes, messages = [], []
    for index in range(240):
        rng = np.random.default_rng([7, index])
        seed = chosen[index % len(chosen)]
        _, data = mutate(rng, seed, seeds, name=mutator)
        outcome, _, _, detail, _ = run_case(data, case_seconds=30.0, memory_limit_bytes=None)
        assert outcome != "failure", detail
        outcomes.append(outcome)
        messages.append(detail)
    assert "decoded" in outcomes and "error" in outcomes
    joined = "\n".join(messages)
    for fragment in fragments:
        assert any(alternative in joined for alternative in fragment.split("|")), fragment


def _mutated_outcomes(chosen: list[Seed], seeds: list[Seed], mutator: str, cases: int, key: int,
                      keep_prefix: bool = False) -> tuple[list[str], list[str]]:
    """Outcomes and messages of ``cases`` mutations by ``mutator`` of the ``chosen`` seeds in turn (case i of
    rng ``[key, i]``); none may be a failure (``keep_prefix``: the mutator keeps magic and version)."""
    outcomes, messages = [], []
    for index in range(cases):
        seed = chosen[index % len(chosen)]
        _, data = mutate(np.random.default_rng([key, index]), seed, seeds, name=mutator)
        assert not keep_prefix or data[:5] == seed.data[:5]
        outcome, _, _, detail, _ = run_case(data, case_seconds=30.0, memory_limit_bytes=None)
        assert outcome != "failure", detail
        outcomes.append(outcome)
        messages.append(detail)
    return outcomes, messages


def test_context_mutator_reaches_the_context_checks(seeds: list[Seed]) -> None:
    """Context-block mutations (SPEC §5a) get past the bit syntax to every check behind it: the bounds of
    the network and of the level ranges, the orders, the block's length, the context width, and the range
    check of context-coded latents; some changed networks (and networks added to files without one) are
    valid files that decode."""
    chosen = [s for s in seeds if s.name in ("synthetic_context", "parrot_128x96_q3.shc", "lighthouse_96x128_q5.shc",
                                             "parrot_64x48_q1.shc")]
    assert len(chosen) == 4
    outcomes, messages = _mutated_outcomes(chosen, seeds, "context_field", 320, 9, keep_prefix=True)
    assert outcomes.count("decoded") > 10 and outcomes.count("error") > 150
    joined = "\n".join(messages)
    for fragment in ("context model w1 has a value outside [-1048576, 1048576]",
                     "context model b1 has a value outside [-134217728, 134217728]",
                     "a context level's latent range is empty, wider than 2048 or outside the symbol range",
                     "a context-coded latent falls outside its level's range", "order 25 is above 24",
                     "TABL section: truncated while reading context", "unexpected trailing bits",
                     "header field context_width=33 is outside the allowed range [0, 32]"):
        assert fragment in joined, fragment


def test_older_version_seeds_are_mutated_in_their_own_layout() -> None:
    """Files of versions 2-6 given as seeds keep their version byte and their layout's mutators (the context
    mutator falls back to the tables' before version 6, the segment mutators to LATN's words and plain
    truncations before version 7); META inserted into versions before 5 is refused."""
    compat = [Seed(path.name, path.read_bytes()) for path in sorted(COMPAT_DIR.glob("*.shc"))]
    assert len(compat) == 17 and all(seed.sections is not None and seed.tail == b"" for seed in compat)
    assert sorted(seed.version for seed in compat) == [2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6]
    report = run_fuzz(compat, cases=150, seed=4, case_seconds=30.0, max_pixels=1 << 18, memory_limit_mb=None)
    assert report.num_failures == 0, "\n".join(f.detail for f in report.failures[:3])
    assert report.seeds_decoded == 17
    by_name = {seed.name: seed for seed in compat}
    for seed in (by_name["parrot_64x48_q1_v5.shc"], by_name["parrot_rgba_64x48_q3_v5.shc"],
                 by_name["lighthouse_96x128_q5_v6.shc"]):
        for name in ("table_field", "context_field", "special_weights", "head_field", "metadata", "segment_index",
                     "segment_bytes", "segment_truncate", "latent_words"):
            for case in range(4):
                _, data = mutate(np.random.default_rng([4, case]), seed, compat, name=name)
                assert data[:5] == seed.data[:5]
                outcome, _, _, detail, _ = run_case(data, case_seconds=30.0, memory_limit_bytes=None)
                assert outcome != "failure", detail
    for seed in (by_name["lighthouse_96x128_q5_v3.shc"], by_name["lighthouse_96x128_q5_v4.shc"]):
        for name in ("table_field", "context_field", "special_weights", "head_field", "metadata"):
            rng = np.random.default_rng([4, 0])
            _, data = mutate(rng, seed, compat, name=name)
            assert data[:5] == seed.data[:5] and data[4] in (3, 4)
        exif = fake_exif(np.random.default_rng(0))
        meta = pack_meta([(b"EXIF", len(exif), exif)])  # valid in a version-5 file
        data = assemble([seed.sections[0], (b"META", meta), *seed.sections[1:]], seed.prefix)
        outcome, _, _, detail, _ = run_case(data)
        assert (outcome, detail) == ("error", "expected section WGHT, found tag b'META'")
        v5 = assemble([seed.sections[0], (b"META", meta), *seed.sections[1:]])  # the same with version 5 ...
        assert run_case(v5)[0] == "error"  # ... still fails: a version-4 HEAD is one byte short


def test_metadata_mutator_reaches_the_meta_checks(seeds: list[Seed]) -> None:
    """META mutations get past the framing to every check of SPEC §2a, and the valid ones (section removed,
    inserted, free bytes flipped) decode."""
    by_name = {s.name: s for s in seeds}
    chosen = [by_name[name] for name in ("synthetic_rgba_meta", "parrot_p3_64x48_q1.shc", "parrot_64x48_q1.shc")]
    for seed in chosen[:2]:
        assert len(meta_entries(dict(split_sections(seed.data))[b"META"])) == 2  # ICCP and EXIF
    outcomes, messages = _mutated_outcomes(chosen, seeds, "metadata", 300, 8)
    assert outcomes.count("decoded") > 30 and outcomes.count("error") > 100
    joined = "\n".join(messages)
    for fragment in ("unknown key", "occurs twice", "out of order", "entry declares", "not an ICC profile",
                     "does not start with Exif", "has no entries", "META section: truncated while reading"):
        assert fragment in joined, fragment


# ---------------------------------------------------------------------------------------------- version 7: segments


SEGMENT_FRAGMENTS = {
    "segment_index": ["the index of", "is corrupted (CRC32 mismatch)", "more than the limit", "is not a multiple of 4",
                      "the file is truncated", "holds more data than its latents use|could not be range-decoded",
                      "float16 latents need"],
    "segment_bytes": ["is corrupted (CRC32 mismatch)", "holds more data than its latents use",
                      "could not be range-decoded", "context-coded latent falls outside", "float16 latents need"],
    "segment_truncate": ["levels are complete: render them with --levels", "not even its first level is complete",
                         "truncated while reading"],
}


@pytest.mark.parametrize("mutator", SEGMENT_FRAGMENTS)
def test_segment_mutators_reach_the_segment_checks(seeds: list[Seed], mutator: str) -> None:
    """The version-7 mutators of the LATN index, of the bytes inside one segment and of cuts at segment
    boundaries get past the CRCs they re-fix to every check behind them (SPEC §6): the index's size and
    lengths, each segment's CRC, length and decoder; ShcReader agrees on every case (check_reader); some
    changed segments (a float16 value, bits the coder does not use) are valid files that decode."""
    by_name = {s.name: s for s in seeds}
    chosen = [by_name[name] for name in ("synthetic_chunked", "lighthouse_96x128_q5.shc", "synthetic_float16")]
    outcomes, messages = _mutated_outcomes(chosen, seeds, mutator, 90, 11, keep_prefix=mutator != "segment_truncate")
    assert outcomes.count("error") > 60
    joined = "\n".join(messages)
    for fragment in SEGMENT_FRAGMENTS[mutator]:
        assert any(alternative in joined for alternative in fragment.split("|")), fragment
    if mutator == "segment_bytes":
        assert outcomes.count("decoded") > 5


def test_truncation_points_are_every_boundary_and_a_byte_either_side(seeds: list[Seed]) -> None:
    """The cuts of --sweep-boundaries: the end of the magic and version, of every section and of every
    latent segment (from the LATN index), one byte before and after each, below the file's length."""
    seed = {s.name: s for s in seeds}["synthetic_chunked"]
    parsed = read_file(seed.data)
    sections, tail = split_file(seed.data)
    ends = [C.FILE_PREFIX_BYTES]
    for _, payload in sections:
        ends.append(ends[-1] + C.SECTION_FRAME_BYTES + len(payload))
    for words in parsed.latent_segments:
        ends.append(ends[-1] + 4 * words.size)
    assert ends[-1] == len(seed.data) and len(ends) == 1 + 4 + 11
    assert truncation_points(seed.data) == sorted({e + d for e in ends for d in (-1, 0, 1) if e + d < len(seed.data)})
    assert truncation_points(b"not a file") == []
    v6 = (COMPAT_DIR / "parrot_64x48_q1_v6.shc").read_bytes()  # before version 7: the sections only
    assert max(truncation_points(v6)) == len(v6) - 1 and len(truncation_points(v6)) == 3 * 5 - 2  # not the end itself


def test_boundary_sweep_of_the_chunked_seed_renders_every_complete_prefix(seeds: list[Seed]) -> None:
    """Every cut of the chunked seed at a boundary (and a byte either side) is one clean ShcFormatError from
    decode_image, and ShcReader renders the levels it holds whole once segment 0 (levels 0 and 1) is in:
    the interrupted download of SPEC §6."""
    seed = {s.name: s for s in seeds}["synthetic_chunked"]
    points = truncation_points(seed.data)
    report = run_fuzz([seed], cases=0, sweep_boundaries=True, case_seconds=30.0, memory_limit_mb=None)
    assert report.num_failures == 0, "\n".join(f.detail for f in report.failures[:3])
    assert report.cases == 1 + len(points) and report.per_mutator["boundary_sweep"]["error"] == len(points)
    sections, tail = split_file(seed.data)
    first_segment_end = len(seed.data) - len(tail) + segment_entries(sections[-1][1])[0][0]
    assert report.reader_kinds["cut short: complete levels rendered"] == sum(p >= first_segment_end for p in points)
    assert report.reader_kinds["cut short: complete levels rendered"] >= 3 * 10
