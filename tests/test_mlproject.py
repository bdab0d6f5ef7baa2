"""`mlflow run . -P batch_size=...` as typed, in a fresh copy of the project."""

import pytest
from mlflow.tracking import MlflowClient

from conftest import copy_project, sh
from sweetspot.train.networks import CNN_NAME


@pytest.mark.slow
def test_mlflow_run_as_typed(tmp_path, mnist_root):
    """The first call builds MLflow's environment from python_env.yaml (minutes, then cached)."""
    folder = copy_project(tmp_path, mnist_root)
    done = sh("mlflow", "run", ".", "-P", "batch_size=128", "-P", "train_examples=6000",
              "-P", "max_epochs=1", "-P", "target_accuracy=0.5", "-P", "max_seconds=60",
              cwd=folder, timeout=1500)
    assert "succeeded" in done.stderr
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["batch_size"] == "128"  # from -P, through sweetspot's own parsing
    assert run.data.params["lr"] == "1.0"  # MLproject's default = params.yaml's
    assert run.data.params["max_seconds"] == "60"  # as typed; MLflow logged it first
    assert run.data.params["network_name"] == "Linear(784,256)-sigmoid-Linear(256,10)"  # ours, too
    assert run.data.tags["outcome"] == "reached"
    assert run.data.metrics["time_to_target"] > 0
    assert run.data.tags["mlflow.project.entryPoint"] == "main"


@pytest.mark.slow
def test_mlflow_run_rejects_a_bad_parameter(tmp_path, mnist_root):
    folder = copy_project(tmp_path, mnist_root)
    done = sh("mlflow", "run", ".", "-P", "batch_size=0", cwd=folder, check=False,
              timeout=1500)
    assert done.returncode != 0
    assert "train.batch_size: must be > 0" in done.stderr


@pytest.mark.slow
def test_mlflow_run_trains_lenet5_by_name(tmp_path, mnist_root):
    folder = copy_project(tmp_path, mnist_root)
    sh("mlflow", "run", ".", "-P", "network=cnn", "-P", "lr=0.1", "-P", "train_examples=6000",
       "-P", "max_epochs=1", "-P", "target_accuracy=0.5", cwd=folder, timeout=1500)
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED" and run.data.params["network"] == "cnn"
    assert run.data.params["network_name"] == CNN_NAME
