"""The sweep: every cell of the grid is one training run, then the answer's refinement step.

Reads params.yaml (`train` for the network, `sweep` for the grid) and data/<dataset>/raw; writes
one JSON per cell: reports/cells/coarse/b<B>-lr<lr>-s<seed>.json (the `sweep` matrix stage, one
DVC stage per cell, so an interrupted `dvc repro` re-runs only missing cells) and
reports/cells/refine/ (the `refine` stage: the 3*2^n neighbours of the coarse sweet spot).
Run: `dvc repro`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from sweetspot import analysis, train
from sweetspot.config import ConfigError, Params

CELLS = Path("reports/cells")
COARSE = CELLS / "coarse"
EXTREMES = CELLS / "extremes"
REFINE = CELLS / "refine"


def cell_name(batch_size: int, base_lr: float, seed: int) -> str:
    return f"b{batch_size}-lr{base_lr}-s{seed}"  # lr as YAML writes it, as dvc.yaml's ${item.lr}


def cell_params(params: Params, batch_size: int, base_lr: float, seed: int) -> Params:
    """The train section as one cell runs it: the policy's rate, the sweep's budget and target."""
    sweep = params.sweep
    lr = analysis.lr_for_batch(sweep.lr_policy, base_lr, batch_size, sweep.ref_batch)
    cell = dataclasses.replace(params.train, batch_size=batch_size, lr=lr, seed=seed,
                               target_accuracy=max(sweep.targets), max_epochs=sweep.max_epochs,
                               stop_at_target=True)
    cell.check()  # e.g. a batch size larger than train.train_examples
    return dataclasses.replace(params, train=cell)


def run_cell(params: Params, batch_size: int, base_lr: float, seed: int, out: Path,
             stage: str) -> int:
    extra = {"base_lr": base_lr, "lr_policy": params.sweep.lr_policy, "sweep_stage": stage}
    return train.main(cell_params(params, batch_size, base_lr, seed), out=out, extra=extra)


def grid_paths(params: Params) -> list[Path]:
    """The cell files of the grid params.yaml defines now (old cells left on disk by an earlier
    grid are not part of it), coarse then extremes."""
    sweep = params.sweep
    return [folder / f"{cell_name(b, lr, seed)}.json"
            for folder, sizes in ((COARSE, sweep.batch_sizes), (EXTREMES, sweep.extremes))
            for b in sizes for lr in sweep.lrs for seed in sweep.seeds]


def read_cells(paths: list[Path]) -> list[dict]:
    """The results of the given cells; a missing cell is an error that names it."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"{len(missing)} cell(s) missing, e.g. {missing[0]}: run `dvc repro`")
    return [{**json.loads(p.read_text()), "name": p.stem} for p in paths]


def refined_paths(folder: Path = REFINE) -> list[Path]:
    plan = folder / "plan.json"
    if not plan.exists():
        return []
    return [folder / f"{name}.json" for name in json.loads(plan.read_text())["cells"]]


def main(params: Params, batch_size: int, base_lr: float, seed: int, out: Path | None) -> int:
    """One coarse cell (`sweetspot sweep --batch-size B --base-lr LR --seed S`)."""
    out = out or COARSE / f"{cell_name(batch_size, base_lr, seed)}.json"
    return run_cell(params, batch_size, base_lr, seed, out, "coarse")


def refine_main(params: Params, out_dir: Path = REFINE) -> int:
    """Train the 3*2^n neighbours of the coarse sweet spot (128 -> 96 and 192) at every rate."""
    sweep = params.sweep
    results = read_cells([p for p in grid_paths(params) if p.parent == COARSE])
    target = sweep.targets[0]  # the headline target, as in the report
    best = analysis.sweet_spot(analysis.target_table(results, [target]), target)
    tried = {r["batch_size"] for r in results}
    batches = []
    if sweep.refine and best["batch_size"] is not None:
        n_train = params.train.n_train
        batches = analysis.refinement_batches(int(best["batch_size"]), tried, n_train)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.json"):
        stale.unlink()
    cells = [cell_name(b, lr, seed) for b in batches for lr in sweep.lrs for seed in sweep.seeds]
    plan = {"target": target, "coarse_best": best["batch_size"], "batch_sizes": batches,
            "enabled": sweep.refine, "cells": cells}
    print(f"refine: coarse sweet spot {best['batch_size']} at {target}; training {batches}",
          file=sys.stderr)
    for b in batches:
        for lr in sweep.lrs:
            for seed in sweep.seeds:
                path = out_dir / f"{cell_name(b, lr, seed)}.json"
                code = run_cell(params, b, lr, seed, path, "refine")
                if code:
                    return code
    (out_dir / "plan.json").write_text(json.dumps(plan, indent=1))
    return 0
