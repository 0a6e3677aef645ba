"""``shc encode --cluster ray``: a local Ray of two one-CPU workers encodes small photos; the files decode and
are byte for byte the local mode's; a worker killed mid-task is retried and every file is written once;
``--skip-existing`` resumes; a broken photo is reported once and the rest go on; Ctrl-C (and SIGTERM) leave no
output and no Ray behind; and Ray is an optional extra that nothing imports unless ``--cluster ray`` is given.

Ray starts once for the module, in this process (two CPUs, no GPU, a small object store); the CLI runs
in-process against it (``ray.is_initialized()``: used, not shut down), or as a subprocess that connects with
``RAY_ADDRESS`` or starts a Ray of its own. Without Ray installed the end-to-end tests skip.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import json_lines

import shc
from shc.cli.batch import Job
from shc.cli.common import UsageError
from shc.cli.cluster import encode_task
from shc.cli.main import cli

FAST = ["--preset", "fast", "--steps", "5", "--threads", "1"]
GOLDEN = Path(__file__).parent / "data" / "parrot_64x48_q1.shc"
HINT = 'pip install "shc[cluster]"'


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def by_name(reports: list[dict]) -> dict[str, str]:
    """Input file name -> status, and no input reported twice."""
    names = [Path(r["input"]).name for r in reports]
    assert len(names) == len(set(names)), names
    return {Path(r["input"]).name: r["status"] for r in reports}


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray for the module: two CPUs (two one-thread workers), no GPU, no dashboard; its address."""
    ray = pytest.importorskip("ray")
    context = ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, object_store_memory=80 * 1024**2,
                       log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def local_files(photos, tmp_path_factory) -> dict[str, bytes]:
    """The local batch mode's files of ``photos`` (one thread, seed 0): what the cluster must reproduce."""
    out = tmp_path_factory.mktemp("local")
    result = invoke("encode", *photos, "--out-dir", out, *FAST)
    assert result.exit_code == 0, result.output
    return {path.name: path.read_bytes() for path in out.iterdir()}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _title(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def _encoding_workers(ray_parent: int) -> list[int]:
    """Ray workers running a photo's task (titled ``ray::encode_task``) of the Ray that ``ray_parent``
    started: children of its raylet, so that no other Ray on the machine is touched."""
    return [worker for raylet in _children(ray_parent) for worker in _children(raylet)
            if _title(worker).startswith("ray::encode_task")]


def _wait_for(condition, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return None


def _invoke_killing_a_worker(*args):
    """``invoke(*args)`` while a thread SIGKILLs the first Ray worker of this process's Ray seen running a
    photo's task (Ray titles a worker so while it runs one); the result, and the pid killed (None: none seen)."""
    killed: list[int] = []

    def kill_one_worker() -> None:
        workers = _wait_for(lambda: _encoding_workers(os.getpid()))
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            killed.append(workers[0])

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    result = invoke(*args)
    killer.join(timeout=5)
    return result, (killed[0] if killed else None)


# --- without a cluster --------------------------------------------------------------------------------------


def test_without_ray_cluster_names_the_extra(photos, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without Ray looks like to `import ray`
    result = invoke("encode", *photos, "--out-dir", tmp_path / "out", *FAST, "--cluster", "ray")
    assert result.exit_code == 2
    assert HINT in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # refused before any work


def test_cluster_address_needs_cluster(photos, tmp_path):
    result = invoke("encode", photos[0], "--out-dir", tmp_path, *FAST, "--cluster-address", "auto")
    assert result.exit_code == 1
    assert "--cluster-address needs --cluster ray" in result.stderr


def test_cluster_under_torchrun_is_refused(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = invoke("encode", photos[0], "--out-dir", tmp_path / "out", *FAST, "--cluster", "ray")
    assert result.exit_code == 1 and "torchrun" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_cli_and_decoding_never_import_ray(tmp_path):
    code = (
        "import sys\nfrom shc.cli.main import main\nimport shc.cli.encode_cmd, shc.cli.decode_cmd\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    out = tmp_path / "x.png"
    done = subprocess.run([sys.executable, "-c", code, "decode", str(GOLDEN), "-o", str(out)],
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert out.exists()


def test_a_worker_reports_its_photos_failure_instead_of_raising(photos):
    job = Job(str(photos[0]), "a.shc")
    plan = _plan()
    message, status = encode_task(job, b"not an image", plan, "cpu", 1, shc.__version__)
    assert status == 2 and message.startswith(f"{photos[0]}: cannot read image")
    message, status = encode_task(job, photos[0].read_bytes(), plan, "cpu", 1, "0.0.1")
    assert status == 2 and "shc 0.0.1" in message and shc.__version__ in message


def _plan():
    from shc.cli.encode_plan import EncodePlan
    from shc.codec.presets import settings_for

    return EncodePlan("fast", None, 5, settings_for("fast", None, 5, entropy_coding=True), None, False, None, 0,
                      False, None, None)


# --- on a local Ray -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_batch_on_ray_decodes_and_equals_the_local_mode(ray_address, photos, local_files, tmp_path):
    out = tmp_path / "out"
    result = invoke("encode", *photos, "--out-dir", out, *FAST, "--cluster", "ray", "--json")
    assert result.exit_code == 0, result.output
    reports = json_lines(result.stdout)
    assert by_name(reports) == {"a.png": "ok", "b.png": "ok", "c.png": "ok"}
    for report in reports:
        data = Path(report["output"]).read_bytes()
        assert report["bytes"] == len(data)
        assert shc.decode(data).size == (report["width"], report["height"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == local_files  # same seed, same thread count
    assert "3 file(s): 3 done, 0 skipped, 0 failed" in result.stderr


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_retried_and_every_file_written_once(ray_address, photos, local_files,
                                                                         tmp_path):
    out = tmp_path / "out"
    result, killed = _invoke_killing_a_worker("encode", *photos, "--out-dir", out, *FAST, "--cluster", "ray",
                                              "--json")
    assert killed is not None, "no worker was seen running a task"
    assert not _alive(killed)
    assert result.exit_code == 0, result.output
    assert by_name(json_lines(result.stdout)) == {"a.png": "ok", "b.png": "ok", "c.png": "ok"}
    assert {p.name: p.read_bytes() for p in out.iterdir()} == local_files  # no temp file, nothing twice


@pytest.mark.slow
def test_a_task_whose_worker_dies_every_time_is_reported_and_the_rest_go_on(ray_address, photos, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr("shc.cli.cluster.RETRIES", 0)  # the first death is the last: no retry left
    out = tmp_path / "out"
    result, killed = _invoke_killing_a_worker("encode", *photos, "--out-dir", out, *FAST, "--cluster", "ray",
                                              "--json")
    assert killed is not None, "no worker was seen running a task"
    assert result.exit_code == 2, result.output
    reports = json_lines(result.stdout)
    statuses = by_name(reports)
    failed = [name for name, status in statuses.items() if status == "failed"]
    assert len(failed) == 1 and sorted(statuses) == ["a.png", "b.png", "c.png"]
    assert "the Ray task failed" in next(r["error"] for r in reports if r["status"] == "failed")
    assert sorted(p.name for p in out.iterdir()) == sorted(n[:-4] + ".shc" for n in statuses if n not in failed)
    assert "3 file(s): 2 done, 0 skipped, 1 failed" in result.stderr


@pytest.mark.slow
def test_skip_existing_resumes_and_nothing_is_overwritten_without_force(ray_address, photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.shc").write_bytes(b"done before")  # a file of an earlier, interrupted run
    result = invoke("encode", *photos[:2], "--out-dir", out, *FAST, "--cluster", "ray", "--json",
                    "--skip-existing")
    assert result.exit_code == 0, result.output
    assert by_name(json_lines(result.stdout)) == {"a.png": "ok", "b.png": "skipped"}
    assert (out / "b.shc").read_bytes() == b"done before"
    first = (out / "a.shc").read_bytes()
    again = invoke("encode", *photos[:2], "--out-dir", out, *FAST, "--cluster", "ray", "--json")
    assert again.exit_code == 1  # both exist, no --force: usage errors, before any task
    assert by_name(json_lines(again.stdout)) == {"a.png": "failed", "b.png": "failed"}
    assert "--skip-existing" in again.stderr
    assert (out / "a.shc").read_bytes() == first and (out / "b.shc").read_bytes() == b"done before"


@pytest.mark.slow
def test_a_broken_photo_is_reported_once_and_the_rest_go_on(ray_address, photos, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "out"
    result = invoke("encode", photos[0], broken, tmp_path / "missing.png", photos[2], "--out-dir", out, *FAST,
                    "--cluster", "ray", "--json")
    assert result.exit_code == 2, result.output
    reports = json_lines(result.stdout)
    assert by_name(reports) == {"a.png": "ok", "broken.png": "failed", "missing.png": "failed", "c.png": "ok"}
    errors = {Path(r["input"]).name: r["error"] for r in reports if r["status"] == "failed"}
    assert "cannot read image" in errors["broken.png"]  # the worker's failure, not retried
    assert "missing.png" in errors["missing.png"]  # the driver's, before any task
    assert sorted(p.name for p in out.iterdir()) == ["a.shc", "c.shc"]
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error:")]) == 2
    assert "4 file(s): 2 done, 0 skipped, 2 failed" in result.stderr


def test_devices_a_cluster_cannot_run_are_refused(ray_address, photos, tmp_path):
    chosen = invoke("encode", photos[0], "--out-dir", tmp_path, *FAST, "--cluster", "ray", "--device", "cuda:1")
    assert chosen.exit_code == 1 and "Ray chooses" in chosen.stderr
    cuda = invoke("encode", photos[0], "--out-dir", tmp_path, *FAST, "--cluster", "ray", "--device", "cuda")
    assert cuda.exit_code == 2 and "no GPU" in cuda.stderr
    assert list(tmp_path.iterdir()) == []


class _FakeRay:
    """What :func:`shc.cli.cluster._task_resources` asks Ray: a cluster of two 2-CPU nodes (one with a GPU)
    and a dead 64-CPU one."""

    @staticmethod
    def cluster_resources():
        return {"CPU": 4.0, "GPU": 1.0}

    @staticmethod
    def nodes():
        return [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": True, "Resources": {"CPU": 2.0, "GPU": 1.0}},
                {"Alive": False, "Resources": {"CPU": 64.0}}]


def test_tasks_ask_ray_for_threads_and_a_gpu_and_no_node_that_cannot_come(capsys):
    from shc.cli.cluster import _task_resources

    assert _task_resources(_FakeRay, "cpu", None, local=True, quiet=False) == (
        "cpu", {"num_cpus": 1, "num_gpus": 0}, 4)
    assert _task_resources(_FakeRay, "auto", 2, local=True, quiet=False) == (
        "cuda", {"num_cpus": 2, "num_gpus": 1}, 1)  # GPUs in the cluster: auto takes one
    with pytest.raises(UsageError, match="--threads 3: no node of the Ray cluster has 3 CPUs"):
        _task_resources(_FakeRay, "cpu", 3, local=True, quiet=False)  # a Ray of its own: it would wait forever
    assert _task_resources(_FakeRay, "cpu", 3, local=False, quiet=False)[2] == 1  # a cluster: a node may join
    assert "Warning: --threads 3: no node" in capsys.readouterr().err


@pytest.mark.slow
def test_a_driver_process_joins_ray_address_and_needs_no_torch(ray_address, photos, local_files, tmp_path):
    code = (
        "import sys\nfrom shc.cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('torch' in sys.modules, file=sys.stderr)\nsys.exit(code)\n"
    )
    out = tmp_path / "out"
    env = {**os.environ, "RAY_ADDRESS": ray_address}
    done = subprocess.run([sys.executable, "-c", code, "encode", str(photos[2]), "--out-dir", str(out), *FAST,
                           "--cluster", "ray"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith(f"{out / 'c.shc'}: ") and "on cpu)" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "False"  # the driver only reads, sends and writes
    assert (out / "c.shc").read_bytes() == local_files["c.shc"]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_leaves_no_output_and_no_ray_started_for_the_job(ray_address, photos, tmp_path, stop):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # so the command starts its own Ray
    command = [sys.executable, "-m", "shc.cli.main", "encode", *map(str, photos), "--out-dir", str(out),
               "--preset", "fast", "--steps", "100000", "--threads", "1", "--cluster", "ray"]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert _wait_for(lambda: _encoding_workers(driver.pid)), "no task started"
        ray_processes = _children(driver.pid)  # its GCS server and raylet (the workers are the raylet's)
        driver.send_signal(stop)
        _, stderr = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert list(out.iterdir()) == []  # no file, no temporary file
    assert ray_processes and _wait_for(lambda: not any(map(_alive, ray_processes)), 30)
