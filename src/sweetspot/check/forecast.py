"""A network's sweet spot before any sweep, from a few minutes of measurement: `sweetspot forecast`.

Reads params.yaml (the network, dataset, stack and sweep grid to forecast) and data/<dataset>/raw;
measures seconds per step at every batch size the sweep may train (steptime's measurement) and
fits t(B) = t0 + c B; trains one short tracked run (train.batch_size and train.lr, `--epochs`)
that estimates the gradient noise scale B_simple at its first evaluation ("early") and over the
run ("averaged"); puts each through the cost model, B* = sqrt(B_simple t0 / c), and names the
batch size of the sweep nearest B* (in log scale). Writes reports/forecast/<dataset>-<network>.json
with the time it was made, so it stands, committed, before the sweep runs; the report sets it
beside what the sweep found. Run: `sweetspot forecast`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import datetime, timezone

from sweetspot import paths
from sweetspot.answer import costmodel, procedure
from sweetspot.config import Params
from sweetspot.data.load import load_data, resolve_device
from sweetspot.measure import machine, steptime
from sweetspot.track import tracking
from sweetspot.train.networks import network_name, network_slug

HEADLINE = "early"  # nearer the MLP sweep's fitted B_noise than the averaged (docs/method.md)


def relative_times(seconds: dict[int, float], b_noise: float) -> dict[int, float]:
    """T(B) / min T the cost model gives from measured seconds per step and B_noise: S(B) t(B)
    with S_min cancelled, so no steps are needed."""
    times = {b: (1 + b_noise / b) * s for b, s in seconds.items()}
    best = min(times.values())
    return {b: t / best for b, t in times.items()}


def cost_model_forecast(seconds: dict[int, float], noise: dict[str, float | None]) -> dict:
    """The cost model's answer from seconds per step (by batch size) and B_simple estimates."""
    t0, c = costmodel.fit_step_time(list(seconds), list(seconds.values()))
    out = {"t0": t0, "c": c, "headline": HEADLINE, "per_noise": {}}
    for name, b_noise in noise.items():
        if b_noise is None or not math.isfinite(b_noise) or b_noise <= 0:
            continue
        b_star = costmodel.optimal_batch(b_noise, t0, c)
        spot = costmodel.nearest(seconds, b_star) if math.isfinite(b_star) else max(seconds)
        out["per_noise"][name] = {"b_simple": b_noise, "b_star": b_star, "spot": spot,
                                  "relative_time": relative_times(seconds, b_noise)}
    return out


def short_run(params: Params, epochs: int) -> dict:
    """One tracked training run of `epochs`, estimating B_simple at every evaluation."""
    from sweetspot.train import run

    cfg = dataclasses.replace(params.train, max_epochs=epochs, stop_at_target=False,
                              noise_scale=True, noise_every=1, max_seconds=0)
    result = run.tracked(dataclasses.replace(params, train=cfg))
    return {k: result[k] for k in ("run_id", "batch_size", "lr", "epochs", "b_simple_first",
                                   "b_simple_mean", "final_test_acc")}


def main(params: Params, epochs: int) -> int:
    cfg, started = params.train, time.time()
    data = load_data(params.data.dataset, resolve_device(cfg.device), cfg.train_examples)
    doc = steptime.measure_doc(params, data, procedure.candidate_batches(params))
    seconds = {int(b): v["seconds"] for b, v in doc["per_batch"].items()}
    trained = short_run(params, epochs)
    found = cost_model_forecast(seconds, {"early": trained["b_simple_first"],
                                          "averaged": trained["b_simple_mean"]})
    tags = {**tracking.provenance(str(data.device)), "kind": "forecast"}
    result = {"dataset": params.data.dataset, "network": network_name(cfg),
              "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "git_commit": tags["git_commit"],
              "stack": doc["stack_name"], "load": doc["load"], "seconds_per_step": seconds,
              "short_run": trained, **found}
    with tracking.open_run(cfg.experiment, f"forecast {result['network']}", tags,
                           started) as active:
        steptime.log(active, doc)
        active.log_metrics({"t0": found["t0"], "c": found["c"],
                            **{f"b_star/{k}": v["b_star"] for k, v in found["per_noise"].items()}})
        active.log_dict(result, "forecast.json")
        result["run_id"] = active.run_id
    out = paths.problem_file(paths.FORECAST, params.data.dataset, network_slug(cfg))
    paths.write_json(out, result)
    print(text(result))
    print(f"wrote {out}; mlflow run {result['run_id']}; {machine.load_text(doc['load'])}")
    return 0


def text(result: dict) -> str:
    lines = [f"forecast for {result['network']} on {result['dataset']} ({result['made_at']}): "
             f"t(B) = {result['t0'] * 1e6:.0f} µs + {result['c'] * 1e6:.2f} µs x B"]
    for name, v in result["per_noise"].items():
        mark = " (the headline)" if name == result["headline"] else ""
        lines.append(f"  B_simple {name} {v['b_simple']:.0f}: B* = {v['b_star']:.0f}, the sweep's "
                     f"nearest batch size {v['spot']}{mark}")
    return "\n".join(lines)
