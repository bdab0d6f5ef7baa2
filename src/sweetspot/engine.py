"""The training engine: the question's MLP trained step for step as eager PyTorch trains it, faster.

Reads and writes nothing: `make_step(model, optimizer, lr, momentum)` returns `step(xb, yb) -> loss`
like `train.make_step`, bitwise the same training here (tests/test_engine.py); `make_compiled_step`
is the same step through torch.compile (allclose, not bitwise); `batches` are `tensor_batches`'
batches without a gather per step. `sweetspot bench`, a 2-core AMD EPYC (AVX-512, torch 2.14.1,
2 threads): batch 1 3.7 s/epoch exact, 2.5 s compiled (question's loop 14.8 s, eager 8.9 s);
batch 4096 0.25 s/epoch (question's loop 1.55 s), 86-89% of this machine's matmul FLOP/s.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from sweetspot.model import MLP

aten = torch.ops.aten

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, as make_optimizer uses


# Each activation: its forward in place, and the kernel autograd runs for its backward.
# All three derive the gradient from the activation's output, so no pre-activation is kept.
def _sigmoid_backward(grad, out, into):
    return aten.sigmoid_backward.grad_input(grad, out, grad_input=into)


def _tanh_backward(grad, out, into):
    return aten.tanh_backward.grad_input(grad, out, grad_input=into)


def _relu_backward(grad, out, into):  # autograd's relu saves its result and thresholds at 0
    return aten.threshold_backward.grad_input(grad, out, 0, grad_input=into)


ACTIVATIONS = {
    nn.Sigmoid: (torch.Tensor.sigmoid_, _sigmoid_backward),
    nn.Tanh: (torch.Tensor.tanh_, _tanh_backward),
    nn.ReLU: (torch.Tensor.relu_, _relu_backward),
}


def supports(model: nn.Module) -> bool:
    """The fast path covers the question's MLP in float32, all parameters on one CPU or CUDA
    device."""
    if not isinstance(model, MLP) or type(model.act) not in ACTIVATIONS:
        return False
    params = list(model.parameters())
    return len(params) == 4 and params[0].device.type in ("cpu", "cuda") and all(
        p.dtype == torch.float32 and p.is_contiguous() and p.device == params[0].device
        for p in params)


def make_step(model: nn.Module, optimizer: str = "sgd", lr: float = 0.1, momentum: float = 0.9,
              *, cuda_graphs: bool = True):
    """`step(xb, yb) -> loss`: the training `train.make_step(model, make_optimizer(...))` does,
    faster. The loss is the batch's mean cross-entropy, a fresh 0-dim device tensor (no host sync);
    `step.set_lr(lr)` changes the rate from the next step on (a warm-up), like a param group's lr.

    The model's own parameters are updated in place and their .grad is left alone; the optimizer's
    state lives in the closure, with torch.optim's semantics (momentum buffer = the first
    gradient, Adam's bias correction). Anything the fast path does not cover runs the eager step.
    """
    if not supports(model):
        return eager_step(model, optimizer, lr, momentum)
    l1, l2 = model.linear_1, model.linear_2
    params = [p.detach() for p in (l1.weight, l1.bias, l2.weight, l2.bias)]  # same storage
    grads = [torch.empty_like(p) for p in params]
    forward_backward = make_forward_backward(params, grads, type(model.act))
    hyper = {"lr": lr}  # read at every update, so set_lr takes effect at the next step
    update = make_update(optimizer, params, grads, hyper, momentum)

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = forward_backward(xb, yb)
        update()
        return loss

    run = step
    device = params[0].device
    if device.type == "cuda" and cuda_graphs and optimizer != "adam":  # Adam's scalars change
        run = graphed(step, device)

    def set_lr(value: float) -> None:
        if value != hyper["lr"]:
            hyper["lr"] = value
            if hasattr(run, "reset"):
                run.reset()  # the captured kernels hold the old rate

    run.set_lr = set_lr
    return run


def eager_step(model: nn.Module, optimizer: str, lr: float, momentum: float):
    """The reference: autograd and torch.optim (train.make_step), with the same `set_lr`."""
    from sweetspot import train  # here, not at the top: train may import this module
    from sweetspot.model import make_optimizer

    opt = make_optimizer(optimizer, model.parameters(), lr, momentum)
    step = train.make_step(model, opt)

    def set_lr(value: float) -> None:
        for group in opt.param_groups:
            group["lr"] = value

    step.set_lr = set_lr
    return step


def make_forward_backward(params: list[torch.Tensor], grads: list[torch.Tensor], act: type):
    """Forward and backward by hand into buffers kept per batch size, calling the ATen kernels
    autograd calls for nn.Linear, the activation and cross_entropy, so the numbers are the same."""
    w1, b1, w2, b2 = params
    gw1, gb1, gw2, gb2 = grads
    w1t, w2t = w1.t(), w2.t()  # views: addmm(b, x, w.t()) is what nn.Linear runs
    act_, act_backward = ACTIVATIONS[act]
    one = torch.ones((), device=w1.device)  # d loss / d loss, the seed autograd starts from
    width, classes = w1.shape[0], w2.shape[0]
    buffers = {}  # batch size -> its buffers: a full and a partial batch in an epoch

    def forward_backward(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(x)
        if x.dim() != 2:
            x = x.reshape(n, -1)  # [n, 1, 28, 28] -> [n, 784]
        if n not in buffers:
            a, da = w1.new_empty(n, width), w1.new_empty(n, width)
            dz = w1.new_empty(n, classes)
            buffers[n] = (a, da, da.t(), w1.new_empty(n, classes), w1.new_empty(n, classes), dz,
                          dz.t())  # the transposed views made once: each costs ~1 us a step
        a, da, da_t, logp, dlogp, dz, dz_t = buffers[n]
        torch.addmm(b1, x, w1t, out=a)  # [n, width], then the activation in place
        act_(a)
        torch.addmm(b2, a, w2t, out=dz)  # logits [n, classes], in dz's buffer until the backward
        torch._log_softmax(dz, 1, False, out=logp)
        loss, total = aten.nll_loss_forward.default(logp, y, None, 1, -100)  # 1: mean reduction
        aten.nll_loss_backward.grad_input(one, logp, y, None, 1, -100, total, grad_input=dlogp)
        torch._log_softmax_backward_data(dlogp, logp, 1, torch.float32, out=dz)
        torch.mm(dz_t, a, out=gw2)
        torch.sum(dz, 0, out=gb2)
        torch.mm(dz, w2, out=da)
        act_backward(da, a, da)  # d loss / d pre-activation, in place
        torch.mm(da_t, x, out=gw1)
        torch.sum(da, 0, out=gb1)
        return loss

    return forward_backward


def make_update(name: str, params: list[torch.Tensor], grads: list[torch.Tensor], hyper: dict,
                momentum: float):
    """The optimizer step in place, torch.optim's single-tensor arithmetic op for op (what it runs
    on CPU), one foreach call per op instead of one Python call per parameter; hyper["lr"] is
    read at every step."""
    if name == "sgd":
        return lambda: torch._foreach_add_(params, grads, alpha=-hyper["lr"])
    if name in ("momentum", "nesterov"):
        bufs = []

        def update_momentum():
            if not bufs:  # torch.optim: the first step's buffer is the gradient itself
                bufs.extend(g.clone() for g in grads)
            else:
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, grads, alpha=1)  # 1 - dampening, dampening 0
            if name == "nesterov":  # grad + momentum * buf, in the gradient's own buffer
                torch._foreach_add_(grads, bufs, alpha=momentum)
                torch._foreach_add_(params, grads, alpha=-hyper["lr"])
            else:
                torch._foreach_add_(params, bufs, alpha=-hyper["lr"])

        return update_momentum
    if name == "adam":
        (beta1, beta2), eps = ADAM_BETAS, ADAM_EPS
        exp_avg = [torch.zeros_like(p) for p in params]
        exp_avg_sq = [torch.zeros_like(p) for p in params]
        denom = [torch.empty_like(p) for p in params]
        count = [0]  # steps taken, a float in torch.optim's state

        def update_adam():
            count[0] += 1
            torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sq, beta2)
            torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - beta2)
            step = float(count[0])
            bias_correction1 = 1 - beta1**step
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            for v, d in zip(exp_avg_sq, denom, strict=True):
                torch.sqrt(v, out=d)
            torch._foreach_div_(denom, bias_correction2_sqrt)
            torch._foreach_add_(denom, eps)  # eps outside the square root, after correction
            torch._foreach_addcdiv_(params, exp_avg, denom, value=-(hyper["lr"] / bias_correction1))

        return update_adam
    raise ValueError(f"unknown optimizer {name!r}")


def make_compiled_step(model: nn.Module, optimizer: str = "sgd", lr: float = 0.1,
                       momentum: float = 0.9):
    """`make_step`'s training as one torch.compile'd graph per batch size: forward, backward and
    update fused by Inductor. Close to eager (allclose over hundreds of steps,
    tests/test_engine.py), not bitwise: fused kernels round differently. At batch 1 the weight
    gradients are outer products, fused into the update: W1 is read once and written once a step.

    `step.prepare(batch_sizes) -> seconds` compiles those shapes on scratch copies, so that no
    compilation lands on a training clock (a shape not prepared compiles on first use). The rate
    and momentum's first step are tensors: changing them is data, not a recompilation. Adam, and
    anything `supports` rejects, runs `make_step` (whose `prepare` does nothing).
    """
    if not supports(model) or optimizer not in MOMENTUM_BUFFERS:
        step = make_step(model, optimizer, lr, momentum)
        step.prepare = lambda batch_sizes: 0.0
        return step
    import torch._dynamo

    # One code object serves every compiled step: keep a graph per (config, batch size) cached.
    dynamo = torch._dynamo.config
    limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"  # < 2.7
    setattr(dynamo, limit, max(getattr(dynamo, limit), 64))
    l1, l2 = model.linear_1, model.linear_2
    params = [p.detach() for p in (l1.weight, l1.bias, l2.weight, l2.bias)]  # same storage
    device = params[0].device
    buffers = [torch.zeros_like(p) for p in params for _ in range(MOMENTUM_BUFFERS[optimizer])]
    hyper = {"lr": torch.tensor(lr, device=device),
             "m": torch.zeros((), device=device)}  # 0 on momentum's first step: buffer = gradient
    graph = torch.compile(_compiled_train_step, fullgraph=True, dynamic=False)
    config = (type(model.act), optimizer, momentum)

    def run(xb, yb, params, buffers, hyper):
        loss = graph(config, xb, yb, params, buffers, hyper["lr"], hyper["m"])
        hyper["m"].fill_(momentum)
        return loss

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return run(xb, yb, params, buffers, hyper)

    def prepare(batch_sizes) -> float:
        t0 = time.perf_counter()
        for n in sorted(set(batch_sizes) - {0}):
            x = torch.zeros(n, params[0].shape[1], device=device)
            y = torch.zeros(n, dtype=torch.long, device=device)
            run(x, y, [p.clone() for p in params], [b.clone() for b in buffers],
                {k: v.clone() for k, v in hyper.items()})
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    def set_lr(value: float) -> None:
        hyper["lr"].fill_(value)

    step.prepare, step.set_lr = prepare, set_lr
    return step


# Buffers per parameter. Adam is left to make_step: it divides by sqrt(v) + 1e-8, which turns a
# rounding apart at a saturated unit (a gradient of 0 against 1e-12) into a step of the full rate.
MOMENTUM_BUFFERS = {"sgd": 0, "momentum": 1, "nesterov": 1}


def _compiled_train_step(config, x, y, params, buffers, lr, m):
    """One training step, written for Inductor: the autograd-free forward and backward of the
    question's MLP, then torch.optim's update arithmetic in place. Shapes are static, so `one`
    picks the batch-1 form at trace time."""
    act, optimizer, momentum = config
    act_, act_backward = ACTIVATIONS[act]  # the exact engine's kernels; Inductor fuses them
    w1, b1, w2, b2 = params
    n = x.shape[0]
    x = x.reshape(n, -1)
    one = n == 1  # a matrix-vector product and outer products: fused with what surrounds them
    a = act_((x * w1).sum(1)[None] + b1 if one else torch.addmm(b1, x, w1.t()))
    logp = torch.log_softmax(torch.addmm(b2, a, w2.t()), 1)
    loss = torch.nn.functional.nll_loss(logp, y)
    dlogp = torch.nn.functional.one_hot(y, w2.shape[0]).to(logp.dtype) / -n  # nll's backward
    dz = dlogp - logp.exp() * dlogp.sum(1, keepdim=True)  # log_softmax's, as autograd has it
    da = dz @ w2
    act_backward(da, a, da)  # d loss / d pre-activation, in place, as make_step does
    grads = [da.t() * x if one else da.t() @ x, da.sum(0),
             dz.t() * a if one else dz.t() @ a, dz.sum(0)]
    if optimizer == "sgd":
        for p, g in zip(params, grads, strict=True):
            p.sub_(lr * g)
    else:  # momentum, nesterov
        for p, g, buf in zip(params, grads, buffers, strict=True):
            buf.mul_(m).add_(g)  # m is 0 on the first step: the buffer is the gradient
            p.sub_(lr * (g + momentum * buf if optimizer == "nesterov" else buf))
    return loss


def graphed(step, device: torch.device, warm: int = 3, max_graphs: int = 4):
    """CUDA graphs for `step`: a batch size seen `warm` times (eager, on a side stream, as capture
    wants) is captured once and replayed from then on; static shapes, so the partial last batch
    gets its own graph after `warm` epochs. The optimizer's Python-side branches (momentum's first
    step) are settled by then. Unverified in this repository's sessions: no GPU was available."""
    side = torch.cuda.Stream(device)
    seen, graphs = {}, {}

    def run(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        n = len(xb)
        if n in graphs:
            graph, static_x, static_y, static_loss = graphs[n]
            static_x.copy_(xb)
            static_y.copy_(yb)
            graph.replay()
            return static_loss.clone()  # the next replay overwrites static_loss
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > warm and len(graphs) < max_graphs:
            static_x, static_y = xb.clone(), yb.clone()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):  # records the kernels, runs none of them
                static_loss = step(static_x, static_y)
            graphs[n] = (graph, static_x, static_y, static_loss)
            graph.replay()  # this call's step
            return static_loss.clone()
        current = torch.cuda.current_stream(device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            loss = step(xb, yb)
        current.wait_stream(side)
        return loss

    def reset() -> None:  # forget the graphs (a new learning rate): warm up and capture again
        graphs.clear()
        seen.clear()

    run.reset = reset
    return run


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator,
            buffers: dict | None = None):
    """One epoch, the batches `train.tensor_batches` yields (same permutation, same values), as
    views of one shuffled copy: one gather per epoch instead of two per step. The views are
    overwritten by the next epoch when `buffers` (a dict kept across epochs) is reused."""
    n = len(x)
    order = torch.randperm(n, generator=generator).to(x.device)
    buffers = {} if buffers is None else buffers
    if "x" not in buffers:
        buffers["x"], buffers["y"] = torch.empty_like(x), torch.empty_like(y)
    xs = torch.index_select(x, 0, order, out=buffers["x"])
    ys = torch.index_select(y, 0, order, out=buffers["y"])
    for i in range(0, n, batch_size):
        yield xs[i : i + batch_size], ys[i : i + batch_size]
