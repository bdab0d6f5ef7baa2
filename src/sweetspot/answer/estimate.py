"""Time to target from its two factors: steps to target (the problem's, from the sweep's runs) times
seconds per step (the machine's, from `steptime`), with an interval and each batch size's share of
wins from resampling both. Pure: tables and arrays in, numbers and tables out.

Steps to target at a fixed batch size do not depend on the machine, and the seconds per step at a
fixed batch size do not depend on the learning rate, so each batch size's rate is the one with
the smallest median steps (Shallue et al. 2018), and only the steps need seeds. A run that never
reached the target is censored: inf steps, so a rate most of whose seeds missed loses, and a batch
size with no reaching rate is never the answer.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sweetspot.answer import analysis, fastest
from sweetspot.answer.analysis import INF
from sweetspot.answer.fastest import machine_seconds

STEPS_COLUMNS = ["dataset", "network", "optimizer", "loader", "batch_size", "lr", "target", "seed",
                 "steps", "examples", "epochs", "censored", "outcome"]
REGION_ALPHA = 0.05  # in the sweet region: at least as fast as the spot in >= 5% of resamples
REGION_TOLERANCE = 0.05  # ... or an estimate within 5% of the spot's
REGION_RULE = (f"at least as fast as the spot in {REGION_ALPHA:.0%} or more of the paired "
               f"resamples (the data cannot tell it slower), or an estimate within "
               f"{REGION_TOLERANCE:.0%} of the spot's (closer than seeds and load move a time "
               "here)")
ESTIMATE_COLUMNS = ["seconds_per_step", "estimate", "low", "high", "share"]
ERROR_GOAL = 0.15  # validate: the median absolute error a prediction is held to


def steps_table(results: list[dict], targets: list[float], *, dataset: str = "",
                network: str = "", optimizer: str = "") -> pd.DataFrame:
    """One row per (run, target): steps, examples and epochs to the target, blank (NaN) when the
    run was censored (outcome not_reached or diverged), and the resolution they were read at (the
    steps since the evaluation before the hit). The table a machine does not change."""
    t = analysis.target_table(results, targets)
    if t.empty:
        return pd.DataFrame(columns=STEPS_COLUMNS)
    censored = ~t["reached"].astype(bool)
    out = t.assign(dataset=dataset, network=network, optimizer=optimizer, censored=censored)
    if "loader" not in out:
        out["loader"] = "tensor"
    for key in ("steps", "examples", "epochs", "resolution"):
        out[key] = out[key].astype(float).where(~censored)
    return out[[*STEPS_COLUMNS, "resolution"]].sort_values(
        ["target", "batch_size", "lr", "seed", "loader"], ignore_index=True)


def _steps(rows: pd.DataFrame) -> np.ndarray:
    """Steps to target, inf where censored."""
    return np.where(rows["censored"].astype(bool), INF, rows["steps"].astype(float))


def _resolution(runs: pd.DataFrame) -> float:
    """The largest resolution of the reached runs (NaN: none, or a table from before it)."""
    reached = runs["resolution"].dropna() if "resolution" in runs else pd.Series(dtype=float)
    return float(reached.max()) if len(reached) else math.nan


def choose_by_steps(table: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per batch size, the rate with the smallest median steps to target over its runs (ties: the
    smaller rate). Columns: batch_size, lr, median_steps (inf: more than half censored), n_runs,
    n_reached, reached, steps (the chosen rate's steps, inf where censored), resolution (the
    largest of its reached runs' resolutions: every hit read to within it)."""
    at = table[np.isclose(table["target"].astype(float), target)]
    rows = []
    for b, per_batch in at.groupby("batch_size", sort=True):
        best = None
        for lr, runs in per_batch.groupby("lr", sort=True):
            steps = _steps(runs)
            median = analysis.censored_median(runs["steps"], ~runs["censored"].astype(bool))
            if best is None or median < best["median_steps"]:
                best = {"batch_size": int(b), "lr": float(lr), "median_steps": median,
                        "n_runs": len(steps), "n_reached": int(np.isfinite(steps).sum()),
                        "steps": steps, "resolution": _resolution(runs)}
        rows.append(best)
    chosen = pd.DataFrame(rows, columns=["batch_size", "lr", "median_steps", "n_runs",
                                         "n_reached", "steps", "resolution"])
    chosen["reached"] = np.isfinite(chosen["median_steps"].astype(float))
    return chosen


def point_estimate(table: pd.DataFrame, seconds: dict[int, list[float]],
                   target: float) -> pd.DataFrame:
    """choose_by_steps' table for the batch sizes with a step time, with seconds_per_step (the
    fastest round) and estimate (median steps x seconds per step): the point estimate, without
    resampling."""
    chosen = choose_by_steps(table, target)
    chosen = chosen[chosen["batch_size"].isin(list(seconds))].reset_index(drop=True)
    per_second = [machine_seconds(seconds[b]) for b in chosen["batch_size"]]
    return chosen.assign(seconds_per_step=np.asarray(per_second, float),
                         estimate=chosen["median_steps"].to_numpy(float) * per_second)


def picks(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The bootstrap's draws of n things (rounds, seeds) with replacement: [resample, n]
    indices. Every resample of the answer, the race and the claims draws through it."""
    return rng.integers(0, n, (resamples, n))


def resampled_medians(values, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The median of each resample of `values` (picks): [resample]."""
    values = np.asarray(values, float)
    return np.median(values[picks(len(values), resamples, rng)], axis=1)


def estimate(table: pd.DataFrame, seconds: dict[int, list[float]], target: float,
             resamples: int, seed: int = 0) -> dict:
    """Seconds to target per batch size = median steps x the machine's seconds per step (the
    minimum over timing rounds), with a 95% interval and the share of resamples each batch size
    wins. A resample draws each batch size's runs (at its chosen rate) with replacement, and the
    timing rounds with replacement, the same rounds for every batch size (a round is one load
    state for all of them), and takes the same estimators of both.

    `seconds`: {batch size: seconds per step in each round}, rounds aligned. Batch sizes without a
    step time are left out. Returns {"per_batch": DataFrame, "spot": dict}; per_batch has
    choose_by_steps' columns (its steps as steps_runs), seconds_per_step, estimate, low, high
    and share."""
    chosen = point_estimate(table, seconds, target)
    if chosen.empty:
        empty = chosen.rename(columns={"steps": "steps_runs"}).reindex(columns=[
            *chosen.columns.drop(["steps", "seconds_per_step", "estimate"]), "steps_runs",
            *ESTIMATE_COLUMNS])
        return {"per_batch": empty, "spot": {"batch_size": None, "target": target, "censored": [],
                                             "region": [],
                                             "reason": "no batch size with steps and a time"}}
    rng = np.random.default_rng(seed)
    rounds = np.array([seconds[b] for b in chosen["batch_size"]], float)  # [batch, round]
    boot_seconds = machine_seconds(rounds[:, picks(rounds.shape[1], resamples, rng)], axis=2)
    boot_steps = np.array([resampled_medians(s, resamples, rng)
                           for s in chosen["steps"]])  # [batch, resample]
    with np.errstate(invalid="ignore"):
        boot = boot_steps * boot_seconds
    boot[~chosen["reached"].to_numpy(bool)] = INF  # mostly censored: never a winner
    winners = np.where(np.isfinite(boot).any(axis=0), np.argmin(boot, axis=0), -1)
    per_batch = chosen.rename(columns={"steps": "steps_runs"}).assign(
        low=np.quantile(boot, 0.025, axis=1, method="inverted_cdf"),
        high=np.quantile(boot, 0.975, axis=1, method="inverted_cdf"),
        share=[float(np.mean(winners == i)) for i in range(len(chosen))])
    return {"per_batch": per_batch, "spot": sweet_spot(per_batch, boot, target)}


def sweet_spot(per_batch: pd.DataFrame, boot: np.ndarray, target: float) -> dict:
    """The sweet spot: the batch size that wins the most resamples (ties: the smaller estimate,
    then the smaller batch), so the spot and the shares never disagree. And the sweet region
    (REGION_RULE): every batch size the resamples cannot tell apart from the spot, or whose
    estimate is within REGION_TOLERANCE of it, each with its distance from the spot (estimate
    over the spot's, minus 1) and the share of paired resamples in which it was at least as fast.
    `boot`: [batch size, resample] seconds to target, rows in per_batch's order."""
    reached = per_batch[np.isfinite(per_batch["estimate"].astype(float))]
    censored = sorted(int(b) for b in per_batch.loc[~per_batch["reached"], "batch_size"])
    if reached.empty:
        return {"batch_size": None, "target": target, "censored": censored, "region": [],
                "reason": f"no batch size reached {target:g} at any rate"}
    i = reached.sort_values(["share", "estimate", "batch_size"],
                            ascending=[False, True, True]).index[0]
    best = per_batch.loc[i]
    region = []
    for j, row in reached.iterrows():
        as_fast = float(np.mean(boot[j] <= boot[i]))
        distance = float(row["estimate"] / best["estimate"] - 1)
        if j == i or as_fast >= REGION_ALPHA or distance <= REGION_TOLERANCE:
            region.append({"batch_size": int(row["batch_size"]), "distance": distance,
                           "as_fast": as_fast, "share": float(row["share"])})
    return {"batch_size": int(best["batch_size"]), "lr": float(best["lr"]), "target": target,
            "estimate": float(best["estimate"]), "low": float(best["low"]),
            "high": float(best["high"]), "share": float(best["share"]),
            "median_steps": float(best["median_steps"]),
            "resolution": None if math.isnan(best["resolution"]) else float(best["resolution"]),
            "seconds_per_step": float(best["seconds_per_step"]),
            "region": sorted(region, key=lambda r: r["batch_size"]), "censored": censored}


def beside_measured(per_batch: pd.DataFrame, results_table: pd.DataFrame,
                    target: float) -> pd.DataFrame:
    """The estimate beside each batch size's runs at the chosen rate (analysis.target_table):
    "measured", the median of each run's quiet time (its own seconds per step x its steps:
    robust to load as the estimate is), and "clock", the median of the training clock's
    reading; "ratio" = measured / estimate, the model's check. And the machine's factor alone,
    on an equal footing: "run_seconds", the median of the runs' own seconds per step (read as
    the estimate's, over as many intervals as it has rounds), and "step_ratio" = run_seconds /
    seconds_per_step. No runs (none trained on this data path): NaN in all."""
    found = {key: [math.nan] * len(per_batch) for key in ("measured", "clock", "run_seconds")}
    if len(results_table):
        at = results_table[np.isclose(results_table["target"].astype(float), target)]
        for i, row in enumerate(per_batch.itertuples()):
            runs = at[(at["batch_size"] == row.batch_size) & np.isclose(at["lr"], row.lr)]
            found["measured"][i] = analysis.censored_median(runs["quiet_time"], runs["reached"])
            found["clock"][i] = analysis.censored_median(runs["time"], runs["reached"])
            found["run_seconds"][i] = (float(runs["run_seconds"].median()) if len(runs)
                                       else math.nan)
    out = per_batch.assign(**found)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["ratio"] = out["measured"] / out["estimate"]
        out["step_ratio"] = out["run_seconds"] / out["seconds_per_step"]
    return out


def direct_spot(beside: pd.DataFrame) -> int | None:
    """The sweet spot by measured time alone (beside_measured's "measured"; ties: the smaller
    batch), to set beside the estimate's; None when no batch size's runs reached the target."""
    reached = beside[np.isfinite(beside["measured"].astype(float))]
    if reached.empty:
        return None
    return int(reached.sort_values(["measured", "batch_size"])["batch_size"].iloc[0])


def median_error(ratios: pd.Series) -> float:
    """How far an estimate is from the runs' own times: the median of |measured / estimate - 1|
    over the batch sizes measured both ways (inf when none is). The one formula of ERROR_GOAL,
    for the self-check and for validate."""
    ratios = ratios.replace([INF, -INF], np.nan).dropna()
    return float((ratios - 1).abs().median()) if len(ratios) else INF


def self_check(beside: pd.DataFrame, goal: float = ERROR_GOAL) -> dict | None:
    """The answer checks itself: over the batch sizes whose runs were timed where the seconds per
    step were measured (beside_measured on those runs), the median of measured / estimate, its
    range, and whether the estimate misses the runs by more than `goal` (median_error; the seconds
    are then not this machine's, or not its now). None when no batch size has both."""
    ratios = beside["ratio"].replace([INF, -INF], np.nan).dropna()
    if ratios.empty:
        return None
    error = median_error(ratios)
    return {"batch_sizes": len(ratios), "median": float(ratios.median()),
            "low": float(ratios.min()), "high": float(ratios.max()), "error": error,
            "goal": goal, "departs": error > goal}


def answers(results: list[dict], seconds: dict[int, list[float]], targets: list[float],
            resamples: int, runs: list[dict] | None = None) -> dict:
    """Per target: the estimated sweet spot and region ("spot") from the steps of `results` and
    one data path's `seconds`; per batch size the estimate beside the direct measurement of
    `runs` (those trained on that path; default: all of `results`) ("per_batch"); and the sweet
    spot by measured time alone ("direct", from each run's quiet time, as robust to load as the
    estimate; None without runs)."""
    steps = steps_table(results, targets)
    measured = analysis.target_table(results if runs is None else runs, targets,
                                     fastest.rounds(seconds))
    out = {}
    for target in targets:
        found = estimate(steps, seconds, target, resamples)
        per_batch = beside_measured(found["per_batch"], measured, target)
        out[target] = {**found["spot"], "per_batch": per_batch,
                       "direct": direct_spot(per_batch)}
    return out
