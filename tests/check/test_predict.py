"""`sweetspot predict`: a steps table and a step-time measurement taken here give the sweet spot
on this stack. For real, on a small table the test writes; and every bad input refused whole."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sweetspot import cli, paths
from sweetspot.answer import estimate
from sweetspot.data.idx import md5
from sweetspot.paths import STEPS_MD5

NETWORK = "Linear(784,256)-sigmoid-Linear(256,10)"


def steps_rows(steps_by_batch: dict[int, list], target: float = 0.8, **fields) -> list[dict]:
    """Rows of a steps table: per batch size, one run per seed with these steps (None:
    censored)."""
    base = {"dataset": "MNIST", "network": NETWORK, "optimizer": "sgd", "loader": "tensor",
            "lr": 1.0, "target": target, **fields}
    return [{**base, "batch_size": b, "seed": seed, "steps": s,
             "examples": None if s is None else s * b, "epochs": None,
             "censored": s is None, "outcome": "reached" if s else "not_reached"}
            for b, runs in steps_by_batch.items() for seed, s in enumerate(runs)]


def write_table(folder, rows, name="steps.csv"):
    path = folder / name
    pd.DataFrame(rows, columns=estimate.STEPS_COLUMNS).to_csv(path, index=False)
    return path


def fails(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    lines = capsys.readouterr().err.splitlines()
    return exit_.value.code, lines


@pytest.mark.parametrize(("rows", "text", "says"), [
    (None, "", "is not a CSV table"),
    (None, "dataset,network\nMNIST,x\n", "has no column 'optimizer'"),
    ([], None, "has no rows"),
    (steps_rows({32: [-5]}), None, "neither censored nor a positive number of steps"),
    (steps_rows({32: [100]}, dataset="FashionMNIST"),
     None, "the table is for dataset FashionMNIST, not MNIST"),
    (steps_rows({32: [100]}, network="Linear(784,64)-relu-Linear(64,10)"),
     None, "the table is for network Linear(784,64)-relu-Linear(64,10), not " + NETWORK),
    (steps_rows({32: [100]}, optimizer="adam"), None, "the table is for optimizer adam, not sgd"),
])
def test_a_bad_table_is_one_line_exit_2_and_nothing_written(workdir, capsys, rows, text, says):
    folder, _ = workdir
    path = folder / "steps.csv"
    if rows is None:
        path.write_text(text)
    else:
        write_table(folder, rows)
    code, lines = fails(["predict", "--steps", str(path)], capsys)
    assert code == 2 and len(lines) == 1 and says in lines[0], lines
    assert not (folder / "reports").exists() and not (folder / "mlflow.db").exists()


def test_a_run_id_without_a_table_is_refused(workdir, capsys):
    folder, env = workdir
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    with mlflow.start_run() as run:
        pass
    code, lines = fails(["predict", "--steps", run.info.run_id], capsys)
    assert code == 2 and f"MLflow run {run.info.run_id} has no steps_to_target.csv" in lines[-1]


@pytest.mark.slow
def test_predict_for_real_from_a_table_or_a_run(workdir, capsys):
    """Batch 32 needs 4x the steps of 256 but costs far less than 1/4 of its step: 32 wins."""
    folder, env = workdir
    path = write_table(folder, steps_rows({32: [400, 420, 410], 256: [100, 110, None]}) +
                       steps_rows({32: [900, 950, 920], 256: [200, 210, 220]}, target=0.85))
    with pytest.raises(SystemExit) as done:
        cli.main(["predict", "--steps", str(path), "--threads", "1"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "target 0.8: sweet spot 32 (lr 1)" in out and "| 0.85 | 256 |" in out
    (written,) = (folder / "reports").glob("predict-*.json")
    assert written == folder / paths.predict_file("cpu-tensor-exact-1threads")
    doc = json.loads(written.read_text())
    assert doc[STEPS_MD5] == md5(path)  # the table it predicted from
    spot = doc["prediction"]["0.8"]["spot"]
    assert spot["batch_size"] == 32 and spot["low"] <= spot["estimate"] <= spot["high"]
    assert doc["steptime"]["stack"]["threads"] == 1
    rows = {r["batch_size"]: r for r in doc["prediction"]["0.8"]["per_batch"]}
    assert rows[32]["median_steps"] == 410 and rows[256]["median_steps"] == 110
    assert rows[32]["estimate"] == pytest.approx(410 * rows[32]["seconds_per_step"])

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED" and run.data.tags["kind"] == "predict"
    assert run.data.metrics["sweet_spot/0.8"] == 32
    assert run.data.params["threads"] == "1"

    client.log_artifact(run.info.run_id, str(path.rename(folder / "steps_to_target.csv")))
    with pytest.raises(SystemExit) as again:  # the same table, from an MLflow run
        cli.main(["predict", "--steps", run.info.run_id, "--threads", "1"])
    assert again.value.code == 0 and "target 0.8: sweet spot 32" in capsys.readouterr().out
    assert json.loads(written.read_text())[STEPS_MD5] == doc[STEPS_MD5]  # the same bytes
