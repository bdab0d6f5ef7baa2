"""When a run reached its target: the one rule, read by the training loop (it stops by it) and by
every time to target the answer computes (analysis.py). Its own module, so that a training cell
depends on this rule and on none of the report's statistics (dvc.yaml's cell deps)."""

from __future__ import annotations

import math


def first_hit(points: list[dict], target: float) -> dict | None:
    """The first curve point with test_acc >= target (not the best point); None if the run never
    got there, or diverged first (nothing after a nan loss counts). The one rule: the training
    loop stops by it (stop_at_target), and every time to target is read by it."""
    for p in points:
        losses = [p.get("train_loss", 0.0), p.get("test_loss", 0.0), p.get("test_acc", 0.0)]
        if not all(math.isfinite(float(x)) for x in losses):
            return None
        if p["test_acc"] >= target:
            return p
    return None
