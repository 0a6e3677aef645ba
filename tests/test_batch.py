"""Tests for batch work and scripting flags of the ``shc`` command: several inputs in one process,
``--out-dir``, ``--skip-existing``, one JSON line per file, failures that do not stop the batch,
``--format``/``-o -``, ``info`` on several files, ``--threads``, ``--device auto``, ``--quiet``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import PARROT, json_lines
from PIL import Image

import shc
from shc.cli.common import UsageError, parse_byte_size
from shc.cli.main import COMMANDS, cli

FAST = ["--preset", "fast", "--steps", "5"]
DATA = Path(__file__).parent / "data"


def invoke(*args, input: bytes | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def encoded_dir(photos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shc")
    result = invoke("encode", *photos, "--out-dir", out, *FAST, "--json")
    assert result.exit_code == 0, result.output
    return out


def test_batch_encode_writes_one_file_per_input_and_one_json_line_each(photos, encoded_dir, tmp_path):
    assert sorted(p.name for p in encoded_dir.iterdir()) == ["a.shc", "b.shc", "c.shc"]
    result = invoke("encode", *photos, "--out-dir", tmp_path / "new", *FAST, "--json")
    assert result.exit_code == 0, result.output
    reports = json_lines(result.stdout)
    assert [r["input"] for r in reports] == [str(p) for p in photos]
    assert all(r["status"] == "ok" for r in reports)
    for report in reports:
        data = Path(report["output"]).read_bytes()
        assert report["bytes"] == len(data)
        assert shc.decode(data).size == (report["width"], report["height"])
    assert "3 file(s): 3 done, 0 skipped, 0 failed" in result.stderr


def test_skip_existing_resumes_and_never_touches_done_files(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.shc").write_bytes(b"done before")  # stands for a file of an earlier, interrupted run
    result = invoke("encode", *photos, "--out-dir", out, *FAST, "--skip-existing", "--json")
    assert result.exit_code == 0, result.output
    statuses = {Path(r["input"]).name: r["status"] for r in json_lines(result.stdout)}
    assert statuses == {"a.png": "ok", "b.png": "skipped", "c.png": "ok"}
    assert (out / "b.shc").read_bytes() == b"done before"
    assert "1 skipped" in result.stderr


def test_one_failure_does_not_stop_the_batch(photos, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "out"
    result = invoke("encode", photos[0], broken, photos[2], "--out-dir", out, *FAST, "--json")
    assert result.exit_code == 2, result.output
    reports = json_lines(result.stdout)
    assert [r["status"] for r in reports] == ["ok", "failed", "ok"]
    assert "cannot read image" in reports[1]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["a.shc", "c.shc"]  # no partial output of the broken one
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "broken.png" in errors[0]
    assert "2 done, 0 skipped, 1 failed" in result.stderr


def test_existing_output_in_a_batch_fails_that_file_only(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.shc").write_bytes(b"keep me")
    result = invoke("encode", photos[0], photos[2], "--out-dir", out, *FAST)
    assert result.exit_code == 1, result.output  # the worst failure is a usage error (exists, no --force)
    assert (out / "a.shc").read_bytes() == b"keep me"
    assert (out / "c.shc").exists()
    assert "--skip-existing" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "missing option"),
        (["-o", "x.shc", "--out-dir", "d"], "not both"),
        (["-o", "x.shc", "EXTRA"], "need --out-dir"),
    ],
)
def test_batch_usage_errors(photos, tmp_path, args, fragment):
    args = [str(photos[1]) if a == "EXTRA" else a for a in args]
    result = invoke("encode", photos[0], *args, *FAST)
    assert result.exit_code == 1
    assert fragment in result.stderr


def test_two_inputs_with_one_output_name_are_refused_before_any_work(photos, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(photos[0], other / "a.png")
    result = invoke("encode", photos[0], other / "a.png", "--out-dir", tmp_path / "out", *FAST)
    assert result.exit_code == 1
    assert "both be written" in result.stderr
    assert not (tmp_path / "out").exists()


def test_stdin_needs_dash_o(tmp_path):
    result = invoke("encode", "-", "--out-dir", tmp_path, *FAST, input=PARROT.read_bytes())
    assert result.exit_code == 1
    assert "standard input" in result.stderr


def test_batch_decode_with_format_json_and_quiet(encoded_dir, tmp_path):
    inputs = sorted(encoded_dir.glob("*.shc"))
    result = invoke("decode", *inputs, "--out-dir", tmp_path / "png", "--json", "--format", "ppm")
    assert result.exit_code == 0, result.output
    reports = json_lines(result.stdout)
    assert [Path(r["output"]).name for r in reports] == ["a.ppm", "b.ppm", "c.ppm"]
    for report, source in zip(reports, inputs):
        with Image.open(report["output"]) as image:
            assert image.format == "PPM"
            assert np.array_equal(np.asarray(image), np.asarray(shc.decode(source.read_bytes())))
        assert report["format"] == "PPM" and report["seconds"] > 0
    quiet = invoke("decode", *inputs, "--out-dir", tmp_path / "q", "--quiet")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""


@pytest.mark.parametrize("fmt", ["png", "ppm"])
def test_decode_to_stdout_in_the_chosen_format(encoded_dir, fmt):
    result = invoke("decode", encoded_dir / "a.shc", "-o", "-", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    image = Image.open(BytesIO(result.stdout_bytes))
    assert image.format == fmt.upper()
    assert np.array_equal(np.asarray(image), np.asarray(shc.decode((encoded_dir / "a.shc").read_bytes())))


def test_decode_json_goes_to_stderr_when_pixels_go_to_stdout(encoded_dir):
    result = invoke("decode", encoded_dir / "a.shc", "-o", "-", "--json")
    assert result.exit_code == 0
    assert result.stdout_bytes.startswith(b"\x89PNG")
    assert json_lines(result.stderr)[0]["output"] == "-"


def test_decode_batch_reports_a_malformed_file_and_goes_on(encoded_dir, tmp_path):
    bad = tmp_path / "bad.shc"
    bad.write_bytes((encoded_dir / "a.shc").read_bytes()[:40])
    result = invoke("decode", encoded_dir / "a.shc", bad, "--out-dir", tmp_path / "out")
    assert result.exit_code == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
    assert "bad.shc" in result.stderr


def test_info_on_several_files(encoded_dir, tmp_path):
    inputs = sorted(encoded_dir.glob("*.shc"))
    result = invoke("info", *inputs, "--json")
    assert result.exit_code == 0
    reports = json_lines(result.stdout)
    assert [r["file"] for r in reports] == [str(p) for p in inputs]
    assert [r["bytes"] for r in reports] == [p.stat().st_size for p in inputs]
    missing = invoke("info", inputs[0], tmp_path / "missing.shc")
    assert missing.exit_code == 2
    assert missing.stdout.startswith(str(inputs[0]))
    assert "missing.shc" in missing.stderr


@pytest.mark.slow
def test_threads_limits_numpy_and_torch(encoded_dir, tmp_path):
    """``--threads 1`` in a fresh process: threadpoolctl reports one BLAS thread, torch one thread."""
    code = (
        "import sys, torch\nfrom threadpoolctl import threadpool_info\nfrom shc.cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "blas = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
        "print(blas, torch.get_num_threads())\n"
    )
    out = tmp_path / "x.png"
    args = ["decode", str(encoded_dir / "a.shc"), "-o", str(out), "--threads", "1"]
    encode = ["encode", str(PARROT), "-o", str(tmp_path / "x.shc"), *FAST, "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    for command in (args, encode):
        done = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, check=True,
                              env=env)
        blas, torch_threads = done.stdout.strip().splitlines()[-1].rsplit(" ", 1)
        assert json.loads(blas) and set(json.loads(blas)) == {1}, command  # BLAS found, and held to one thread
        assert torch_threads == "1", command
    assert out.exists() and (tmp_path / "x.shc").exists()


def test_device_auto_picks_an_available_device(tmp_path):
    import torch

    result = invoke("encode", PARROT, "-o", tmp_path / "x.shc", *FAST, "--device", "auto", "--json")
    assert result.exit_code == 0, result.output
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert json_lines(result.stdout)[0]["device"] == expected


def test_quiet_encode_prints_nothing_but_writes(tmp_path):
    result = invoke("encode", PARROT, "-o", tmp_path / "x.shc", *FAST, "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    assert (tmp_path / "x.shc").stat().st_size > 0


def test_fractional_quality_lies_between_its_neighbours(tmp_path):
    from shc.codec.presets import quality_level, settings_for

    assert quality_level(3.5).lmbda == pytest.approx((quality_level(3).lmbda * quality_level(4).lmbda) ** 0.5)
    assert settings_for("default", 3.4).log2_hashmap_size == quality_level(3).log2_hashmap_size
    assert settings_for("default", 3.6).log2_hashmap_size == quality_level(4).log2_hashmap_size
    with pytest.raises(ValueError, match="quality"):
        quality_level(8.5)
    result = invoke("encode", PARROT, "-o", tmp_path / "x.shc", *FAST, "-q", "2.5", "--json")
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[0]["quality"] == 2.5


@pytest.mark.parametrize(
    ("text", "value"), [("50000", 50000), ("50k", 50000), ("50KB", 50000), ("48KiB", 49152), ("1.5MB", 1500000)]
)
def test_parse_byte_size(text, value):
    assert parse_byte_size(text) == value


@pytest.mark.parametrize("text", ["", "KB", "-5", "5 parsecs", "0"])
def test_parse_byte_size_refuses(text):
    reason = "at least 1 byte" if text == "0" else "must look like 50000, 50KB or 48KiB"
    with pytest.raises(UsageError, match=f"{reason}, got '{text}'"):
        parse_byte_size(text)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--target-size", "5k", "--target-psnr", "30"], "one rate target"),
        (["--target-bpp", "0.5", "--no-entropy"], "--no-entropy"),
        (["--target-size", "lots"], "size must look like"),
        (["--background", "not-a-colour"], "--background"),
    ],
)
def test_rate_and_colour_usage_errors(tmp_path, args, fragment):
    result = invoke("encode", PARROT, "-o", tmp_path / "x.shc", *FAST, *args)
    assert result.exit_code == 1, result.output
    assert fragment in result.stderr


def test_commands_are_loaded_lazily():
    """``shc decode`` must not pay for the encoder's or the benchmark's imports (start-up time)."""
    code = (
        "import sys\nfrom shc.cli.main import cli\ncli.get_command(None, 'decode')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('shc.cli.', 'shc.codec', 'shc.bench', 'torch'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(done.stdout))  # noqa: S307 - our own printed list
    assert loaded == {"shc.cli.batch", "shc.cli.common", "shc.cli.decode_cmd", "shc.cli.main"}
    assert set(COMMANDS) == {"encode", "decode", "info", "inspect", "tiles", "serve", "bench", "sweep"}


def test_encode_max_pixels_names_the_flag_and_raises_the_limit(tmp_path):
    """An image over the limit is refused before it is decoded, with the flag to raise it; raised, it encodes."""
    default_limit = Image.MAX_IMAGE_PIXELS
    big = tmp_path / "big.png"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(big)
    refused = invoke("encode", big, "-o", tmp_path / "x.shc", *FAST, "--max-pixels", "1000")
    assert refused.exit_code == 2
    assert "--max-pixels" in refused.stderr and "1000" in refused.stderr
    assert not (tmp_path / "x.shc").exists()
    allowed = invoke("encode", big, "-o", tmp_path / "x.shc", *FAST, "--max-pixels", "1200")
    assert allowed.exit_code == 0, allowed.output
    assert Image.MAX_IMAGE_PIXELS == default_limit  # the process-wide limit is put back
