"""The race: seeds where the sweet region is undecided, until each batch size is in or out.

After the seeds stage, each batch size reached the target has its chosen rate's seeds (one from
the grid, sweep.extra_seeds from the seeds stage). The sweet region's rule (estimate.REGION_RULE)
then keeps every batch size the resamples cannot tell slower than the spot; with three seeds that
is many. The race (after Maron & Moore's Hoeffding races) spends seeds where the answer is
undecided, in rounds, and stops where it is decided or the budget (params.yaml `race`) is spent.

A batch size, by the region's rule and race.margin:
- out: outside the sweet region (the resamples tell it slower than the spot) or censored;
- in: inside it, and the spot's time over its own is at most 1 + margin in 95% of resamples of
  the seeds (the seconds per step are the machine's, fixed: the seeds are what is undecided);
- undecided: inside it, but the seeds allow it to be more than `margin` slower.
And a rate: at a batch size in the region, the chosen rate and the rates whose median steps are
within `margin` of it are undecided between them while they lack a seed the batch size has (the
chosen rate rests on the seeds stage's seeds, a neighbour on the grid's, or the other way round):
each gets every seed the batch size has.

Each round adds the missing seeds to every undecided rate, then one seed at the chosen rate to
the spot and to every undecided batch size, in that order, within race.max_seeds per batch size
and race.max_cells in all. Pure: the same steps and seconds give the same cells. The stage
(`main`) keeps the cells it trained (a persistent output) and retrains none while the grid's
cells have the same steps (planned.basis: a committed cell retrained to the same steps
changes nothing here): a re-measurement of the seconds alone adds cells only where a
decision changed, and drops the cells no decision needs any more.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweetspot import paths
from sweetspot.answer import analysis, estimate, fastest
from sweetspot.config import Params
from sweetspot.sweep import planned, sweep

IN, OUT, UNDECIDED, SPOT = "in", "out", "undecided", "spot"
QUANTILE = 0.95  # "in": the spot's time over its own <= 1 + margin in this share of resamples


@dataclass(frozen=True)
class Budget:
    margin: float
    max_seeds: int
    max_cells: int


def _steps(row) -> np.ndarray:
    return np.asarray(row.steps_runs, float)


def slower_bound(steps: np.ndarray, spot_steps: np.ndarray, ratio: float, resamples: int,
                 seed: int = 0) -> float:
    """The QUANTILE of (a batch size's time over the spot's) over resamples of both one's seeds:
    each resample's median steps, times the fixed ratio of their seconds per step. inf when the
    batch size's resampled median is censored."""
    rng = np.random.default_rng(seed)
    mine = estimate.resampled_medians(steps, resamples, rng)
    spot = estimate.resampled_medians(spot_steps, resamples, rng)
    with np.errstate(invalid="ignore"):
        ratios = np.nan_to_num(mine / spot * ratio, nan=np.inf)  # both censored: undecided
    return float(np.quantile(ratios, QUANTILE, method="inverted_cdf"))


def verdicts(table: pd.DataFrame, seconds: dict[int, list[float]], target: float,
             margin: float, resamples: int) -> dict:
    """Per batch size (with steps and a time): its status (SPOT, IN, OUT, UNDECIDED), why (its
    as-fast share and distance from the estimate's region, and `bound`, slower_bound), its chosen
    rate and seeds there; and the rates still undecided ({batch size: [rate, ...]})."""
    found = estimate.estimate(table, seconds, target, resamples)
    per_batch, spot = found["per_batch"], found["spot"]
    if spot["batch_size"] is None:
        return {"spot": None, "batch": {}, "rates": {}}
    region = {r["batch_size"]: r for r in spot["region"]}
    best = per_batch[per_batch["batch_size"] == spot["batch_size"]].iloc[0]
    batch = {}
    for row in per_batch.itertuples():
        b = int(row.batch_size)
        member = region.get(b, {})
        why = {"lr": float(row.lr), "seeds": int(row.n_runs), "as_fast": member.get("as_fast"),
               "distance": float(row.estimate / best.estimate - 1), "bound": None}
        if b == spot["batch_size"]:
            status = SPOT
        elif not member:
            status = OUT
        else:
            why["bound"] = slower_bound(_steps(row), _steps(best),
                                        row.seconds_per_step / best.seconds_per_step, resamples)
            status = IN if why["bound"] <= 1 + margin else UNDECIDED
        batch[b] = {"status": status, **why}
    return {"spot": spot["batch_size"], "batch": batch,
            "rates": close_rates(table, per_batch, target, region, margin)}


def close_rates(table: pd.DataFrame, per_batch: pd.DataFrame, target: float, region,
                margin: float) -> dict:
    """{batch size in the region: {rate: the seeds it lacks}}: the chosen rate and every rate
    whose median steps are within `margin` of it each get every seed the batch size has (at any
    rate), so the median chooses between them on the same seeds (the chosen may be the one on
    fewer: the rates stage's neighbours start on the grid's seed alone)."""
    chosen = per_batch.set_index("batch_size")
    at = table[np.isclose(table["target"].astype(float), target)]
    out = {}
    for b in region:
        mine = at[at["batch_size"] == b]
        every = {int(s) for s in mine["seed"]}
        close = {float(lr): {int(s) for s in runs["seed"]}
                 for lr, runs in mine.groupby("lr", sort=True)
                 if analysis.censored_median(runs["steps"], ~runs["censored"].astype(bool))
                 <= (1 + margin) * chosen.loc[b, "median_steps"]}
        lacking = {lr: sorted(every - seeds) for lr, seeds in close.items() if every - seeds}
        if lacking:
            out[b] = lacking
    return out


def seeds_at(table: pd.DataFrame, batch_size: int, lr: float) -> list[int]:
    at = table[(table["batch_size"] == batch_size) & np.isclose(table["lr"], lr)]
    return sorted({int(s) for s in at["seed"]})


def next_cells(table: pd.DataFrame, decided: dict, budget: Budget, added: int) -> list[tuple]:
    """One round's (batch size, rate, seed) to train, from `verdicts`: the undecided rates' missing
    seeds, then one new seed at the chosen rate of the spot and of each undecided batch size, while
    the budget lasts (`added`: the cells the race has trained so far). None when all is decided."""
    batch = decided["batch"]
    undecided = [b for b, v in sorted(batch.items()) if v["status"] == UNDECIDED]
    cells = []
    for b, rates in sorted(decided["rates"].items()):
        cells += [(b, lr, s) for lr, seeds in sorted(rates.items()) for s in seeds]
    if undecided:
        for b in [decided["spot"], *undecided]:
            lr = batch[b]["lr"]
            have = seeds_at(table, b, lr)
            if len(have) < budget.max_seeds:
                cells.append((b, lr, max(have) + 1))
    return cells[:max(budget.max_cells - added, 0)]


def run(table: pd.DataFrame, train, seconds: dict[int, list[float]], target: float,
        budget: Budget, resamples: int) -> tuple[list[list[tuple]], dict]:
    """Race until all is decided or the budget is spent: `train(cells)` gives the steps table's
    rows of the cells it trained. Returns the rounds (each its cells) and the last verdicts."""
    rounds: list[list[tuple]] = []
    while True:
        decided = verdicts(table, seconds, target, budget.margin, resamples)
        cells = next_cells(table, decided, budget, sum(map(len, rounds)))
        if not cells:
            return rounds, decided
        rounds.append(cells)
        table = pd.concat([table, train(cells)], ignore_index=True)


# --- the stage -----------------------------------------------------------------------------------

def all_paths(params: Params) -> list:
    """Every cell the report reads: the sweep's, then the race's."""
    return sweep.all_paths(params) + sweep.planned_paths(paths.RACE)


def _trainer(params: Params, loader: str, base: dict, reuse: bool, target: float, names: list):
    """train(cells) for `run`: each cell trained into reports/cells/race, or read back when the
    race kept it; its name appended to `names`."""
    def train(cells):
        done = []
        for b, lr, seed in cells:
            cell = sweep.Cell(b, base[b, lr], seed, loader)
            out = paths.cell_file(paths.RACE, cell.name)
            if not (reuse and out.exists()):
                print(f"race: training {cell.name}", file=sys.stderr, flush=True)
                sweep.run_cell(params, cell, out, "race")
            names.append(cell.name)
            done += sweep.read_cells([out])
        return estimate.steps_table(done, [target])
    return train


def main(params: Params) -> int:
    """The `race` stage: rounds of seeds (see the module's text) per data path the sweep trained,
    into reports/cells/race with its plan (the rounds and each batch size's status)."""
    s, r = params.sweep, params.race
    results = sweep.read_cells(sweep.all_paths(params))
    seconds = {k: fastest.round_seconds(doc) for k, doc in sweep.step_times(params).items()}
    plan = {"basis": planned.basis(params), "target": s.targets[0]}
    reuse = planned.kept(paths.RACE, plan)
    if not reuse:
        planned.clear_folder(paths.RACE)
    target, names = s.targets[0], []
    for loader in s.loaders:
        mine = [c for c in results if c["loader"] == loader]
        base = {(c["batch_size"], c["lr"]): c["base_lr"] for c in mine}
        train = _trainer(params, loader, base, reuse, target, names)
        rounds, decided = run(estimate.steps_table(mine, [target]), train,
                              seconds[loader], target, Budget(r.margin, r.max_seeds, r.max_cells),
                              s.resamples)
        plan[loader] = {"rounds": rounds, "spot": decided["spot"],
                        "status": {b: v["status"] for b, v in decided["batch"].items()}}
        print(f"race ({loader}): {len(rounds)} round(s), {sum(map(len, rounds))} cell(s); "
              f"undecided {[b for b, v in decided['batch'].items() if v['status'] == UNDECIDED]}",
              file=sys.stderr)
    planned.write_plan(paths.RACE, names, plan)  # kept cells no decision needs now go
    return 0


# --- the race in the report ----------------------------------------------------------------------

def summary(params: Params, results: list[dict], seconds: dict[int, list[float]],
            target: float) -> dict:
    """The race on the headline data path, as the report gives it: the cells it added, their
    training and evaluation seconds, and per batch size the verdicts on all its cells."""
    loader = params.sweep.loaders[0]
    mine = [c for c in results if c["loader"] == loader]
    table = estimate.steps_table(mine, [target])
    decided = verdicts(table, seconds, target, params.race.margin, params.sweep.resamples)
    raced = [c for c in mine if c.get("sweep_stage") == "race"]
    cost = sum(c.get("train_time", 0) + c.get("eval_time", 0) + c.get("compile_time", 0)
               for c in raced)
    return {"cells": len(raced), "seconds": cost, "budget": vars(params.race).copy(),
            "added": {b: sum(c["batch_size"] == b for c in raced) for b in decided["batch"]},
            **decided}


def undecided(raced: dict | None) -> list[int]:
    """The region's members the race left undecided (none without a race)."""
    return sorted(int(b) for b, v in (raced or {}).get("batch", {}).items()
                  if v["status"] == UNDECIDED)
