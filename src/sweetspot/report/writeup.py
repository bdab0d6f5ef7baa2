"""The text of reports/report.md, in order: the first screen (firstscreen.py), what made the
comparison fair, the two factors beside the direct measurement, why the spot sits there, the
question's own run and pipeline (question.py), the checks, the race and the advice. Pure: the
report's numbers in, Markdown out."""

from __future__ import annotations

import math

import pandas as pd

from sweetspot.answer.fastest import NEAR_FASTEST
from sweetspot.config import Params
from sweetspot.fmt import fmt, sizes, table
from sweetspot.measure.machine import load_text
from sweetspot.report import advice, checks, compare
from sweetspot.report.answer import Answer
from sweetspot.report.figures import CAPTIONS
from sweetspot.report.firstscreen import grids, headline, interval
from sweetspot.report.question import data_paths, question_section
from sweetspot.sweep.sweep import REFINE_WINDOW
from sweetspot.train.networks import network_name


def markdown(answer: Answer, drawn: list[str]) -> str:
    """report.md, whole: the answer (`answer`, computed once: report/answer.py) in words, tables
    and the figures `drawn` (by name), then the race, the held-out checks and the advice."""
    params, spots, cells, timing = answer.params, answer.spots, answer.cells, answer.timing
    target, here, plan = answer.target, answer.here, answer.plan
    lines = [f"# Which batch size reaches the target fastest here? {params.data.dataset}, "
             f"{network_name(params.train)}", ""]
    check = (here or {}).get("self_check")
    if check and check["departs"]:
        lines += [f"**{checks.self_check_alarm(check)}**", ""]
    if timing.get("load") and timing["load"]["busy"]:
        lines += [f"**Measured on a busy machine.** While the seconds per step were measured, "
                  f"{load_text(timing['load'])}.", ""]
    lines += headline(answer)
    if plan:
        several = len(plan["coarse_near_best"]) > 1
        around = "; ".join(", ".join(map(str, near)) + (f" ({loader})" if several else "")
                           for loader, near in plan["coarse_near_best"].items())
        added = ", ".join(map(str, plan["batch_sizes"])) or "none"
        lines += [f"Refinement (automatic, as the answer prescribes): the grid's batch sizes whose "
                  f"first-seed estimate was within {REFINE_WINDOW:.0%} of the best were {around}, "
                  "so their 3x2^n neighbours, and the x3 neighbours of the answer's own grid pick, "
                  f"were added: {added}.", ""]
    lines += fairness(params, cells, target)
    lines += factors_section(spots[target]["per_batch"], target)
    lines += machine_factor(timing)
    lines += why(answer.cost, answer.noise, spots[target])
    lines += question_section((answer.advice or {}).get("question"), {
        **spots[target], "target": target}, params.sweep.max_epochs)
    lines += data_paths(answer.loaders, params.sweep.targets,
                        (answer.advice or {}).get("pipeline"))
    lines += final_section(answer.final)
    lines += checks.reproduced(here)
    lines += checks.validation_section(answer.validations)
    lines += [f"![{CAPTIONS[name]}](figures/{name}.png)" for name in drawn]
    lines += ["", *compare.section(answer.problems), "## Measured on", ""]
    lines += [f"- {k}: {v}" for k, v in answer.measured_on.items()]
    lines += ["", "Timings: training clock only (device synchronised, evaluation and warm-up "
              f"off the clock). Re-measure the seconds with `{checks.REMEASURE}`.", ""]
    lines += checks.race_section(answer.raced) + checks.heldout_section(answer.held)
    if answer.advice:
        lines += advice.section(answer.advice["claims"], target)
    return "\n".join(lines) + "\n"


def fairness(params: Params, cells: pd.DataFrame, target: float) -> list[str]:
    """How each batch size's rate was chosen, and what the budget cut off."""
    s = params.sweep
    rule = {"tuned": f"every rate of the grid, {grids(params)}, at every batch size, each batch "
                     "size taking the rate with the smallest median steps to the target",
            "fixed": f"the one rate {s.lrs[0]:g} at every batch size",
            "linear": f"{s.lrs[0]:g} at batch {s.ref_batch}, scaled linearly with the batch size",
            "sqrt": f"{s.lrs[0]:g} at batch {s.ref_batch}, scaled with the square root of the "
                    "batch size"}[s.lr_policy]
    censored = cells[cells["outcome"] != "reached"].sort_values(["batch_size", "lr", "seed"])
    lines = ["## What makes the comparison fair", "",
             f"Rates: {rule} (`sweep.lr_policy: {s.lr_policy}`). The rate is chosen by steps, not "
             "seconds: at a fixed batch size the seconds per step do not depend on it, and steps "
             "do not depend on the machine, so no burst of load can pick it. Seeds: "
             f"{', '.join(map(str, s.seeds))} everywhere, then "
             f"{', '.join(map(str, s.extra_seeds))} at each batch size's rate.",
             f"Budget: each run stops at {s.max_epochs} epochs ({s.extremes_max_epochs} for "
             f"batch sizes {sizes(s.extremes, s.extremes)}), or at its first evaluation at or "
             "above the highest target, never by the clock, so its steps are the same on any "
             "machine and under any load. A run the budget cuts off is censored: it counts as "
             "never reaching the target (infinitely slow), never dropped. "
             f"{len(censored) or 'No'} runs were cut off before {target:g}"
             + (", by batch size (most at rates the tuning did not choose):" if len(censored)
                else "."), ""]
    if len(censored):
        lines += table(["batch size", "rates", "runs cut off", "epochs"], "rlrr",
                       [[b, ", ".join(f"{lr:g}" for lr in sorted(set(g["lr"]))), len(g),
                         f"{g['epochs'].max():.0f}"] for b, g in censored.groupby("batch_size")])
        lines.append("")
    return lines


def timed(seconds: float) -> str:
    """A measured time: "-" where no run was timed here (NaN), "not reached" where censored."""
    return "-" if math.isnan(seconds) else fmt(seconds)


def factors_section(per_batch: pd.DataFrame, target: float) -> list[str]:
    lines = ["## The two factors, and the direct measurement beside them", "",
             *table(["batch size", "lr", f"steps to {target:g}", "reached", "µs per step",
                     "estimate (s)", "95% interval", "wins", "measured (s)",
                     "measured / estimate", "runs' µs per step", "runs' / estimate's",
                     "clock (s)"], "rrrlrrlrrrrrr",
                    [[r.batch_size, f"{r.lr:g}", fmt(r.median_steps, ".0f"),
                      f"{r.n_reached}/{r.n_runs}", f"{r.seconds_per_step * 1e6:.0f}",
                      fmt(r.estimate), interval(r.low, r.high), f"{r.share:.0%}", timed(r.measured),
                      fmt(r.ratio, ".2f", "-"), fmt(r.run_seconds, ".0f", "-", 1e6),
                      fmt(r.step_ratio, ".3f", "-"), timed(r.clock)]
                     for r in per_batch.itertuples()])]
    ratios = per_batch["ratio"].replace([math.inf], math.nan).dropna()
    steps = per_batch["step_ratio"].dropna()
    lines += ["", "Measured: each run's quiet time, its steps to the target x its own seconds per "
              "step, read as the estimate's are: the fastest of its first evaluation intervals, "
              "as many as the timing's rounds (each as long as a timing block), plus its fastest "
              "epoch start spread over an epoch's steps; so load from other processes moves it "
              "as little as the estimate; the median over the batch size's runs timed on the "
              "host and since the boot the seconds were measured on (others: -). Clock: the "
              "median of the runs' training clocks as they read, load and all."]
    if len(ratios):
        lines[-1] += (f" Measured over estimated: median {ratios.median():.2f} "
                      f"(range {ratios.min():.2f}-{ratios.max():.2f}).")
    if len(steps):
        lines[-1] += (f" The machine's factor alone, the runs' seconds per step over the "
                      f"estimate's: {steps.min():.3f}-{steps.max():.3f} over {len(steps)} batch "
                      f"sizes ({(steps - 1).abs().max():.1%} at most from equal).")
    return [*lines, ""]


def machine_factor(timing: dict) -> list[str]:
    """How the seconds per step were measured, why the fastest round, and how busy it was."""
    st = timing["steptime"]
    at_best = [v["at_best"] for v in timing.get("per_batch", {}).values() if "at_best" in v]
    best = (f" {sum(at_best) / len(at_best):.0%} of the rounds ran within "
            f"{NEAR_FASTEST - 1:.0%} of their batch size's fastest; the rest were slowed by "
            "something, seen in /proc/stat or not (on a virtual machine, a neighbour on the "
            "host)." if at_best else "")
    return ["## The machine's factor", "",
            f"Seconds per step: every batch size in {st['rounds']} short interleaved rounds "
            f"(blocks of at least {st['min_examples']} examples and {st['min_steps']} steps, "
            "each starting an epoch), and each batch size's fastest round. Load from other "
            "processes only ever adds time, so the fastest round is the one it touched least, "
            "and no share of loaded rounds moves it while one round is quiet (Chen & Revels "
            "2016; timeit and BenchmarkTools report the minimum too). The interval and the "
            "shares resample the rounds and take their fastest in the same way. While "
            f"measuring, {load_text(timing.get('load'))}.{best}", ""]


def why(cost: dict | None, noise: dict | None, spot: dict) -> list[str]:
    """The cost model's explanation, in words."""
    if not cost:
        return ["Too few batch sizes reached the target to fit the cost model.", ""]
    lines = ["## Why there", "",
             f"Steps to the target follow S(B) = S_min (1 + B_noise/B) with S_min = "
             f"{cost['s_min']:.0f} and B_noise = {cost['b_noise']:.0f}: below B_noise a bigger "
             "batch saves steps, above it mostly not. A step costs t(B) = t0 + c B with t0 = "
             f"{cost['t0'] * 1e6:.0f} µs (fixed per-step overhead) and c = "
             f"{cost['c'] * 1e6:.3f} µs per example. Their product is smallest at B* = "
             f"sqrt(B_noise t0 / c) = {cost['b_star']:.0f}, beside the estimated sweet spot "
             f"{spot['batch_size']}. Faster arithmetic (smaller c) moves B* up as 1/sqrt(c); "
             "less per-step overhead moves it down."]
    if noise and noise.get("averaged") is not None:
        lines.append(
            f"The gradient noise scale measured during training (B_simple, McCandlish et al. "
            f"2018) was {fmt(noise['early'], '.0f')} at the first evaluation and "
            f"{fmt(noise['averaged'], '.0f')} averaged over training (they report about 50 and "
            "900 for MNIST), against the fitted B_noise above.")
    return [*lines, ""]


def final_section(final: dict | None) -> list[str]:
    """The sweet spot's final model on the test set: its accuracy per class."""
    if not final:
        return []
    per_class = final["per_class"]
    worst = min(per_class, key=per_class.get)
    return ["## The final model", "",
            f"Batch {final['batch_size']}'s run at its rate, first seed (MLflow run "
            f"`{final['run_id']}`, whose model `mlflow.pytorch.load_model` loads), stopped at "
            f"the first evaluation at or above the highest target, with {final['accuracy']:.2%} "
            f"of the 10000 test images right. Its weakest class is {worst} "
            f"({per_class[worst]:.1%}); the confusion matrix (scikit-learn) is drawn below.", "",
            *table(["class", *map(str, per_class)], "l" * (len(per_class) + 1),
                   [["accuracy", *(f"{a:.1%}" for a in per_class.values())]]), ""]
