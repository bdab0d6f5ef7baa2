"""`sweetspot forecast`: the cost model's sweet spot from seconds per step and one short run's
noise scale, written down (with its time) before any sweep of that network."""

import json
import math

import mlflow
import pytest

from conftest import B_NOISE, T0, C, sweetspot
from sweetspot.answer import costmodel
from sweetspot.check import forecast

SECONDS = {b: T0 + C * b for b in (16, 24, 32, 48, 64, 96, 128, 256)}


def test_the_cost_model_gives_b_star_from_the_noise_scale():
    found = forecast.cost_model_forecast(SECONDS, {"early": B_NOISE, "averaged": 4 * B_NOISE})
    assert math.isclose(found["t0"], T0, rel_tol=1e-6) and math.isclose(found["c"], C, rel_tol=1e-6)
    early, averaged = found["per_noise"]["early"], found["per_noise"]["averaged"]
    assert math.isclose(early["b_star"], math.sqrt(B_NOISE * T0 / C), rel_tol=1e-6)  # 44.7
    assert early["spot"] == 48 and averaged["spot"] == 96  # nearest in log scale: 44.7, 89.4
    assert averaged["b_star"] == pytest.approx(2 * early["b_star"])  # sqrt(4 B_noise)
    relative = early["relative_time"]
    assert min(relative.values()) == 1.0 and relative[48] == 1.0
    assert relative[256] == pytest.approx(
        costmodel.predicted_time(256, 1, B_NOISE, T0, C) / costmodel.predicted_time(48, 1, B_NOISE,
                                                                                    T0, C))


def test_an_unusable_noise_scale_is_left_out_not_a_crash():
    found = forecast.cost_model_forecast(SECONDS, {"early": None, "averaged": math.inf})
    assert found["per_noise"] == {}


@pytest.mark.slow
def test_a_forecast_of_lenet5_is_written_with_its_time(workdir):
    """As the README runs it before the CNN sweep: the tiny profile's grid (32 and 128 and their
    refinement neighbours), LeNet-5 at lr 0.1, one epoch of the 6000-image subset."""
    folder, env = workdir
    done = sweetspot("forecast", "-S", "train.network=cnn", "-S", "train.lr=0.1",
                     cwd=folder, env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads((folder / "reports/forecast/MNIST-cnn.json").read_text())
    assert doc["network"].startswith("LeNet-5") and doc["dataset"] == "MNIST"
    assert doc["made_at"].endswith("+00:00")
    assert set(doc["seconds_per_step"]) == {"24", "32", "48", "96", "128", "192"}
    assert doc["t0"] >= 0 and doc["c"] > 0
    assert doc["short_run"]["lr"] == 0.1 and doc["short_run"]["epochs"] == 1.0
    head = doc["per_noise"][doc["headline"]]
    assert head["b_star"] == pytest.approx(math.sqrt(head["b_simple"] * doc["t0"] / doc["c"]))
    assert str(head["spot"]) in doc["seconds_per_step"]
    assert f"B* = {head['b_star']:.0f}" in done.stdout
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert client.get_run(doc["run_id"]).data.tags["kind"] == "forecast"
    assert client.get_run(doc["short_run"]["run_id"]).data.params["network"] == "cnn"
