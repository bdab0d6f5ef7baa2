"""estimate.py on hand-made tables with a known answer: the steps table, the rate by median steps,
the estimate steps x seconds per step (the fastest timing round), its interval, each batch size's
share of wins, and the sweet spot and region."""

import math

import numpy as np
import pandas as pd
import pytest

from sweetspot.answer import analysis, estimate, fastest

INF = math.inf


def run(batch, lr, seed, steps=None, seconds=None, diverged=False):
    """A result as a training run writes it (n_train 6000): its curve crosses 0.97 at `steps`
    steps and `seconds` s (default steps x 10 ms); steps=None never crosses; diverged: the losses
    go nan at step 10, after which the accuracy reads above the target but must not count."""
    def point(step, time, acc, loss=0.3):
        return {"step": step, "examples": step * batch, "epoch": step * batch / 6000,
                "time": time, "train_loss": loss, "test_loss": loss, "test_acc": acc}

    if diverged:
        curve, outcome = [point(5, 0.05, 0.5), point(10, 0.1, 0.99, loss=math.nan)], "diverged"
    elif steps is None:
        curve, outcome = [point(50, 0.5, 0.90), point(100, 1.0, 0.95)], "not_reached"
    else:
        seconds = steps * 0.01 if seconds is None else seconds
        curve = [point(steps / 2, seconds / 2, 0.90), point(steps, seconds, 0.975)]
        outcome = "reached"
    last = curve[-1]
    return {"batch_size": batch, "lr": lr, "seed": seed, "loader": "tensor", "outcome": outcome,
            "target_accuracy": 0.97, "steps": last["step"], "examples": last["examples"],
            "epochs": last["epoch"], "mean_step_time": last["time"] / last["step"],
            "best_test_acc": max(p["test_acc"] for p in curve), "curve": curve}


def table(steps: dict, target=0.97) -> pd.DataFrame:
    """A steps table from {(batch size, lr): [steps per seed, None = censored]}."""
    rows = [{"dataset": "MNIST", "network": "mlp", "optimizer": "sgd", "loader": "tensor",
             "batch_size": b, "lr": lr, "target": target, "seed": seed,
             "steps": math.nan if s is None else float(s),
             "examples": math.nan if s is None else float(s * b),
             "epochs": math.nan if s is None else s * b / 6000, "censored": s is None,
             "outcome": "not_reached" if s is None else "reached"}
            for (b, lr), seeds in steps.items() for seed, s in enumerate(seeds)]
    return pd.DataFrame(rows, columns=estimate.STEPS_COLUMNS)


def flat(per_step: dict, rounds=5) -> dict:
    """Step times with no noise: {batch size: [seconds per step] * rounds}."""
    return {b: [s] * rounds for b, s in per_step.items()}


def row(found, batch):
    per_batch = found["per_batch"]
    return per_batch[per_batch["batch_size"] == batch].iloc[0]


# --- the steps table ----------------------------------------------------------------------------


def test_steps_table_blanks_censored_rows_and_names_the_problem():
    results = [run(32, 1.0, 0, steps=200), run(32, 1.0, 1), run(64, 1.0, 0, diverged=True)]
    t = estimate.steps_table(results, [0.97], dataset="MNIST", network="mlp", optimizer="sgd")
    assert list(t.columns) == [*estimate.STEPS_COLUMNS, "resolution"]
    assert (t["dataset"] == "MNIST").all() and (t["network"] == "mlp").all()
    assert (t["optimizer"] == "sgd").all() and (t["loader"] == "tensor").all()
    hit = t[(t["batch_size"] == 32) & (t["seed"] == 0)].iloc[0]
    assert (hit["steps"], hit["examples"], hit["epochs"]) == (200, 6400, 6400 / 6000)
    assert not hit["censored"] and hit["outcome"] == "reached"
    missed = t[t["censored"]]
    assert sorted(missed["outcome"]) == ["diverged", "not_reached"]  # the nan row never counts
    assert missed[["steps", "examples", "epochs"]].isna().all().all()


def test_steps_table_censors_a_run_at_a_target_it_did_not_reach():
    t = estimate.steps_table([run(32, 1.0, 0, steps=200)], [0.97, 0.98], dataset="MNIST",
                             network="mlp", optimizer="sgd")
    assert list(t["target"]) == [0.97, 0.98]
    assert list(t["censored"]) == [False, True]
    assert t["steps"].iloc[0] == 200 and math.isnan(t["steps"].iloc[1])


def test_steps_table_of_no_runs_has_the_columns():
    assert list(estimate.steps_table([], [0.97]).columns) == estimate.STEPS_COLUMNS


# --- the rate of each batch size ----------------------------------------------------------------


def test_choose_by_steps_takes_the_smallest_median_not_the_mean_or_the_best_seed():
    t = table({(64, 0.1): [50, 400, 400],    # the single best seed
               (64, 0.3): [200, 200, 200],   # the smallest mean (200 < 300)
               (64, 1.0): [100, 100, 700]})  # the smallest median
    chosen = estimate.choose_by_steps(t, 0.97)
    assert len(chosen) == 1
    got = chosen.iloc[0]
    assert got["lr"] == 1.0 and got["median_steps"] == 100
    assert (got["n_runs"], got["n_reached"], got["reached"]) == (3, 3, True)
    assert list(got["steps"]) == [100, 100, 700]


def test_choose_by_steps_a_mostly_censored_rate_loses():
    t = table({(64, 0.3): [300, 300, 300], (64, 1.0): [100, None, None],
               (128, 0.3): [300, 300, 300], (128, 1.0): [100, 100, None]})  # a minority: fine
    chosen = estimate.choose_by_steps(t, 0.97).set_index("batch_size")
    assert chosen.loc[64, "lr"] == 0.3 and chosen.loc[64, "median_steps"] == 300
    assert chosen.loc[128, "lr"] == 1.0 and chosen.loc[128, "median_steps"] == 100
    assert list(chosen.loc[128, "steps"]) == [100, 100, INF]


def test_choose_by_steps_breaks_ties_with_the_smaller_rate():
    t = table({(64, 1.0): [100, 120], (64, 0.3): [120, 100]})
    assert estimate.choose_by_steps(t, 0.97)["lr"].tolist() == [0.3]


def test_choose_by_steps_a_batch_size_with_no_reaching_rate_is_not_reached():
    t = table({(64, 1.0): [100, 100], (1024, 0.3): [None, None], (1024, 1.0): [500, None, None]})
    chosen = estimate.choose_by_steps(t, 0.97).set_index("batch_size")
    assert chosen.loc[64, "reached"] and not chosen.loc[1024, "reached"]
    assert chosen.loc[1024, "median_steps"] == INF


def test_choose_by_steps_reads_only_the_target_asked_for():
    t = pd.concat([table({(64, 1.0): [100]}, target=0.97), table({(64, 1.0): [None]}, 0.98)])
    assert estimate.choose_by_steps(t, 0.97)["reached"].tolist() == [True]
    assert estimate.choose_by_steps(t, 0.98)["reached"].tolist() == [False]


# --- the estimate, its interval and the shares --------------------------------------------------


def test_estimate_is_median_steps_times_the_fastest_timing_round():
    t = table({(32, 1.0): [140, 100, 120], (32, 0.3): [500, 500, 500],
               (64, 1.0): [80, 100, 90]})
    seconds = {32: [0.03, 0.01, 0.02], 64: [0.05, 0.04, 0.03]}
    found = estimate.estimate(t, seconds, 0.97, resamples=500)
    b32, b64 = row(found, 32), row(found, 64)
    assert (b32["lr"], b32["median_steps"], b32["seconds_per_step"]) == (1.0, 120, 0.01)
    assert b32["estimate"] == pytest.approx(120 * 0.01)
    assert b64["estimate"] == pytest.approx(90 * 0.03)
    for r in (b32, b64):
        assert r["low"] <= r["estimate"] <= r["high"]
    assert found["per_batch"]["share"].sum() == pytest.approx(1.0)
    spot = found["spot"]
    assert (spot["batch_size"], spot["lr"], spot["estimate"]) == (32, 1.0, b32["estimate"])
    assert (spot["low"], spot["high"], spot["share"]) == (b32["low"], b32["high"], b32["share"])
    assert spot["censored"] == []


def test_estimate_a_clear_winner_wins_every_resample_and_is_a_region_of_one():
    steps = [98, 100, 102, 101, 99]
    t = table({(32, 1.0): steps, (64, 1.0): steps, (128, 1.0): [s / 2 for s in steps]})
    seconds = {32: [0.0100, 0.0101, 0.0099, 0.0100, 0.0102],  # 1.0 s
               64: [0.0200, 0.0202, 0.0198, 0.0200, 0.0204],  # 2.0 s: the same steps, dearer
               128: [0.0400, 0.0404, 0.0396, 0.0400, 0.0408]}  # half the steps, 4x the time
    spot = estimate.estimate(t, seconds, 0.97, resamples=1000)["spot"]
    assert spot["batch_size"] == 32
    assert spot["share"] > 0.99 and [r["batch_size"] for r in spot["region"]] == [32]


def test_estimate_equal_true_times_split_the_shares_and_make_a_region_of_both():
    # 32: ~100 steps x 10 ms; 64: ~50 steps x 20 ms. The seeds scatter differently, so neither
    # is faster in every resample.
    t = table({(32, 1.0): [91, 97, 101, 104, 109], (64, 1.0): [46, 48.75, 50.25, 51.75, 54]})
    found = estimate.estimate(t, flat({32: 0.01, 64: 0.02}), 0.97, resamples=2000)
    spot = found["spot"]
    shares = dict(zip(found["per_batch"]["batch_size"], found["per_batch"]["share"],
                      strict=True))
    assert shares[32] > 0.2 and shares[64] > 0.2
    assert sum(shares.values()) == pytest.approx(1.0)
    assert spot["share"] == shares[spot["batch_size"]] == max(shares.values())  # no contradiction
    region = {r["batch_size"]: r for r in spot["region"]}
    assert set(region) == {32, 64}
    other = region[({32, 64} - {spot["batch_size"]}).pop()]
    assert other["as_fast"] >= estimate.REGION_ALPHA and other["share"] == shares[
        other["batch_size"]]
    assert region[spot["batch_size"]]["distance"] == 0.0
    assert other["distance"] == pytest.approx(
        row(found, other["batch_size"])["estimate"] / spot["estimate"] - 1)


def test_estimate_a_censored_batch_size_never_wins_however_cheap_its_steps():
    t = table({(32, 1.0): [100, 100, 100], (1024, 1.0): [None, None, None]})
    found = estimate.estimate(t, flat({32: 0.01, 1024: 0.0001}), 0.97, resamples=500)
    assert row(found, 1024)["share"] == 0 and row(found, 1024)["estimate"] == INF
    assert found["spot"]["batch_size"] == 32 and found["spot"]["share"] == 1.0
    assert found["spot"]["censored"] == [1024]


def test_estimate_a_mostly_censored_batch_size_never_wins():
    # 1024 reached once in three seeds: its median is censored, so it is not an answer, and a
    # runner-up the table calls "not reached" would contradict it.
    t = table({(32, 1.0): [100, 100, 100], (1024, 1.0): [10, None, None]})
    found = estimate.estimate(t, flat({32: 0.01, 1024: 0.0001}), 0.97, resamples=500)
    assert found["spot"]["batch_size"] == 32 and found["spot"]["censored"] == [1024]
    assert row(found, 1024)["share"] == 0
    assert [r["batch_size"] for r in found["spot"]["region"]] == [32]


def test_estimate_a_diverged_run_counts_as_censored():
    # 128's runs crossed the target only after their loss went nan: censored, never the answer.
    results = ([run(32, 1.0, s, steps=100) for s in range(3)]
               + [run(128, 1.0, s, diverged=True) for s in range(3)])
    t = estimate.steps_table(results, [0.97], dataset="MNIST", network="mlp", optimizer="sgd")
    found = estimate.estimate(t, flat({32: 0.01, 128: 0.001}), 0.97, resamples=200)
    assert found["spot"]["batch_size"] == 32 and found["spot"]["censored"] == [128]
    assert row(found, 128)["share"] == 0 and not row(found, 128)["reached"]


def test_estimate_when_nothing_reached_has_no_spot_and_says_why():
    t = table({(32, 1.0): [None, None], (64, 1.0): [None, None, None]})
    found = estimate.estimate(t, flat({32: 0.01, 64: 0.02}), 0.97, resamples=200)
    spot = found["spot"]
    assert spot["batch_size"] is None and spot["censored"] == [32, 64]
    assert spot["reason"] == "no batch size reached 0.97 at any rate"
    assert (found["per_batch"]["share"] == 0).all()


def test_estimate_leaves_out_batch_sizes_without_step_times():
    t = table({(32, 1.0): [200], (64, 1.0): [100]})  # 64 would win, but it was not timed
    found = estimate.estimate(t, flat({32: 0.01, 4096: 0.5}), 0.97, resamples=200)
    assert found["per_batch"]["batch_size"].tolist() == [32]
    assert found["spot"]["batch_size"] == 32
    none = estimate.estimate(t, flat({4096: 0.5}), 0.97, resamples=200)["spot"]
    assert none["batch_size"] is None and none["reason"] == "no batch size with steps and a time"


def test_estimate_is_the_same_twice_for_a_fixed_seed():
    t = table({(32, 1.0): [91, 97, 101, 104, 109], (64, 1.0): [46, 48.75, 50.25, 51.75, 54]})
    seconds = {32: [0.010, 0.012, 0.011, 0.015], 64: [0.020, 0.021, 0.025, 0.019]}
    first = estimate.estimate(t, seconds, 0.97, resamples=300, seed=7)
    again = estimate.estimate(t, seconds, 0.97, resamples=300, seed=7)
    pd.testing.assert_frame_equal(first["per_batch"], again["per_batch"])
    assert first["spot"] == again["spot"]


def test_estimate_resamples_the_timing_rounds_jointly_across_batch_sizes():
    # Rounds 1, 2 and 4 caught a burst of load that made every batch size 5x slower. 32 is 10%
    # cheaper than 64 in every round, so it wins every resample that draws the same rounds for
    # both, and 64 is no tie: 10% slower in every paired resample.
    base = np.array([1.0, 5.0, 5.0, 1.0, 5.0, 1.0, 1.0])
    seconds = {32: list(0.010 * base), 64: list(0.011 * base)}
    t = table({(32, 1.0): [100] * 5, (64, 1.0): [100] * 5})
    found = estimate.estimate(t, seconds, 0.97, resamples=2000)
    assert found["spot"]["batch_size"] == 32
    assert found["spot"]["share"] == 1.0
    assert [r["batch_size"] for r in found["spot"]["region"]] == [32]
    # the bursts move neither the estimate nor its interval: a resample holds a quiet round
    assert row(found, 32)["low"] == row(found, 32)["estimate"] == pytest.approx(1.0)
    assert row(found, 32)["high"] == pytest.approx(1.0)


@pytest.mark.parametrize("loaded", [0, 1, 2, 3, 6])
def test_bimodal_rounds_give_the_quiet_state_in_any_proportion(loaded):
    # The committed measurement that started this: ~280 us in quiet rounds, ~800 us in loaded
    # ones, the loaded ones anywhere among the seven.
    rng = np.random.default_rng(loaded)
    quiet = list(280e-6 * (1 + 0.02 * rng.random(7 - loaded)))
    rounds = quiet + list(800e-6 * (1 + 0.1 * rng.random(loaded)))
    for order in (rounds, rounds[::-1], list(rng.permutation(rounds))):
        assert fastest.machine_seconds(order) == min(quiet)
        t = table({(32, 1.0): [100, 100, 100]})
        assert row(estimate.estimate(t, {32: order}, 0.97, resamples=200), 32)[
            "seconds_per_step"] == min(quiet)


def test_a_difference_within_the_tolerance_is_a_tie_even_without_noise():
    # No noise at all: 64 is slower in every resample, yet 3% is inside REGION_TOLERANCE and 12%
    # is not.
    t = table({(32, 1.0): [100] * 3, (64, 1.0): [103] * 3, (128, 1.0): [112] * 3})
    spot = estimate.estimate(t, flat({32: 0.01, 64: 0.01, 128: 0.01}), 0.97,
                             resamples=300)["spot"]
    region = {r["batch_size"]: r for r in spot["region"]}
    assert spot["batch_size"] == 32 and set(region) == {32, 64}
    assert region[64]["as_fast"] == 0.0 and region[64]["distance"] == pytest.approx(0.03)


# --- beside the direct measurement --------------------------------------------------------------


def test_beside_measured_is_the_median_at_the_chosen_rate_and_its_ratio():
    results = [run(32, 1.0, s, steps=100, seconds=t) for s, t in enumerate([1.1, 1.3, 1.2])]
    results += [run(32, 0.3, s, steps=200, seconds=0.5) for s in range(3)]  # not the chosen rate
    results += [run(64, 1.0, 0, steps=60, seconds=0.9), run(64, 1.0, 1), run(64, 1.0, 2)]
    steps = estimate.steps_table(results, [0.97], dataset="MNIST", network="mlp", optimizer="sgd")
    found = estimate.estimate(steps, flat({32: 0.01, 64: 0.015}), 0.97, resamples=200)
    out = estimate.beside_measured(found["per_batch"],
                                   analysis.target_table(results, [0.97], samples=20), 0.97)
    b32 = out[out["batch_size"] == 32].iloc[0]
    assert b32["lr"] == 1.0 and b32["estimate"] == pytest.approx(1.0)
    assert b32["measured"] == pytest.approx(1.2)  # uniform runs: the quiet time is the clock's
    assert b32["clock"] == pytest.approx(1.2)
    assert b32["ratio"] == pytest.approx(1.2)
    b64 = out[out["batch_size"] == 64].iloc[0]
    assert b64["measured"] == INF  # two of its three runs censored


def beside(ratios: list[float]) -> pd.DataFrame:
    """beside_measured's columns as far as self_check reads them: one row per batch size."""
    return pd.DataFrame({"batch_size": [16, 32, 64, 128][: len(ratios)], "ratio": ratios})


def test_self_check_a_quarter_off_departs_and_five_percent_does_not():
    off = estimate.self_check(beside([0.74, 0.77, 0.80]))
    assert off["median"] == pytest.approx(0.77) and off["departs"] is True
    assert (off["low"], off["high"], off["batch_sizes"]) == (0.74, 0.80, 3)
    assert estimate.self_check(beside([1.25, 1.25]))["departs"] is True
    near = estimate.self_check(beside([1.05, 0.95, 1.04]))
    assert near["departs"] is False and near["goal"] == estimate.ERROR_GOAL
    # a median ratio of 1 is no alibi: each batch size 20% off is 20% off
    spread = estimate.self_check(beside([0.8, 1.0, 1.2, 1.2]))
    assert spread["median"] == pytest.approx(1.1) and spread["error"] == pytest.approx(0.2)
    assert spread["departs"] is True


def test_self_check_reads_only_batch_sizes_measured_both_ways():
    # a censored batch size (measured inf) and one with no runs here (NaN) say nothing
    found = estimate.self_check(beside([math.inf, math.nan, 1.3]))
    assert found["batch_sizes"] == 1 and found["median"] == pytest.approx(1.3)
    assert estimate.self_check(beside([math.nan, math.inf])) is None
