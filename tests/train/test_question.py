"""`sweetspot question`: the StackOverflow question's own setup, batch 1 against the whole set."""

import json

import pytest
from mlflow.tracking import MlflowClient

from conftest import sweetspot


@pytest.mark.slow
def test_the_question_preset_prints_its_table(workdir):
    folder, env = workdir
    done = sweetspot("question", "--epochs", "2", "--train-examples", "600", "--out", "q.json",
                     cwd=folder, env=env)
    assert done.returncode == 0, done.stderr
    table = json.loads((folder / "q.json").read_text())  # what the report sets beside ASKED
    assert (table["lr"], table["epochs"], table["n_train"]) == (0.1, 2, 600)
    assert [[e["steps"] for e in run["epochs"]] for run in table["runs"].values()] == [
        [600, 600], [1, 1]]
    assert table["provenance"]["torch_version"]
    rows = [line for line in done.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2 and "batch 1: s/epoch" in done.stdout and "batch 600" in done.stdout
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(int(r.data.params["batch_size"]) for r in found) == [1, 600]
    assert {r.data.params["loader"] for r in found} == {"torchvision"}
    assert {r.data.params["lr"] for r in found} == {"0.1"}
