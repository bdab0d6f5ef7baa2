"""The engine's kernels: the question's MLP trained by hand, step for step as autograd and
torch.optim train it. `make_forward_backward` and `make_update` call autograd's own ATen kernels
into preallocated buffers (bitwise eager's numbers); `compiled_train_step` is the same step written
for Inductor (allclose). Reads and writes nothing; `train/step.py` wraps these into steps.
"""
from __future__ import annotations

import torch
from torch import nn

from sweetspot.train.networks import MLP

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


KERNELS = {  # an activation layer's type: its in-place kernel and its backward
    nn.Sigmoid: (torch.Tensor.sigmoid_, _sigmoid_backward),
    nn.Tanh: (torch.Tensor.tanh_, _tanh_backward),
    nn.ReLU: (torch.Tensor.relu_, _relu_backward),
}


def supports(model: nn.Module) -> bool:
    """The fast path covers the question's MLP in float32, all parameters on one CPU or CUDA
    device."""
    if not isinstance(model, MLP) or type(model.act) not in KERNELS:
        return False
    params = list(model.parameters())
    return len(params) == 4 and params[0].device.type in ("cpu", "cuda") and all(
        p.dtype == torch.float32 and p.is_contiguous() and p.device == params[0].device
        for p in params)


def parameters(model: MLP) -> list[torch.Tensor]:
    """W1, b1, W2, b2 as plain tensors sharing the model's storage: updated in place."""
    l1, l2 = model.linear_1, model.linear_2
    return [p.detach() for p in (l1.weight, l1.bias, l2.weight, l2.bias)]


def make_forward_backward(params: list[torch.Tensor], grads: list[torch.Tensor], act: type):
    """Forward and backward by hand into buffers kept per batch size, calling the ATen kernels
    autograd calls for nn.Linear, the activation and cross_entropy, so the numbers are the same."""
    w1, b1, w2, b2 = params
    gw1, gb1, gw2, gb2 = grads
    w1t, w2t = w1.t(), w2.t()  # views: addmm(b, x, w.t()) is what nn.Linear runs
    act_, act_backward = KERNELS[act]
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


# Buffers per parameter of the optimizers compiled_train_step covers. Adam stays exact: it divides
# by sqrt(v) + 1e-8, which turns a rounding apart at a saturated unit (a gradient of 0 against
# 1e-12) into a step of the full rate.
MOMENTUM_BUFFERS = {"sgd": 0, "momentum": 1, "nesterov": 1}


def compiled_train_step(config, x, y, params, buffers, lr, m):
    """One training step, written for Inductor: the autograd-free forward and backward of the
    question's MLP, then torch.optim's update arithmetic in place. Shapes are static, so `one`
    picks the batch-1 form at trace time."""
    act, optimizer, momentum = config
    act_, act_backward = KERNELS[act]  # the exact engine's kernels; Inductor fuses them
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
    act_backward(da, a, da)  # d loss / d pre-activation, in place, as the exact step does
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
