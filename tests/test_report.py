"""The report's pure parts on hand-made runs: answer, cost model, figures and text."""

import math

import matplotlib.pyplot as plt
import pytest

from sweetspot import analysis, report

S_MIN, B_NOISE, T0, C = 2000.0, 40.0, 2e-4, 4e-6  # the cost model the fake runs follow


def fake_run(batch_size: int, lr: float, seed: int, reached: bool = True) -> dict:
    """A run whose steps and step time follow the cost model exactly; accuracy rises linearly."""
    steps = S_MIN * (1 + B_NOISE / batch_size)
    step_time = T0 + C * batch_size
    points = 10
    curve = [{"step": steps * i / points, "examples": steps * i / points * batch_size,
              "epoch": 0.1 * i, "time": steps * step_time * i / points, "train_loss": 1.0,
              "test_loss": 1.0, "test_acc": (0.97 if reached else 0.9) * i / points,
              "b_simple": 100.0}
             for i in range(1, points + 1)]
    return {"outcome": "reached" if reached else "not_reached", "batch_size": batch_size,
            "lr": lr, "seed": seed, "loader": "tensor", "target_accuracy": 0.97,
            "time_to_target": curve[-1]["time"] if reached else None,
            "steps": steps, "examples": steps * batch_size, "epochs": 1.0,
            "train_time": curve[-1]["time"], "mean_step_time": step_time,
            "best_test_acc": curve[-1]["test_acc"], "b_simple_first": 80.0,
            "b_simple_mean": 400.0, "curve": curve}


@pytest.fixture
def answer():
    results = [fake_run(b, lr, seed, reached=(b < 1024 and lr == 1.0))
               for b in (16, 32, 64, 128, 256, 1024) for lr in (0.3, 1.0) for seed in (0, 1)]
    table = analysis.target_table(results, [0.97])
    cells = analysis.cells_table(results)
    return results, cells, report.answers(table, [0.97])


def test_answer_and_cost_model_recover_the_generating_model(answer):
    results, cells, spots = answer
    spot = spots[0.97]
    best = min((b for b in (16, 32, 64, 128, 256)),
               key=lambda b: analysis.predicted_time(b, S_MIN, B_NOISE, T0, C))
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


def test_figures_draw_measured_and_censored_cells(answer):
    results, cells, spots = answer
    chosen = spots[0.97]["chosen"]
    first = report.figure_epoch_vs_target(cells, spots)
    right = first.axes[1]
    open_markers = [c for c in right.collections if len(c.get_offsets()) and
                    c.get_facecolors().size == 0]
    assert [list(c.get_offsets()[:, 0]) for c in open_markers] == [[1024]]
    assert right.get_xscale() == "log"
    for fig in (first, report.figure_accuracy_vs_time(results, chosen, 0.97),
                report.figure_steps_to_target(chosen, results, 0.97),
                report.figure_cost_model(chosen, report.cost_model(chosen, cells), spots[0.97],
                                         0.97)):
        assert fig.axes and all(ax.has_data() for ax in fig.axes)
        plt.close(fig)
