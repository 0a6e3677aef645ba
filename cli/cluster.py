"""``shc encode PHOTOS... --out-dir DIR --cluster ray``: one Ray task per photo, nothing lost.

This process (the driver) plans the batch exactly as the local mode does, reads each photo and sends its
bytes with the task, and writes each returned ``.shc`` atomically itself: the workers need no shared file
system and write nothing, so a worker that dies mid-task leaves nothing behind and Ray runs the task again
(:data:`RETRIES`). A photo that fails for a reason of its own comes back as a failure (not an exception, so
Ray does not retry it) and is reported once, as in the local mode; Ctrl-C cancels the tasks still running.
Reports, summary and exit status are :class:`shc.cli.batch.BatchReport`'s; lines come in the order photos
finish.

Ray is the optional ``cluster`` extra: nothing here imports it until :func:`import_ray`, and nothing on the
decode path imports this module. The driver needs no torch; the workers need ``shc[encode]``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from shc.cli.batch import BatchReport, Job
from shc.cli.common import EXIT_BAD_INPUT, UsageError, read_input, write_output
from shc.cli.encode_plan import MAX_INPUT_BYTES, encode_photo

__all__ = ["CLUSTER_INSTALL_HINT", "RETRIES", "ClusterError", "encode_task", "import_ray", "run_on_ray"]

CLUSTER_INSTALL_HINT = 'pip install "shc[cluster]"'
RETRIES = 3
"""How often Ray runs a photo's task again after its worker died (killed, out of memory, node lost)."""
WAIT_SECONDS = 0.25
"""How long the loop waits for a task at a time before it looks whether a stop was asked for."""
BYTES_NAME = "input: "
"""How :func:`shc.images.load_image`'s errors name an image given as bytes."""
TASKS_PER_SLOT = 2
"""Tasks in flight per task the cluster can run at once: enough to keep workers busy while the driver writes,
few enough that a 100,000-photo batch does not hold every photo in the object store."""


class ClusterError(click.ClickException):
    """No Ray here, or no cluster to run on: one ``Error: ...`` line, exit status 2."""

    exit_code = EXIT_BAD_INPUT


def import_ray() -> Any:
    """The ``ray`` module; without it a :class:`ClusterError` that names the extra to install."""
    try:
        import ray
    except ImportError as error:
        msg = f"--cluster ray needs Ray, which is not available here ({error}); install it with: {CLUSTER_INSTALL_HINT}"
        raise ClusterError(msg) from None
    return ray


def encode_task(job: Job, photo: bytes, plan: Any, device: str, threads: int, version: str) -> Any:
    """On a Ray worker: encode one photo from its bytes; ``(data, report)``, or ``(message, exit_code)`` for a
    failure of the photo's own (returned, not raised, so that Ray does not run it again). Writes nothing."""
    import shc

    if shc.__version__ != version:  # another shc could write other bytes: refuse rather than mix versions
        return (f"the Ray worker runs shc {shc.__version__}, this command shc {version}: install the same shc "
                f"on every node", EXIT_BAD_INPUT)
    try:
        return encode_photo(job, photo, plan, device, threads)
    except click.ClickException as error:  # bad image, size cap too small, no torch on this node
        message = error.format_message()
        if message.startswith(BYTES_NAME):  # the image reader names bytes "input": name the photo
            message = f"{job.source}: {message[len(BYTES_NAME):]}"
        return (message, error.exit_code)


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to ``address``, or without one start a local Ray for this command; whether this call started
    or joined Ray (and so must shut it down). A Ray already initialised in this process (a notebook, a test)
    is used as it is."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:  # "local": a new Ray of this machine's CPUs, never some other cluster found in /tmp/ray
        options.update(address="local", include_dashboard=False)
    else:
        options.update(address=address)
    try:
        ray.init(**options)
    except Exception as error:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError ...: one line
        where = "start a local Ray" if address is None else f"connect to the Ray cluster at {address}"
        msg = f"cannot {where}: {_first_line(error)}"
        raise ClusterError(msg) from None
    return True


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _task_resources(ray: Any, device: str, threads: int | None, *, local: bool,
                    quiet: bool) -> tuple[str, dict[str, float], int]:
    """The workers' device, what a task asks Ray for, and how many such tasks the cluster runs at once.

    ``auto`` is cuda when the cluster has GPUs, else cpu; Ray picks the GPU (``cuda``, not ``cuda:N``). A
    task no node can take would wait forever: refused on the ``local`` Ray started for this command, a
    warning on a cluster, where such a node may still join."""
    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0)
    if device == "auto":
        device = "cuda" if gpus > 0 else "cpu"
    if device == "cuda" and gpus == 0:
        raise ClusterError("--device cuda: the Ray cluster has no GPU")
    cpus = threads or 1
    request = {"num_cpus": cpus, "num_gpus": 1 if device == "cuda" else 0}
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    if not any(node.get("CPU", 0) >= cpus and node.get("GPU", 0) >= request["num_gpus"] for node in nodes):
        largest = max((node.get("CPU", 0) for node in nodes), default=0)
        msg = f"--threads {cpus}: no node of the Ray cluster has {cpus} CPUs{' and a GPU' * request['num_gpus']} " \
              f"(the largest has {largest:g} CPUs)"
        if local:
            raise UsageError(msg)
        if not quiet:
            click.echo(f"Warning: {msg}; the tasks wait until such a node joins", err=True)
    slots = resources.get("CPU", 0) // cpus
    if device == "cuda":
        slots = min(slots, gpus)
    return device, request, max(1, int(slots))


def _read_photo(job: Job) -> bytes:
    """The photo's bytes, which the task carries to its worker."""
    return read_input(job.source, max_bytes=MAX_INPUT_BYTES)


def _failure(error: BaseException) -> ClusterError:
    """A task that Ray could not finish (its worker died more than :data:`RETRIES` times, a node was lost, an
    unexpected exception in the worker) as this photo's failure."""
    cause = getattr(error, "cause", None)  # RayTaskError: the worker's own exception
    reason = _first_line(cause if isinstance(cause, BaseException) else error)
    return ClusterError(f"the Ray task failed ({reason})")


def run_on_ray(
    jobs: Sequence[Job],
    plan: Any,
    describe: Callable[[dict], str],
    *,
    address: str | None,
    device: str,
    threads: int | None,
    as_json: bool,
    quiet: bool,
    skip_existing: bool,
    force: bool,
    single: bool,
) -> None:
    """Encode ``jobs`` on Ray with ``plan`` (:class:`shc.cli.encode_plan.EncodePlan`) and report them as
    :func:`shc.cli.batch.run_jobs` does: skipped, refused and unreadable photos before any task, the rest as
    they finish."""
    import shc

    if device not in ("cpu", "cuda", "auto"):  # before Ray starts
        msg = f"--device {device}: with --cluster ray use cpu, cuda or auto (Ray chooses each task's GPU)"
        raise UsageError(msg)
    ray = import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    started = _connect(ray, address)
    try:
        device, request, slots = _task_resources(ray, device, threads, local=started and address is None,
                                                  quiet=quiet)
        task = ray.remote(encode_task).options(max_retries=RETRIES, retry_exceptions=False, **request)
        batch = BatchReport("encode", jobs, as_json=as_json, quiet=quiet, single=single)
        pending: dict[Any, Job] = {}
        waiting: Iterator[Job] = iter(jobs)
        try:
            with _stopping_between_waits() as stop_asked:
                while True:
                    if stop_asked():
                        raise KeyboardInterrupt
                    while len(pending) < TASKS_PER_SLOT * slots and (job := next(waiting, None)) is not None:
                        photo = batch.start(job, _read_photo, skip_existing=skip_existing, force=force)
                        if photo is not None:
                            pending[task.remote(job, photo, plan, device, threads or 1, shc.__version__)] = job
                    if not pending:
                        break
                    finished, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_SECONDS)
                    for ref in finished:
                        _finish(ray, ref, pending.pop(ref), batch, describe, force)
        except BaseException:  # Ctrl-C, or a single job's failure: stop what still runs; nothing half-written
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        batch.finish()
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _stopping_between_waits() -> Iterator[Callable[[], bool]]:
    """While the batch runs, Ctrl-C and SIGTERM (a scheduler pre-empting the job) only set a flag, which the
    loop turns into KeyboardInterrupt between its waits: raised inside one of Ray's own calls, it could hang
    the shutdown, and SIGTERM would get Ray's stack dump. A second signal interrupts at once. Yields whether
    a stop was asked for (always False off the main thread, where signals cannot be handled)."""
    asked = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: Any) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, handler)
    try:
        yield lambda: bool(asked)
    finally:
        for number, before in previous.items():  # None: a handler not set from Python (Ray's own)
            signal.signal(number, signal.SIG_DFL if before is None else before)


def _finish(ray: Any, ref: Any, job: Job, batch: BatchReport, describe: Callable[[dict], str], force: bool) -> None:
    """Write a finished task's file (atomically, refusing to overwrite without ``force``) and report it."""
    try:
        outcome = ray.get(ref)
    except ray.exceptions.RayError as error:
        batch.failed(job, _failure(error))
        return
    first, second = outcome
    if isinstance(first, str):  # (message, exit status): the photo's own failure
        error = ClusterError(first)
        error.exit_code = second
        batch.failed(job, error)
        return
    try:
        write_output(job.output, first, force)
    except click.ClickException as error:  # the output appeared meanwhile, or its folder went away
        batch.failed(job, error)
        return
    batch.done(second, describe(second))
