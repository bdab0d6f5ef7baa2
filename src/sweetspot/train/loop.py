"""One training run, timed honestly: `train_one(cfg, data) -> result`.

The clock covers training steps only: the device is synchronised before it is read, warm-up runs
on a throwaway copy before it starts, and it pauses at one place, for evaluation (every
`train.eval_every_examples`, every `train.fine_every_examples` once the test accuracy came within
`train.fine_within` of the target, and at each epoch's end), logging and the stopping checks. The
first evaluation at or above the target defines time, steps, examples and epochs to target. Reads
and writes nothing: `train/run.py` wraps a run in MLflow.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from sweetspot.answer.hit import first_hit
from sweetspot.config import TrainConfig
from sweetspot.data.load import Data, epoch_batches
from sweetspot.train import networks
from sweetspot.train.noise import NoiseTracker
from sweetspot.train.step import step_for

EVAL_CHUNK = 500  # test examples per forward pass in evaluation: small enough that a convolutional
# network's activations stay in cache (docs/method.md); the MLP's logits do not depend on it


def clock(device: torch.device) -> float:
    """The one timing primitive: wait for queued device work, then read a monotonic clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean test loss and accuracy over the whole test set."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for i in range(0, len(x), EVAL_CHUNK):
        logits = model(x[i : i + EVAL_CHUNK])
        yb = y[i : i + EVAL_CHUNK]
        loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(dim=1) == yb).sum()
    model.train(was_training)
    return loss_sum.item() / len(x), correct.item() / len(x)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Multiplier on the lr at 0-based `step`: linear ramp to 1 over warmup_steps (0: none)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


def warm_up(cfg: TrainConfig, model: nn.Module, data: Data) -> None:
    """Untimed steps on a throwaway copy, so kernels and allocator are warm when the clock starts
    while the measured run's weights and random streams stay untouched."""
    if cfg.warmup_steps == 0:
        return
    step = step_for(cfg, copy.deepcopy(model))
    g = torch.Generator().manual_seed(cfg.seed + 1)
    for _ in range(cfg.warmup_steps):
        idx = torch.randint(len(data.x_train), (cfg.batch_size,), generator=g).to(data.device)
        step(data.x_train.index_select(0, idx), data.y_train.index_select(0, idx))
    clock(data.device)


class Mark(NamedTuple):
    """Where a run stood at an evaluation or an epoch's end."""

    loss_sum: float  # sum of the batch losses so far
    steps: int
    clock: float  # s, the training clock


@dataclass
class Tally:
    """What a run has done so far: its counters, the clock's total, and what it recorded."""

    steps: int = 0
    seen: int = 0  # training examples
    train_time: float = 0.0  # s, the training clock
    eval_time: float = 0.0  # s, off the clock
    curve: list = field(default_factory=list)  # one point per evaluation
    epochs: list = field(default_factory=list)  # one row per epoch (the last may be partial)
    diverged: bool = False


def use_threads(cfg: TrainConfig) -> None:
    """torch's threads as train.threads says (0: torch's own choice); set here, not inherited
    (Ray sets OMP_NUM_THREADS to a task's CPU request)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)


def train_one(cfg: TrainConfig, data: Data, on_eval=None, on_epoch=None) -> dict:
    """Train the configured network once; return the result (summary, per-epoch rows, curve).
    `on_eval(point)` and `on_epoch(row)` are called while the clock is paused."""
    device, n_train = data.device, len(data.x_train)
    use_threads(cfg)
    torch.manual_seed(cfg.seed)
    model = networks.build(cfg).to(device)
    step = step_for(cfg, model)
    compile_time = step.prepare({cfg.batch_size, n_train % cfg.batch_size})  # before any clock
    epoch = epoch_batches(cfg.loader, data, cfg.batch_size, torch.Generator().manual_seed(cfg.seed),
                          cfg.loader_workers)
    warm_up(cfg, model, data)
    model.train()
    noise = NoiseTracker(model, data, cfg.seed + 2) if cfg.noise_scale else None
    tally = Tally()
    loss_sum = torch.zeros((), device=device)  # sum of batch losses, read only while paused
    at_eval = at_epoch = Mark(0.0, 0, 0.0)  # at the last evaluation, and the last epoch's end
    next_eval, fine = cfg.eval_every_examples, False  # fine: evaluating every fine_every_examples
    t0 = clock(device)
    for xb, yb in (batch for _ in range(cfg.max_epochs) for batch in epoch()):
        if tally.steps <= cfg.lr_warmup_steps and cfg.lr_warmup_steps:  # ramp the rate
            step.set_lr(cfg.lr * warmup_factor(tally.steps, cfg.lr_warmup_steps))
        loss_sum += step(xb, yb)
        tally.steps += 1
        tally.seen += len(yb)
        epoch_end = tally.seen % n_train == 0
        if tally.seen < next_eval and not epoch_end:
            continue
        tally.train_time += clock(device) - t0  # the clock pauses here ...
        paused = time.perf_counter()
        now = Mark(loss_sum.item(), tally.steps, tally.train_time)
        point = record_evaluation(cfg, model, data, tally, _mean_loss(now, at_eval), noise, fine)
        at_eval = now
        fine = finely(cfg, fine, tally.curve)
        every = min(cfg.fine_every_examples if fine else math.inf, cfg.eval_every_examples)
        next_eval = (tally.seen // every + 1) * every
        if on_eval:
            on_eval(point)
        tally.eval_time += time.perf_counter() - paused
        stop = stop_reason(cfg, tally)
        if epoch_end or stop:
            tally.epochs.append({"epoch": -(-tally.seen // n_train), "complete": epoch_end,
                               "epoch_time": now.clock - at_epoch.clock,
                               "steps": now.steps - at_epoch.steps,
                               "train_loss": _mean_loss(now, at_epoch),
                               "test_loss": point["test_loss"], "test_acc": point["test_acc"]})
            at_epoch = now
            if on_epoch:
                on_epoch(tally.epochs[-1])
        if stop:
            break
        t0 = clock(device)  # ... and resumes here
    return result(cfg, tally, n_train, compile_time, noise) | {"model": model}


def stop_reason(cfg: TrainConfig, tally: Tally) -> str | None:
    """Why a run stops at this evaluation (the epoch budget ends the loop itself): "diverged",
    "target" (reached, with stop_at_target), "seconds" (train.max_seconds > 0 and the training
    clock past it), else None. Only the last reads a clock, and the sweep's cells run with
    max_seconds 0, so their steps are the problem's alone."""
    if tally.diverged:
        return "diverged"
    if cfg.stop_at_target and first_hit(tally.curve, cfg.target_accuracy):
        return "target"
    if cfg.max_seconds > 0 and tally.train_time >= cfg.max_seconds:
        return "seconds"
    return None


def finely(cfg: TrainConfig, fine: bool, curve: list[dict]) -> bool:
    """Whether the next interval is fine: from the first evaluation within train.fine_within
    below the target until the target is reached (0: never)."""
    near = cfg.fine_within > 0 and curve[-1]["test_acc"] >= cfg.target_accuracy - cfg.fine_within
    return (fine or near) and not first_hit(curve, cfg.target_accuracy)


def _mean_loss(now: Mark, then: Mark) -> float:
    """Mean batch loss between two marks."""
    return (now.loss_sum - then.loss_sum) / max(now.steps - then.steps, 1)


def record_evaluation(cfg: TrainConfig, model: nn.Module, data: Data, tally: Tally,
                      train_loss: float, noise: NoiseTracker | None, fine: bool) -> dict:
    """Evaluate, record the curve point (fine: it closes a fine interval), and note a
    divergence. The noise scale counts the coarse evaluations only, so fine ones move none."""
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    point = {"step": tally.steps, "examples": tally.seen, "epoch": tally.seen / len(data.x_train),
             "time": tally.train_time, "train_loss": train_loss, "test_loss": test_loss,
             "test_acc": test_acc, "fine": fine}
    coarse = sum(not p["fine"] for p in tally.curve)  # coarse evaluations before this one
    tally.curve.append(point)
    if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
        tally.diverged = True
        return point
    if noise and not fine and coarse % cfg.noise_every == 0:  # the first, then every k-th
        point["b_simple"] = noise.estimate()
    return point


def result(cfg: TrainConfig, tally: Tally, n_train: int, compile_time: float,
           noise: NoiseTracker | None) -> dict:
    """The run's result: its outcome, what it took to reach the target (None if it did not),
    its totals, and its per-epoch rows and curve."""
    hit, final = first_hit(tally.curve, cfg.target_accuracy), tally.curve[-1]
    outcome = "diverged" if tally.diverged else "reached" if hit else "not_reached"
    return {
        "outcome": outcome, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed,
        "target_accuracy": cfg.target_accuracy,
        "time_to_target": hit["time"] if hit else None,
        "steps_to_target": hit["step"] if hit else None,
        "examples_to_target": hit["examples"] if hit else None,
        "epochs_to_target": hit["epoch"] if hit else None,
        "train_time": tally.train_time, "eval_time": tally.eval_time, "compile_time": compile_time,
        "steps": tally.steps, "examples": tally.seen, "epochs": tally.seen / n_train,
        "mean_step_time": tally.train_time / max(tally.steps, 1),
        "final_test_acc": final["test_acc"], "final_test_loss": final["test_loss"],
        "best_test_acc": max(p["test_acc"] for p in tally.curve),
        "b_simple_first": tally.curve[0].get("b_simple"),
        "b_simple_mean": noise.averaged() if noise else None,
        "epoch_rows": tally.epochs, "curve": tally.curve,
    }
