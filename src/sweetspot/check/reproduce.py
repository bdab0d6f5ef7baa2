"""Reproducing the steps here: the `reproduce` stage.

The cells travel with the repository (their JSON are committed `cache: false` outputs of their
stages), so a clone trains none of them. Steps belong to the problem, so a sample of them, trained
again on this machine, must give the same steps: this stage retrains every seed of the sweet spot
at its rate and one seed at each edge of the sweet region (the headline target, the first data
path), compares each one's steps to every target with its committed cell's, names the likely
cause of any that differ, and keeps the runs, timed here, for the report's check of itself (its
runs against the estimate). It depends on reports/machine.json, as steptime does, so it runs again
on another machine, stack or speed, and when the cells or the seconds change.

Reads the cells, reports/steptime.json and reports/machine.json; writes reports/reproduce.json;
each retrained run is an MLflow run (sweep_stage "reproduce").
"""

from __future__ import annotations

import json
import math
import sys
import time

from sweetspot import paths
from sweetspot.answer import estimate, fastest
from sweetspot.config import Params
from sweetspot.sweep import race, sweep

KEEP = ("name", "batch_size", "lr", "base_lr", "seed", "loader", "curve", "outcome", "run_id",
        "target_accuracy", "mean_step_time", "provenance")  # what the report reads of a run


def sample(results: list[dict], spot: dict, per_batch) -> list[tuple[dict, str]]:
    """The committed cells to retrain, each with its role: every seed of the spot at its chosen
    rate ("spot"), then the lowest seed at the chosen rate of the sweet region's smallest and
    largest member ("edge"), where that is not the spot."""
    rate = {int(r.batch_size): float(r.lr) for r in per_batch.itertuples()}

    def cells_at(b: int) -> list[dict]:
        mine = [r for r in results if r["batch_size"] == b and math.isclose(r["lr"], rate[b])]
        return sorted(mine, key=lambda r: r["seed"])

    picked = [(c, "spot") for c in cells_at(spot["batch_size"])]
    members = [m["batch_size"] for m in spot["region"]]
    for edge in sorted({min(members), max(members)} - {spot["batch_size"]}):
        picked += [(c, "edge") for c in cells_at(edge)[:1]]
    return picked


def steps_to(result: dict, targets: list[float]) -> dict[str, float | None]:
    """Steps to each target (None: not reached), as the steps table reads them."""
    table = estimate.steps_table([result], targets)
    return {f"{t:g}": (None if c else float(s)) for t, s, c in
            zip(table["target"], table["steps"], table["censored"], strict=True)}


def causes(committed: dict, here: dict, results: list[dict]) -> list[str]:
    """Why a retrained cell's steps may differ from its committed cell's: another CPU vector width
    (its kernels round differently), another torch, or a rate at the edge of stability (a higher
    rate at this batch size diverged or missed the target, so small differences grow)."""
    there, mine = committed.get("provenance", {}), here.get("provenance", {})
    found = []
    for key, what in (("torch_cpu_capability", "the CPU's vector width"),
                      ("torch_version", "another torch")):
        if there.get(key) and there.get(key) != mine.get(key):
            found.append(f"{what} ({there[key]} there, {mine[key]} here)")
    higher = [r for r in results if r["batch_size"] == committed["batch_size"]
              and r["lr"] > committed["lr"] and r["outcome"] != "reached"]
    if higher:
        found.append(f"a rate at the edge of stability (lr {max(r['lr'] for r in higher):g} "
                     "at this batch size did not reach the target)")
    return found


def compare(committed: dict, here: dict, role: str, targets: list[float],
            results: list[dict]) -> dict:
    """One sampled cell: its steps to each target, committed and here, and whether they agree."""
    old, new = steps_to(committed, targets), steps_to(here, targets)
    same = old == new
    headline = f"{targets[0]:g}"
    ratio = (new[headline] / old[headline] if old[headline] and new[headline] is not None
             else None)
    return {"name": committed["name"], "role": role, "batch_size": committed["batch_size"],
            "lr": committed["lr"], "seed": committed["seed"], "committed": old, "here": new,
            "identical": same, "ratio": ratio,
            "causes": [] if same else causes(committed, here, results)}


def main(params: Params) -> int:
    s = params.sweep
    targets, loader = list(s.targets), s.loaders[0]
    results = [r for r in sweep.read_cells(race.all_paths(params)) if r["loader"] == loader]
    seconds = fastest.round_seconds(sweep.step_times(params)[loader])
    found = estimate.estimate(estimate.steps_table(results, [targets[0]]), seconds,
                              targets[0], s.resamples)
    spot = found["spot"]
    picked = sample(results, spot, found["per_batch"]) if spot["batch_size"] else []
    print(f"reproduce: retraining {len(picked)} of the {len(results)} committed cells here: "
          f"{', '.join(c['name'] for c, _ in picked)}", file=sys.stderr, flush=True)
    began, rows, runs = time.perf_counter(), [], []
    for i, (committed, role) in enumerate(picked, 1):
        cell = sweep.Cell(committed["batch_size"], committed["base_lr"], committed["seed"], loader)
        here = sweep.run_cell(params, cell, None, "reproduce")
        runs.append({"name": cell.name, **{k: here[k] for k in KEEP if k in here}})
        rows.append(compare(committed, here, role, targets, results))
        print(f"reproduce: [{i}/{len(picked)}] {cell.name}: "
              f"{'identical steps' if rows[-1]['identical'] else 'steps differ'} "
              f"({time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
    doc = {"target": targets[0], "loader": loader, "spot": spot["batch_size"],
           "region": [m["batch_size"] for m in spot["region"]],
           "sampled": len(rows), "identical": sum(r["identical"] for r in rows),
           "cells": len(results), "seconds": time.perf_counter() - began, "rows": rows,
           "runs": runs}
    paths.write_json(paths.REPRODUCE, doc)
    print(f"reproduce: {doc['identical']} of {doc['sampled']} sampled cells reproduced their "
          f"steps; wrote {paths.REPRODUCE}")
    return 0


def document() -> dict | None:
    """The stage's reports/reproduce.json, or None before it ran."""
    return json.loads(paths.REPRODUCE.read_text()) if paths.REPRODUCE.exists() else None
