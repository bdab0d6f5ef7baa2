"""The first screen of reports/report.md: the sweet region and its rate, the spot, how sure the
answer is (the resamples, the race, the fresh seeds), the question's pipeline beside the tensor
path, and why per-epoch time misleads. Pure: the answer in, Markdown out."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sweetspot.advice import claims, ends
from sweetspot.answer.analysis import censored_median
from sweetspot.answer.estimate import REGION_RULE
from sweetspot.fmt import fmt, sizes, table
from sweetspot.report import compare
from sweetspot.report.answer import Answer
from sweetspot.report.asked import ASKED, ASKED_LR
from sweetspot.sweep import race
from sweetspot.train.networks import network_slug


def interval(low, high) -> str:
    if low is None or not math.isfinite(low):
        return "-"
    return f"{low:.2f}-{fmt(high, '.2f', 'inf')}"


def answer_cells(spot: dict) -> list:
    """One target's answer as table cells: sweet region, spot, seconds and 95% interval."""
    return [region_text(spot) if spot["batch_size"] is not None else "-", named(spot),
            fmt(spot.get("estimate")), interval(spot.get("low"), spot.get("high"))]


def headline(answer: Answer) -> list[str]:
    """The first screen: the answer and its rate, how sure it is (the resamples, the race, the
    fresh seeds), the question's pipeline taken apart, and the question's own run."""
    spots, targets = answer.spots, answer.params.sweep.targets
    spot = spots[targets[0]]
    if spot["batch_size"] is None:
        return [f"No batch size reached {targets[0]:g} test accuracy: {spot['reason']}.", ""]
    rows = spot["per_batch"]
    here = rows[rows["batch_size"] == spot["batch_size"]].iloc[0]
    lines = [
        f"**Sweet region: {region_text(spot)}**, at {rates(rows, spot)} (the question trained "
        f"at {ASKED_LR:g}; each batch size's rate is the one of its grid that reaches the "
        f"target in the fewest steps: {grids(answer.params)}). {region_members(spot)}",
        f"{spot_sentence(spot)} reaches {targets[0]:g} test accuracy in "
        f"**{spot['estimate']:.2f} s** of training, estimated as {spot['median_steps']:.0f} steps "
        f"(median over seeds{resolution(spot)}) x {spot['seconds_per_step'] * 1e6:.0f} µs per "
        f"step (the fastest timing round), 95% interval {spot['low']:.2f}-{spot['high']:.2f} s. "
        + measured(here, spot) + rate_moves(answer.steps, spot),
        certainty(answer), ""]
    lines += [" ".join(filter(None, [pipeline_sentence(answer), epoch_sentence(answer)])), ""]
    if len(targets) > 1:
        lines += table(["target", "sweet region", "spot", "seconds (estimate)", "95% interval",
                        "wins"], "lrrrlr",
                       [[f"{t:g}", *answer_cells(spots[t]), fmt(spots[t].get("share"), ".0%", "-")]
                        for t in targets])
        lines.append("")
    return lines


def resolution(spot: dict) -> str:
    """How finely the spot's steps were read: every hit within this many steps of its evaluation
    before it (train.fine_every_examples near the target)."""
    steps = spot.get("resolution")
    if steps is None:
        return ""
    return f", each read to within {steps:.0f} steps, {steps / spot['median_steps']:.1%}"


def measured(here: pd.Series, spot: dict) -> str:
    """The spot's runs timed where its seconds were, beside the estimate."""
    if math.isnan(here["measured"]):
        return "No run at it was timed where its seconds were measured."
    return (f"Measured directly, its runs took {fmt(here['measured'])} s (median of their quiet "
            f"times), {fmt(here['ratio'], '.2f', '-')}x the estimate; their own seconds per step "
            f"are {fmt(here['step_ratio'], '.3f', '-')}x its; by measured time alone the fastest "
            f"was batch {spot['direct']}.")


def named(spot: dict) -> str:
    """The spot, or the tie the resamples leave: "24 or 32" (compare.tie)."""
    return compare.either(compare.tie(spot) if spot["batch_size"] is not None else [])


def spot_sentence(spot: dict) -> str:
    """The spot where it wins compare.NAMED of the resamples; else the tie, which is the answer."""
    tied = compare.tie(spot)
    if len(tied) == 1:
        return (f"Its spot, **batch size {spot['batch_size']}**, wins {spot['share']:.0%} of the "
                f"resamples of seeds and timing rounds ({compare.NAMED:.0%} names a spot alone) "
                "and")
    shares = spot["per_batch"].set_index("batch_size")["share"]
    return (f"No batch size wins {compare.NAMED:.0%} of the resamples of seeds and timing rounds: "
            f"**{compare.either(tied)}** win {' and '.join(f'{shares[b]:.0%}' for b in tied)}, a "
            f"tie the data do not break. Batch {spot['batch_size']}, which wins most,")


def rate_moves(steps: pd.DataFrame | None, spot: dict) -> str:
    """How far the spot's time moves from its rate to the other rates tried at its batch size
    (the rates stage's neighbours among them): their median steps over the spot's, its seconds per
    step not depending on the rate."""
    if steps is None:
        return ""
    at = steps[(steps["batch_size"] == spot["batch_size"])
               & np.isclose(steps["target"].astype(float), spot["target"])
               & ~np.isclose(steps["lr"].astype(float), spot["lr"])]
    moves = []
    for lr, runs in at.groupby("lr", sort=True):
        median = censored_median(runs["steps"], ~runs["censored"].astype(bool))
        ratio = median / spot["median_steps"]
        seeds = f"{len(runs)} seed" + "s" * (len(runs) > 1)
        moves.append(f"lr {lr:g} " + (f"takes {ratio:.2f}x its steps" if math.isfinite(ratio)
                                      else "never reaches it") + f" ({seeds})")
    if not moves:
        return ""
    return (f" Its rate against the others tried at batch {spot['batch_size']}: "
            f"{', '.join(moves)}; at one batch size the seconds per step do not depend on the "
            "rate, so the time moves as much.")


def grids(params) -> str:
    """The rates tried: the grid's, its chosen rates' neighbours x and / sweep.rate_ratio where
    the region could be, and the small end's (sweep.extremes_lrs)."""
    s = params.sweep
    text = ", ".join(f"{lr:g}" for lr in s.lrs)
    if s.lr_policy == "tuned":
        text += f", and the chosen rate x and / {s.rate_ratio:g} near the best"
    if s.extremes:
        text += (f" (batch sizes {sizes(s.extremes, s.extremes)}: "
                 + ", ".join(f"{lr:g}" for lr in s.extremes_lrs) + ")")
    return text


def rates(rows: pd.DataFrame, spot: dict) -> str:
    """The region's learning rates: "learning rate 1" where they share one, else each."""
    region = rows[rows["batch_size"].isin([r["batch_size"] for r in spot["region"]])]
    if region["lr"].nunique() == 1:
        return f"learning rate {region['lr'].iloc[0]:g}"
    return "learning rates " + ", ".join(f"{r.lr:g} ({int(r.batch_size)})"
                                         for r in region.itertuples())


def certainty(answer: Answer) -> str:
    """What the race left undecided, and what fresh seeds said: in one sentence each."""
    told = []
    if open_ := race.undecided(answer.raced):
        told.append(f"The race left {', '.join(map(str, open_))} undecided (in the region, but "
                    "its seeds allow it more than the race's margin slower).")
    own = [d for d in answer.held if (d["dataset"], d["network"]) == (
        answer.params.data.dataset, network_slug(answer.params.train))]
    spot = answer.spots[answer.target]
    now = (spot["batch_size"], sorted(r["batch_size"] for r in spot["region"]))
    for doc in own:
        asked = doc["answer"]
        if (asked["spot"], sorted(asked["region"])) != now:
            told.append(f"The fresh seeds last checked an earlier answer (spot {asked['spot']}, "
                        f"region {sizes(asked['region'], asked['tried'])}): `sweetspot heldout` "
                        "checks this one.")
            continue
        checked = [r for r in doc["rows"] if r["agrees"] is not None]
        wrong = [r for r in checked if not r["agrees"]]
        seeds = ", ".join(map(str, checked[0]["seeds"])) if checked else ""
        right = [f"{r['batch_size']} ({r['verdict']})" for r in checked if r["agrees"]]
        if wrong:
            told.append(f"Fresh seeds ({seeds}) disagree at " + ", ".join(
                f"{r['batch_size']}, a member that took {fmt(r['ratio'], '.2f')}x the spot's "
                f"time (beyond the {doc['margin']:.0%} margin)" if r["verdict"] == "in" else
                f"{r['batch_size']}, excluded but as fast ({fmt(r['ratio'], '.2f')}x)"
                for r in wrong) + (f"; they agree at {', '.join(right)}" if right else "")
                + " ([held out](#held-out-fresh-seeds-against-the-verdicts)).")
        elif checked:
            told.append(f"Fresh seeds ({seeds}) agree with every verdict they tested: "
                        f"{', '.join(right)} ([held out]"
                        "(#held-out-fresh-seeds-against-the-verdicts)).")
    return " ".join(told)


def pipeline_sentence(answer: Answer) -> str:
    """The question's pipeline against the tensor path, and its two parts (advice/pipeline.py)."""
    target = answer.target
    (first, base), *others = answer.loaders.items()
    if not others:
        return ""
    spot, ours = others[0][1]["spots"][target], base["spots"][target]
    if spot["batch_size"] is None or ours["batch_size"] is None:
        return ""
    b = ours["batch_size"]  # both paths at one batch size: the same steps, two seconds per step
    theirs = spot["per_batch"].set_index("batch_size").loc[b, "estimate"]
    text = (f"Through the question's own pipeline (its DataLoader and its eager autograd step) "
            f"the same steps take {theirs / ours['estimate']:.1f}x as long (batch {b}: "
            f"{theirs:.2f} s" + ("" if spot["batch_size"] == b else
                                 f"; that path's own spot is {spot['batch_size']}") + ")")
    if at := ((answer.advice or {}).get("pipeline") or {}).get("per_batch", {}).get(str(b)):
        text += (f". Of the question's step at batch {b}, {at['loader_share']:.0%} is what its "
                 f"DataLoader adds to the tensor path's engine step and {at['step_share']:.0%} "
                 f"what its eager step adds (each alone, {at['loader']:.1f}x and "
                 f"{at['step']:.1f}x the engine step; [taken apart]"
                 "(#the-questions-own-data-pipeline))")
    return text + "."


def epoch_sentence(answer: Answer) -> str:
    """Per-epoch time misleads: the cheapest epoch (as the claims compute it) and the question's
    own run here."""
    spot = answer.spots[answer.target]
    epochs = claims.epoch_seconds(spot["per_batch"], answer.params.train.n_train)
    cheapest = min(epochs, key=epochs.get)
    row = spot["per_batch"].set_index("batch_size").loc[cheapest]
    fate = ("never gets there within "
            f"{answer.params.sweep.max_epochs} epochs" if not math.isfinite(row["estimate"]) else
            f"gets there in {row['estimate'] / spot['estimate']:.1f}x the spot's time")
    text = (f"Per-epoch time misleads: batch {cheapest} has the cheapest epoch "
            f"({epochs[cheapest]:.2f} s) and {fate}.")
    if question := (answer.advice or {}).get("question"):
        one, whole = ends.question_epochs(question)
        text += (f" The question's own run, here: batch 1 takes {one[0]['epoch_time']:.0f} s an "
                 f"epoch and is at {one[0]['test_acc']:.1%} after one; batch "
                 f"{question['n_train']} takes {whole[0]['epoch_time']:.1f} s and is at "
                 f"{whole[-1]['test_acc']:.1%} after {whole[-1]['epoch']}")
        if question["n_train"] == 60000 and len(whole) == len(ASKED[60000]):
            text += (f" (the question: {ASKED[1][0][0]:.0f} s and {ASKED[1][0][1]:.1%}; "
                     f"{ASKED[60000][0][0]:.1f} s and {ASKED[60000][-1][1]:.1%})")
        text += " ([the question's table](#the-questions-own-run))."
    return text


def region_text(spot: dict) -> str:
    """"batch sizes 32-64, a tie within 4%" for a region of several (a set where it is not
    contiguous: fmt.sizes), "batch size 32 alone" for one."""
    region = spot["region"]
    if len(region) == 1:
        return f"batch size {region[0]['batch_size']} alone"
    spread = max(max(r["distance"] for r in region), 0.01)  # "within 1%" for closer ones too
    members = sizes([r["batch_size"] for r in region], spot["per_batch"]["batch_size"])
    return f"batch sizes {members}, a tie within {spread:.0%}"


def region_members(spot: dict) -> str:
    """Each region member's distance from the spot, and the rule that put it there."""
    if len(spot["region"]) == 1:
        return (f"No other batch size is {REGION_RULE}: batch {spot['batch_size']} is fastest "
                "beyond what seeds and timing rounds can move.")
    members = ", ".join(f"{r['batch_size']} ({r['distance']:+.0%}, as fast in "
                        f"{r['as_fast']:.0%} of resamples)" for r in spot["region"]
                        if r["batch_size"] != spot["batch_size"])
    return f"Beside its spot {spot['batch_size']}, each of {members} is {REGION_RULE}."
