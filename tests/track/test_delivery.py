"""delivery.py against a real sqlite store: a run's writes land whole and in order (thousands of
metrics merged into a few requests, a NaN loss kept, files and a dict), and how metric writes are
merged. Outages, the kept records and `sweetspot upload`: tests/test_server.py, with a real
PostgreSQL and `mlflow server`."""

import math

import mlflow.artifacts
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sweetspot.track import delivery, tracking


def test_metric_writes_merge_up_to_a_batch_and_stop_at_another_kind():
    ops = [{"kind": "metrics", "metrics": [["m", 1.0, 0, i]]} for i in range(1000)]
    ops.append({"kind": "end", "status": "FINISHED", "end_time": 0})
    first, n = delivery.take(ops, 0)
    assert n == delivery.BATCH and [m[3] for m in first["metrics"]] == list(range(n))
    rest, m = delivery.take(ops, n)
    assert m == 1000 - n and rest["metrics"][-1][3] == 999
    assert delivery.take(ops, 1000) == (ops[1000], 1)


def test_a_runs_writes_land_whole_and_in_order(root):
    with tracking.open_run("sweetspot", "b64-lr1-s0-tensor", {"outcome": "reached"}) as active:
        for step in range(2000):
            active.log_metrics({"train/loss": float(step)}, step=step)
        active.log_metrics({"test/loss": math.nan}, step=2000)  # a diverged run's loss
        (active.files / "curve.csv").write_text("examples,test_acc\n64,0.5\n")
        active.log_file(active.files)
        active.log_dict({"spot": 32}, "doc.json")
        files = active.files
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    run = client.get_run(active.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["outcome"] == "reached"
    history = client.get_metric_history(active.run_id, "train/loss")
    assert [(h.step, h.value) for h in history] == [(s, float(s)) for s in range(2000)]
    assert math.isnan(run.data.metrics["test/loss"])
    assert {a.path for a in client.list_artifacts(active.run_id)} == {"curve.csv", "doc.json"}
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/doc.json") == {"spot": 32}
    assert not files.exists()  # the run's own files go once they have landed


def test_a_write_the_store_refuses_ends_the_run_failed(root, capsys):
    with pytest.raises(MlflowException, match='Invalid value "no/../such"'):  # a 400
        with tracking.open_run("sweetspot", "b64-lr1-s0-tensor") as active:
            active.log_metrics({"no/../such": 1.0})
    assert "unavailable" not in capsys.readouterr().err  # refused, not an outage to wait out
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    assert client.get_run(active.run_id).info.status == "FAILED"
    assert not (root / ".outbox").exists()  # nothing kept: the store would refuse it again
