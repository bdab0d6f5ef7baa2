"""Check a prediction on a stack the sweep did not use: `sweetspot validate --threads 1`.

Predicts the sweet spot for the stack asked for (as `sweetspot predict` does: the steps table and
a step-time measurement taken now), then measures for real: a reduced sweep of the predicted spot
and its neighbours among the table's batch sizes, each at the table's rate, with every seed of
sweep.seeds and sweep.extra_seeds, every run a tracked training run, each run's time taken as
its quiet time (analysis.quiet_time: as robust to load as the prediction's seconds). Writes
reports/validation/validate-<dataset>-<network>-<stack>.json, with the MD5 of the steps table it
predicted from (the report draws this problem's, and says which came from an older table), and
prints the comparison.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from sweetspot import paths
from sweetspot.answer import analysis, fastest
from sweetspot.answer.estimate import ERROR_GOAL, beside_measured, direct_spot, median_error
from sweetspot.check import predict
from sweetspot.config import Params
from sweetspot.data.load import resolve_device
from sweetspot.errors import ConfigError
from sweetspot.sweep import sweep
from sweetspot.train.networks import network_slug


def neighbours(spot: int, tried: list[int]) -> list[int]:
    """The spot and the batch sizes next to it in the sorted list of those tried."""
    tried = sorted(tried)
    i = tried.index(spot)
    return tried[max(i - 1, 0): i + 2]


def goal(beside: pd.DataFrame, spot: int, grid: list[int]) -> dict:
    """The prediction held to its goal: `beside` is estimate.beside_measured's table (each batch
    size's predicted "estimate" and "measured" median over its seeds, inf when most were
    censored; "ratio" the one over the other). The measured spot (estimate.direct_spot), the
    median absolute error of the predictions (estimate.median_error), and whether the goal is
    met (measured spot = predicted or a grid neighbour, error at most ERROR_GOAL). Pure."""
    rows = beside.drop(columns=["clock", "ratio"], errors="ignore").to_dict("records")
    measured_spot = direct_spot(beside)
    error = median_error(beside["ratio"])
    near = measured_spot in neighbours(spot, grid)
    return {"per_batch": rows, "predicted_spot": spot, "measured_spot": measured_spot,
            "median_abs_error": error, "spot_near": near,
            "goal_met": bool(near and error <= ERROR_GOAL)}


def train_runs(params: Params, plan: dict[int, float], seeds: list[int]) -> list[dict]:
    """A real training run per (batch size, seed) at the planned rate, each as a sweep cell at a
    fixed rate (the table's rate is the rate its runs ran), on params.train's stack."""
    from sweetspot.train import run

    fixed = dataclasses.replace(params, sweep=dataclasses.replace(params.sweep, lr_policy="fixed"))
    return [run.tracked(sweep.cell_params(fixed, sweep.Cell(b, lr, seed, params.train.loader)),
                        extra={"validate": "reduced sweep"})
            for b, lr in plan.items() for seed in seeds]


def document(result: dict, steps_md5: str, target: float, plan: dict[int, float],
             seeds: list[int], check: dict, runs: list[dict], measured: pd.DataFrame) -> dict:
    """What reports/validation/ keeps of one stack's check: the prediction (`result`, from
    predict.run) with the MD5 of the steps table it came from, the batch sizes and seeds of the
    reduced sweep, the goal (`check`), and each run with its quiet time and its clock (`measured`,
    analysis.target_table's rows of `runs` at the target). Pure."""
    return {"stack": result["stack"], "target": target, "batch_sizes": list(plan), "seeds": seeds,
            "predict_run_id": result["run_id"], "steptime_seconds": result["steptime"]["seconds"],
            paths.STEPS_MD5: steps_md5,
            **check, "runs": [{"batch_size": r["batch_size"], "seed": r["seed"], "lr": r["lr"],
                               "time": quiet, "clock": clock, "run_id": r["run_id"]}
                              for r, quiet, clock in zip(runs, measured["quiet_time"],
                                                         measured["time"], strict=True)]}


def main(params: Params, steps: str | None) -> int:
    table, table_md5 = predict.load_steps(steps)  # the MD5 as read, not as it may be later
    predict.check_problem(table, params)
    resolve_device(params.train.device)
    target = params.sweep.targets[0]
    if not np.isclose(table["target"], target).any():
        raise ConfigError(f"--steps: the table has no target {target:g} (sweep.targets[0])")
    result = predict.run(params, table)
    found = result["prediction"][f"{target:g}"]
    spot = found["spot"]["batch_size"]
    if spot is None:
        print(f"validate: nothing to validate: {found['spot']['reason']}")
        return 1
    grid = sorted(int(b) for b in table["batch_size"].unique())
    rate = {r["batch_size"]: r["lr"] for r in found["per_batch"]}
    plan = {b: rate[b] for b in neighbours(spot, grid)}
    seeds = [*params.sweep.seeds, *params.sweep.extra_seeds]
    runs = train_runs(params, plan, seeds)
    measured_table = analysis.target_table(
        runs, [target], fastest.rounds(fastest.round_seconds(result["steptime"])))
    predicted = pd.DataFrame([r for r in found["per_batch"] if r["batch_size"] in plan])
    check = goal(beside_measured(predicted, measured_table, target), spot, grid)
    doc = document(result, table_md5, target, plan, seeds, check, runs, measured_table)
    out = paths.validate_file(params.data.dataset, network_slug(params.train), result["stack"])
    paths.write_json(out, doc)
    print(f"validate {result['stack']}: predicted spot {spot}, measured {check['measured_spot']}"
          f"; median absolute error {check['median_abs_error']:.0%}; goal "
          f"{'met' if check['goal_met'] else 'not met'}; wrote {out}")
    return 0
