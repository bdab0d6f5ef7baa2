"""The answer, computed once: every number report.md, its figures' captions, sweet_spot.json and
the comparison print, in one object (Answer), built by build() from the cells, the seconds per
step and the other problems' summaries. Reads; writes nothing (report.py writes, writeup.py
renders the text)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sweetspot import paths
from sweetspot.answer import analysis, costmodel, estimate, fastest
from sweetspot.check import heldout, reproduce
from sweetspot.config import Params
from sweetspot.data import idx
from sweetspot.measure import machine
from sweetspot.report import advice, compare, figures
from sweetspot.sweep import race, sweep
from sweetspot.train.networks import network_name, network_slug


@dataclass
class Answer:
    """One problem's answer. `spots`: the headline data path's answer per target
    (estimate.answers); `loaders`: every data path's, {loader: {"spots": ..., "cost": its cost
    model}}, the headline's first; `timing`: the headline path's steptime document."""

    params: Params
    spots: dict
    cells: pd.DataFrame  # one row per run on the headline path (analysis.cells_table)
    loaders: dict
    timing: dict
    noise: dict | None = None  # the gradient noise scale measured in training (noise_scale)
    plan: dict | None = None  # refinement's plan
    measured_on: dict = field(default_factory=dict)  # the runs' provenance, for "Measured on"
    validations: list = field(default_factory=list)  # `sweetspot validate`'s documents
    final: dict | None = None  # the spot's final model on the test set (final_model)
    here: dict | None = None  # what this repro reproduced here (reproduced_here)
    raced: dict | None = None  # the race (race.summary)
    held: list = field(default_factory=list)  # held-out checks (heldout.documents)
    problems: list = field(default_factory=list)  # every problem's summary, this one's included
    summary: dict | None = None  # this problem's (compare.summary)
    advice: dict | None = None  # the accepted answer's advice (advice.build)
    results: list = field(default_factory=list)  # every cell, every data path
    steps: pd.DataFrame | None = None  # the steps table (estimate.steps_table)

    @property
    def target(self) -> float:
        return self.params.sweep.targets[0]

    @property
    def cost(self) -> dict | None:
        """The headline data path's cost model."""
        return next(iter(self.loaders.values()))["cost"]

    @property
    def headline_runs(self) -> list[dict]:
        return [r for r in self.results if r["loader"] == self.params.sweep.loaders[0]]


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
        values = cells.get(column, pd.Series(dtype=float)).replace([math.inf, -math.inf], np.nan)
        return float(values.median()) if values.notna().any() else None

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


def reproduced_here(results: list[dict], per_batch: pd.DataFrame, targets: list[float],
                    sample: dict | None, rounds: int | None) -> dict | None:
    """What was reproduced on this machine (the reproduce stage's sample): its steps against the
    committed cells', the answer's check of itself on its runs (timed here: measured over
    estimated, estimate.self_check), and which of the cells were trained on the host the sample
    ran on (a committed cell that was missing or changed is retrained, alone, by DVC). `rounds`:
    the seconds' timing rounds, as many as the runs' intervals read. None before the stage
    ran."""
    if sample is None:
        return None
    runs, check = sample["runs"], None
    if runs:
        timed_here = analysis.target_table(runs, targets, rounds)
        check = estimate.self_check(estimate.beside_measured(per_batch, timed_here, targets[0]))
    hosts = {r["provenance"].get("host") for r in runs}
    elsewhere = [r.get("provenance", {}) for r in results
                 if r.get("provenance", {}).get("host") not in hosts]
    return {"sample": sample, "self_check": check, "cells": len(results),
            "trained_here": sorted(r["name"] for r in results
                                   if r.get("provenance", {}).get("host") in hosts),
            "elsewhere_on": sorted({f"{p.get('cpu_model', '?')} "
                                    f"({p.get('torch_cpu_capability', 'vector width unrecorded')})"
                                    for p in elsewhere})}


def timed_beside(results: list[dict], retrained: list[dict], loader: str, doc: dict) -> list[dict]:
    """The runs whose own seconds can stand beside a steptime document's: on its data path, and
    timed on its host since the same boot (elsewhere, or at another time, the machine differs):
    the cells, and the reproduce stage's retrained sample, each cell once (its retraining
    first)."""
    found = {}
    for r in [*retrained, *results]:
        if r["loader"] == loader and r.get("provenance", {}).get("host") == doc.get("host"):
            found.setdefault(r.get("name", id(r)), r)
    return list(found.values())


def validations(params: Params) -> list[dict]:
    """Every stack this problem was validated on (reports/validation/), by file name."""
    mine = paths.validate_file(params.data.dataset, network_slug(params.train), "*")
    return [json.loads(p.read_text()) for p in sorted(paths.VALIDATION.glob(mine.name))]


def forecast_doc(params: Params) -> dict | None:
    """This problem's forecast, made before its sweep (`sweetspot forecast`), if there is one."""
    path = paths.problem_file(paths.FORECAST, params.data.dataset, network_slug(params.train))
    return json.loads(path.read_text()) if path.exists() else None


def summaries(own: dict, path) -> list[dict]:
    """Every swept problem's summary, by file name: reports/compare/'s, with this one's (`own`,
    to be written to `path`) in its place, as the file will read back (JSON: inf as null)."""
    found = {p.name: json.loads(p.read_text()) for p in paths.COMPARE.glob("*.json")}
    found[path.name] = json.loads(json.dumps(paths._json_safe(own)))
    for s in found.values():  # batch sizes as keys
        s["relative_time"] = {int(b): t for b, t in s["relative_time"].items()}
    return [found[name] for name in sorted(found)]


def summary_file(params: Params):
    """Where this problem's summary is kept (reports/compare/<dataset>-<network>.json)."""
    return paths.problem_file(paths.COMPARE, params.data.dataset, network_slug(params.train))


def test_labels(dataset: str) -> list[int]:
    """The test set's labels, from the verified IDX file (what the predictions are scored on)."""
    return idx.read_idx(paths.raw_dir(dataset) / idx.FILES[3]).tolist()


def build(params: Params) -> Answer:
    """The answer for each data path steptime measured, from the cells and the seconds."""
    s = params.sweep
    targets, loader = list(s.targets), s.loaders[0]  # the headline: the first path trained
    results = sweep.read_cells(race.all_paths(params))
    timing = sweep.step_times(params)  # per data path, its steptime document
    seconds = {name: fastest.round_seconds(doc) for name, doc in timing.items()}
    sample = reproduce.document()
    retrained = sample["runs"] if sample else []
    per_loader = {name: estimate.answers(results, seconds[name], targets, s.resamples,
                                         timed_beside(results, retrained, name, timing[name]))
                  for name in timing}
    headline, spots = [r for r in results if r["loader"] == loader], per_loader[loader]
    cells, per_batch = analysis.cells_table(headline), spots[targets[0]]["per_batch"]
    loaders = {name: {"spots": v, "cost": cost_model(v[targets[0]]["per_batch"])}
               for name, v in per_loader.items()}
    cost, noise = loaders[loader]["cost"], noise_scale(cells)
    steps = estimate.steps_table(results, targets, dataset=params.data.dataset,
                                 network=network_name(params.train),
                                 optimizer=params.train.optimizer)
    raced = race.summary(params, results, seconds[loader], targets[0])
    own = compare.summary(params, network_name(params.train), spots[targets[0]], cost, noise,
                          forecast_doc(params), machine.describe(timing[loader]["machine"]),
                          raced)
    plan_file = paths.REFINE / paths.PLAN
    tags = {k: v for k, v in results[0].get("provenance", {}).items() if k != "dvc_stage"}
    return Answer(
        params=params, spots=spots, cells=cells, loaders=loaders, timing=timing[loader],
        noise=noise, plan=json.loads(plan_file.read_text()) if plan_file.exists() else None,
        measured_on={"dataset": params.data.dataset, **tags,  # torch_threads: those it used
                     "seconds per step measured on": own["machine"]},
        validations=validations(params),
        final=final_model(headline, per_batch, spots[targets[0]],
                          test_labels(params.data.dataset)),
        here=reproduced_here(headline, per_batch, targets, sample,
                             fastest.rounds(seconds[loader])),
        raced=raced,
        held=heldout.documents(), problems=summaries(own, summary_file(params)), summary=own,
        advice=advice.build(params, results, per_loader, targets[0], cost, steps,
                            race.undecided(raced)), results=results,
        steps=steps)
