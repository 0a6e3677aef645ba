"""What a fuzz run found: each case's result (:class:`CaseResult`), their tally (:class:`FuzzReport`: outcomes
per mutator, the checks that fired, what the reader did, the slowest and largest cases, the first
failures with their inputs) and its text (:func:`format_report`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["CaseResult", "FuzzReport", "format_report"]

@dataclass
class CaseResult:
    index: int
    seed_name: str
    mutator: str
    outcome: str  # "error", "decoded" or "failure"
    seconds: float
    peak_bytes: int
    detail: str  # the ShcFormatError message, the decoded size, or why it failed (with traceback)
    data: bytes = b""
    warnings: tuple[str, ...] = ()
    reader: str = ""  # what ShcReader did (check_reader), "" when not checked


@dataclass
class FuzzReport:
    cases: int = 0
    clean_errors: int = 0
    decoded: int = 0
    num_failures: int = 0
    failures: list[CaseResult] = field(default_factory=list)  # the first few, with their inputs
    seeds_total: int = 0
    seeds_decoded: int = 0
    seed_problems: list[str] = field(default_factory=list)
    per_mutator: dict[str, Counter] = field(default_factory=dict)
    error_kinds: Counter = field(default_factory=Counter)
    reader_kinds: Counter = field(default_factory=Counter)
    warning_kinds: Counter = field(default_factory=Counter)
    cases_with_warnings: int = 0
    slowest: CaseResult | None = None
    largest: CaseResult | None = None
    seconds: float = 0.0
    stopped_early: bool = False
    keep_failures: int = 20

    @property
    def ok(self) -> bool:
        return self.num_failures == 0 and self.seeds_decoded == self.seeds_total

    def add(self, result: CaseResult) -> None:
        self.cases += 1
        counts = self.per_mutator.setdefault(result.mutator, Counter())
        counts[result.outcome] += 1
        if result.outcome == "error":
            self.clean_errors += 1
            self.error_kinds[_message_kind(result.detail)] += 1
        elif result.outcome == "decoded":
            self.decoded += 1
        else:
            self.num_failures += 1
            if len(self.failures) < self.keep_failures:
                self.failures.append(result)
        if result.reader:
            self.reader_kinds[result.reader] += 1
        if result.warnings:
            self.cases_with_warnings += 1
            self.warning_kinds.update(result.warnings)
        if self.slowest is None or result.seconds > self.slowest.seconds:
            self.slowest = result
        if self.largest is None or result.peak_bytes > self.largest.peak_bytes:
            self.largest = result


def _message_kind(message: str) -> str:
    """An error message with its numbers and quoted bytes blanked, so that messages group by the check that fired."""
    kind = re.sub(r"b'[^']*'|b\"[^\"]*\"", "b'…'", message)
    return re.sub(r"(?<![A-Za-z_*\d])-?\d+(\.\d+)?", "N", kind)[:100]


def format_report(report: FuzzReport, seed: int, show_failures: int = 5) -> str:
    lines = [
        f"shc fuzz: {report.cases} cases ({report.seeds_total} seeds, --seed {seed}) in {report.seconds:.1f} s"
        + (" (stopped at --time-limit)" if report.stopped_early else ""),
        f"  clean errors (ShcFormatError): {report.clean_errors}",
        f"  successful decodes:            {report.decoded}",
        f"  failures:                      {report.num_failures}",
        f"  seeds decoded unmutated:       {report.seeds_decoded}/{report.seeds_total}",
    ]
    lines += [f"    seed problem: {problem}" for problem in report.seed_problems]
    if report.slowest is not None:
        s = report.slowest
        what = s.detail.splitlines()[0][:80]
        lines.append(f"  slowest case: {s.seconds:.3f} s (case {s.index}, {s.mutator} of {s.seed_name}: {what})")
    if report.largest is not None and report.largest.peak_bytes:
        m = report.largest
        where = f"case {m.index}, {m.mutator} of {m.seed_name}"
        lines.append(f"  largest peak allocation: {m.peak_bytes / 2**20:.1f} MiB ({where})")
    lines.append(f"  cases with numpy warnings: {report.cases_with_warnings}")
    lines += [f"    {count:6d}  {kind}" for kind, count in report.warning_kinds.most_common(5)]
    lines.append("  per mutator:            cases   errors  decoded failures")
    for name in sorted(report.per_mutator):
        c = report.per_mutator[name]
        lines.append(f"    {name:20s} {sum(c.values()):7d} {c['error']:8d} {c['decoded']:8d} {c['failure']:8d}")
    if report.reader_kinds:
        lines.append("  ShcReader on the same bytes (whole: full, region, prefix; cut short: the complete levels):")
        lines += [f"    {count:6d}  {kind}" for kind, count in sorted(report.reader_kinds.items())]
    lines.append(f"  checks that fired ({len(report.error_kinds)} kinds, most frequent first):")
    lines += [f"    {count:6d}  {kind}" for kind, count in report.error_kinds.most_common(25)]
    for failure in report.failures[:show_failures]:
        where = f"case {failure.index} ({failure.mutator} of {failure.seed_name})"
        lines.append(f"--- failure: {where}, {failure.seconds:.2f} s")
        lines.append(failure.detail.rstrip())
    return "\n".join(lines)
