"""The cost model (McCandlish et al. 2018): steps to target S(B) = S_min (1 + B_noise/B), seconds
per step t(B) = t0 + c B, their product T(B) smallest at B* = sqrt(B_noise t0 / c). Pure: arrays
in, numbers out; censored (inf) points are ignored by the fits.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import nnls


def _nonneg_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """y ~ a + b*x with a, b >= 0, least squares on relative error (measurements scatter by a
    roughly constant fraction, so a 6000-step point should not outweigh a 500-step one)."""
    keep = np.isfinite(x) & np.isfinite(y) & (y > 0)
    x, y = x[keep], y[keep]
    if len(np.unique(x)) < 2:
        raise ValueError("need finite measurements at two or more batch sizes")
    design = np.column_stack([np.ones_like(x), x]) / y[:, None]
    (a, b), _ = nnls(design, np.ones_like(y))
    return float(a), float(b)


def fit_steps(batch, steps) -> tuple[float, float]:
    """Fit S(B) = S_min * (1 + B_noise/B) to steps-to-target; returns (S_min, B_noise). S is
    linear in 1/B (S = S_min + S_min*B_noise/B); censored (inf) points are ignored."""
    batch, steps = np.asarray(batch, float), np.asarray(steps, float)
    s_min, slope = _nonneg_line(1.0 / batch, steps)
    return s_min, (slope / s_min if s_min > 0 else math.inf)


def fit_step_time(batch, seconds) -> tuple[float, float]:
    """Fit t(B) = t0 + c*B to seconds per step; returns (t0 in s, c in s per example), both >= 0."""
    return _nonneg_line(np.asarray(batch, float), np.asarray(seconds, float))


def nearest(batch_sizes, b: float) -> int | None:
    """The batch size closest to `b` in log scale (the grids are geometric); None if none. A
    B* of 0 (t0 fitted at 0: no per-step overhead seen) is nearest the smallest."""
    if b <= 0:
        return min(batch_sizes, default=None)
    return min(batch_sizes, key=lambda size: abs(math.log(size / b)), default=None)


def optimal_batch(b_noise: float, t0: float, c: float) -> float:
    """The B minimising S(B)*t(B): d/dB [S_min(1 + Bn/B)(t0 + cB)] = 0 at B = sqrt(Bn*t0/c)."""
    if c <= 0:
        return math.inf  # steps cost nothing extra per example: bigger is always faster
    return math.sqrt(b_noise * t0 / c)


def predicted_time(batch, s_min: float, b_noise: float, t0: float, c: float):
    """Seconds to target the models predict: S(B) * t(B) (float, or array for an array batch)."""
    b = np.asarray(batch, float)
    seconds = s_min * (1 + b_noise / b) * (t0 + c * b)
    return float(seconds) if seconds.ndim == 0 else seconds
