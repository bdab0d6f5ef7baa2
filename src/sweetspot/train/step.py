"""The step as a value: `step(xb, yb) -> loss`, `step.set_lr(lr)`, `step.prepare(batch_sizes)`.

Every way of taking one training step has this one interface: the eager reference (autograd and
torch.optim), the exact engine (the same numbers, faster), the compiled engine (one torch.compile
graph per batch size) and, on CUDA, the exact engine replayed from CUDA graphs. The loss is the
batch's mean cross-entropy as a 0-dim device tensor (no host sync). Reads and writes nothing.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from sweetspot.config import TrainConfig
from sweetspot.train import engine
from sweetspot.train.networks import make_optimizer

KINDS = ("eager", "exact", "compiled")


class Step:
    """One training step on the model it was made for, updating its parameters in place."""

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def set_lr(self, lr: float) -> None:
        """The rate from the next step on (a warm-up), like a param group's lr."""
        raise NotImplementedError

    def prepare(self, batch_sizes) -> float:
        """Compile these batch sizes now, off any clock; returns the seconds it took."""
        return 0.0


class EagerStep(Step):
    """The reference: autograd and torch.optim, as the question's loop steps."""

    def __init__(self, model: nn.Module, optimizer: str, lr: float, momentum: float):
        self.model = model
        self.optimizer = make_optimizer(optimizer, model.parameters(), lr, momentum)
        self.loss_fn = nn.CrossEntropyLoss()

    def __call__(self, xb, yb):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(xb), yb)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def set_lr(self, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr


class ExactStep(Step):
    """The engine: the eager step's numbers bitwise (tests/train/test_step.py), from autograd's
    own kernels into buffers kept per batch size, and torch.optim's update arithmetic in foreach
    calls. The model's .grad is left alone; the optimizer's state lives here."""

    def __init__(self, model: nn.Module, optimizer: str, lr: float, momentum: float):
        params = engine.parameters(model)
        grads = [torch.empty_like(p) for p in params]
        self.hyper = {"lr": lr}  # read at every update, so set_lr takes effect at the next step
        self.forward_backward = engine.make_forward_backward(params, grads, type(model.act))
        self.update = engine.make_update(optimizer, params, grads, self.hyper, momentum)

    def __call__(self, xb, yb):
        loss = self.forward_backward(xb, yb)
        self.update()
        return loss

    def set_lr(self, lr):
        self.hyper["lr"] = lr


class CompiledStep(Step):
    """The exact engine's training as one torch.compile'd graph per batch size: forward, backward
    and update fused by Inductor; at batch 1 the weight gradients are outer products fused into the
    update. Allclose to eager, not bitwise. The rate and momentum's first step are tensors, so a
    new rate is data, not a recompilation."""

    def __init__(self, model: nn.Module, optimizer: str, lr: float, momentum: float):
        self.params = engine.parameters(model)
        self.device = self.params[0].device
        self.buffers = [torch.zeros_like(p) for p in self.params
                        for _ in range(engine.MOMENTUM_BUFFERS[optimizer])]
        self.hyper = {"lr": torch.tensor(lr, device=self.device),
                      "m": torch.zeros((), device=self.device)}  # 0 on momentum's first step
        self.graph = torch.compile(engine.compiled_train_step, fullgraph=True, dynamic=False)
        self.config = (type(model.act), optimizer, momentum)
        self.compiled: set[int] = set()  # the batch sizes this step has compiled

    def _run(self, xb, yb, params, buffers, hyper):
        if len(xb) in self.compiled:
            loss = self.graph(self.config, xb, yb, params, buffers, hyper["lr"], hyper["m"])
        else:  # a new shape compiles under a limit raised for this call only
            loss = self._compile(xb, yb, params, buffers, hyper)
            self.compiled.add(len(xb))
        hyper["m"].fill_(self.config[2])  # from the second step on, the buffer decays
        return loss

    def _compile(self, xb, yb, params, buffers, hyper):
        """One code object serves every compiled step, so dynamo must keep a graph per (config,
        batch size): up to 64 while this shape compiles; its own limit is left as found."""
        import torch._dynamo

        dynamo = torch._dynamo.config
        limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
        with dynamo.patch(limit, max(getattr(dynamo, limit), 64)):  # cache_size_limit before 2.7
            return self.graph(self.config, xb, yb, params, buffers, hyper["lr"], hyper["m"])

    def __call__(self, xb, yb):
        return self._run(xb, yb, self.params, self.buffers, self.hyper)

    def set_lr(self, lr):
        self.hyper["lr"].fill_(lr)

    def prepare(self, batch_sizes) -> float:
        """Compile each shape on scratch copies, so the model and its state stay untouched."""
        t0 = time.perf_counter()
        for n in sorted(set(batch_sizes) - {0}):
            x = torch.zeros(n, self.params[0].shape[1], device=self.device)
            y = torch.zeros(n, dtype=torch.long, device=self.device)
            self._run(x, y, [p.clone() for p in self.params], [b.clone() for b in self.buffers],
                      {k: v.clone() for k, v in self.hyper.items()})
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0


class GraphedStep(Step):
    """CUDA graphs over another step: a batch size seen `warm` times (eager, on a side stream, as
    capture wants) is captured once and replayed from then on; static shapes, so the partial last
    batch gets its own graph. The optimizer's Python-side branches (momentum's first step) are
    settled by then. A new rate drops the graphs: the captured kernels hold the old one."""

    def __init__(self, inner: Step, device: torch.device, lr: float, warm: int = 3,
                 max_graphs: int = 4):
        self.inner, self.device, self.lr = inner, device, lr
        self.warm, self.max_graphs = warm, max_graphs
        self.side = torch.cuda.Stream(device)
        self.seen, self.graphs = {}, {}

    def __call__(self, xb, yb):
        n = len(xb)
        if n in self.graphs:
            graph, static_x, static_y, static_loss = self.graphs[n]
            static_x.copy_(xb)
            static_y.copy_(yb)
            graph.replay()
            return static_loss.clone()  # the next replay overwrites static_loss
        self.seen[n] = self.seen.get(n, 0) + 1
        if self.seen[n] > self.warm and len(self.graphs) < self.max_graphs:
            static_x, static_y = xb.clone(), yb.clone()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):  # records the kernels, runs none of them
                static_loss = self.inner(static_x, static_y)
            self.graphs[n] = (graph, static_x, static_y, static_loss)
            graph.replay()  # this call's step
            return static_loss.clone()
        current = torch.cuda.current_stream(self.device)
        self.side.wait_stream(current)
        with torch.cuda.stream(self.side):
            loss = self.inner(xb, yb)
        current.wait_stream(self.side)
        return loss

    def set_lr(self, lr):
        if lr != self.lr:
            self.lr = lr
            self.inner.set_lr(lr)
            self.graphs.clear()  # warm up and capture again
            self.seen.clear()


def make_step(kind: str, model: nn.Module, optimizer: str, lr: float, momentum: float, *,
              cuda_graphs: bool = True) -> Step:
    """A step of `kind` (KINDS) for `model`. What the engine does not cover (another network, a
    dtype, a device) runs the eager step; the compiled kind leaves Adam to the exact engine (it
    divides by sqrt(v) + 1e-8, where a rounding apart at a saturated unit becomes a full step);
    on CUDA the exact engine is replayed from CUDA graphs (not Adam: its scalars change)."""
    if kind not in KINDS:
        raise ValueError(f"unknown step kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "eager" or not engine.supports(model):
        return EagerStep(model, optimizer, lr, momentum)
    if kind == "compiled" and optimizer in engine.MOMENTUM_BUFFERS:
        return CompiledStep(model, optimizer, lr, momentum)
    step = ExactStep(model, optimizer, lr, momentum)
    device = engine.parameters(model)[0].device
    if device.type == "cuda" and cuda_graphs and optimizer != "adam":
        return GraphedStep(step, device, lr)
    return step


def kind_for(cfg: TrainConfig) -> str:
    """The question's own pipeline keeps the question's eager step (its loop, as it ran); else the
    engine, compiled with train.compile."""
    if cfg.loader == "torchvision":
        return "eager"
    return "compiled" if cfg.compile else "exact"


def step_for(cfg: TrainConfig, model: nn.Module) -> Step:
    return make_step(kind_for(cfg), model, cfg.optimizer, cfg.lr, cfg.momentum)
