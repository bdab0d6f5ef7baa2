"""A machine's seconds per step from its timed rounds: the fastest. The measuring stages
(steptime, bench) and the answer read them by this one rule; its own module, so that what
measures depends on it and on none of the answer's statistics (dvc.yaml's deps)."""

from __future__ import annotations

import numpy as np

NEAR_FASTEST = 1.25  # a timing round "at its best" is within 25% of its batch size's fastest


def round_seconds(doc: dict) -> dict[int, list[float]]:
    """{batch size: seconds per step in each round} from one steptime measurement (one data
    path's document in reports/steptime.json)."""
    return {int(b): v["rounds"] for b, v in doc["per_batch"].items()}


def rounds(seconds: dict[int, list[float]]) -> int | None:
    """How many rounds the seconds were timed in (round_seconds' lists; None: no seconds): as
    many intervals as a run's own seconds are read over (analysis.run_seconds)."""
    return min((len(v) for v in seconds.values()), default=None)


def machine_seconds(rounds, axis: int = -1):
    """The machine's seconds per step from its timed rounds: their minimum. Load from other
    processes only ever adds time, so the fastest round is the one it touched least, and no
    number of loaded rounds can move it while one round is quiet (Chen & Revels 2016, "Robust
    benchmarking in noisy environments"; timeit and BenchmarkTools report it too). A median
    picks whichever load state held most rounds, so neighbouring batch sizes land in different
    states and the answer flips between them."""
    return np.min(np.asarray(rounds, float), axis=axis)
