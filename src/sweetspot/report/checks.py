"""The report's checks of its own answer, in words: the runs timed on this machine against the
estimate (and the one line that opens the report when they part), the steps table against the one
the checkout came with, the predictions for other stacks against their validations, the race's
verdicts and the fresh seeds' (heldout.py). Pure: the checks' numbers in, Markdown lines out (but
for the MD5 of the committed steps table, read when a caller does not give it)."""

from __future__ import annotations

import math

from sweetspot import paths
from sweetspot.answer.estimate import ERROR_GOAL
from sweetspot.data.idx import md5
from sweetspot.fmt import fmt, table
from sweetspot.sweep import race

REMEASURE = "dvc repro -f -s steptime && dvc repro"  # the command that re-measures the seconds


def self_check_alarm(check: dict) -> str:
    """The answer's failed check of itself, in one line: the report's first, and `dvc repro`'s."""
    return (f"These seconds per step are not this machine's now: the runs timed here took "
            f"{check['median']:.2f}x the estimate (median over {check['batch_sizes']} batch "
            f"sizes, range {check['low']:.2f}-{check['high']:.2f}), beyond the "
            f"{check['goal']:.0%} the answer is held to. Re-measure them: `{REMEASURE}`.")


def reproduced(here: dict | None) -> list[str]:
    """Reproduced here: the sample of cells retrained on this machine against the committed
    cells, the answer's check of itself on those runs, and where the cells were trained."""
    if here is None:
        return []
    sample, check = here["sample"], here["self_check"]
    lines = ["## Reproduced here", "", sample_sentence(sample), ""]
    if check is None:
        lines.append("No sampled run was timed here, so nothing checks the estimate here.")
    else:
        verdict = ("beyond it: the seconds per step are another machine's, or another load's; "
                   f"re-measure them with `{REMEASURE}`" if check["departs"] else
                   "within it: the seconds per step are this machine's")
        lines.append(f"The answer's check of itself: the {sample['sampled']} sampled runs, timed "
                     f"on this machine, took {check['median']:.2f}x the estimate (median over "
                     f"{check['batch_sizes']} batch sizes, range {check['low']:.2f}-"
                     f"{check['high']:.2f}); the goal is {check['goal']:.0%}, and this is "
                     f"{verdict}.")
    mine, cells = here["trained_here"], here["cells"]
    if len(mine) == cells:
        where = f"All {cells} cells behind this answer were trained on this machine."
    elif not mine:
        where = (f"None of the {cells} cells behind this answer was trained on this machine: "
                 f"they came with the checkout, trained on {', '.join(here['elsewhere_on'])}.")
    else:
        where = (f"{len(mine)} of the {cells} cells behind this answer "
                 f"{'was' if len(mine) == 1 else 'were'} trained on this machine "
                 f"({', '.join(mine)}): DVC retrains a committed cell that is missing "
                 f"or changed, and only that one; the rest came with the checkout, trained on "
                 f"{', '.join(here['elsewhere_on'])}.")
    return lines + ["", where, ""]


def sample_sentence(sample: dict) -> str:
    """The sample's steps against the committed cells': how many agree, and for each that does
    not, how far and the likely cause."""
    edges = sorted({r["batch_size"] for r in sample["rows"] if r["role"] == "edge"})
    edged = (f", and one seed of {' and '.join(map(str, edges))}, the sweet region's other "
             f"{'edge' if len(edges) == 1 else 'edges'}" if edges else "")
    text = (f"{sample['identical']} of {sample['sampled']} sampled cells reproduced their steps "
            f"(every seed of the sweet spot, batch {sample['spot']}{edged}, retrained here in "
            f"{sample['seconds']:.0f} s and compared with the committed cells to every target).")
    for row in sample["rows"]:
        if row["identical"]:
            continue
        steps = "; ".join(f"{fmt(old, '.0f', 'never')} -> {fmt(row['here'][t], '.0f', 'never')} "
                          f"steps to {t}" for t, old in row["committed"].items()
                          if old != row["here"][t])
        how = f", {row['ratio']:.3f}x" if row["ratio"] else ""
        why = ("; likely " + " or ".join(row["causes"]) if row["causes"] else
               "; not explained by the vector width, the torch version or the rate")
        text += (f" Batch {row['batch_size']} at lr {row['lr']:g}, seed {row['seed']}: "
                 f"{steps}{how}{why}.")
    return text


def steps_table(check: dict, table_md5: str | None) -> str:
    """Which steps table a validation predicted from: "current" when the MD5 it recorded is this
    report's table's, "older" when it differs or none was recorded (made before they were)."""
    return "current" if table_md5 and check.get(paths.STEPS_MD5) == table_md5 else "older"


def validation_section(checks: list[dict], table_md5: str | None = None) -> list[str]:
    """Predicted against measured on stacks the sweep did not use (`sweetspot validate`), each
    marked by whether it predicted from this report's steps table (table_md5; default: the MD5 of
    the committed file, which the report stage writes before its text)."""
    if not checks:
        return []
    if table_md5 is None and paths.STEPS_TABLE.is_file():
        table_md5 = md5(paths.STEPS_TABLE)
    lines = ["## Validation on stacks the sweep did not use", "",
             "Each stack: `sweetspot predict` (a table of steps x a step-time measurement on that "
             "stack), then a real reduced sweep around the predicted spot "
             "(`sweetspot validate`).", "",
             *table(["stack", "predicted spot", "measured spot", "batch sizes", "runs",
                     "median abs. error", "steps table"], "lrrlrrl",
                    [[c["stack"], c["predicted_spot"], c["measured_spot"], c["batch_sizes"],
                      len(c["runs"]), fmt(c["median_abs_error"], ".0%", "-"),
                      steps_table(c, table_md5)] for c in checks])]
    met = [c["stack"] for c in checks if c["goal_met"]]
    older = [c["stack"] for c in checks if steps_table(c, table_md5) == "older"]
    lines += ["", f"Goal (measured spot = predicted or a grid neighbour, error <= "
              f"{ERROR_GOAL:.0%}) met on {len(met)} of {len(checks)}: "
              f"{', '.join(met) or 'none'}."]
    if older:
        lines += ["", f"Predicted from an older table of steps than this report's (the MD5 "
                  f"recorded differs, or none was recorded): {', '.join(older)}. Their predicted "
                  f"spots are that table's answer, not this one's; `sweetspot validate` on a "
                  f"stack checks this table."]
    return [*lines, ""]


def _why(v: dict, margin: float) -> tuple[str, str]:
    """A race verdict and its reason, in the words of the rule."""
    if v["status"] == race.SPOT:
        return "the spot", "wins the most resamples"
    if v["status"] == race.OUT:
        return "out", ("censored at its rate" if not math.isfinite(v["distance"]) else
                       "as fast as the spot in under 5% of resamples, and over 5% slower")
    told = (f"as fast as the spot in {v['as_fast']:.0%} of resamples; {race.QUANTILE:.0%} bound "
            f"{v['bound']:.3f}")
    if v["status"] == race.IN:
        return "in", f"{told} <= {1 + margin:.2f}"
    return "in, undecided (the budget was spent)", f"{told} > {1 + margin:.2f}"


def race_section(raced: dict | None) -> list[str]:
    """The race (race.summary): per batch size its seeds, in or out and why."""
    if not raced:
        return []
    b = raced["budget"]
    lines = ["## The race: seeds where the region was undecided", "",
             f"After the grid and the seeds stage, the race (`race` stage) gave one more seed per "
             f"round to the spot and to each batch size the region held but could not yet "
             f"decide: in, when the spot's time over its own stays under {1 + b['margin']:.2f} in "
             f"{race.QUANTILE:.0%} of resamples of the seeds; out, when the region's rule drops "
             f"it (budget: {b['max_seeds']} seeds per batch size, {b['max_cells']} cells). It "
             f"added {raced['cells']} {'cell' if raced['cells'] == 1 else 'cells'}, "
             f"{raced['seconds']:.0f} s of training and evaluation.", "",
             *table(["batch size", "rate", "seeds (raced)", "estimate / the spot's", "verdict",
                     "why"], "rrrrll",
                    [[size, f"{v['lr']:g}", f"{v['seeds']} ({raced['added'][size]})",
                      fmt(1 + v["distance"], ".2f", "censored"), *_why(v, b["margin"])]
                     for size, v in sorted(raced["batch"].items())])]
    rates = ", ".join(f"{size} ({', '.join(f'{lr:g}' for lr in lrs)})"
                      for size, lrs in sorted(raced["rates"].items()))
    if rates:
        lines += ["", f"Rates still close to the chosen one on fewer seeds: {rates}."]
    return [*lines, ""]


def heldout_section(docs: list[dict]) -> list[str]:
    """The held-out check (heldout.py): per problem, each pick's fresh time against the
    verdict."""
    if not docs:
        return []
    return ["## Held out: fresh seeds against the verdicts", "",
            "Beside each answer, seeds no cell of it used were trained at its spot, a member of "
            "its sweet region (its largest, or its smallest where the spot is the largest) and "
            "the first batch size above the region (the heldout stage); their median steps x "
            "the same seconds per step. A member "
            "agrees when it is within the race's margin of the spot, an excluded one when it "
            "is slower than the spot.", "",
            *table(["problem", "batch size", "verdict", "seeds", "median steps",
                    "time / the spot's", "agrees"], "lrllrrl",
                   [[f"{d['network']} on {d['dataset']}", r["batch_size"], r["verdict"],
                     ", ".join(map(str, r["seeds"])), fmt(r["median_steps"], ".0f"),
                     fmt(r["ratio"], ".2f", "-"),
                     {None: "-", True: "yes", False: "**no**"}[r["agrees"]]]
                    for d in docs for r in d["rows"]]), ""]
