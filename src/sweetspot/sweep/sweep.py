"""The sweep: every cell of the grid is one training run; then refinement and more seeds.

Reads params.yaml (`train` for the network, `sweep` for the grid) and data/<dataset>/raw; writes
one JSON per cell (paths.py): reports/cells/coarse/ (the `sweep` matrix stage, one DVC stage per
cell, so an interrupted `dvc repro` re-runs only missing cells), then reports/refine_plan.json
(the `plan` stage: which batch sizes refinement adds, from the coarse cells and the seconds),
reports/cells/refine/ (the plan's cells), reports/cells/rates/ (the chosen rates' neighbours on a
finer ratio where the region could be) and reports/cells/seeds/ (more seeds at each batch size's
chosen rate), each with the plan it trained. Run: `dvc repro`.

A cell's budget is epochs, never seconds: its steps to target are the problem's alone, the same
on any machine and under any load. Refinement depends on the plan file, not on the seconds, so
re-measuring them retrains nothing unless the plan changes. The plan (grid, rates, refinement,
seeds) is pure functions of params and results; only `main` and run_cell train (planned.py runs
the planned stages).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from sweetspot import paths
from sweetspot.answer import estimate, procedure
from sweetspot.config import LR_POLICIES, Params
from sweetspot.errors import ConfigError


@dataclass(frozen=True)
class Cell:
    batch_size: int
    base_lr: float  # a rate of sweep.lrs; sweep.lr_policy turns it into the cell's rate
    seed: int
    loader: str

    @property
    def name(self) -> str:  # lr as YAML writes it, as dvc.yaml's ${item.lr}
        return f"b{self.batch_size}-lr{self.base_lr}-s{self.seed}-{self.loader}"


# --- the plan: pure ------------------------------------------------------------------------------

def lr_for_batch(policy: str, base_lr: float, batch_size: int, ref_batch: int) -> float:
    """The learning rate a policy gives batch_size, base_lr being the rate at ref_batch.
    fixed and tuned: base_lr (tuned: the grid itself supplies several base rates per batch size);
    linear: base_lr * B/ref (Goyal et al.); sqrt: base_lr * sqrt(B/ref) (variance-preserving).
    """
    ratio = batch_size / ref_batch
    if policy in ("fixed", "tuned"):
        return float(base_lr)
    if policy == "linear":
        return float(base_lr * ratio)
    if policy == "sqrt":
        return float(base_lr * math.sqrt(ratio))
    raise ValueError(f"unknown lr policy {policy!r}; choose one of {', '.join(LR_POLICIES)}")


def cell_params(params: Params, cell: Cell) -> Params:
    """The train section as one cell runs it: the policy's rate, the sweep's target, and its
    budget in epochs only (max_seconds 0: no clock ever stops a cell; an extreme's is
    sweep.extremes_max_epochs, batch 1 being an epoch of 60000 steps). Loader workers only where
    the loader has them: they change no batch, so no cell's steps."""
    sweep = params.sweep
    lr = lr_for_batch(sweep.lr_policy, cell.base_lr, cell.batch_size, sweep.ref_batch)
    budget = sweep.extremes_max_epochs if cell.batch_size in sweep.extremes else sweep.max_epochs
    workers = params.train.loader_workers if cell.loader == "torchvision" else 0
    cfg = dataclasses.replace(params.train, batch_size=cell.batch_size, lr=lr, seed=cell.seed,
                              loader=cell.loader, target_accuracy=max(sweep.targets),
                              max_epochs=budget, max_seconds=0, stop_at_target=True,
                              loader_workers=workers)
    cfg.check()  # e.g. a batch size larger than train.train_examples
    return dataclasses.replace(params, train=cfg)


def grid(params: Params, batch_sizes) -> list[Cell]:
    """Every (rate, seed, loader) at each batch size: an extreme's rates are sweep.extremes_lrs."""
    s = params.sweep
    return [Cell(b, lr, seed, loader) for b in batch_sizes
            for lr in (s.extremes_lrs if b in s.extremes else s.lrs) for seed in s.seeds
            for loader in s.loaders]


def _steps(results: list[dict], loader: str, target: float):
    mine = [r for r in results if r["loader"] == loader]
    return estimate.steps_table(mine, [target])


REFINE_WINDOW = 0.25  # refine around every coarse batch size estimated within 25% of the best:
# the grid doubles, so the optimum's two grid neighbours sit within about this of it, and a
# point estimate (no resampling) keeps the plan still when a re-measurement moves the seconds a bit


def refine_plan(params: Params, results: list[dict],
                seconds: dict[str, dict[int, list[float]]]) -> tuple[list[Cell], dict]:
    """The cells refinement trains, from the coarse results and the step times ({loader: {batch
    size: seconds per step per round}}): per loader, the 3*2^n neighbours of every coarse batch
    size whose estimate (steps x seconds) is within REFINE_WINDOW of the best, and those the
    accepted answer's procedure would try (advised_pick), at every rate and seed of the grid;
    and the plan. The plan holds only what decides the cells (those batch
    sizes, not the seconds), so a re-measurement that keeps them keeps the plan byte-identical."""
    s = params.sweep
    target = s.targets[0]  # the headline target, as in the report
    cells, around = [], {}
    for loader in s.loaders:
        rows = estimate.point_estimate(_steps(results, loader, target), seconds[loader], target)
        best = rows["estimate"].min() if len(rows) else math.inf
        around[loader] = [int(r.batch_size) for r in rows.itertuples()
                          if math.isfinite(r.estimate) and r.estimate <= (1 + REFINE_WINDOW) * best]
        if not s.refine:
            continue
        tried = {r["batch_size"] for r in results if r["loader"] == loader}
        answer = procedure.advised_pick(rows, params.train.n_train)["neighbours"]
        added = sorted({b for near in around[loader]
                        for b in procedure.refinement_batches(near, tried, params.train.n_train)}
                       | (set(answer) - tried))
        cells += [Cell(b, lr, seed, loader) for b in added for lr in s.lrs for seed in s.seeds]
    plan = {"target": target, "coarse_near_best": around, "enabled": s.refine,
            "batch_sizes": sorted({c.batch_size for c in cells})}
    return cells, plan


def rates_plan(params: Params, results: list[dict], near: dict[str, list[int]]) -> list[Cell]:
    """The chosen rate's neighbours, x and / sweep.rate_ratio (4 significant digits), at
    sweep.seeds, at every batch size of `near` ({loader: batch sizes the region could hold}) that
    reached the headline target, where not yet tried: rates between the grid's, so that which
    batch size drew the luckier rate decides less. Only the tuned policy tunes rates (the others
    scale one), and only with sweep.refine (no refinement of batch sizes or of rates without).
    """
    s = params.sweep
    if s.lr_policy != "tuned" or not s.refine:
        return []
    cells = []
    for loader in s.loaders:
        tried = {(r["batch_size"], float(f"{r['lr']:.4g}")) for r in results
                 if r["loader"] == loader}
        for row in estimate.choose_by_steps(_steps(results, loader, s.targets[0]),
                                            s.targets[0]).itertuples():
            if row.reached and row.batch_size in near.get(loader, []):
                rates = [float(f"{row.lr * k:.4g}") for k in (1 / s.rate_ratio, s.rate_ratio)]
                cells += [Cell(row.batch_size, lr, seed, loader) for lr in rates
                          if (row.batch_size, lr) not in tried for seed in s.seeds]
    return cells


def near_best(plan: dict) -> dict[str, list[int]]:
    """From the refine plan: per loader, the coarse batch sizes near the best and those refinement
    added around them, the batch sizes the sweet region could hold."""
    near = {loader: set(sizes) for loader, sizes in plan["coarse_near_best"].items()}
    for cell in plan["cells"]:
        near.setdefault(cell["loader"], set()).add(cell["batch_size"])
    return {loader: sorted(sizes) for loader, sizes in near.items()}


def seeds_plan(params: Params, results: list[dict]) -> list[Cell]:
    """sweep.extra_seeds for every batch size that reached the headline target, at the rate the
    estimate chooses (the smallest median steps), as the grid's base rate, so the cell runs it."""
    s = params.sweep
    target = s.targets[0]
    cells = []
    for loader in s.loaders:
        base = {(r["batch_size"], r["lr"]): r["base_lr"] for r in results
                if r["loader"] == loader}
        for row in estimate.choose_by_steps(_steps(results, loader, target), target).itertuples():
            if row.reached:
                cells += [Cell(row.batch_size, float(base[row.batch_size, row.lr]), seed, loader)
                          for seed in s.extra_seeds]
    return cells


# --- the cells on disk ---------------------------------------------------------------------------

def grid_paths(params: Params) -> list[Path]:
    """The cell files of the grid params.yaml defines now (cells left on disk by an earlier grid
    are not part of it), coarse then extremes."""
    s = params.sweep
    return ([paths.cell_file(paths.COARSE, c.name) for c in grid(params, s.batch_sizes)]
            + [paths.cell_file(paths.EXTREMES, c.name) for c in grid(params, s.extremes)])


def planned_paths(folder: Path) -> list[Path]:
    """The cells a refine/seeds stage trained, as its plan lists them."""
    plan = folder / paths.PLAN
    if not plan.exists():
        return []
    return [paths.cell_file(folder, name) for name in json.loads(plan.read_text())["cells"]]


def all_paths(params: Params) -> list[Path]:
    return before(params, paths.SEEDS) + planned_paths(paths.SEEDS)


def before(params: Params, folder: Path) -> list[Path]:
    """The cells a planned stage's plan is drawn from: those of the stages before it."""
    order = [paths.REFINE, paths.RATES, paths.SEEDS]
    return grid_paths(params) + [p for f in order[:order.index(folder)]
                                 for p in planned_paths(f)]


def step_times(params: Params) -> dict[str, dict]:
    """The `steptime` stage's document per data path (steptime.loaders), each with its seconds
    per step by batch size, one per round, rounds aligned across batch sizes."""
    if not paths.STEPTIME.exists():
        raise ConfigError(f"{paths.STEPTIME} is missing: run `dvc repro steptime`")
    per_loader = json.loads(paths.STEPTIME.read_text())["per_loader"]
    missing = [loader for loader in params.steptime.loaders if loader not in per_loader]
    if missing:
        raise ConfigError(f"{paths.STEPTIME} has no step times for loader {missing[0]}: "
                          "run `dvc repro steptime`")
    return {loader: per_loader[loader] for loader in params.steptime.loaders}


def read_cells(cell_files: list[Path]) -> list[dict]:
    """The results of the given cells; a missing cell is an error that names it."""
    missing = [str(p) for p in cell_files if not p.exists()]
    if missing:
        raise ConfigError(f"{len(missing)} cell(s) missing, e.g. {missing[0]}: run `dvc repro`")
    return [{**json.loads(p.read_text()), "name": p.stem} for p in cell_files]


# --- running it ----------------------------------------------------------------------------------

def run_cell(params: Params, cell: Cell, out: Path | None, stage: str) -> dict:
    """One cell's tracked run, as its stage trains it (its JSON to `out`, if given); its result."""
    from sweetspot.train import run  # torch and the data: only where a cell trains

    extra = {"base_lr": cell.base_lr, "lr_policy": params.sweep.lr_policy, "sweep_stage": stage}
    return run.tracked(cell_params(params, cell), out=out, extra=extra, name=cell.name)


def main(params: Params, cell: Cell, out: Path | None) -> int:
    """One coarse cell (`sweetspot sweep --batch-size B --base-lr LR --seed S --loader L`)."""
    run_cell(params, cell, out or paths.cell_file(paths.COARSE, cell.name), "coarse")
    return 0
