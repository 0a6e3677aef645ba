"""The sensitivity analysis of the SHACIRA paper's appendix §3: one rate-distortion curve per value of one
hyperparameter, each curve drawn by the hash-table size (2^13 .. 2^17 rows per level by default).

The appendix fixes a 1920x1080 image, λ = 1e-4, latent and feature dimension 1, an MLP 48 wide with 2
hidden layers and an annealing period of 0.95, and varies one of them at a time; those are this sweep's
defaults for every parameter not swept (:data:`APPENDIX`), with 16 grid levels (the paper's large-image
configuration) and one probability-model group per level.

**λ.** The paper's rate term is the latents' bits *per table row* (its code divides the total bits by the
rows of the latent table), shc's is bits *per pixel* (loss = MSE + λ · bpp). The two are the same loss when

    λ_shc = λ_paper · pixels / rows,

where ``rows`` is the number of latent rows of the grid: it grows with the table size, so a fixed paper λ
is a smaller shc λ at larger tables, and a curve over table sizes also moves along the rate axis, as the
appendix's do. By default every point gets the paper's λ = 1e-4 converted this way (``row_lambda``); a fixed
shc λ (``lmbda``, per bpp, or a quality level's) can be given instead.

Every point is a real file: its bytes give bpp (bytes · 8 / pixels, headers and weights included), and it
is decoded (``shc.decode``, timed) for the RGB PSNR and MS-SSIM. Points go to ``sweep.csv`` (one CSV for
every parameter swept into the folder), which is rewritten atomically after each point, so a killed run
leaves the points it finished and a rerun measures only what is missing. Points whose settings are those of
a point already measured (the baseline value recurs in every parameter's sweep) are copied, not trained
again (``measured_as`` names the row that was trained).

Outputs in the folder: ``sweep.csv``, ``<param>.png`` (PSNR against bpp, one line per value), ``json/``
(one CompressAI-style JSON per curve, as ``shc bench`` writes them), ``bd_rates.md``/``.csv`` (BD-rate and
BD-PSNR of each value against the parameter's baseline value) and ``meta.json``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shc.cli.common import open_output
from shc.codec.presets import EncoderSettings, level_cells, quality_level, settings_for
from shc.format import constants as C

__all__ = [
    "APPENDIX", "APPENDIX_ROW_LAMBDA", "DEFAULT_TABLES", "FIELDS", "PARAMS", "Param", "Point", "Rate", "SweepError",
    "SweepResults", "base_settings", "centre_crop", "crop_for_pixels", "format_value", "parse_param",
    "parse_tables", "parse_values", "plan_points", "run_sweep",
]


class SweepError(ValueError):
    """A parameter, value, table size, crop or image the sweep (or the .shc format) cannot take."""


@dataclasses.dataclass(frozen=True)
class Param:
    """A hyperparameter the sweep can vary."""

    name: str
    """The ``--param`` name: the :class:`EncoderSettings` field (``row_lambda``: the paper's λ, converted)."""
    kind: type
    """int or float."""
    low: float
    high: float
    """Allowed values, both ends included."""
    what: str
    """One line for ``--help``."""


PARAMS: dict[str, Param] = {p.name: p for p in (
    Param("latent_dim", int, 1, C.MAX_LATENT_DIM, "D, latents per grid vertex (D > 1: no context model)"),
    Param("feat_dim", int, 1, C.MAX_FEAT_DIM, "F, features per level out of the latent decoder"),
    Param("num_levels", int, 1, C.MAX_LEVELS, "grid levels L (one probability group per level)"),
    Param("mlp_width", int, 1, C.MAX_MLP_WIDTH, "hidden units per MLP layer"),
    Param("mlp_depth", int, 0, C.MAX_MLP_DEPTH, "hidden MLP layers"),
    Param("anneal", float, 0.0, 1.0, "annealing period: soft rounding until this fraction of the steps "
          "(after noise, the first 0.5)"),
    Param("lmbda", float, 0.0, math.inf, "shc's rate weight λ per bpp, the same at every table size"),
    Param("row_lambda", float, 0.0, math.inf, "the paper's rate weight λ per table row (λ·pixels/rows per bpp)"),
)}

ALIASES = {"latent": "latent_dim", "feature_dim": "feat_dim", "levels": "num_levels", "width": "mlp_width",
           "depth": "mlp_depth", "annealing": "anneal", "lambda": "row_lambda"}
"""Other names ``--param`` takes (hyphens are read as underscores)."""

APPENDIX: dict[str, int | float] = {"latent_dim": 1, "feat_dim": 1, "num_levels": 16, "mlp_width": 48,
                                     "mlp_depth": 2, "anneal": 0.95}
"""The appendix's setting of the parameters that are not swept (16 levels: the paper's large-image grid)."""
APPENDIX_ROW_LAMBDA = 1e-4
"""The appendix's λ, per table row."""
DEFAULT_TABLES = (13, 14, 15, 16, 17)
"""log2 of the rows per level's hash table: the appendix's 2^13 .. 2^17."""
RATE_PARAMS = ("lmbda", "row_lambda")

FIELDS = ("param", "value", "log2_hashmap_size", "image", "bytes", "bpp", "psnr_rgb", "ms_ssim_rgb", "encode_s",
          "decode_s", "lmbda", "table_rows", "steps", "config", "measured_as")
"""The columns of ``sweep.csv``; ``bytes`` .. ``decode_s`` are those of ``shc bench``'s per_image.csv."""
KEY_FIELDS = ("param", "value", "log2_hashmap_size")
_NUMERIC = ("bytes", "bpp", "psnr_rgb", "encode_s", "decode_s", "lmbda", "table_rows", "steps")


# ------------------------------------------------------------------------------------------ parsing


def parse_param(name: str) -> str:
    """The canonical name of ``--param NAME``; :class:`SweepError` listing the choices for an unknown one."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in PARAMS:
        msg = f"unknown --param {name!r}; choose one of {', '.join(PARAMS)}"
        raise SweepError(msg)
    return key


def format_value(value: float) -> str:
    """Canonical text of a value, so ``2``, ``2.0`` (an int parameter) and ``1e-4``, ``0.00010`` name one row."""
    return str(value) if isinstance(value, int) else repr(float(value))


def _number(param: Param, text: str, option: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        msg = f"{option}: {text!r} is not a number"
        raise SweepError(msg) from None
    if param.kind is int:
        if not value.is_integer():
            msg = f"{option}: {param.name} takes whole numbers, got {text!r}"
            raise SweepError(msg)
        value = int(value)
    if not (math.isfinite(value) and param.low <= value <= param.high):
        high = "" if math.isinf(param.high) else f" .. {param.high:g}"
        bound = f"{param.low:g}{high}" if high else f">= {param.low:g}"
        msg = f"{option}: {param.name}={text} is outside what the .shc format and encoder take ({bound})"
        raise SweepError(msg)
    return value


def parse_values(param: str, text: str) -> list[int | float]:
    """The values of ``--values a,b,c`` for ``param`` (canonical name), in the given order, duplicates dropped."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        msg = "--values is empty; give comma-separated values, e.g. --values 1,2,4"
        raise SweepError(msg)
    values = [_number(PARAMS[param], item, "--values") for item in items]
    return list(dict.fromkeys(values))


def parse_tables(text: str) -> list[int]:
    """``--tables 13,14,15``: log2 table sizes, each in the format's 4 .. 24, sorted."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        msg = "--tables is empty; give log2 table sizes, e.g. --tables 13,14,15,16,17"
        raise SweepError(msg)
    tables = []
    for item in items:
        if not item.isdigit() or not 4 <= int(item) <= C.MAX_LOG2_HASHMAP_SIZE:
            msg = f"--tables: {item!r} is not a log2 table size in 4 .. {C.MAX_LOG2_HASHMAP_SIZE}"
            raise SweepError(msg)
        tables.append(int(item))
    return sorted(set(tables))


def parse_sets(items: Sequence[str], swept: str) -> dict[str, int | float]:
    """``--set NAME=VALUE`` (repeatable): the fixed value of a parameter that is not swept."""
    fixed: dict[str, int | float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            msg = f"--set {item!r}: expected NAME=VALUE, e.g. --set num_levels=12"
            raise SweepError(msg)
        key = parse_param(name)
        if key in RATE_PARAMS:
            msg = f"--set {item!r}: give the rate weight with --lmbda, --row-lambda or --quality"
            raise SweepError(msg)
        if key == swept:
            msg = f"--set {item!r}: {key} is the parameter being swept (--values)"
            raise SweepError(msg)
        fixed[key] = _number(PARAMS[key], text.strip(), "--set")
    return fixed


def parse_size(text: str) -> tuple[int, int]:
    """``--crop WxH``."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.strip().isdigit() or not height.strip().isdigit() or min(int(width), int(height)) < 1:
        msg = f"--crop must look like 1920x1080, got {text!r}"
        raise SweepError(msg)
    return int(width), int(height)


# ------------------------------------------------------------------------------------------ image


def centre_crop(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """The ``width x height`` centre of an ``(H, W, C)`` image (C-contiguous); :class:`SweepError` if larger."""
    full_h, full_w = pixels.shape[:2]
    if width > full_w or height > full_h:
        msg = f"--crop {width}x{height} is larger than the image ({full_w}x{full_h})"
        raise SweepError(msg)
    top, left = (full_h - height) // 2, (full_w - width) // 2
    return np.ascontiguousarray(pixels[top : top + height, left : left + width])


def crop_for_pixels(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The largest centre crop with the image's aspect ratio and at most ``max_pixels`` pixels."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    crop_w, crop_h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    while crop_w * crop_h > max_pixels:
        crop_w, crop_h = max(1, crop_w - 1), max(1, crop_h - 1)
    return crop_w, crop_h


# ------------------------------------------------------------------------------------------ settings


@dataclasses.dataclass(frozen=True)
class Rate:
    """The rate weight of a point: ``kind`` "row" (the paper's, per table row, converted to shc's per point)
    or "bpp" (shc's own)."""

    kind: str
    value: float

    def describe(self) -> str:
        return f"λ {self.value:g} per table row (the paper's)" if self.kind == "row" else f"λ {self.value:g} per bpp"


def base_rate(lmbda: float | None, row_lambda: float | None, quality: float | None) -> Rate:
    """The rate weight of the curves' common setting: at most one of shc's λ, the paper's λ or a quality level's
    λ; none: the appendix's λ = 1e-4 per table row."""
    if lmbda is not None:
        return Rate("bpp", lmbda)
    if quality is not None:
        return Rate("bpp", quality_level(quality).lmbda)
    return Rate("row", APPENDIX_ROW_LAMBDA if row_lambda is None else row_lambda)


def base_settings(preset: str, steps: int | None, fixed: dict[str, int | float] | None = None) -> EncoderSettings:
    """The preset's schedule (grid extent, batch, learning rates; ``steps`` overrides) with the appendix's
    architecture (:data:`APPENDIX`, ``fixed`` overrides) and one probability group per level."""
    settings = settings_for(preset, None, steps)
    settings = dataclasses.replace(settings, **{**APPENDIX, **(fixed or {})})
    return dataclasses.replace(settings, num_groups=settings.num_levels)


def _header(settings: EncoderSettings, width: int, height: int):
    """The file header these settings give an image (what :func:`shc.codec.encoder.make_header` builds, without
    importing torch), validated against the format's limits."""
    from shc.format.header import Header, ModelConfig

    config = ModelConfig(
        num_levels=settings.num_levels, log2_hashmap_size=settings.log2_hashmap_size,
        latent_dim=settings.latent_dim, feat_dim=settings.feat_dim, mlp_width=settings.mlp_width,
        mlp_depth=settings.mlp_depth, num_groups=min(settings.num_groups, settings.num_levels),
        interpolation=settings.interpolation, channels=C.CHANNELS_RGB,
    )
    header = Header(width, height, config, tuple(level_cells(settings, width, height)), C.LATENTS_RANGE_CODED)
    header.validate()
    return header


@dataclasses.dataclass(frozen=True)
class Point:
    """One measurement of the sweep: a value of the parameter at one table size."""

    param: str
    value: int | float
    table: int
    settings: EncoderSettings
    rows: int
    """Latent rows of the grid (the paper's λ is per row)."""
    config: str
    """Fingerprint of everything that decides the file: settings, image, seed, device."""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.param, format_value(self.value), str(self.table)

    @property
    def label(self) -> str:
        return f"{self.param}={format_value(self.value)}"


def _fingerprint(settings: EncoderSettings, image_digest: str, seed: int, device: str) -> str:
    defaults = EncoderSettings()
    changed = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)
               if getattr(settings, field.name) != getattr(defaults, field.name)}
    text = json.dumps({"settings": changed, "image": image_digest, "seed": seed, "device": device},
                      sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def plan_points(
    base: EncoderSettings, rate: Rate, param: str, values: Sequence[int | float], tables: Sequence[int],
    width: int, height: int, image_digest: str = "", seed: int = 0, device: str = "cpu",
) -> list[Point]:
    """Every point's settings, checked against the format before anything trains: a value the file cannot
    hold (e.g. latent_dim 8 with 32 levels of 2^17 rows: more than 2^24 latents) is a :class:`SweepError`."""
    points = []
    for value in values:
        for table in tables:
            changes: dict[str, Any] = {"log2_hashmap_size": table}
            if param not in RATE_PARAMS:
                changes[param] = value
            settings = dataclasses.replace(base, **changes)
            settings = dataclasses.replace(settings, num_groups=settings.num_levels)
            try:
                header = _header(settings, width, height)
            except ValueError as error:  # ShcFormatError is a ValueError
                msg = f"{param}={format_value(value)} at 2^{table} rows: the .shc format cannot hold it ({error})"
                raise SweepError(msg) from None
            rows = sum(header.level_rows())
            point_rate = Rate("bpp" if param == "lmbda" else "row", float(value)) if param in RATE_PARAMS else rate
            lmbda = point_rate.value if point_rate.kind == "bpp" else point_rate.value * width * height / rows
            settings = dataclasses.replace(settings, lmbda=lmbda)
            points.append(Point(param, value, table, settings, rows,
                                _fingerprint(settings, image_digest, seed, device)))
    return points


# ------------------------------------------------------------------------------------------ results file


def _complete(row: dict[str, str | None]) -> bool:
    if None in row or any(row.get(column) in (None, "") for column in FIELDS if column != "ms_ssim_rgb"):
        return False
    try:
        for column in _NUMERIC:
            float(row[column])  # type: ignore[arg-type]
        float(row["ms_ssim_rgb"] or "nan")
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Any]:
    """A text file (UTF-8, newlines as written) to write ``path`` through :func:`shc.cli.common.open_output`:
    a temporary file in its folder, renamed over it when the block ends without an exception (an
    interrupted write leaves the old file, never a partial one)."""
    with open_output(str(path), force=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield text
        text.flush()
        text.detach()  # open_output closes the file itself


class SweepResults:
    """``sweep.csv``: the rows by (param, value, table), rewritten atomically on every :meth:`put`.

    Raises:
        SweepError: If an existing file is not a sweep CSV (another header).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[tuple[str, str, str], dict[str, str]] = {}
        if path.exists():
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if tuple(reader.fieldnames or ()) != FIELDS:
                    msg = f"{path}: not a sweep CSV (header {reader.fieldnames}, expected {','.join(FIELDS)})"
                    raise SweepError(msg)
                rows = list(reader)
            complete = [row for row in rows if _complete(row)]
            if len(complete) != len(rows):
                warnings.warn(f"{path}: ignored {len(rows) - len(complete)} incomplete row(s)", stacklevel=2)
            for row in complete:
                self.rows[tuple(row[f] for f in KEY_FIELDS)] = row  # type: ignore[index]

    def measured(self, config: str) -> dict[str, str] | None:
        """A row that was trained with this configuration (under any param), or None."""
        for row in self.rows.values():
            if row["config"] == config and row["measured_as"] == f"{row['param']}={row['value']}":
                return row
        return None

    def put(self, row: dict[str, str]) -> None:
        """Add or replace a row and rewrite the file atomically, sorted by param, value and table."""
        self.rows[tuple(row[f] for f in KEY_FIELDS)] = row  # type: ignore[index]
        ordered = sorted(self.rows.values(), key=lambda r: (r["param"], _sort_value(r["value"]),
                                                             int(r["log2_hashmap_size"])))
        with _atomic(self.path) as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            writer.writerows(ordered)


def _sort_value(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.inf


# ------------------------------------------------------------------------------------------ measuring


def _row(point: Point, image: str, values: dict[str, float], measured_as: str) -> dict[str, str]:
    return {
        "param": point.param, "value": format_value(point.value), "log2_hashmap_size": str(point.table),
        "image": image, "bytes": str(int(values["bytes"])), "bpp": f"{values['bpp']:.6f}",
        "psnr_rgb": f"{values['psnr_rgb']:.4f}",
        "ms_ssim_rgb": "" if math.isnan(values["ms_ssim_rgb"]) else f"{values['ms_ssim_rgb']:.6f}",
        "encode_s": f"{values['encode_s']:.2f}", "decode_s": f"{values['decode_s']:.3f}",
        "lmbda": f"{point.settings.lmbda:.6g}", "table_rows": str(point.rows), "steps": str(point.settings.steps),
        "config": point.config, "measured_as": measured_as,
    }


def measure(encode: Callable[..., Any], pixels: np.ndarray, point: Point, device: str, seed: int,
            with_ms_ssim: bool, step_bar: Any = None) -> dict[str, float]:
    """Train and write one file, decode it, and return the CSV's numbers: bytes, bpp of the real file, RGB PSNR
    and MS-SSIM of the decoded pixels, encode seconds (the encoder's own, its check decode included) and
    decode seconds."""
    import shc
    from shc.bench.metrics import ms_ssim
    from shc.metrics import psnr_db

    interrupts = step_bar.deferring_interrupts() if step_bar is not None else contextlib.nullcontext()
    with interrupts:
        result = encode(pixels, settings=point.settings, device=device, seed=seed, progress=step_bar)
    if step_bar is not None and getattr(step_bar, "interrupted", False):
        raise KeyboardInterrupt
    start = time.perf_counter()
    decoded = np.asarray(shc.decode(result.data).convert("RGB"))
    decode_s = time.perf_counter() - start
    height, width = pixels.shape[:2]
    return {
        "bytes": len(result.data),
        "bpp": len(result.data) * 8 / (width * height),
        "psnr_rgb": psnr_db(pixels, decoded),
        "ms_ssim_rgb": ms_ssim(pixels, decoded) if with_ms_ssim else float("nan"),
        "encode_s": result.encode_seconds,
        "decode_s": decode_s,
    }


# ------------------------------------------------------------------------------------------ reports


def _curves(rows: Sequence[dict[str, str]], param: str, values: Sequence[str] | None = None) -> list:
    """One :class:`shc.bench.report.Curve` per value of ``param`` (in ``values`` order, else by value), its
    points sorted by bpp; results keys as ``shc bench``'s JSON, plus the table sizes."""
    from shc.bench.report import Curve

    by_value: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if row["param"] == param:
            by_value.setdefault(row["value"], []).append(row)
    order = [v for v in values if v in by_value] if values else sorted(by_value, key=_sort_value)
    curves = []
    for value in order:
        points = sorted(by_value[value], key=lambda r: float(r["bpp"]))

        def column(name: str, rows: list[dict[str, str]] = points) -> list[float]:
            return [float(r[name]) if r[name] else float("nan") for r in rows]

        results = {"bpp": column("bpp"), "psnr-rgb": column("psnr_rgb"), "ms-ssim-rgb": column("ms_ssim_rgb"),
                   "encoding_time": column("encode_s"), "decoding_time": column("decode_s"),
                   "log2_hashmap_size": [int(r["log2_hashmap_size"]) for r in points]}
        description = f"shc sweep {param}={value} over table sizes 2^{min(results['log2_hashmap_size'])}" \
                      f"..2^{max(results['log2_hashmap_size'])}"
        curves.append(Curve(f"{param}={value}", description, results))
    return curves


def _linear_deltas(anchor_bpp: Sequence[float], anchor_psnr: Sequence[float], test_bpp: Sequence[float],
                   test_psnr: Sequence[float]) -> tuple[float, float]:
    """BD-rate (%) and BD-PSNR (dB) with straight-line fits instead of cubics: log-rate against PSNR (and PSNR
    against log-rate) by least squares, averaged over the overlap. Five points of short, noisy training do not
    pin a cubic down (its ends swing, and BD-rate with them); a line only asks for the trend."""
    log_a, log_t = np.log(anchor_bpp), np.log(test_bpp)
    psnr_a, psnr_t = np.asarray(anchor_psnr, float), np.asarray(test_psnr, float)

    def mean_gap(x_a: np.ndarray, y_a: np.ndarray, x_t: np.ndarray, y_t: np.ndarray) -> float:
        low, high = max(x_a.min(), x_t.min()), min(x_a.max(), x_t.max())
        if not high > low:
            return float("nan")
        middle = (low + high) / 2  # a line's mean over an interval is its value in the middle
        return float(np.polyval(np.polyfit(x_t, y_t, 1), middle) - np.polyval(np.polyfit(x_a, y_a, 1), middle))

    rate = mean_gap(psnr_a, log_a, psnr_t, log_t)
    return float((np.exp(rate) - 1.0) * 100.0), mean_gap(log_a, psnr_a, log_t, psnr_t)


def _bd_rows(rows: Sequence[dict[str, str]], runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """BD-rate and BD-PSNR of every value against its parameter's baseline value (the setting of the other
    parameters' sweeps), for every parameter in ``runs``: cubic (VCEG-M33, as ``shc bench``) and linear."""
    from shc.bench.bdrate import bd_psnr, bd_rate

    table = []
    for param, run in sorted(runs.items()):
        curves = {curve.name: curve for curve in _curves(rows, param)}
        baseline = curves.get(f"{param}={run['baseline']}")
        for name, curve in curves.items():
            entry = {"param": param, "value": name.split("=", 1)[1], "baseline": run["baseline"],
                     "points": len(curve.bpp), "bpp_min": min(curve.bpp), "bpp_max": max(curve.bpp),
                     "psnr_max": max(curve.psnr)}
            deltas = [float("nan")] * 4
            if curve is baseline:
                deltas = [0.0] * 4
            elif baseline is not None and len(curve.bpp) >= 2 and len(baseline.bpp) >= 2:
                curves_args = (baseline.bpp, baseline.psnr, curve.bpp, curve.psnr)
                deltas = [bd_rate(*curves_args), bd_psnr(*curves_args), *_linear_deltas(*curves_args)]
            entry.update(zip(("bd_rate_pct", "bd_psnr_db", "bd_rate_linear_pct", "bd_psnr_linear_db"), deltas))
            table.append(entry)
    return table


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}" if math.isfinite(value) else "n/a"


def write_reports(out_dir: Path, rows: Sequence[dict[str, str]], param: str, values: Sequence[str],
                  runs: dict[str, dict[str, Any]], image: str) -> list[Path]:
    """Rewrite ``<param>.png``, ``json/<param>_<value>.json`` and ``bd_rates.md``/``.csv`` from the rows."""
    from shc.bench.plot import plot_rd
    from shc.bench.report import write_codec_json

    curves = _curves(rows, param, values)
    written = []
    json_dir = out_dir / "json"
    json_dir.mkdir(exist_ok=True)
    for curve in curves:
        written.append(write_codec_json(curve, json_dir, 1))
    plot = out_dir / f"{param}.png"
    tmp = out_dir / f".{param}.tmp.png"
    tables = [t for curve in curves for t in curve.results["log2_hashmap_size"]]
    title = f"{image}, {param} over table sizes 2^{min(tables)}..2^{max(tables)}" if tables else image
    try:
        plot_rd(curves, tmp, title=title)
        os.replace(tmp, plot)
    finally:
        tmp.unlink(missing_ok=True)
    written.append(plot)

    table = _bd_rows(rows, runs)
    with _atomic(out_dir / "bd_rates.csv") as handle:
        writer = csv.writer(handle)
        writer.writerow(["param", "value", "baseline", "points", "bd_rate_pct", "bd_psnr_db", "bd_rate_linear_pct",
                         "bd_psnr_linear_db", "bpp_min", "bpp_max", "psnr_max"])
        for e in table:
            writer.writerow([e["param"], e["value"], e["baseline"], e["points"], f"{e['bd_rate_pct']:.2f}",
                             f"{e['bd_psnr_db']:.3f}", f"{e['bd_rate_linear_pct']:.2f}",
                             f"{e['bd_psnr_linear_db']:.3f}", f"{e['bpp_min']:.4f}", f"{e['bpp_max']:.4f}",
                             f"{e['psnr_max']:.2f}"])
    lines = [
        "# BD-rate of each value against the baseline value", "",
        "Each parameter's curves (PSNR against bpp over the table sizes) against the curve of its baseline value "
        "(the setting every other parameter's sweep uses): BD-rate < 0: fewer bits than the baseline for the "
        "same PSNR; BD-PSNR > 0: higher PSNR at the same bpp; averaged over the overlapping range (n/a: none). "
        "*cubic*: VCEG-M33 as `shc bench` reports it; *linear*: the same with straight-line fits, steadier when "
        "a few noisy points leave a cubic free to swing.", "",
        "| param | value | baseline | points | BD-rate cubic (%) | BD-PSNR cubic (dB) | BD-rate linear (%) | "
        "BD-PSNR linear (dB) | bpp range | best PSNR (dB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    lines += [f"| {e['param']} | {e['value']} | {e['baseline']} | {e['points']} | {_signed(e['bd_rate_pct'], 1)} | "
              f"{_signed(e['bd_psnr_db'], 2)} | {_signed(e['bd_rate_linear_pct'], 1)} | "
              f"{_signed(e['bd_psnr_linear_db'], 2)} | {e['bpp_min']:.3f} .. {e['bpp_max']:.3f} | "
              f"{e['psnr_max']:.2f} |" for e in table]
    with _atomic(out_dir / "bd_rates.md") as handle:
        handle.write("\n".join(lines) + "\n")
    written += [out_dir / "bd_rates.csv", out_dir / "bd_rates.md"]
    return written


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    with _atomic(path) as handle:
        handle.write(json.dumps(meta, indent=2, default=repr) + "\n")


# ------------------------------------------------------------------------------------------ the run


@contextlib.contextmanager
def _folder_lock(out_dir: Path) -> Iterator[None]:
    """One sweep at a time per folder (two would each rewrite sweep.csv without the other's rows)."""
    import fcntl

    fd = os.open(out_dir, os.O_RDONLY)  # the folder itself is the lock: nothing is left behind in it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            msg = f"another shc sweep is writing {out_dir}; wait for it or use another folder"
            raise ConflictError(msg) from None
        yield
    finally:
        os.close(fd)


class ConflictError(ValueError):
    """The folder holds points of this sweep measured with other settings (and --force was not given)."""


def run_sweep(
    pixels: np.ndarray,
    image: str,
    out_dir: Path,
    points: Sequence[Point],
    *,
    baseline: int | float,
    rate: Rate,
    device: str = "cpu",
    seed: int = 0,
    force: bool = False,
    with_ms_ssim: bool = True,
    progress: bool = True,
    step_bar: Callable[[int, str], Any] | None = None,
    command: str | None = None,
    extra_meta: dict[str, Any] | None = None,
    encode: Callable[..., Any] | None = None,
) -> list[dict[str, str]]:
    """Measure the ``points`` that ``out_dir/sweep.csv`` lacks, then rewrite the plot, JSON, BD table and meta.

    Args:
        pixels: The ``(H, W, 3)`` uint8 image (already cropped).
        image: Its name in the CSV (stem and crop).
        out_dir: Results folder, created if missing; an earlier run's CSV there is resumed.
        points: From :func:`plan_points`, all of one parameter.
        baseline: The parameter's value in the other parameters' sweeps (the BD anchor).
        rate: The common rate weight (for meta.json).
        force: Measure again points whose row was measured with other settings (else :class:`ConflictError`).
        with_ms_ssim: Compute MS-SSIM of each decoded file (numpy, a few seconds at 2 MP).
        progress: A bar over the points on stderr.
        step_bar: ``step_bar(total_steps, name)`` -> the encoder's per-step progress callback (with ``close()``
            and ``deferring_interrupts()``, as ``shc encode``'s), or None.
        command: Recorded in meta.json (default: ``sys.argv``).
        extra_meta: More entries for this parameter's run in meta.json.
        encode: :func:`shc.codec.encoder.encode_image` or a stand-in (default: imported, with torch).

    Returns:
        This parameter's rows.
    """
    from tqdm import tqdm

    if not points:
        return []
    param = points[0].param
    out_dir.mkdir(parents=True, exist_ok=True)
    with _folder_lock(out_dir):
        results = SweepResults(out_dir / "sweep.csv")
        stale = [p for p in points if p.key in results.rows and results.rows[p.key]["config"] != p.config]
        if stale and not force:
            first = stale[0]
            msg = (f"{out_dir / 'sweep.csv'} holds {len(stale)} point(s) of this sweep measured with other settings "
                   f"(e.g. {first.label} at 2^{first.table}: another image, crop, preset, steps, seed or encoder); "
                   f"use another folder, or --force to measure them again")
            raise ConflictError(msg)
        todo = [p for p in points if p.key not in results.rows or results.rows[p.key]["config"] != p.config]
        meta_path = out_dir / "meta.json"
        meta = _read_meta(meta_path)
        if not meta:
            from shc.bench.meta import collect_meta

            meta = collect_meta(command or " ".join(sys.argv), [], [image])
            del meta["codecs"]
        runs = meta.setdefault("runs", {})
        command = command or " ".join(sys.argv)
        previous = runs.get(param, {}) if runs.get(param, {}).get("command") == command else {}
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        runs[param] = {
            "command": command, "image": image, "baseline": format_value(baseline),
            "values": list(dict.fromkeys(format_value(p.value) for p in points)),
            "tables": sorted({p.table for p in points}), "rate": dataclasses.asdict(rate),
            "settings": {k: v for k, v in dataclasses.asdict(points[0].settings).items()
                         if k not in ("log2_hashmap_size", "lmbda", param)},
            **(extra_meta or {}),
            # a rerun of the same command that finds nothing to measure keeps the times of the one that did
            "started_utc": now if todo or "started_utc" not in previous else previous["started_utc"],
            "finished_utc": previous.get("finished_utc"),
        }
        _write_meta(meta_path, meta)

        if todo and encode is None:
            from shc._optional import load_encoder

            encode = load_encoder()
        with tqdm(todo, disable=not progress, unit="pt", desc=f"sweep {param}", file=sys.stderr) as bar:
            for point in bar:
                bar.set_postfix_str(f"{point.label} 2^{point.table}", refresh=True)
                source = results.measured(point.config)
                if source is not None:  # the same file as a point of another sweep (the baseline): copy it
                    values = {k: float(source[k]) if source[k] else float("nan") for k in
                              ("bytes", "bpp", "psnr_rgb", "ms_ssim_rgb", "encode_s", "decode_s")}
                    results.put(_row(point, image, values, source["measured_as"]))
                    continue
                inner = step_bar(point.settings.steps, f"{point.label} 2^{point.table}") if step_bar else None
                try:
                    values = measure(encode, pixels, point, device, seed, with_ms_ssim, inner)
                finally:
                    if inner is not None:
                        inner.close()
                results.put(_row(point, image, values, point.label))
                bar.write(f"{point.label} 2^{point.table}: {int(values['bytes'])} bytes, {values['bpp']:.4f} bpp, "
                          f"{values['psnr_rgb']:.2f} dB, {values['encode_s']:.0f} s", file=sys.stderr)
        rows = list(results.rows.values())
        values = [format_value(v) for v in dict.fromkeys(p.value for p in points)]
        write_reports(out_dir, rows, param, values, runs, image)
        if todo or runs[param]["finished_utc"] is None:
            runs[param]["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        _write_meta(meta_path, meta)
    return [row for row in rows if row["param"] == param]


def image_digest(pixels: np.ndarray) -> str:
    """A short fingerprint of the pixels (the crop included), part of each point's configuration."""
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes())
    digest.update(repr(pixels.shape).encode())
    return digest.hexdigest()[:12]

