"""The step's arithmetic and the machine's: what one step counts (torch's FlopCounterMode, off the
clock) and the rate of a plain matmul, the arithmetic floor bench and the memory stage compare
the step with."""

from __future__ import annotations

from collections.abc import Callable

import torch

from sweetspot.config import TrainConfig
from sweetspot.train import networks
from sweetspot.train.loop import clock


def counted(cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor) -> dict:
    """What one step of the network does, counted off the clock on a batch (on the CPU): its FLOPs
    (forward and backward), its parameters' bytes, and the bytes of every layer's output per
    example."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(cfg.seed)
    net = networks.build(cfg)
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel()))
             for m in net.modules() if not list(m.children())]
    with FlopCounterMode(display=False) as flops:
        torch.nn.functional.cross_entropy(net(x), y).backward()
    for hook in hooks:
        hook.remove()
    return {"flops": flops.get_total_flops(),
            "weight_bytes": 4 * sum(p.numel() for p in net.parameters()),
            "input_bytes": 4 * x[0].numel(), "activation_bytes": 4 * sum(outputs) // len(x)}


def matmul_timer(n: int, device: torch.device) -> Callable[[], float]:
    """Seconds per FLOP of a plain n x n x n float32 torch.mm on `device`, a reading a call (after
    one untimed warm-up)."""
    a, b = torch.rand(n, n, device=device), torch.rand(n, n, device=device)
    out = torch.empty(n, n, device=device)
    torch.mm(a, b, out=out)

    def timer() -> float:
        t0 = clock(device)
        torch.mm(a, b, out=out)
        return (clock(device) - t0) / (2 * n**3)
    return timer
