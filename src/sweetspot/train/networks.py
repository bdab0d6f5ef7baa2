"""The networks and the optimizer. `train.network` names one: `mlp`, the question's
Linear(784,width)-activation-Linear(width,10); `cnn`, LeNet-5 (ReLU, max pooling); or a user's own,
`package.module:function`, a function returning an nn.Module for 28x28x1 images and 10 classes.
`build` makes it; `network_name` is its one name (steps table, MLflow, predict's check)."""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import torch
from torch import nn

from sweetspot.config import ACTIVATIONS, NETWORKS
from sweetspot.errors import ConfigError

LAYERS = dict(zip(ACTIVATIONS, (nn.Sigmoid, nn.ReLU, nn.Tanh), strict=True))  # by config's name
CNN_NAME = "LeNet-5(conv6-conv16-120-84)"


class MLP(nn.Module):
    def __init__(self, width: int, activation: str, n_in: int = 784, n_out: int = 10):
        super().__init__()
        self.linear_1 = nn.Linear(n_in, width)  # names as in the question's Model
        self.act = LAYERS[activation]()
        self.linear_2 = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.size(0), -1)  # [B, 1, 28, 28] or [B, 784] -> [B, 784]
        return self.linear_2(self.act(self.linear_1(x)))


def lenet5() -> nn.Module:
    """LeNet-5 (LeCun et al. 1998) as it is trained today: ReLU and max pooling, the first
    convolution padded so 28x28 inputs keep its 32x32 geometry. 62k parameters, ~0.42 MFLOP
    multiply-adds an image (the MLP: 0.20)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


class Images(nn.Module):
    """Feeds a network images [B, 1, 28, 28], whether the data path gives rows of 784 (the
    device-resident tensors) or images (the DataLoader)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.size(0), 1, 28, 28))


def _user_function(spec: str):
    """The function `package.module:function` names, imported from the working directory (the
    project root) as `python -m` would."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr or ":" in attr:
        raise ConfigError(f"train.network: unknown network {spec!r}; choose one of "
                          f"{', '.join(NETWORKS)}, or name your own as package.module:function")
    added = os.getcwd() not in sys.path
    if added:  # for this import only
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"train.network: cannot import {module_name!r} ({e})") from None
    except Exception as e:  # noqa: BLE001 - whatever the user's module raises is the user's
        raise ConfigError(f"train.network: importing {module_name!r} raised "
                          f"{_where(e)}") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    if not callable(getattr(module, attr, None)):
        raise ConfigError(f"train.network: {module_name!r} has no function {attr!r}")
    return getattr(module, attr)


def _where(e: Exception) -> str:
    """The exception and the user's file:line it came from ("ZeroDivisionError: division by zero
    at mynets.py:3"): the innermost frame in the working directory, or the innermost of all."""
    if isinstance(e, SyntaxError) and e.filename:
        frames = [(e.filename, e.lineno)]
    else:
        frames = [(f.filename, f.lineno) for f in traceback.extract_tb(e.__traceback__)]
    cwd = os.getcwd() + os.sep
    mine = [f for f in frames if f[0].startswith(cwd)] or frames
    text = str(e).splitlines()[0] if str(e) else ""
    where = f" at {os.path.relpath(mine[-1][0])}:{mine[-1][1]}" if mine else ""
    return f"{type(e).__name__}{': ' + text if text else ''}{where}"


def _checked(spec: str, net) -> nn.Module:
    """A user's network must be an nn.Module that maps 28x28x1 images to 10 class scores."""
    if not isinstance(net, nn.Module):
        raise ConfigError(f"train.network: {spec} returned a value of type {type(net).__name__}, "
                          "not a torch.nn.Module")
    try:
        with torch.no_grad():
            shape = tuple(net.eval()(torch.zeros(2, 1, 28, 28)).shape)
    except Exception as e:  # noqa: BLE001 - any failure of a user's forward is the user's
        raise ConfigError(f"train.network: {spec} fails on a batch of 28x28x1 images "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") \
            from None
    if shape != (2, 10):
        raise ConfigError(f"train.network: {spec} gives outputs of shape {list(shape[1:])} for "
                          "each image, not 10 class scores")
    return net.train()


def build(cfg) -> nn.Module:
    """The network `cfg.network` names (a TrainConfig), freshly initialised from torch's global
    generator (seed it first), on the CPU."""
    if cfg.network == "mlp":
        return MLP(cfg.width, cfg.activation)
    if cfg.network == "cnn":
        return Images(lenet5())
    make = _user_function(cfg.network)
    try:
        net = make()
    except Exception as e:  # noqa: BLE001 - the user's function
        raise ConfigError(f"train.network: {cfg.network}() raised {_where(e)}") from None
    return Images(_checked(cfg.network, net))


def check(cfg) -> None:
    """Bad names, a missing module, a function that does not give a 10-class nn.Module: one
    line (ConfigError) before any run starts."""
    if cfg.network not in NETWORKS:
        build(cfg)


def network_name(cfg) -> str:
    """The network's one name: in the steps table, in MLflow, and in predict's check."""
    if cfg.network == "mlp":
        return f"Linear(784,{cfg.width})-{cfg.activation}-Linear({cfg.width},10)"
    return CNN_NAME if cfg.network == "cnn" else cfg.network


def network_slug(cfg) -> str:
    """The network as a file name: mlp, cnn, or the user's package.module-function."""
    return cfg.network.replace(":", "-")


def make_optimizer(name: str, params, lr: float, momentum: float) -> torch.optim.Optimizer:
    """torch's optimizer for train.optimizer (config.OPTIMIZERS, which config checks)."""
    return {"sgd": lambda: torch.optim.SGD(params, lr=lr),
            "momentum": lambda: torch.optim.SGD(params, lr=lr, momentum=momentum),
            "nesterov": lambda: torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True),
            "adam": lambda: torch.optim.Adam(params, lr=lr)}[name]()
