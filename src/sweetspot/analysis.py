"""From training results to an answer: time to target per run, the best lr per batch size, the
sweet spot and its stability across seeds. Pure functions: dicts and DataFrames in, numbers and
DataFrames out. A run that never reached a target is censored: its time (and steps, examples,
epochs) is inf, so it sorts last and is never dropped.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

INF = math.inf
NESTED = ("curve", "epoch_rows")  # per-run lists: summarised here, never columns
HIT_KEYS = ("time_to_target", "steps_to_target", "examples_to_target", "epochs_to_target")
# What a run measured (rather than how it was configured): not an identifying column.
RUN_METRICS = frozenset({
    "outcome", "target_accuracy", *HIT_KEYS, "train_time", "eval_time", "steps", "examples",
    "epochs", "mean_step_time", "final_test_acc", "final_test_loss", "best_test_acc",
    "seconds_per_epoch",
})


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
    """The first curve point with test_acc >= target (not the best point): its time (s, training
    clock), step, examples, epoch, and reached=True. Unreached or diverged first: inf and False.
    """
    points = curve.to_dict("records") if isinstance(curve, pd.DataFrame) else curve
    for p in points:
        losses = [p.get("train_loss", 0.0), p.get("test_loss", 0.0), p.get("test_acc", 0.0)]
        if not all(np.isfinite(float(x)) for x in losses):
            break  # diverged before reaching: nothing after a nan loss counts
        if p["test_acc"] >= target:
            return {"time": float(p["time"]), "step": float(p["step"]),
                    "examples": float(p["examples"]), "epoch": float(p["epoch"]), "reached": True}
    return {"time": INF, "step": INF, "examples": INF, "epoch": INF, "reached": False}


def quiet_time(curve: list[dict], hit: dict) -> float:
    """A run's time to its target, robust to load as steptime's seconds are: steps to target x
    the run's fastest seconds per step over an evaluation interval that started no epoch, plus,
    for each epoch begun before the hit, the fastest extra time of an interval that started one
    (its shuffle or new iterator). Load only adds time, so neither minimum moves while one
    stretch of the run was quiet. `hit`: time_to_target's answer; inf when not reached."""
    if not hit["reached"]:
        return INF
    curve = curve.to_dict("records") if isinstance(curve, pd.DataFrame) else curve
    n_train = round(curve[-1]["examples"] / curve[-1]["epoch"])
    plain, starting = [], []  # (steps, seconds) of each interval between evaluations
    before = {"step": 0, "time": 0.0, "examples": 0}
    for p in curve:
        steps, seconds = p["step"] - before["step"], p["time"] - before["time"]
        if steps > 0:
            (starting if before["examples"] % n_train == 0 else plain).append((steps, seconds))
        before = p
    rate = min(t / n for n, t in plain or starting)
    start = min((max(t - rate * n, 0.0) for n, t in starting), default=0.0) if plain else 0.0
    return rate * hit["step"] + start * math.ceil(hit["examples"] / n_train)


def target_table(results: list[dict], targets: list[float]) -> pd.DataFrame:
    """One row per (run, target), read off each run's curve. Columns: the run's identifying
    columns (batch_size, lr, seed and any other configuration scalars such as loader), target,
    time (s), steps, examples, epochs (to target; inf if censored), reached, outcome (this target:
    reached | diverged | not_reached), run_outcome, run_target (the run's own stopping target: a
    higher target is censored by design), mean_step_time (s), seconds_per_epoch (s), best_test_acc,
    quiet_time (s, the time to target from the run's quiet stretches: see quiet_time).
    """
    cells = cells_table(results)
    id_cols = [c for c in cells.columns if c not in RUN_METRICS]
    rows = []
    for result, (_, cell) in zip(results, cells.iterrows(), strict=True):
        for target in targets:
            curve = result.get("curve")
            hit = time_to_target([] if curve is None else curve, target)
            run_outcome = cell.get("outcome")
            if hit["reached"]:
                outcome = "reached"
            else:
                outcome = "diverged" if run_outcome == "diverged" else "not_reached"
            rows.append({
                **{c: cell[c] for c in id_cols},
                "target": float(target), "time": hit["time"], "steps": hit["step"],
                "examples": hit["examples"], "epochs": hit["epoch"], "reached": hit["reached"],
                "outcome": outcome, "run_outcome": run_outcome,
                "run_target": cell.get("target_accuracy", math.nan),
                "mean_step_time": cell.get("mean_step_time", math.nan),
                "seconds_per_epoch": cell["seconds_per_epoch"],
                "best_test_acc": cell.get("best_test_acc", math.nan),
                "quiet_time": quiet_time(curve, hit),
            })
    return pd.DataFrame(rows)


# --- best lr per batch size, the sweet spot, its stability ------------------------------------


def _at_target(table: pd.DataFrame, target: float) -> pd.DataFrame:
    """Rows at this target with an effective time: inf for censored or diverged rows."""
    t = table[np.isclose(table["target"], target)] if "target" in table else table
    t = t.copy()
    time = t["time"].astype(float).to_numpy()
    bad = ~np.isfinite(time)
    if "reached" in t:
        bad |= ~t["reached"].astype(bool).to_numpy()
    if "outcome" in t:
        bad |= (t["outcome"] == "diverged").to_numpy()
    t["_time"] = np.where(bad, INF, time)
    steps = t["steps"].astype(float).to_numpy() if "steps" in t else np.full(len(t), np.nan)
    t["_steps"] = np.where(bad, INF, steps)
    return t


def _spread(times: np.ndarray) -> float:
    # max - min over seeds (s); inf as soon as one seed is censored, 0 for a single seed.
    if np.isinf(times).any():
        return INF
    return float(times.max() - times.min())


def _median(values: pd.Series) -> float:
    values = values.astype(float).dropna()
    return float(np.median(values)) if len(values) else math.nan


def _group_keys(table: pd.DataFrame) -> list[str]:
    return ["batch_size", "loader"] if "loader" in table else ["batch_size"]


def choose_lr(table: pd.DataFrame, target: float) -> pd.DataFrame:
    """One row per batch size (and loader, if that column exists): the lr with the smallest median
    time over seeds (censored = inf, so an lr most of whose seeds missed loses), ties broken by
    median steps then the smaller lr. If no lr's median is finite: the lr with the highest median
    best_test_acc (else the smallest lr), reached=False. Columns: batch_size, [loader], lr,
    median_time (s), spread (s, max - min over seeds, inf if any seed censored), median_steps,
    n_seeds (runs), n_reached, reached, median_step_time (s), median_best_acc.
    """
    keys = _group_keys(table)
    t = _at_target(table, target)
    per_lr = []
    for key, g in t.groupby([*keys, "lr"], sort=True, dropna=False):
        times = g["_time"].to_numpy(float)
        per_lr.append({
            **dict(zip([*keys, "lr"], key, strict=True)),
            "median_time": float(np.median(times)),  # inf when more than half are censored
            "spread": _spread(times),
            "median_steps": float(np.median(g["_steps"].to_numpy(float))),
            "n_seeds": len(g),
            "n_reached": int(np.isfinite(times).sum()),
            "median_step_time": _median(g["mean_step_time"]) if "mean_step_time" in g else np.nan,
            "median_best_acc": _median(g["best_test_acc"]) if "best_test_acc" in g else np.nan,
        })
    columns = [*keys, "lr", "median_time", "spread", "median_steps", "n_seeds", "n_reached",
               "reached", "median_step_time", "median_best_acc"]
    if not per_lr:
        return pd.DataFrame(columns=columns)
    per_lr = pd.DataFrame(per_lr)
    per_lr["reached"] = np.isfinite(per_lr["median_time"])
    chosen = []
    for _, g in per_lr.groupby(keys, sort=True, dropna=False):
        if g["reached"].any():
            g = g.sort_values(["median_time", "median_steps", "lr"])
        elif g["median_best_acc"].notna().any():  # nothing reached: the lr that got closest
            g = g.sort_values(["median_best_acc", "lr"], ascending=[False, True])
        else:
            g = g.sort_values("lr")
        chosen.append(g.iloc[0])
    return pd.DataFrame(chosen)[columns].reset_index(drop=True).infer_objects()


def _ranked(choices: pd.DataFrame) -> pd.DataFrame:
    """Reached rows, fastest first: median time, then fewer median steps, then smaller batch."""
    reached = choices[choices["reached"].astype(bool)]
    return reached.sort_values(["median_time", "median_steps", "batch_size"])


def sweet_spot(table: pd.DataFrame, target: float, tolerance: float = 0.10) -> dict:
    """The batch size (at its best lr) with the smallest median time to target, and the runners-up
    within (1 + tolerance) x that time. With several loaders in the table the fastest (batch,
    loader) pair wins; filter to one loader first to compare batch sizes alone. Never raises:
    nothing reached gives {"batch_size": None, "reason": ...}.
    """
    choices = choose_lr(table, target)
    censored = sorted({int(b) for b in choices.loc[~choices["reached"].astype(bool), "batch_size"]})
    ranked = _ranked(choices)
    if ranked.empty:
        return {"batch_size": None, "reason": f"no run reached target {target}",
                "censored": censored}
    best = ranked.iloc[0]
    close = ranked.iloc[1:]
    close = close[close["median_time"] <= (1 + tolerance) * best["median_time"]]
    runners_up = list(dict.fromkeys(int(b) for b in close["batch_size"]
                                    if int(b) != int(best["batch_size"])))
    answer = {
        "batch_size": int(best["batch_size"]), "lr": float(best["lr"]),
        "median_time": float(best["median_time"]), "spread": float(best["spread"]),
        "median_steps": float(best["median_steps"]), "n_seeds": int(best["n_seeds"]),
        "runners_up": runners_up, "censored": censored, "target": float(target),
    }
    if "loader" in best:
        answer["loader"] = best["loader"]
    return answer


def stability(table: pd.DataFrame, target: float, lr_by_batch: pd.DataFrame) -> dict:
    """Per seed, the fastest batch size at each batch size's chosen lr (lr_by_batch: choose_lr's
    output, or any frame with batch_size and lr). Stable if every seed's fastest is the overall
    sweet spot (fastest by median over seeds) or its neighbour among the batch sizes tried.
    Returns {"per_seed": {seed: batch or None}, "stable": bool, "sweet_spot": batch or None}.
    """
    keys = [k for k in _group_keys(table) if k in lr_by_batch]
    t = _at_target(table, target).merge(lr_by_batch[[*keys, "lr"]], on=[*keys, "lr"])
    overall = t.groupby("batch_size")[["_time", "_steps"]].median().reset_index()
    overall = overall[np.isfinite(overall["_time"])].sort_values(["_time", "_steps", "batch_size"])
    sweet = int(overall["batch_size"].iloc[0]) if len(overall) else None
    tried = sorted(int(b) for b in t["batch_size"].unique())
    per_seed = {}
    for seed, g in t.groupby("seed", sort=True):
        g = g[np.isfinite(g["_time"])].sort_values(["_time", "_steps", "batch_size"])
        per_seed[int(seed)] = int(g["batch_size"].iloc[0]) if len(g) else None
    stable = sweet is not None and bool(per_seed) and all(
        b is not None and abs(tried.index(b) - tried.index(sweet)) <= 1
        for b in per_seed.values())
    return {"per_seed": per_seed, "stable": stable, "sweet_spot": sweet}
