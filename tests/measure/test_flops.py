"""flops.py: the step counted by torch's FlopCounterMode, against the count by hand of the matmuls
the question's MLP runs; the matmul timer's reading."""

import dataclasses

import pytest
import torch

from conftest import tiny_params
from sweetspot.measure import flops


@pytest.mark.parametrize("batch", [1, 8, 256])
def test_the_step_is_counted_off_the_clock(batch):
    cfg = tiny_params().train  # the question's MLP: 784 -> 256 sigmoid -> 10
    x, y = torch.rand(batch, 784), torch.randint(0, 10, (batch,))
    c = flops.counted(cfg, x, y)
    weights = 784 * 256 + 256 + 256 * 10 + 10
    # forward x.W1^T and a.W2^T, weight gradients of both, the hidden gradient dz.W2; none for
    # the input: 2 FLOPs per multiply-add, 818,176 per example, not the textbook 6 x parameters
    assert c["flops"] == batch * 2 * (2 * 784 * 256 + 3 * 256 * 10) == batch * 818_176
    assert c["weight_bytes"] == 4 * weights and c["input_bytes"] == 4 * 784
    assert c["activation_bytes"] == 4 * (256 + 256 + 10)  # Linear, Sigmoid, Linear


def test_the_count_follows_the_width():
    cfg = dataclasses.replace(tiny_params().train, width=64)
    c = flops.counted(cfg, torch.rand(4, 784), torch.randint(0, 10, (4,)))
    assert c["flops"] == 4 * 2 * (2 * 784 * 64 + 3 * 64 * 10)


def test_the_matmul_timer_reads_seconds_per_flop_of_its_size(monkeypatch):
    """One product a call, its seconds over 2 n^3 FLOPs: a stand-in clock that each reading
    moves by 1 s."""
    ticks = iter(range(100))
    monkeypatch.setattr(flops, "clock", lambda device: float(next(ticks)))
    timer = flops.matmul_timer(64, torch.device("cpu"))
    assert [timer(), timer()] == [1 / (2 * 64**3)] * 2
