#!/usr/bin/env bash
# Regenerates results/cluster: `shc encode --cluster ray` (a local Ray of WORKERS one-thread workers) against
# the local batch mode with WORKERS threads, on the same photos, same preset and seed, one after the other in
# one run on this machine (run it with nothing else running: both use every core). Prints and writes
# (results/cluster/bench.json, bench.txt, the per-photo JSON lines) the two wall times, their ratio, and
# whether the files are byte-identical; then encodes the first photo locally with one thread, to tell a
# difference that comes from the thread count (torch's float sums) from one that comes from Ray.
#   scripts/bench_cluster.sh [KODAK_DIR] [IMAGES] [PRESET]
# Defaults: ../shared/data/kodak, the eight images of results/kodak-cpu, the fast preset (800 steps: the
# comparison is of scheduling, not of the training, and 800 steps keep it to minutes). Environment: WORKERS
# (2), STEPS (the preset's), OUT (results/cluster). On 2 cores: ~8 fast encodes per mode, ~10-15 min in all.
set -euo pipefail
cd "$(dirname "$0")/.."
kodak=${1:-../shared/data/kodak}
images=${2:-kodim01,kodim02,kodim05,kodim13,kodim15,kodim19,kodim21,kodim23}
preset=${3:-fast}
scripts/setup.sh
.venv/bin/python - "$kodak" "$images" "$preset" "${WORKERS:-2}" "${STEPS:-}" "${OUT:-results/cluster}" <<'PY'
"""Time the two modes in fresh processes, compare their files, write the results."""
import json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

kodak, images, preset, workers, steps, out = sys.argv[1:]
workers = int(workers)
photos = [str(Path(kodak) / f"{name}.png") for name in images.split(",")]
missing = [p for p in photos if not Path(p).is_file()]
if missing:
    sys.exit(f"missing photos: {' '.join(missing)}")
out = Path(out)
out.mkdir(parents=True, exist_ok=True)
work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
common = ["--preset", preset, "--seed", "0", "--json", "--no-progress", *(["--steps", steps] if steps else [])]
env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a Ray of this machine, started for the job
# The cluster run is the CLI itself, in a process that first starts Ray with exactly WORKERS CPUs (the CLI's
# own local Ray takes every core of the machine); Ray's start and shutdown are inside the timed process.
ray_driver = (
    "import logging, sys, ray\n"
    f"ray.init(num_cpus={workers}, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)\n"
    "from shc.cli.main import main\n"
    "try:\n    main(sys.argv[1:])\nfinally:\n    ray.shutdown()\n"
)
runs = {
    "local": [".venv/bin/shc", "encode", *photos, "--out-dir", str(work / "local"), "--threads", str(workers)],
    "ray": [".venv/bin/python", "-c", ray_driver, "encode", *photos, "--out-dir", str(work / "ray"),
            "--threads", "1", "--cluster", "ray"],
}


def timed(name, command):
    start = time.perf_counter()
    done = subprocess.run([*command, *common], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    (out / f"{name}.jsonl").write_text(done.stdout)
    print(f"{name}: {seconds:.1f} s", flush=True)
    return seconds, [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


load = os.getloadavg()[0]
print(f"load average before: {load:.2f}" + ("  (not quiet: timings will be off)" if load > 0.5 else ""))
seconds, reports = {}, {}
for name, command in runs.items():
    seconds[name], reports[name] = timed(name, command)
names = [Path(p).stem + ".shc" for p in photos]
identical = [n for n in names if (work / "local" / n).read_bytes() == (work / "ray" / n).read_bytes()]
# The first photo once more, locally with one thread: the same thread count as each Ray worker.
first = names[0]
one = subprocess.run([".venv/bin/shc", "encode", photos[0], "-o", str(work / f"one-thread-{first}"), "--threads",
                      "1", *common], capture_output=True, text=True, env=env)
if one.returncode != 0:
    sys.exit(f"one-thread encode failed:\n{one.stderr[-3000:]}")
one_thread_same = (work / f"one-thread-{first}").read_bytes() == (work / "ray" / first).read_bytes()


def versions():
    import ray, torch
    import shc
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"shc": shc.__version__, "git": commit, "torch": torch.__version__, "ray": ray.__version__,
            "python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}


result = {
    "photos": [Path(p).name for p in photos], "preset": preset, "steps": int(steps) if steps else None, "seed": 0,
    "workers": workers, "load_average_before": round(load, 2),
    "local_seconds": round(seconds["local"], 2), "ray_seconds": round(seconds["ray"], 2),
    "ray_over_local": round(seconds["ray"] / seconds["local"], 3),
    "local_encode_seconds": round(sum(r["encode_seconds"] for r in reports["local"]), 2),
    "ray_encode_seconds": round(sum(r["encode_seconds"] for r in reports["ray"]), 2),
    "byte_identical": f"{len(identical)} of {len(names)}", "identical_files": identical,
    "first_photo_local_one_thread_equals_ray": one_thread_same,
    "versions": versions(),
}
lines = [
    f"{len(photos)} photos ({', '.join(result['photos'])}), preset {preset}"
    + (f", {steps} steps" if steps else "") + f", seed 0; load average before {load:.2f}",
    f"local batch, {workers} threads:        {seconds['local']:8.1f} s wall "
    f"({result['local_encode_seconds']:.1f} s of encodes, one after the other)",
    f"Ray, {workers} one-thread workers:     {seconds['ray']:8.1f} s wall "
    f"({result['ray_encode_seconds']:.1f} s of encodes, {workers} at a time; Ray's start included)",
    f"ratio Ray / local:                {result['ray_over_local']:8.3f}",
    f"byte-identical files (Ray vs local {workers} threads): {result['byte_identical']}",
    f"{first} locally with 1 thread == its Ray file: {one_thread_same}",
    "versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
]
(out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
(out / "bench.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"files: {work}")
PY
