"""The held-out check: do fresh seeds agree with the answer's verdicts? The heldout stage
(`dvc repro heldout`, or `sweetspot heldout`).

From the cells and the seconds per step (reports/steptime.json) it finds the answer as the report
does (estimate.estimate at the headline target), then trains seeds no cell of it used (`--seeds`,
by default 100, 101 and 102) at three batch sizes, each at its chosen rate: the spot, a member of
the sweet region (its largest, or its smallest where the spot is the largest), and the first batch
size above the region that it leaves out. Each one's held-out time is its fresh runs' median steps
times the answer's seconds per step, so only the seeds are new. A member agrees when its time is
within race.margin of the spot's; the excluded one when it is slower than the spot's. Writes
reports/heldout/<dataset>-<network>.json, which the report reads.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timezone

from sweetspot import paths
from sweetspot.answer import analysis, estimate, fastest
from sweetspot.config import Params
from sweetspot.errors import ConfigError
from sweetspot.sweep import race, sweep
from sweetspot.train.networks import network_slug


def picks(spot: int, region: list[int], tried: list[int]) -> dict[int, str]:
    """{batch size: the answer's verdict} for the spot, a member (the region's largest, or its
    smallest where the spot is the largest) and the first batch size tried above the region that
    it leaves out (where there is one)."""
    chosen = {spot: "spot"}
    member = max(region) if max(region) != spot else min(region)
    if member != spot:
        chosen[member] = "in"
    above = [b for b in sorted(tried) if b > max(region) and b not in region]
    if above:
        chosen[above[0]] = "out"
    return chosen


def agreement(rows: list[dict], margin: float) -> list[dict]:
    """Each row ({batch_size, verdict, time}) with its time over the spot's and whether it agrees
    with the verdict (None for the spot itself)."""
    spot = next(r["time"] for r in rows if r["verdict"] == "spot")
    out = []
    for r in rows:
        ratio = r["time"] / spot if math.isfinite(spot) else math.nan
        agrees = {"spot": None, "in": ratio <= 1 + margin, "out": ratio > 1}[r["verdict"]]
        out.append({**r, "ratio": ratio, "agrees": agrees})
    return out


def main(params: Params, seeds: list[int]) -> int:
    target, loader = params.sweep.targets[0], params.sweep.loaders[0]
    cells = sweep.read_cells(race.all_paths(params))
    results = [r for r in cells if r["loader"] == loader]
    used = sorted({r["seed"] for r in results} & set(seeds))
    if used:
        raise ConfigError(f"--seeds: {used} trained cells of the answer; held-out seeds are new")
    seconds = fastest.round_seconds(sweep.step_times(params)[loader])
    found = estimate.estimate(estimate.steps_table(cells, [target]), seconds, target,
                              params.sweep.resamples)
    spot, chosen = found["spot"], found["per_batch"].set_index("batch_size")
    if spot["batch_size"] is None:
        raise ConfigError(f"no answer to check: {spot['reason']}")
    answer = {"spot": spot["batch_size"], "region": [r["batch_size"] for r in spot["region"]],
              "tried": sorted(int(b) for b in chosen.index)}
    base = {(r["batch_size"], r["lr"]): r["base_lr"] for r in results}
    rows = []
    for b, verdict in picks(answer["spot"], answer["region"], answer["tried"]).items():
        lr, per_step = float(chosen.loc[b, "lr"]), float(chosen.loc[b, "seconds_per_step"])
        runs = []
        for seed in seeds:
            cell = sweep.Cell(b, base[b, lr], seed, loader)
            print(f"heldout: training {cell.name} ({verdict})", file=sys.stderr, flush=True)
            runs.append(sweep.run_cell(params, cell, None, "heldout"))
        hits = [analysis.time_to_target(r["curve"], target) for r in runs]
        steps = analysis.censored_median([h["step"] for h in hits],
                                         [h["reached"] for h in hits])
        rows.append({"batch_size": b, "lr": lr, "verdict": verdict, "seeds": list(seeds),
                     "steps": [h["step"] for h in hits], "median_steps": steps,
                     "seconds_per_step": per_step, "time": steps * per_step,
                     "run_ids": [r["run_id"] for r in runs]})
    doc = {"made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "dataset": params.data.dataset, "network": params.train.network, "target": target,
           "answer": answer, "margin": params.race.margin,
           "rows": agreement(rows, params.race.margin)}
    path = paths.problem_file(paths.HELDOUT, params.data.dataset, network_slug(params.train))
    paths.write_json(path, doc)
    told = ", ".join(f"{r['batch_size']} ({r['verdict']}) x{r['ratio']:.2f}" for r in doc["rows"])
    print(f"heldout: {told}; wrote {path}")
    return 0


def documents() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(paths.HELDOUT.glob("*.json"))]
