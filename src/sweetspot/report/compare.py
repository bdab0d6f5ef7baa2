"""Beyond one network: each swept (network, dataset)'s answer in one small summary, and the main
report's comparison of them. Pure: summaries in, a table, sentences and a figure out; report.py
writes this problem's summary to reports/compare/<dataset>-<network>.json and reads them all.

The cost model says where the sweet spot moves: B* = sqrt(B_noise t0 / c). Each problem's move is
read against the reference, the question's MLP on MNIST: did B* move the way the sweet spot did,
and by about as much?
"""

from __future__ import annotations

import math

import pandas as pd

from sweetspot.answer import costmodel
from sweetspot.fmt import fmt, sizes, table
from sweetspot.report.figures import CAPTIONS

REFERENCE = ("mlp", "MNIST")  # the question's network and dataset
SAME = 1.25  # a move by less than this factor either way is no move
CLOSE = 2.0  # a predicted move within this factor of the found one has "the size" right
NAMED = 0.80  # a spot is named alone when it wins this share of the resamples; else the tie is


def tie(spot: dict) -> list[int]:
    """The batch sizes the answer names: the spot alone where it wins NAMED of the resamples,
    else the fewest that together win that share (most wins first), e.g. [24, 32]."""
    rows = spot["per_batch"].query("share > 0").sort_values(
        ["share", "estimate", "batch_size"], ascending=[False, True, True])  # sweet_spot's order
    won = rows["share"].cumsum().to_numpy()
    return [int(b) for b in rows["batch_size"][:int((won < NAMED).sum()) + 1]]


def summary(params, network: str, spot: dict, cost: dict | None, noise: dict,
            forecast: dict | None, machine: str, race: dict | None = None) -> dict:
    """This problem's answer at the headline target: what the comparison needs, nothing else.
    `machine`: where its seconds per step were measured (machine.describe); `race`:
    race.summary's answer (the cells it added, their seconds, each batch size's seeds)."""
    rows = spot["per_batch"]
    hit = rows[rows["reached"]]
    best = hit["estimate"].min() if len(hit) else math.nan
    return {"network_key": params.train.network, "network": network,
            "dataset": params.data.dataset, "target": params.sweep.targets[0],
            "spot": spot.get("batch_size"), "estimate": spot.get("estimate"),
            "tie": tie(spot) if spot.get("batch_size") else [],
            "region": [r["batch_size"] for r in spot.get("region", [])],
            "tried": sorted(int(b) for b in rows["batch_size"]),
            **{k: cost[k] if cost else None for k in ("b_noise", "t0", "c", "b_star")},
            "b_simple_early": noise.get("early"), "b_simple_averaged": noise.get("averaged"),
            "sqrt_n": math.sqrt(params.train.n_train),
            "relative_time": {int(b): e / best for b, e in zip(hit["batch_size"], hit["estimate"],
                                                             strict=True)},
            "forecast": _forecast_brief(forecast), "machine": machine,
            "race": race and {"cells": race["cells"], "seconds": race["seconds"],
                              "seeds": {b: v["seeds"] for b, v in race["batch"].items()}}}


def _forecast_brief(forecast: dict | None) -> dict | None:
    if not forecast or forecast["headline"] not in forecast["per_noise"]:
        return None
    head = forecast["per_noise"][forecast["headline"]]
    return {"made_at": forecast["made_at"], "b_simple": head["b_simple"],
            "b_star": head["b_star"], "spot": head["spot"], "t0": forecast["t0"],
            "c": forecast["c"]}


def ordered(summaries: list[dict]) -> list[dict]:
    """The reference first, then by network and dataset."""
    return sorted(summaries, key=lambda s: ((s["network_key"], s["dataset"]) != REFERENCE,
                                            s["network_key"], s["dataset"]))


def label(s: dict) -> str:
    return f"{s['network_key']} on {s['dataset']}"


def either(batch_sizes: list[int]) -> str:
    """The batch sizes an answer names, as it names them: "24", "24 or 32"; "-" for none."""
    return " or ".join(map(str, batch_sizes)) or "-"


def named(s: dict) -> str:
    """The spot, or the tie the data leave ("24 or 32"), as the summary has it."""
    return either(s.get("tie") or ([] if s["spot"] is None else [int(s["spot"])]))


def region(s: dict) -> str:
    """The sweet region as the set it is (fmt.sizes), among the batch sizes the summary tried."""
    return sizes(s["region"], s.get("tried") or s["relative_time"]) if s["region"] else "-"


def raced(s: dict) -> str:
    r = s.get("race")
    return f"{r['cells']} ({r['seconds'] / 60:.1f} min)" if r else "-"


def problems_table(summaries: list[dict]) -> list[str]:
    def num(value, spec=".0f", scale=1.0):
        return fmt(value, spec, "-", scale)

    def told(f):
        return f"{f['spot']} (B* {f['b_star']:.0f}, {f['made_at'][:16]})" if f else "-"

    return table(
        ["network", "dataset", "target", "sweet region", "spot", "seconds", "B_noise (fit)",
         "B_simple early / averaged", "t0 (µs)", "c (µs/example)", "B*", "√N", "forecast",
         "cells raced"], "llrlrrrrrrrrlr",
        [[s["network"], s["dataset"], f"{s['target']:g}", region(s), named(s),
          num(s["estimate"], ".2f"), num(s["b_noise"]),
          f"{num(s['b_simple_early'])} / {num(s['b_simple_averaged'])}",
          num(s["t0"], ".0f", 1e6), num(s["c"], ".2f", 1e6), num(s["b_star"]),
          f"{s['sqrt_n']:.0f}", told(s["forecast"]), raced(s)] for s in ordered(summaries)])


def direction(ratio: float) -> str:
    if ratio >= SAME:
        return "up"
    return "down" if ratio <= 1 / SAME else "about the same"


def moves(s: dict, ref: dict) -> list[str]:
    """From the reference to `s`: B*'s move, the sweet spot's (none the data can tell when one
    spot is inside the other's region), and whether B* predicted the spot's direction, and its
    size within a factor of CLOSE."""
    if not (s["spot"] and ref["spot"] and s["b_star"] and ref["b_star"]):
        return ["-"] * 4
    told = s["b_star"] / ref["b_star"]
    tie = ref["spot"] in s["region"] or s["spot"] in ref["region"]
    found = 1.0 if tie else s["spot"] / ref["spot"]
    spot = (f"none the data can tell ({ref['spot']} -> {s['spot']})" if tie else
            f"{direction(found)} ({ref['spot']} -> {s['spot']}, x{found:.2f})")
    same_way = direction(found) == direction(told)
    size = abs(math.log(found / told)) <= math.log(CLOSE)
    return [f"{direction(told)} ({ref['b_star']:.0f} -> {s['b_star']:.0f}, x{told:.2f})", spot,
            "yes" if same_way else "no", "yes" if size else "no"]


def moves_table(summaries: list[dict], ref: dict) -> list[str]:
    """Each problem against the reference: the moves, the forecast made before its sweep, and
    the question's rule of thumb (start at the size nearest sqrt(N))."""
    def forecast(s):
        f = s["forecast"]
        if not f:
            return ["-", "-"]
        return [f"{f['spot']} (B* {f['b_star']:.0f})",
                "inside" if f["spot"] in s["region"] else "outside"]

    def rule(s):
        near = costmodel.nearest(s["relative_time"], s["sqrt_n"])
        return f"{near}: x{s['relative_time'][near]:.2f}" if near is not None else "-"

    return table([f"problem (against {label(ref)})", "B* moved", "sweet spot moved",
                  "same direction", f"size within x{CLOSE:g}", "forecast, before the sweep",
                  "forecast in the region", "size nearest √N: time / the spot's"], "llllllll",
                 [[label(s), *(moves(s, ref) if s is not ref else ["-"] * 4), *forecast(s),
                   rule(s)] for s in summaries])


def elsewhere(summaries: list[dict], ref: dict) -> list[str]:
    """A line naming the problems whose seconds were measured on another machine than the
    reference's: their t0, c, seconds and B* are that machine's."""
    other = [s for s in summaries if s is not ref and s.get("machine") != ref.get("machine")]
    if not other:
        return []
    named = "; ".join(f"{label(s)} on {s.get('machine') or 'a machine its summary does not name'}"
                      for s in other)
    return [f"- Measured elsewhere: the seconds per step behind {label(ref)} are from "
            f"{ref.get('machine') or 'a machine its summary does not name'}; those of {named}. "
            "Their t0, c, seconds and B* are each machine's own, so a move of B* between them "
            "mixes two machines' speeds with the problems' difference."]


def section(summaries: list[dict]) -> list[str]:
    """The report's comparison: the table, a sentence per problem, the figure."""
    if len(summaries) < 2:
        return []
    ordered_ = ordered(summaries)
    ref = next((s for s in ordered_ if (s["network_key"], s["dataset"]) == REFERENCE), None)
    lines = ["## Beyond one network", "",
             "Each swept problem's answer at its own headline target (reports/compare/), its cost "
             "model fitted as above: B* = sqrt(B_noise t0 / c). The forecast column is the cost "
             "model's answer from a few minutes of measurement, written before that sweep ran "
             "(`sweetspot forecast`).", ""]
    lines += problems_table(summaries) + [""]
    if ref:
        lines += [*moves_table(ordered_, ref), ""]
        lines += elsewhere(ordered_, ref)
    lines += ["", f"![{CAPTIONS['comparison']}](figures/comparison.png)", ""]
    return lines


def curves(summaries: list[dict]) -> pd.DataFrame:
    """Each problem's seconds to target relative to its sweet spot, by batch size: the figure's
    data (figures.comparison)."""
    return pd.DataFrame([{"problem": label(s), "batch_size": b, "relative": t}
                         for s in ordered(summaries) for b, t in s["relative_time"].items()])
