"""The StackOverflow question's own run (`sweetspot question`, the `question` stage): batch 1, then
the whole training set in one batch, at its lr 0.1 through its torchvision DataLoader and its
eager step, each a tracked run evaluated once an epoch, printed as the question's table of seconds
per epoch and test accuracy. Reads data/<dataset>/raw; writes two MLflow runs and, with `out`,
the table as JSON (the report sets it beside report/asked.py's figures)."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from sweetspot import paths
from sweetspot.config import Params
from sweetspot.train import run

QUESTION = {"network": "mlp", "lr": 0.1, "loader": "torchvision", "optimizer": "sgd",
            "width": 256, "activation": "sigmoid", "stop_at_target": False, "max_seconds": 0,
            "loader_workers": 0, "lr_warmup_steps": 0, "fine_within": 0.0}  # once an epoch

def main(params: Params, epochs: int, out: Path | None = None) -> int:
    """Batch 1, then one batch of the whole training set: per-epoch lines as the question printed
    them, then the two runs side by side; the table to `out` when given."""
    started = time.time()
    n = params.train.n_train
    runs = {}
    for batch_size in (1, n):
        cfg = dataclasses.replace(params.train, **QUESTION, batch_size=batch_size,
                                  max_epochs=epochs, eval_every_examples=n)  # once an epoch
        cfg.check()
        print(f"\n===== batch size {batch_size}, lr {cfg.lr}, {epochs} epochs, torchvision "
              "DataLoader =====", file=sys.stderr, flush=True)
        result = run.tracked(dataclasses.replace(params, train=cfg))
        provenance = result["provenance"]
        runs[batch_size] = {"run_id": result["run_id"], "epochs": [
            {k: row[k] for k in ("epoch", "epoch_time", "steps", "train_loss", "test_acc")}
            for row in result["epoch_rows"] if row["complete"]]}
    print("\nepoch | " + " | ".join(f"batch {b}: s/epoch, test acc" for b in runs))
    for i in range(epochs):
        cells = [f"{r['epochs'][i]['epoch_time']:7.2f} s, {r['epochs'][i]['test_acc']:.4f}"
                 for r in runs.values()]
        print(f"{i + 1:5d} | " + " | ".join(cells))
    print("Per-epoch time favours the big batch; only time to a target accuracy says which "
          "learns faster (see `dvc repro`).")
    if out:
        paths.write_json(out, {"lr": QUESTION["lr"], "epochs": epochs, "n_train": n,
                               "runs": runs, "seconds": time.time() - started,
                               "provenance": provenance})
    return 0
