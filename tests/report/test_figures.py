"""The report's figures on hand-made runs: each draws its data, censored cells as such."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from sweetspot.answer import analysis
from sweetspot.report import figures
from sweetspot.report.answer import cost_model


def check(stack, spot):
    """A validation as `sweetspot validate` writes it; batch 64's second run censored (null)."""
    return {"stack": stack, "target": 0.97, "batch_sizes": [16, 32, 64], "predicted_spot": 32,
            "measured_spot": spot, "median_abs_error": 0.08, "goal_met": True,
            "runs": [{"batch_size": b, "seed": s, "lr": 1.0, "time": t, "run_id": f"r{b}{s}"}
                     for b, times in ((16, [2.0, 2.1]), (32, [1.6, 1.5]), (64, [1.4, None]))
                     for s, t in enumerate(times)],
            "per_batch": [{"batch_size": b, "estimate": e, "low": e - 0.1, "high": e + 0.1,
                           "measured": m} for b, e, m in ((16, 1.9, 2.05), (32, 1.4, 1.55),
                                                          (64, 1.5, 1.4))]}


def drawn(fig):
    """Every axes of the figure holds data."""
    return bool(fig.axes) and all(ax.has_data() for ax in fig.axes)


def region_band(ax) -> tuple[float, float] | None:
    """The x extent of the gold band that marks the sweet region, if the axes has one."""
    bands = [p for p in ax.patches if p.get_label().startswith("sweet region")]
    if not bands:
        return None
    (band,) = bands
    xs = band.get_path().vertices[:, 0] if not hasattr(band, "get_x") else \
        [band.get_x(), band.get_x() + band.get_width()]
    return min(xs), max(xs)


def test_epoch_vs_target_draws_censored_cells_as_open_markers(answer):
    results, cells, seconds, spots = answer
    fig = figures.epoch_vs_target(cells, spots)
    right = fig.axes[1]
    open_markers = [c for c in right.collections if len(c.get_offsets()) and
                    c.get_facecolors().size == 0]
    assert [list(c.get_offsets()[:, 0]) for c in open_markers] == [[1024]]
    assert right.get_xscale() == "log" and drawn(fig)
    assert region_band(right) == (32, 64)  # the sweet region, shaded
    plt.close(fig)


def test_two_factors_draws_steps_seconds_and_their_product(answer):
    results, cells, seconds, spots = answer
    per_batch = spots[0.97]["per_batch"]
    fig = figures.two_factors(per_batch, seconds, 0.97, spots[0.97])
    steps_ax, time_ax, both_ax = fig.axes
    assert region_band(both_ax) == (32, 64)
    assert drawn(fig)
    tried = [16, 32, 64, 128, 256, 1024]
    line = time_ax.get_lines()[0]
    assert list(line.get_xdata()) == tried
    assert line.get_ydata() == pytest.approx([seconds[b][0] * 1e6 for b in tried])
    hit = per_batch[per_batch["reached"]]
    product = both_ax.get_lines()[0]
    assert list(product.get_xdata()) == list(hit["batch_size"])  # 1024 never reached
    assert product.get_ydata() == pytest.approx(hit["estimate"].to_numpy())
    plt.close(fig)


def test_validation_draws_one_panel_per_stack_with_its_measured_runs():
    fig = figures.validation([check("cpu-1thread-tensor", 64), check("cuda-tensor", 32)])
    assert len(fig.axes) == 2 and drawn(fig)
    assert fig.axes[0].get_title().startswith("cpu-1thread-tensor")
    runs = [c for c in fig.axes[0].collections if len(c.get_offsets()) == 5]
    assert len(runs) == 1  # six runs, the censored one left out
    assert sorted(runs[0].get_offsets()[:, 1]) == pytest.approx([1.4, 1.5, 1.6, 2.0, 2.1])
    plt.close(fig)


def test_validation_draws_a_stack_where_no_batch_size_reached_the_target():
    nothing = {**check("cpu-1thread-tensor", 64), "measured_spot": None, "median_abs_error": None}
    fig = figures.validation([nothing])  # as validate writes it: inf and None become null
    assert fig.axes[0].get_title().endswith("error -")
    plt.close(fig)


def test_every_other_figure_draws_its_data(answer):
    results, cells, seconds, spots = answer
    per_batch = spots[0.97]["per_batch"]
    table = analysis.target_table(results, [0.97])
    for fig in (figures.accuracy_vs_time(results, per_batch, 0.97),
                figures.steps_to_target(per_batch, results, 0.97),
                figures.lr_heatmap(table, 0.97),
                figures.cost_curve(per_batch, cost_model(per_batch), spots[0.97], 0.97),
                figures.loaders({"tensor": spots[0.97], "torchvision": spots[0.97]}, 0.97)):
        assert drawn(fig)
        plt.close(fig)


def test_the_cost_model_figure_marks_the_sweet_region(answer):
    results, cells, seconds, spots = answer
    per_batch = spots[0.97]["per_batch"]
    fig = figures.cost_curve(per_batch, cost_model(per_batch), spots[0.97], 0.97)
    assert region_band(fig.axes[0]) == (32, 64)
    plt.close(fig)


def test_the_confusion_matrix_is_drawn_with_each_class_accuracy():
    matrix = pd.DataFrame(np.diag([90] * 10) + 1, index=range(10), columns=range(10))
    fig = figures.confusion(matrix, {c: 0.91 for c in range(10)}, 32)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["0 (91.0%)", "1 (91.0%)"]
    assert [t.get_text() for t in ax.texts][:2] == ["91", "1"]  # the counts, annotated
    assert "910 of 1000 test images right" in ax.get_title()
    plt.close(fig)


def test_steps_to_target_draws_the_censored_batch_at_the_steps_it_took(answer):
    results, cells, seconds, spots = answer
    per_batch = spots[0.97]["per_batch"]
    fig = figures.steps_to_target(per_batch, results, 0.97)
    misses = [c for c in fig.axes[0].collections if c.get_facecolors().size == 0]
    assert len(misses) == 1
    taken = next(r["steps"] for r in results if r["batch_size"] == 1024)
    assert np.asarray(misses[0].get_offsets()).tolist() == [[1024, pytest.approx(taken)]]
    plt.close(fig)


def test_a_region_that_is_not_contiguous_is_banded_member_by_member(answer):
    """A region {32, 128} with 64 tried between them: two bands, none over 64."""
    _, _, seconds, spots = answer
    spot = spots[0.97]
    holed = {**spot, "region": [{**spot["region"][0], "batch_size": 32},
                                {**spot["region"][0], "batch_size": 128}]}
    fig = figures.two_factors(spot["per_batch"], seconds, 0.97, holed)
    both_ax = fig.axes[2]
    bands = [p for p in both_ax.patches if p.get_facecolor()[:3] == pytest.approx(
        matplotlib.colors.to_rgb("gold"))]
    spans = sorted((min(p.get_path().vertices[:, 0]), max(p.get_path().vertices[:, 0]))
                   for p in bands)
    assert len(spans) == 2 and all(not lo <= 64 <= hi for lo, hi in spans)
    assert [p.get_label() for p in bands if p.get_label().startswith("sweet")] == [
        "sweet region {32, 128}"]
    plt.close(fig)
