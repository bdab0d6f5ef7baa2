"""The report's figures, drawn with seaborn: pure, tables in and a matplotlib Figure out; report.py
saves them. Each figure's caption is in CAPTIONS, keyed by its file name."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from sweetspot.answer import costmodel
from sweetspot.fmt import fmt, sizes  # noqa: E402

CAPTIONS = {
    "epoch_vs_target": "Seconds per epoch (left) against seconds to the target (right)",
    "accuracy_vs_time": "Test accuracy against training-clock seconds",
    "steps_to_target": "Steps to the target against batch size, with perfect scaling",
    "lr_heatmap": "Seconds to the target by batch size and learning rate",
    "cost_model": "The cost model T(B) = S(B) t(B) over the measured times",
    "loaders": "Seconds to the target with each data pipeline",
    "two_factors": "Steps to the target, seconds per step, and their product against batch size",
    "validation": "Predicted against measured seconds to the target on other stacks",
    "confusion": "The sweet spot's final model on the test set: true class against predicted",
    "comparison": "Seconds to each problem's target, relative to its sweet spot, by batch size",
    "advice_memory": "Microseconds per example against batch size, the step's floors and caches",
    "advice_cores": "Seconds per step of the question's pipeline at each split of the CPUs",
    "advice_blocks": "Microseconds per example at 2^n and 3*2^(n-1) and their neighbours",
}


def cost_curve(chosen: pd.DataFrame, cost: dict, spot: dict, target: float) -> plt.Figure:
    """(e) Why the sweet spot sits where it does: the fitted T(B) over the estimated times."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    hit = chosen[chosen["reached"]]
    sns.scatterplot(hit, x="batch_size", y="estimate", s=60, ax=ax,
                    label="steps x seconds per step (median)")
    grid = np.geomspace(chosen["batch_size"].min() / 2, chosen["batch_size"].max() * 2, 200)
    fitted = costmodel.predicted_time(grid, cost["s_min"], cost["b_noise"], cost["t0"],
                                      cost["c"])
    ax.plot(grid, fitted, "k-", linewidth=1, label="T(B) = S(B) t(B), fitted")
    if math.isfinite(cost["b_star"]):
        ax.axvline(cost["b_star"], color="C2", linestyle="--",
                   label=f"B* = {cost['b_star']:.0f} (model)")
    _mark(ax, spot, f"sweet spot {spot['batch_size']}")
    ax.set(xscale="log", xlabel="batch size", ylabel=f"seconds to {target:g}",
           title=f"Cost model: B_noise = {cost['b_noise']:.0f}, t(B) = "
                 f"{cost['t0'] * 1e6:.0f} us + {cost['c'] * 1e6:.2f} us x B")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loaders(per_loader: dict, target: float) -> plt.Figure:
    """(f) The same question with the question's DataLoader: per-example overhead moves it."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for loader, spot in per_loader.items():
        hit = spot["per_batch"][spot["per_batch"]["reached"]]
        sns.lineplot(hit, x="batch_size", y="estimate", marker="o", ax=ax, label=loader)
        _mark(ax, spot, f"{loader}: sweet spot {spot['batch_size']}",
              region=loader == next(iter(per_loader)))
    ax.set(xlabel="batch size", ylabel=f"seconds to {target:g}", yscale="log",
           title="Seconds to the target by data pipeline")
    ax.set_xscale("log", base=2)
    fig.tight_layout()
    return fig


def _mark(ax, spot: dict, label: str, region: bool = True) -> None:
    """The sweet spot as a gold star, and its sweet region as a gold band across the batch
    sizes in it (nothing when no batch size reached the target)."""
    if spot["batch_size"] is None:
        return
    members = [r["batch_size"] for r in spot.get("region", [])]
    if region and len(members) > 1:  # a band over each run of members contiguous in the tried
        tried = sorted(int(b) for b in spot["per_batch"]["batch_size"])
        runs = [[members[0]]]
        for b in members[1:]:
            contiguous = tried.index(b) == tried.index(runs[-1][-1]) + 1
            runs[-1].append(b) if contiguous else runs.append([b])
        for i, run in enumerate(runs):  # a member alone: a narrow band around it
            pad = 1.08 if len(run) == 1 else 1.0
            ax.axvspan(run[0] / pad, run[-1] * pad, color="gold", alpha=0.25, zorder=0,
                       label="_nolegend_" if i else f"sweet region {sizes(members, tried)}")
    ax.scatter([spot["batch_size"]], [spot["estimate"]], marker="*", s=260, color="gold",
               edgecolors="black", zorder=5, label=label)


def epoch_vs_target(cells: pd.DataFrame, spots: dict) -> plt.Figure:
    """(a) The question's confusion in one picture: cheap epochs are not a fast answer."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    per_epoch = cells.groupby("batch_size", as_index=False)["seconds_per_epoch"].median()
    sns.lineplot(per_epoch, x="batch_size", y="seconds_per_epoch", marker="o", ax=left)
    left.set(title="What the question measured", ylabel="seconds per epoch (training clock)")
    # where to draw an unreached cell: at the training seconds it spent without getting there
    budget = cells.groupby("batch_size")["train_time"].max()
    palette = sns.color_palette("crest", n_colors=max(len(spots), 1))
    for color, (target, spot) in zip(palette, spots.items(), strict=True):
        chosen = spot["per_batch"]
        hit = chosen[chosen["reached"]]
        miss = chosen[~chosen["reached"]]
        sns.lineplot(hit, x="batch_size", y="estimate", marker="o", color=color, ax=right,
                     label=f"target {target:g}")
        right.scatter(miss["batch_size"], budget.loc[miss["batch_size"]], facecolors="none",
                      edgecolors=color, s=60, label=f"not reached ({target:g}): time spent")
        _mark(right, spot, f"sweet spot {spot['batch_size']} ({target:g})",
              region=target == next(iter(spots)))  # the headline target's region
    right.set(title="What matters: time to the target",
              ylabel="seconds to target (steps x seconds per step)")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_time(results: list[dict], chosen: pd.DataFrame, target: float) -> plt.Figure:
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


def steps_to_target(chosen: pd.DataFrame, results: list[dict], target: float) -> plt.Figure:
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


def lr_heatmap(table: pd.DataFrame, target: float) -> plt.Figure:
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


def two_factors(per_batch: pd.DataFrame, rounds: dict[int, list[float]], target: float,
                spot: dict) -> plt.Figure:
    """(g) Time to target = steps to target x seconds per step, side by side: the problem's
    factor (each seed's steps), the machine's (each timing round), their product (with its 95%
    interval) and each batch size's directly measured time."""
    fig, (steps_ax, time_ax, both_ax) = plt.subplots(1, 3, figsize=(14, 4.2))
    hit = per_batch[per_batch["reached"]]
    seeds = pd.DataFrame([{"batch_size": r.batch_size, "steps": s}
                          for r in hit.itertuples() for s in r.steps_runs if math.isfinite(s)])
    if len(seeds):
        sns.lineplot(seeds, x="batch_size", y="steps", estimator="median", errorbar=("pi", 100),
                     marker="o", ax=steps_ax)
    timing = pd.DataFrame([{"batch_size": b, "us": t * 1e6} for b, ts in rounds.items()
                           if b in set(per_batch["batch_size"]) for t in ts])
    sns.lineplot(timing, x="batch_size", y="us", estimator="min", errorbar=("pi", 100),
                 marker="o", color="C1", ax=time_ax)
    both_ax.fill_between(hit["batch_size"], hit["low"], hit["high"], alpha=0.25, color="C2",
                         label="95% interval")
    sns.lineplot(hit, x="batch_size", y="estimate", marker="o", color="C2", ax=both_ax,
                 label="steps x seconds per step")
    both_ax.scatter(hit["batch_size"], hit["measured"], marker="x", color="black", zorder=5,
                    label="measured directly (median quiet time)")
    _mark(both_ax, spot, f"sweet spot {spot['batch_size']}")
    steps_ax.set(ylabel=f"steps to {target:g}", title="The problem's: steps (band: seeds)")
    time_ax.set(ylabel="µs per step", title="The machine's: fastest round (band: all rounds)")
    both_ax.set(ylabel=f"seconds to {target:g}", title="Their product")
    for ax in (steps_ax, time_ax, both_ax):
        ax.set(xlabel="batch size", yscale="log")
        ax.set_xscale("log", base=2)
    both_ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def validation(checks: list[dict]) -> plt.Figure:
    """(h) One panel per stack: predicted (line, 95% band) against measured (points) seconds to
    the target by batch size, the predicted and measured spots marked."""
    fig, axes = plt.subplots(1, len(checks), figsize=(4.6 * len(checks), 4.2), squeeze=False)
    for ax, check in zip(axes[0], checks, strict=True):
        rows = pd.DataFrame(check["per_batch"])
        ax.fill_between(rows["batch_size"], rows["low"], rows["high"], alpha=0.25, color="C0")
        ax.plot(rows["batch_size"], rows["estimate"], "o-", color="C0", label="predicted")
        measured = pd.DataFrame(check["runs"]).dropna(subset=["time"])
        ax.scatter(measured["batch_size"], measured["time"], marker="x", color="black",
                   label="measured runs", zorder=5)
        ax.axvline(check["predicted_spot"], color="C0", linestyle="--", linewidth=1)
        if check["measured_spot"] is not None:  # None: no batch size reached the target
            ax.axvline(check["measured_spot"], color="black", linestyle=":", linewidth=1)
        ax.set(title=f"{check['stack']}\nerror {fmt(check['median_abs_error'], '.0%', '-')}",
               xlabel="batch size", ylabel="seconds to target")
        ax.set_xscale("log", base=2)
        ax.set_xticks(rows["batch_size"], [str(b) for b in rows["batch_size"]])
        ax.minorticks_off()
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def confusion(matrix: pd.DataFrame, per_class: dict, batch_size: int) -> plt.Figure:
    """The final model's confusion matrix (counts; rows the true class), each row labelled with
    its class's accuracy (`per_class`: {class: accuracy}, answer.final_model's)."""
    fig, ax = plt.subplots(figsize=(7.5, 6))
    rows = matrix.set_axis([f"{c} ({per_class[c]:.1%})" for c in matrix.index])
    sns.heatmap(rows, annot=True, fmt="d", cmap="crest", cbar=False, annot_kws={"size": 7},
                ax=ax)
    ax.set(xlabel="predicted class", ylabel="true class (its accuracy)",
           title=f"Batch {batch_size}'s final model: {np.trace(matrix.to_numpy())} of "
                 f"{int(matrix.to_numpy().sum())} test images right")
    fig.tight_layout()
    return fig


def comparison(curves: pd.DataFrame) -> plt.Figure:
    """Beyond one network: each (network, dataset)'s T(B) over its own best (compare.curves)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.lineplot(curves, x="batch_size", y="relative", hue="problem", marker="o", ax=ax)
    ax.axhline(1, color="grey", linewidth=0.5)
    ax.set(yscale="log", xlabel="batch size", ylabel="seconds to target / the sweet spot's",
           title=CAPTIONS["comparison"])
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%gx"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%gx"))
    ax.set_xscale("log", base=2)
    fig.tight_layout()
    return fig
