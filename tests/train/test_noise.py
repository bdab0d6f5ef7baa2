"""The gradient noise scale: its two-batch estimator on known expectations and on synthetic
gradients of a known noise scale, and the tracker on a real network."""

import math

import numpy as np
import pytest
import torch

from sweetspot.train.networks import MLP
from sweetspot.train.noise import NoiseTracker, b_simple, noise_scale_terms


def test_noise_scale_terms_are_exact_on_expected_norms():
    g2, trace = 2.0, 50.0
    small, big = g2 + trace / 8, g2 + trace / 64  # E|g_B|^2 = |G|^2 + tr(Sigma)/B
    assert noise_scale_terms(small, big, 8, 64) == pytest.approx((g2, trace))
    assert b_simple(trace, g2) == pytest.approx(25.0)


def test_b_simple_recovers_a_known_noise_scale():
    rng = np.random.default_rng(0)
    dim, draws, b_small, b_big = 10, 3000, 8, 64
    grad = np.full(dim, 1 / np.sqrt(dim))  # |G|^2 = 1
    sigma2 = np.linspace(1.0, 9.0, dim)  # per-example gradient variances: tr(Sigma) = 50
    per_example = lambda b: grad + rng.normal(0, np.sqrt(sigma2), (draws, b, dim))  # noqa: E731
    g_small_sq = (per_example(b_small).mean(axis=1) ** 2).sum(axis=1)
    g_big_sq = (per_example(b_big).mean(axis=1) ** 2).sum(axis=1)
    g2, trace = noise_scale_terms(g_small_sq, g_big_sq, b_small, b_big)
    # one draw's |G|^2 estimate is very noisy (often negative): average each term, then divide
    assert (g2 < 0).any()
    assert b_simple(trace.mean(), g2.mean()) == pytest.approx(sigma2.sum() / 1.0, rel=0.10)


def test_b_simple_edge_cases():
    assert b_simple(5.0, -1.0) == math.inf
    assert math.isnan(b_simple(np.nan, 1.0))


def test_the_tracker_estimates_without_touching_the_model(tiny_data):
    torch.manual_seed(0)
    model = MLP(256, "sigmoid")
    before = [p.detach().clone() for p in model.parameters()]
    tracker = NoiseTracker(model, tiny_data, seed=2)
    assert tracker.averaged() is None
    estimates = [tracker.estimate() for _ in range(3)]
    assert all(e > 0 and math.isfinite(e) for e in estimates)
    assert len(set(estimates)) == 3  # a fresh random batch each time
    assert tracker.averaged() > 0
    assert all(p.grad is None for p in model.parameters())
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p.detach(), q)
    again = NoiseTracker(model, tiny_data, seed=2)
    assert again.estimate() == estimates[0]  # its own seeded stream
