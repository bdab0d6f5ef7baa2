"""The StackOverflow question's own setup (`sweetspot question`): batch 1, then batch 60000, at
lr 0.1 through its torchvision DataLoader for 10 epochs, each a tracked run, printed as the
question's table of seconds per epoch and accuracy. Reads data/<dataset>/raw; writes two MLflow
runs."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from sweetspot.config import Params
from sweetspot.train import run

QUESTION = {"lr": 0.1, "loader": "torchvision", "optimizer": "sgd", "width": 256,
            "activation": "sigmoid", "stop_at_target": False, "max_seconds": 0}


def main(params: Params, epochs: int = 10) -> int:
    """The StackOverflow question's own setup, batch 1 then batch 60000 (lr 0.1, its DataLoader):
    per-epoch lines as it printed them, then the two runs side by side."""
    n = params.train.n_train
    rows = {}
    for batch_size in (1, n):
        cfg = dataclasses.replace(params.train, **QUESTION, batch_size=batch_size,
                                  max_epochs=epochs, eval_every_examples=n)  # once an epoch
        cfg.check()
        print(f"\n===== batch size {batch_size}, lr {cfg.lr}, {epochs} epochs, torchvision "
              "DataLoader =====", file=sys.stderr, flush=True)
        out = Path(tempfile.mkdtemp()) / "result.json"
        run.main(dataclasses.replace(params, train=cfg), out=out)
        rows[batch_size] = json.loads(out.read_text())
    print("\nepoch | " + " | ".join(f"batch {b}: s/epoch, test acc" for b in rows))
    for i in range(epochs):
        cells = [f"{r['epoch_rows'][i]['epoch_time']:7.2f} s, {r['epoch_rows'][i]['test_acc']:.4f}"
                 for r in rows.values()]
        print(f"{i + 1:5d} | " + " | ".join(cells))
    print("Per-epoch time favours the big batch; only time to a target accuracy says which "
          "learns faster (see `dvc repro`).")
    return 0
