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
import io
import json
import math

import numpy as np
import pandas as pd

from sweetspot import config, paths
from sweetspot.advice import tested
from sweetspot.answer import analysis, costmodel, estimate, heldout
from sweetspot.config import Params
from sweetspot.data import idx
from sweetspot.fmt import fmt
from sweetspot.measure import machine
from sweetspot.report import compare, figures, writeup
from sweetspot.report.checks import self_check_alarm
from sweetspot.sweep import race, sweep
from sweetspot.track import tracking
from sweetspot.train.networks import network_name, network_slug

# MLflow's warning about pickled models, said once here instead of at every cell (delivery.py)
PICKLED = ("each run's model is pickled, so `mlflow.pytorch.load_model` runs code from the store: "
           "load only runs you trust")

# --- pure: tables in, numbers out --------------------------------------------------------------

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


def final_model(results: list[dict], per_batch: pd.DataFrame, spot: dict,
                labels: list[int]) -> dict | None:
    """The sweet spot's final model on the test set, from its first seed's run at its rate: the
    confusion matrix (sklearn.metrics; rows the true class, columns the predicted) and the
    accuracy of each class. None when there is no spot or its run kept no predictions."""
    from sklearn.metrics import confusion_matrix

    runs = [r for r in figures.chosen_runs(results, per_batch)
            if r["batch_size"] == spot["batch_size"] and r.get("test_predictions")]
    if not runs:
        return None
    predicted = [int(c) for c in runs[0]["test_predictions"]]
    classes = list(range(10))
    matrix = confusion_matrix(labels, predicted, labels=classes)
    per_class = matrix.diagonal() / matrix.sum(axis=1)
    return {"batch_size": spot["batch_size"], "run_id": runs[0]["run_id"],
            "accuracy": float(matrix.trace() / matrix.sum()),
            "matrix": pd.DataFrame(matrix, index=classes, columns=classes),
            "per_class": {c: float(a) for c, a in zip(classes, per_class, strict=True)}}


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


# --- main: the only part that touches disk and MLflow ----------------------------------------

def sweep_key(params: Params) -> str:
    """Names one sweep definition, so repeated `dvc repro`s update the same parent run."""
    doc = json.dumps([config.as_dict(params.sweep), config.as_dict(params.train),
                      params.data.dataset], sort_keys=True, default=str)
    return hashlib.sha1(doc.encode()).hexdigest()[:12]


def validations(params: Params) -> list[dict]:
    """Every stack this problem was validated on (reports/validation/), by file name."""
    mine = paths.validate_file(params.data.dataset, network_slug(params.train), "*")
    return [json.loads(p.read_text()) for p in sorted(paths.VALIDATION.glob(mine.name))]


def forecast(params: Params) -> dict | None:
    """This problem's forecast, made before its sweep (`sweetspot forecast`), if there is one."""
    path = paths.problem_file(paths.FORECAST, params.data.dataset, network_slug(params.train))
    return json.loads(path.read_text()) if path.exists() else None


def summaries() -> list[dict]:
    """Every swept problem's summary in reports/compare/ (this one's included)."""
    found = [json.loads(p.read_text()) for p in sorted(paths.COMPARE.glob("*.json"))]
    for s in found:
        s["relative_time"] = {int(b): t for b, t in s["relative_time"].items()}
    return found


def test_labels(dataset: str) -> list[int]:
    """The test set's labels, from the verified IDX file (what the predictions are scored on)."""
    return idx.read_idx(paths.raw_dir(dataset) / idx.FILES[3]).tolist()


def main(params: Params) -> int:
    s = params.sweep
    targets = list(s.targets)
    target, loader = targets[0], s.loaders[0]  # the headline: the first path the sweep trained
    results = sweep.read_cells(race.all_paths(params))
    timing = sweep.step_times(params)  # per data path, its steptime document
    seconds = {name: estimate.round_seconds(doc) for name, doc in timing.items()}
    plan_file = paths.REFINE / paths.PLAN
    plan = json.loads(plan_file.read_text()) if plan_file.exists() else None
    per_loader = {name: estimate.answers(results, seconds[name], targets, s.resamples,
                                [r for r in results if r["loader"] == name]) for name in timing}
    headline, spots = [r for r in results if r["loader"] == loader], per_loader[loader]
    table = analysis.target_table(headline, targets)
    cells = analysis.cells_table(headline)
    per_batch = spots[target]["per_batch"]
    models = {name: cost_model(v[target]["per_batch"]) for name, v in per_loader.items()}
    model, noise, checks = models[loader], noise_scale(cells), validations(params)
    final = final_model(headline, per_batch, spots[target], test_labels(params.data.dataset))

    estimate.steps_table(results, targets, params.data.dataset, network_name(params.train),
                         params.train.optimizer).to_csv(paths.STEPS_TABLE, index=False)
    here = reproduced_here(headline, per_batch, targets)
    drawn = {"epoch_vs_target": figures.epoch_vs_target(cells, spots),
             "two_factors": figures.two_factors(per_batch, seconds[loader], target,
                                                spots[target]),
             "accuracy_vs_time": figures.accuracy_vs_time(headline, per_batch, target),
             "steps_to_target": figures.steps_to_target(per_batch, headline, target)}
    if table["lr"].nunique() > 1:
        drawn["lr_heatmap"] = figures.lr_heatmap(table, target)
    if model:
        drawn["cost_model"] = figures.cost_model(per_batch, model, spots[target], target)
    if len(per_loader) > 1:
        drawn["loaders"] = figures.loaders({k: v[target] for k, v in per_loader.items()}, target)
    if final:
        drawn["confusion"] = figures.confusion(final["matrix"], final["per_class"],
                                               final["batch_size"])
    if checks:
        drawn["validation"] = figures.validation(checks)
    advice = tested.build(params, results, per_loader, target, model)
    raced = race.summary(params, results, seconds[loader], target)
    network = network_name(params.train)
    own = compare.summary(params, network, spots[target], model, noise, forecast(params),
                          machine.describe(timing[loader]["machine"]), raced)
    paths.write_json(paths.problem_file(paths.COMPARE, params.data.dataset,
                                        network_slug(params.train)), own)
    problems = summaries()
    if len(problems) > 1:
        drawn["comparison"] = figures.comparison(compare.curves(problems))
    save_figures({**drawn, **advice["figures"]})
    write_plots(headline, per_batch)
    doc = metrics_doc(spots, targets)
    doc.update(self_check=here["self_check"], steps_identical=(
                   f"{here['steps']['identical']}/{here['steps']['rows']}"),
               dataset=params.data.dataset, loader=loader, cost_model=model, noise_scale=noise,
               load=timing[loader].get("load"),
               per_class_accuracy=final["per_class"] if final else None, advice=advice["doc"],
               race={k: raced[k] for k in ("cells", "seconds", "batch", "rates")},
               per_loader={k: {**metrics_doc(v, targets), "cost_model": models[k]}
                           for k, v in per_loader.items()})
    paths.write_json(paths.SWEET_SPOT, doc)
    paths.write_json(paths.ANSWER_METRICS, headline(doc))
    tags = {k: v for k, v in results[0].get("provenance", {}).items() if k != "dvc_stage"}
    measured_on = {"dataset": params.data.dataset, **tags,  # torch_threads: those it trained with
                   "seconds per step measured on": own["machine"]}
    paths.REPORT_MD.write_text(writeup.markdown(
        params, spots, cells, plan, measured_on, [n for n in drawn if n != "comparison"], model,
        noise, {k: {"spots": v, "model": models[k]} for k, v in per_loader.items()}, checks,
        timing[loader], final, compare.section(problems), here) + "\n"
        + "\n".join(race.section(raced) + heldout.section(heldout.documents())) + "\n"
        + advice["markdown"])
    if here["self_check"] and here["self_check"]["departs"]:
        print(f"report: {self_check_alarm(here['self_check'])}", flush=True)
    print(f"report: sweet region {doc['region']} at {target:g}, spot {doc['batch_size']} "
          f"({fmt(doc['time_to_target'])} s estimated, wins "
          f"{fmt(doc['share'], '.0%')} of resamples); wrote {paths.REPORT_MD}")
    print(f"report: {PICKLED}")
    file_sweep(params, results, doc)  # its last line: the link to the sweep's runs
    return 0


def reproduced_here(results: list[dict], per_batch: pd.DataFrame, targets: list[float]) -> dict:
    """What this repro reproduced on this machine: the answer's check of itself (measured over
    estimated for the runs timed on this host, estimate.self_check), and this steps table (just
    written) against the one the checkout came with (git's HEAD)."""
    host = tracking.host()
    runs = [r for r in results if r.get("provenance", {}).get("host") == host]
    check = None
    if runs:
        timed_here = analysis.target_table(runs, targets)
        check = estimate.self_check(estimate.beside_measured(per_batch, timed_here, targets[0]))
    committed = tracking.git("show", f"HEAD:{paths.STEPS_TABLE}")
    old = pd.read_csv(io.StringIO(committed)) if committed else None
    return {"host": host, "runs_here": len(runs), "runs": len(results), "self_check": check,
            "steps": estimate.steps_reproduced(pd.read_csv(paths.STEPS_TABLE), old),
            "commit": tracking.git("rev-parse", "--short", "HEAD")}


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
