"""From training results to tables: time to target per run, read off its curve, and its quiet
time. Pure functions: dicts and DataFrames in, numbers and DataFrames out. A run that never
reached a target is censored: its time (and steps, examples, epochs) is inf, so it sorts last
and is never dropped, and a median over runs counts it (censored_median).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from sweetspot.answer.hit import first_hit

INF = math.inf
NESTED = ("curve", "epoch_rows", "test_predictions")  # per run, not a column: summarised here
HIT_KEYS = ("time_to_target", "steps_to_target", "examples_to_target", "epochs_to_target")
# What a run measured (rather than how it was configured): not an identifying column.
RUN_METRICS = frozenset({
    "outcome", "target_accuracy", *HIT_KEYS, "train_time", "eval_time", "steps", "examples",
    "epochs", "mean_step_time", "final_test_acc", "final_test_loss", "best_test_acc",
    "seconds_per_epoch",
})


def censored_median(values, reached) -> float:
    """The median over runs, each censored run (reached False) counted as inf: inf when half or
    more never reached the target, NaN when there are no runs."""
    values = np.where(np.asarray(reached, bool), np.asarray(values, float), INF)
    return float(np.median(values)) if len(values) else math.nan


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, bool, numbers.Number, np.generic))


# --- one row per run, one row per (run, target) ---------------------------------------------


def cells_table(results: list[dict]) -> pd.DataFrame:
    """One row per run: its scalar keys (non-scalars such as curve, epoch_rows, model dropped),
    censored *_to_target as inf, and seconds_per_epoch (s) = mean_step_time * steps per full epoch.
    """
    rows = []
    for result in results:
        row = {k: v for k, v in result.items() if k not in NESTED and _is_scalar(v)}
        for key in HIT_KEYS:  # None (not reached) -> inf, so censored sorts last everywhere
            if key in row and row[key] is None:
                row[key] = INF
        row["seconds_per_epoch"] = _seconds_per_epoch(row)
        rows.append(row)
    return pd.DataFrame(rows)


def _seconds_per_epoch(row: dict) -> float:
    # Per-epoch cost from the step time, so a run that stopped mid-epoch is still priced whole.
    try:
        n_train = round(row["examples"] / row["epochs"])
        return row["mean_step_time"] * math.ceil(n_train / row["batch_size"])
    except (KeyError, TypeError, ZeroDivisionError, ValueError, OverflowError):
        return math.nan


def time_to_target(curve: list[dict] | pd.DataFrame, target: float) -> dict:
    """first_hit's time (s, training clock), step, examples, epoch, and reached=True, with its
    resolution (the steps since the evaluation before it: the hit lies within them); inf and
    False when there is none."""
    points = curve.to_dict("records") if isinstance(curve, pd.DataFrame) else curve
    p = first_hit(points, target)
    if p is None:
        return {"time": INF, "step": INF, "examples": INF, "epoch": INF, "reached": False,
                "resolution": INF}
    before = max((q["step"] for q in points if q["step"] < p["step"]), default=0)
    return {"time": float(p["time"]), "step": float(p["step"]), "examples": float(p["examples"]),
            "epoch": float(p["epoch"]), "reached": True, "resolution": float(p["step"] - before)}


def run_seconds(curve: list[dict] | pd.DataFrame, samples: int | None) -> float:
    """A run's own seconds per step, read as steptime reads the machine's (row_seconds over its
    fastest round): the fastest of its first `samples` coarse evaluation intervals that started
    no epoch, plus the fastest extra time of an interval that started one (its shuffle or new
    iterator) spread over an epoch's steps. Load only adds time, so neither minimum moves while
    one stretch of the run was quiet; `samples` (steptime's rounds) keeps the two minima over
    as many readings, so a long run's many intervals do not pull its own lower. NaN without
    `samples` (no seconds' rounds to match) or without steps."""
    curve = curve.to_dict("records") if isinstance(curve, pd.DataFrame) else curve
    if not samples or not curve or not curve[-1]["step"]:
        return math.nan
    n_train = round(curve[-1]["examples"] / curve[-1]["epoch"])
    plain, starting = [], []  # (steps, seconds) of each interval between evaluations
    before = {"step": 0, "time": 0.0, "examples": 0}
    for p in curve:  # a fine interval (train.fine_every_examples) is shorter than steptime's
        steps, seconds = p["step"] - before["step"], p["time"] - before["time"]
        if steps > 0 and not p.get("fine"):
            (starting if before["examples"] % n_train == 0 else plain).append((steps, seconds))
        before = p
    rate = min(t / n for n, t in (plain or starting)[:samples])
    start = min((max(t - rate * n, 0.0) for n, t in starting), default=0.0) if plain else 0.0
    steps_per_epoch = curve[-1]["step"] / curve[-1]["epoch"]
    return rate + start / steps_per_epoch


def quiet_time(seconds_per_step: float, hit: dict) -> float:
    """A run's time to its target, robust to load as the estimate is: its steps to the target x
    its own seconds per step (run_seconds). `hit`: time_to_target's answer; inf when not
    reached."""
    return seconds_per_step * hit["step"] if hit["reached"] else INF


def target_table(results: list[dict], targets: list[float],
                 samples: int | None = None) -> pd.DataFrame:
    """One row per (run, target), read off each run's curve. Columns: the run's identifying
    columns (batch_size, lr, seed and any other configuration scalars such as loader), target,
    time (s), steps, examples, epochs (to target; inf if censored), reached, resolution (steps
    since the evaluation before the hit), outcome (this target:
    reached | diverged | not_reached), run_outcome, run_target (the run's own stopping target: a
    higher target is censored by design), mean_step_time (s), seconds_per_epoch (s), best_test_acc,
    run_seconds (s, the run's own seconds per step over its first `samples` intervals: the
    rounds of the seconds it stands beside, fastest.rounds; NaN without) and quiet_time (s, its
    time to target at those seconds).
    """
    cells = cells_table(results)
    id_cols = [c for c in cells.columns if c not in RUN_METRICS]
    rows = []
    for result, (_, cell) in zip(results, cells.iterrows(), strict=True):
        curve = result.get("curve") or []
        own = run_seconds(curve, samples)  # the run's, whatever the target
        for target in targets:
            hit = time_to_target(curve, target)
            run_outcome = cell.get("outcome")
            if hit["reached"]:
                outcome = "reached"
            else:
                outcome = "diverged" if run_outcome == "diverged" else "not_reached"
            rows.append({
                **{c: cell[c] for c in id_cols},
                "target": float(target), "time": hit["time"], "steps": hit["step"],
                "examples": hit["examples"], "epochs": hit["epoch"], "reached": hit["reached"],
                "resolution": hit["resolution"],
                "outcome": outcome, "run_outcome": run_outcome,
                "run_target": cell.get("target_accuracy", math.nan),
                "mean_step_time": cell.get("mean_step_time", math.nan),
                "seconds_per_epoch": cell["seconds_per_epoch"],
                "best_test_acc": cell.get("best_test_acc", math.nan),
                "run_seconds": own, "quiet_time": quiet_time(own, hit),
            })
    return pd.DataFrame(rows)
