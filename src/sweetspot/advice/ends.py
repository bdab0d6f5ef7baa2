"""The answer's claims about the two ends, batch 1 and the whole training set in one batch, each a
row of the claims table (claims.claim): what the answer says, the test, this machine's numbers and
a verdict. Pure: the estimate table, the steps table and the question's own run in, rows out."""

from __future__ import annotations

import math

from sweetspot.advice.claims import HOLDS, NOT, PART, UNTESTED, claim, ratio_to_spot
from sweetspot.fmt import fmt


def question_epochs(question: dict) -> tuple[list[dict], list[dict]]:
    """The question's own run (reports/question.json): batch 1's epochs, then the whole set's."""
    return tuple(question["runs"][k]["epochs"] for k in ("1", str(question["n_train"])))


def batch_one(per_batch, spot: dict, budget: int, censored: list[str]) -> dict:
    """Batch 1 and the rest below the region; `censored` names the runs the budget stopped."""
    said = "\"a batch size of 1 is almost guaranteed to be sub-optimal\""
    rows = per_batch[per_batch["batch_size"] < min(r["batch_size"] for r in spot["region"])]
    if 1 not in set(per_batch["batch_size"]):
        return claim(said, "batch 1 as a cell", "not trained (sweep.extremes lacks 1)", UNTESTED,
                     "two_factors")

    def one(r):
        if not math.isfinite(r.estimate):
            return f"{int(r.batch_size)}: not in {budget} epochs"
        ratio = ratio_to_spot(per_batch, spot, r.batch_size)
        return f"{int(r.batch_size)}: {fmt(r.estimate)} s ({fmt(ratio, '.1f')}x)"

    stopped = (f"; {len(censored)} runs at rates not chosen stopped short in {budget} epochs"
               if censored else "")
    inside = 1 in [r["batch_size"] for r in spot["region"]]
    return claim(said, f"batch sizes below the region trained like the grid ({budget} epochs for "
                 "the small end, the grid's budget above it), steps x seconds",
                 "; ".join(map(one, rows.itertuples())) + stopped,
                 NOT if inside else HOLDS, "two_factors")


def whole_batch(per_batch, spot: dict, question: dict | None, target: float) -> dict:
    """The whole training set in one batch: the question's own run, and the examples seen to the
    target as the batch size grows (steps x B) beside the steps."""
    said = ("\"[batch 60000] tends to lose the learning you can get from focusing on little-seen "
            "features\"")
    test = ("the question's run at the whole set (lr 0.1), and the examples seen to the target "
            "(steps x batch size) against the spot's; why (little-seen features) is not tested "
            "apart")
    reached = per_batch[per_batch["estimate"].map(math.isfinite)]
    big = reached.loc[reached["batch_size"].idxmax()]
    at = per_batch.set_index("batch_size").loc[spot["batch_size"]]
    examples = big.median_steps * big.batch_size / (at.median_steps * spot["batch_size"])
    numbers = (f"to {target:g}, batch {int(big.batch_size)} (the largest to reach it) sees "
               f"{fmt(examples, '.1f')}x the examples the spot {spot['batch_size']} sees, in "
               f"{fmt(big.median_steps / at.median_steps, '.2f')}x its steps")
    stuck = False
    if question:
        last = question_epochs(question)[1][-1]
        stuck = last["test_acc"] < target
        numbers = (f"the question's run at {question['n_train']}: {last['test_acc']:.1%} after "
                   f"{last['epoch']} epochs ({last['epoch']} steps); {numbers}")
    verdict = HOLDS if stuck and examples > 2 else PART if stuck or examples > 2 else NOT
    return claim(said, test, numbers, verdict, "steps_to_target")


def single_image(table, spot: dict, target: float, seeds=(0, 1, 2)) -> dict:
    """Batch 1's steps to the target over the same seeds as the spot's, at each one's rate: how
    much more the order of single images moves them (range over median)."""
    said = "\"[batch 1] tends to over-emphasize individual effects\""
    test = (f"the spread of steps to the target over seeds {', '.join(map(str, seeds))} (range "
            "over median), batch 1 against the spot, each at its rate; the \"too much weight to "
            "the first few images\" is not tested apart")

    def spread(b):
        at = table[(table["batch_size"] == b) & (table["lr"] == lr_of[b]) & (
            table["seed"].isin(seeds)) & (table["target"] == target)]["steps"]
        return (at.max() - at.min()) / at.median(), at

    lr_of = dict(zip(spot["per_batch"]["batch_size"], spot["per_batch"]["lr"], strict=True))
    if 1 not in lr_of:
        return claim(said, test, "batch 1 not trained", UNTESTED, "steps_to_target")
    (one, ones), (mine, spots) = spread(1), spread(spot["batch_size"])
    if not (math.isfinite(one) and math.isfinite(mine)):  # a seed missing or censored
        return claim(said, test, "steps missing at batch 1 or the spot", UNTESTED,
                     "steps_to_target")
    ratio = one / mine if mine else math.inf if one else 1.0
    numbers = (f"batch 1: {fmt(ones.min(), '.0f')}-{fmt(ones.max(), '.0f')} steps "
               f"({fmt(one, '.0%')} of the median); the spot {spot['batch_size']}: "
               f"{fmt(spots.min(), '.0f')}-{fmt(spots.max(), '.0f')} ({fmt(mine, '.0%')}): "
               f"{fmt(ratio, '.1f')}x")
    verdict = HOLDS if ratio >= 2 else PART if ratio > 1.25 else NOT
    return claim(said, test, numbers, verdict, "steps_to_target")


def extremes(per_batch, spot: dict, question: dict | None, target: float,
             max_epochs: int) -> dict:
    """Batch 1 and the whole set in one batch, against the spot."""
    said = "\"Either of these approaches is an extreme case, usually absurd in application\""
    ratio = ratio_to_spot(per_batch, spot, 1)
    censored = [int(r.batch_size) for r in per_batch.itertuples()
                if not math.isfinite(r.estimate)]
    parts = [f"batch 1 takes {fmt(ratio, '.1f')}x the spot's time" if math.isfinite(ratio)
             else "batch 1 not trained"]
    stuck = False
    if question:
        last = question_epochs(question)[1][-1]
        stuck = last["test_acc"] < target
        parts.append(f"batch {question['n_train']} (the question's run) is at "
                     f"{last['test_acc']:.1%} after {last['epoch']} epochs")
    if censored:
        parts.append(f"{' and '.join(map(str, censored))} never reach {target:g} in "
                     f"{max_epochs} epochs")
    slow = math.isfinite(ratio) and ratio >= 2
    verdict = HOLDS if slow and stuck else PART if slow or stuck else NOT
    return claim(said, "batch 1's time to the target over the spot's; the whole set in one batch "
                 "in the question's run", "; ".join(parts), verdict, "two_factors")
