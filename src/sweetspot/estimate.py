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

from sweetspot import analysis

INF = math.inf
STEPS_COLUMNS = ["dataset", "network", "optimizer", "loader", "batch_size", "lr", "target", "seed",
                 "steps", "examples", "epochs", "censored", "outcome"]
RUNNER_UP = 0.20  # a batch size winning more than this share of resamples is named
ESTIMATE_COLUMNS = ["seconds_per_step", "estimate", "low", "high", "share"]


def steps_table(results: list[dict], targets: list[float], dataset: str, network: str,
                optimizer: str) -> pd.DataFrame:
    """One row per (run, target): steps, examples and epochs to the target, blank (NaN) when the
    run was censored (outcome not_reached or diverged). The table a machine does not change."""
    t = analysis.target_table(results, targets)
    if t.empty:
        return pd.DataFrame(columns=STEPS_COLUMNS)
    censored = ~t["reached"].astype(bool)
    out = t.assign(dataset=dataset, network=network, optimizer=optimizer, censored=censored)
    if "loader" not in out:
        out["loader"] = "tensor"
    for key in ("steps", "examples", "epochs"):
        out[key] = out[key].astype(float).where(~censored)
    return out[STEPS_COLUMNS].sort_values(["target", "batch_size", "lr", "seed", "loader"],
                                          ignore_index=True)


def _steps(rows: pd.DataFrame) -> np.ndarray:
    """Steps to target, inf where censored."""
    return np.where(rows["censored"].astype(bool), INF, rows["steps"].astype(float))


def choose_by_steps(table: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per batch size, the rate with the smallest median steps to target over its runs (ties: the
    smaller rate). Columns: batch_size, lr, median_steps (inf: more than half censored), n_runs,
    n_reached, reached, steps (the chosen rate's steps, inf where censored)."""
    at = table[np.isclose(table["target"].astype(float), target)]
    rows = []
    for b, per_batch in at.groupby("batch_size", sort=True):
        best = None
        for lr, runs in per_batch.groupby("lr", sort=True):
            steps = _steps(runs)
            median = float(np.median(steps))
            if best is None or median < best["median_steps"]:
                best = {"batch_size": int(b), "lr": float(lr), "median_steps": median,
                        "n_runs": len(steps), "n_reached": int(np.isfinite(steps).sum()),
                        "steps": steps}
        rows.append(best)
    chosen = pd.DataFrame(rows, columns=["batch_size", "lr", "median_steps", "n_runs",
                                         "n_reached", "steps"])
    chosen["reached"] = np.isfinite(chosen["median_steps"].astype(float))
    return chosen


def estimate(table: pd.DataFrame, seconds: dict[int, list[float]], target: float,
             resamples: int = 2000, seed: int = 0) -> dict:
    """Seconds to target per batch size = median steps x median seconds per step, with a 95%
    interval and the share of resamples each batch size wins. A resample draws each batch size's
    runs (at its chosen rate) with replacement, and the timing rounds with replacement, the same
    rounds for every batch size (a round is one burst of load for all of them).

    `seconds`: {batch size: seconds per step in each round}, rounds aligned. Batch sizes without a
    step time are left out. Returns {"per_batch": DataFrame, "spot": dict}; per_batch has
    choose_by_steps' columns (its steps as steps_runs), seconds_per_step, estimate, low, high
    and share."""
    chosen = choose_by_steps(table, target)
    chosen = chosen[chosen["batch_size"].isin(list(seconds))].reset_index(drop=True)
    if chosen.empty:
        empty = chosen.rename(columns={"steps": "steps_runs"}).reindex(columns=[
            *chosen.columns.drop("steps"), "steps_runs", *ESTIMATE_COLUMNS])
        return {"per_batch": empty, "spot": {"batch_size": None, "target": target, "censored": [],
                                             "reason": "no batch size with steps and a time"}}
    rng = np.random.default_rng(seed)
    rounds = np.array([seconds[b] for b in chosen["batch_size"]], float)  # [batch, round]
    picks = rng.integers(0, rounds.shape[1], (resamples, rounds.shape[1]))
    boot_seconds = np.median(rounds[:, picks], axis=2)  # [batch, resample]
    boot_steps = np.array([np.median(s[rng.integers(0, len(s), (resamples, len(s)))], axis=1)
                           for s in chosen["steps"]])  # [batch, resample]
    with np.errstate(invalid="ignore"):
        boot = boot_steps * boot_seconds
    boot[~chosen["reached"].to_numpy(bool)] = INF  # mostly censored: never a winner
    winners = np.where(np.isfinite(boot).any(axis=0), np.argmin(boot, axis=0), -1)
    per_batch = chosen.rename(columns={"steps": "steps_runs"}).assign(
        seconds_per_step=np.median(rounds, axis=1),
        estimate=chosen["median_steps"].to_numpy(float) * np.median(rounds, axis=1),
        low=np.quantile(boot, 0.025, axis=1, method="inverted_cdf"),
        high=np.quantile(boot, 0.975, axis=1, method="inverted_cdf"),
        share=[float(np.mean(winners == i)) for i in range(len(chosen))])
    return {"per_batch": per_batch, "spot": sweet_spot(per_batch, target)}


def sweet_spot(per_batch: pd.DataFrame, target: float) -> dict:
    """The batch size with the smallest estimate (ties: the smaller batch), its interval and its
    share of resamples won, and every other batch size that won more than RUNNER_UP of them."""
    reached = per_batch[np.isfinite(per_batch["estimate"].astype(float))]
    censored = sorted(int(b) for b in per_batch.loc[~per_batch["reached"], "batch_size"])
    if reached.empty:
        return {"batch_size": None, "target": target, "censored": censored,
                "reason": f"no batch size reached {target:g} at any rate"}
    best = reached.sort_values(["estimate", "batch_size"]).iloc[0]
    runners_up = per_batch[(per_batch["share"] > RUNNER_UP)
                           & (per_batch["batch_size"] != best["batch_size"])]
    return {"batch_size": int(best["batch_size"]), "lr": float(best["lr"]), "target": target,
            "estimate": float(best["estimate"]), "low": float(best["low"]),
            "high": float(best["high"]), "share": float(best["share"]),
            "median_steps": float(best["median_steps"]),
            "seconds_per_step": float(best["seconds_per_step"]),
            "runners_up": {int(r.batch_size): float(r.share) for r in runners_up.itertuples()},
            "censored": censored}


def beside_measured(per_batch: pd.DataFrame, results_table: pd.DataFrame,
                    target: float) -> pd.DataFrame:
    """The estimate beside each batch size's directly measured seconds to target (the median over
    its runs at the chosen rate, from analysis.target_table) and their ratio measured/estimate:
    the model's check."""
    at = results_table[np.isclose(results_table["target"].astype(float), target)]
    measured = []
    for row in per_batch.itertuples():
        runs = at[(at["batch_size"] == row.batch_size) & np.isclose(at["lr"], row.lr)]
        times = np.where(runs["reached"].astype(bool), runs["time"].astype(float), INF)
        measured.append(float(np.median(times)) if len(times) else math.nan)
    out = per_batch.assign(measured=measured)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["ratio"] = out["measured"] / out["estimate"]
    return out
