"""Interleaved rounds, the one timing estimator of the advice stages: every timer once per round,
in order, then again; each key's fastest round counts (load from other processes only adds time),
and how busy the machine was is read in every round (machine.busy_share)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

from sweetspot import paths
from sweetspot.config import Params
from sweetspot.errors import ConfigError
from sweetspot.measure import machine
from sweetspot.track import tracking


def check(params: Params, key: str, largest: int) -> None:
    """A claim stage's batch sizes against the training set: one line, before any work."""
    if largest > params.train.n_train:
        raise ConfigError(f"advice.{key}: batch size {largest} is larger than the training set "
                          f"({params.train.n_train})")


def interleave(timers: dict[str, Callable[[], float]], rounds: int, label: str) -> list[dict]:
    """Rows {round, key, seconds, load}: each timer's reading (seconds per its own unit) in each
    round, with the round's busy share. One progress line per round on stderr."""
    rows = []
    for rnd in range(rounds):
        before, mine = machine.usage(), []
        for key, timer in timers.items():
            mine.append({"round": rnd, "key": key, "seconds": timer()})
        load = machine.busy_share(before, machine.usage())
        rows += [{**row, "load": load} for row in mine]
        busy = "" if load is None else f", other processes {load['other']:.0%}"
        print(f"{label}: round {rnd + 1}/{rounds}{busy}", file=sys.stderr, flush=True)
    return rows


def per_key(rows: list[dict]) -> dict[str, list[float]]:
    """Each key's readings, in round order (aligned across keys: round i is the same moment)."""
    out: dict[str, list[float]] = {}
    for row in sorted(rows, key=lambda r: r["round"]):
        out.setdefault(row["key"], []).append(row["seconds"])
    return out


def fastest(rows: list[dict]) -> dict[str, float]:
    return {key: min(values) for key, values in per_key(rows).items()}




def with_rounds(params: Params) -> Params:
    """params with steptime's rounds set to advice.rounds: steptime's measure, at the advice's
    count of rounds."""
    return dataclasses.replace(params, steptime=dataclasses.replace(
        params.steptime, rounds=params.advice.rounds))


def write(params: Params, path, doc: dict, metrics: dict, label: str, started: float) -> None:
    """The stage's document (with the machine and how busy it was) to `path` and one MLflow run
    (its metrics; the document as an artifact), spanning the work from `started`."""
    doc = {**doc, "machine": machine.fingerprint(), "host": tracking.host()}
    with tracking.open_run(params.train.experiment, label,
                      {**tracking.provenance("cpu"), "kind": label}, started) as active:
        active.log_params({"rounds": params.advice.rounds})
        active.log_metrics(metrics)
        active.log_dict(doc, path.name)
    paths.write_json(path, doc)
    print(f"{label}: {machine.load_text(doc.get('load'))}; wrote {path}")
