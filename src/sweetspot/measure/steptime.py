"""Seconds per training step on this machine, the factor of time to target that belongs to it.

Reads data/<dataset>/raw and params.yaml (`train` for the stack: device, engine or compile,
threads; `sweep` for the batch sizes; `steptime` for the rounds and the data paths); writes
reports/steptime.json and one MLflow run. Run: `sweetspot steptime` or `dvc repro steptime`.

Every batch size the sweep may train (its grid, the extremes, and every 3*2^n neighbour that
refinement could add) is measured with the step and the batches a training run uses, in many
short interleaved rounds (B1 ... Bn, then again). Steps are timed in blocks as training times
them (device synchronised, then perf_counter); every block starts an epoch, whose start (the
shuffle, or the DataLoader's new iterator) is timed apart and spread over an epoch's steps.

The estimate is each batch size's fastest round (fastest.machine_seconds): load from other
processes only adds time, so the minimum is the one estimator it cannot move while any round is
quiet; a median would flip with whichever load state held most rounds. How
busy the machine was is read in every round (machine.busy_share) and kept.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import sys
import time
from collections.abc import Callable

import torch

from sweetspot import config, paths
from sweetspot.answer import fastest, procedure
from sweetspot.config import Params, SteptimeConfig, TrainConfig
from sweetspot.data.load import Data, epoch_batches, load_data, resolve_device
from sweetspot.measure import machine
from sweetspot.track import tracking
from sweetspot.train import networks
from sweetspot.train.loop import clock, use_threads
from sweetspot.train.step import kind_for, make_step, step_for


def stack(cfg: TrainConfig) -> dict:
    """What the seconds per step depend on, besides the batch size and the machine: the
    settings of machine.STACK, train.compile as the step it picks, threads as torch runs them."""
    found = {k: getattr(cfg, k) for k in machine.STACK if k != "compile"}
    return {**found, "step": kind_for(cfg), "threads": cfg.threads or torch.get_num_threads()}


def stack_name(cfg: TrainConfig) -> str:
    """The stack in a file name: cpu-tensor-exact-2threads (cpu-torchvision-exact-1threads-2workers
    with loader workers)."""
    s = stack(cfg)
    workers = f"-{s['loader_workers']}workers" if s["loader_workers"] else ""
    return f"{s['device']}-{s['loader']}-{s['step']}-{s['threads']}threads{workers}"


class Stepper:
    """One batch size's training steps, drawn as a run draws them, ready to be timed in blocks."""

    def __init__(self, cfg: TrainConfig, data: Data, kind: str | None = None):
        """`kind` (step.KINDS): another step than the data path's own (kind_for)."""
        torch.manual_seed(cfg.seed)
        model = networks.build(cfg).to(data.device)
        self.step = (make_step(kind, model, cfg.optimizer, cfg.lr, cfg.momentum) if kind
                     else step_for(cfg, model))
        n = len(data.x_train)
        self.step.prepare({cfg.batch_size, n % cfg.batch_size})  # compiled: before any clock
        self.epoch = epoch_batches(cfg.loader, data, cfg.batch_size,
                                   torch.Generator().manual_seed(cfg.seed), cfg.loader_workers)
        # Loader workers fetch ahead (2 batches each, DataLoader's prefetch_factor) while other
        # batch sizes are timed: those batches are taken off the clock, with the epoch's start.
        self.ahead = 2 * cfg.loader_workers
        self.batches, self.device = iter(()), data.device
        self.steps_per_epoch = math.ceil(n / cfg.batch_size)
        self.loss_sum = torch.zeros((), device=data.device)

    def block(self, n: int) -> tuple[float, list[float]]:
        """Start an epoch, take n steps; return the seconds the steps took and the seconds of
        each epoch start (the first, and any the block ran into)."""
        starts, seconds = [], 0.0
        self.batches = iter(())
        t0 = clock(self.device)
        for _ in range(n):
            batch = next(self.batches, None)
            if batch is None:  # a new epoch: its shuffle timed apart
                now = clock(self.device)
                seconds += now - t0
                self.batches = iter(self.epoch())
                batch = next(self.batches)
                starts.append(clock(self.device) - now)
                for _ in range(min(self.ahead, self.steps_per_epoch - 1 - n)):  # when they fit
                    batch = next(self.batches)
                t0 = clock(self.device)
            self.loss_sum += self.step(*batch)
        return seconds + clock(self.device) - t0, starts


def timer(cfg: TrainConfig, data: Data, st: SteptimeConfig,
          kind: str | None = None) -> Callable[[], dict]:
    """cfg.batch_size's steps (a Stepper), warmed up off the clock, as interleave's timer: each
    call times one block of at least st.min_steps steps and st.min_examples examples in
    cfg.threads (the stacks interleaved may differ), read as {batch_size, steps, seconds,
    epoch_starts}."""
    use_threads(cfg)
    stepper = Stepper(cfg, data, kind)
    stepper.block(cfg.warmup_steps + stepper.ahead)
    n = max(st.min_steps, math.ceil(st.min_examples / cfg.batch_size))

    def read() -> dict:
        use_threads(cfg)
        seconds, starts = stepper.block(n)
        return {"batch_size": cfg.batch_size, "steps": n, "seconds": seconds,
                "epoch_starts": starts}
    return read


def row_seconds(row: dict, n_train: int) -> float:
    """A timer's reading as seconds per step: its block's, with the mean of the epoch starts it
    timed spread over an epoch's steps (an epoch start is paid once an epoch)."""
    starts = statistics.mean(row["epoch_starts"]) if row["epoch_starts"] else 0.0
    return row["seconds"] / row["steps"] + starts / math.ceil(n_train / row["batch_size"])


def interleave(timers: list[Callable[[], dict]], rounds: int,
               label: str | None = None) -> list[dict]:
    """Every timer once a round, in order, then again: a row per reading, {round, order,
    **reading, load}, where load is the round's busy share (machine.busy_share). With a label,
    one progress line a round on stderr."""
    rows = []
    for rnd in range(rounds):
        before = machine.usage()
        mine = [{"round": rnd, "order": len(rows) + i, **t()} for i, t in enumerate(timers)]
        load = machine.busy_share(before, machine.usage())
        rows += [{**row, "load": load} for row in mine]
        if label:
            busy = "" if load is None else f", other processes {load['other']:.0%}"
            print(f"{label}: round {rnd + 1}/{rounds}{busy}", file=sys.stderr, flush=True)
    return rows


def measure(cfg: TrainConfig, data: Data, batch_sizes: list[int], st: SteptimeConfig,
            label: str | None = None) -> list[dict]:
    """One row per (round, batch size) in the order measured (interleave's, with the timer's
    reading); every batch size is warmed up before the first round."""
    return interleave([timer(dataclasses.replace(cfg, batch_size=b), data, st)
                       for b in batch_sizes], st.rounds, label)


def summarise(rows: list[dict], n_train: int) -> dict:
    """Per batch size: seconds per step in each round (the block's, plus its epoch starts'
    mean spread over an epoch's steps), the estimate (their minimum), median, quartiles and
    range, the share of rounds at its best (within fastest.NEAR_FASTEST of the fastest: the
    others were slowed by something, seen in /proc/stat or not), and the fastest epoch start.
    Pure."""
    out = {}
    for b in sorted({r["batch_size"] for r in rows}):
        mine = [r for r in rows if r["batch_size"] == b]
        per_round = [row_seconds(r, n_train) for r in mine]
        q1, median, q3 = statistics.quantiles(per_round, n=4, method="inclusive")
        starts = [s for r in mine for s in r["epoch_starts"]]
        best = float(fastest.machine_seconds(per_round))
        out[str(b)] = {"seconds": best, "median": median, "q1": q1, "q3": q3,
                       "min": min(per_round), "max": max(per_round),
                       "at_best": statistics.mean(
                           t <= fastest.NEAR_FASTEST * best for t in per_round),
                       "epoch_start": min(starts, default=0.0), "rounds": per_round}
    return out


def round_loads(rows: list[dict]) -> list[dict | None]:
    """Each round's reading of how busy the machine was, in order (a row per batch size)."""
    return [load for _, load in sorted({r["round"]: r["load"] for r in rows}.items())]


def load_summary(rows: list[dict]) -> dict | None:
    """How busy the machine was over a measurement, from its rounds' readings (None: unknown)."""
    return machine.summary(round_loads(rows))


def measure_doc(params: Params, data: Data, batch_sizes: list[int]) -> dict:
    """Measure params.train's stack at these batch sizes: the document steptime.json holds per
    loader (the stack, the machine, every round's rows, and per batch size the summary)."""
    cfg = params.train
    start = clock(data.device)
    rows = measure(cfg, data, batch_sizes, params.steptime, "steptime")
    return {"stack": stack(cfg), "stack_name": stack_name(cfg), "dataset": params.data.dataset,
            "network": networks.network_name(cfg), "optimizer": cfg.optimizer,
            "steptime": config.as_dict(params.steptime), "batch_sizes": batch_sizes,
            "seconds": clock(data.device) - start, "machine": machine.fingerprint(),
            "host": tracking.host(),
            "load": load_summary(rows), "per_batch": summarise(rows, len(data.x_train)),
            "rows": rows}


# The machine stage's probe, per data path: a small and a large step (t0 and c) on the tensor
# path; the question's DataLoader, whose cost is its images' conversion, at a small one.
PROBE_BATCHES = {"tensor": [32, 256], "torchvision": [32]}


def probe(params: Params) -> tuple[str, dict, dict | None]:
    """This machine's speed in a few seconds, for the machine stage: which step it timed (in
    words: a speed recorded for another says nothing of this one's); seconds per step of the
    stack steptime measures, at PROBE_BATCHES of each of its data paths, each the fastest of
    `machine.probe_rounds` interleaved rounds, as {loader: {batch size: seconds}}; and how busy
    the machine was meanwhile (machine.summary)."""
    data = load_data(params.data.dataset, resolve_device(params.train.device),
                     params.train.train_examples)
    rounds = dataclasses.replace(params.steptime, rounds=params.machine.probe_rounds)
    speed, loads, threads = {}, [], torch.get_num_threads()
    for loader in params.steptime.loaders:
        cfg = dataclasses.replace(params.train, loader=loader)
        rows = measure(cfg, data, PROBE_BATCHES[loader], rounds)
        speed[loader] = {b: v["seconds"] for b, v in summarise(rows, len(data.x_train)).items()}
        loads += round_loads(rows)
    torch.set_num_threads(threads)  # as found: the fingerprint reads torch's default
    cfg, s = params.train, stack(params.train)
    what = (f"{networks.network_name(cfg)}, {cfg.optimizer}, {s['device']}, {s['step']} step, "
            f"{s['threads']} threads")
    return what, speed, machine.summary(loads)


def log(active, doc: dict) -> None:
    """A measurement into a run (tracking.open_run's): the stack as params, seconds per step by
    batch size as step-indexed metrics, the whole document as an artifact."""
    active.log_params({**doc["stack"], **doc["steptime"], "dataset": doc["dataset"],
                       "batch_sizes": doc["batch_sizes"]})
    for b, v in doc["per_batch"].items():
        active.log_metrics({"seconds_per_step": v["seconds"],
                            "seconds_per_step_median": v["median"],
                            "seconds_per_step_max": v["max"]}, step=int(b))
    active.log_metrics({"measure_seconds": doc["seconds"],
                        **{f"load/{k}": float(v) for k, v in (doc["load"] or {}).items()}})
    active.log_dict(doc, "steptime.json")


def main(params: Params) -> int:
    data = load_data(params.data.dataset, resolve_device(params.train.device),
                     params.train.train_examples)
    per_loader = {}
    for loader in params.steptime.loaders:  # each data path the report answers for
        on = dataclasses.replace(params, train=dataclasses.replace(params.train, loader=loader))
        started = time.time()
        doc = per_loader[loader] = measure_doc(on, data, procedure.candidate_batches(params))
        with tracking.open_run(params.train.experiment, f"steptime {doc['stack_name']}",
                               {**tracking.provenance(str(data.device)), "kind": "steptime"},
                               started) as active:
            log(active, doc)
        print(f"steptime: {len(doc['batch_sizes'])} batch sizes x {params.steptime.rounds} "
              f"rounds in {doc['seconds']:.1f} s on {doc['stack_name']}; "
              f"{machine.load_text(doc['load'])}")
    paths.write_json(paths.STEPTIME, {"per_loader": per_loader})
    print(f"wrote {paths.STEPTIME}")
    return 0
