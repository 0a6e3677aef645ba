"""The paper's kodim19 point, counted both ways: shc's honest file and the reference code's own count.

The reference implementation reports, for one run, the PSNR of its training loop at the step of lowest
training MSE (soft, Gumbel-annealed latents during annealing; float weights) and, as bits, the rounded
latents coded under their own histogram (histograms and header not counted) plus float32 MLP weights.
shc counts the real file (header, tables, int8 weights, range-coded latents) and the PSNR of its decoded
8-bit image. This runs one encode (``--preset paper`` by default) and reports both, so that the gap to the
paper's figure can be split into what the counting explains and what it does not.

    python studies/paper/run.py IMAGE [--preset paper] [--quality 4] [--steps N] [--threads 1] -o DIR

Writes ``DIR/<stem>_<preset>.shc``, ``DIR/<stem>_<preset>.json`` (rewritten at every scored step, so an
interrupted run leaves its curve) and prints a summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from shc.cli.common import open_output
from shc.codec.encoder import encode_image
from shc.codec.presets import settings_for, settings_for_image
from shc.images import load_image
from shc.metrics import psnr_from_mse

FLOAT32_BITS = 32


def histogram_bits(values: np.ndarray) -> float:
    """Bits of integer ``values`` coded under their own histogram (the empirical entropy times the count)."""
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


class PaperCount:
    """A training step hook that keeps the reference code's count: the step of lowest training MSE, its
    PSNR, and the bits of the latents rounded at that step under their own histogram (one histogram for
    all latents, and one per level) plus the network's weights as float32."""

    def __init__(self, log_every: int = 500) -> None:
        self.best: dict | None = None
        self.log_every = log_every
        self.curve: list[dict] = []
        self._best_mse = float("inf")

    def __call__(self, step: int, mse: torch.Tensor, model) -> None:
        value = float(mse)
        if value < self._best_mse:
            self._best_mse = value
            self.best = self._count(step, value, model)
        if step % self.log_every == 0:
            self.curve.append(self._count(step, value, model))

    @staticmethod
    def _count(step: int, mse: float, model) -> dict:
        rounded = torch.round(model.latents.detach()).cpu().numpy().astype(np.int64)
        weights = sum(p.numel() for p in model.network_parameters())
        per_level = sum(histogram_bits(rounded[level.rows_slice]) for level in model.layout.levels)
        return {
            "step": step, "train_mse": mse, "train_psnr_db": psnr_from_mse(mse * 255.0**2),
            "latent_bits_one_histogram": histogram_bits(rounded), "latent_bits_per_level_histograms": per_level,
            "weight_bits_float32": weights * FLOAT32_BITS, "latents": int(rounded.size),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python studies/paper/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--quality", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{args.image.stem}_{args.preset}"
    source = load_image(args.image, strip=True)
    height, width, _ = source.pixels.shape
    pixels = width * height
    settings = settings_for_image(settings_for(args.preset, args.quality, args.steps), width, height)
    counter = PaperCount(log_every=max(1, settings.eval_every))
    report = {
        "image": args.image.name, "preset": args.preset, "quality": args.quality, "steps": settings.steps,
        "seed": args.seed, "device": args.device, "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores", "torch": torch.__version__,
        "settings": dataclasses.asdict(settings),
        "command": "python studies/paper/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    json_path = args.out_dir / f"{stem}.json"
    start = time.perf_counter()

    def progress(step: int, scored, bpp: float) -> None:
        if scored is None:
            return
        report["hard_scores"] = report.get("hard_scores", []) + [
            {"step": scored.step, "psnr_db": scored.psnr_db, "bpp": scored.bpp}]
        report["paper_curve"] = counter.curve
        report["paper_best_so_far"] = counter.best
        report["seconds_so_far"] = time.perf_counter() - start
        _write_json(json_path, report)
        print(f"step {step}: file {scored.bpp:.4f} bpp {scored.psnr_db:.2f} dB | train "
              f"{counter.curve[-1]['train_psnr_db'] if counter.curve else float('nan'):.2f} dB | "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    result = encode_image(source, settings=settings, device=args.device, seed=args.seed, progress=progress,
                          step_hook=counter)
    (args.out_dir / f"{stem}.shc").write_bytes(result.data)
    best = counter.best
    paper_bits = best["latent_bits_one_histogram"] + best["weight_bits_float32"]
    report.update({
        "encode_seconds": result.encode_seconds,
        "shc": {"bytes": len(result.data), "bpp": len(result.data) * 8 / pixels, "psnr_db": result.psnr_db,
                "best_step": result.training.best.step},
        "paper_count": {**best, "bits": paper_bits, "bpp": paper_bits / pixels,
                        "bpp_latents_only": best["latent_bits_one_histogram"] / pixels},
    })
    report.pop("paper_best_so_far", None)
    _write_json(json_path, report)
    print(json.dumps({"shc": report["shc"], "paper_count": {
        k: report["paper_count"][k] for k in ("step", "train_psnr_db", "bpp", "bpp_latents_only")}}))
    return 0


def _write_json(path: Path, report: dict) -> None:
    """Rewrite ``path`` atomically: an interrupted run leaves its last whole report."""
    with open_output(str(path), force=True) as handle:
        handle.write(json.dumps(report, indent=1, default=float).encode())


if __name__ == "__main__":
    raise SystemExit(main())
