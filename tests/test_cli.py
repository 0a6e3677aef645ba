"""Tests for the ``shc`` command: encode, decode, info, exit codes, one-line errors and safe output writing.

Encodes use ``--preset fast --steps 5`` (a second or less each): the encoder is tuned elsewhere, so these
tests check that the report agrees with the file, never how good the picture is.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ACCEPTED, PARROT, REFUSED, png_bytes
from PIL import Image

import shc
import shc.cli.encode_cmd
from shc.cli.main import cli
from shc.format.constants import FORMAT_VERSION, MAGIC
from shc.images import load_rgb
from shc.metrics import psnr_db

FAST = ["--preset", "fast", "--steps", "5"]
PARROT_SIZE = (64, 48)


def invoke(*args, input: bytes | None = None):
    """Run ``shc ARGS`` in-process; click's own exit handling is kept (SystemExit becomes exit_code)."""
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def assert_clean(result) -> None:
    """No exception escaped the command: it ended through click's exit path only."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def assert_error(result, exit_code: int, fragment: str) -> None:
    """The command failed with ``exit_code`` and exactly one ``Error: ...`` line on stderr, nothing on stdout."""
    assert result.exit_code == exit_code, result.output
    assert_clean(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert result.stdout == ""


def assert_usage_error(result, fragment: str) -> None:
    """A click usage error: exit 1 (not click's 2), click's usage hint, and exactly one ``Error:`` line."""
    assert result.exit_code == 1, result.output
    assert_clean(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert fragment.lower() in errors[0].lower(), errors[0]


def json_report(text: str) -> dict:
    """The one JSON line of ``text`` (stderr may also hold a library warning), parsed strictly."""
    lines = [line for line in text.splitlines() if line.startswith("{")]
    assert len(lines) == 1, text

    def no_constants(name: str):
        msg = f"{name} is not JSON"
        raise ValueError(msg)

    return json.loads(lines[0], parse_constant=no_constants)


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture
def no_encoder(monkeypatch):
    """Fail the test if the CLI gets as far as training (options and inputs must be refused before)."""
    import shc.codec.encoder

    def refuse(*args, **kwargs):
        msg = "the encoder was started"
        raise AssertionError(msg)

    monkeypatch.setattr(shc.codec.encoder, "encode_image", refuse)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> tuple[Path, dict]:
    """The parrot encoded once with ``--json``: the .shc path and the parsed report."""
    out = tmp_path_factory.mktemp("encoded") / "parrot.shc"
    result = invoke("encode", PARROT, "-o", out, *FAST, "--json")
    assert result.exit_code == 0, result.output
    assert_clean(result)
    return out, json_report(result.stdout)


# --- encode ---------------------------------------------------------------------------------------


def test_encode_report_agrees_with_the_file(encoded):
    path, report = encoded
    data = path.read_bytes()
    width, height = PARROT_SIZE
    assert data.startswith(MAGIC)
    assert (report["width"], report["height"]) == PARROT_SIZE
    assert report["output"] == str(path)
    assert (report["preset"], report["steps"], report["quality"], report["device"]) == ("fast", 5, 3, "cpu")
    assert report["bytes"] == len(data)
    assert report["bpp"] == pytest.approx(len(data) * 8 / (width * height), abs=1e-5)
    # the PSNR is that of the decoded 8-bit file against the input, as anyone can recompute it
    decoded = np.asarray(shc.decode(data))
    assert decoded.shape == (height, width, 3)
    assert report["psnr_db"] == pytest.approx(psnr_db(decoded, load_rgb(PARROT)), abs=1e-3)
    assert report["encode_seconds"] > 0
    # the plan: the whole 64x48 image each step, so passes per pixel = steps; the estimate made before training
    assert (report["batch_pixels"], report["passes_per_pixel"]) == (width * height, 5.0)
    assert report["estimate_seconds"] > 0 and "minutes" not in report


def test_encode_prints_its_plan_before_training(tmp_path):
    result = invoke("encode", PARROT, "-o", tmp_path / "p.shc", *FAST, "--progress")
    assert result.exit_code == 0, result.output
    plan = re.search(r"^encode: 5 steps x 3072 pixels = 5\.0 passes per pixel; estimate ([\d.]+) s \(", result.stderr,
                     re.MULTILINE)
    assert plan and float(plan[1]) > 0, result.stderr
    assert result.stderr.index("passes per pixel") < result.stderr.index("/5 [")  # before the bar
    assert re.search(r"\d/5 \[\d\d:\d\d<", result.stderr), result.stderr  # the bar shows the time left (ETA)
    for quiet in ("--json", "--quiet"):
        result = invoke("encode", PARROT, "-o", tmp_path / f"{quiet}.shc", *FAST, quiet)
        assert result.exit_code == 0 and "passes per pixel" not in result.stderr, result.output


def test_encode_minutes_picks_the_steps(tmp_path, monkeypatch):
    import shc.codec.budget as budget

    # a fixed calibration (this machine's timings would make the steps vary): 50 ms a step, 20 ms a score
    fixed = budget.Calibration(step_seconds=0.05, score_seconds=0.02, tail_seconds=0.5, steps_timed=10, seconds=0.1)
    monkeypatch.setattr(budget, "calibrate", lambda *args, **kwargs: fixed)
    reports = {}
    for minutes in ("0.05", "0.1"):
        result = invoke("encode", PARROT, "-o", tmp_path / f"{minutes}.shc", "--preset", "fast", "--minutes", minutes,
                        "--json")
        assert result.exit_code == 0, result.output
        reports[minutes] = json_report(result.stdout)
    short, longer = reports["0.05"], reports["0.1"]
    assert 10 < short["steps"] < longer["steps"]
    for report in (short, longer):
        assert report["passes_per_pixel"] == report["steps"]  # the whole 3072-pixel image each step
        assert report["estimate_seconds"] <= report["minutes"] * 60 * (1 - budget.BUDGET_MARGIN)
    monkeypatch.setattr(budget, "calibrate", lambda *args, **kwargs: dataclasses.replace(fixed, tail_seconds=4.0))
    assert_error(invoke("encode", PARROT, "-o", tmp_path / "x.shc", "--preset", "fast", "--minutes", "0.05"), 2,
                 "no time to train")
    assert not (tmp_path / "x.shc").exists()


def test_encode_text_report(tmp_path):
    out = tmp_path / "p.shc"
    result = invoke("encode", PARROT, "-o", out, *FAST, "--quality", "1")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    pattern = r": (\d+) bytes, ([\d.]+) bpp, PSNR ([\d.]+|inf) dB \(64x48, fast q1, 5 steps, [\d.]+ s on cpu\)$"
    match = re.match(re.escape(str(out)) + pattern, lines[0])
    assert match, lines[0]
    num_bytes = out.stat().st_size
    assert int(match[1]) == num_bytes
    assert float(match[2]) == pytest.approx(num_bytes * 8 / (64 * 48), abs=1e-4)


def test_encode_stdin_to_stdout(tmp_path):
    result = invoke("encode", "-", "-o", "-", *FAST, "--json", input=PARROT.read_bytes())
    assert result.exit_code == 0, result.stderr
    data = result.stdout_bytes
    assert data.startswith(MAGIC)
    report = json_report(result.stderr)  # the report goes to stderr when stdout carries the file
    assert (report["input"], report["output"], report["bytes"]) == ("-", "-", len(data))
    assert shc.decode(data).size == PARROT_SIZE
    assert files_in(tmp_path) == set()


def test_encode_json_psnr_is_null_for_an_exact_decode(tmp_path, monkeypatch, odd_image):
    import shc.codec.encoder

    real = shc.codec.encoder.encode_image

    def exact(*args, **kwargs):
        result = real(*args, **kwargs)
        result.psnr_db = float("inf")
        return result

    monkeypatch.setattr(shc.codec.encoder, "encode_image", exact)
    source, _ = odd_image("tiny_1x1")
    result = invoke("encode", source, "-o", tmp_path / "p.shc", *FAST, "--json")
    assert result.exit_code == 0, result.output
    assert json_report(result.stdout)["psnr_db"] is None  # strict JSON has no Infinity


@pytest.mark.parametrize("name", ACCEPTED)
def test_encode_and_decode_odd_images(odd_image, tmp_path, name):
    path, expected = odd_image(name)
    height, width = expected.shape[:2]
    result = invoke("encode", path, "-o", tmp_path / "x.shc", *FAST, "--json")
    assert result.exit_code == 0, result.output
    assert_clean(result)
    report = json_report(result.stdout)
    assert (report["width"], report["height"]) == (width, height)
    assert report["bytes"] == (tmp_path / "x.shc").stat().st_size
    result = invoke("decode", tmp_path / "x.shc", "-o", tmp_path / "x.png")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "x.png") as image:
        # images with real transparency keep it (format v5: a fourth channel); the others are RGB
        with Image.open(path) as source:
            transparent = source.mode in ("RGBA", "LA", "PA") or "transparency" in source.info
        assert (image.size, image.mode) == ((width, height), "RGBA" if transparent else "RGB")


@pytest.mark.parametrize("name", REFUSED)
def test_encode_refuses_bad_images(odd_image, tmp_path, no_encoder, name):
    path, fragment = odd_image(name)
    before = files_in(tmp_path)
    assert_error(invoke("encode", path, "-o", tmp_path / "x.shc", *FAST), 2, fragment)
    assert_error(invoke("encode", "-", "-o", tmp_path / "x.shc", *FAST, input=path.read_bytes()), 2, fragment)
    assert files_in(tmp_path) == before


def test_encode_refuses_a_bomb_without_decoding_it(tmp_path, no_encoder, no_pixel_loading):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(30000, 30000))
    assert_error(invoke("encode", path, "-o", tmp_path / "x.shc"), 2, "too large")


def test_encode_refuses_missing_file_and_directory(tmp_path, no_encoder):
    assert_error(invoke("encode", tmp_path / "missing.png", "-o", tmp_path / "x.shc"), 2, "no such file")
    assert_error(invoke("encode", tmp_path, "-o", tmp_path / "x.shc"), 2, "is a directory")
    assert files_in(tmp_path) == set()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--quality", "0"], "--quality"),
        (["--quality", "9"], "--quality"),
        (["--preset", "turbo"], "--preset"),
        (["--steps", "0"], "--steps"),
        (["--minutes", "0"], "--minutes"),
        (["--minutes", "1", "--steps", "5"], "--minutes"),
        (["--seed", "-1"], "--seed"),
        (["--bogus"], "no such option"),
    ],
)
def test_encode_usage_errors(tmp_path, no_encoder, args, fragment):
    assert_usage_error(invoke("encode", PARROT, "-o", tmp_path / "x.shc", *args), fragment)
    assert files_in(tmp_path) == set()


def test_encode_help_lists_the_preset_records():
    from shc.codec.presets import DEFAULT_QUALITY, PRESETS, QUALITIES

    result = invoke("encode", "--help")
    assert result.exit_code == 0, result.output
    help_text = " ".join(result.output.split())  # click wraps the help
    assert f"[{'|'.join(p.name for p in PRESETS)}]" in help_text
    for preset in PRESETS:
        assert f"{preset.name}: {preset.summary}" in help_text
    assert f"[default: {DEFAULT_QUALITY}]" in help_text
    assert f"[{QUALITIES[0].level}<=x<={QUALITIES[-1].level}]" in help_text
    assert not re.search(r"\d+ ?(s|ms|min)\b", help_text), "measured times belong in results/, not in the help"


@pytest.mark.parametrize("device", ["bogus", "cuda:99", "meta"])
def test_encode_refuses_unusable_devices(tmp_path, no_encoder, device):
    assert_error(invoke("encode", PARROT, "-o", tmp_path / "x.shc", "--device", device), 1, "--device")


def test_missing_arguments_and_unknown_command():
    assert_usage_error(invoke("encode"), "missing argument")
    assert_usage_error(invoke("encode", PARROT), "missing option")
    assert_usage_error(invoke("decode", "x.shc"), "missing option")
    assert_usage_error(invoke("info"), "missing argument")
    assert_usage_error(invoke("frobnicate"), "no such command")


# --- writing outputs: --force, atomic replace, interrupts, permissions ---------------------------------


def test_existing_output_is_kept_without_force(tmp_path, encoded, no_encoder):
    out = tmp_path / "out"
    out.write_bytes(b"precious")
    assert_error(invoke("encode", PARROT, "-o", out, *FAST), 1, "--force")
    assert_error(invoke("decode", encoded[0], "-o", out), 1, "--force")
    assert out.read_bytes() == b"precious"
    assert files_in(tmp_path) == {"out"}


def test_force_overwrites(tmp_path, encoded, odd_image):
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    result = invoke("decode", encoded[0], "-o", out, "--force")
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == PARROT_SIZE
    source, _ = odd_image("tiny_2x3")
    shc_out = tmp_path / "out.shc"
    shc_out.write_bytes(b"old")
    result = invoke("encode", source, "-o", shc_out, *FAST, "--force")
    assert result.exit_code == 0, result.output
    assert shc.decode(shc_out.read_bytes()).size == (2, 3)
    assert files_in(tmp_path) == {"out.png", "out.shc", source.name}


def test_output_into_missing_folder_or_onto_a_folder(tmp_path, encoded):
    assert_error(invoke("decode", encoded[0], "-o", tmp_path / "nope" / "x.png"), 1, "no such directory")
    assert_error(invoke("decode", encoded[0], "-o", tmp_path, "--force"), 1, "is a directory")


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_encode_leaves_no_output_and_no_temp_file(tmp_path, monkeypatch, existing):
    steps_seen = []

    def ctrl_c(self, step, scored, train_bpp):
        steps_seen.append(step)
        if len(steps_seen) == 3:  # Ctrl-C in the middle of training
            raise KeyboardInterrupt

    monkeypatch.setattr(shc.cli.encode_cmd.Progress, "__call__", ctrl_c)
    out = tmp_path / "x.shc"
    if existing:
        out.write_bytes(b"old file")
    args = ["--force"] if existing else []
    result = invoke("encode", PARROT, "-o", out, "--preset", "fast", "--steps", "50", *args)
    assert result.exit_code == 130, result.output
    assert_clean(result)
    assert "interrupted" in result.stderr
    assert len(steps_seen) == 3
    assert files_in(tmp_path) == ({"x.shc"} if existing else set())
    if existing:
        assert out.read_bytes() == b"old file"


def test_interrupted_write_keeps_the_old_file(tmp_path, encoded, monkeypatch):
    import shc.cli.common

    def ctrl_c(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(shc.cli.common.os, "fsync", ctrl_c)
    out = tmp_path / "x.png"
    out.write_bytes(b"old image")
    result = invoke("decode", encoded[0], "-o", out, "--force")
    assert result.exit_code == 130, result.output
    assert out.read_bytes() == b"old image"
    assert files_in(tmp_path) == {"x.png"}


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_outputs_get_normal_permissions(tmp_path, encoded):
    umask = os.umask(0o022)
    try:
        new = tmp_path / "new.png"
        assert invoke("decode", encoded[0], "-o", new).exit_code == 0
        assert new.stat().st_mode & 0o777 == 0o644  # like open(path, "wb"), not mkstemp's 0o600
        kept = tmp_path / "kept.png"
        kept.write_bytes(b"old")
        kept.chmod(0o640)
        assert invoke("decode", encoded[0], "-o", kept, "--force").exit_code == 0
        assert kept.stat().st_mode & 0o777 == 0o640  # replacing a file keeps its mode
    finally:
        os.umask(umask)


# --- decode -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "size"),
    [
        ([], (64, 48)),
        (["--scale", "2"], (128, 96)),
        (["--scale", "0.5"], (32, 24)),
        (["--scale", "0.3"], (19, 14)),  # 19.2 x 14.4, rounded
        (["--size", "37x21"], (37, 21)),
        (["--size", "1x1"], (1, 1)),
    ],
)
def test_decode_sizes(tmp_path, encoded, args, size):
    out = tmp_path / "x.png"
    result = invoke("decode", encoded[0], "-o", out, *args)
    assert result.exit_code == 0, result.output
    assert (result.stdout, result.stderr) == ("", "")
    with Image.open(out) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", size)


def test_decode_native_size_is_the_normative_decode(tmp_path, encoded):
    out = tmp_path / "x.png"
    assert invoke("decode", encoded[0], "-o", out).exit_code == 0
    expected = np.asarray(shc.decode(encoded[0].read_bytes()))
    assert np.array_equal(np.asarray(Image.open(out)), expected)


def test_decode_stdin_to_stdout_and_format_from_extension(tmp_path, encoded):
    result = invoke("decode", "-", "-o", "-", "--size", "10x7", input=encoded[0].read_bytes())
    assert result.exit_code == 0, result.stderr
    image = Image.open(BytesIO(result.stdout_bytes))
    assert (image.format, image.size) == ("PNG", (10, 7))
    assert invoke("decode", encoded[0], "-o", tmp_path / "x.jpg").exit_code == 0
    assert Image.open(tmp_path / "x.jpg").format == "JPEG"


def test_decode_max_pixels_refuses_before_any_work(tmp_path, encoded, monkeypatch):
    import shc.format.decoder
    import shc.format.entropy

    out = tmp_path / "x.png"

    def refuse(*args, **kwargs):
        msg = "decoding started"
        raise AssertionError(msg)

    # 6.4 million x 4.8 million pixels: refused by a check made before the latents are decoded or a pixel
    # rendered (no timing: whatever started decoding or rendering fails the command)
    with monkeypatch.context() as patched:
        patched.setattr(shc.format.entropy, "file_latents", refuse)
        patched.setattr(shc.format.decoder.Synthesis, "__init__", refuse)
        assert_error(invoke("decode", encoded[0], "-o", out, "--scale", "100000"), 2, "exceeds the limit")
        assert_error(invoke("decode", encoded[0], "-o", out, "--size", "37x21", "--max-pixels", "776"), 2,
                     "--max-pixels")
        assert invoke("decode", encoded[0], "-o", out, "--size", "37x21", "--max-pixels", "777").exit_code != 0
    assert files_in(tmp_path) == set()
    assert invoke("decode", encoded[0], "-o", out, "--size", "37x21", "--max-pixels", "777").exit_code == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--scale", "0"], "--scale"),
        (["--scale", "-2"], "--scale"),
        (["--scale", "nan"], "--scale"),
        (["--scale", "inf"], "--scale"),
        (["--size", "0x5"], "--size"),
        (["--size", "37"], "--size"),
        (["--size", "axb"], "--size"),
        (["--size", "3x4x5"], "--size"),
        (["--scale", "2", "--size", "3x3"], "not both"),
    ],
)
def test_decode_bad_scale_or_size(tmp_path, encoded, args, fragment):
    assert_error(invoke("decode", encoded[0], "-o", tmp_path / "x.png", *args), 1, fragment)
    assert files_in(tmp_path) == set()


def test_decode_max_pixels_must_be_positive(tmp_path, encoded):
    assert_usage_error(invoke("decode", encoded[0], "-o", tmp_path / "x.png", "--max-pixels", "0"), "--max-pixels")


MALFORMED = {
    "empty": lambda data: b"",
    "magic_only": lambda data: data[:4],
    "truncated_header": lambda data: data[:10],
    "truncated_half": lambda data: data[: len(data) // 2],
    "truncated_last_byte": lambda data: data[:-1],
    "trailing_garbage": lambda data: data + b"\0",
    "wrong_magic": lambda data: b"XXXX" + data[4:],
    "wrong_version": lambda data: data[:4] + bytes([data[4] + 100]) + data[5:],
    "a_png": lambda data: PARROT.read_bytes(),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_shc_files_exit_2(tmp_path, encoded, case):
    bad = tmp_path / "bad.shc"
    bad.write_bytes(MALFORMED[case](encoded[0].read_bytes()))
    assert_error(invoke("info", bad), 2, f"{bad}: ")
    assert_error(invoke("info", bad, "--json"), 2, f"{bad}: ")
    assert_error(invoke("decode", bad, "-o", tmp_path / "x.png"), 2, f"{bad}: ")
    assert_error(invoke("decode", "-", "-o", tmp_path / "x.png", input=bad.read_bytes()), 2, "-: ")
    assert files_in(tmp_path) == {"bad.shc"}


def test_decode_and_info_refuse_missing_file_and_directory(tmp_path):
    for command in (["info"], ["decode", "-o", tmp_path / "x.png"]):
        assert_error(invoke(*command, tmp_path / "missing.shc"), 2, "no such file")
        assert_error(invoke(*command, tmp_path), 2, "is a directory")
    assert files_in(tmp_path) == set()


# --- info ---------------------------------------------------------------------------------------------


def test_info_json_sections_add_up(encoded):
    path, encode_report = encoded
    result = invoke("info", path, "--json")
    assert result.exit_code == 0, result.output
    report = json_report(result.stdout)
    size = path.stat().st_size
    assert report["bytes"] == size == encode_report["bytes"]
    assert (report["width"], report["height"]) == PARROT_SIZE
    assert report["format_version"] == FORMAT_VERSION  # a fresh encode writes the current version
    assert set(report["sections"]) >= {"header", "weights", "tables", "latents"}
    assert sum(section["bytes"] for section in report["sections"].values()) == size
    for section in report["sections"].values():
        assert section["bits"] == 8 * section["bytes"]
        assert section["bpp"] == pytest.approx(section["bits"] / (64 * 48), abs=1e-5)
    assert report["bpp"] == pytest.approx(encode_report["bpp"], abs=1e-5)
    assert len(report["level_cells"]) == report["config"]["num_levels"]


def test_encode_no_entropy_and_info(tmp_path):
    out = tmp_path / "raw.shc"
    result = invoke("encode", PARROT, "-o", out, "--preset", "fast", "--steps", "30",
                    "--no-entropy", "--json")
    assert result.exit_code == 0, result.output
    assert json_report(result.stdout)["entropy_coding"] is False
    info = json_report(invoke("info", out, "--json").stdout)
    assert info["latent_coding"] == "float16" and info["tables"] == [] and info["format_version"] == FORMAT_VERSION
    assert "float16 latents" in invoke("info", out).stdout


def test_info_text_and_stdin(encoded):
    path, _ = encoded
    result = invoke("info", path)
    assert result.exit_code == 0, result.output
    first, *rest = result.stdout.splitlines()
    assert first.startswith(f"{path}: .shc version ") and "64x48" in first and f"{path.stat().st_size} bytes" in first
    assert any(line.split()[0] == "latents" for line in rest)
    piped = invoke("info", "-", input=path.read_bytes())
    assert piped.exit_code == 0
    assert piped.stdout.replace("-: ", f"{path}: ", 1) == result.stdout


# --- the real console script --------------------------------------------------------------------------


def shc_command() -> list[str]:
    script = Path(sys.executable).with_name("shc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shc.cli.main"]


def run_shc(*args, stdin: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*shc_command(), *map(str, args)], input=stdin, capture_output=True, timeout=120, cwd=cwd)


def test_console_script_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    for args, code in [
        (["encode", text, "-o", tmp_path / "x.shc"], 2),
        (["decode", text, "-o", tmp_path / "x.png"], 2),
        (["info", tmp_path / "missing.shc"], 2),
        (["encode", text, "-o", tmp_path / "x.shc", "--quality", "11"], 1),
        (["decode", text, "-o", tmp_path / "x.png", "--scale", "-1"], 1),
    ]:
        proc = run_shc(*args)
        stderr = proc.stderr.decode()
        assert proc.returncode == code, stderr
        assert "Traceback" not in stderr
        assert len([line for line in stderr.splitlines() if line.startswith("Error: ")]) == 1, stderr
        if code == 2:
            assert len(stderr.splitlines()) == 1, stderr
    assert files_in(tmp_path) == {"notes.txt"}


@pytest.mark.slow
def test_console_script_round_trip_through_pipes(odd_image):
    source, _ = odd_image("tiny_2x3")
    encoded = run_shc("encode", "-", "-o", "-", "--preset", "fast", "--steps", "2", stdin=source.read_bytes())
    assert encoded.returncode == 0, encoded.stderr.decode()
    assert encoded.stdout.startswith(MAGIC)
    assert b"Traceback" not in encoded.stderr
    decoded = run_shc("decode", "-", "-o", "-", "--size", "5x7", stdin=encoded.stdout)
    assert decoded.returncode == 0, decoded.stderr.decode()
    assert Image.open(BytesIO(decoded.stdout)).size == (5, 7)
    info = run_shc("info", "-", "--json", stdin=encoded.stdout)
    assert info.returncode == 0
    assert json.loads(info.stdout)["bytes"] == len(encoded.stdout)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery")
def test_console_script_ctrl_c_during_training(tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(PARROT.read_bytes())
    out = tmp_path / "out.shc"
    args = ["encode", source, "-o", out, "--preset", "fast", "--steps", "100000", "--progress"]
    proc = subprocess.Popen([*shc_command(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = b""
        deadline = time.monotonic() + 600  # a hang guard (read1 blocks), not a speed check
        # wait until the progress bar shows completed training steps
        while not re.search(rb"\|\s*[1-9]\d*/100000", seen):
            chunk = proc.stderr.read1(4096)
            assert chunk and time.monotonic() < deadline, seen.decode(errors="replace")
            seen += chunk
        proc.send_signal(signal.SIGINT)
        stdout, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = (seen + rest).decode(errors="replace")
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert files_in(tmp_path) == {"in.png"}  # no output, no temporary file


@pytest.mark.parametrize(("kernel", "stored"), [("bilinear", 0), ("bspline", 1)])
def test_encode_interpolation_option_is_stored_in_the_header(tmp_path, kernel, stored):
    from shc.format.container import read_file

    out = tmp_path / f"{kernel}.shc"
    result = invoke("encode", PARROT, "-o", out, "--preset", "fast", "--steps", "20", "--interpolation", kernel, "--json")
    assert result.exit_code == 0, result.output
    assert json_report(result.stdout)["interpolation"] == kernel
    assert read_file(out.read_bytes()).header.config.interpolation == stored


def test_encode_strip_through_the_cli(tmp_path):
    """``shc encode --strip``: the ICC profile and EXIF block of the input stay out of the file (and the
    file is smaller by about their size); without it they are kept. The pixels are coded the same way up
    (EXIF orientation applied either way)."""
    from shc.format.container import read_file

    source = Path(__file__).parent / "data" / "parrot_p3_64x48.png"
    with Image.open(source) as image:
        icc = image.info["icc_profile"]
    kept, stripped = tmp_path / "kept.shc", tmp_path / "stripped.shc"
    for out, extra in ((kept, []), (stripped, ["--strip"])):
        result = invoke("encode", source, "-o", out, *FAST, "-q", "1", "--json", *extra)
        assert result.exit_code == 0, result.output
        assert json_report(result.stdout)["bytes"] == out.stat().st_size
    with_meta, without = read_file(kept.read_bytes()), read_file(stripped.read_bytes())
    assert with_meta.icc_profile == icc and with_meta.exif is not None
    assert without.icc_profile is None and without.exif is None and "metadata" not in without.section_bytes
    assert kept.stat().st_size - stripped.stat().st_size > len(icc)
    assert (without.header.width, without.header.height) == (with_meta.header.width, with_meta.header.height) == (48, 64)


def test_encode_background_through_the_cli(tmp_path):
    """``shc encode --background``: an RGBA input is flattened over the colour before coding (a 3-channel
    file whose reported PSNR is against the flattened input); without it the alpha is coded."""
    from shc.format.container import read_file
    from shc.format.decoder import decode_bytes

    source = Path(__file__).parent / "data" / "parrot_rgba_64x48.png"
    rgba = np.asarray(Image.open(source))
    assert rgba.shape == (48, 64, 4)
    flat_out, alpha_out = tmp_path / "flat.shc", tmp_path / "alpha.shc"
    result = invoke("encode", source, "-o", flat_out, "--preset", "fast", "--steps", "150", "--background", "#0080ff",
                    "--json")
    assert result.exit_code == 0, result.output
    report = json_report(result.stdout)
    assert read_file(flat_out.read_bytes()).header.config.channels == 3 and report["channels"] == 3
    assert report["psnr_alpha_db"] is None
    # straight alpha over (0, 128, 255), rounded to nearest, computed here independently of shc.images
    alpha = rgba[..., 3:].astype(np.float64)
    flattened = np.rint((rgba[..., :3] * alpha + np.array([0, 128, 255]) * (255 - alpha)) / 255).astype(np.uint8)
    decoded = decode_bytes(flat_out.read_bytes())
    assert decoded.shape == (48, 64, 3)
    assert report["psnr_db"] == pytest.approx(psnr_db(decoded, flattened), abs=1e-3)
    assert report["psnr_db"] > psnr_db(decoded, rgba[..., :3]) + 3  # against the unflattened colours: far worse
    result = invoke("encode", source, "-o", alpha_out, "--preset", "fast", "--steps", "30", "--json")
    assert result.exit_code == 0, result.output
    assert read_file(alpha_out.read_bytes()).header.config.channels == 4
    assert json_report(result.stdout)["psnr_alpha_db"] is not None
