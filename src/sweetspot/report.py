"""The report: which batch size reaches the target fastest here, why, and how sure we are.

Reads the cells' JSON files (reports/cells/*/, never the MLflow store, so DVC tracks its inputs),
reports/steptime.json and any reports/validation/*.json; writes reports/steps_to_target.csv (the
table a machine does not change), reports/sweet_spot.json (DVC metrics), reports/figures/*.png,
reports/plots/ (DVC plots data) and reports/report.md (text: writeup.py), and files the sweep in
MLflow as a parent run over its cells. Run: `dvc repro report` or `sweetspot report`.

The answer is the estimate, steps to target x seconds per step (estimate.py); every run's directly
measured time to target stands beside it, and their ratio is the model's check.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd

from sweetspot import (
    analysis,
    config,
    costmodel,
    estimate,
    figures,
    paths,
    sweep,
    tracking,
    writeup,
)
from sweetspot.config import Params

# --- pure: tables in, numbers out --------------------------------------------------------------

def answers(results: list[dict], seconds: dict[int, list[float]], targets: list[float],
            resamples: int) -> dict:
    """Per target: the estimated sweet spot and region ("spot"), and per batch size the estimate
    beside the direct measurement ("per_batch"), and the sweet spot by measured time alone
    ("direct", from each run's quiet time, as robust to load as the estimate)."""
    steps = estimate.steps_table(results, targets, "", "", "")
    measured = analysis.target_table(results, targets)
    out = {}
    for target in targets:
        found = estimate.estimate(steps, seconds, target, resamples)
        per_batch = estimate.beside_measured(found["per_batch"], measured, target)
        out[target] = {**found["spot"], "per_batch": per_batch,
                       "direct": estimate.direct_spot(per_batch)}
    return out


def cost_model(per_batch: pd.DataFrame) -> dict | None:
    """Fit S(B) = S_min (1 + B_noise/B) to the median steps and t(B) = t0 + c B to the measured
    seconds per step; their product is smallest at B* = sqrt(B_noise t0 / c). None with fewer
    than 2 batch sizes that reached the target."""
    hit = per_batch[per_batch["reached"]]
    if len(hit) < 2:
        return None
    s_min, b_noise = costmodel.fit_steps(hit["batch_size"], hit["median_steps"])
    t0, c = costmodel.fit_step_time(per_batch["batch_size"], per_batch["seconds_per_step"])
    return {"s_min": s_min, "b_noise": b_noise, "t0": t0, "c": c,
            "b_star": costmodel.optimal_batch(b_noise, t0, c)}


def noise_scale(cells: pd.DataFrame) -> dict:
    """The gradient noise scale B_simple measured during training: median over runs of the first
    estimate and of the run-averaged one (McCandlish et al. report ~50 and ~900 for MNIST)."""
    def median(column):
        values = cells[column].replace([math.inf, -math.inf], np.nan).dropna() \
            if column in cells else pd.Series(dtype=float)
        return float(values.median()) if len(values) else None

    return {"early": median("b_simple_first"), "averaged": median("b_simple_mean")}


def metrics_doc(spots: dict, targets: list[float]) -> dict:
    """sweet_spot.json: the first target's answer at the top, every target below."""
    def one(spot):
        keep = ("batch_size", "lr", "estimate", "low", "high", "share", "region",
                "median_steps", "seconds_per_step", "censored", "direct", "reason")
        doc = {k: spot[k] for k in keep if k in spot}
        rows = spot["per_batch"]
        at = rows[rows["batch_size"] == spot["batch_size"]]
        doc["measured"] = float(at["measured"].iloc[0]) if len(at) else None
        return doc

    first = one(spots[targets[0]])
    return {"target": targets[0], "batch_size": first.get("batch_size"),
            "time_to_target": first.get("estimate"), "lr": first.get("lr"),
            "share": first.get("share"),
            "region": [r["batch_size"] for r in first.get("region", [])],
            "region_rule": estimate.REGION_RULE,
            "per_target": {f"{t:g}": one(spots[t]) for t in targets}}


# --- main: the only part that touches disk and MLflow ----------------------------------------

def sweep_key(params: Params) -> str:
    """Names one sweep definition, so repeated `dvc repro`s update the same parent run."""
    doc = json.dumps([config.as_dict(params.sweep), config.as_dict(params.train),
                      params.data.dataset], sort_keys=True, default=str)
    return hashlib.sha1(doc.encode()).hexdigest()[:12]


def validations() -> list[dict]:
    """Every stack validated so far (reports/validation/validate-*.json), by file name."""
    return [json.loads(p.read_text()) for p in sorted(paths.VALIDATION.glob("validate-*.json"))]


def main(params: Params) -> int:
    s = params.sweep
    targets = list(s.targets)
    target, loader = targets[0], s.loaders[0]  # the headline
    results = sweep.read_cells(sweep.all_paths(params))
    seconds = sweep.step_times(params)
    measured = json.loads(paths.STEPTIME.read_text())["per_loader"][loader]
    plan_file = paths.REFINE / paths.PLAN
    plan = json.loads(plan_file.read_text()) if plan_file.exists() else None
    by_loader = {name: [r for r in results if r["loader"] == name] for name in s.loaders}
    per_loader = {name: answers(runs, seconds[name], targets, s.resamples)
                  for name, runs in by_loader.items()}
    headline, spots = by_loader[loader], per_loader[loader]
    table = analysis.target_table(headline, targets)
    cells = analysis.cells_table(headline)
    per_batch = spots[target]["per_batch"]
    model, noise, checks = cost_model(per_batch), noise_scale(cells), validations()

    estimate.steps_table(results, targets, params.data.dataset, params.train.network,
                         params.train.optimizer).to_csv(paths.STEPS_TABLE, index=False)
    drawn = {"epoch_vs_target": figures.epoch_vs_target(cells, spots),
             "two_factors": figures.two_factors(per_batch, seconds[loader], target),
             "accuracy_vs_time": figures.accuracy_vs_time(headline, per_batch, target),
             "steps_to_target": figures.steps_to_target(per_batch, headline, target)}
    if table["lr"].nunique() > 1:
        drawn["lr_heatmap"] = figures.lr_heatmap(table, target)
    if model:
        drawn["cost_model"] = figures.cost_model(per_batch, model, spots[target], target)
    if len(per_loader) > 1:
        drawn["loaders"] = figures.loaders({k: v[target] for k, v in per_loader.items()}, target)
    if checks:
        drawn["validation"] = figures.validation(checks)
    save_figures(drawn)
    write_plots(headline, per_batch)
    doc = metrics_doc(spots, targets)
    doc.update(dataset=params.data.dataset, loader=loader, cost_model=model, noise_scale=noise,
               load=measured.get("load"))
    if len(per_loader) > 1:
        doc["per_loader"] = {k: metrics_doc(v, targets)["per_target"] for k, v in
                             per_loader.items()}
    paths.write_json(paths.METRICS, doc)
    machine = {"dataset": params.data.dataset,
               **{k: v for k, v in results[0].get("provenance", {}).items() if k != "dvc_stage"}}
    paths.REPORT_MD.write_text(writeup.markdown(
        params, spots, cells, plan, machine, list(drawn), model, noise,
        {k: v[target] for k, v in per_loader.items()}, checks, measured))
    file_sweep(params, results, doc)
    print(f"report: sweet spot {doc['batch_size']} at {target:g} "
          f"({writeup.fmt(doc['time_to_target'])} s estimated, wins "
          f"{writeup.fmt(doc['share'], '.0%')} of resamples), sweet region {doc['region']}; "
          f"wrote {paths.REPORT_MD}")
    return 0


def save_figures(drawn: dict) -> None:
    """reports/figures/<name>.png for each figure drawn, and none left from an earlier report."""
    paths.FIGURES.mkdir(parents=True, exist_ok=True)
    for stale in paths.FIGURES.glob("*.png"):
        stale.unlink()
    for name, fig in drawn.items():
        fig.savefig(paths.FIGURES / f"{name}.png", dpi=110)
        figures.plt.close(fig)


def write_plots(results: list[dict], per_batch: pd.DataFrame) -> None:
    """Data for `dvc plots show`: one accuracy curve per batch size, and the chosen cells."""
    paths.CURVES.mkdir(parents=True, exist_ok=True)
    for stale in paths.CURVES.glob("*.csv"):
        stale.unlink()
    for r in figures.chosen_runs(results, per_batch):
        pd.DataFrame(r["curve"])[["time", "examples", "test_acc", "test_loss"]].to_csv(
            paths.CURVES / f"b{r['batch_size']:05d}.csv", index=False)
    columns = ["batch_size", "lr", "median_steps", "seconds_per_step", "estimate", "low", "high",
               "measured", "share"]
    per_batch[columns].replace([math.inf], np.nan).to_csv(paths.TIME_TO_TARGET, index=False)


def file_sweep(params: Params, results: list[dict], doc: dict) -> str:
    """The sweep's parent run in MLflow: the answer, the report's files (the steps table among
    them), every cell its child."""
    summary = {"sweet_spot_batch_size": doc["batch_size"], "time_to_target": doc["time_to_target"],
               "sweet_spot_share": doc.get("share"), "cells": len(results)}
    files = [paths.FIGURES, paths.REPORT_MD, paths.METRICS, paths.STEPS_TABLE, paths.STEPTIME]
    name = tracking.sweep_name(params.data.dataset, params.train.optimizer)
    return tracking.file_sweep(params.train.experiment, sweep_key(params), name, summary,
                               {"targets": list(params.sweep.targets)},
                               [f for f in files if f.exists()],
                               {r["name"]: r["run_id"] for r in results})
