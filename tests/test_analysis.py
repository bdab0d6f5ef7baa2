"""analysis.py on hand-made curves and tables, and its models on synthetic data with known truth."""

import math

import pandas as pd
import pytest

from sweetspot import analysis
from sweetspot.analysis import (
    cells_table,
    choose_lr,
    stability,
    sweet_spot,
    target_table,
    time_to_target,
)

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


def row(batch, lr, seed, time, steps=None, outcome=None, target=0.97, **extra):
    """One target_table row; inf time = censored."""
    reached = math.isfinite(time)
    return {"batch_size": batch, "lr": lr, "seed": seed, "target": target, "time": time,
            "steps": steps if steps is not None else (time * 100 if reached else INF),
            "reached": reached, "outcome": outcome or ("reached" if reached else "not_reached"),
            **extra}


def table(*rows):
    return pd.DataFrame(list(rows))


# --- time to target -----------------------------------------------------------------------------


def test_time_to_target_is_the_first_crossing_not_the_best_point():
    curve = [point(10, 0.90, 1.0), point(20, 0.971, 2.0), point(30, 0.965, 3.0),
             point(40, 0.99, 4.0)]
    hit = time_to_target(curve, 0.97)
    assert hit == {"time": 2.0, "step": 20, "examples": 1280, "epoch": 20 * 64 / 6000,
                   "reached": True}
    assert time_to_target(pd.DataFrame(curve), 0.98)["time"] == 4.0  # DataFrames too
    assert time_to_target(curve, 0.97)["time"] < time_to_target(curve, 0.99)["time"]


def test_time_to_target_unreached_is_censored_at_inf():
    hit = time_to_target([point(10, 0.90, 1.0), point(20, 0.95, 2.0)], 0.97)
    assert hit["reached"] is False
    assert all(hit[k] == INF for k in ("time", "step", "examples", "epoch"))
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






# --- choose_lr ----------------------------------------------------------------------------------


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
    assert analysis.quiet_time(curve, hit) == pytest.approx(0.6)  # ... the quiet time does not


def test_quiet_time_adds_the_fastest_epoch_start_per_epoch_begun():
    # 4 intervals an epoch; the interval that starts an epoch (0, 4, 8) pays 50 ms more for its
    # shuffle, and the second one 100 ms (a burst): the fastest start, once per epoch begun
    per_step = [0.01, 0.01, 0.01, 0.01] * 3
    curve = interval_curve(per_step)
    for i, extra in ((0, 0.05), (4, 0.10), (8, 0.05)):
        for p in curve[i:]:
            p["time"] += extra
    hit = time_to_target(curve, 0.97)
    assert analysis.quiet_time(curve, hit) == pytest.approx(120 * 0.01 + 3 * 0.05)
    early = time_to_target(interval_curve(per_step, target_at=5), 0.97)  # hit in epoch 2
    assert early["step"] == 60 and analysis.quiet_time(curve, early) == pytest.approx(
        60 * 0.01 + 2 * 0.05)


def test_quiet_time_of_an_unreached_run_is_censored():
    curve = interval_curve([0.01, 0.01], target_at=5)
    assert analysis.quiet_time(curve, time_to_target(curve, 0.97)) == math.inf
    table = target_table([{"batch_size": 100, "lr": 1.0, "seed": 0, "outcome": "not_reached",
                           "curve": curve}], [0.97])
    assert table["quiet_time"].tolist() == [math.inf]


def test_choose_lr_tuned_picks_the_best_lr_per_batch_size():
    t = table(
        # batch 64: lr 1.0 fastest by median (an outlier seed at lr 3.0 does not win it)
        row(64, 0.3, 0, 9.0), row(64, 0.3, 1, 10.0), row(64, 0.3, 2, 11.0),
        row(64, 1.0, 0, 5.0), row(64, 1.0, 1, 6.0), row(64, 1.0, 2, 20.0),
        row(64, 3.0, 0, 1.0), row(64, 3.0, 1, INF), row(64, 3.0, 2, INF),
        # batch 256: lr 10 diverges; lr 3.0 fastest
        row(256, 1.0, 0, 8.0), row(256, 1.0, 1, 8.0),
        row(256, 3.0, 0, 4.0), row(256, 3.0, 1, 4.5),
        row(256, 10.0, 0, INF, outcome="diverged"), row(256, 10.0, 1, INF, outcome="diverged"),
        # another target's rows are ignored
        row(64, 0.3, 0, 0.1, target=0.9),
    )
    chosen = choose_lr(t, 0.97).set_index("batch_size")
    assert list(chosen.index) == [64, 256]
    assert chosen.loc[64, "lr"] == 1.0
    assert chosen.loc[64, "median_time"] == 6.0
    assert chosen.loc[64, "spread"] == 15.0  # max - min over seeds
    assert chosen.loc[64, "n_seeds"] == 3 and chosen.loc[64, "n_reached"] == 3
    assert chosen.loc[256, "lr"] == 3.0
    assert chosen.loc[256, "median_time"] == pytest.approx(4.25)
    assert chosen["reached"].all()


def test_choose_lr_ties_and_nothing_reached():
    t = table(
        row(64, 1.0, 0, 5.0, steps=90), row(64, 3.0, 0, 5.0, steps=80),  # tie: fewer steps
        row(128, 1.0, 0, 5.0, steps=80), row(128, 3.0, 0, 5.0, steps=80),  # full tie: smaller lr
        row(512, 1.0, 0, INF, best_test_acc=0.95), row(512, 3.0, 0, INF, best_test_acc=0.96),
    )
    chosen = choose_lr(t, 0.97).set_index("batch_size")
    assert chosen.loc[64, "lr"] == 3.0
    assert chosen.loc[128, "lr"] == 1.0
    assert chosen.loc[512, "lr"] == 3.0  # the closest miss
    assert not chosen.loc[512, "reached"]
    assert chosen.loc[512, "median_time"] == INF and chosen.loc[512, "spread"] == INF


def test_choose_lr_groups_by_loader():
    t = table(row(64, 1.0, 0, 5.0, loader="tensor"), row(64, 3.0, 0, 9.0, loader="tensor"),
              row(64, 1.0, 0, 9.0, loader="torchvision"),
              row(64, 3.0, 0, 7.0, loader="torchvision"))
    chosen = choose_lr(t, 0.97).set_index("loader")
    assert chosen.loc["tensor", "lr"] == 1.0 and chosen.loc["torchvision", "lr"] == 3.0


# --- sweet spot ---------------------------------------------------------------------------------


def test_sweet_spot_median_over_seeds_runners_up_and_censored():
    t = table(
        row(32, 1.0, 0, 11.5), row(32, 1.0, 1, 11.6), row(32, 1.0, 2, 30.0),  # median 11.6
        row(64, 1.0, 0, 10.0), row(64, 1.0, 1, 11.0), row(64, 1.0, 2, 1.0),  # median 10
        row(128, 1.0, 0, 9.0), row(128, 1.0, 1, 12.0), row(128, 1.0, 2, 10.8),  # median 10.8
        row(256, 1.0, 0, 0.5), row(256, 1.0, 1, INF), row(256, 1.0, 2, INF),  # mostly censored
        row(512, 1.0, 0, 0.1, outcome="diverged"), row(512, 1.0, 1, INF, outcome="diverged"),
    )
    t.loc[t.outcome == "diverged", "reached"] = False
    answer = sweet_spot(t, 0.97)
    assert answer["batch_size"] == 64
    assert answer["median_time"] == 10.0 and answer["spread"] == 10.0
    assert answer["runners_up"] == [128]  # 10.8 within 10%; 32's 11.6 not
    assert answer["censored"] == [256, 512]
    assert sweet_spot(t, 0.97, tolerance=0.5)["runners_up"] == [128, 32]


def test_sweet_spot_never_chooses_a_diverged_or_unreached_row_even_with_a_time():
    # A hand-made or hand-edited row may carry a time; outcome and reached still win.
    t = table(row(64, 1.0, 0, 5.0), row(128, 1.0, 0, 0.1, outcome="diverged"),
              row(256, 1.0, 0, 0.2, reached=False))
    answer = sweet_spot(t, 0.97)
    assert answer["batch_size"] == 64
    assert answer["censored"] == [128, 256]


def test_sweet_spot_tie_in_time_broken_by_steps_then_smaller_batch():
    t = table(row(64, 1.0, 0, 5.0, steps=900), row(128, 1.0, 0, 5.0, steps=450))
    answer = sweet_spot(t, 0.97)
    assert answer["batch_size"] == 128 and answer["runners_up"] == [64]
    t = table(row(64, 1.0, 0, 5.0, steps=450), row(128, 1.0, 0, 5.0, steps=450))
    assert sweet_spot(t, 0.97)["batch_size"] == 64


def test_sweet_spot_nothing_reached_has_a_reason():
    t = table(row(64, 1.0, 0, INF), row(128, 1.0, 0, INF, outcome="diverged"))
    answer = sweet_spot(t, 0.97)
    assert answer["batch_size"] is None
    assert answer["reason"] == "no run reached target 0.97"
    assert sweet_spot(t, 0.5)["batch_size"] is None  # no rows at all at that target


def test_sweet_spot_from_results_end_to_end():
    results = [run(64, 1.0, 0, [point(10, 0.95, 1.0), point(20, 0.975, 2.0)]),
               run(256, 1.0, 0, [point(3, 0.96, 0.5), point(6, 0.98, 1.5)])]
    t = target_table(results, [0.95, 0.97])
    assert sweet_spot(t, 0.95)["batch_size"] == 256
    assert sweet_spot(t, 0.97)["batch_size"] == 256
    assert sweet_spot(t, 0.97)["median_time"] == 1.5


# --- refinement ---------------------------------------------------------------------------------




# --- stability ----------------------------------------------------------------------------------


def seeds_table(fastest_by_seed):
    """Batch 32..512 at lr 1; each seed's listed batch size is its fastest, others slower."""
    rows = []
    for seed, fastest in enumerate(fastest_by_seed):
        for batch in (32, 64, 128, 256, 512):
            base = {32: 14.0, 64: 11.0, 128: 10.0, 256: 12.0, 512: 16.0}[batch]
            rows.append(row(batch, 1.0, seed, 1.0 if batch == fastest else base))
        rows.append(row(128, 3.0, seed, 0.1))  # a faster lr that choose_lr did not pick
    return pd.DataFrame(rows)


def test_stability_stable_when_every_seed_is_the_sweet_spot_or_a_neighbour():
    t = seeds_table([128, 64, 256, 128, 128])
    lrs = pd.DataFrame({"batch_size": [32, 64, 128, 256, 512], "lr": [1.0] * 5})
    verdict = stability(t, 0.97, lrs)
    assert verdict["per_seed"] == {0: 128, 1: 64, 2: 256, 3: 128, 4: 128}
    assert verdict["sweet_spot"] == 128
    assert verdict["stable"] is True


def test_stability_unstable_when_a_seed_jumps_further():
    t = seeds_table([128, 512, 128])
    lrs = pd.DataFrame({"batch_size": [32, 64, 128, 256, 512], "lr": [1.0] * 5})
    verdict = stability(t, 0.97, lrs)
    assert verdict["per_seed"] == {0: 128, 1: 512, 2: 128}
    assert verdict["stable"] is False


def test_stability_with_choose_lr_output():
    t = table(row(64, 1.0, 0, 5.0), row(64, 1.0, 1, 6.0), row(128, 1.0, 0, 4.0),
              row(128, 1.0, 1, INF), row(256, 1.0, 0, 9.0), row(256, 1.0, 1, 9.0))
    verdict = stability(t, 0.97, choose_lr(t, 0.97))
    # seed 1 never reached at 128, so its fastest is 64: 128's median is inf, 64 is the spot
    assert verdict["sweet_spot"] == 64
    assert verdict["per_seed"] == {0: 128, 1: 64}
    assert verdict["stable"] is True


# --- cost model ---------------------------------------------------------------------------------













# --- gradient noise scale -----------------------------------------------------------------------








def test_module_is_pure():
    # No disk, tracking or plotting in analysis: only numbers in and out.
    source = open(analysis.__file__).read()
    for banned in ("mlflow", "matplotlib", "seaborn", "open(", "to_csv", "torch"):
        assert banned not in source
