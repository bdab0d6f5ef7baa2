"""The accepted answer's procedure for choosing a batch size, as pure functions: its grid around
sqrt(N), its x3 refinement, and its pick from an estimate table. The sweep's plan trains what the
procedure needs (sweep.refine_plan); the report replays it (claims.replay)."""

from __future__ import annotations

import math

from sweetspot.config import Params


def refinement_batches(best: int, tried: set[int], n_train: int) -> list[int]:
    """Batch sizes to try next around `best` (the StackOverflow answer's 3*2^n neighbours):
    best = 2^n -> 3*2^(n-2) and 3*2^(n-1) (128 -> 96, 192); best = 3*2^n -> 2^(n+1) and 2^(n+2)
    (96 -> 64, 128); anything else -> the powers of two around it. Only integers in
    [1, n_train] not yet tried, sorted (so 1 -> [], 2 -> [3]).
    """
    if best < 1:
        raise ValueError(f"batch size must be >= 1, got {best}")
    if best & (best - 1) == 0:  # a power of two
        candidates = [3 * best / 4, 3 * best / 2]
    elif best % 3 == 0 and (best // 3) & (best // 3 - 1) == 0:  # 3 * a power of two
        candidates = [2 * best / 3, 4 * best / 3]
    else:
        below = 2 ** math.floor(math.log2(best))
        candidates = [below, 2 * below]
    return sorted({int(c) for c in candidates
                   if float(c).is_integer() and 1 <= c <= n_train and int(c) not in tried})


def candidate_batches(params: Params) -> list[int]:
    """Every batch size the sweep may train: the grid, the extremes, and every 3*2^n neighbour
    refinement could add around a grid size (so step times can be measured before refinement)."""
    s = params.sweep
    grid = set(s.batch_sizes) | set(s.extremes)
    extra = set()
    if s.refine:
        for b in s.batch_sizes:
            extra |= set(refinement_batches(b, grid, params.train.n_train))
    return sorted(grid | extra)


def advised_grid(n_train: int) -> list[int]:
    """The accepted answer's grid: the power of two nearest sqrt(N) (256 for 60000), two
    halvings and two doublings of it (64 ... 1024), within the training set."""
    start = 2 ** round(math.log2(math.sqrt(n_train)))
    return [b for b in (start // 4, start // 2, start, start * 2, start * 4) if 1 <= b <= n_train]


def advised_pick(rows, n_train: int) -> dict:
    """The answer's procedure on an estimate table (batch_size, estimate): the grid's fastest,
    then the fastest of it and its x3 neighbours (refinement_batches). Which of them have no
    estimate yet, as `missing` (the plan trains those)."""
    known = {int(r.batch_size): float(r.estimate) for r in rows.itertuples()}
    grid = [b for b in advised_grid(n_train) if math.isfinite(known.get(b, math.inf))]
    if not grid:
        return {"grid": advised_grid(n_train), "best": None, "neighbours": [], "missing": []}
    best = min(grid, key=known.get)
    neighbours = refinement_batches(best, set(), n_train)
    tried = [b for b in [best, *neighbours] if b in known]
    return {"grid": advised_grid(n_train), "grid_best": best, "neighbours": neighbours,
            "missing": [b for b in neighbours if b not in known],
            "best": min(tried, key=known.get)}
