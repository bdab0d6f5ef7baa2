"""`sweetspot server` for real: a PostgreSQL cluster (Debian's package) in a temporary folder and
an MLflow server on a free loopback port, started, stopped and restarted by the commands a user
types. A tiny sweep logs there, eight trainings log there at once, and a restart loses nothing."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import SWEETSPOT, commit, copy_project, write_params
from sweetspot import server as server_module

pytestmark = pytest.mark.slow


def user_env(uri: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return {**env, "MLFLOW_TRACKING_URI": uri} if uri else env


def run(*args, cwd, uri=None, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=user_env(uri), text=True,
                          capture_output=True, timeout=900)
    if check and done.returncode:
        raise AssertionError(f"{args} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def server():
    """(its folder, its port, the tracking URI `start` printed); stopped and removed after. The
    folder is under /tmp, which the postgres user can reach (pytest's own tmp folders are 0700)."""
    home = Path(tempfile.mkdtemp(prefix="sweetspot-server-"))
    home.chmod(0o755)
    folder, port = home / "server", server_module.free_port()
    try:
        done = run(*SWEETSPOT, "server", "start", "--dir", folder, "--port", port, cwd=home)
        uri = done.stdout.splitlines()[-1]
        assert uri == f"http://127.0.0.1:{port}"
        yield folder, port, uri
    finally:
        run(*SWEETSPOT, "server", "stop", "--dir", folder, cwd=home, check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_root) -> Path:
    folder = copy_project(tmp_path_factory.mktemp("served") / "project", mnist_root)
    write_params(folder, {"train": {"threads": 1}})
    commit(folder, "tiny params")
    return folder


def all_runs(uri: str) -> list:
    client = MlflowClient(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()],
                              max_results=1000)


def test_status_says_both_are_up(server):
    folder, port, _ = server
    done = run(*SWEETSPOT, "server", "status", "--dir", folder, cwd=folder.parent)
    assert "postgresql: running" in done.stdout and f"mlflow: running at http://127.0.0.1:{port}" \
        in done.stdout


def test_a_tiny_sweep_lands_on_the_server(server, project):
    _, _, uri = server
    run("dvc", "repro", "report", cwd=project, uri=uri)
    assert not (project / "mlflow.db").exists()  # nothing went to the default store
    client = MlflowClient(uri)
    cell_files = sorted((project / "reports" / "cells").rglob("b*.json"))
    assert len(cell_files) >= 4  # 2 coarse, refinement, extra seeds
    ids = [json.loads(p.read_text())["run_id"] for p in cell_files]
    (parent,) = [r for r in all_runs(uri) if r.data.tags.get("kind") == "sweep"]
    assert parent.info.run_name.startswith("MNIST sgd sweep ")
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    for run_id in ids:
        cell = client.get_run(run_id)
        assert cell.info.status == "FINISHED"
        assert cell.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert {a.path for a in client.list_artifacts(run_id)} >= {"result.json", "curve.csv"}
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"report.md"}


def test_eight_trainings_at_once_all_finish(server, project):
    _, _, uri = server
    before = {r.info.run_id for r in all_runs(uri)}
    procs = [subprocess.Popen([*SWEETSPOT, "train", "--seed", str(seed), "--threads", "1"],
                              cwd=project, env=user_env(uri), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for seed in range(8)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outputs
    new = [r for r in all_runs(uri) if r.info.run_id not in before]
    assert sorted(int(r.data.params["seed"]) for r in new) == list(range(8))
    assert {r.info.status for r in new} == {"FINISHED"}


def test_stop_and_start_again_loses_nothing(server, tmp_path):
    folder, port, uri = server
    before = {r.info.run_id: (r.info.status, r.data.metrics) for r in all_runs(uri)}
    trained = [r.info.run_id for r in all_runs(uri) if "outcome" in r.data.tags]
    assert trained
    run(*SWEETSPOT, "server", "stop", "--dir", folder, cwd=folder.parent)
    down = run(*SWEETSPOT, "server", "status", "--dir", folder, cwd=folder.parent, check=False)
    assert down.returncode == 1 and "postgresql: stopped" in down.stdout
    again = run(*SWEETSPOT, "server", "start", "--dir", folder, "--port", port, cwd=folder.parent)
    assert again.stdout.splitlines()[-1] == uri
    after = {r.info.run_id: (r.info.status, r.data.metrics) for r in all_runs(uri)}
    assert after == before
    fetched = MlflowClient(uri).download_artifacts(trained[0], "result.json", str(tmp_path))
    assert Path(fetched).stat().st_size > 0
