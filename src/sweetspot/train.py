"""Train once and time it honestly: seconds of training until the test accuracy reaches the target.

Reads data/<dataset>/raw (the `download` stage) and params.yaml's `train` section; writes one MLflow
run and, with --out, the same result as JSON. Run: `sweetspot train --batch-size 256`, or
`mlflow run . -P batch_size=256`. The clock covers training steps only (device synchronised before
it is read, warm-up and evaluation off it); the first evaluation at or above the target defines
time to target. Measured on a 2-core AMD EPYC CPU (torch 2.14.1, the exact engine step): 97% in
1.05 s at batch 32, 1.29 s at 64, 3.96 s at 256 (lr 1, median of 3 seeds; reports/report.md).
"""

from __future__ import annotations

import copy
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from sweetspot import analysis, config, download, engine, tracking
from sweetspot.config import ConfigError, Params, TrainConfig
from sweetspot.model import MLP

EVAL_CHUNK = 10_000  # test examples per forward pass during evaluation
NOISE_BATCHES = (128, 2048, 4)  # noise scale: small batch, big batch, small batches averaged
NOISE_EMA = 0.2  # smoothing of each noise-scale term across evaluations


@dataclass(frozen=True)
class Data:
    """The whole dataset on the training device, scaled once: x float32 [N, 784] in [0, 1]."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    dataset: str
    root: Path


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA device is available")
    return torch.device(name)


def load_data(dataset: str, device: torch.device, n_train: int = 0,
              root: Path = config.DATA_ROOT) -> Data:
    x_train, y_train, x_test, y_test = download.load_tensors(dataset, root)
    if n_train:
        x_train, y_train = x_train[:n_train], y_train[:n_train]

    def scale(x):  # uint8 [N, 28, 28] -> float32 [N, 784] on the device, as ToTensor scales
        return x.reshape(len(x), -1).to(device=device, dtype=torch.float32).div_(255)

    return Data(scale(x_train), y_train.to(device), scale(x_test), y_test.to(device), dataset,
                Path(root))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> float:
    """The one timing primitive: wait for queued device work, then read a monotonic clock."""
    sync(device)
    return time.perf_counter()


def tensor_batches(data: Data, batch_size: int, generator: torch.Generator):
    """One epoch: a seeded permutation, then batches by indexing (the last one may be partial)."""
    n = len(data.x_train)
    order = torch.randperm(n, generator=generator).to(data.x_train.device)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        yield data.x_train.index_select(0, idx), data.y_train.index_select(0, idx)


def torchvision_loader(data: Data, batch_size: int, generator: torch.Generator):
    """The question's pipeline: torchvision's dataset, ToTensor per image, DataLoader(shuffle)."""
    import torchvision
    from torchvision import transforms

    cls = getattr(torchvision.datasets, data.dataset)
    dataset = cls(root=str(data.root), train=True, download=False,
                  transform=transforms.Compose([transforms.ToTensor()]))
    if len(data.x_train) < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(len(data.x_train)))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                       generator=generator)


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


def grad_sq_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """|g|^2 of the mean-loss gradient on one batch, leaving the parameters' .grad untouched."""
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return float(sum(g.pow(2).sum() for g in grads))


def noise_terms(model: nn.Module, data: Data, generator: torch.Generator) -> tuple:
    """The two-batch estimate of McCandlish et al. (2018, appendix A): |G|^2 and tr(Sigma) from
    the gradient norms at a small and a big batch of training examples drawn at random."""
    n = len(data.x_train)
    small, big, k = NOISE_BATCHES
    big = min(big, n)
    small = min(small, big // (2 * k))
    idx = torch.randperm(n, generator=generator)[:big].to(data.x_train.device)
    x, y = data.x_train[idx], data.y_train[idx]
    g_big = grad_sq_norm(model, x, y)
    g_small = sum(grad_sq_norm(model, x[i * small:(i + 1) * small], y[i * small:(i + 1) * small])
                  for i in range(k)) / k
    return analysis.noise_scale_terms(g_small, g_big, small, big)


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer):
    """One SGD step; returns the batch's mean loss as a device tensor (no host sync)."""
    loss_fn = nn.CrossEntropyLoss()

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def noise_tracker(model: nn.Module, data: Data, seed: int):
    """B_simple = tr(Sigma)/|G|^2 at each evaluation, each term smoothed separately; `averaged()`
    is the ratio of the terms' means over the run ("averaged over training")."""
    generator = torch.Generator().manual_seed(seed)  # its own stream: training's stays untouched
    terms, smooth = [], []

    def estimate() -> float:
        g2, trace = noise_terms(model, data, generator)
        terms.append((g2, trace))
        last = smooth[-1] if smooth else (g2, trace)
        smooth.append(tuple((1 - NOISE_EMA) * a + NOISE_EMA * b
                            for a, b in zip(last, (g2, trace), strict=True)))
        return analysis.b_simple(smooth[-1][1], smooth[-1][0])

    def averaged() -> float | None:
        if not terms:
            return None
        g2, trace = (sum(column) / len(terms) for column in zip(*terms, strict=True))
        return analysis.b_simple(trace, g2)

    return SimpleNamespace(estimate=estimate, averaged=averaged)


def step_for(cfg: TrainConfig, model: nn.Module):
    """The engine (the same training as autograd + torch.optim, faster; its torch.compile'd step
    with train.compile), except with the question's own pipeline, which keeps the question's eager
    step: its loop, as it ran."""
    if cfg.loader == "torchvision":
        return engine.eager_step(model, cfg.optimizer, cfg.lr, cfg.momentum)
    make = engine.make_compiled_step if cfg.compile else engine.make_step
    return make(model, cfg.optimizer, cfg.lr, cfg.momentum)


def warm_up(cfg: TrainConfig, model: nn.Module, data: Data) -> None:
    """Untimed steps on a throwaway copy, so kernels and allocator are warm when the clock starts
    while the measured run's weights and random streams stay untouched."""
    if cfg.warmup_steps == 0:
        return
    scratch = copy.deepcopy(model)
    step = step_for(cfg, scratch)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    for _ in range(cfg.warmup_steps):
        idx = torch.randint(len(data.x_train), (cfg.batch_size,), generator=g)
        idx = idx.to(data.x_train.device)
        step(data.x_train.index_select(0, idx), data.y_train.index_select(0, idx))
    sync(data.x_train.device)


def train_one(cfg: TrainConfig, data: Data, on_eval=None, on_epoch=None) -> dict:
    """Train the configured network once; return the result (summary, per-epoch rows, curve).

    `on_eval(point)` and `on_epoch(row)` are called off the clock (logging, progress).
    """
    device = data.x_train.device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = MLP(cfg.width, cfg.activation).to(device)
    step = step_for(cfg, model)
    n_train = len(data.x_train)
    # train.compile: compile the full and the last batch's shapes now, off the clock (logged)
    prepare = getattr(step, "prepare", lambda batch_sizes: 0.0)
    compile_time = prepare({cfg.batch_size, n_train % cfg.batch_size})
    generator = torch.Generator().manual_seed(cfg.seed)
    if cfg.loader == "torchvision":
        loader = torchvision_loader(data, cfg.batch_size, generator)
        batches = lambda: ((xb.to(device), yb.to(device)) for xb, yb in loader)  # noqa: E731
    else:
        shuffled = {}  # one shuffled copy of the training set, reused every epoch
        batches = lambda: engine.batches(data.x_train, data.y_train, cfg.batch_size,  # noqa: E731
                                         generator, shuffled)
    warm_up(cfg, model, data)
    model.train()

    curve, epochs = [], []
    outcome, hit = "not_reached", None
    steps = seen = 0
    train_time = eval_time = 0.0
    loss_sum = torch.zeros((), device=device)  # running sum of batch losses, read at evaluations
    last = {"loss": 0.0, "steps": 0}  # loss_sum and steps at the previous evaluation
    next_eval = cfg.eval_every_examples
    noise = noise_tracker(model, data, cfg.seed + 2) if cfg.noise_scale else None

    def checkpoint(epoch_float: float) -> dict:
        """Pause-time work: evaluate, record a curve point, check target and divergence."""
        nonlocal eval_time, outcome, hit
        t0 = time.perf_counter()
        running = loss_sum.item()
        train_loss = (running - last["loss"]) / max(steps - last["steps"], 1)
        last.update(loss=running, steps=steps)
        test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
        point = {"step": steps, "examples": seen, "epoch": epoch_float, "time": train_time,
                 "train_loss": train_loss, "test_loss": test_loss, "test_acc": test_acc}
        curve.append(point)
        if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
            outcome = "diverged"
        else:
            if noise:
                point["b_simple"] = noise.estimate()
            if hit is None and test_acc >= cfg.target_accuracy:
                outcome, hit = "reached", point
        if on_eval:
            on_eval(point)
        eval_time += time.perf_counter() - t0
        return point

    def done() -> bool:
        over_budget = cfg.max_seconds > 0 and train_time >= cfg.max_seconds
        return outcome == "diverged" or (hit is not None and cfg.stop_at_target) or over_budget

    for epoch in range(1, cfg.max_epochs + 1):
        start_time, start_loss, start_steps = train_time, loss_sum.item(), steps
        t0 = clock(device)
        for xb, yb in batches():
            if steps < cfg.lr_warmup_steps:  # ramp the rate: lr * (step + 1) / warm-up steps
                step.set_lr(cfg.lr * analysis.warmup_factor(steps, cfg.lr_warmup_steps))
            elif steps == cfg.lr_warmup_steps > 0:
                step.set_lr(cfg.lr)
            loss_sum += step(xb, yb)
            steps += 1
            seen += len(yb)
            if seen >= next_eval and seen < epoch * n_train:  # mid-epoch evaluation
                train_time += clock(device) - t0  # the clock pauses here...
                next_eval = (seen // cfg.eval_every_examples + 1) * cfg.eval_every_examples
                checkpoint(seen / n_train)
                if done():
                    break
                t0 = clock(device)  # ...and resumes here
        else:  # the epoch ran to its end
            train_time += clock(device) - t0
            next_eval = (seen // cfg.eval_every_examples + 1) * cfg.eval_every_examples
            checkpoint(seen / n_train)
        row = {"epoch": epoch, "epoch_time": train_time - start_time,
               "complete": seen == epoch * n_train, "steps": steps - start_steps,
               "train_loss": (loss_sum.item() - start_loss) / max(steps - start_steps, 1),
               "test_loss": curve[-1]["test_loss"], "test_acc": curve[-1]["test_acc"]}
        epochs.append(row)
        if on_epoch:
            on_epoch(row)
        if done():
            break

    final = curve[-1]
    return {
        "outcome": outcome,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "seed": cfg.seed,
        "target_accuracy": cfg.target_accuracy,
        "time_to_target": hit["time"] if hit else None,
        "steps_to_target": hit["step"] if hit else None,
        "examples_to_target": hit["examples"] if hit else None,
        "epochs_to_target": hit["epoch"] if hit else None,
        "train_time": train_time,
        "eval_time": eval_time,
        "compile_time": compile_time,
        "steps": steps,
        "examples": seen,
        "epochs": seen / n_train,
        "mean_step_time": train_time / max(steps, 1),
        "final_test_acc": final["test_acc"],
        "final_test_loss": final["test_loss"],
        "best_test_acc": max(p["test_acc"] for p in curve),
        "b_simple_first": curve[0].get("b_simple"),
        "b_simple_mean": noise.averaged() if noise else None,
        "epoch_rows": epochs,
        "curve": curve,
        "model": model,
    }


def summary_metrics(result: dict) -> dict[str, float]:
    """The run's scalar metrics for MLflow (unreached targets are absent, not zero)."""
    keys = ["time_to_target", "steps_to_target", "examples_to_target", "epochs_to_target",
            "train_time", "eval_time", "compile_time", "steps", "examples", "epochs",
            "mean_step_time", "final_test_acc", "final_test_loss", "best_test_acc",
            "b_simple_first", "b_simple_mean"]
    out = {k: float(result[k]) for k in keys if result[k] is not None}
    return {k: v for k, v in out.items() if math.isfinite(v)}


def run_params(params: Params, device: torch.device) -> dict:
    cfg = params.train
    return {**config.as_dict(cfg), "device": str(device), "dataset": params.data.dataset,
            "model": f"Linear(784,{cfg.width})-{cfg.activation}-Linear({cfg.width},10)",
            "n_train": cfg.n_train, "n_test": 10_000}


def _progress(cfg: TrainConfig, n_train: int):
    """Off-clock progress: a bar per epoch in a terminal, one plain line per epoch otherwise."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    bar = {}

    def on_eval(point):
        if not tty:
            return
        epoch = int(point["examples"] // n_train) + 1 if point["examples"] % n_train else None
        if epoch and epoch not in bar:
            bar.clear()
            bar[epoch] = tqdm(total=n_train, desc=f"epoch {epoch}/{cfg.max_epochs}", unit="ex",
                              leave=False)
        for b in bar.values():
            b.n = point["examples"] % n_train
            b.set_postfix(acc=f"{point['test_acc']:.4f}")

    def on_epoch(row):
        for b in bar.values():
            b.close()
        bar.clear()
        print(f"epoch {row['epoch']}/{cfg.max_epochs}: {row['epoch_time']:.2f} s training, "
              f"train loss {row['train_loss']:.4f}, test loss {row['test_loss']:.4f}, "
              f"test acc {row['test_acc']:.4f}", file=sys.stderr, flush=True)

    return on_eval, on_epoch


def write_json(path: Path, result: dict) -> None:
    """Write atomically: DVC sees either the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({k: v for k, v in result.items() if k != "model"}, indent=1))
    tmp.replace(path)


def run_name(cfg: TrainConfig) -> str:
    return f"b{cfg.batch_size}-lr{cfg.lr:g}-s{cfg.seed}-{cfg.loader}"


def main(params: Params, out: Path | None = None, extra: dict | None = None) -> int:
    """Check everything, load the data, then train inside one MLflow run.

    `extra` (e.g. a sweep cell's base lr and policy) is logged as params and kept in the JSON.
    """
    import mlflow

    cfg = params.train
    device = resolve_device(cfg.device)
    # ConfigError if missing; loading checks each file's canonical MD5, so those are the data's
    data = load_data(params.data.dataset, device, cfg.train_examples)
    tags = {**tracking.provenance(str(device)),
            **{f"data_md5.{k}": v for k, v in download.MD5[params.data.dataset].items()}}
    extra = extra or {}
    with tracking.run(cfg.experiment, run_name(cfg), tags) as active:
        tracking.log_params({**run_params(params, device), **extra})

        on_eval_progress, on_epoch_progress = _progress(cfg, len(data.x_train))

        def on_eval(p):
            metrics = {"train/loss": p["train_loss"], "test/loss": p["test_loss"],
                       "test/acc": p["test_acc"]}
            if math.isfinite(p.get("b_simple", math.nan)):
                metrics["noise/b_simple"] = p["b_simple"]
            tracking.retry(mlflow.log_metrics, metrics, step=p["examples"])
            on_eval_progress(p)

        def on_epoch(row):
            if row["complete"]:  # a partial last epoch is no epoch's cost
                tracking.retry(mlflow.log_metric, "epoch_time", row["epoch_time"],
                               step=row["epoch"])
            on_epoch_progress(row)

        result = train_one(cfg, data, on_eval, on_epoch)
        tracking.retry(mlflow.log_metrics, summary_metrics(result))
        tracking.retry(mlflow.set_tag, "outcome", result["outcome"])
        result.update(extra, run_id=active.info.run_id, loader=cfg.loader,
                      dataset=params.data.dataset, provenance=tags)
        with tempfile.TemporaryDirectory() as tmp:
            write_json(Path(tmp) / "result.json", result)
            _write_curve_csv(Path(tmp) / "curve.csv", result["curve"])
            torch.save(result["model"].state_dict(), Path(tmp) / "model_state_dict.pt")
            tracking.retry(mlflow.log_artifacts, tmp)
    if out:
        write_json(Path(out), result)
    reached = f"{result['time_to_target']:.2f} s" if result["time_to_target"] is not None else "-"
    print(f"{run_name(cfg)}: {result['outcome']} (target {cfg.target_accuracy}), "
          f"time to target {reached}, final test acc {result['final_test_acc']:.4f}, "
          f"mlflow run {result['run_id']}", flush=True)
    return 0


def _write_curve_csv(path: Path, curve: list[dict]) -> None:
    import pandas as pd

    pd.DataFrame(curve).to_csv(path, index=False)


QUESTION = {"lr": 0.1, "loader": "torchvision", "optimizer": "sgd", "width": 256,
            "activation": "sigmoid", "stop_at_target": False, "max_seconds": 0}


def question_main(params: Params, epochs: int = 10) -> int:
    """The StackOverflow question's own setup, batch 1 then batch 60000 (lr 0.1, its DataLoader):
    per-epoch lines as it printed them, then the two runs side by side."""
    import dataclasses

    n = params.train.n_train
    rows = {}
    for batch_size in (1, n):
        cfg = dataclasses.replace(params.train, **QUESTION, batch_size=batch_size,
                                  max_epochs=epochs, eval_every_examples=n)  # once an epoch
        cfg.check()
        print(f"\n===== batch size {batch_size}, lr {cfg.lr}, {epochs} epochs, torchvision "
              "DataLoader =====", file=sys.stderr, flush=True)
        out = Path(tempfile.mkdtemp()) / "result.json"
        main(dataclasses.replace(params, train=cfg), out=out)
        rows[batch_size] = json.loads(out.read_text())
    print("\nepoch | " + " | ".join(f"batch {b}: s/epoch, test acc" for b in rows))
    for i in range(epochs):
        cells = [f"{r['epoch_rows'][i]['epoch_time']:7.2f} s, {r['epoch_rows'][i]['test_acc']:.4f}"
                 for r in rows.values()]
        print(f"{i + 1:5d} | " + " | ".join(cells))
    print("Per-epoch time favours the big batch; only time to a target accuracy says which "
          "learns faster (see `dvc repro`).")
    return 0
