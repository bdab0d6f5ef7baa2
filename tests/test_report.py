"""The report's pure parts on hand-made runs: the answer, the cost model, the text."""

import math

import pytest

from conftest import B_NOISE, S_MIN, T0, C
from sweetspot import costmodel, report


def test_answer_and_cost_model_recover_the_generating_model(answer):
    results, cells, spots = answer
    spot = spots[0.97]
    best = min((b for b in (16, 32, 64, 128, 256)),
               key=lambda b: costmodel.predicted_time(b, S_MIN, B_NOISE, T0, C))
    assert spot["batch_size"] == best and spot["lr"] == 1.0
    assert 1024 in spot["censored"] and spot["stability"]["stable"]
    model = report.cost_model(spot["chosen"], cells)
    assert model["b_noise"] == pytest.approx(B_NOISE, rel=0.02)
    assert model["b_star"] == pytest.approx(math.sqrt(B_NOISE * T0 / C), rel=0.02)
    assert report.noise_scale(cells) == {"early": 80.0, "averaged": 400.0}


def test_text_and_metrics_name_the_sweet_spot(answer):
    results, cells, spots = answer
    model = report.cost_model(spots[0.97]["chosen"], cells)
    text = report.markdown(spots, [0.97], cells, None, {"dataset": "MNIST"}, ["cost_model"],
                           model, report.noise_scale(cells))
    b = spots[0.97]["batch_size"]
    assert text.startswith("# Which batch size reaches the target fastest here? MNIST")
    assert f"**Batch size {b}**" in text and "B_noise = 40" in text
    assert "| 1024 | " in text and "not reached" in text  # censored, never dropped
    doc = report.metrics_doc(spots, [0.97])
    assert doc["batch_size"] == b and doc["per_target"]["0.97"]["censored"] == [1024]
