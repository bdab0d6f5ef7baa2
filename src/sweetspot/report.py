"""The report: which batch size reaches the target fastest here, and why per-epoch time misled.

Reads the cells' JSON files (reports/cells/*/, never the MLflow store, so DVC tracks its inputs);
writes reports/sweet_spot.json (DVC metrics), reports/figures/*.png (seaborn), reports/plots/
(DVC plots data) and reports/report.md, and files the sweep in MLflow as a parent run over its
cells. Run: `dvc repro report` or `sweetspot report`. Headline on a 2-core AMD EPYC CPU: batch 32
reaches 97% fastest (1.05 s, lr 1, 3 seeds); the cost model puts B* at 25.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from sweetspot import analysis, config, sweep  # noqa: E402
from sweetspot.config import Params  # noqa: E402

REPORTS = Path("reports")
METRICS = REPORTS / "sweet_spot.json"
FIGURES = REPORTS / "figures"
PLOTS = REPORTS / "plots"
REPORT_MD = REPORTS / "report.md"
FIGURE_FILES = {
    "epoch_vs_target": "Seconds per epoch (left) against seconds to the target (right)",
    "accuracy_vs_time": "Test accuracy against training-clock seconds",
    "steps_to_target": "Steps to the target against batch size, with perfect scaling",
    "lr_heatmap": "Seconds to the target by batch size and learning rate",
    "cost_model": "The cost model T(B) = S(B) t(B) over the measured times",
    "loaders": "Seconds to the target with each data pipeline",
}


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
    s_min, b_noise = analysis.fit_steps(hit["batch_size"], hit["median_steps"])
    per_batch = cells.groupby("batch_size")["mean_step_time"].median()
    t0, c = analysis.fit_step_time(per_batch.index, per_batch.to_numpy())
    return {"s_min": s_min, "b_noise": b_noise, "t0": t0, "c": c,
            "b_star": analysis.optimal_batch(b_noise, t0, c)}


def noise_scale(cells: pd.DataFrame) -> dict:
    """The gradient noise scale B_simple measured during training: median over runs of the first
    estimate and of the run-averaged one (McCandlish et al. report ~50 and ~900 for MNIST)."""
    def median(column):
        values = cells[column].replace([math.inf, -math.inf], np.nan).dropna() \
            if column in cells else pd.Series(dtype=float)
        return float(values.median()) if len(values) else None

    return {"early": median("b_simple_first"), "averaged": median("b_simple_mean")}


def figure_cost_model(chosen: pd.DataFrame, model: dict, spot: dict, target: float) -> plt.Figure:
    """(e) Why the sweet spot sits where it does: the fitted T(B) over the measured times."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    hit = chosen[chosen["reached"]]
    sns.scatterplot(hit, x="batch_size", y="median_time", s=60, ax=ax, label="measured (median)")
    grid = np.geomspace(chosen["batch_size"].min() / 2, chosen["batch_size"].max() * 2, 200)
    fitted = analysis.predicted_time(grid, model["s_min"], model["b_noise"], model["t0"],
                                     model["c"])
    ax.plot(grid, fitted, "k-", linewidth=1, label="T(B) = S(B) t(B), fitted")
    if math.isfinite(model["b_star"]):
        ax.axvline(model["b_star"], color="C2", linestyle="--",
                   label=f"B* = {model['b_star']:.0f} (model)")
    _mark(ax, spot, f"sweet spot {spot['batch_size']} (measured)")
    ax.set(xscale="log", xlabel="batch size", ylabel=f"seconds to {target:g}",
           title=f"Cost model: B_noise = {model['b_noise']:.0f}, t(B) = "
                 f"{model['t0'] * 1e6:.0f} us + {model['c'] * 1e6:.2f} us x B")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_loaders(per_loader: dict, target: float) -> plt.Figure:
    """(f) The same question with the question's DataLoader: per-example overhead moves it."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for loader, spot in per_loader.items():
        hit = spot["chosen"][spot["chosen"]["reached"]]
        sns.lineplot(hit, x="batch_size", y="median_time", marker="o", ax=ax,
                     label=f"{loader}: sweet spot {spot['batch_size']}")
    ax.set(xlabel="batch size", ylabel=f"seconds to {target:g}", yscale="log",
           title="Seconds to the target by data pipeline")
    ax.set_xscale("log", base=2)
    fig.tight_layout()
    return fig


def _mark(ax, spot: dict, label: str) -> None:
    """The sweet spot as a gold star (nothing when no batch size reached the target)."""
    if spot["batch_size"] is not None:
        ax.scatter([spot["batch_size"]], [spot["median_time"]], marker="*", s=260, color="gold",
                   edgecolors="black", zorder=5, label=label)


def _censored_budget(cells: pd.DataFrame) -> pd.Series:
    """Where to draw an unreached cell: at the training seconds it spent without getting there."""
    return cells.groupby("batch_size")["train_time"].max()


def figure_epoch_vs_target(cells: pd.DataFrame, spots: dict) -> plt.Figure:
    """(a) The question's confusion in one picture: cheap epochs are not a fast answer."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    per_epoch = cells.groupby("batch_size", as_index=False)["seconds_per_epoch"].median()
    sns.lineplot(per_epoch, x="batch_size", y="seconds_per_epoch", marker="o", ax=left)
    left.set(title="What the question measured", ylabel="seconds per epoch (training clock)")
    budget = _censored_budget(cells)
    palette = sns.color_palette("crest", n_colors=max(len(spots), 1))
    for color, (target, spot) in zip(palette, spots.items(), strict=True):
        chosen = spot["chosen"]
        hit = chosen[chosen["reached"]]
        miss = chosen[~chosen["reached"]]
        sns.lineplot(hit, x="batch_size", y="median_time", marker="o", color=color, ax=right,
                     label=f"target {target:g}")
        right.scatter(miss["batch_size"], budget.loc[miss["batch_size"]], facecolors="none",
                      edgecolors=color, s=60, label=f"not reached ({target:g}): time spent")
        _mark(right, spot, f"sweet spot {spot['batch_size']} ({target:g})")
    right.set(title="What matters: time to the target", ylabel="seconds to target (training clock)")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_accuracy_vs_time(results: list[dict], chosen: pd.DataFrame, target: float) -> plt.Figure:
    """(b) Test accuracy against training-clock seconds, one line per batch size at its rate."""
    rows = [{"batch size": r["batch_size"], **p} for r in chosen_runs(results, chosen)
            for p in r["curve"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if rows:
        curves = pd.DataFrame(rows)
        sns.lineplot(curves, x="time", y="test_acc", hue="batch size", palette="viridis",
                     hue_norm=matplotlib.colors.LogNorm(), legend="full", ax=ax)
        ax.set_ylim(max(0.8, curves["test_acc"].min()), 1.0)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="training-clock seconds", ylabel="test accuracy",
           title=f"Accuracy over time (dashed: target {target:g})")
    fig.tight_layout()
    return fig


def figure_steps_to_target(chosen: pd.DataFrame, results: list[dict], target: float) -> plt.Figure:
    """(c) Steps to target: perfect scaling halves the steps when the batch doubles."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    hit = chosen[chosen["reached"]]
    sns.lineplot(hit, x="batch_size", y="median_steps", marker="o", ax=ax, label="measured")
    if len(hit):
        b0, s0 = hit["batch_size"].iloc[0], hit["median_steps"].iloc[0]
        grid = np.array(sorted(chosen["batch_size"]))
        ax.plot(grid, s0 * b0 / grid, "k--", linewidth=1, label="perfect scaling (steps x 1/B)")
    miss = chosen[~chosen["reached"]]
    steps = {(r["batch_size"], r["lr"]): r["steps"] for r in results}
    taken = [steps[b, lr] for b, lr in zip(miss["batch_size"], miss["lr"], strict=True)]
    ax.scatter(miss["batch_size"], taken, facecolors="none",
               edgecolors="C3", s=60, label="not reached: steps taken")
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="steps to target",
           title=f"Steps to {target:g}")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_lr_heatmap(table: pd.DataFrame, target: float) -> plt.Figure:
    """(d) Seconds to target for every (batch size, rate); blank cells never reached it."""
    at = table[table["target"] == target]
    grid = at.groupby(["lr", "batch_size"])["time"].median().unstack("batch_size")
    fig, ax = plt.subplots(figsize=(8, 3 + 0.4 * len(grid)))
    shown = grid.replace(math.inf, np.nan)
    sns.heatmap(shown, annot=True, fmt=".1f", cmap="rocket_r", mask=shown.isna(), ax=ax,
                cbar_kws={"label": "seconds to target"})
    ax.set_facecolor("#dddddd")
    ax.set(xlabel="batch size", ylabel="learning rate",
           title=f"Seconds to {target:g} (grey: not reached within the budget)")
    fig.tight_layout()
    return fig


def chosen_runs(results: list[dict], chosen: pd.DataFrame) -> list[dict]:
    """One run per batch size: at its chosen rate, with the first seed."""
    seed = min(r["seed"] for r in results)
    rate = dict(zip(chosen["batch_size"], chosen["lr"], strict=True))
    picked = [r for r in results if r["seed"] == seed and rate.get(r["batch_size"]) == r["lr"]]
    return sorted(picked, key=lambda r: r["batch_size"])


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
             machine: dict, figures: list[str], model: dict | None = None,
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
    lines += [f"![{FIGURE_FILES[name]}](figures/{name}.png)" for name in figures]
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
    plan_file = sweep.REFINE / sweep.PLAN
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

    figures = {"epoch_vs_target": figure_epoch_vs_target(cells, spots),
               "accuracy_vs_time": figure_accuracy_vs_time(headline, chosen, target),
               "steps_to_target": figure_steps_to_target(chosen, headline, target)}
    if table["lr"].nunique() > 1:
        figures["lr_heatmap"] = figure_lr_heatmap(table, target)
    if model:
        figures["cost_model"] = figure_cost_model(chosen, model, spots[target], target)
    if len(per_loader) > 1:
        figures["loaders"] = figure_loaders({k: v[target] for k, v in per_loader.items()}, target)
    FIGURES.mkdir(parents=True, exist_ok=True)
    for stale in FIGURES.glob("*.png"):
        stale.unlink()
    for name, fig in figures.items():
        fig.savefig(FIGURES / f"{name}.png", dpi=110)
        plt.close(fig)
    write_plots(headline, chosen)
    doc = metrics_doc(spots, targets)
    doc.update(dataset=params.data.dataset, loader=loader, cost_model=model, noise_scale=noise)
    if len(per_loader) > 1:
        doc["per_loader"] = {k: metrics_doc(v, targets)["per_target"] for k, v in
                             per_loader.items()}
    METRICS.write_text(json.dumps(_plain(doc), indent=1) + "\n")
    machine = {"dataset": params.data.dataset,
               **{k: v for k, v in results[0].get("provenance", {}).items() if k != "dvc_stage"}}
    REPORT_MD.write_text(markdown(spots, targets, cells, plan, machine, list(figures), model,
                                  noise, {k: v[target] for k, v in per_loader.items()}))
    file_sweep(params, results, doc)
    print(f"report: sweet spot {doc['batch_size']} at {target:g} "
          f"({_fmt(doc['time_to_target'])} s); wrote {REPORT_MD}")
    return 0


def write_plots(results: list[dict], chosen: pd.DataFrame) -> None:
    """Data for `dvc plots show`: one accuracy curve per batch size, and the chosen cells."""
    curves = PLOTS / "curves"
    curves.mkdir(parents=True, exist_ok=True)
    for stale in curves.glob("*.csv"):
        stale.unlink()
    for r in chosen_runs(results, chosen):
        pd.DataFrame(r["curve"])[["time", "examples", "test_acc", "test_loss"]].to_csv(
            curves / f"b{r['batch_size']:05d}.csv", index=False)
    table = chosen.replace([math.inf], np.nan)[["batch_size", "lr", "median_time",
                                                "median_steps"]]
    table.to_csv(PLOTS / "time_to_target.csv", index=False)


def file_sweep(params: Params, results: list[dict], doc: dict) -> None:
    """One parent run per sweep definition, carrying the answer and the figures; every cell run
    present in this store becomes its child (the `mlflow ui` groups them under it)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from sweetspot import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri())
    client = MlflowClient()
    experiment = tracking.experiment_id(params.train.experiment)
    key = sweep_key(params)
    found = client.search_runs([experiment], f"tags.sweep_key = '{key}' and tags.kind = 'sweep'")
    if found:
        parent = found[0].info.run_id
    else:
        parent = tracking.retry(client.create_run, experiment, run_name=f"sweep {key}",
                                tags={"sweep_key": key, "kind": "sweep"}).info.run_id
    summary = {"sweet_spot_batch_size": doc["batch_size"], "time_to_target": doc["time_to_target"],
               "cells": len(results)}
    for name, value in summary.items():
        if value is not None:
            tracking.retry(client.log_metric, parent, name, float(value))
    tracking.retry(client.log_param, parent, "targets", str(list(params.sweep.targets)))
    tracking.retry(client.log_artifacts, parent, str(FIGURES), "figures")
    tracking.retry(client.log_artifact, parent, str(REPORT_MD))
    tracking.retry(client.log_artifact, parent, str(METRICS))
    for r in results:
        try:
            tracking.retry(client.set_tag, r["run_id"], "mlflow.parentRunId", parent)
            tracking.retry(client.set_tag, r["run_id"], "sweep_key", key)
        except Exception:  # noqa: BLE001 - a cell restored from DVC's cache, run in another store
            print(f"report: cell {r['name']} has no run in this MLflow store (restored by DVC)")
    tracking.retry(client.set_terminated, parent)
