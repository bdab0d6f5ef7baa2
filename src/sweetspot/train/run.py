"""One tracked run (`sweetspot train`, `mlflow run .`): check, load the data, train inside one
MLflow run.

Reads data/<dataset>/raw (the `download` stage) and params.yaml's `train` section; writes one MLflow
run (every setting, the dataset as an input, step-indexed curves, per-epoch times, the summary,
provenance tags, the curve as an artifact, the final model as an MLflow model that
`mlflow.pytorch.load_model("runs:/<id>/model")` loads) and, with --out, the result as JSON with
the final model's test-set predictions. Run: `sweetspot train --batch-size 256`, or
`mlflow run . -P batch_size=256`.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from sweetspot import config, paths
from sweetspot.config import Params, TrainConfig
from sweetspot.data.idx import MD5
from sweetspot.data.load import load_data, resolve_device
from sweetspot.track import tracking
from sweetspot.train import networks
from sweetspot.train.loop import train_one, use_threads


def summary_metrics(result: dict) -> dict[str, float]:
    """The run's scalar metrics for MLflow (unreached targets are absent, not zero)."""
    keys = ["time_to_target", "steps_to_target", "examples_to_target", "epochs_to_target",
            "train_time", "eval_time", "compile_time", "steps", "examples", "epochs",
            "mean_step_time", "final_test_acc", "final_test_loss", "best_test_acc",
            "b_simple_first", "b_simple_mean"]
    out = {k: float(result[k]) for k in keys if result.get(k) is not None}
    return {k: v for k, v in out.items() if math.isfinite(v)}


@torch.no_grad()
def predictions(model: torch.nn.Module, x: torch.Tensor) -> str:
    """The model's class for every test image, as one digit each ("7210..."): 10 kB in the
    cell's JSON, from which the report draws the confusion matrix."""
    return "".join(map(str, model(x).argmax(dim=1).tolist()))


def run_params(params: Params, device: torch.device) -> dict:
    cfg = params.train
    return {**config.as_dict(cfg), "device": str(device), "dataset": params.data.dataset,
            "network_name": networks.network_name(cfg),
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


def run_name(cfg: TrainConfig) -> str:
    return f"b{cfg.batch_size}-lr{cfg.lr:g}-s{cfg.seed}-{cfg.loader}"


def main(params: Params, out: Path | None = None, extra: dict | None = None) -> int:
    """`sweetspot train`: one tracked run (`tracked`); its exit code."""
    tracked(params, out, extra)
    return 0


def tracked(params: Params, out: Path | None = None, extra: dict | None = None,
            name: str | None = None) -> dict:
    """Check everything, load the data, then train inside one MLflow run named `name` (a sweep
    cell's name, as its file; default run_name); the run's result.

    `extra` (e.g. a sweep cell's base lr and policy) is logged as params and kept in the JSON.
    The result is written to `out` before the run's last records go to the tracking store, so an
    outage that outlasts the wait (exit 1, one line) leaves the result here and the records in
    .outbox/ for `sweetspot upload`.
    """
    cfg = params.train
    device = resolve_device(cfg.device)
    # ConfigError if missing; loading checks each file's canonical MD5, so those are the data's
    data = load_data(params.data.dataset, device, cfg.train_examples)
    use_threads(cfg)  # before the provenance tags record torch's threads
    md5s = MD5[params.data.dataset]
    tags = {**tracking.provenance(str(device)), **{f"data_md5.{k}": v for k, v in md5s.items()}}
    extra = extra or {}
    name = name or run_name(cfg)
    with tracking.open_run(cfg.experiment, name, tags) as active:
        active.log_params({**run_params(params, device), **extra})
        active.log_dataset(params.data.dataset, tracking.dataset_digest(md5s),
                           paths.raw_dir(params.data.dataset).resolve())

        on_eval_progress, on_epoch_progress = _progress(cfg, len(data.x_train))

        def on_eval(p):
            metrics = {"train/loss": p["train_loss"], "test/loss": p["test_loss"],
                       "test/acc": p["test_acc"]}
            if math.isfinite(p.get("b_simple", math.nan)):
                metrics["noise/b_simple"] = p["b_simple"]
            active.log_metrics(metrics, step=p["examples"])
            on_eval_progress(p)

        def on_epoch(row):
            if row["complete"]:  # a partial last epoch is no epoch's cost
                active.log_metrics({"epoch_time": row["epoch_time"]}, step=row["epoch"])
            on_epoch_progress(row)

        result = train_one(cfg, data, on_eval, on_epoch)
        model = result.pop("model").eval()
        result.update(extra, run_id=active.run_id, loader=cfg.loader,
                      dataset=params.data.dataset, provenance=tags,
                      test_predictions=predictions(model, data.x_test))
        if out:  # first, and inside the run: a result that cannot be written fails it
            paths.write_json(Path(out), result)
            active.result = Path(out)
        paths.write_json(active.files / "result.json", result)
        _write_curve_csv(active.files / "curve.csv", result["curve"])
        active.log_metrics(summary_metrics(result))
        active.set_tags({"outcome": result["outcome"]})
        active.log_file(active.files)
        active.log_model(model, data.x_test[:2])
    reached = f"{result['time_to_target']:.2f} s" if result["time_to_target"] is not None else "-"
    print(f"{name}: {result['outcome']} (target {cfg.target_accuracy}), "
          f"time to target {reached}, final test acc {result['final_test_acc']:.4f}, "
          f"mlflow run {result['run_id']}", flush=True)
    return result


def _write_curve_csv(path: Path, curve: list[dict]) -> None:
    import pandas as pd

    pd.DataFrame(curve).to_csv(path, index=False)
