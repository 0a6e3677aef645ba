"""Fuzz harness for the ``.shc`` reader and the normative decoder (numpy and constriction only, never torch).

The command line, ``python -m shc.tools.fuzz``: what it does and how to read its report are in
:mod:`shc.tools.fuzz`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from shc.tools.fuzz.report import FuzzReport, format_report
from shc.tools.fuzz.runner import DEFAULT_CASE_SECONDS, DEFAULT_MAX_PIXELS, DEFAULT_MEMORY_LIMIT_MB, run_fuzz
from shc.tools.fuzz.seeds import Seed, default_seeds

__all__ = ["main"]

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shc.tools.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="seed .shc files (default: the shipped seeds + synthetic)")
    parser.add_argument("--cases", type=int, default=1000, help="mutated cases to run (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; case i uses default_rng([seed, i])")
    parser.add_argument("--time-limit", type=float, default=None, help="start no new case after this many seconds")
    parser.add_argument("--case-seconds", type=float, default=DEFAULT_CASE_SECONDS, help="a slower case is a failure")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="decode_image(max_pixels=...)")
    parser.add_argument("--memory-limit-mb", type=int, default=DEFAULT_MEMORY_LIMIT_MB,
                        help="a case whose peak traced allocation is larger is a failure (0: do not trace)")
    parser.add_argument("--sweep-truncations", action="store_true", help="also decode every truncation of every seed")
    parser.add_argument("--sweep-boundaries", action="store_true",
                        help="also decode each seed cut at every section and latent-segment boundary, and one byte "
                             "before and after each")
    parser.add_argument("--only-seed", action="append", default=None, metavar="NAME",
                        help="use only the seed(s) of this name (repeatable; e.g. synthetic_chunked)")
    parser.add_argument("--no-reader", action="store_true",
                        help="do not check each case with ShcReader too (full, region, prefix and truncated reads)")
    parser.add_argument("--case", type=int, action="append", dest="only_cases", help="run only case i (repeatable)")
    parser.add_argument("--save-failures", type=Path, default=None, help="write each failing input into this folder")
    parser.add_argument("--no-synthetic", action="store_true", help="without FILES: use the shipped seed files only")
    args = parser.parse_args(argv)

    if args.files:
        seeds = [Seed(path.name, path.read_bytes()) for path in args.files]
    else:
        seeds = default_seeds()
        if args.no_synthetic:
            seeds = [s for s in seeds if not s.name.startswith("synthetic_")]
    if args.only_seed:
        unknown = sorted(set(args.only_seed) - {s.name for s in seeds})
        if unknown:
            parser.error(f"no seed named {', '.join(unknown)} (seeds: {', '.join(s.name for s in seeds)})")
        seeds = [s for s in seeds if s.name in args.only_seed]
    watchdog = max(60.0, 6 * args.case_seconds)

    def progress(report: FuzzReport) -> None:
        print(f"  ... {report.cases} cases, {report.num_failures} failures", file=sys.stderr, flush=True)

    report = run_fuzz(
        seeds,
        cases=args.cases,
        seed=args.seed,
        time_limit=args.time_limit,
        case_seconds=args.case_seconds,
        max_pixels=args.max_pixels,
        memory_limit_mb=args.memory_limit_mb or None,
        sweep_truncations=args.sweep_truncations,
        sweep_boundaries=args.sweep_boundaries,
        reader=not args.no_reader,
        only_cases=args.only_cases,
        watchdog_seconds=watchdog,
        progress=progress,
    )
    print(format_report(report, args.seed))
    if args.save_failures is not None and report.failures:
        args.save_failures.mkdir(parents=True, exist_ok=True)
        for failure in report.failures:
            name = f"case{failure.index}-{failure.mutator}-{failure.seed_name}.bin"
            (args.save_failures / name).write_bytes(failure.data)
    return 0 if report.ok else 1

