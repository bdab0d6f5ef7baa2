"""tracking.py against a real MLflow store: a fresh sqlite file in tmp_path, nothing mocked.

Where the store is, how a run always ends (FINISHED, FAILED, KILLED), resuming the run `mlflow run`
started, the provenance tags, and the sweep's parent run."""

import socket
import subprocess
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from conftest import SWEETSPOT, commit, sh
from sweetspot.track import tracking


def client_for(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


def only_run(client: MlflowClient, experiment: str):
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


# --- where the store is --------------------------------------------------------------------------


def test_the_store_is_mlflow_db_in_the_project_root(root, monkeypatch, tmp_path_factory):
    assert tracking.tracking_uri() == f"sqlite:///{root}/mlflow.db"
    parent = tmp_path_factory.mktemp("dvc_root").resolve()  # DVC's repo, cwd its temporary copy
    monkeypatch.setenv("DVC_ROOT", str(parent))
    assert tracking.project_root() == parent
    assert tracking.tracking_uri() == f"sqlite:///{parent}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/runs.db")
    assert tracking.tracking_uri() == "sqlite:////elsewhere/runs.db"


def test_run_creates_the_store_the_experiment_and_one_finished_run(root):
    assert not (root / "mlflow.db").exists()
    with tracking.open_run("sweetspot", "b64-lr1-s0-tensor", {"outcome": "reached"}) as active:
        active.log_metrics({"time_to_target": 1.5})
    assert (root / "mlflow.db").exists()
    client = client_for(root)
    experiment = client.get_experiment_by_name("sweetspot")
    assert Path(experiment.artifact_location.removeprefix("file://")).is_relative_to(
        root / "mlruns")
    run = only_run(client, "sweetspot")
    assert run.info.run_id == active.run_id
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.runName"] == "b64-lr1-s0-tensor"
    assert run.data.tags["outcome"] == "reached"
    assert run.data.metrics == {"time_to_target": 1.5}


def test_a_new_experiment_keeps_its_artifacts_in_the_project_root_under_dvc(root, monkeypatch,
                                                                            tmp_path_factory):
    copy = tmp_path_factory.mktemp("dvc_temporary_copy")  # as `dvc exp run --temp` runs a stage
    monkeypatch.chdir(copy)
    monkeypatch.setenv("DVC_ROOT", str(root))
    with tracking.open_run("sweetspot", "b64-lr1-s0-tensor"):
        pass
    location = client_for(root).get_experiment_by_name("sweetspot").artifact_location
    assert Path(location.removeprefix("file://")).is_relative_to(root / "mlruns")


# --- how a run ends ------------------------------------------------------------------------------


def test_an_exception_inside_marks_the_run_failed(root):
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.open_run("sweetspot", "b64-lr1-s0-tensor"):
            raise RuntimeError("boom")
    assert only_run(client_for(root), "sweetspot").info.status == "FAILED"


def test_ctrl_c_marks_the_run_killed_and_goes_on_up(root):
    with pytest.raises(KeyboardInterrupt):
        with tracking.open_run("sweetspot", "b64-lr1-s0-tensor"):
            raise KeyboardInterrupt
    assert only_run(client_for(root), "sweetspot").info.status == "KILLED"


# --- under `mlflow run` --------------------------------------------------------------------------


def test_under_mlflow_run_the_given_run_is_resumed(root, monkeypatch):
    client = client_for(root)
    launched = client.create_experiment("Default-mlflow-run",
                                        artifact_location=(root / "mlruns").as_uri())
    given = client.create_run(launched, run_name="mlflow-run-name").info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", given)
    with tracking.open_run("sweetspot", "b64-lr1-s0-tensor", {"outcome": "reached"}) as active:
        assert active.run_id == given
    run = client.get_run(given)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.runName"] == "b64-lr1-s0-tensor"
    assert run.data.tags["outcome"] == "reached"
    assert [r.info.run_id for r in client.search_runs([launched])] == [given]  # no new run
    assert client.get_experiment_by_name("sweetspot") is None  # nor the project's experiment


def test_log_params_keeps_what_the_run_already_has(root, monkeypatch):
    client = client_for(root)
    launched = client.create_experiment("Default-mlflow-run",
                                        artifact_location=(root / "mlruns").as_uri())
    given = client.create_run(launched).info.run_id
    client.log_param(given, "x", "0")  # as `mlflow run -P x=0` logs it, before we parse it
    monkeypatch.setenv("MLFLOW_RUN_ID", given)
    with pytest.raises(MlflowException):  # why: MLflow refuses to change a param
        client.log_param(given, "x", "0.0")
    with tracking.open_run("sweetspot", "b64-lr1-s0-tensor") as active:
        active.log_params({"x": 0.0, "y": 1})
    assert client.get_run(given).data.params == {"x": "0", "y": "1"}


# --- provenance ----------------------------------------------------------------------------------


def test_provenance_names_the_code_libraries_and_machine(root, monkeypatch):
    (root / "train.py").write_text("print('v1')\n")
    commit(root, "v1")
    head = sh("git", "rev-parse", "HEAD", cwd=root).stdout.strip()
    tags = tracking.provenance("cpu")
    assert tags["git_commit"] == head and tags["git_dirty"] == "false"
    assert tags["torch_version"] == torch.__version__
    assert tags["mlflow_version"] == mlflow.__version__
    assert tags["cpu_model"]
    assert tags["torch_threads"] == str(torch.get_num_threads())
    assert tags["device"] == "cpu"
    assert tags["host"] == tracking.host() and tags["host"].startswith(socket.gethostname())
    assert "gpu_name" not in tags and "dvc_stage" not in tags

    (root / "dvc.lock").write_text("stages: {}\n")  # what dvc repro writes between stages
    (root / "reports").mkdir()
    (root / "reports" / "steptime.json").write_text("{}\n")
    commit(root, "a pipeline")
    (root / "dvc.lock").write_text("stages: {sweep: {}}\n")
    (root / "reports" / "steptime.json").write_text("{\"per_loader\": {}}\n")
    assert tracking.provenance("cpu")["git_dirty"] == "false"

    (root / "train.py").write_text("print('v2')\n")
    monkeypatch.setenv("DVC_STAGE", "sweep@0")
    tags = tracking.provenance("cpu")
    assert tags["git_dirty"] == "true" and tags["dvc_stage"] == "sweep@0"


def test_cpuinfo_reads_the_first_cpus_fields():
    text = ("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2\n\n"
            "processor\t: 1\nmodel name\t: other\n")
    assert tracking.cpuinfo(text) == {"processor": "0", "model name": "AMD EPYC 7B13",
                                      "flags": "fpu avx2"}
    assert tracking.cpuinfo("") == {}


def test_provenance_outside_git_says_unknown(root):
    assert tracking.provenance("cpu")["git_commit"] == "unknown"


# --- the sweep's parent run ----------------------------------------------------------------------


def test_file_sweep_parents_the_cells_under_one_run_per_key(root, capsys):
    cells = {}
    for name in ("b64-lr1-s0-tensor", "b256-lr1-s0-tensor"):
        with tracking.open_run("sweetspot", name) as active:
            cells[name] = active.run_id
    (root / "figures").mkdir()
    (root / "figures" / "epoch_vs_target.png").write_bytes(b"png")
    (root / "report.md").write_text("# sweet spot: 64\n")
    restored = {"b32-lr1-s0-tensor": "0" * 32}  # a cell DVC restored, its run in another store

    summary = {"sweet_spot_batch_size": 64, "time_to_target": None}
    parent = tracking.file_sweep("sweetspot", "abc123", "MNIST sgd sweep 2026-11-24", summary,
                                 {"targets": [0.97]}, [root / "figures", root / "report.md"],
                                 {**cells, **restored})
    out = capsys.readouterr().out
    assert "1 of 3 cells have no run in this MLflow store" in out
    assert "b32-lr1-s0-tensor" in out
    assert out.splitlines()[-1].endswith("?workflowType=machine_learning "
                                         "(the sweep: MNIST sgd sweep 2026-11-24)")

    client = client_for(root)
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and run.info.run_name == "MNIST sgd sweep 2026-11-24"
    assert run.data.tags["sweep_key"] == "abc123" and run.data.tags["kind"] == "sweep"
    assert run.data.metrics == {"sweet_spot_batch_size": 64.0}  # None is not logged
    assert run.data.params == {"targets": "[0.97]"}
    assert {a.path for a in client.list_artifacts(parent)} == {"figures", "report.md"}
    assert [a.path for a in client.list_artifacts(parent, "figures")] == [
        "figures/epoch_vs_target.png"]
    for run_id in cells.values():
        tags = client.get_run(run_id).data.tags
        assert tags["mlflow.parentRunId"] == parent and tags["sweep_key"] == "abc123"
    children = [client.get_run(run_id).info for run_id in cells.values()]
    # the parent spans its cells: from the first one's start to the last one's end
    assert run.info.start_time == min(c.start_time for c in children)
    assert run.info.end_time == max(c.end_time for c in children)

    # the same sweep again replaces its parent (one per key); another sweep gets its own
    again = tracking.file_sweep("sweetspot", "abc123", "MNIST sgd sweep 2026-11-25",
                                {"sweet_spot_batch_size": 128}, {"targets": [0.97]}, [], cells)
    assert client.get_run(parent).info.lifecycle_stage == "deleted"
    found = client.search_runs([run.info.experiment_id], "tags.sweep_key = 'abc123' and "
                               "tags.kind = 'sweep'")
    assert [r.info.run_id for r in found] == [again]
    assert client.get_run(again).data.metrics["sweet_spot_batch_size"] == 128.0
    assert client.get_run(again).info.run_name == "MNIST sgd sweep 2026-11-25"
    assert client.get_run(cells["b64-lr1-s0-tensor"]).data.tags["mlflow.parentRunId"] == again
    other = tracking.file_sweep("sweetspot", "def456", "MNIST adam sweep 2026-11-25", {}, {}, [],
                                {})
    assert other != parent
    experiment = client.get_experiment_by_name("sweetspot").experiment_id
    parents = client.search_runs([experiment], "tags.kind = 'sweep'")
    assert sorted(r.data.tags["sweep_key"] for r in parents) == ["abc123", "def456"]


# --- a fresh store, several processes at once --------------------------------------------------


@pytest.mark.slow
def test_processes_that_start_together_on_a_fresh_store_all_finish(workdir):
    """N trainings started at once in a fresh clone: one creates the store under its lock, the
    others wait for it; none races MLflow's migration ("duplicate column name")."""
    folder, env = workdir
    n = 4
    procs = [subprocess.Popen([*SWEETSPOT, "train", "--seed", str(seed), "--threads", "1"],
                              cwd=folder, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for seed in range(n)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * n, outputs
    client = client_for(folder.resolve())
    runs = client.search_runs([client.get_experiment_by_name("sweetspot").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * n
    assert client.get_experiment_by_name("sweetspot").tags == tracking.KIND
