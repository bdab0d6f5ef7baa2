"""The gradient noise scale B_simple = tr(Sigma)/|G|^2 (McCandlish et al. 2018, appendix A),
estimated during training off the clock from gradient norms at a small and a big batch. Reads and
writes nothing: the tracker returns numbers, the run logs them."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from sweetspot.data.load import Data

NOISE_BATCHES = (128, 2048, 4)  # small batch, big batch, small batches averaged
NOISE_EMA = 0.2  # smoothing of each term across evaluations


def noise_scale_terms(g_small_sq, g_big_sq, b_small: float, b_big: float):
    """Unbiased |G|^2 and tr(Sigma) from squared norms of mean gradients over two batch sizes,
    using E|g_B|^2 = |G|^2 + tr(Sigma)/B. Floats or arrays in, (g2, trace_sigma) out."""
    g_small_sq, g_big_sq = np.asarray(g_small_sq, float), np.asarray(g_big_sq, float)
    g2 = (b_big * g_big_sq - b_small * g_small_sq) / (b_big - b_small)
    trace_sigma = (g_small_sq - g_big_sq) / (1 / b_small - 1 / b_big)
    if g2.ndim == 0:
        return float(g2), float(trace_sigma)
    return g2, trace_sigma


def b_simple(trace_sigma: float, g2: float) -> float:
    """The simple noise scale tr(Sigma)/|G|^2 (examples). Each term is a noisy estimate: a
    non-positive |G|^2 means noise swamps signal (inf); nan in, nan out."""
    trace_sigma, g2 = float(trace_sigma), float(g2)
    if not (np.isfinite(trace_sigma) and np.isfinite(g2)):
        return math.nan
    if g2 <= 0:
        return math.inf
    return trace_sigma / g2


def grad_sq_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """|g|^2 of the mean-loss gradient on one batch, leaving the parameters' .grad untouched."""
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return float(sum(g.pow(2).sum() for g in grads))


def noise_terms(model: nn.Module, data: Data, generator: torch.Generator) -> tuple:
    """|G|^2 and tr(Sigma) from the gradient norms at a small and a big batch of training
    examples drawn at random."""
    n = len(data.x_train)
    small, big, k = NOISE_BATCHES
    big = min(big, n)
    small = min(small, big // (2 * k))
    idx = torch.randperm(n, generator=generator)[:big].to(data.device)
    x, y = data.x_train[idx], data.y_train[idx]
    g_big = grad_sq_norm(model, x, y)
    g_small = sum(grad_sq_norm(model, x[i * small:(i + 1) * small], y[i * small:(i + 1) * small])
                  for i in range(k)) / k
    return noise_scale_terms(g_small, g_big, small, big)


class NoiseTracker:
    """B_simple at each estimate, each term smoothed separately; `averaged()` is the ratio of the
    terms' means over the run ("averaged over training")."""

    def __init__(self, model: nn.Module, data: Data, seed: int):
        self.model, self.data = model, data
        self.generator = torch.Generator().manual_seed(seed)  # training's stream stays untouched
        self.terms, self.smooth = [], []

    def estimate(self) -> float:
        g2, trace = noise_terms(self.model, self.data, self.generator)
        self.terms.append((g2, trace))
        last = self.smooth[-1] if self.smooth else (g2, trace)
        self.smooth.append(tuple((1 - NOISE_EMA) * a + NOISE_EMA * b
                                 for a, b in zip(last, (g2, trace), strict=True)))
        return b_simple(self.smooth[-1][1], self.smooth[-1][0])

    def averaged(self) -> float | None:
        if not self.terms:
            return None
        g2, trace = (sum(column) / len(self.terms) for column in zip(*self.terms, strict=True))
        return b_simple(trace, g2)
