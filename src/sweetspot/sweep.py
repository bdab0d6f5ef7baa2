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


def read_cells(*folders: Path) -> list[dict]:
    """Every cell result under the given folders (refine's plan file is not a cell)."""
    results = []
    for folder in folders:
        for path in sorted(Path(folder).glob("*.json")):
            result = json.loads(path.read_text())
            if "outcome" in result:
                results.append({**result, "name": path.stem})
    return results


def main(params: Params, batch_size: int, base_lr: float, seed: int, out: Path | None) -> int:
    """One coarse cell (`sweetspot sweep --batch-size B --base-lr LR --seed S`)."""
    out = out or COARSE / f"{cell_name(batch_size, base_lr, seed)}.json"
    return run_cell(params, batch_size, base_lr, seed, out, "coarse")


def refine_main(params: Params, coarse: Path = COARSE, out_dir: Path = REFINE) -> int:
    """Train the 3*2^n neighbours of the coarse sweet spot (128 -> 96 and 192) at every rate."""
    sweep = params.sweep
    results = read_cells(coarse)
    if not results:
        raise ConfigError(f"no coarse cells in {coarse}: run the sweep stage first")
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
    plan = {"target": target, "coarse_best": best["batch_size"], "batch_sizes": batches,
            "enabled": sweep.refine}
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
