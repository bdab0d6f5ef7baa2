"""The report: which batch size reaches the target fastest here, and why per-epoch time misled.

Reads the cells' JSON files (reports/cells/*/, never the MLflow store, so DVC tracks its inputs);
writes reports/sweet_spot.json (DVC metrics), reports/figures/*.png (figures.py), reports/plots/
(DVC plots data) and reports/report.md, and files the sweep in MLflow as a parent run over its
cells. Run: `dvc repro report` or `sweetspot report`.
"""

from __future__ import annotations

import hashlib
import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sweetspot import analysis, config, costmodel, figures, paths, sweep, tracking
from sweetspot.config import Params

# --- pure: tables in, numbers and figures out ------------------------------------------------

def answers(targets_table: pd.DataFrame, targets: list[float]) -> dict:
    """The sweet spot per target, with the rate chosen at each batch size and the stability."""
    out = {}
    for target in targets:
        spot = analysis.sweet_spot(targets_table, target)
        chosen = analysis.choose_lr(targets_table, target)
        spot["stability"] = analysis.stability(targets_table, target, chosen)
        spot["chosen"] = chosen
        out[target] = spot
    return out


def cost_model(chosen: pd.DataFrame, cells: pd.DataFrame) -> dict | None:
    """Fit S(B) = S_min (1 + B_noise/B) to the steps and t(B) = t0 + c B to the step times; their
    product T(B) is smallest at B* = sqrt(B_noise t0 / c). None with fewer than 2 reached sizes."""
    hit = chosen[chosen["reached"]]
    if len(hit) < 2:
        return None
    s_min, b_noise = costmodel.fit_steps(hit["batch_size"], hit["median_steps"])
    per_batch = cells.groupby("batch_size")["mean_step_time"].median()
    t0, c = costmodel.fit_step_time(per_batch.index, per_batch.to_numpy())
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
        keep = ("batch_size", "lr", "median_time", "spread", "median_steps", "runners_up",
                "censored", "reason")
        doc = {k: _plain(spot[k]) for k in keep if k in spot}
        doc["stable"] = bool(spot["stability"]["stable"])
        return doc

    first = one(spots[targets[0]])
    return {"target": targets[0], "batch_size": first.get("batch_size"),
            "time_to_target": first.get("median_time"), "lr": first.get("lr"),
            "runners_up": first.get("runners_up", []),
            "per_target": {f"{t:g}": one(spots[t]) for t in targets}}


def _plain(value):
    """JSON-safe: numpy scalars to Python, inf to None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def markdown(spots: dict, targets: list[float], cells: pd.DataFrame, plan: dict | None,
             machine: dict, drawn: list[str], model: dict | None = None,
             noise: dict | None = None, loaders: dict | None = None) -> str:
    target = targets[0]
    spot = spots[target]
    chosen = spot["chosen"]
    dataset = machine.get("dataset", "")
    lines = [f"# Which batch size reaches the target fastest here? {dataset}".rstrip(), ""]
    if spot["batch_size"] is None:
        lines += [f"No run reached {target:g} test accuracy: {spot.get('reason', '')}.", ""]
    else:
        fastest_epoch = cells.groupby("batch_size")["seconds_per_epoch"].median().idxmin()
        lines += [
            f"**Batch size {spot['batch_size']}** (learning rate {spot['lr']:g}) reaches "
            f"{target:g} test accuracy fastest: **{spot['median_time']:.2f} s** of training "
            f"(median over seeds) in {spot['median_steps']:.0f} steps.",
            f"Runners-up within 10%: {', '.join(map(str, spot['runners_up'])) or 'none'}. "
            f"The cheapest epoch belongs to batch {fastest_epoch}, which is why per-epoch time "
            "misleads: large batches make cheap epochs but need many more of them.",
            f"Sweet spot stable across seeds: {'yes' if spot['stability']['stable'] else 'no'}.",
            "",
        ]
        if len(targets) > 1:
            lines += ["| target | sweet spot | seconds |", "|---|---|---|"]
            lines += [f"| {t:g} | {spots[t]['batch_size']} | "
                      f"{_fmt(spots[t].get('median_time'))} |" for t in targets]
            lines.append("")
    if plan:
        best = ", ".join(f"{b} ({loader})" for loader, b in plan["coarse_best"].items())
        lines += [f"Refinement (automatic, as the answer prescribes): the coarse sweet spot was "
                  f"{best}, so batch sizes {plan['batch_sizes'] or 'none'} were added.", ""]
    lines += _why(model, noise, spot)
    if loaders and len(loaders) > 1:
        lines += ["| data pipeline | sweet spot | seconds to target |", "|---|---:|---:|"]
        lines += [f"| {name} | {s['batch_size']} | {_fmt(s.get('median_time'))} |"
                  for name, s in loaders.items()]
        lines += ["", "Per-example overhead (the question's DataLoader converts every image in "
                  "Python) makes every step dearer and moves the sweet spot.", ""]
    per_epoch = cells.groupby("batch_size")["seconds_per_epoch"].median()
    lines += ["| batch size | lr | seconds to target | spread | steps | seconds/epoch | reached |",
              "|---:|---:|---:|---:|---:|---:|---|"]
    for _, row in chosen.iterrows():
        lines.append(f"| {row['batch_size']} | {row['lr']:g} | {_fmt(row['median_time'])} | "
                     f"{_fmt(row['spread'])} | {_fmt(row['median_steps'], '.0f')} | "
                     f"{per_epoch[row['batch_size']]:.2f} | "
                     f"{row['n_reached']}/{row['n_seeds']} |")
    lines += ["", "Unreached cells are censored: they count as infinitely slow, never dropped.", ""]
    lines += [f"![{figures.CAPTIONS[name]}](figures/{name}.png)" for name in drawn]
    lines += ["", "## Measured on", ""]
    lines += [f"- {k}: {v}" for k, v in machine.items()]
    lines += ["", "Timings: training clock only (device synchronised, evaluation and warm-up "
              "off the clock). Re-measure with `dvc repro -f`.", ""]
    return "\n".join(lines)


def _why(model: dict | None, noise: dict | None, spot: dict) -> list[str]:
    """The cost model's explanation, in words."""
    if not model:
        return ["Too few batch sizes reached the target to fit the cost model.", ""]
    lines = [
        "## Why there",
        "",
        f"Steps to the target follow S(B) = S_min (1 + B_noise/B) with S_min = "
        f"{model['s_min']:.0f} and B_noise = {model['b_noise']:.0f}: below B_noise a bigger "
        "batch saves steps, above it mostly not. A step costs t(B) = t0 + c B with t0 = "
        f"{model['t0'] * 1e6:.0f} µs (fixed per-step overhead) and c = {model['c'] * 1e6:.3f} µs "
        f"per example. Their product is smallest at B* = sqrt(B_noise t0 / c) = "
        f"{model['b_star']:.0f}, beside the measured sweet spot {spot['batch_size']}. Faster "
        "arithmetic (smaller c) moves B* up as 1/sqrt(c); less per-step overhead moves it down.",
    ]
    if noise and noise.get("averaged") is not None:
        lines.append(
            f"The gradient noise scale measured during training (B_simple, McCandlish et al. "
            f"2018) was {_fmt(noise['early'], '.0f')} at the first evaluation and "
            f"{_fmt(noise['averaged'], '.0f')} averaged over training (they report about 50 and "
            "900 for MNIST), against the fitted B_noise above.")
    return [*lines, ""]


def _fmt(value, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "not reached"
    return format(value, spec)


# --- main: the only part that touches disk and MLflow ----------------------------------------

def sweep_key(params: Params) -> str:
    """Names one sweep definition, so repeated `dvc repro`s update the same parent run."""
    doc = json.dumps([config.as_dict(params.sweep), config.as_dict(params.train),
                      params.data.dataset], sort_keys=True, default=str)
    return hashlib.sha1(doc.encode()).hexdigest()[:12]


def main(params: Params) -> int:
    targets = list(params.sweep.targets)
    target, loader = targets[0], params.sweep.loaders[0]  # the headline
    results = sweep.read_cells(sweep.all_paths(params))
    plan_file = paths.REFINE / paths.PLAN
    plan = json.loads(plan_file.read_text()) if plan_file.exists() else None
    by_loader = {name: [r for r in results if r["loader"] == name]
                 for name in params.sweep.loaders}
    tables = {name: analysis.target_table(runs, targets) for name, runs in by_loader.items()}
    per_loader = {name: answers(table, targets) for name, table in tables.items()}
    headline, table = by_loader[loader], tables[loader]
    cells = analysis.cells_table(headline)
    spots = per_loader[loader]
    chosen = spots[target]["chosen"]
    model = cost_model(chosen, cells)
    noise = noise_scale(cells)

    drawn = {"epoch_vs_target": figures.epoch_vs_target(cells, spots),
             "accuracy_vs_time": figures.accuracy_vs_time(headline, chosen, target),
             "steps_to_target": figures.steps_to_target(chosen, headline, target)}
    if table["lr"].nunique() > 1:
        drawn["lr_heatmap"] = figures.lr_heatmap(table, target)
    if model:
        drawn["cost_model"] = figures.cost_model(chosen, model, spots[target], target)
    if len(per_loader) > 1:
        drawn["loaders"] = figures.loaders({k: v[target] for k, v in per_loader.items()}, target)
    save_figures(drawn)
    write_plots(headline, chosen)
    doc = metrics_doc(spots, targets)
    doc.update(dataset=params.data.dataset, loader=loader, cost_model=model, noise_scale=noise)
    if len(per_loader) > 1:
        doc["per_loader"] = {k: metrics_doc(v, targets)["per_target"] for k, v in
                             per_loader.items()}
    paths.write_json(paths.METRICS, _plain(doc))
    machine = {"dataset": params.data.dataset,
               **{k: v for k, v in results[0].get("provenance", {}).items() if k != "dvc_stage"}}
    paths.REPORT_MD.write_text(markdown(spots, targets, cells, plan, machine, list(drawn), model,
                                        noise, {k: v[target] for k, v in per_loader.items()}))
    file_sweep(params, results, doc)
    print(f"report: sweet spot {doc['batch_size']} at {target:g} "
          f"({_fmt(doc['time_to_target'])} s); wrote {paths.REPORT_MD}")
    return 0


def write_plots(results: list[dict], chosen: pd.DataFrame) -> None:
    """Data for `dvc plots show`: one accuracy curve per batch size, and the chosen cells."""
    paths.CURVES.mkdir(parents=True, exist_ok=True)
    for stale in paths.CURVES.glob("*.csv"):
        stale.unlink()
    for r in figures.chosen_runs(results, chosen):
        pd.DataFrame(r["curve"])[["time", "examples", "test_acc", "test_loss"]].to_csv(
            paths.CURVES / f"b{r['batch_size']:05d}.csv", index=False)
    table = chosen.replace([math.inf], np.nan)[["batch_size", "lr", "median_time",
                                                "median_steps"]]
    table.to_csv(paths.TIME_TO_TARGET, index=False)


def save_figures(drawn: dict) -> None:
    """reports/figures/<name>.png for each figure drawn, and none left from an earlier report."""
    paths.FIGURES.mkdir(parents=True, exist_ok=True)
    for stale in paths.FIGURES.glob("*.png"):
        stale.unlink()
    for name, fig in drawn.items():
        fig.savefig(paths.FIGURES / f"{name}.png", dpi=110)
        plt.close(fig)


def file_sweep(params: Params, results: list[dict], doc: dict) -> str:
    """The sweep's parent run in MLflow: the answer, the report's files, every cell its child."""
    summary = {"sweet_spot_batch_size": doc["batch_size"], "time_to_target": doc["time_to_target"],
               "cells": len(results)}
    return tracking.file_sweep(params.train.experiment, sweep_key(params), summary,
                               {"targets": list(params.sweep.targets)},
                               [paths.FIGURES, paths.REPORT_MD, paths.METRICS],
                               {r["name"]: r["run_id"] for r in results})
