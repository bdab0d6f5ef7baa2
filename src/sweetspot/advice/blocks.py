"""Block sizes: "a batch size that is 2^n or 3*2^n ... works best, simply because of block
sizes". Seconds per step at 2^n and 3*2^(n-1) for n in advice.block_powers, each beside its
neighbours at -1 and +1 (odd sizes, which any multiple of 8 beats on the vector lanes) and at -8
and +8 (other multiples of 8), on the tensor path, in steptime's interleaved rounds (fastest
each).

Reads data/<dataset>/raw and params.yaml; writes reports/advice/blocks.json and one MLflow run.
Run: `dvc repro blocks`. The verdict is the report's (claims.block_verdict), so that rewording it
re-measures nothing.
"""

from __future__ import annotations

import dataclasses
import time

from sweetspot import paths
from sweetspot.advice import rounds
from sweetspot.config import Params
from sweetspot.measure import steptime


def centres(powers) -> list[tuple[str, int]]:
    """(kind, size): 2^n and 3*2^(n-1) for each n."""
    return [c for n in powers for c in (("2^n", 2 ** n), ("3*2^(n-1)", 3 * 2 ** (n - 1)))]


NEIGHBOURS = (1, 8)  # a centre's neighbours: c-d and c+d for each d


def block_sizes(powers) -> list[int]:
    """Every centre and its neighbours, sorted."""
    return sorted({b + s * d for _, b in centres(powers) for d in (0, *NEIGHBOURS)
                   for s in (-1, 1) if b - d >= 1})


def main(params: Params) -> int:
    started = time.time()
    sizes = block_sizes(params.advice.block_powers)
    data = rounds.load(params, "block_powers", max(sizes))
    cfg = dataclasses.replace(params.train, loader="tensor", loader_workers=0)
    on = rounds.with_rounds(dataclasses.replace(params, train=cfg))
    doc = steptime.measure_doc(on, data, sizes)
    per_example = {b: 1e6 * v["seconds"] / int(b) for b, v in doc["per_batch"].items()}
    rounds.write(params, paths.BLOCKS, {"centres": centres(params.advice.block_powers),
                                        "load": doc["load"], "steptime": doc},
                 {f"us_per_example/{b}": v for b, v in per_example.items()}, "blocks", started)
    return 0
