"""The cost model on synthetic data with a known truth: the fits recover it, B* is the argmin."""

import math

import numpy as np
import pytest

from sweetspot.answer import costmodel
from sweetspot.answer.costmodel import fit_step_time, fit_steps, optimal_batch, predicted_time

INF = math.inf
S_MIN, B_NOISE, T0, C = 500.0, 200.0, 2e-3, 1e-5


def synthetic_cost(seed=0, noise=0.02):
    rng = np.random.default_rng(seed)
    batch = np.repeat(2.0 ** np.arange(4, 13), 3)  # 16..4096, three seeds each
    steps = S_MIN * (1 + B_NOISE / batch) * rng.lognormal(0, noise, batch.size)
    seconds = (T0 + C * batch) * rng.lognormal(0, noise, batch.size)
    return batch, steps, seconds



def test_fit_steps_and_step_time_recover_known_values():
    batch, steps, seconds = synthetic_cost()
    s_min, b_noise = fit_steps(batch, steps)
    t0, c = fit_step_time(batch, seconds)
    assert s_min == pytest.approx(S_MIN, rel=0.05)
    assert b_noise == pytest.approx(B_NOISE, rel=0.05)
    assert t0 == pytest.approx(T0, rel=0.05)
    assert c == pytest.approx(C, rel=0.05)



def test_fit_steps_ignores_censored_points():
    batch, steps, _ = synthetic_cost(noise=0.0)
    steps[-3:] = INF
    assert fit_steps(batch, steps) == pytest.approx((S_MIN, B_NOISE), rel=1e-6)



def test_fit_step_time_coefficients_are_non_negative():
    # Step time falling with batch size (noise, caching) must not give a negative c.
    t0, c = fit_step_time([16, 64, 256], [3e-3, 2.9e-3, 2.8e-3])
    assert t0 > 0 and c >= 0



def test_optimal_batch_is_the_argmin_of_predicted_time():
    b_star = optimal_batch(B_NOISE, T0, C)
    assert b_star == pytest.approx(200.0)  # sqrt(200 * 2e-3 / 1e-5)
    grid = np.geomspace(1, 100_000, 200_001)
    assert grid[np.argmin(predicted_time(grid, S_MIN, B_NOISE, T0, C))] == pytest.approx(
        b_star, rel=0.01)
    assert predicted_time(200, S_MIN, B_NOISE, T0, C) == pytest.approx(500 * 2 * 4e-3)
    assert optimal_batch(B_NOISE, T0, 0.0) == INF


def test_nearest_is_in_log_scale():
    assert costmodel.nearest([16, 32, 64], 23) == 32  # log2: 4.52 is nearer 5 than 4
    assert costmodel.nearest([16, 32, 64], 22) == 16
    assert costmodel.nearest([16, 32, 64], 0.0) == 16  # t0 fitted at 0 under load: no crash
    assert costmodel.nearest([], 22) is None
