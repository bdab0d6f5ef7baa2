"""Processors: every split of this machine's usable CPUs between DataLoader workers and torch
threads, for the question's pipeline (torchvision's dataset, ToTensor per image, the DataLoader),
and torch's threads for the tensor path. The answer: "keep them all busy ... some cores for the
model's computation, some for I/O".

Reads data/<dataset>/raw and params.yaml (`advice` for the rounds and batch sizes, `train` for
the network); writes reports/advice/cores.json and one MLflow run. Run: `dvc repro cores`.

Every split (threads 1..n x workers 0..n on n CPUs) is a training step drawn as a run draws it
(steptime.timer), timed at advice.split_batch_sizes in interleaved rounds, fastest round each.
The best split for the question's pipeline (the smallest geometric mean over those batch sizes)
is then measured as steptime measures, at every batch size the sweep may train, so the report
answers for the question's pipeline at its best split beside num_workers=0: when it beats the
question's split beyond the rounds' spread (BEYOND), for otherwise the question's own split
answers as well, and steptime has measured it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time

from sweetspot import paths
from sweetspot.advice import rounds
from sweetspot.answer import procedure
from sweetspot.config import Params
from sweetspot.measure import steptime

QUESTION = (1, 0)  # the question's split: one thread (train.threads here), no loader workers
BEYOND = 0.02  # a split beats the question's when faster by this in 3 rounds of 4 (its q1)


def splits(cpus: int) -> list[tuple[int, int]]:
    """(threads, workers): every split of `cpus`, oversubscribed ones included (they are what a
    user might try): threads 1..cpus x workers 0..cpus."""
    return [(t, w) for t in range(1, cpus + 1) for w in range(cpus + 1)]


def key(loader: str, threads: int, workers: int, batch_size: int) -> str:
    return f"{loader} {threads}t {workers}w b{batch_size}"


def best_split(fastest: dict[str, float], cpus: int, batch_sizes: list[int],
               loader: str = "torchvision") -> tuple[int, int]:
    """The split of `loader`'s path with the smallest geometric mean of seconds per step over the
    batch sizes (each the fastest of its rounds); the tensor path's have no loader workers. Pure."""
    def cost(split):
        return sum(math.log(fastest[key(loader, *split, b)]) for b in batch_sizes)

    return min((s for s in splits(cpus) if loader != "tensor" or s[1] == 0), key=cost)


def speedups(per_round: dict[str, list[float]], split: tuple[int, int],
             batch_sizes: list[int], loader: str = "torchvision") -> dict[str, dict]:
    """Per batch size: the question's split over `split`, fastest round against fastest round,
    and the quartiles of the same ratio round by round (rounds are aligned): its spread. Pure."""
    out = {}
    for b in batch_sizes:
        base, best = per_round[key(loader, *QUESTION, b)], per_round[key(loader, *split, b)]
        ratios = sorted(q / s for q, s in zip(base, best, strict=True))
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        out[str(b)] = {"speedup": min(base) / min(best), "q1": q1, "q3": q3}
    return out


def main(params: Params) -> int:
    started = time.time()
    data = rounds.load(params, "split_batch_sizes", max(params.advice.split_batch_sizes))
    a, cfg = params.advice, params.train
    cpus, sizes = len(os.sched_getaffinity(0)), list(a.split_batch_sizes)
    configs = [("torchvision", t, w) for t, w in splits(cpus)]
    configs += [("tensor", t, 0) for t in range(1, cpus + 1)]
    timers = {key(loader, t, w, b): rounds.step_timer(dataclasses.replace(
        cfg, loader=loader, threads=t, loader_workers=w, batch_size=b), data, params.steptime)
        for loader, t, w in configs for b in sizes}
    print(f"cores: {len(timers)} (split, batch size) pairs on {cpus} CPUs x {a.rounds} rounds")
    rows = steptime.interleave(rounds.named(timers), a.rounds, "cores")
    fastest, per_round = rounds.fastest(rows), rounds.per_key(rows)
    best, tensor_best = best_split(fastest, cpus, sizes), best_split(fastest, cpus, sizes, "tensor")
    del timers  # the loaders' worker processes end here, before the best split is measured
    threads, workers = best
    speed = speedups(per_round, best, sizes)
    beyond = all(v["q1"] > 1 + BEYOND for v in speed.values())
    doc = None
    if beyond:  # else the question's own split answers it as well: steptime's num_workers=0
        at_best = dataclasses.replace(params, train=dataclasses.replace(
            cfg, loader="torchvision", threads=threads, loader_workers=workers))
        doc = steptime.measure_doc(rounds.with_rounds(at_best), data,
                                   procedure.candidate_batches(params))
    result = {"cpus": cpus, "splits": splits(cpus), "batch_sizes": sizes, "fastest": fastest,
              "rows": rows, "load": steptime.load_summary(rows),
              "best": {"threads": threads, "workers": workers, "beyond": beyond},
              "speedup": speed, "tensor_threads": {"best": tensor_best[0], "speedup": speedups(
                  per_round, tensor_best, sizes, "tensor")},
              "best_split": doc}
    geo = statistics.geometric_mean([v["speedup"] for v in speed.values()])
    rounds.write(params, paths.CORES, result, {"best_threads": threads, "best_workers": workers,
                                              "best_speedup": geo}, "cores", started)
    print(f"cores: the question's pipeline is fastest with {workers} loader worker(s) and "
          f"{threads} thread(s), {geo:.2f}x its num_workers=0 speed"
          + ("" if beyond else ", not beyond the rounds' spread: its answer is num_workers=0's"))
    return 0
