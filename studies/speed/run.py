"""Speed benchmark: training-step time, whole encode, decode (in-process and whole-process), peak RSS, MACs.

    python studies/speed/run.py examples/kodim23.png [--preset default] [--quality 3] [--device cpu|cuda]
        [--steps-timed 20] [--repeats 5] [--json OUT.json]

Training steps are timed on the full image (the issue's figure) and on the encoder's own random batches.
Prints one figure per line and optionally writes them as JSON. The whole-process decode runs
``shc decode`` in a fresh interpreter, so it includes Python start-up and imports (and shows torch is not
imported), the way a user's Python runs it: with its bytecode cache, after one untimed run; its peak RSS is
the child's maximum resident set size. ``--steps-timed 0`` skips the training-step timings.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["decoder_macs_per_pixel", "main"]


# ru_maxrss of a freshly exec'ed child can report the parent's size at fork time on Linux; VmHWM cannot.
_PEAK_RSS_SNIPPET = """
def _peak_rss_kb():
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""


def decoder_macs_per_pixel(header) -> float:
    """Multiply-accumulates per output pixel: 4-corner blend on every level, the MLP, and the latent decoder
    (applied once per stored row, amortized over the native pixels)."""
    cfg = header.config
    blend = 4 * cfg.feat_dim * cfg.num_levels
    dims = [cfg.num_levels * cfg.feat_dim] + [cfg.mlp_width] * cfg.mlp_depth + [cfg.channels]
    mlp = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    latent_decoder = sum(header.level_rows()) * cfg.latent_dim * cfg.feat_dim / (header.width * header.height)
    return blend + mlp + latent_decoder


def _time_training_step(image: Path, preset: str, quality: int, device: str, steps: int,
                        batch_pixels: int | None = None) -> float:
    """Seconds per training step (soft rounding, forward, rate, backward, Adam) on the whole image, or on
    random batches of ``batch_pixels`` as the encoder trains."""
    import torch

    from shc.codec.encoder import make_header
    from shc.codec.model import GridINR, PixelGrid
    from shc.codec.presets import settings_for
    from shc.codec.prior import FactorizedPrior
    from shc.codec.train import rate_bits
    from shc.codec.quantize import soft_round_gumbel
    from shc.images import load_rgb

    rgb = load_rgb(image)
    height, width = rgb.shape[:2]
    settings = settings_for(preset, quality)
    header = make_header(width, height, settings)
    model = GridINR(header).to(device)
    prior = FactorizedPrior(header.config.num_tables).to(device)
    grid = PixelGrid(header, width, height, device)
    whole_image = grid.coords()
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rgb.reshape(-1, 3).astype(np.float32) / 255).to(device)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(prior.parameters()), lr=1e-3)

    def step() -> None:
        pixels, coords = whole_image if batch_pixels is None else grid.random_batch(batch_pixels, rng)
        q = soft_round_gumbel(model.latents, 0.3)
        loss = torch.mean((model(q, coords) - target[pixels]) ** 2) + 1e-3 * rate_bits(model, prior, q) / grid.num_pixels
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    from shc.codec.presets import DEFAULT_QUALITY, PRESETS, QUALITIES  # no torch

    parser = argparse.ArgumentParser(prog="python studies/speed/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--preset", choices=[p.name for p in PRESETS], default="default")
    parser.add_argument("--quality", type=int, choices=[q.level for q in QUALITIES], default=DEFAULT_QUALITY)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps-timed", type=int, default=20, help="0: skip the training-step timings")
    parser.add_argument("--shc", type=Path, default=None, help="decode this file instead of the new encode")
    parser.add_argument("--repeats", type=int, default=5, help="decode timings: best of this many runs")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from shc.codec.encoder import encode_image
    from shc.codec.presets import settings_for
    from shc.format.container import read_file
    from shc.format.decoder import decode_bytes
    from shc.images import load_rgb
    from shc.metrics import psnr_db

    figures: dict[str, object] = {
        "image": str(args.image),
        "preset": args.preset,
        "quality": args.quality,
        "device": args.device,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": __import__("os").cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "torch": torch.__version__,
    }
    if args.steps_timed > 0:
        figures["train_step_ms_full_image"] = round(1000 * _time_training_step(
            args.image, args.preset, args.quality, args.device, args.steps_timed), 2)
        print(f"training step (full image, fwd+bwd+Adam): {figures['train_step_ms_full_image']} ms", flush=True)
        batch = settings_for(args.preset, args.quality).batch_pixels
        figures["train_batch_pixels"] = batch
        figures["train_step_ms_batch"] = round(1000 * _time_training_step(
            args.image, args.preset, args.quality, args.device, args.steps_timed, batch), 2)
        print(f"training step ({batch}-pixel batch, as the encoder trains): {figures['train_step_ms_batch']} ms",
              flush=True)

    if args.shc is not None:
        data = args.shc.read_bytes()
    else:
        result = encode_image(args.image, preset=args.preset, quality=args.quality, device=args.device)
        data = result.data
        figures.update(encode_seconds=round(result.encode_seconds, 2), bytes=len(data),
                       bpp=round(result.bpp, 4), psnr_db=round(result.psnr_db, 3), steps=result.settings.steps)
        print(f"encode: {result.encode_seconds:.1f} s, {len(data)} bytes, {result.bpp:.4f} bpp, "
              f"PSNR {result.psnr_db:.2f} dB", flush=True)

    header = read_file(data).header
    times = []
    for _ in range(args.repeats):  # best of N: the figure of the code, not of a noisy neighbour
        start = time.perf_counter()
        decoded = decode_bytes(data)
        times.append(time.perf_counter() - start)
    figures["decode_seconds_in_process"] = round(min(times), 4)
    figures["decoded_psnr_db"] = round(psnr_db(decoded, load_rgb(args.image)), 3)
    figures["decoder_macs_per_pixel"] = round(decoder_macs_per_pixel(header), 1)
    with tempfile.TemporaryDirectory() as tmp:
        shc_path = Path(tmp) / "image.shc"
        shc_path.write_bytes(data)
        code = (
            _PEAK_RSS_SNIPPET + "import sys; from shc.cli.main import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, _peak_rss_kb())"
        )
        # as a user's Python runs: with its bytecode cache (an interpreter started with
        # PYTHONDONTWRITEBYTECODE would recompile shc's modules on every start), after one untimed run
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        decode_cmd = [sys.executable, "-c", code, "decode", str(shc_path), "-o", str(Path(tmp) / "o.png"), "--force"]
        subprocess.run(decode_cmd, capture_output=True, text=True, check=True, env=env)
        walls = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = subprocess.run(decode_cmd, capture_output=True, text=True, check=True, env=env)
            walls.append(time.perf_counter() - start)
        figures["decode_seconds_whole_process"] = round(min(walls), 3)
        figures["decode_seconds_whole_process_median"] = round(float(np.median(walls)), 3)
        torch_loaded, max_rss_kb = out.stdout.split()[-2:]
        figures["decode_peak_rss_mb"] = round(int(max_rss_kb) / 1024, 1)
        figures["decode_imports_torch"] = torch_loaded == "True"
    print(f"decode in-process: {figures['decode_seconds_in_process']} s; whole process (shc decode -> PNG): "
          f"{figures['decode_seconds_whole_process']} s (median {figures['decode_seconds_whole_process_median']} s), peak RSS {figures['decode_peak_rss_mb']} MB, "
          f"torch imported: {figures['decode_imports_torch']}")
    print(f"decoder cost: {figures['decoder_macs_per_pixel']} MAC/pixel")
    from shc.bench import write_figures

    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
