"""The sweep: every cell of the grid is one training run; then refinement and more seeds.

Reads params.yaml (`train` for the network, `sweep` for the grid) and data/<dataset>/raw; writes
one JSON per cell: reports/cells/coarse/b<B>-lr<lr>-s<seed>-<loader>.json (the `sweep` matrix
stage: one DVC stage per cell, so an interrupted `dvc repro` re-runs only missing cells), then
reports/cells/refine/ (the 3*2^n neighbours of the coarse sweet spot) and reports/cells/seeds/
(more seeds at each batch size's chosen rate). Run: `dvc repro`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from sweetspot import analysis, train
from sweetspot.config import ConfigError, Params

CELLS = Path("reports/cells")
COARSE = CELLS / "coarse"
EXTREMES = CELLS / "extremes"
REFINE = CELLS / "refine"
SEEDS = CELLS / "seeds"
PLAN = "plan.json"  # what refine/seeds decided to train, beside their cells


@dataclass(frozen=True)
class Cell:
    batch_size: int
    base_lr: float  # a rate of sweep.lrs; sweep.lr_policy turns it into the cell's rate
    seed: int
    loader: str

    @property
    def name(self) -> str:  # lr as YAML writes it, as dvc.yaml's ${item.lr}
        return f"b{self.batch_size}-lr{self.base_lr}-s{self.seed}-{self.loader}"


def cell_params(params: Params, cell: Cell) -> Params:
    """The train section as one cell runs it: the policy's rate, the sweep's budget and target."""
    sweep = params.sweep
    lr = analysis.lr_for_batch(sweep.lr_policy, cell.base_lr, cell.batch_size, sweep.ref_batch)
    cfg = dataclasses.replace(params.train, batch_size=cell.batch_size, lr=lr, seed=cell.seed,
                              loader=cell.loader, target_accuracy=max(sweep.targets),
                              max_epochs=sweep.max_epochs, max_seconds=sweep.max_seconds,
                              stop_at_target=True)
    cfg.check()  # e.g. a batch size larger than train.train_examples
    return dataclasses.replace(params, train=cfg)


def run_cell(params: Params, cell: Cell, out: Path, stage: str) -> int:
    extra = {"base_lr": cell.base_lr, "lr_policy": params.sweep.lr_policy, "sweep_stage": stage}
    return train.main(cell_params(params, cell), out=out, extra=extra)


def grid(params: Params, batch_sizes) -> list[Cell]:
    s = params.sweep
    return [Cell(b, lr, seed, loader) for b in batch_sizes for lr in s.lrs for seed in s.seeds
            for loader in s.loaders]


def grid_paths(params: Params) -> list[Path]:
    """The cell files of the grid params.yaml defines now (cells left on disk by an earlier grid
    are not part of it), coarse then extremes."""
    s = params.sweep
    return ([COARSE / f"{c.name}.json" for c in grid(params, s.batch_sizes)]
            + [EXTREMES / f"{c.name}.json" for c in grid(params, s.extremes)])


def planned_paths(folder: Path) -> list[Path]:
    """The cells a refine/seeds stage trained, as its plan lists them."""
    plan = folder / PLAN
    if not plan.exists():
        return []
    return [folder / f"{name}.json" for name in json.loads(plan.read_text())["cells"]]


def all_paths(params: Params) -> list[Path]:
    return grid_paths(params) + planned_paths(REFINE) + planned_paths(SEEDS)


def read_cells(paths: list[Path]) -> list[dict]:
    """The results of the given cells; a missing cell is an error that names it."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"{len(missing)} cell(s) missing, e.g. {missing[0]}: run `dvc repro`")
    return [{**json.loads(p.read_text()), "name": p.stem} for p in paths]


def main(params: Params, cell: Cell, out: Path | None) -> int:
    """One coarse cell (`sweetspot sweep --batch-size B --base-lr LR --seed S --loader L`)."""
    return run_cell(params, cell, out or COARSE / f"{cell.name}.json", "coarse")


def _train_plan(params: Params, cells: list[Cell], out_dir: Path, stage: str, plan: dict) -> int:
    """Train the planned cells into out_dir, then write the plan (last: it marks completion)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.json"):
        stale.unlink()
    print(f"{stage}: training {len(cells)} cell(s): {[c.name for c in cells]}", file=sys.stderr)
    for cell in cells:
        code = run_cell(params, cell, out_dir / f"{cell.name}.json", stage)
        if code:
            return code
    (out_dir / PLAN).write_text(json.dumps({**plan, "cells": [c.name for c in cells]}, indent=1))
    return 0


def _by_loader(results: list[dict], loader: str, target: float):
    return analysis.target_table([r for r in results if r["loader"] == loader], [target])


def refine_main(params: Params) -> int:
    """Train the 3*2^n neighbours of the coarse sweet spot (128 -> 96 and 192) at every rate."""
    s = params.sweep
    results = read_cells([p for p in grid_paths(params) if p.parent == COARSE])
    target = s.targets[0]  # the headline target, as in the report
    cells, best = [], {}
    for loader in s.loaders:
        spot = analysis.sweet_spot(_by_loader(results, loader, target), target)
        best[loader] = spot["batch_size"]
        if s.refine and spot["batch_size"] is not None:
            tried = {r["batch_size"] for r in results if r["loader"] == loader}
            for b in analysis.refinement_batches(int(spot["batch_size"]), tried,
                                                 params.train.n_train):
                cells += [Cell(b, lr, seed, loader) for lr in s.lrs for seed in s.seeds]
    plan = {"target": target, "coarse_best": best, "enabled": s.refine,
            "batch_sizes": sorted({c.batch_size for c in cells})}
    return _train_plan(params, cells, REFINE, "refine", plan)


def seeds_main(params: Params) -> int:
    """More seeds for every batch size that reached the headline target, at its chosen rate."""
    s = params.sweep
    results = read_cells(grid_paths(params) + planned_paths(REFINE))
    target = s.targets[0]
    cells = []
    for loader in s.loaders:
        table = _by_loader(results, loader, target)
        for _, row in analysis.choose_lr(table, target).iterrows():
            if row["reached"]:
                same = (table["lr"] == row["lr"]) & (table["batch_size"] == row["batch_size"])
                base = table.loc[same, "base_lr"].iloc[0]
                cells += [Cell(int(row["batch_size"]), float(base), seed, loader)
                          for seed in s.extra_seeds]
    return _train_plan(params, cells, SEEDS, "seeds", {"target": target})
