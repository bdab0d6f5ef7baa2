"""The planned stages (plan, refine, rates, seeds): what each trains, from the cells before it,
and the cells it keeps. A planned cell depends on no other cell, so while the grid's steps are the
same (basis) a stage re-run keeps every cell it still plans and trains only the new ones; the
race (race.py) keeps its own the same way. Run: `dvc repro`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

from sweetspot import paths
from sweetspot.answer import estimate, fastest
from sweetspot.config import Params
from sweetspot.errors import ConfigError
from sweetspot.sweep import sweep


def clear_folder(out_dir: Path) -> None:
    """A refine/seeds folder before its cells train: no cell or plan left from an earlier plan."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob("*.json"), *out_dir.glob("*.json.tmp")]:
        stale.unlink()


def write_plan(out_dir: Path, names: list[str], plan: dict) -> None:
    """The cells `names` and the plan: the cells kept from before that it no longer names go,
    then the plan file, written last, marks its folder complete."""
    for stale in out_dir.glob("*.json"):
        if stale.name != paths.PLAN and stale.stem not in names:
            stale.unlink()
    paths.write_json(out_dir / paths.PLAN, {**plan, "cells": list(names)})


def basis(params: Params) -> str:
    """What a planned cell's steps rest on besides its own settings: the steps of the grid's cells
    (steps_table), which DVC retrains whenever the data, the training code or a training setting
    changes. A planned cell (refine's, seeds', the race's) depends on no other cell, so while this
    is the same every cell still planned stands: a grid cell restored with the same steps, an
    edit to the answer's statistics, or new seconds that move a plan retrain none of them."""
    table = estimate.steps_table(sweep.read_cells(sweep.grid_paths(params)),
                                 list(params.sweep.targets))
    return hashlib.md5(table.to_csv(index=False).encode()).hexdigest()


def kept(out_dir: Path, plan: dict) -> bool:
    """Whether the cells in out_dir may stay: they rest on the same grid steps (basis) as this
    plan. A stage re-run by DVC keeps every cell it still plans and trains only the new ones;
    after a change to the training code or settings (the grid's steps then change) all retrain."""
    old = out_dir / paths.PLAN
    return ("basis" in plan and old.exists()
            and json.loads(old.read_text()).get("basis") == plan["basis"])


def _train_plan(params: Params, cells: list[sweep.Cell], out_dir: Path, stage: str,
                plan: dict) -> int:
    """Train the planned cells into out_dir, one after another (keeping those `kept` allows),
    then write the plan."""
    for cell in cells:
        sweep.cell_params(params, cell)  # every cell checks before the first trains
    keep = kept(out_dir, plan)
    if not keep:
        clear_folder(out_dir)
    todo = [c for c in cells if not (keep and paths.cell_file(out_dir, c.name).exists())]
    print(f"{stage}: training {len(todo)} of {len(cells)} cell(s): {[c.name for c in todo]}",
          file=sys.stderr)
    for cell in todo:
        sweep.run_cell(params, cell, paths.cell_file(out_dir, cell.name), stage)
    write_plan(out_dir, [c.name for c in cells], plan)
    return 0


def cells_of(params: Params, stage: str) -> tuple[list[sweep.Cell], dict]:
    """What the refine, rates or seeds stage trains: refine, the cells of the `plan` stage's
    file; rates and seeds, from the cells before them (rates around the plan's batch sizes).
    Returns (cells, plan), the plan with the steps it was drawn from (basis)."""
    if stage == "seeds":
        cells = sweep.seeds_plan(params, sweep.read_cells(sweep.before(params, paths.SEEDS)))
        return cells, {"target": params.sweep.targets[0], "basis": basis(params)}
    if not paths.REFINE_PLAN.exists():
        raise ConfigError(f"{paths.REFINE_PLAN} is missing: run `dvc repro plan`")
    plan = json.loads(paths.REFINE_PLAN.read_text())
    if stage == "rates":
        results = sweep.read_cells(sweep.before(params, paths.RATES))
        cells = sweep.rates_plan(params, results, sweep.near_best(plan))
        return cells, {"target": params.sweep.targets[0], "ratio": params.sweep.rate_ratio,
                       "basis": basis(params)}
    cells = [sweep.Cell(c["batch_size"], c["base_lr"], c["seed"], c["loader"])
             for c in plan.pop("cells")]
    return cells, {**plan, "basis": basis(params)}


def plan_main(params: Params) -> int:
    """The `plan` stage: which batch sizes refinement adds, from the coarse cells and the seconds
    per step, into reports/refine_plan.json (its cells as fields, so refine reads no seconds)."""
    coarse = sweep.read_cells([p for p in sweep.grid_paths(params) if p.parent == paths.COARSE])
    seconds = {loader: fastest.round_seconds(doc)
               for loader, doc in sweep.step_times(params).items()}
    cells, plan = sweep.refine_plan(params, coarse, seconds)
    for cell in cells:
        sweep.cell_params(params, cell)  # every cell checks before the plan is written
    paths.write_json(paths.REFINE_PLAN, {**plan, "cells": [dataclasses.asdict(c) for c in cells]})
    print(f"plan: refine around {plan['coarse_near_best']}: adds batch sizes "
          f"{plan['batch_sizes'] or 'none'} ({len(cells)} cells); wrote {paths.REFINE_PLAN}")
    return 0


def refine_main(params: Params) -> int:
    """Train the 3*2^n neighbours of the coarse sweet spot (128 -> 96 and 192) at every rate."""
    cells, plan = cells_of(params, "refine")
    return _train_plan(params, cells, paths.REFINE, "refine", plan)


def rates_main(params: Params) -> int:
    """The chosen rates' neighbours (sweep.rate_ratio) where the sweet region could be."""
    cells, plan = cells_of(params, "rates")
    return _train_plan(params, cells, paths.RATES, "rates", plan)


def seeds_main(params: Params) -> int:
    """More seeds for every batch size that reached the headline target, at its chosen rate."""
    cells, plan = cells_of(params, "seeds")
    return _train_plan(params, cells, paths.SEEDS, "seeds", plan)
