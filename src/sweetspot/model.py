"""The network and its optimizer: the question's MLP, Linear(784,256), Sigmoid, Linear(256,10)."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    def __init__(self, width: int = 256, activation: str = "sigmoid", n_in: int = 784,
                 n_out: int = 10):
        super().__init__()
        self.linear_1 = nn.Linear(n_in, width)  # names as in the question's Model
        self.act = ACTIVATIONS[activation]()
        self.linear_2 = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.size(0), -1)  # [B, 1, 28, 28] or [B, 784] -> [B, 784]
        return self.linear_2(self.act(self.linear_1(x)))


def make_optimizer(name: str, params, lr: float, momentum: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")
