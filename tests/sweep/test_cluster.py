"""`sweetspot sweep --executor ray` on a real local Ray cluster, in a copy of the project
(one quick test: the driver's jobs are DVC's stages).

The cells it trains are the serial path's, bit for bit (same seeds, one thread each); DVC records
them, so `dvc status` is clean but for what follows the sweep; a worker killed mid-cell is retried
and its run marked KILLED; a cell that fails is named while the others complete; Ctrl-C leaves no
run RUNNING. Each test starts its own cluster (about 5 s)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import (
    REPO,
    SWEETSPOT,
    commit,
    copy_project,
    interruptible,
    sh,
    stale,
    write_params,
)
from sweetspot import config, paths
from sweetspot.sweep import cluster, sweep
from sweetspot.track import tracking

TIMING = ("time", "epoch_time", "train_time", "eval_time", "time_to_target", "mean_step_time",
          "compile_time")  # seconds: all two runs of one cell may differ in
LONG = {"sweep": {"batch_sizes": [32, 64], "targets": [0.99, 0.98], "max_epochs": 6,
                  "refine": False, "extra_seeds": []}}  # cells of a few seconds, none reached


def project(tmp_path, mnist_root, changes=None) -> Path:
    folder = copy_project(tmp_path / "project", mnist_root)
    write_params(folder, {"train": {"threads": 1}, **(changes or {})})
    commit(folder, "tiny params")
    return folder


def ray_sweep(folder: Path, *args: str) -> subprocess.Popen:
    """The driver as a user starts it, its output in folder/driver.log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.Popen([*SWEETSPOT, "sweep", "--executor", "ray", *args], cwd=folder,
                            env=env, stdout=(folder / "driver.log").open("w"),
                            stderr=subprocess.STDOUT, preexec_fn=interruptible)


def finish(driver: subprocess.Popen, folder: Path, timeout: int = 300) -> str:
    driver.wait(timeout=timeout)
    return (folder / "driver.log").read_text()


def cells(folder: Path) -> dict[str, dict]:
    """Every cell file under reports/cells, by relative path, without its timings and ids."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()
                    if k not in TIMING and k not in ("run_id", "provenance")}
        return [strip(v) for v in value] if isinstance(value, list) else value

    root = folder / "reports" / "cells"
    return {str(p.relative_to(root)): strip(json.loads(p.read_text()))
            for p in sorted(root.rglob("*.json"))}


def runs(folder: Path) -> list:
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracking.ensure_store(uri)  # under the store's lock: the driver may be creating it now
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, max_results=1000)


def running_run(folder: Path, driver: subprocess.Popen, name: str, within: float = 180):
    """Wait until the cell `name`'s MLflow run is RUNNING (its worker is training)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert driver.poll() is None, (folder / "driver.log").read_text()
        if (folder / "mlflow.db.lock").exists():
            found = [r for r in runs(folder) if r.info.status == "RUNNING"
                     and r.info.run_name == name]
            if found:
                return found[0]
        time.sleep(0.2)
    pytest.fail(f"no RUNNING run {name} within {within} s")


def ray_cells() -> dict[str, int]:
    """The Ray workers running a cell now: {title: pid} (Ray titles them `ray::cell NAME`)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if title.startswith("ray::cell "):
            found[title.strip()] = int(pid)
    return found


def worker_pid(cell: str) -> int:
    found = [pid for title, pid in ray_cells().items() if title.startswith(f"ray::cell {cell}")]
    assert found, f"no Ray worker is running cell {cell}: {ray_cells()}"
    return found[0]


def test_the_jobs_are_dvcs_stages_with_their_outs(monkeypatch):
    """The driver's stage names and cell paths are the ones `dvc stage list` expands."""
    monkeypatch.chdir(REPO)
    listed = dict(line.split()[::2] for line in  # "NAME  Outputs PATH"
                  sh("dvc", "stage", "list", cwd=REPO).stdout.splitlines()
                  if line.startswith(("sweep@", "extremes@")))
    params = config.load(REPO / paths.PARAMS_FILE)
    jobs = cluster.grid_jobs(params, set(), force=True)
    assert {j.stage: str(j.out) for j in jobs} == listed
    one = "sweep@64-1.0-0-tensor"
    (job,) = cluster.grid_jobs(params, {one, "report"}, force=False)
    assert (job.stage, job.title, job.label, job.cell) == (
        one, one, "coarse", sweep.Cell(64, 1.0, 0, "tensor"))
    refined = cluster.Job("refine", "refine", sweep.Cell(96, 1.0, 0, "tensor"), Path("x.json"))
    assert refined.title == "refine b96-lr1.0-s0-tensor"  # failures name the cell


@pytest.mark.slow
def test_ray_cells_are_the_serial_cells_and_dvc_records_them(tmp_path, mnist_root):
    folder = project(tmp_path, mnist_root)
    log = finish(ray_sweep(folder), folder)
    assert "ray: done" in log, log
    by_ray = cells(folder)
    assert {p.split("/")[0] for p in by_ray} == {"coarse", "refine", "rates", "seeds"}
    # the cells and steptime are recorded; what no cell decides is left to dvc repro
    after = {"race", "reproduce", "heldout", "report", "bench", "cores", "memory", "blocks",
             "pipeline", "question"}
    assert stale(folder) == after
    assert all(r.info.status == "FINISHED" for r in runs(folder))

    # the serial path over the same plan (the same step times, so the same refinement); refine,
    # rates and seeds keep the cells they still plan, so their folders go first: all retrain
    for stage in ("refine", "rates", "seeds"):
        shutil.rmtree(folder / "reports" / "cells" / stage)
    sh("dvc", "repro", "--force", "--single-item", "sweep", "plan", "refine", "rates", "seeds",
       cwd=folder)
    assert cells(folder) == by_ray  # losses, accuracies, steps, noise scale: bit for bit
    assert stale(folder) == after  # no cell left to dvc repro


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_its_run_marked_killed(tmp_path, mnist_root):
    folder = project(tmp_path, mnist_root, LONG)
    driver = ray_sweep(folder)
    killed = running_run(folder, driver, "b32-lr1.0-s0-tensor")
    os.kill(worker_pid("b32-lr1.0-s0-tensor"), signal.SIGKILL)
    log = finish(driver, folder)
    assert driver.returncode == 0, log
    assert "ray: [2/2]" in log and "ray: 1 run(s) of killed tasks marked KILLED" in log

    by_name = {}
    for r in runs(folder):
        by_name.setdefault(r.info.run_name, []).append(r.info.status)
    assert sorted(by_name["b32-lr1.0-s0-tensor"]) == ["FINISHED", "KILLED"]
    assert by_name["b64-lr1.0-s0-tensor"] == ["FINISHED"]
    assert [r.info.status for r in runs(folder) if r.info.run_id == killed.info.run_id] == [
        "KILLED"]
    coarse = folder / "reports" / "cells" / "coarse"
    assert sorted(p.name for p in coarse.glob("*.json*")) == [
        "b32-lr1.0-s0-tensor.json", "b64-lr1.0-s0-tensor.json"]  # whole files, no .tmp
    assert all(json.loads(p.read_text())["outcome"] for p in coarse.glob("*.json"))
    assert not {s for s in stale(folder) if s.startswith("sweep@")}


@pytest.mark.slow
def test_a_failing_cell_is_named_and_the_others_complete(tmp_path, mnist_root):
    folder = project(tmp_path, mnist_root)
    blocked = folder / "reports" / "cells" / "coarse" / "b32-lr1.0-s0-tensor.json"
    blocked.mkdir(parents=True)  # the cell's result cannot be written: a real failure
    log = finish(ray_sweep(folder), folder)
    assert "ray: cell sweep@32-1.0-0-tensor FAILED: IsADirectoryError" in log, log
    assert "ray: failed" in log
    assert (folder / "reports" / "cells" / "coarse" / "b128-lr1.0-s0-tensor.json").is_file()
    status = {r.info.run_name: r.info.status for r in runs(folder)}
    assert status == {"b32-lr1.0-s0-tensor": "FAILED", "b128-lr1.0-s0-tensor": "FINISHED"}
    left = stale(folder)
    assert "sweep@32-1.0-0-tensor" in left and "sweep@128-1.0-0-tensor" not in left
    assert not (folder / "reports" / "cells" / "refine").exists()  # nothing planned on a hole


@pytest.mark.slow
def test_ctrl_c_cancels_the_tasks_and_leaves_no_run_running(tmp_path, mnist_root):
    folder = project(tmp_path, mnist_root, LONG)
    driver = ray_sweep(folder)
    running_run(folder, driver, "b32-lr1.0-s0-tensor")
    driver.send_signal(signal.SIGINT)
    log = finish(driver, folder, timeout=120)
    assert driver.returncode == 130, log
    assert "sweetspot: interrupted" in log
    statuses = [r.info.status for r in runs(folder)]
    assert statuses and "RUNNING" not in statuses
    assert "KILLED" in statuses
    deadline = time.monotonic() + 30
    while ray_cells() and time.monotonic() < deadline:  # gone with the cluster
        time.sleep(0.5)
    assert ray_cells() == {}
