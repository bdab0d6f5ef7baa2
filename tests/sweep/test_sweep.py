"""sweep.py's plan on hand-made results, no training: rates per policy, the grid, refinement
around the coarse sweet region (steps x seconds per step), and the extra seeds at each batch size's
chosen rate (the smallest median steps)."""

import dataclasses
import math

import pytest

from conftest import tiny_params
from sweetspot.errors import ConfigError
from sweetspot.sweep import sweep
from sweetspot.sweep.sweep import Cell

# The plan tests' grid: four batch sizes, two rates (the tuned policy), one seed, one target.
GRID = {"batch_sizes": [32, 64, 128, 256], "lrs": [0.3, 1.0], "seeds": [0], "extra_seeds": [1, 2],
        "targets": [0.97], "lr_policy": "tuned"}


def params(**sweep_changes):
    return tiny_params(sweep={**GRID, **sweep_changes})


def result(batch, lr, hit=None, seed=0, loader="tensor", base_lr=None, diverged=False,
           target=0.97, steps=None):
    """A result dict as a training run writes it (n_train 6000). Its curve crosses `target` at
    `hit` seconds and step `steps` (default 100 * hit); hit=None never crosses (censored);
    diverged: the losses go nan at 0.1 s, after which the accuracy reads above the target but
    must not count."""
    def point(step, time, acc, loss=0.3):
        examples = step * batch
        return {"step": step, "examples": examples, "epoch": examples / 6000, "time": time,
                "train_loss": loss, "test_loss": loss, "test_acc": acc}

    if diverged:
        curve = [point(5, 0.05, 0.5), point(10, 0.1, 0.99, loss=math.nan)]
        outcome = "diverged"
    elif hit is None:
        curve = [point(50, 0.5, 0.90), point(100, 1.0, 0.95)]
        outcome = "not_reached"
    else:
        steps = round(100 * hit) if steps is None else steps
        curve = [point(steps // 2, hit / 2, 0.90), point(steps, hit, target + 0.005)]
        outcome = "reached"
    last = curve[-1]
    return {"batch_size": batch, "lr": lr, "seed": seed, "loader": loader, "outcome": outcome,
            "target_accuracy": target, "mean_step_time": last["time"] / last["step"],
            "best_test_acc": max(p["test_acc"] for p in curve), "steps": last["step"],
            "examples": last["examples"], "epochs": last["epoch"],
            "base_lr": lr if base_lr is None else base_lr, "curve": curve}


def coarse(times, lrs=(0.3, 1.0), loader="tensor", slower_lr=0.3):
    """Every (batch, lr) of a grid: `times` maps batch size -> seconds to target at lr 1.0 (None:
    censored); lr `slower_lr` takes twice as long."""
    return [result(b, lr, hit=None if t is None else (2 * t if lr == slower_lr else t),
                   loader=loader)
            for b, t in times.items() for lr in lrs]


def step_times(results, per_step=None, rounds=5):
    """{loader: {batch size: seconds per step in each round}} for every (loader, batch size) of
    `results`: 10 ms flat (so steps x seconds ranks as the curves' times do), or per_step[b]."""
    per_step = per_step or {}
    out = {}
    for r in results:
        b = r["batch_size"]
        out.setdefault(r["loader"], {})[b] = [per_step.get(b, 0.01)] * rounds
    return out


def cells(batch_sizes, lrs=(0.3, 1.0), seeds=(0,), loader="tensor"):
    return [Cell(b, lr, s, loader) for b in batch_sizes for lr in lrs for s in seeds]


# --- rates, cells, the grid ----------------------------------------------------------------------


def test_lr_for_batch_gives_each_policy_rate():
    assert sweep.lr_for_batch("fixed", 0.1, 256, 64) == 0.1
    assert sweep.lr_for_batch("tuned", 0.3, 256, 64) == 0.3
    assert sweep.lr_for_batch("linear", 0.1, 256, 64) == pytest.approx(0.4)
    assert sweep.lr_for_batch("linear", 0.1, 16, 64) == pytest.approx(0.025)
    assert sweep.lr_for_batch("sqrt", 0.1, 256, 64) == pytest.approx(0.2)
    assert sweep.lr_for_batch("sqrt", 0.1, 16, 64) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="unknown lr policy 'cubic'"):
        sweep.lr_for_batch("cubic", 0.1, 256, 64)


def test_cell_name_is_the_dvc_matrix_name():
    assert Cell(64, 1.0, 0, "tensor").name == "b64-lr1.0-s0-tensor"
    assert Cell(256, 0.3, 2, "torchvision").name == "b256-lr0.3-s2-torchvision"


def test_cell_params_runs_the_policy_rate_with_the_sweep_budget_and_highest_target():
    p = tiny_params(sweep={"lr_policy": "linear", "lrs": [0.1], "ref_batch": 64,
                           "targets": [0.8, 0.85], "max_epochs": 3},
                    train={"max_seconds": 7})  # a single run's clock budget: never a cell's
    got = sweep.cell_params(p, Cell(256, 0.1, 3, "torchvision"))
    assert got.train.lr == pytest.approx(0.4)
    expected = dataclasses.replace(p.train, batch_size=256, lr=got.train.lr, seed=3,
                                   loader="torchvision", target_accuracy=0.85, max_epochs=3,
                                   max_seconds=0.0, stop_at_target=True)
    assert got.train == expected  # everything else as params.yaml's train section says
    assert (got.data, got.sweep, got.bench) == (p.data, p.sweep, p.bench)


def test_cell_params_checks_the_cell_against_the_training_set():
    p = tiny_params()  # train_examples 6000
    with pytest.raises(ConfigError, match="train.batch_size: 8192 is larger than the training"):
        sweep.cell_params(p, Cell(8192, 1.0, 0, "tensor"))


def test_grid_is_every_batch_rate_seed_and_loader():
    p = params(seeds=[0, 1], extra_seeds=[2], loaders=["tensor", "torchvision"])
    g = sweep.grid(p, [32, 64])
    assert len(g) == len(set(g)) == 2 * 2 * 2 * 2
    assert g[:3] == [Cell(32, 0.3, 0, "tensor"), Cell(32, 0.3, 0, "torchvision"),
                     Cell(32, 0.3, 1, "tensor")]
    assert g[-1] == Cell(64, 1.0, 1, "torchvision")
    assert sweep.grid(p, []) == []


# --- refinement ----------------------------------------------------------------------------------


def test_refine_plan_trains_the_neighbours_of_the_sweet_spot_at_every_rate():
    results = coarse({32: 3.0, 64: 1.0, 128: 1.5, 256: 2.5})
    planned, plan = sweep.refine_plan(params(), results, step_times(results))
    assert planned == cells([48, 96])
    assert plan == {"target": 0.97, "coarse_near_best": {"tensor": [64]}, "enabled": True,
                    "batch_sizes": [48, 96]}


def test_refine_plan_refines_around_every_coarse_batch_size_near_the_best():
    # 128 is 20% slower than 64, inside REFINE_WINDOW; 256 is 150% slower. Refinement goes around
    # both 64 (48, 96) and 128 (96, 192), and a re-measurement that moves the seconds by a few
    # percent leaves the plan as it was.
    assert sweep.REFINE_WINDOW == 0.25
    results = coarse({32: 3.0, 64: 1.0, 128: 1.2, 256: 2.5})
    planned, plan = sweep.refine_plan(params(), results, step_times(results))
    assert plan["coarse_near_best"] == {"tensor": [64, 128]}
    assert planned == cells([48, 96, 192])
    again = sweep.refine_plan(params(), results,
                              step_times(results, per_step={64: 0.0104, 128: 0.0097}))
    assert again == (planned, plan)


def test_refine_plan_estimates_by_steps_times_seconds_per_step():
    # 64 takes the fewest steps (100 to 128's 150), but each of its steps costs 30 ms to 128's
    # 10 ms: 3.0 s against 1.5 s, so refinement goes around 128.
    results = coarse({32: 3.0, 64: 1.0, 128: 1.5, 256: 2.5})
    seconds = step_times(results, per_step={64: 0.03})
    planned, plan = sweep.refine_plan(params(), results, seconds)
    assert plan["coarse_near_best"] == {"tensor": [128]}
    assert planned == cells([96, 192])


def test_refine_plan_uses_every_seed_of_the_grid():
    results = coarse({32: 3.0, 64: 1.0, 128: 1.5, 256: 2.5})
    p = params(seeds=[0, 1], extra_seeds=[2])
    planned, _ = sweep.refine_plan(p, results, step_times(results))
    assert planned == cells([48, 96], seeds=(0, 1))


def test_refine_plan_skips_neighbours_already_tried():
    results = coarse({32: 3.0, 96: 1.0, 128: 1.5})  # best 96: 64 and 128, and 128 was tried
    p = params(batch_sizes=[32, 96, 128])
    planned, plan = sweep.refine_plan(p, results, step_times(results))
    # and the answer's procedure: its grid's best (128 of 16-256 for 6000 examples), then x3:
    # 96 (tried) and 192
    assert planned == cells([64, 192])
    assert plan["coarse_near_best"] == {"tensor": [96]} and plan["batch_sizes"] == [64, 192]


def test_refine_plan_refines_each_loader_around_its_own_sweet_spot():
    results = (coarse({32: 3.0, 64: 1.0, 128: 1.5, 256: 2.5}, loader="tensor")
               + coarse({32: 9.0, 64: 5.5, 128: 4.0, 256: 6.0}, loader="torchvision"))
    p = params(loaders=["tensor", "torchvision"])
    planned, plan = sweep.refine_plan(p, results, step_times(results))
    assert planned == cells([48, 96]) + cells([96, 192], loader="torchvision")
    assert plan["coarse_near_best"] == {"tensor": [64], "torchvision": [128]}
    assert plan["batch_sizes"] == [48, 96, 192]


def test_refine_plan_is_empty_when_refine_is_off():
    results = coarse({32: 3.0, 64: 1.0, 128: 1.5, 256: 2.5})
    planned, plan = sweep.refine_plan(params(refine=False), results, step_times(results))
    assert planned == []
    assert plan == {"target": 0.97, "coarse_near_best": {"tensor": [64]}, "enabled": False,
                    "batch_sizes": []}


def test_refine_plan_is_empty_when_nothing_reached_the_headline_target():
    results = coarse({32: None, 64: None, 128: None, 256: None})
    planned, plan = sweep.refine_plan(params(), results, step_times(results))
    assert planned == []
    assert plan["coarse_near_best"] == {"tensor": []} and plan["batch_sizes"] == []


def test_refine_plan_refines_around_the_headline_target_not_a_later_one():
    # 64 is fastest to 0.97; at the second target (0.99) nobody's curve gets there
    results = coarse({32: 3.0, 64: 1.0, 128: 1.5, 256: 2.5})
    p = params(targets=[0.97, 0.99])
    planned, plan = sweep.refine_plan(p, results, step_times(results))
    assert plan["target"] == 0.97 and plan["coarse_near_best"] == {"tensor": [64]}
    assert planned == cells([48, 96])


# --- more seeds ----------------------------------------------------------------------------------


def test_seeds_plan_gives_extra_seeds_at_each_reached_batch_size_chosen_rate():
    results = [result(32, 0.3, hit=2.0), result(32, 1.0, hit=3.0),  # 0.3: fewer steps at 32
               result(64, 0.3, hit=2.0), result(64, 1.0, hit=1.0),  # 1.0 at 64
               result(128, 0.3), result(128, 1.0),  # censored at both rates: no seeds
               result(256, 0.3, hit=4.0), result(256, 1.0, diverged=True)]  # never the nan row
    assert sweep.seeds_plan(params(), results) == [
        Cell(32, 0.3, 1, "tensor"), Cell(32, 0.3, 2, "tensor"),
        Cell(64, 1.0, 1, "tensor"), Cell(64, 1.0, 2, "tensor"),
        Cell(256, 0.3, 1, "tensor"), Cell(256, 0.3, 2, "tensor")]


def test_seeds_plan_chooses_by_median_steps_over_seeds():
    # lr 1.0 has the single fastest run at 64, but its median over three seeds takes more steps
    results = [result(64, 1.0, hit=t, seed=s) for s, t in enumerate([0.5, 3.0, 3.0])]
    results += [result(64, 0.3, hit=t, seed=s) for s, t in enumerate([2.0, 2.0, 2.0])]
    p = params(batch_sizes=[64], seeds=[0, 1, 2], extra_seeds=[3])
    assert sweep.seeds_plan(p, results) == [Cell(64, 0.3, 3, "tensor")]


def test_seeds_plan_chooses_by_steps_not_by_the_clock():
    # At 64, lr 1.0 needs 100 steps but its run's clock read 3 s (a burst of load); lr 0.3 needs
    # 200 steps in 2 s. Seconds per step do not depend on the rate: the fewer steps win.
    results = [result(64, 1.0, hit=3.0, steps=100), result(64, 0.3, hit=2.0, steps=200)]
    p = params(batch_sizes=[64], extra_seeds=[1])
    assert sweep.seeds_plan(p, results) == [Cell(64, 1.0, 1, "tensor")]


def test_seeds_plan_runs_the_base_rate_the_policy_scaled():
    # linear policy from 0.1 at batch 64: the cells ran 0.1 and 0.2; the seeds get the base 0.1
    p = params(lr_policy="linear", lrs=[0.1], ref_batch=64, batch_sizes=[64, 128])
    results = [result(64, 0.1, hit=2.0, base_lr=0.1), result(128, 0.2, hit=1.0, base_lr=0.1)]
    planned = sweep.seeds_plan(p, results)
    assert planned == [Cell(b, 0.1, s, "tensor") for b in (64, 128) for s in (1, 2)]
    assert sweep.cell_params(p, planned[-1]).train.lr == pytest.approx(0.2)


def test_seeds_plan_counts_only_the_headline_target():
    # targets [0.97, 0.99]: both curves cross 0.97 only, so both get seeds
    results = [result(64, 1.0, hit=1.0), result(128, 1.0, hit=2.0)]
    p = params(batch_sizes=[64, 128], lrs=[1.0], targets=[0.97, 0.99])
    assert [c.batch_size for c in sweep.seeds_plan(p, results)] == [64, 64, 128, 128]
    # and a run that only crossed a lower target does not count at 0.97
    low = [result(64, 1.0, hit=1.0, target=0.96)]
    assert sweep.seeds_plan(params(batch_sizes=[64], lrs=[1.0]), low) == []


def test_seeds_plan_per_loader():
    results = [result(64, 1.0, hit=1.0), result(64, 1.0, loader="torchvision"),
               result(128, 1.0, hit=2.0, loader="torchvision")]
    p = params(batch_sizes=[64, 128], lrs=[1.0], loaders=["tensor", "torchvision"],
               extra_seeds=[1])
    assert sweep.seeds_plan(p, results) == [Cell(64, 1.0, 1, "tensor"),
                                            Cell(128, 1.0, 1, "torchvision")]


def test_rates_plan_trains_the_chosen_rates_neighbours_where_the_region_could_be():
    # chosen: 0.3 at 32 (fewer steps), 1.0 at 64; 128 is not near the best, 256 never reached
    results = [result(32, 0.3, hit=2.0), result(32, 1.0, hit=3.0),
               result(64, 0.3, hit=2.0), result(64, 1.0, hit=1.0),
               result(128, 1.0, hit=1.0), result(256, 1.0)]
    p = params(batch_sizes=[32, 64, 128, 256], seeds=[0, 1], extra_seeds=[2], rate_ratio=1.732)
    near = {"tensor": [32, 64, 256]}
    assert sweep.rates_plan(p, results, near) == [
        Cell(32, 0.1732, 0, "tensor"), Cell(32, 0.1732, 1, "tensor"),
        Cell(32, 0.5196, 0, "tensor"), Cell(32, 0.5196, 1, "tensor"),
        Cell(64, 0.5774, 0, "tensor"), Cell(64, 0.5774, 1, "tensor"),
        Cell(64, 1.732, 0, "tensor"), Cell(64, 1.732, 1, "tensor")]
    # a neighbour already tried is not trained again (3.0 = 1.732 x 1.732, to 4 digits: 3.0)
    tried = results + [result(64, 1.732, hit=3.0), result(64, 0.5774, hit=3.0)]
    assert [c for c in sweep.rates_plan(p, tried, near) if c.batch_size == 64] == []
    # the policies that scale one rate tune none, and no refinement refines no rate
    assert sweep.rates_plan(params(lr_policy="linear", lrs=[1.0]), results, near) == []
    assert sweep.rates_plan(params(batch_sizes=[32, 64, 128, 256], refine=False), results,
                            near) == []


def test_near_best_is_the_coarse_batch_sizes_near_the_best_and_refinements_around_them():
    plan = {"coarse_near_best": {"tensor": [32, 64], "torchvision": [64]},
            "cells": [{"batch_size": 24, "loader": "tensor"},
                      {"batch_size": 48, "loader": "tensor"},
                      {"batch_size": 96, "loader": "torchvision"}]}
    assert sweep.near_best(plan) == {"tensor": [24, 32, 48, 64], "torchvision": [64, 96]}


def test_seeds_plan_is_empty_without_extra_seeds():
    results = [result(64, 1.0, hit=1.0)]
    assert sweep.seeds_plan(params(batch_sizes=[64], lrs=[1.0], extra_seeds=[]), results) == []


def test_the_grid_read_is_the_one_params_defines_now(tmp_path, monkeypatch):
    """A cell an earlier grid left on disk (here b128's) is not among the files the report and
    the plans read."""
    monkeypatch.chdir(tmp_path)
    params = tiny_params(sweep={"batch_sizes": [32, 64]})
    assert [p.name for p in sweep.grid_paths(params)] == [
        "b32-lr1.0-s0-tensor.json", "b64-lr1.0-s0-tensor.json"]
    assert all("b128" not in str(p) for p in sweep.all_paths(params))
