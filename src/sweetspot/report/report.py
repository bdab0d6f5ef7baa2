"""The report: which batch size reaches the target fastest here, why, and how sure we are.

Reads the cells' JSON files (reports/cells/*/, never the MLflow store, so DVC tracks its inputs),
reports/steptime.json, any reports/validation/*.json and the test labels; writes
reports/steps_to_target.csv (the table a machine does not change), reports/sweet_spot.json (the
whole answer), reports/metrics/answer.json (its headline: DVC metrics), reports/figures/*.png,
reports/plots/ (DVC plots data) and reports/report.md (text: writeup.py), and files the sweep in
MLflow as a parent run over its cells. Run: `dvc repro report` or `sweetspot report`.

The answer is the estimate, steps to target x seconds per step (estimate.py), for each data path
steptime measured: the steps are the sweep's, whatever path trained them. Every run's directly
measured time to target stands beside it, and their ratio is the model's check.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd

from sweetspot import config, paths
from sweetspot.answer import analysis, estimate, fastest
from sweetspot.config import Params
from sweetspot.fmt import fmt
from sweetspot.report import compare, figures, writeup
from sweetspot.report.answer import Answer, build, summary_file
from sweetspot.report.checks import self_check_alarm
from sweetspot.track import tracking

# MLflow's warning about pickled models, said once here instead of at every cell (delivery.py)
PICKLED = ("each run's model is pickled, so `mlflow.pytorch.load_model` runs code from the store: "
           "load only runs you trust")

# --- pure: the answer in, documents out -------------------------------------------------------

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


def headline(doc: dict) -> dict:
    """What `dvc metrics show` prints (reports/metrics/answer.json): the numbers a reader compares
    across commits and experiments, flat; sweet_spot.json keeps the rest."""
    cost, region = doc["cost_model"] or {}, doc["region"]

    def rounded(value, scale=1.0):
        return None if value is None else float(f"{value * scale:.4g}")

    return {"target": doc["target"], "batch_size": doc["batch_size"],
            "seconds": rounded(doc["time_to_target"]), "share": rounded(doc["share"]),
            "region_low": min(region, default=None), "region_high": max(region, default=None),
            "t0_us": rounded(cost.get("t0"), 1e6), "c_us": rounded(cost.get("c"), 1e6),
            "b_star": rounded(cost.get("b_star"))}


def sweep_key(params: Params) -> str:
    """Names one sweep definition, so repeated `dvc repro`s update the same parent run."""
    doc = json.dumps([config.as_dict(params.sweep), config.as_dict(params.train),
                      params.data.dataset], sort_keys=True, default=str)
    return hashlib.sha1(doc.encode()).hexdigest()[:12]


# --- main: the only part that touches disk and MLflow ----------------------------------------

def main(params: Params) -> int:
    answer = build(params)
    target, per_batch = answer.target, answer.spots[answer.target]["per_batch"]
    answer.steps.to_csv(paths.STEPS_TABLE, index=False)
    paths.write_json(summary_file(params), answer.summary)
    drawn = draw(answer)
    save_figures({**drawn, **answer.advice["figures"]})
    write_plots(answer.headline_runs, per_batch)
    targets, here, final = list(params.sweep.targets), answer.here, answer.final
    doc = metrics_doc(answer.spots, targets)
    sample = here["sample"] if here else None
    doc.update(self_check=here["self_check"] if here else None,
               reproduced=f"{sample['identical']}/{sample['sampled']}" if sample else None,
               dataset=params.data.dataset, loader=params.sweep.loaders[0],
               cost_model=answer.cost, noise_scale=answer.noise, load=answer.timing.get("load"),
               per_class_accuracy=final["per_class"] if final else None,
               advice=answer.advice["doc"],
               race={k: answer.raced[k] for k in ("cells", "seconds", "batch", "rates")},
               per_loader={k: {**metrics_doc(v["spots"], targets), "cost_model": v["cost"]}
                           for k, v in answer.loaders.items()})
    paths.write_json(paths.SWEET_SPOT, doc)
    paths.write_json(paths.ANSWER_METRICS, headline(doc))
    paths.REPORT_MD.write_text(writeup.markdown(answer, [n for n in drawn if n != "comparison"]))
    if here and here["self_check"] and here["self_check"]["departs"]:
        print(f"report: {self_check_alarm(here['self_check'])}", flush=True)
    print(f"report: sweet region {doc['region']} at {target:g}, spot {doc['batch_size']} "
          f"({fmt(doc['time_to_target'])} s estimated, wins "
          f"{fmt(doc['share'], '.0%')} of resamples); wrote {paths.REPORT_MD}")
    print(f"report: {PICKLED}")
    file_sweep(params, answer.results, doc)  # its last line: the link to the sweep's runs
    return 0


def draw(answer: Answer) -> dict:
    """The report's figures, by name (seaborn: figures.py)."""
    target, spot = answer.target, answer.spots[answer.target]
    per_batch, cells, runs = spot["per_batch"], answer.cells, answer.headline_runs
    drawn = {"epoch_vs_target": figures.epoch_vs_target(cells, answer.spots),
             "two_factors": figures.two_factors(per_batch, fastest.round_seconds(answer.timing),
                                                target, spot),
             "accuracy_vs_time": figures.accuracy_vs_time(runs, per_batch, target),
             "steps_to_target": figures.steps_to_target(per_batch, runs, target)}
    table = analysis.target_table(runs, list(answer.params.sweep.targets))
    if table["lr"].nunique() > 1:
        drawn["lr_heatmap"] = figures.lr_heatmap(table, target)
    if answer.cost:
        drawn["cost_model"] = figures.cost_curve(per_batch, answer.cost, spot, target)
    if len(answer.loaders) > 1:
        drawn["loaders"] = figures.loaders({k: v["spots"][target]
                                            for k, v in answer.loaders.items()}, target)
    if final := answer.final:
        drawn["confusion"] = figures.confusion(final["matrix"], final["per_class"],
                                               final["batch_size"])
    if answer.validations:
        drawn["validation"] = figures.validation(answer.validations)
    if len(answer.problems) > 1:
        drawn["comparison"] = figures.comparison(compare.curves(answer.problems))
    return drawn


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
    files = [paths.FIGURES, paths.REPORT_MD, paths.SWEET_SPOT, paths.STEPS_TABLE, paths.STEPTIME]
    name = tracking.sweep_name(params.data.dataset, params.train.network, params.train.optimizer)
    return tracking.file_sweep(params.train.experiment, sweep_key(params), name, summary,
                               {"targets": list(params.sweep.targets)},
                               [f for f in files if f.exists()],
                               {r["name"]: r["run_id"] for r in results})
