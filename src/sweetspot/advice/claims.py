"""The answer's advice as claims, each judged on this machine's numbers: holds, holds in part,
does not hold here. Pure: documents and tables in, each claim's verdict and the numbers behind it
out (a dict); report/advice.py puts them in words."""

from __future__ import annotations

import math

import numpy as np

from sweetspot.answer import estimate, procedure

HOLDS, PART, NOT, UNTESTED = "holds", "holds in part", "does not hold here", "not tested here"
MEANINGFUL = 0.02  # a per-example difference under 2% between neighbours is none worth choosing


# --- block sizes ---------------------------------------------------------------------------------

def block_verdict(per_round: dict[int, list[float]], centres: list[tuple[str, int]],
                  resamples: int, spread: float = 0.0, seed: int = 0) -> dict:
    """For each centre c (a power of two, or 3*2^(n-1)) and each distance d of blocks.NEIGHBOURS
    with both c-d and c+d timed: the effect, how much longer the line through the neighbours'
    seconds per step (their mean) says a step at c should take than it does, each size its
    fastest round, and its 5-95% interval over resampled rounds (aligned, so paired). A step
    costs t0 + c B, so with no block effect the line meets c: any d is fair. Faster: the interval
    above 0 and the effect above MEANINGFUL; slower: the mirror; else no difference.

    At d = 1 the neighbours are odd sizes, which any multiple of 8 beats on the vector lanes;
    the claim is tested at d = 8, against other multiples of 8. It holds where powers of two are
    faster there at most powers by more than `spread` (the seeds' spread of time to the target,
    which a smaller gain cannot show); in part where any centre is faster there at all."""
    rng = np.random.default_rng(seed)
    n_rounds = len(next(iter(per_round.values())))
    picks = estimate.picks(n_rounds, resamples, rng)
    out = []
    for kind, c in centres:
        for d in (1, 8):
            if not {c - d, c, c + d} <= set(per_round):
                continue
            below, at, above = (np.asarray(per_round[b]) for b in (c - d, c, c + d))
            point = float(_effect(below, at, above, np.arange(n_rounds)))
            low, high = (float(v) for v in np.quantile(_effect(below, at, above, picks),
                                                        [0.05, 0.95]))
            verdict = ("faster" if low > 0 and point > MEANINGFUL else
                       "slower" if high < 0 and point < -MEANINGFUL else "no difference")
            out.append({"kind": kind, "size": c, "d": d, "effect": point, "low": low,
                        "high": high, "verdict": verdict})

    def faster(kind_is_power: bool, d: int) -> list[dict]:
        return [r for r in out if r["d"] == d and (r["kind"] == "2^n") == kind_is_power
                and r["verdict"] == "faster"]

    powers = sorted({r["size"] for r in out if r["kind"] == "2^n"})
    by_eight = faster(True, 8)
    largest = max((r["effect"] for r in out if r["d"] == 8), default=0.0)
    threes = len({r["size"] for r in out if r["kind"] != "2^n"})
    verdict = (HOLDS if len(by_eight) > len(powers) / 2 and largest > spread else
               PART if by_eight or faster(False, 8) else NOT)
    return {"centres": out, "faster": len(by_eight), "powers": len(powers), "verdict": verdict,
            "threes": threes, "largest": largest, "spread": spread,
            "by_one": (len(faster(True, 1)), len(faster(False, 1))),
            "threes_by_eight": len(faster(False, 8))}


def _effect(below, at, above, rounds):
    """How much longer the neighbours' mean step is than the centre's, each the fastest of the
    given rounds (an index array; one row per resample)."""
    return (below[rounds].min(-1) + above[rounds].min(-1)) / 2 / at[rounds].min(-1) - 1


# --- the answer's procedure, replayed -----------------------------------------------------------

def replay(per_batch, n_train: int, spot: dict, undecided: list[int] = ()) -> dict:
    """The answer's grid and its one x3 refinement on this estimate table (procedure.advised_pick):
    its pick, the pick's time over the spot's, and whether the region's decided members hold it
    (`undecided`: the members the race left undecided)."""
    pick = procedure.advised_pick(per_batch[["batch_size", "estimate"]], n_train)
    region = [r["batch_size"] for r in spot.get("region", [])]
    if pick["best"] is None:
        return {**pick, "ratio": math.inf, "in_region": False, "region": region,
                "undecided": False}
    at = per_batch.set_index("batch_size")["estimate"]
    return {**pick, "estimate": float(at[pick["best"]]),
            "ratio": float(at[pick["best"]]) / spot["estimate"],
            "in_region": pick["best"] in region and pick["best"] not in undecided,
            "undecided": pick["best"] in undecided, "region": region}


# --- the claims: each its verdict and the numbers its words need (report/advice.py) -------------

def ratio_to_spot(per_batch, spot: dict, b: int) -> float:
    at = per_batch.set_index("batch_size")["estimate"]
    return float(at[b]) / spot["estimate"] if b in at.index else math.nan


def epoch_seconds(per_batch, n_train: int) -> dict[int, float]:
    """Each batch size's epoch: its steps in an epoch x its seconds per step."""
    return {int(r.batch_size): math.ceil(n_train / r.batch_size) * r.seconds_per_step
            for r in per_batch.itertuples()}


def time_per_epoch(per_batch, spot: dict, n_train: int, max_epochs: int) -> dict:
    """The question's metric against the target's: the batch size with the fastest epoch."""
    epochs = epoch_seconds(per_batch, n_train)
    fast = min(epochs, key=epochs.get)
    region = [r["batch_size"] for r in spot["region"]]
    return {"verdict": HOLDS if fast not in region else NOT, "fast": fast,
            "epoch": epochs[fast], "spot": spot["batch_size"],
            "spot_epoch": epochs[spot["batch_size"]],
            "ratio": ratio_to_spot(per_batch, spot, fast), "max_epochs": max_epochs}


def advised_procedure(found: dict, spot: dict, margin: float) -> dict:
    """The answer's start, grid and refinement (`found`: replay), judged by the decided members:
    in part where its pick is undecided or within the race's `margin` of the spot."""
    verdict = (UNTESTED if found["best"] is None else HOLDS if found["in_region"] else
               PART if found["undecided"] or found["ratio"] <= 1 + margin else NOT)
    return {"verdict": verdict, "replay": found, "spot": spot, "margin": margin}


def neighbours(per_batch, spot: dict, undecided: list[int] = ()) -> dict:
    """The spot's adjacent batch sizes (those trained, either side), judged by the decided
    members: each as (batch size, its estimate over the spot's, its status)."""
    sizes = sorted(int(b) for b in per_batch["batch_size"])
    i = sizes.index(spot["batch_size"])
    beside = sizes[max(i - 1, 0):i] + sizes[i + 1:i + 2]
    region = [r["batch_size"] for r in spot["region"]]
    inside = [b for b in beside if b in region and b not in undecided]
    status = {b: "undecided" if b in undecided else "in the region" if b in region else
              "out of the region" for b in beside}
    return {"verdict": HOLDS if len(inside) == len(beside) else PART if inside else NOT,
            "beside": [(b, ratio_to_spot(per_batch, spot, b), status[b]) for b in beside]}


def memory(found: dict, cost: dict | None, spot: dict) -> dict:
    """The step against its floors (`found`: floors.floors(); `cost`: the fitted t0 and c)."""
    return {"verdict": HOLDS if found["stops_falling"] <= spot["batch_size"] else PART,
            "found": found, "cost": cost}


def processors(cores: dict, spot_best: dict | None, spot_question: dict | None) -> dict:
    """Both paths at every split of the CPUs: the question's pipeline (loader workers x torch
    threads) and the tensor path (torch threads); the spots at the best split and at none."""
    def gains(speedup):  # beyond the rounds' spread: the lower quartile of the ratios above 1
        return any(v["q1"] > 1 + MEANINGFUL for v in speedup.values())

    verdict = (HOLDS if cores["best"]["beyond"] else PART if gains(cores["speedup"]) or
               gains(cores["tensor_threads"].get("speedup", {})) else NOT)
    return {"verdict": verdict, "cores": cores, "spot_best": spot_best,
            "spot_question": spot_question}

