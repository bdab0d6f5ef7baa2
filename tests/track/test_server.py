"""`sweetspot server` for real: a PostgreSQL cluster (Debian's package) in a temporary folder and
an MLflow server on a free loopback port, started, stopped and restarted by the commands a user
types. A tiny sweep logs there, eight trainings log there at once, and a restart loses nothing.
Under a training run, PostgreSQL is stopped (until the run has said so and trained five more
epochs; then beyond the wait) and the MLflow server is killed: the training goes on, one line says
so, and every record reaches the store (at once, or through `sweetspot upload`). As root, a server
starts from a folder the postgres user cannot reach.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import SWEETSPOT, commit, copy_project, freeze, write_params
from sweetspot.track import server as server_module

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
    # the tiny profile's two cells, on one data path, neither refined nor raced, the advice's
    # timings frozen at the committed ones: what lands on the server, not the answer
    write_params(folder, {"train": {"threads": 1}, "steptime": {"loaders": ["tensor"]},
                          "race": {"max_cells": 0}, "sweep": {"refine": False,
                                                              "extra_seeds": []}})
    freeze(folder)
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
    assert len(cell_files) == 2  # the two coarse cells
    ids = [json.loads(p.read_text())["run_id"] for p in cell_files]
    (parent,) = [r for r in all_runs(uri) if r.data.tags.get("kind") == "sweep"]
    assert parent.info.run_name.startswith("MNIST mlp sgd sweep ")
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


# --- outages under a training run -----------------------------------------------------------------

TRAIN = [*SWEETSPOT, "train", "--max-epochs", "30", "--target-accuracy", "0.99",
         "--out", "cell.json"]  # about 13 s of training here: 30 epochs of 4 evaluations


class Watched:
    """A command's output (stdout and stderr together), each line with the time it arrived."""

    def __init__(self, args, cwd, env):
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen([str(a) for a in args], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, text: str, timeout: float = 180, count: int = 1, after: float = 0) -> None:
        """Until `count` lines with `text` arrived after `after` (a time.monotonic())."""
        deadline = time.monotonic() + timeout
        while len(self.saying(text, after)) < count:
            assert self.proc.poll() is None and time.monotonic() < deadline, self.text()
            time.sleep(0.1)

    def finish(self, timeout: float = 600) -> int:
        code = self.proc.wait(timeout=timeout)
        self.reader.join()
        return code

    def saying(self, text: str, after: float = 0, before: float = float("inf")) -> list[str]:
        return [line for t, line in self.lines if text in line and after <= t <= before]


def postgres(folder: Path, action: str) -> float:
    """Stop or start the server's PostgreSQL as an operator would (pg_ctl); returns the time."""
    state = server_module.read_state(folder)
    pg = server_module.cluster_dir(folder, state)
    if action == "stop":
        subprocess.run(server_module.as_postgres([server_module.pg_bin("pg_ctl"), "-D", str(pg),
                                                  "-m", "fast", "-w", "stop"]), check=True,
                       capture_output=True)
    else:
        server_module.start_postgres(pg, state)
    return time.monotonic()


def assert_whole(uri: str, result: dict) -> None:
    """The run ended FINISHED with every evaluation, every epoch, its files and its model."""
    client = MlflowClient(uri)
    run_id = result["run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run_id, "test/acc")) == len(result["curve"]) == 120
    assert len(client.get_metric_history(run_id, "epoch_time")) == 30
    assert run.data.metrics["final_test_acc"] == result["final_test_acc"]
    assert run.data.tags["outcome"] == result["outcome"]
    assert {a.path for a in client.list_artifacts(run_id)} >= {"result.json", "curve.csv"}
    models = client.search_logged_models([run.info.experiment_id])
    assert run_id in {m.source_run_id for m in models}


def test_postgres_away_training_goes_on_and_nothing_is_lost(server, project):
    folder, port, uri = server
    training = Watched(TRAIN, project, user_env(uri))
    training.wait_for("epoch 3/30")
    stopped = postgres(folder, "stop")
    training.wait_for("tracking store unavailable", after=stopped)  # an outage it has seen ...
    training.wait_for("epoch ", count=5, after=stopped)  # ... and trained through
    started = postgres(folder, "start")
    assert training.finish() == 0, training.text()
    assert len(training.saying("epoch ", stopped, started)) >= 5  # it trained through the outage
    (down,) = training.saying("tracking store unavailable")
    assert f"(503 from http://127.0.0.1:{port}): run " in down and "goes on" in down
    assert "up to 600 s" in down
    assert len(training.saying("tracking store back after")) == 1
    assert "Traceback" not in training.text()
    assert_whole(uri, json.loads((project / "cell.json").read_text()))


def test_postgres_away_beyond_the_wait_one_line_then_upload_completes_the_run(server, project):
    folder, port, uri = server
    training = Watched(TRAIN, project, {**user_env(uri), "SWEETSPOT_TRACKING_WAIT": "10"})
    training.wait_for("epoch 3/30")
    stopped = postgres(folder, "stop")
    try:
        code = training.finish(timeout=120)
        ended = time.monotonic()
    finally:
        postgres(folder, "start")
    assert code == 1 and ended - stopped < 60, training.text()
    result = json.loads((project / "cell.json").read_text())  # written all the same
    kept = project / ".outbox" / result["run_id"]
    last = training.lines[-1][1]
    assert last.startswith("sweetspot: the tracking store stayed unavailable for 10 s (503 from ")
    assert f"run {result['run_id']} is not complete there; its result is in cell.json" in last
    assert f"kept in {kept}: `sweetspot upload` sends them" in last
    assert len(training.saying("sweetspot: ")) == 2 and "Traceback" not in training.text()
    assert (kept / "ops.json").exists()
    assert MlflowClient(uri).get_run(result["run_id"]).info.status == "RUNNING"

    upload = run(*SWEETSPOT, "upload", cwd=project, uri=uri)
    assert f"upload: run {result['run_id']}: " in upload.stdout
    assert not kept.exists()
    assert_whole(uri, result)


def test_mlflow_server_killed_and_restarted_training_goes_on_and_nothing_is_lost(server, project):
    folder, port, uri = server
    training = Watched(TRAIN, project, user_env(uri))
    training.wait_for("epoch 3/30")
    os.killpg(server_module.read_state(folder)["pid"], signal.SIGKILL)
    killed = time.monotonic()
    training.wait_for("tracking store unavailable", after=killed)
    training.wait_for("epoch ", count=5, after=killed)
    restarted = time.monotonic()
    run(*SWEETSPOT, "server", "start", "--dir", folder, "--port", port, cwd=folder.parent)
    assert training.finish() == 0, training.text()
    assert len(training.saying("epoch ", killed, restarted)) >= 5
    (down,) = training.saying("tracking store unavailable")
    assert f"(no connection to http://127.0.0.1:{port}): run " in down
    assert "Traceback" not in training.text()
    assert_whole(uri, json.loads((project / "cell.json").read_text()))


# --- as root, in a folder the postgres user cannot reach ----------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_as_root_in_a_private_folder_the_server_starts_with_no_flags():
    home = Path(tempfile.mkdtemp(prefix="sweetspot-private-"))  # 0700: no o+x, as /root
    project = home / "project"
    project.mkdir()
    port = server_module.free_port()
    state = None
    try:
        started = run(*SWEETSPOT, "server", "start", "--port", port, cwd=project)
        assert started.stdout.splitlines()[-1] == f"http://127.0.0.1:{port}"
        assert f"(the postgres user cannot reach {project / '.server'})" in started.stderr
        state = server_module.read_state(project / ".server")
        assert Path(state["pg"]).is_relative_to(Path("~postgres").expanduser())
        status = run(*SWEETSPOT, "server", "status", cwd=project)
        assert "postgresql: running" in status.stdout and "mlflow: running" in status.stdout
        assert MlflowClient(f"http://127.0.0.1:{port}").search_experiments()
        stopped = run(*SWEETSPOT, "server", "stop", cwd=project)
        assert f"its database in {state['pg']}" in stopped.stdout
    finally:
        run(*SWEETSPOT, "server", "stop", cwd=project, check=False)
        if state:
            shutil.rmtree(Path(state["pg"]).parent, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
