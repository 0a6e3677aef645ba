"""Several files in one process: output names, ``--skip-existing``, failures that do not stop the batch.

``shc encode *.png --out-dir d/`` imports torch once instead of once per photo. Each file gets one text
line (or one JSON line with ``--json``); a file that fails is reported and the others go on; a summary ends
the batch, and the exit status is that of the worst failure (0 when none failed). Outputs are written
atomically (:func:`shc.cli.common.write_output`), so a file already done is never half-written, and
``--skip-existing`` resumes an interrupted batch.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click

from shc.cli.common import UsageError, refuse_existing

__all__ = ["BatchReport", "Job", "plan_jobs", "run_jobs"]

EXISTING_ALTERNATIVE = " (or --skip-existing)"
T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """One input and where its output goes (``-`` for stdin / stdout)."""

    source: str
    output: str


def plan_jobs(inputs: Sequence[str], output: str | None, out_dir: str | None, suffix: str) -> list[Job]:
    """Pair every input with its output: ``-o`` for one input, else ``out_dir / (stem + suffix)``.

    Usage errors (before any work): both or neither of ``-o`` and ``--out-dir``, several inputs with
    ``-o``, stdin in a batch, an ``--out-dir`` that is a file, two inputs that would share an output name.
    """
    if output is not None and out_dir is not None:
        raise UsageError("give -o/--output or --out-dir, not both")
    if output is None and out_dir is None:
        raise UsageError("missing option '-o' / '--output' (or --out-dir DIR for several files)")
    if output is not None:
        if len(inputs) > 1:
            msg = f"{len(inputs)} inputs need --out-dir DIR (-o names a single output)"
            raise UsageError(msg)
        return [Job(inputs[0], output)]
    if "-" in inputs:
        raise UsageError("standard input (-) needs -o, not --out-dir")
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        msg = f"--out-dir {out_dir} is not a directory"
        raise UsageError(msg)
    jobs, seen = [], {}
    for source in inputs:
        target = folder / (Path(source).stem + suffix)
        if target in seen:
            msg = f"{seen[target]} and {source} would both be written to {target}"
            raise UsageError(msg)
        seen[target] = source
        jobs.append(Job(source, str(target)))
    folder.mkdir(parents=True, exist_ok=True)
    return jobs


class BatchReport:
    """The lines, counts, summary and exit status of a batch, apart from the order its files finish in:
    :func:`run_jobs` finishes them in order, ``shc encode --cluster ray`` (:mod:`shc.cli.cluster`) as they
    come back.

    ``single`` (one input named with ``-o``): a failure is raised as it is (one ``Error:`` line and the
    command's exit status). Otherwise each failure is one ``Error: FILE: ...`` line on stderr (and a JSON
    line with ``"status": "failed"``), the batch goes on, and :meth:`finish` prints a summary and exits with
    the largest of the failures' exit statuses.
    """

    def __init__(self, command: str, jobs: Sequence[Job], *, as_json: bool, quiet: bool, single: bool) -> None:
        self.command = command
        self.total = len(jobs)
        self.as_json = as_json
        self.quiet = quiet
        self.single = single
        self.data_on_stdout = any(job.output == "-" for job in jobs)
        self.counts = {"done": 0, "skipped": 0, "failed": 0}
        self.worst = 0

    def _emit(self, report: dict, text: str | None) -> None:
        if self.as_json:
            click.echo(json.dumps(report), err=self.data_on_stdout)
        elif text is not None and not self.quiet:
            click.echo(text, err=self.data_on_stdout)

    def start(self, job: Job, prepare: Callable[[Job], T], *, skip_existing: bool, force: bool) -> T | None:
        """``prepare(job)``, the job's first work, unless the job goes no further: its output exists (reported
        as skipped with ``skip_existing``, else as failed without ``force``, before any work), or ``prepare``
        raises a :class:`click.ClickException` (this job's failure). None when it goes no further."""
        if skip_existing and job.output != "-" and Path(job.output).exists():
            self.counts["skipped"] += 1
            self._emit({"input": job.source, "output": job.output, "status": "skipped"},
                       f"{job.output}: exists, skipped")
            return None
        try:
            refuse_existing(job.output, force, EXISTING_ALTERNATIVE)
            return prepare(job)
        except click.ClickException as error:
            self.failed(job, error)
            return None

    def failed(self, job: Job, error: click.ClickException) -> None:
        """Report ``error`` as this job's failure (raise it for a single job)."""
        if self.single:
            raise error
        self.counts["failed"] += 1
        self.worst = max(self.worst, error.exit_code)
        message = error.format_message()
        if not message.startswith(job.source):
            message = f"{job.source}: {message}"
        click.echo(f"Error: {message}", err=True)
        if self.as_json:
            click.echo(json.dumps({"input": job.source, "output": job.output, "status": "failed", "error": message}),
                       err=self.data_on_stdout)

    def done(self, report: dict, text: str) -> None:
        self.counts["done"] += 1
        self._emit({**report, "status": "ok"}, text)

    def finish(self) -> None:
        """The summary line (batches only, not with ``quiet``), then the exit status of the worst failure."""
        if not self.single and not self.quiet:
            summary = ", ".join(f"{n} {name}" for name, n in self.counts.items())
            print(f"shc {self.command}: {self.total} file(s): {summary}", file=sys.stderr)
        if self.worst:
            raise click.exceptions.Exit(self.worst)


def run_jobs(
    command: str,
    jobs: list[Job],
    work: Callable[[Job], dict],
    describe: Callable[[dict], str],
    *,
    as_json: bool,
    quiet: bool,
    skip_existing: bool,
    force: bool,
    single: bool,
) -> None:
    """Run ``work`` on each job, in order, and report it (:class:`BatchReport`): ``describe(report)`` as
    text, or the report as JSON.

    A job whose output exists is skipped with ``skip_existing``, and otherwise fails before ``work`` starts
    unless ``force``. A failure (a :class:`click.ClickException`) stops a single job and only its own file
    in a batch. Ctrl-C stops the batch.
    """
    batch = BatchReport(command, jobs, as_json=as_json, quiet=quiet, single=single)
    for job in jobs:
        report = batch.start(job, work, skip_existing=skip_existing, force=force)
        if report is not None:
            batch.done(report, describe(report))
    batch.finish()
