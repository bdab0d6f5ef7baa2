"""The report's checks of its own answer, in words: the runs timed on this machine against the
estimate (and the one line that opens the report when they part), the steps table against the one
the checkout came with, and the predictions for other stacks against their validations. Pure: the
checks' numbers in, Markdown lines out."""

from __future__ import annotations

from sweetspot.answer.estimate import ERROR_GOAL
from sweetspot.fmt import fmt, table

REMEASURE = "dvc repro -f -s steptime && dvc repro"  # the command that re-measures the seconds


def self_check_alarm(check: dict) -> str:
    """The answer's failed check of itself, in one line: the report's first, and `dvc repro`'s."""
    return (f"These seconds per step are not this machine's now: the runs timed here took "
            f"{check['median']:.2f}x the estimate (median over {check['batch_sizes']} batch "
            f"sizes, range {check['low']:.2f}-{check['high']:.2f}), beyond the "
            f"{check['goal']:.0%} the answer is held to. Re-measure them: `{REMEASURE}`.")


def reproduced(here: dict | None, timing: dict) -> list[str]:
    """Reproduced here: the answer's check of itself on this machine's runs, where the seconds
    were measured, and the steps table against the one the checkout came with."""
    if here is None:
        return []
    lines = ["## Reproduced here", ""]
    check = here["self_check"]
    if check is None:
        lines.append(f"None of the {here['runs']} runs behind this answer was timed on this "
                     "machine since its last boot, so their times cannot check the estimate "
                     "here.")
    else:
        verdict = ("beyond it: the seconds per step are another machine's, or another load's; "
                   f"re-measure them with `{REMEASURE}`" if check["departs"] else
                   "within it: the seconds per step are this machine's")
        lines.append(f"The answer's check of itself: the {here['runs_here']} of {here['runs']} "
                     f"runs timed on this machine took {check['median']:.2f}x the estimate "
                     f"(median over {check['batch_sizes']} batch sizes, range "
                     f"{check['low']:.2f}-{check['high']:.2f}); the goal is "
                     f"{check['goal']:.0%}, and this is {verdict}.")
    if timing.get("host") not in (None, here["host"]):
        lines.append("The seconds per step were measured on another host, or before this "
                     "one's last boot.")
    lines += ["", f"{steps_sentence(here['steps'], here['commit'])} Of the {here['runs']} runs "
              f"behind this table, {here['runs_here']} were trained on this machine since its "
              "last boot.", ""]
    return lines


def steps_sentence(steps: dict, commit: str) -> str:
    """This steps table against the checkout's: identical rows, or which differ and by how
    much."""
    if steps["rows"] == 0:
        return ("No steps table of this problem came with the checkout, so there is none to "
                "compare this one with.")
    checkout = f"the checkout's (git {commit})" if commit else "the checkout's"
    text = (f"The steps, reproduced: {steps['identical']} of {steps['rows']} rows of "
            f"reports/steps_to_target.csv are identical to {checkout}")
    if steps["differ"]:
        shown = "; ".join(
            f"batch {d['batch_size']}, lr {d['lr']:g}, seed {d['seed']}, {d['target']:g}: "
            f"{fmt(d['steps_old'], '.0f')} -> {fmt(d['steps'], '.0f')} steps"
            for d in steps["differ"][:5])
        more = f", and {len(steps['differ']) - 5} more" if len(steps["differ"]) > 5 else ""
        text += f"; {len(steps['differ'])} differ ({shown}{more})"
    extra = [f"{n} rows {word}" for n, word in ((steps["new"], "new"), (steps["gone"], "gone"))
             if n]
    return text + (f" ({', '.join(extra)})" if extra else "") + "."


def validation_section(checks: list[dict]) -> list[str]:
    """Predicted against measured on stacks the sweep did not use (`sweetspot validate`)."""
    if not checks:
        return []
    lines = ["## Validation on stacks the sweep did not use", "",
             "Each stack: `sweetspot predict` (this table of steps x a step-time measurement on "
             "that stack), then a real reduced sweep around the predicted spot "
             "(`sweetspot validate`).", "",
             *table(["stack", "predicted spot", "measured spot", "batch sizes", "runs",
                     "median abs. error"], "lrrlrr",
                    [[c["stack"], c["predicted_spot"], c["measured_spot"], c["batch_sizes"],
                      len(c["runs"]), fmt(c["median_abs_error"], ".0%", "-")] for c in checks])]
    met = [c["stack"] for c in checks if c["goal_met"]]
    return [*lines, "", f"Goal (measured spot = predicted or a grid neighbour, error <= "
            f"{ERROR_GOAL:.0%}) met on {len(met)} of {len(checks)}: "
            f"{', '.join(met) or 'none'}.", ""]
