"""Encoder throughput: training-step time of this checkout against another one (e.g. shc 0.5.0), side by side.

    git worktree add /tmp/shc-0.5.0 2daa4ae          # the last 0.5.0 commit
    python studies/throughput/run.py --baseline /tmp/shc-0.5.0 [--image examples/kodim23.png]
        [--presets default,paper] [--steps default=400,paper=40] [--rounds 3]
        [--large /tmp/crop50mp.png --large-steps 200] [--threads 2] [--json OUT.json]
    python studies/throughput/run.py --baseline /tmp/shc-0.5.0 --rd ../shared/data/kodak/kodim{01,...}.png
        [--quality 3] [--json OUT.json]

Every figure is a fresh process that imports ``shc.codec`` and ``shc.format`` from the checkout it times
(baseline or this one) and runs ``train()`` for the given number of steps on the image, over the whole
schedule compressed into those steps (noise, soft rounding, hard rounding) with the periodic scoring turned
off: what is timed is the step. Baseline and current runs alternate, ``--rounds`` times each, and the
minimum of each is compared (this VM's speed drifts by ±30 % over minutes; alternating keeps the
comparison fair). ``--large`` times the current code's step on a large image too, relative to its step on
``--image``. Prints one line per run and a summary; ``--json`` writes every figure.

``--rd IMAGES``: rate-distortion at equal steps instead: each image is encoded whole (``encode_image``,
default preset, same seed) by both checkouts, one after the other; prints bytes, PSNR of the decoded file
and encode time of each, and the mean changes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path

__all__ = ["main"]

_STUDY = Path(__file__).resolve().parent
_HERE = _STUDY.parent.parent  # the checkout this study belongs to (repo root)
_IMPORT_STUDY = f"import sys; sys.path.insert(0, {str(_STUDY)!r}); from run"
"""How a child process imports this script's workers (before anything imports shc: see :func:`_use_checkout`)."""


def _worker(root: Path, preset: str, steps: int, image: Path, profile: Path | None = None) -> None:
    """Run in a child process: time ``steps`` training steps with the code of checkout ``root`` (and with
    ``profile``, write torch.profiler's table of those steps there)."""
    _use_checkout(root)
    from dataclasses import replace

    import torch

    from shc.codec import train as train_module
    from shc.codec.encoder import make_header
    from shc.codec.model import GridINR, PixelGrid
    from shc.codec.presets import settings_for, settings_for_image
    from shc.codec.prior import FactorizedPrior
    from shc.images import load_rgb

    rgb = load_rgb(image)
    height, width = rgb.shape[:2]
    settings = replace(settings_for_image(settings_for(preset, 3), width, height), steps=steps, eval_every=10**9)
    header = make_header(width, height, settings)
    torch.manual_seed(0)
    model, prior = GridINR(header), FactorizedPrior(header.config.num_tables)
    grid = PixelGrid(header, width, height)
    target = torch.from_numpy(rgb.reshape(-1, 3))
    # the final scoring of the last step is not a step: replace it by a constant
    train_module.score = lambda *args, **kwargs: train_module.HardScore(0, 1.0, 1.0, 1.0)
    # warm-up: the first optimizer step imports ~2 s of torch modules; the grid's precomputation is not a step
    warm_model, warm_prior = GridINR(header), FactorizedPrior(header.config.num_tables)
    train_module.train(warm_model, warm_prior, grid, target, replace(settings, steps=3))
    del warm_model, warm_prior
    start = time.perf_counter()
    if profile is None:
        train_module.train(model, prior, grid, target, settings)
    else:
        from torch.profiler import profile as torch_profile

        with torch_profile() as recorded:
            train_module.train(model, prior, grid, target, settings)
        events = [e for e in recorded.key_averages() if e.key.startswith("aten::")]
        header = (f"{root.name} {preset}, {steps} steps on {image.name}, {torch.get_num_threads()} threads: "
                  f"{sum(e.count for e in events) / steps:.0f} aten ops a step\n")
        table = recorded.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=45)
        profile.write_text(header + table + "\n")
    seconds = time.perf_counter() - start
    print(json.dumps({"ms_per_step": 1000 * seconds / steps, "latents": int(model.latents.numel()),
                      "width": width, "height": height, "threads": torch.get_num_threads()}))


def _use_checkout(root: Path) -> None:
    """Make ``shc.codec`` and ``shc.format`` (and shc's own modules) import from checkout ``root``."""
    import shc

    shc.__path__ = [str(root / "src" / "shc")]
    for sub in ("codec", "format"):
        module = types.ModuleType(f"shc.{sub}")
        module.__path__ = [str(root / sub)]
        sys.modules[f"shc.{sub}"] = module


def _encode_worker(root: Path, image: Path, quality: float) -> None:
    """Run in a child process: encode ``image`` whole with the code of checkout ``root``."""
    _use_checkout(root)
    from shc.codec.encoder import encode_image

    result = encode_image(image, preset="default", quality=quality)
    print(json.dumps({"bytes": len(result.data), "bpp": result.bpp, "psnr_db": result.psnr_db,
                      "encode_s": result.encode_seconds, "training_s": result.training.seconds}))


def _child(code: str, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{code}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run(root: Path, preset: str, steps: int, image: Path, threads: int, profile: Path | None = None) -> dict:
    where = "None" if profile is None else f"Path({str(profile)!r})"
    return _child(f"{_IMPORT_STUDY} import _worker; from pathlib import Path; "
                  f"_worker(Path({str(root)!r}), {preset!r}, {steps}, Path({str(image)!r}), {where})", threads)


def _rd(args) -> int:
    """Both checkouts encode every image; per-image and mean changes of bytes and PSNR."""
    rows = []
    for image in args.rd:
        pair = {}
        for name, root in (("baseline", args.baseline), ("current", _HERE)):
            pair[name] = _child(f"{_IMPORT_STUDY} import _encode_worker; from pathlib import Path; "
                                f"_encode_worker(Path({str(root)!r}), Path({str(image)!r}), {args.quality})", args.threads)
        base, cur = pair["baseline"], pair["current"]
        row = {"image": image.stem, "baseline": base, "current": cur,
               "bytes_change_pct": round(100 * (cur["bytes"] / base["bytes"] - 1), 2),
               "psnr_change_db": round(cur["psnr_db"] - base["psnr_db"], 3),
               "encode_time_ratio": round(base["encode_s"] / cur["encode_s"], 2)}
        rows.append(row)
        print(f"{image.stem}: baseline {base['bytes']} B {base['psnr_db']:.3f} dB {base['encode_s']:.1f} s | current "
              f"{cur['bytes']} B {cur['psnr_db']:.3f} dB {cur['encode_s']:.1f} s | {row['bytes_change_pct']:+.2f} % bytes, "
              f"{row['psnr_change_db']:+.3f} dB, {row['encode_time_ratio']:.2f}x faster", flush=True)
    mean = {key: round(sum(r[key] for r in rows) / len(rows), 3)
            for key in ("bytes_change_pct", "psnr_change_db", "encode_time_ratio")}
    print(f"mean over {len(rows)} images: {mean['bytes_change_pct']:+.2f} % bytes, {mean['psnr_change_db']:+.3f} dB, "
          f"encode {mean['encode_time_ratio']:.2f}x faster")
    from shc.bench import write_figures

    write_figures(args.json, {"quality": args.quality, "threads": args.threads, "rows": rows, "mean": mean})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python studies/throughput/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout to compare against (its repo root)")
    parser.add_argument("--image", type=Path, default=_HERE / "examples" / "kodim23.png")
    parser.add_argument("--presets", default="default,paper")
    parser.add_argument("--steps", default="default=400,paper=40", help="steps timed per run, per preset")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--large", type=Path, default=None, help="also time the current code on this image")
    parser.add_argument("--large-steps", type=int, default=200)
    parser.add_argument("--rd", type=Path, nargs="+", default=None, help="encode these images with both instead")
    parser.add_argument("--quality", type=float, default=3)
    parser.add_argument("--profile", type=Path, default=None,
                        help="instead: write torch.profiler tables of both checkouts' steps into this folder")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.rd:
        return _rd(args)
    steps = {k: int(v) for k, v in (item.split("=") for item in args.steps.split(","))}
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        for preset in args.presets.split(","):
            for name, root in (("baseline", args.baseline), ("current", _HERE)):
                out = args.profile / f"profile-{preset}-{name}.txt"
                _run(root, preset, steps[preset], args.image, args.threads, out)
                print(out.read_text().splitlines()[0])
        return 0
    figures: dict = {"image": str(args.image), "baseline": str(args.baseline), "threads": args.threads,
                     "machine": f"{platform.machine()} {os.cpu_count()} CPUs", "rounds": args.rounds, "runs": []}
    best: dict[tuple[str, str], float] = {}
    for preset in args.presets.split(","):
        for round_ in range(args.rounds):
            for name, root in (("baseline", args.baseline), ("current", _HERE)):
                run = _run(root, preset, steps[preset], args.image, args.threads)
                run.update(code=name, preset=preset, round=round_, steps=steps[preset])
                figures["runs"].append(run)
                key = (name, preset)
                best[key] = min(best.get(key, float("inf")), run["ms_per_step"])
                print(f"{preset:8s} {name:8s} round {round_}: {run['ms_per_step']:.2f} ms/step", flush=True)
    summary = {}
    for preset in args.presets.split(","):
        ratio = best[("baseline", preset)] / best[("current", preset)]
        summary[preset] = {"baseline_ms": round(best[("baseline", preset)], 2),
                           "current_ms": round(best[("current", preset)], 2), "speedup": round(ratio, 2)}
        print(f"{preset}: baseline {best[('baseline', preset)]:.2f} ms/step, current {best[('current', preset)]:.2f}"
              f" ms/step: {ratio:.2f}x the steps per second")
    if args.large is not None:
        large = min((_run(_HERE, "default", args.large_steps, args.large, args.threads) for _ in range(args.rounds)),
                    key=lambda run: run["ms_per_step"])
        kodak = best[("current", "default")]
        summary["large"] = {"image": str(args.large), "ms_per_step": round(large["ms_per_step"], 2),
                            "pixels": large["width"] * large["height"], "latents": large["latents"],
                            "relative_to_image_step": round(large["ms_per_step"] / kodak, 2)}
        print(f"large ({large['width']}x{large['height']}, {large['latents']} latents): "
              f"{large['ms_per_step']:.2f} ms/step = {large['ms_per_step'] / kodak:.2f}x the default step on {args.image.name}")
    figures["summary"] = summary
    from shc.bench import write_figures

    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
