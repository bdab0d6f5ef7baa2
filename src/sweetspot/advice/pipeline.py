"""The question's pipeline taken apart: its DataLoader and its eager step, each alone. Seconds per
step of the four stacks (the tensor path or the question's torchvision DataLoader, each with the
engine's step or the eager autograd step) at advice.pipeline_batch_sizes, in interleaved rounds,
fastest round each, so that the report says how much of the question's time is its data pipeline
and how much its step.

Reads data/<dataset>/raw and params.yaml; writes reports/advice/pipeline.json and one MLflow run.
Run: `dvc repro pipeline`.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from sweetspot import paths
from sweetspot.advice import rounds
from sweetspot.config import Params
from sweetspot.measure import steptime

STACKS = (("tensor", "exact"), ("tensor", "eager"), ("torchvision", "exact"),
          ("torchvision", "eager"))  # the last is the question's: its DataLoader, its step


def key(loader: str, kind: str, batch_size: int) -> str:
    return f"{loader} {kind} b{batch_size}"


def factors(fastest: dict[str, float], batch_sizes: list[int]) -> dict[str, dict]:
    """Per batch size, against the tensor path's engine step: the question's pipeline (total),
    its DataLoader alone (with the engine's step) and its eager step alone (on the tensor path),
    as factors; the share of the question's step that each adds to the engine's; and the
    seconds per step of all four stacks. Pure."""
    out = {}
    for b in batch_sizes:
        at = {f"{loader} {kind}": fastest[key(loader, kind, b)] for loader, kind in STACKS}
        base, question = at["tensor exact"], at["torchvision eager"]
        out[str(b)] = {"seconds": at, "total": question / base,
                       "loader": at["torchvision exact"] / base, "step": at["tensor eager"] / base,
                       "loader_share": (at["torchvision exact"] - base) / question,
                       "step_share": (at["tensor eager"] - base) / question}
    return out


def main(params: Params) -> int:
    started = time.time()
    sizes = list(params.advice.pipeline_batch_sizes)
    data = rounds.load(params, "pipeline_batch_sizes", max(sizes))
    cfg = dataclasses.replace(params.train, loader_workers=0)
    timers = {key(loader, kind, b): rounds.step_timer(dataclasses.replace(
        cfg, loader=loader, batch_size=b), data, params.steptime, kind)
        for loader, kind in STACKS for b in sizes}
    print(f"pipeline: {len(timers)} (stack, batch size) pairs x {params.advice.rounds} rounds, "
          f"{torch.get_num_threads()} thread(s)")
    rows = steptime.interleave(rounds.named(timers), params.advice.rounds, "pipeline")
    found = factors(rounds.fastest(rows), sizes)
    rounds.write(params, paths.PIPELINE, {"batch_sizes": sizes, "stacks": STACKS,
                                          "per_batch": found, "rows": rows,
                                          "load": steptime.load_summary(rows)},
                 {f"{name}/{b}": v[name] for b, v in found.items()
                  for name in ("total", "loader", "step")}, "pipeline", started)
    return 0
