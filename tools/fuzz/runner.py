"""Running cases: one case is decoded with the normative decoder and read again with
:class:`~shc.format.reader.ShcReader`, and classified (:func:`check_case`); :func:`run_fuzz` decodes every
seed unmutated, then the mutated cases and the truncation sweeps, into a :class:`~shc.tools.fuzz.report.FuzzReport`.
"""

from __future__ import annotations

import faulthandler
import time
import tracemalloc
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from shc.format import constants as C
from shc.format.container import read_file
from shc.format.decoder import DecodedImage, decode_image
from shc.format.errors import ShcFormatError
from shc.format.reader import ShcReader
from shc.tools.fuzz.mutators import mutate
from shc.tools.fuzz.report import CaseResult, FuzzReport
from shc.tools.fuzz.seeds import Seed
from shc.tools.fuzz.syntax import truncation_points

__all__ = [
    "DEFAULT_CASE_SECONDS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MEMORY_LIMIT_MB",
    "CaseRun",
    "check_case",
    "check_reader",
    "run_case",
    "run_fuzz",
]

DEFAULT_MAX_PIXELS = 1 << 20
DEFAULT_CASE_SECONDS = 10.0
DEFAULT_MEMORY_LIMIT_MB = 1024


@dataclass(frozen=True)
class CaseRun:
    """What one decode of a case gave (:func:`check_case`)."""

    outcome: str  # "error", "decoded" or "failure"
    seconds: float
    peak_bytes: int
    detail: str  # the ShcFormatError message, the decoded size, or why it failed (with traceback)
    warnings: tuple[str, ...] = ()
    reader: str = ""
    """What :class:`~shc.format.reader.ShcReader` did with the same bytes (:func:`check_reader`); "" when
    not checked."""


def run_case(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    case_seconds: float = DEFAULT_CASE_SECONDS,
    memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_MB << 20,
    reader: bool = True,
) -> tuple[str, float, int, str, tuple[str, ...]]:
    """Decode ``data`` once and classify it: ``(outcome, seconds, peak traced bytes, detail, warnings)``
    (:func:`check_case`, which also says what ShcReader did)."""
    run = check_case(data, max_pixels, case_seconds, memory_limit_bytes, reader)
    return run.outcome, run.seconds, run.peak_bytes, run.detail, run.warnings


def check_case(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    case_seconds: float = DEFAULT_CASE_SECONDS,
    memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_MB << 20,
    reader: bool = True,
) -> CaseRun:
    """Decode ``data`` with :func:`~shc.format.decoder.decode_image`, then (``reader``) read it again with
    :class:`~shc.format.reader.ShcReader` (:func:`check_reader`), and classify the case.

    Time and the peak allocation cover both. The peak is measured only while :mod:`tracemalloc` is tracing
    (numpy reports its buffers to it); otherwise it is 0 and ``memory_limit_bytes`` is not checked.
    """
    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    note = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = None
        try:
            image = decode_image(data, max_pixels=max_pixels)
        except ShcFormatError as error:
            outcome, detail = ("error", str(error)) if str(error) else ("failure", "ShcFormatError with no message")
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001 - anything else is exactly what we are looking for
            outcome = "failure"
            detail = f"{type(error).__module__}.{type(error).__qualname__} escaped:\n{traceback.format_exc()}"
        else:
            outcome, detail = _check_image(data, image, max_pixels)
        if reader and outcome != "failure":
            try:
                outcome, detail, note = check_reader(data, outcome, detail, image)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as error:  # noqa: BLE001
                outcome, note = "failure", "raised"
                detail = (f"ShcReader: {type(error).__module__}.{type(error).__qualname__} escaped "
                          f"(decode_image: {detail.splitlines()[0] if detail else ''}):\n{traceback.format_exc()}")
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - base if tracing else 0
    if outcome != "failure" and seconds > case_seconds:
        outcome, detail = "failure", f"too slow: {seconds:.2f} s > {case_seconds} s ({detail})"
    if outcome != "failure" and memory_limit_bytes is not None and tracing and peak > memory_limit_bytes:
        limit_mib = memory_limit_bytes / 2**20
        outcome, detail = "failure", f"peak allocation {peak / 2**20:.0f} MiB > {limit_mib:.0f} MiB ({detail})"
    kinds = tuple(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
    return CaseRun(outcome, seconds, peak, detail, kinds, note)


PREFIX_RENDER_SIDE = 48
"""Longest side of the rendering of what a truncated file holds (:func:`check_reader`): any size checks the
same reads and decodes."""


def check_reader(data: bytes, outcome: str, detail: str, decoded: DecodedImage | None) -> tuple[str, str, str]:
    """Read ``data`` again with :class:`~shc.format.reader.ShcReader` and check it against what
    :func:`~shc.format.decoder.decode_image` did (``outcome``, ``detail``, ``decoded``); returns the
    possibly changed ``(outcome, detail)`` and a note of what the reader did.

    - decoded: the reader opens it whole (not truncated, every level complete); its full rendering, the
      bottom-right quarter rendered alone (the segments :func:`~shc.format.reader.region_segments` picks),
      and a rendering from the first level alone (SPEC §6) succeed, the first two equal to the decoded pixels;
    - refused, and the reader finds the file cut short in its latents (version 7): with ``complete_levels``
      = K >= 1 it renders the prefix of K levels, or refuses with a ShcFormatError (a corrupted segment);
      with K = 0 it refuses any prefix;
    - refused otherwise: the reader refuses at open, or its full decode refuses too (unless decode_image
      refused only the output size, which the reader does not check).

    Any exception other than ShcFormatError propagates (the caller makes it a failure)."""
    try:
        reader = ShcReader(data)
    except ShcFormatError as error:
        if outcome == "decoded":
            return "failure", f"decode_image decoded the file, ShcReader refused it: {error}", "refused a valid file"
        return outcome, detail, "refused at open"
    header = reader.header
    levels = len(header.layout.levels)
    width, height = header.width, header.height
    if outcome == "decoded":
        if reader.truncated or reader.complete_levels != levels:
            return "failure", f"ShcReader found {reader.complete_levels} of {levels} levels in a whole file", "wrong"
        pixels = decoded.pixels
        with np.errstate(over="ignore", invalid="ignore"):  # as decode_image: weights that overflow float32
            if not np.array_equal(reader.synthesis().render(width, height), pixels):
                return "failure", "ShcReader's full rendering differs from decode_image's", "differs"
            box = (width // 2, height // 2, width, height)
            region = reader.synthesis(width, height, box=box).render(width, height, box)
            if not np.array_equal(region, pixels[box[1] :, box[0] :]):
                return "failure", f"ShcReader's rendering of region {box} differs from decode_image's", "differs"
            side = _preview_size(width, height)
            reader.synthesis(*side, levels=1).render(*side)
        return outcome, detail, "whole: full, region and first level rendered"
    if reader.truncated:
        complete = reader.complete_levels
        side = _preview_size(width, height)
        try:
            synthesis = reader.synthesis(*side, levels=max(complete, 1))
        except ShcFormatError:
            return outcome, detail, "cut short: prefix refused" if complete else "cut short: no complete level"
        if not complete:
            return "failure", "ShcReader rendered a level of a file that holds none whole", "rendered a missing level"
        with np.errstate(over="ignore", invalid="ignore"):
            synthesis.render(*side)
        return outcome, detail, "cut short: complete levels rendered"
    if "pixels exceeds the limit of" in detail:
        return outcome, detail, "whole: output size refused"
    try:
        reader.synthesis()
    except ShcFormatError:
        return outcome, detail, "whole: refused too"
    return "failure", f"ShcReader decoded a file that decode_image refused ({detail})", "decoded a refused file"


def _preview_size(width: int, height: int) -> tuple[int, int]:
    scale = PREFIX_RENDER_SIDE / max(width, height)
    return max(1, min(width, round(width * scale))), max(1, min(height, round(height * scale)))


def _check_image(data: bytes, decoded: object, max_pixels: int) -> tuple[str, str]:
    if not isinstance(decoded, DecodedImage):
        return "failure", f"decode_image returned {type(decoded).__name__}, not a DecodedImage"
    parsed = read_file(data)
    header = parsed.header
    image = decoded.pixels
    channels = header.config.channels
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape[2:] == (channels,)):
        got = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        return "failure", f"decode_image returned {got}, not a uint8 (height, width, {channels}) array"
    for name in ("icc_profile", "exif"):
        value = getattr(decoded, name)
        if value is not None and not (isinstance(value, bytes) and 1 <= len(value) <= C.MAX_META_ENTRY_BYTES):
            return "failure", f"decode_image returned a {name} of {type(value).__name__} {len(value)}"
        if value != getattr(parsed, name):
            return "failure", f"decode_image returned another {name} than read_file"
    if image.shape[:2] != (header.height, header.width):
        return "failure", f"decoded {image.shape[1]}x{image.shape[0]}, the header says {header.width}x{header.height}"
    if image.shape[0] * image.shape[1] > max_pixels:
        return "failure", f"decoded {image.shape[1]}x{image.shape[0]} despite max_pixels={max_pixels}"
    return "decoded", f"{image.shape[1]}x{image.shape[0]}"


def run_fuzz(
    seeds: Sequence[Seed],
    cases: int = 1000,
    seed: int = 0,
    time_limit: float | None = None,
    case_seconds: float = DEFAULT_CASE_SECONDS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
    sweep_truncations: bool = False,
    only_cases: Sequence[int] | None = None,
    keep_failures: int = 20,
    watchdog_seconds: float | None = None,
    progress: Callable[[FuzzReport], None] | None = None,
    sweep_boundaries: bool = False,
    reader: bool = True,
) -> FuzzReport:
    """Decode every seed unmutated, then ``cases`` mutated cases (and optionally every truncation of every
    seed, or ``sweep_boundaries``: its cuts at every section and latent-segment boundary and one byte either
    side, :func:`truncation_points`). ``reader``: check every case with ShcReader too (:func:`check_reader`).

    ``watchdog_seconds`` arms :func:`faulthandler.dump_traceback_later` around each case: a case that truly
    hangs then prints every thread's traceback and ends the process with exit status 1, rather than hanging.
    """
    if not seeds:
        msg = "no seed files to fuzz"
        raise ValueError(msg)
    report = FuzzReport(seeds_total=len(seeds), keep_failures=keep_failures)
    start = time.perf_counter()
    memory_limit = None if not memory_limit_mb else memory_limit_mb << 20
    started_tracing = memory_limit is not None and not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()

    def one(index: int, seed_obj: Seed, mutator: str, data: bytes) -> CaseResult:
        if watchdog_seconds:
            faulthandler.dump_traceback_later(watchdog_seconds, exit=True)
        try:
            run = check_case(data, max_pixels, case_seconds, memory_limit, reader)
        finally:
            if watchdog_seconds:
                faulthandler.cancel_dump_traceback_later()
        kept = data if run.outcome == "failure" else b""
        return CaseResult(index, seed_obj.name, mutator, run.outcome, run.seconds, run.peak_bytes, run.detail, kept,
                          run.warnings, run.reader)

    try:
        for seed_obj in seeds:
            result = one(-1, seed_obj, "unmutated", seed_obj.data)
            report.add(result)
            if result.outcome == "decoded":
                report.seeds_decoded += 1
            else:
                report.seed_problems.append(f"{seed_obj.name}: {result.outcome}: {result.detail.splitlines()[0]}")
        indices = range(cases) if only_cases is None else only_cases
        for index in indices:
            if time_limit is not None and time.perf_counter() - start > time_limit:
                report.stopped_early = True
                break
            rng = np.random.default_rng([seed, index])
            seed_obj = seeds[int(rng.integers(len(seeds)))]
            mutator, data = mutate(rng, seed_obj, seeds)
            report.add(one(index, seed_obj, mutator, data))
            if progress is not None and report.cases % 500 == 0:
                progress(report)
        if sweep_boundaries and not report.stopped_early:
            for seed_obj in seeds:
                for length in truncation_points(seed_obj.data):
                    if time_limit is not None and time.perf_counter() - start > time_limit:
                        report.stopped_early = True
                        break
                    report.add(one(length, seed_obj, "boundary_sweep", seed_obj.data[:length]))
        if sweep_truncations and not report.stopped_early:
            for seed_obj in seeds:
                for length in range(len(seed_obj.data)):
                    if time_limit is not None and time.perf_counter() - start > time_limit:
                        report.stopped_early = True
                        break
                    report.add(one(length, seed_obj, "truncate_sweep", seed_obj.data[:length]))
    finally:
        if started_tracing:
            tracemalloc.stop()
    report.seconds = time.perf_counter() - start
    return report
