"""A short run of the fuzz harness (shc.tools.fuzz): no failures, and both clean errors and decodes occur.

The long run is ``python -m shc.tools.fuzz --cases 10000 --sweep-truncations``.
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
from shc.format.container import HEAD_FIELDS, frame_section, head_payload_bytes, read_file
from shc.format.errors import ShcFormatError
from shc.tools.fuzz import (
    MUTATORS,
    SEEDS_DIR,
    Seed,
    assemble,
    default_seeds,
    head_fields,
    mutate,
    run_case,
    run_fuzz,
    set_field,
    split_sections,
    synthetic_seeds,
)


REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO / "tests" / "data"
SHIPPED_SEEDS_DIR = REPO / "tools" / "seeds"


@pytest.fixture(scope="module")
def seeds() -> list[Seed]:
    found = default_seeds()
    assert sum(not s.name.startswith("synthetic_") for s in found) == 3, f"seed files missing from {SEEDS_DIR}"
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
        expected = C.FILE_PREFIX_BYTES + sum(C.SECTION_FRAME_BYTES + len(payload) for _, payload in sections)
        assert len(seed.data) == expected
    assert [head_payload_bytes(levels) for levels in (0, 1, 12)] == [17, 25, 113]  # SPEC.md §2: 17 + 8 L
    assert [head_payload_bytes(levels, version=2) for levels in (0, 1, 12)] == [16, 24, 112]  # version 2: 16 + 8 L
    framed = frame_section(b"LATN", b"\x01\x02", crc=0xDEADBEEF)
    assert len(framed) == 2 + C.SECTION_FRAME_BYTES and framed[-C.SECTION_CRC_BYTES :] == struct.pack("<I", 0xDEADBEEF)


def test_short_fuzz_run_has_no_failures(seeds: list[Seed]) -> None:
    report = run_fuzz(seeds, cases=400, seed=12345, case_seconds=5.0, max_pixels=1 << 18, memory_limit_mb=512)
    details = "\n".join(f.detail for f in report.failures[:3])
    assert report.num_failures == 0, details
    assert report.seeds_decoded == report.seeds_total == len(seeds)  # every unmutated seed decodes
    assert report.cases == 400 + len(seeds)
    assert report.clean_errors > 100
    assert report.decoded > len(seeds)  # some mutated files decode too (e.g. changed weights)
    # the CRC re-fixing mutators get past the checksum: header, table and range-decoder checks fire
    kinds = " | ".join(report.error_kinds)
    for fragment in ("header field", "table", "LATN section could not be range-decoded", "CRC32 mismatch", "truncated"):
        assert fragment in kinds, fragment
    assert set(report.per_mutator) >= set(MUTATORS) | {"unmutated"}


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
    assert assemble(sections) == seed.data
    fields = {name: (code, offset) for name, code, offset in head_fields(sections[0][1])}
    header = read_file(seed.data).header
    assert set(fields) >= {"width", "height", "num_groups", f"level{header.config.num_levels - 1}.ny"}
    code, offset = fields["height"]
    taller = assemble([(b"HEAD", set_field(sections[0][1], code, offset, header.height + 3))] + sections[1:])
    assert read_file(taller).header.height == header.height + 3
    code, offset = fields["num_levels"]
    too_many = assemble([(b"HEAD", set_field(sections[0][1], code, offset, 200))] + sections[1:])
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


def test_synthetic_seeds_cover_hashed_levels_and_big_tables() -> None:
    parsed = {seed.name: read_file(seed.data) for seed in synthetic_seeds()}
    hashed = parsed["synthetic_hashed"].header
    assert hashed.level_rows() == [6, 16, 16] and hashed.config.num_groups == 2 and hashed.config.latent_dim == 2
    assert [len(t.counts) for t in parsed["synthetic_hashed"].tables] == [1, 7, 2, 40]
    assert len(parsed["synthetic_table4096"].tables[0].counts) == 4096
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
    assert "seeds decoded unmutated:       3/3" in result.stdout
    assert "torch loaded: False" in result.stdout

    result = run([sys.executable, "-m", "shc.tools.fuzz", "--cases", "5"])
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"seeds decoded unmutated: +(\d+)/(\d+)", result.stdout)
    assert found and found[1] == found[2] == str(3 + len(synthetic_seeds())), result.stdout

    bad = tmp_path / "bad.shc"
    bad.write_bytes(struct.pack("<4s", b"nope"))
    result = run([sys.executable, "-m", "shc.tools.fuzz", "--cases", "5", str(bad)])
    assert result.returncode == 1  # a seed that does not decode fails the run
    assert "seeds decoded unmutated:       0/1" in result.stdout
