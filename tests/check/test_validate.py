"""`sweetspot validate`: the comparison of predicted and measured on hand-made numbers, the
document it writes, and one real tiny validation (predict, then a reduced sweep that really
trains)."""

import hashlib
import json
import math

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from test_predict import steps_rows, write_table

from sweetspot import cli, paths
from sweetspot.check.validate import document, goal, neighbours
from sweetspot.data.idx import md5
from sweetspot.paths import STEPS_MD5

GRID = [16, 32, 64, 128, 256]


def held(predicted: dict[int, float], measured: dict[int, float], spot: int, grid) -> dict:
    """goal() on a beside_measured-shaped table: predicted and measured seconds by batch size."""
    return goal(pd.DataFrame([{"batch_size": b, "lr": 0.1, "estimate": t, "low": t * 0.9,
                               "high": t * 1.1, "measured": measured[b],
                               "ratio": measured[b] / t}
                              for b, t in predicted.items()]), spot, grid)


def test_neighbours_are_the_spot_and_the_sizes_beside_it():
    assert neighbours(64, GRID) == [32, 64, 128]
    assert neighbours(16, GRID) == [16, 32] and neighbours(256, GRID) == [128, 256]


def test_a_prediction_within_15_percent_and_a_neighbouring_spot_meets_the_goal():
    check = held({32: 1.0, 64: 0.8, 128: 1.2}, {32: 1.1, 64: 0.9, 128: 0.85}, 64, GRID)
    assert check["measured_spot"] == 128 and check["spot_near"]  # a grid neighbour of 64
    # measured / predicted 1.1, 1.125, 0.708: off by 10%, 12.5% and 29%, the median 12.5%
    assert check["median_abs_error"] == pytest.approx(0.125)
    assert check["goal_met"]
    assert [r["measured"] for r in check["per_batch"]] == [1.1, 0.9, 0.85]


def test_a_far_spot_or_a_large_error_misses_the_goal():
    far = held({32: 1.0, 64: 0.8, 128: 1.2}, {32: 0.5, 64: 0.9, 128: 1.2}, 128, GRID)
    assert far["measured_spot"] == 32 and not far["spot_near"] and not far["goal_met"]
    off = held({32: 1.0, 64: 0.5}, {32: 2.0, 64: 1.0}, 64, GRID)
    assert off["measured_spot"] == 64 and off["median_abs_error"] == pytest.approx(1.0)
    assert not off["goal_met"]


def test_a_censored_batch_size_is_never_the_measured_spot_nor_an_error():
    check = held({32: 1.0, 64: 0.8}, {32: 1.0, 64: math.inf}, 64, GRID)
    assert check["measured_spot"] == 32 and check["median_abs_error"] == 0.0
    assert held({32: 1.0}, {32: math.inf}, 32, GRID)["measured_spot"] is None


def test_the_document_records_the_md5_of_the_steps_table_it_predicted_from(tmp_path):
    table = write_table(tmp_path, steps_rows({32: [141, 141], 64: [110, 125]}))
    result = {"stack": "cpu-tensor-exact-2threads", "run_id": "p1",
              "steptime": {"seconds": {"32": 1e-4, "64": 2e-4}}}
    check = held({32: 1.0, 64: 0.8}, {32: 1.1, 64: 0.9}, 64, GRID)
    runs = [{"batch_size": b, "seed": 0, "lr": 1.0, "run_id": f"r{b}"} for b in (32, 64)]
    measured = pd.DataFrame({"quiet_time": [1.1, 0.9], "time": [1.2, 1.0]})
    doc = document(result, md5(table), 0.97, {32: 1.0, 64: 1.0}, [0], check, runs,
                   measured)
    assert doc[STEPS_MD5] == hashlib.md5(table.read_bytes()).hexdigest()  # as dvc.lock's md5
    assert doc["stack"] == "cpu-tensor-exact-2threads" and doc["batch_sizes"] == [32, 64]
    assert doc["predict_run_id"] == "p1" and doc["goal_met"] == check["goal_met"]
    assert [(r["time"], r["clock"], r["run_id"]) for r in doc["runs"]] == [
        (1.1, 1.2, "r32"), (0.9, 1.0, "r64")]


@pytest.mark.slow
def test_validate_for_real_on_the_tiny_config(workdir, capsys):
    folder, env = workdir
    table = write_table(folder, steps_rows({32: [141, 141], 64: [110, 125], 128: [77, 80]}))
    with pytest.raises(SystemExit) as done:
        cli.main(["validate", "--steps", str(table), "--threads", "1"])
    assert done.value.code == 0
    out = folder / paths.validate_file("MNIST", "mlp", "cpu-tensor-exact-1threads")
    doc = json.loads(out.read_text())
    assert doc["stack"] == "cpu-tensor-exact-1threads" and doc["target"] == 0.8
    assert doc[STEPS_MD5] == md5(table)
    assert doc["batch_sizes"] == neighbours(doc["predicted_spot"], [32, 64, 128])
    assert doc["seeds"] == [0, 1]  # sweep.seeds then sweep.extra_seeds
    assert len(doc["runs"]) == 2 * len(doc["batch_sizes"])
    assert doc["measured_spot"] in doc["batch_sizes"]
    assert 0 <= doc["median_abs_error"] < math.inf
    assert doc["goal_met"] == (doc["spot_near"] and doc["median_abs_error"] <= 0.15)
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    for r in doc["runs"]:
        run = client.get_run(r["run_id"])
        assert run.info.status == "FINISHED" and run.data.params["threads"] == "1"
        # it ran to the highest target, 0.85: 0.8 came first
        assert 0 < r["time"] <= run.data.metrics["time_to_target"]
    assert "validate cpu-tensor-exact-1threads: predicted spot" in capsys.readouterr().out
