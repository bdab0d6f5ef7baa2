"""The advice's figures (advice.py draws them): the step against its floors, the splits of the CPUs,
the block sizes. Pure, as figures.py's: documents in, a matplotlib Figure out."""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from sweetspot.report.figures import plt  # with its backend set: files only, no display


def memory(found: dict) -> plt.Figure:
    """The measured cost per example over its arithmetic and memory floors; a dotted line where
    the working set moves into the next cache level."""
    rows = pd.DataFrame(found["rows"])
    long = rows.melt(id_vars=["batch_size"], value_name="us",
                     value_vars=["us_per_example", "arithmetic_floor", "memory_floor"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.lineplot(long, x="batch_size", y="us", hue="variable", marker="o", ax=ax)
    for before, now in zip(found["rows"], found["rows"][1:], strict=False):
        if before["level"] != now["level"]:
            ax.axvline(now["batch_size"], ls=":", color="grey")
            ax.text(now["batch_size"], ax.get_ylim()[1], f" into {now['level']}", va="top",
                    fontsize=8, color="grey")
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="microseconds per example",
           title="The step against this machine's floors")
    fig.tight_layout()
    return fig


def cores(doc: dict) -> plt.Figure:
    """Each split's fastest seconds per step (the question's pipeline), by batch size."""
    rows = []
    for key, seconds in doc["fastest"].items():
        loader, threads, workers, batch = key.split()
        if loader == "torchvision":
            rows.append({"split": f"{workers[:-1]} workers, {threads[:-1]} threads",
                         "batch size": batch[1:], "ms per step": 1e3 * seconds})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.barplot(pd.DataFrame(rows), x="split", y="ms per step", hue="batch size", ax=ax)
    ax.set(title="The question's pipeline: loader workers and torch threads")
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    return fig


def blocks(doc: dict, verdict: dict) -> plt.Figure:
    """Per example, every block size timed, the centres (2^n, 3*2^(n-1)) marked."""
    centres = {c["size"]: c["kind"] for c in verdict["centres"]}
    rows = pd.DataFrame([{"batch size": int(b), "us per example": 1e6 * v["seconds"] / int(b),
                          "kind": centres.get(int(b), "neighbour")}
                         for b, v in doc["steptime"]["per_batch"].items()])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(rows, x="batch size", y="us per example", hue="kind", style="kind", s=50,
                    ax=ax)
    ax.set(xscale="log", yscale="log", title="Block sizes: powers of two and their neighbours")
    fig.tight_layout()
    return fig
