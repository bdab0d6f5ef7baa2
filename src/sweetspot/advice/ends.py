"""The answer's claims about the two ends, batch 1 and the whole training set in one batch, each
judged as claims.py judges (a verdict and the numbers behind it). Pure: the estimate table, the
steps table and the question's own run in, a dict out; report/advice.py puts it in words."""

from __future__ import annotations

import math

from sweetspot.advice.claims import HOLDS, NOT, PART, UNTESTED, ratio_to_spot


def question_epochs(question: dict) -> tuple[list[dict], list[dict]]:
    """The question's own run (reports/question.json): batch 1's epochs, then the whole set's."""
    return tuple(question["runs"][k]["epochs"] for k in ("1", str(question["n_train"])))


def _last(question: dict | None) -> dict | None:
    """The question's run at the whole set, at its last epoch: its size, accuracy and epoch."""
    if not question:
        return None
    return {"n_train": question["n_train"], **question_epochs(question)[1][-1]}


def batch_one(per_batch, spot: dict, budget: int, censored: list[str]) -> dict:
    """Batch 1 and the rest below the region, each (batch size, estimate, over the spot's);
    `censored` names the runs the budget stopped."""
    if 1 not in set(per_batch["batch_size"]):
        return {"verdict": UNTESTED}
    rows = per_batch[per_batch["batch_size"] < min(r["batch_size"] for r in spot["region"])]
    inside = 1 in [r["batch_size"] for r in spot["region"]]
    return {"verdict": NOT if inside else HOLDS, "budget": budget, "stopped": len(censored),
            "below": [(int(r.batch_size), r.estimate, ratio_to_spot(per_batch, spot, r.batch_size))
                      for r in rows.itertuples()]}


def whole_batch(per_batch, spot: dict, question: dict | None, target: float) -> dict:
    """The whole training set in one batch: the question's own run, and the examples seen to the
    target as the batch size grows (steps x B) beside the steps."""
    reached = per_batch[per_batch["estimate"].map(math.isfinite)]
    big = reached.loc[reached["batch_size"].idxmax()]
    at = per_batch.set_index("batch_size").loc[spot["batch_size"]]
    examples = big.median_steps * big.batch_size / (at.median_steps * spot["batch_size"])
    last = _last(question)
    stuck = bool(last) and last["test_acc"] < target
    return {"verdict": HOLDS if stuck and examples > 2 else PART if stuck or examples > 2 else NOT,
            "target": target, "largest": int(big.batch_size), "examples": examples,
            "steps": big.median_steps / at.median_steps, "spot": spot["batch_size"],
            "question": last}


def single_image(table, spot: dict, target: float, seeds=(0, 1, 2)) -> dict:
    """Batch 1's steps to the target over the same seeds as the spot's, at each one's rate: how
    much more the order of single images moves them (range over median)."""
    def spread(b):
        at = table[(table["batch_size"] == b) & (table["lr"] == lr_of[b]) & (
            table["seed"].isin(seeds)) & (table["target"] == target)]["steps"]
        return {"spread": (at.max() - at.min()) / at.median(), "low": at.min(), "high": at.max()}

    lr_of = dict(zip(spot["per_batch"]["batch_size"], spot["per_batch"]["lr"], strict=True))
    if 1 not in lr_of:
        return {"verdict": UNTESTED, "seeds": seeds, "lacks": "batch 1"}
    one, mine = spread(1), spread(spot["batch_size"])
    if not (math.isfinite(one["spread"]) and math.isfinite(mine["spread"])):  # missing, censored
        return {"verdict": UNTESTED, "seeds": seeds, "lacks": "steps"}
    a, b = one["spread"], mine["spread"]
    ratio = a / b if b else math.inf if a else 1.0
    return {"verdict": HOLDS if ratio >= 2 else PART if ratio > 1.25 else NOT, "seeds": seeds,
            "one": one, "mine": mine, "spot": spot["batch_size"], "ratio": ratio}


def extremes(per_batch, spot: dict, question: dict | None, target: float,
             max_epochs: int) -> dict:
    """Batch 1 and the whole set in one batch, against the spot."""
    ratio = ratio_to_spot(per_batch, spot, 1)
    last = _last(question)
    stuck = bool(last) and last["test_acc"] < target
    slow = math.isfinite(ratio) and ratio >= 2
    return {"verdict": HOLDS if slow and stuck else PART if slow or stuck else NOT,
            "ratio": ratio, "question": last, "target": target, "max_epochs": max_epochs,
            "censored": [int(r.batch_size) for r in per_batch.itertuples()
                         if not math.isfinite(r.estimate)]}
