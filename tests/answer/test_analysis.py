"""analysis.py on hand-made curves and tables, and its models on synthetic data with known truth."""

import math

import pandas as pd
import pytest

from sweetspot.answer import analysis
from sweetspot.answer.analysis import cells_table, target_table, time_to_target

INF = math.inf


def point(step, acc, time, loss=0.3, examples=None, epoch=None):
    return {"step": step, "examples": examples if examples is not None else step * 64,
            "epoch": epoch if epoch is not None else step * 64 / 6000, "time": time,
            "train_loss": loss, "test_loss": loss, "test_acc": acc}


def run(batch, lr, seed, curve, outcome="reached", **extra):
    """A result dict like train_one's, stopped after the last curve point (n_train = 6000)."""
    last = curve[-1]
    return {"outcome": outcome, "batch_size": batch, "lr": lr, "seed": seed,
            "target_accuracy": 0.97, "time_to_target": None, "train_time": last["time"],
            "steps": last["step"], "examples": last["examples"], "epochs": last["epoch"],
            "mean_step_time": last["time"] / last["step"], "best_test_acc": max(
                p["test_acc"] for p in curve),
            "epoch_rows": [], "curve": curve, **extra}


def test_time_to_target_is_the_first_crossing_not_the_best_point():
    curve = [point(10, 0.90, 1.0), point(20, 0.971, 2.0), point(30, 0.965, 3.0),
             point(40, 0.99, 4.0)]
    hit = time_to_target(curve, 0.97)
    assert hit == {"time": 2.0, "step": 20, "examples": 1280, "epoch": 20 * 64 / 6000,
                   "reached": True, "resolution": 10}
    assert time_to_target(pd.DataFrame(curve), 0.98)["time"] == 4.0  # DataFrames too
    assert time_to_target(curve, 0.97)["time"] < time_to_target(curve, 0.99)["time"]


def test_time_to_target_unreached_is_censored_at_inf():
    hit = time_to_target([point(10, 0.90, 1.0), point(20, 0.95, 2.0)], 0.97)
    assert hit["reached"] is False
    assert all(hit[k] == INF for k in ("time", "step", "examples", "epoch", "resolution"))
    assert time_to_target([], 0.5)["reached"] is False


def test_time_to_target_diverged_curve_is_unreached():
    # The accuracy after a nan loss is meaningless, even if it reads above the target.
    curve = [point(10, 0.90, 1.0), point(20, 0.10, 2.0, loss=math.nan), point(30, 0.98, 3.0)]
    assert time_to_target(curve, 0.97)["reached"] is False
    assert time_to_target(curve, 0.85)["time"] == 1.0  # reached before it diverged


# --- tables -------------------------------------------------------------------------------------


def test_cells_table_keeps_scalars_and_prices_a_whole_epoch():
    curve = [point(50, 0.96, 1.0, examples=3200, epoch=3200 / 6000)]
    results = [run(64, 1.0, 0, curve, outcome="not_reached", loader="tensor", model=object())]
    cells = cells_table(results)
    assert len(cells) == 1
    assert {"curve", "epoch_rows", "model"}.isdisjoint(cells.columns)
    assert cells.loc[0, "loader"] == "tensor"
    assert cells.loc[0, "time_to_target"] == INF  # None -> censored
    # stopped mid-epoch after 50 steps; a full epoch of 6000 at batch 64 is ceil(93.75) = 94 steps
    assert cells.loc[0, "seconds_per_epoch"] == pytest.approx(1.0 / 50 * 94)


def test_target_table_one_row_per_run_and_target():
    fast = run(64, 1.0, 0, [point(10, 0.95, 1.0), point(20, 0.975, 2.0)], loader="tensor")
    bad = run(256, 10.0, 0, [point(5, 0.5, 0.5), point(10, 0.1, 1.0, loss=math.nan)],
              outcome="diverged", loader="tensor")
    t = target_table([fast, bad], [0.9, 0.97, 0.99])
    assert len(t) == 6
    for col in ("batch_size", "lr", "seed", "loader", "target", "time", "steps", "examples",
                "epochs", "reached", "outcome", "mean_step_time", "seconds_per_epoch"):
        assert col in t.columns
    fast_rows = t[t.batch_size == 64].set_index("target")
    assert list(fast_rows["time"]) == [1.0, 2.0, INF]
    assert list(fast_rows["outcome"]) == ["reached", "reached", "not_reached"]
    bad_rows = t[t.batch_size == 256]
    assert not bad_rows["reached"].any()
    assert set(bad_rows["outcome"]) == {"diverged"}
    assert (bad_rows["time"] == INF).all()


# --- lr policies --------------------------------------------------------------------------------






# --- quiet time, censored medians ---------------------------------------------------------------


def interval_curve(per_step: list[float], steps=10, batch=100, n_train=4000, target_at=None):
    """A run's curve with an evaluation every `steps` steps, the i-th interval at per_step[i]
    seconds a step; the accuracy crosses 0.97 at evaluation `target_at` (default: the last)."""
    points, time, step = [], 0.0, 0
    target_at = len(per_step) - 1 if target_at is None else target_at
    for i, s in enumerate(per_step):
        step, time = step + steps, time + steps * s
        points.append({"step": step, "examples": step * batch, "epoch": step * batch / n_train,
                       "time": time, "train_loss": 0.3, "test_loss": 0.3,
                       "test_acc": 0.98 if i >= target_at else 0.5})
    return points


def test_quiet_time_takes_the_runs_fastest_stretch_as_its_speed():
    # 10 ms a step, but a burst of load made intervals 2 and 3 three times slower
    curve = interval_curve([0.01, 0.01, 0.03, 0.03, 0.01, 0.01])
    hit = time_to_target(curve, 0.97)
    assert hit["time"] == pytest.approx(1.0)  # the clock pays for the burst ...
    own = analysis.run_seconds(curve, 20)
    assert analysis.quiet_time(own, hit) == pytest.approx(0.6)  # ... the quiet time does not


def test_a_runs_seconds_are_read_over_as_many_intervals_as_the_timing_has_rounds():
    # the timing took the fastest of 2 rounds: the run's own fastest of its first 2 intervals,
    # not of all 6 (a minimum over more readings reads lower, and longer runs have more)
    curve = interval_curve([0.03, 0.02, 0.03, 0.01, 0.01, 0.01])
    assert analysis.run_seconds(curve, 2) == pytest.approx(0.02)
    assert analysis.run_seconds(curve, 20) == pytest.approx(0.01)
    table = target_table([{"batch_size": 100, "lr": 1.0, "seed": 0, "outcome": "reached",
                           "curve": curve}], [0.97], samples=2)
    assert table["run_seconds"].tolist() == [pytest.approx(0.02)]
    assert table["quiet_time"].tolist() == [pytest.approx(60 * 0.02)]


def test_fine_intervals_are_not_read_for_a_runs_seconds_and_resolve_its_hit():
    # coarse intervals of 10 steps at 10 ms, then fine ones of 2 steps that read faster (a short
    # block's clock reads what a coarse block would not): the run's seconds come from the coarse
    # ones only; the hit, at a fine evaluation, is read to within its 2 steps
    curve = interval_curve([0.01] * 4, target_at=4)
    for _ in range(3):
        curve.append({**curve[-1], "step": curve[-1]["step"] + 2,
                      "time": curve[-1]["time"] + 2 * 0.005, "fine": True})
    curve[-1]["test_acc"], curve[3]["test_acc"] = 0.98, 0.96
    assert analysis.run_seconds(curve, 20) == pytest.approx(0.01)
    assert time_to_target(curve, 0.97)["step"] == 46
    assert time_to_target(curve, 0.97)["resolution"] == 2
    assert time_to_target(curve[:4], 0.95)["resolution"] == 10


def test_quiet_time_spreads_the_fastest_epoch_start_over_an_epochs_steps():
    # 4 intervals an epoch; the interval that starts an epoch (0, 4, 8) pays 50 ms more for its
    # shuffle, and the second one 100 ms (a burst): the fastest start, spread over an epoch's
    # 40 steps as steptime spreads its own
    per_step = [0.01, 0.01, 0.01, 0.01] * 3
    curve = interval_curve(per_step)
    for i, extra in ((0, 0.05), (4, 0.10), (8, 0.05)):
        for p in curve[i:]:
            p["time"] += extra
    hit = time_to_target(curve, 0.97)
    own = analysis.run_seconds(curve, 20)
    assert analysis.quiet_time(own, hit) == pytest.approx(120 * 0.01 + 3 * 0.05)
    assert own == pytest.approx(0.01 + 0.05 / 40)
    early = time_to_target(interval_curve(per_step, target_at=5), 0.97)  # hit in epoch 2
    assert early["step"] == 60 and analysis.quiet_time(own, early) == pytest.approx(
        60 * 0.01 + 1.5 * 0.05)


def test_quiet_time_of_an_unreached_run_is_censored():
    curve = interval_curve([0.01, 0.01], target_at=5)
    own = analysis.run_seconds(curve, 20)
    assert analysis.quiet_time(own, time_to_target(curve, 0.97)) == math.inf
    table = target_table([{"batch_size": 100, "lr": 1.0, "seed": 0, "outcome": "not_reached",
                           "curve": curve}], [0.97])
    assert table["quiet_time"].tolist() == [math.inf]


def test_censored_median_counts_a_censored_run_as_infinitely_slow():
    assert analysis.censored_median([1.0, 2.0, 9.0], [True, True, False]) == 2.0
    assert analysis.censored_median([1.0, 2.0], [True, False]) == math.inf  # half censored
    assert analysis.censored_median([5.0, math.nan], [True, False]) == math.inf
    assert math.isnan(analysis.censored_median([], []))


def test_module_is_pure():
    # No disk, tracking or plotting in analysis: only numbers in and out.
    source = open(analysis.__file__).read()
    for banned in ("mlflow", "matplotlib", "seaborn", "open(", "to_csv", "torch"):
        assert banned not in source
