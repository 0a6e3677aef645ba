"""``shc encode``: one image or many (one process, torch imported once), a quality or a rate target."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
from pathlib import Path

import click

from shc.cli.batch import Job, plan_jobs, run_jobs
from shc.cli.common import (
    UsageError,
    check_input,
    limit_threads,
    parse_byte_size,
    read_input,
    refuse_existing,
    write_output,
)
from shc.cli.encode_plan import INTERPOLATIONS, MAX_INPUT_BYTES, EncodePlan, encode_photo
from shc.codec.presets import DEFAULT_QUALITY, PRESETS, QUALITIES  # no torch

__all__ = ["Progress", "check_device", "encode", "resolve_device"]


def resolve_device(device: str) -> str:
    """``auto`` is the first of cuda, mps and cpu that works here; anything else is checked and kept."""
    if device == "auto":
        import torch

        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    check_device(device)
    return device


def check_device(device: str) -> None:
    """Refuse a torch device string that cannot be used here, as a usage error (not a traceback later)."""
    if device == "cpu":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        msg = f"--device {device!r} is not a torch device (use auto, cpu, cuda, cuda:1, mps ...)"
        raise UsageError(msg) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            msg = f"--device {device} requested but CUDA is not available"
            raise UsageError(msg)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            msg = f"--device {device} requested but only {torch.cuda.device_count()} CUDA device(s) are present"
            raise UsageError(msg)
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            msg = f"--device {device} requested but MPS is not available"
            raise UsageError(msg)
    elif dev.type != "cpu":
        msg = f"--device {device}: only cpu, cuda and mps are supported"
        raise UsageError(msg)


BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
"""tqdm's own layout, written out so that the ETA (``remaining``, from the measured step rate) is always shown."""


class Progress:
    """The encode's plan line and tqdm bar: step, last hard-scored PSNR and bpp, ETA.

    The bar opens when the steps are known (:meth:`start`, called by the encoder after timing a few steps);
    ``announce``: first print the plan (steps, pixels per step, passes per pixel, estimated time) on stderr."""

    def __init__(self, enabled: bool, name: str = "encode", announce: bool = False) -> None:
        self.enabled, self.name, self.announce = enabled, name, announce
        self.bar = None
        self.interrupted = False

    def start(self, plan) -> None:
        """``plan``: the encoder's :class:`shc.codec.budget.TrainingPlan`."""
        if self.announce:
            click.echo(f"{self.name}: {plan.describe()}", err=True)
        from tqdm import tqdm

        self.bar = tqdm(total=plan.steps, desc=self.name, unit="step", file=sys.stderr, disable=not self.enabled,
                        leave=False, bar_format=BAR_FORMAT)

    def __call__(self, step: int, scored, train_bpp: float) -> None:
        if self.interrupted:  # Ctrl-C seen during the step: stop here, in plain Python, between steps
            raise KeyboardInterrupt
        if self.bar is None:
            return
        if scored is not None:
            self.bar.set_postfix(psnr=f"{scored.psnr_db:.2f}dB", bpp=f"{scored.bpp:.3f}", refresh=False)
        self.bar.update(step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    @contextlib.contextmanager
    def deferring_interrupts(self):
        """While training, Ctrl-C only sets a flag that the next step's callback turns into
        KeyboardInterrupt (a second Ctrl-C interrupts at once): an interrupt raised inside torch's
        autograd can leave the process hanging instead of exiting."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _rate_target(target_size: str | None, target_bpp: float | None, target_psnr: float | None,
                 no_entropy: bool) -> tuple[str, float] | None:
    """The one rate target asked for, as ``("size", bytes)``, ``("bpp", value)`` or ``("psnr", dB)``, or None."""
    given = [name for name, value in (("--target-size", target_size), ("--target-bpp", target_bpp),
                                      ("--target-psnr", target_psnr)) if value is not None]
    if not given:
        return None
    if len(given) > 1:
        msg = f"give one rate target, not {' and '.join(given)}"
        raise UsageError(msg)
    if no_entropy:
        msg = f"{given[0]} steers the entropy coder's rate weight; --no-entropy has none"
        raise UsageError(msg)
    if target_size is not None:
        return ("size", parse_byte_size(target_size))
    if target_bpp is not None:
        return ("bpp", target_bpp)
    return ("psnr", target_psnr)



@click.command()
@click.argument("inputs", metavar="IN...", nargs=-1, required=True)
@click.option("-o", "--output", default=None, help="Output .shc file (one input), or - for stdout.")
@click.option("--out-dir", default=None, metavar="DIR",
              help="Write each input's IN-stem.shc into DIR (created if missing): for several inputs.")
@click.option("--preset", type=click.Choice([p.name for p in PRESETS]), default="default", show_default=True,
              help="; ".join(f"{p.name}: {p.summary}" for p in PRESETS) + ".")
@click.option("--quality", "-q", type=click.FloatRange(QUALITIES[0].level, QUALITIES[-1].level), default=None,
              help=f"{QUALITIES[0].level} (smallest file) .. {QUALITIES[-1].level} (best picture), fractions too "
                   f"(3.5). Picks hash-table size, finest grid level and rate weight. [default: {DEFAULT_QUALITY}]")
@click.option("--target-size", default=None, metavar="BYTES",
              help="Best picture in at most this many bytes (50000, 50KB, 48KiB): a hard cap, steered during training.")
@click.option("--target-bpp", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Aim at this many bits per pixel (file size x 8 / pixels).")
@click.option("--target-psnr", type=click.FloatRange(min=0, min_open=True), default=None, metavar="DB",
              help="Fewest bits for this PSNR (dB, RGB) of the decoded image.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Override the preset's training steps [default: the preset's; above 6.3 MP more, so that "
                   "passes per pixel stay above a floor, up to 4x the preset's].")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None, metavar="M",
              help="Bound each encode to about M minutes: a few steps are timed first on this machine and the "
                   "encoder trains as many steps as fit (not with --steps).")
@click.option("--device", default="cpu", show_default=True,
              help="Torch device for training: auto (cuda, then mps, then cpu), cpu, cuda, cuda:1 ...")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="At most N CPU threads for torch and numpy [default: the libraries' own].")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Random seed (same seed, same file on a device).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Refuse input images with more pixels than this (decompression-bomb guard) "
                   "[default: Pillow's limit, 89,478,485].")
@click.option("--strip", is_flag=True, help="Leave out the ICC colour profile and EXIF metadata.")
@click.option("--background", default=None, metavar="COLOR",
              help="Flatten alpha over this colour (white, #808080 ...) instead of keeping it.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per file, with steps, batch_pixels, passes_per_pixel and estimate_seconds "
                   "against encode_seconds (psnr_db is null when the decoded image is exact).")
@click.option("--force", "-f", is_flag=True, help="Overwrite outputs that exist.")
@click.option("--skip-existing", is_flag=True, help="Leave inputs whose output exists alone (resume a batch).")
@click.option("--quiet", is_flag=True, help="No progress bar, no report lines, no summary (errors still show).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr [default: when stderr is a terminal].")
@click.option("--no-entropy", is_flag=True,
              help="Baseline for comparisons: store the grid as raw float16 latents, without SHACIRA's "
                   "quantization and entropy coding (files are many times larger).")
@click.option("--interpolation", type=click.Choice(list(INTERPOLATIONS)), default=None,
              help="How each grid level is blended: the smooth cubic B-spline (default presets) or bilinear, "
                   "as in the paper (the paper preset) [default: the preset's].")
@click.option("--cluster", type=click.Choice(["ray"]), default=None,
              help="Encode the photos on a Ray cluster, one task per photo with --threads CPUs (and a GPU with "
                   "--device cuda); this process sends each photo and writes each file (docs/scaling.md).")
@click.option("--cluster-address", default=None, metavar="ADDRESS",
              help="The Ray cluster to use (host:port, ray://host:port, auto) [default: $RAY_ADDRESS, else a "
                   "local Ray started for this command].")
def encode(inputs, output, out_dir, preset, quality, target_size, target_bpp, target_psnr, steps, minutes, device,
           threads, seed, max_pixels, strip, background, as_json, force, skip_existing, quiet, progress, no_entropy,
           interpolation, cluster, cluster_address) -> None:
    """Encode images (PNG, JPEG, ...; - for stdin) to .shc files.

    The encoder trains a small network on each image, writes the file, then decodes that file and
    reports what you will get: bytes, bits per pixel from the file size, and PSNR of the decoded
    8-bit image against the input (RGB; alpha separately). Before training it times a few steps and
    prints its plan (not with --quiet, --json): steps, pixels per step, passes per pixel and the time
    it expects.

    \b
    shc encode photo.png -o photo.shc                  # default preset, quality 3
    shc encode photo.png -o photo.shc --target-size 20KB
    shc encode big.jpg -o big.shc --minutes 10         # as many steps as fit in 10 minutes
    shc encode *.png --out-dir shc/ --skip-existing --json
    shc encode *.png --out-dir shc/ --skip-existing --json --cluster ray --threads 2
    """
    from shc.codec.presets import settings_for

    if minutes is not None and steps is not None:
        raise UsageError("--minutes picks the number of steps: give --minutes or --steps, not both")
    if cluster_address is not None and cluster is None:
        raise UsageError("--cluster-address needs --cluster ray")
    if cluster is not None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise UsageError("--cluster ray spreads many photos, torchrun one photo's training: use one of them")
        from shc.cli.cluster import import_ray

        import_ray()  # without Ray: one line naming shc[cluster], before any work
    jobs = plan_jobs(inputs, output, out_dir, ".shc")
    single = output is not None
    if single and not skip_existing:
        refuse_existing(output, force)  # before the options are worked out and torch is imported
    try:
        settings = settings_for(preset, quality, steps, entropy_coding=not no_entropy)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if interpolation is not None:
        settings = dataclasses.replace(settings, interpolation=INTERPOLATIONS[interpolation])
    target = _rate_target(target_size, target_bpp, target_psnr, no_entropy)
    if target is not None and quality is None:
        settings = None  # the target picks the architecture (encode_image's start quality)
    from shc.images import parse_background

    try:
        flatten = None if background is None else parse_background(background)
    except ValueError as error:
        raise UsageError(f"--background: {error}") from None
    plan = EncodePlan(preset, quality, steps, settings, interpolation, no_entropy, target, seed, strip, flatten,
                      max_pixels, minutes)

    def describe(report: dict) -> str:
        alpha = "" if report["psnr_alpha_db"] is None else f", alpha {report['psnr_alpha_db']:.2f} dB"
        psnr = "inf" if report["psnr_db"] is None else f"{report['psnr_db']:.2f}"
        return (f"{report['output']}: {report['bytes']} bytes, {report['bpp']:.4f} bpp, PSNR {psnr} dB{alpha} "
                f"({report['width']}x{report['height']}, {report['preset']} q{report['quality']:g}, "
                f"{report['steps']} steps, {report['encode_seconds']:.1f} s on {report['device']})")

    if cluster is not None:
        from shc.cli.cluster import run_on_ray

        run_on_ray(jobs, plan, describe, address=cluster_address, device=device, threads=threads,
                   as_json=as_json, quiet=quiet, skip_existing=skip_existing, force=force, single=single)
        return

    from shc.cli.encoder import join_process_group  # without torch: one line naming shc[encode]

    device = resolve_device(device)
    rank = join_process_group(device)  # under torchrun: data-parallel training, process 0 writes and reports
    estimate = not quiet or as_json  # the same on every process: under torchrun the timed steps average gradients
    quiet = quiet or rank > 0
    limit_threads(threads)  # numpy now; torch once it is imported (encode_image)
    show_progress = not quiet and (sys.stderr.isatty() if progress is None else progress)

    def work(job: Job) -> dict:
        if job.source == "-":
            source = read_input(job.source)
        else:
            check_input(job.source, max_bytes=MAX_INPUT_BYTES)  # existence, directory and size, without reading it
            source = job.source
        name = Path(job.source).name if len(jobs) > 1 else "encode"
        data, report = encode_photo(job, source, plan, device, threads, estimate=estimate,
                                    progress=lambda: Progress(show_progress, name, announce=not (quiet or as_json)))
        if rank == 0:
            write_output(job.output, data, force)
        return report

    run_jobs("encode", jobs, work, describe, as_json=as_json and rank == 0, quiet=quiet,
             skip_existing=skip_existing, force=force, single=single)
