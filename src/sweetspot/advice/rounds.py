"""The advice stages' timings in steptime's interleaved rounds (steptime.interleave), by key: each
key's fastest round counts (load from other processes only adds time)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sweetspot import paths
from sweetspot.config import Params, SteptimeConfig, TrainConfig
from sweetspot.data.load import Data, load_data, resolve_device
from sweetspot.errors import ConfigError
from sweetspot.measure import machine, steptime
from sweetspot.track import tracking


def load(params: Params, key: str, largest: int) -> Data:
    """A claim stage's data, once its batch sizes are checked against the training set (one line,
    before any work)."""
    if largest > params.train.n_train:
        raise ConfigError(f"advice.{key}: batch size {largest} is larger than the training set "
                          f"({params.train.n_train})")
    return load_data(params.data.dataset, resolve_device(params.train.device),
                     params.train.train_examples)


def named(timers: dict[str, Callable[[], float]]) -> list[Callable[[], dict]]:
    """Timers of seconds (per step, per byte, per FLOP) as steptime.interleave's: each reading
    {key, seconds}."""
    return [lambda k=k, t=t: {"key": k, "seconds": t()} for k, t in timers.items()]


def step_timer(cfg: TrainConfig, data: Data, st: SteptimeConfig,
               kind: str | None = None) -> Callable[[], float]:
    """steptime.timer at cfg's stack and batch size, read as seconds per step."""
    read = steptime.timer(cfg, data, st, kind)
    return lambda: steptime.row_seconds(read(), len(data.x_train))


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
