"""Speed: seconds per epoch of the question's loop, the eager loop and the engine, by batch size.

Reads data/<dataset>/raw and params.yaml's `bench` (`train` for network, optimizer, lr); writes
reports/bench.json, its headline reports/metrics/bench.json (DVC metrics), reports/bench.png and
one MLflow run. Run: `sweetspot bench` (`--device cuda` on a GPU). Seconds/epoch = seconds per
example x 60000, the fastest of `repeats` timed stretches of >= min_examples steady-state examples
(fastest.machine_seconds, as steptime: load cannot move it while one stretch is quiet).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from sweetspot import config, paths
from sweetspot.answer import fastest
from sweetspot.config import Params
from sweetspot.data.load import Data, epoch_batches, load_data, resolve_device, tensor_batches
from sweetspot.fmt import fmt, table
from sweetspot.measure import flops, machine
from sweetspot.track import tracking
from sweetspot.train.loop import clock, train_one, use_threads
from sweetspot.train.networks import MLP, network_name
from sweetspot.train.step import make_step

matplotlib.use("Agg")  # files only, no display (before any figure exists)

LOOPS = {  # name -> what its timed loop runs
    "question": "the question's loop: torchvision MNIST, ToTensor, DataLoader(shuffle), eager step",
    "eager": "tensor-resident eager loop: load.tensor_batches + the eager step",
    "engine": "the engine: load.shuffled_batches + the exact step (bitwise eager's training)",
    "compiled": "the engine compiled: load.shuffled_batches + the compiled step (allclose)",
}
ENGINES = ("engine", "compiled")  # the loops compared with the question's and with matmul
FLOPS_FROM = 4096  # batch sizes from here on also report the fraction of matmul FLOP/s


def endless(epoch):
    """Epoch after epoch of `epoch()`'s batches, so a timed stretch may cross an epoch's end (its
    reshuffle is part of the steady state)."""
    while True:
        yield from epoch()


def loop(name: str, params: Params, data: Data, batch_size: int):
    """A fresh model (train.seed) with `name`'s step, its endless batches, and the seconds spent
    compiling the step (its full and last batch's shapes, before any timing)."""
    cfg = params.train
    torch.manual_seed(cfg.seed)
    model = MLP(cfg.width, cfg.activation).to(data.device)
    generator = torch.Generator().manual_seed(cfg.seed)
    kind = {"engine": "exact", "compiled": "compiled"}.get(name, "eager")
    step = make_step(kind, model, cfg.optimizer, cfg.lr, cfg.momentum)
    compile_s = step.prepare({batch_size, len(data.x_train) % batch_size})
    if name == "eager":
        epoch = lambda: tensor_batches(data.x_train, data.y_train, batch_size, generator)  # noqa: E731
    else:  # the engines: as training draws; the question's loop: its DataLoader
        epoch = epoch_batches("torchvision" if name == "question" else "tensor", data, batch_size,
                              generator)
    return step, endless(epoch), compile_s


def seconds_per_example(step, stream, batch_size: int, params: Params,
                        device: torch.device) -> list[float]:
    """Warm up (train.warmup_steps, at most an epoch), then time bench.repeats stretches of at
    least bench.min_examples examples (>= 1 step); the device synchronised at both ends."""
    bench = params.bench
    warm = min(params.train.warmup_steps, math.ceil(config.TRAIN_SIZE / batch_size))
    for _ in range(warm):
        step(*next(stream))
    out = []
    for _ in range(bench.repeats):
        seen = 0
        t0 = clock(device)
        while seen < bench.min_examples:
            xb, yb = next(stream)
            step(xb, yb)
            seen += len(yb)
        out.append((clock(device) - t0) / seen)
    return out


def measure(params: Params, data: Data, progress=None) -> list[dict]:
    """One row per (loop, batch size, repeat): seconds per epoch (and the loop's compile seconds).
    Loops alternate within a batch size, so slow drifts of the machine hit all of them alike."""
    device = data.device
    rows = []
    for batch_size in params.bench.batch_sizes:
        for name in LOOPS:
            step, stream, compile_s = loop(name, params, data, batch_size)
            times = seconds_per_example(step, stream, batch_size, params, device)
            rows += [{"loop": name, "batch_size": batch_size, "repeat": i,
                      "seconds_per_epoch": t * config.TRAIN_SIZE, "compile_seconds": compile_s}
                     for i, t in enumerate(times)]
            if progress:
                progress(name, batch_size,
                         float(fastest.machine_seconds(times)) * config.TRAIN_SIZE)
    return rows


def eval_off_clock(params: Params, data: Data, repeats: int, n: int = 6000) -> dict:
    """How far evaluation stays off the training clock: one epoch of train.batch_size on the
    first n examples, evaluated once at its end or after every batch (interleaved, `repeats`
    each). clock_ratio = fastest clock with evaluation after every batch / fastest without: 1
    when evaluation is off the clock; eval_over_train = evaluation seconds per clock second."""
    subset = dataclasses.replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n])
    base = dataclasses.replace(params.train, train_examples=n, max_epochs=1, target_accuracy=1.0,
                               noise_scale=False, max_seconds=0, lr_warmup_steps=0,
                               fine_within=0.0)
    runs = {"rare": [], "often": []}
    for _ in range(repeats):
        for name, every in (("rare", n), ("often", base.batch_size)):
            runs[name].append(train_one(dataclasses.replace(base, eval_every_examples=every),
                                        subset))
    best = lambda name, key: float(  # noqa: E731
        fastest.machine_seconds([r[key] for r in runs[name]]))
    rare, often = best("rare", "train_time"), best("often", "train_time")
    evaluating = best("often", "eval_time")
    return {"examples": n, "batch_size": base.batch_size, "repeats": repeats,
            "evaluations": len(runs["often"][0]["curve"]), "train_time_rare": rare,
            "train_time_often": often, "eval_time_often": evaluating,
            "clock_ratio": often / rare, "eval_over_train": evaluating / rare}


def summarise(rows: list[dict], per_example: float, matmul: float | None) -> dict:
    """Per batch size: the fastest seconds per epoch of each loop measured, each engine's speed-ups
    and compile seconds, and at batch >= FLOPS_FROM its achieved FLOP/s (`per_example` FLOPs an
    example) as a fraction of `matmul` (pure)."""
    out = {}
    for batch_size in sorted({r["batch_size"] for r in rows}):
        cell = {}
        for name in LOOPS:
            times = [r["seconds_per_epoch"] for r in rows
                     if r["batch_size"] == batch_size and r["loop"] == name]
            if times:
                cell[f"{name}_s_per_epoch"] = float(fastest.machine_seconds(times))
        for name in ENGINES:
            seconds = cell.get(f"{name}_s_per_epoch")
            if seconds is None:
                continue
            cell[f"question_over_{name}"] = cell["question_s_per_epoch"] / seconds
            cell[f"eager_over_{name}"] = cell["eager_s_per_epoch"] / seconds
            if name == "compiled":
                cell["compiled_compile_seconds"] = max(
                    r["compile_seconds"] for r in rows
                    if r["batch_size"] == batch_size and r["loop"] == name)
            if matmul and batch_size >= FLOPS_FROM:
                gflops = per_example * config.TRAIN_SIZE / seconds / 1e9
                cell[f"{name}_gflops"] = gflops
                cell[f"{name}_flops_fraction"] = gflops * 1e9 / matmul
        out[f"b{batch_size}"] = cell
    return out


def figure(rows: list[dict], title: str):
    """Seconds per epoch against batch size (log2 x, log y), one line per loop (the fastest
    repeat; band to the slowest)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.lineplot(pd.DataFrame(rows), x="batch_size", y="seconds_per_epoch", hue="loop",
                 hue_order=list(LOOPS), estimator="min", errorbar=("pi", 100), marker="o", ax=ax)
    ax.set_xscale("log", base=2)
    ax.set(yscale="log", xlabel="batch size", ylabel="seconds per epoch (60000 examples)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def summary_table(summary: dict) -> str:
    """A Markdown table: seconds per epoch of each loop, then per engine its speed-up over the
    question's loop and its fraction of matmul FLOP/s."""
    loops = [n for n in LOOPS if any(f"{n}_s_per_epoch" in c for c in summary.values())]
    engines = [n for n in ENGINES if n in loops]
    head = ([f"{n} s/epoch" for n in loops] + [f"question/{n}" for n in engines]
            + [f"{n} FLOP/s fraction" for n in engines])
    rows = [[key[1:], *(f"{c[f'{n}_s_per_epoch']:.3f}" for n in loops),
             *(f"{c[f'question_over_{n}']:.1f}x" for n in engines),
             *(fmt(c.get(f"{n}_flops_fraction"), ".0%", "-") for n in engines)]
            for key, c in summary.items()]
    return "\n".join(table(["batch", *head], "r" * (len(head) + 1), rows))


def _progress(total: int):
    """A tqdm bar in a terminal, one quiet line per measurement otherwise."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, desc="bench", unit="measurement")

        def tick(name, batch_size, s_per_epoch):
            bar.set_postfix_str(f"{name} b{batch_size}: {s_per_epoch:.3f} s/epoch")
            bar.update()
            if bar.n == total:
                bar.close()

        return tick

    def line(name, batch_size, s_per_epoch):
        print(f"bench: {name:8s} batch {batch_size:6d}: {s_per_epoch:9.3f} s/epoch",
              file=sys.stderr, flush=True)

    return line


def headline(result: dict) -> dict:
    """What `dvc metrics show` prints of it: question / engine by batch size, eval_off_clock's."""
    off = result["eval_off_clock"]
    return {**{f"question_over_engine_{k}": v["question_over_engine"] for k, v in result.items()
               if isinstance(v, dict) and "question_over_engine" in v},
            "eval_over_train": off["eval_over_train"], "clock_ratio": off["clock_ratio"]}


def main(params: Params) -> int:
    """Measure, write reports/bench.json and bench.png, and log both in one MLflow run."""
    # The engine's paths are the MLP's: bench times them whatever network train.network names.
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, network="mlp"))
    bench, cfg = params.bench, params.train
    device = resolve_device(bench.device)
    use_threads(cfg)  # the stack the cells run
    data = load_data(params.data.dataset, device)  # ConfigError if missing
    tags, before, started = tracking.provenance(str(device)), machine.usage(), time.time()
    rows = measure(params, data, _progress(len(LOOPS) * len(bench.batch_sizes)))
    load = machine.busy_share(before, machine.usage())  # how busy, while the loops were timed
    matmul = None
    if max(bench.batch_sizes) >= FLOPS_FROM:
        timer = flops.matmul_timer(bench.matmul_size, device)
        matmul = 1 / float(fastest.machine_seconds([timer() for _ in range(bench.repeats)]))
    # as torch counts a step: 2 per multiply-add of its matmuls; none for the input's gradient
    per_example = flops.counted(cfg, data.x_train[:1].cpu(), data.y_train[:1].cpu())["flops"]
    summary = summarise(rows, per_example, matmul)
    off_clock = eval_off_clock(params, data, bench.repeats)
    result = {
        "device": str(device), "gpu_name": tags.get("gpu_name", ""),
        "threads": torch.get_num_threads(), "torch_version": torch.__version__,
        "cpu_model": tags["cpu_model"], "repeats": bench.repeats,
        "min_examples": bench.min_examples, "warmup_steps": cfg.warmup_steps,
        "network": network_name(cfg), "optimizer": cfg.optimizer,
        "flops_per_example": per_example,
        **({"matmul_size": bench.matmul_size, "matmul_gflops": matmul / 1e9} if matmul else {}),
        **summary, "eval_off_clock": off_clock, "load": load}
    fig = figure(rows, f"{result['network']}, {cfg.optimizer}: {device}, {result['threads']} "
                       f"threads\nfastest of {bench.repeats} repeats, band to the slowest")
    paths.write_json(paths.BENCH_JSON, result)
    paths.write_json(paths.BENCH_METRICS, headline(result))
    fig.savefig(paths.BENCH_PNG, dpi=110)
    plt.close(fig)

    with tracking.open_run(cfg.experiment, "bench", {**tags, "kind": "bench"}, started) as active:
        active.log_params({**config.as_dict(bench), "width": cfg.width,
                           "activation": cfg.activation, "optimizer": cfg.optimizer,
                           "lr": cfg.lr, "momentum": cfg.momentum, "dataset": params.data.dataset})
        metrics = {f"{key}/{name}": value for key, cell in result.items()
                   if isinstance(cell, dict) for name, value in cell.items()}  # eval_off_clock too
        if matmul:
            metrics["matmul_gflops"] = matmul / 1e9
        active.log_metrics(metrics)
        rows_file = active.files / "bench_rows.json"
        rows_file.write_text(json.dumps(rows, indent=1))
        for path in (paths.BENCH_JSON, paths.BENCH_PNG, rows_file):
            active.log_file(path)
        run_id = active.run_id
    print(summary_table(summary))
    if matmul:
        print(f"matmul {bench.matmul_size}^3 on {device}, {result['threads']} threads: "
              f"{matmul / 1e9:.1f} billion FLOP per second")
    print(f"evaluation off the clock: the training clock read {off_clock['clock_ratio']:.2f}x with "
          f"{off_clock['evaluations']} evaluations against one, while evaluating took "
          f"{off_clock['eval_over_train']:.1f}x the training time\nwrote {paths.BENCH_JSON} and "
          f"{paths.BENCH_PNG}; mlflow run {run_id}", flush=True)
    return 0
