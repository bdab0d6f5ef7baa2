"""Memory: the step against this machine's limits. The answer: "ingest the entire batch into
memory at once ... if you under-use the memory, you leave some potential performance untapped."
On a CPU the memory that matters is the cache hierarchy.

Reads data/<dataset>/raw, reports/machine.json's caches and params.yaml (`advice`, `train`,
`bench.matmul_size`); writes reports/advice/memory.json and one MLflow run. Run: `dvc repro memory`.

Measured, in interleaved rounds (fastest each): seconds per step at advice.memory_batch_sizes
(steptime.timer on the tensor path), the bandwidth of copies of growing size (from inside L1
to four times the last cache), and the matmul rate (flops.matmul_timer, bench.matmul_size).
Counted, off the clock (flops.counted): the step's FLOPs and its bytes (the parameters, and each
layer's output per example). The floors are claims.floors'.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time

import torch

from sweetspot import paths
from sweetspot.advice import rounds
from sweetspot.config import Params
from sweetspot.measure import flops, steptime

COPY_MOVES = 64 << 20  # bytes each bandwidth reading copies at least (repeats of small copies)


def cache_bytes(caches: dict[str, str]) -> dict[str, int]:
    """{"L1d": "32K", "L2": "512K", "L3": "32768K"} -> bytes, data and unified caches only."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    out = {}
    for level, size in caches.items():
        found = re.fullmatch(r"(\d+)\s*([KMG]?)i?B?", size.strip())
        if found and not level.endswith("i"):
            out[level] = int(found[1]) * units[found[2]]
    return out


def copy_sizes(levels: dict[str, int]) -> list[int]:
    """Bytes per copy: 16 KiB, then x4 up to four times the largest cache (64 MiB without one)."""
    top = 4 * max(levels.values(), default=16 << 20)
    sizes, size = [], 16 << 10
    while size <= top:
        sizes.append(size)
        size *= 4
    return sizes


def copy_timer(nbytes: int):
    """Seconds per byte moved (read and written) by dst.copy_(src) of nbytes, over repeats."""
    src = torch.ones(nbytes // 4)
    dst = torch.empty_like(src)
    repeats = max(1, COPY_MOVES // nbytes)
    dst.copy_(src)  # touched: no page fault on the clock

    def timer():
        start = time.perf_counter()
        for _ in range(repeats):
            dst.copy_(src)
        return (time.perf_counter() - start) / (repeats * 2 * nbytes)
    return timer


def main(params: Params) -> int:
    started = time.time()
    data = rounds.load(params, "memory_batch_sizes", max(params.advice.memory_batch_sizes))
    a, cfg = params.advice, dataclasses.replace(params.train, loader="tensor", loader_workers=0)
    levels = cache_bytes(json.loads(paths.MACHINE.read_text()).get("caches", {}))
    once = dataclasses.replace(params.steptime, min_steps=1)  # large batches: one step a block
    timers = {f"step b{b}": rounds.step_timer(dataclasses.replace(cfg, batch_size=b), data, once)
              for b in a.memory_batch_sizes}
    counts = {str(b): flops.counted(cfg, data.x_train[:b].cpu(), data.y_train[:b].cpu())
              for b in a.memory_batch_sizes}
    sizes = copy_sizes(levels)
    timers |= {f"copy {s}": copy_timer(s) for s in sizes}
    timers["matmul"] = flops.matmul_timer(params.bench.matmul_size, torch.device("cpu"))
    rows = steptime.interleave(rounds.named(timers), a.rounds, "memory")
    fastest = rounds.fastest(rows)
    doc = {"caches": levels, "load": steptime.load_summary(rows), "rows": rows,
           "seconds_per_step": {str(b): fastest[f"step b{b}"] for b in a.memory_batch_sizes},
           "bandwidth": {str(s): 1 / fastest[f"copy {s}"] for s in sizes},
           "flops_per_second": 1 / fastest["matmul"], "counted": counts}
    rounds.write(params, paths.MEMORY, doc, {
        "matmul_gflops": doc["flops_per_second"] / 1e9,
        **{f"bandwidth_gbs/{s}": v / 1e9 for s, v in doc["bandwidth"].items()}},
        "memory", started)
    return 0
