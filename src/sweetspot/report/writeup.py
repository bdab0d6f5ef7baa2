"""The text of reports/report.md: the answer, what made the comparison fair, the two factors beside
the direct measurement, why the spot sits there, and the validation on other stacks. Pure: the
report's numbers in, Markdown out."""

from __future__ import annotations

import math
import statistics

import pandas as pd

from sweetspot.advice import claims
from sweetspot.answer.estimate import REGION_RULE
from sweetspot.answer.fastest import NEAR_FASTEST
from sweetspot.check import heldout
from sweetspot.config import Params
from sweetspot.fmt import fmt, sizes, table
from sweetspot.measure.machine import load_text
from sweetspot.report import compare
from sweetspot.report.answer import Answer
from sweetspot.report.checks import reproduced, self_check_alarm, validation_section
from sweetspot.report.figures import CAPTIONS
from sweetspot.sweep import race
from sweetspot.sweep.sweep import REFINE_WINDOW
from sweetspot.train.networks import network_name, network_slug


def interval(low, high) -> str:
    if low is None or not math.isfinite(low):
        return "-"
    return f"{low:.2f}-{fmt(high, '.2f', 'inf')}"


def markdown(answer: Answer, drawn: list[str]) -> str:
    """report.md, whole: the answer (`answer`, computed once: report/answer.py) in words, tables
    and the figures `drawn` (by name), then the race, the held-out checks and the advice."""
    params, spots, cells, timing = answer.params, answer.spots, answer.cells, answer.timing
    target, here, plan = answer.target, answer.here, answer.plan
    lines = [f"# Which batch size reaches the target fastest here? {params.data.dataset}, "
             f"{network_name(params.train)}", ""]
    check = (here or {}).get("self_check")
    if check and check["departs"]:
        lines += [f"**{self_check_alarm(check)}**", ""]
    if timing.get("load") and timing["load"]["busy"]:
        lines += [f"**Measured on a busy machine.** While the seconds per step were measured, "
                  f"{load_text(timing['load'])}.", ""]
    lines += headline(answer)
    if plan:
        around = ", ".join(f"{near} ({loader})" for loader, near in
                           plan["coarse_near_best"].items())
        lines += [f"Refinement (automatic, as the answer prescribes): the coarse batch sizes "
                  f"estimated within {REFINE_WINDOW:.0%} of the best were {around}, so their "
                  f"3x2^n neighbours {plan['batch_sizes'] or 'none'} were added.", ""]
    lines += fairness(params, spots[target]["per_batch"], cells, target)
    lines += factors_section(spots[target]["per_batch"], cells, target)
    lines += machine_factor(timing)
    lines += why(answer.cost, answer.noise, spots[target])
    lines += question_section((answer.advice or {}).get("question"), {
        **spots[target], "target": target}, params.sweep.max_epochs)
    lines += data_paths(answer.loaders, params.sweep.targets,
                        (answer.advice or {}).get("pipeline"))
    lines += final_section(answer.final)
    lines += reproduced(here)
    lines += validation_section(answer.validations)
    lines += [f"![{CAPTIONS[name]}](figures/{name}.png)" for name in drawn]
    lines += ["", *compare.section(answer.problems), "## Measured on", ""]
    lines += [f"- {k}: {v}" for k, v in answer.measured_on.items()]
    lines += ["", "Timings: training clock only (device synchronised, evaluation and warm-up "
              "off the clock). Re-measure the seconds with `dvc repro -f -s steptime && dvc "
              "repro`.", ""]
    if answer.raced:
        lines += race.section(answer.raced)
    lines += heldout.section(answer.held)
    return "\n".join(lines) + "\n" + (answer.advice or {}).get("markdown", "")


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
        f"at 0.1; each batch size's rate is the one of "
        f"{', '.join(f'{lr:g}' for lr in answer.params.sweep.lrs)} that "
        f"reaches the target in the fewest steps). {region_members(spot)}",
        f"Its spot, **batch size {spot['batch_size']}**, wins {spot['share']:.0%} of the resamples "
        f"of seeds and timing rounds and reaches {targets[0]:g} test accuracy in "
        f"**{spot['estimate']:.2f} s** of training, estimated as {spot['median_steps']:.0f} steps "
        f"(median over seeds) x {spot['seconds_per_step'] * 1e6:.0f} µs per step (the fastest "
        f"timing round), 95% interval {spot['low']:.2f}-{spot['high']:.2f} s. Measured directly, "
        f"its runs took {fmt(here['measured'])} s (median of their quiet times), "
        f"{fmt(here['ratio'], '.2f', '-')}x the estimate; by measured time alone the fastest was "
        f"batch {spot['direct']}.", certainty(answer), ""]
    lines += [" ".join(filter(None, [pipeline_sentence(answer), epoch_sentence(answer)])), ""]
    if len(targets) > 1:
        lines += table(["target", "sweet region", "spot", "seconds (estimate)", "95% interval",
                        "wins"], "lrrrlr",
                       [[f"{t:g}", region_text(spots[t]) if spots[t]["batch_size"] else "-",
                         spots[t]["batch_size"], fmt(spots[t].get("estimate")),
                         interval(spots[t].get("low"), spots[t].get("high")),
                         fmt(spots[t].get("share"), ".0%", "-")] for t in targets])
        lines.append("")
    return lines


def rates(rows: pd.DataFrame, spot: dict) -> str:
    """The region's learning rates: "learning rate 1" where they share one, else each."""
    region = rows[rows["batch_size"].isin([r["batch_size"] for r in spot["region"]])]
    found = sorted(set(region["lr"]))
    if len(found) == 1:
        return f"learning rate {found[0]:g}"
    return "learning rates " + ", ".join(f"{r.lr:g} ({int(r.batch_size)})"
                                         for r in region.itertuples())


def certainty(answer: Answer) -> str:
    """What the race left undecided, and what fresh seeds said: in one sentence each."""
    told = []
    open_ = race.undecided(answer.raced)
    if open_:
        told.append(f"The race left {', '.join(map(str, open_))} undecided (in the region, but "
                    "its seeds allow it more than the race's margin slower).")
    own = [d for d in answer.held if (d["dataset"], d["network"]) == (
        answer.params.data.dataset, network_slug(answer.params.train))]
    region = sorted(r["batch_size"] for r in answer.spots[answer.target]["region"])
    for doc in own:
        asked = doc["answer"]
        if (asked["spot"], sorted(asked["region"])) != (
                answer.spots[answer.target]["batch_size"], region):
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
    text = (f"Through the question's own pipeline (its DataLoader and its eager autograd step) "
            f"the same steps take {spot['estimate'] / ours['estimate']:.1f}x as long (batch "
            f"{spot['batch_size']}: {spot['estimate']:.2f} s)")
    parts = ((answer.advice or {}).get("pipeline") or {}).get("per_batch", {})
    at = parts.get(str(ours["batch_size"]))
    if at:
        text += (f". Of its step at batch {ours['batch_size']}, the DataLoader adds "
                 f"{at['loader_share']:.0%} and the eager step {at['step_share']:.0%} to the "
                 f"tensor path's engine step (alone, {at['loader']:.1f}x and {at['step']:.1f}x "
                 "it; [taken apart](#the-questions-own-data-pipeline))")
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
    question = (answer.advice or {}).get("question")
    if question:
        one, whole = (question["runs"][k]["epochs"] for k in ("1", str(question["n_train"])))
        text += (f" The question's own run, here: batch 1 takes {one[0]['epoch_time']:.0f} s an "
                 f"epoch and is at {one[0]['test_acc']:.1%} after one; batch "
                 f"{question['n_train']} takes {whole[0]['epoch_time']:.1f} s and is at "
                 f"{whole[-1]['test_acc']:.1%} after {whole[-1]['epoch']} "
                 "([the question's table](#the-questions-own-run)).")
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


def fairness(params: Params, per_batch: pd.DataFrame, cells: pd.DataFrame,
             target: float) -> list[str]:
    """How each batch size's rate was chosen, and what the budget cut off."""
    s = params.sweep
    rule = {"tuned": f"every rate of the grid {list(s.lrs)} at every batch size, each batch "
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
             f"{list(s.seeds)} everywhere, then {list(s.extra_seeds)} at each batch size's rate.",
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


def factors_section(per_batch: pd.DataFrame, cells: pd.DataFrame, target: float) -> list[str]:
    lines = ["## The two factors, and the direct measurement beside them", "",
             f"| batch size | lr | steps to {target:g} | reached | µs per step | "
             "estimate (s) | 95% interval | wins | measured (s) | measured / estimate | "
             "clock (s) |",
             "|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in per_batch.itertuples():
        lines.append(f"| {r.batch_size} | {r.lr:g} | {fmt(r.median_steps, '.0f')} | "
                     f"{r.n_reached}/{r.n_runs} | {r.seconds_per_step * 1e6:.0f} | "
                     f"{fmt(r.estimate)} | {interval(r.low, r.high)} | {r.share:.0%} | "
                     f"{fmt(r.measured)} | {fmt(r.ratio, '.2f', '-')} | {fmt(r.clock)} |")
    ratios = per_batch["ratio"].replace([math.inf], math.nan).dropna()
    lines += ["", "Measured: each run's quiet time, its steps to the target x its own fastest "
              "seconds per step between two evaluations, plus its fastest epoch start per epoch "
              "begun, so load from other processes moves it as little as the estimate; the "
              "median over the batch size's runs. Clock: the median of the runs' training "
              "clocks as they read, load and all."]
    if len(ratios):
        lines[-1] += (f" Measured over estimated: median {ratios.median():.2f} "
                      f"(range {ratios.min():.2f}-{ratios.max():.2f}).")
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
    lines = [
        "## Why there",
        "",
        f"Steps to the target follow S(B) = S_min (1 + B_noise/B) with S_min = "
        f"{cost['s_min']:.0f} and B_noise = {cost['b_noise']:.0f}: below B_noise a bigger "
        "batch saves steps, above it mostly not. A step costs t(B) = t0 + c B with t0 = "
        f"{cost['t0'] * 1e6:.0f} µs (fixed per-step overhead) and c = {cost['c'] * 1e6:.3f} µs "
        f"per example. Their product is smallest at B* = sqrt(B_noise t0 / c) = "
        f"{cost['b_star']:.0f}, beside the estimated sweet spot {spot['batch_size']}. Faster "
        "arithmetic (smaller c) moves B* up as 1/sqrt(c); less per-step overhead moves it down.",
    ]
    if noise and noise.get("averaged") is not None:
        lines.append(
            f"The gradient noise scale measured during training (B_simple, McCandlish et al. "
            f"2018) was {fmt(noise['early'], '.0f')} at the first evaluation and "
            f"{fmt(noise['averaged'], '.0f')} averaged over training (they report about 50 and "
            "900 for MNIST), against the fitted B_noise above.")
    return [*lines, ""]


def data_paths(loaders: dict, targets, pipeline: dict | None = None) -> list[str]:
    """The answer for each data path steptime measured: the same steps x each path's seconds,
    and the cost model of each."""
    if len(loaders) < 2:
        return []
    lines = ["## The question's own data pipeline", "",
             "The steps to a target do not depend on the data path, so each path's answer is "
             "the sweep's steps x that path's seconds per step, measured by steptime in the "
             "same interleaved rounds.", "",
             "| data path | target | sweet region | spot | seconds (estimate) | 95% interval |",
             "|---|---:|---|---:|---:|---|"]
    for name, path in loaders.items():
        for t in targets:
            spot = path["spots"][t]
            region = region_text(spot) if spot["batch_size"] is not None else "-"
            lines.append(f"| {name} | {t:g} | {region} | {spot['batch_size']} | "
                         f"{fmt(spot.get('estimate'))} | "
                         f"{interval(spot.get('low'), spot.get('high'))} |")
    lines += ["", "| data path | t0 (µs per step) | c (µs per example) | B_noise | "
              "B* = sqrt(B_noise t0 / c) | spot |", "|---|---:|---:|---:|---:|---:|"]
    for name, path in loaders.items():
        m, spot = path["cost"], path["spots"][targets[0]]
        if m:
            lines.append(f"| {name} | {m['t0'] * 1e6:.0f} | {m['c'] * 1e6:.2f} | "
                         f"{m['b_noise']:.0f} | {m['b_star']:.0f} | {spot['batch_size']} |")
    (first, base), *others = loaders.items()
    dearer = [f"the {name} path's t0 is {m['t0'] / base['cost']['t0']:.1f}x and its c "
              f"{m['c'] / base['cost']['c']:.1f}x the {first} path's"
              for name, m in ((n, p["cost"]) for n, p in others) if m and base["cost"]]
    return [*lines, "", f"Per step, {'; '.join(dearer) or 'no cost model to compare'}: B* "
            "moves with sqrt(t0 / c).", "", *pipeline_parts(pipeline)]


def pipeline_parts(pipeline: dict | None) -> list[str]:
    """The question's pipeline taken apart (advice/pipeline.py): its DataLoader and its eager
    step, each alone on the tensor path's engine."""
    if not pipeline:
        return []
    rows = pipeline["per_batch"]

    def us(v):
        return f"{v * 1e6:.0f}"

    dearer = sum(v["loader"] > v["step"] for v in rows.values())
    return ["The question's pipeline taken apart (the `pipeline` stage): seconds per step of the "
            "four stacks in the same interleaved rounds, the fastest round each, and each one's "
            "factor over the tensor path with the engine's step. The question's DataLoader "
            "converts every image in Python; its step is autograd's, with torch.optim.", "",
            *table(["batch size", "tensor, engine (µs)", "tensor, eager (µs)",
                    "DataLoader, engine (µs)", "DataLoader, eager: the question's (µs)",
                    "DataLoader alone", "eager step alone", "both"], "rrrrrrrr",
                   [[b, us(v["seconds"]["tensor exact"]), us(v["seconds"]["tensor eager"]),
                     us(v["seconds"]["torchvision exact"]), us(v["seconds"]["torchvision eager"]),
                     f"{v['loader']:.2f}x", f"{v['step']:.2f}x", f"{v['total']:.2f}x"]
                    for b, v in rows.items()]), "",
            f"The DataLoader alone costs more than the eager step alone at {dearer} of "
            f"{len(rows)} batch sizes. Of the question's step, the DataLoader adds "
            + ", ".join(f"{v['loader_share']:.0%}" for v in rows.values())
            + " and the eager step " + ", ".join(f"{v['step_share']:.0%}" for v in rows.values())
            + f" at batch sizes {', '.join(rows)}.", ""]


def question_section(question: dict | None, spot: dict, max_epochs: int) -> list[str]:
    """The question's own run here, beside the figures it printed (train/question.py)."""
    if not question:
        return []
    from sweetspot.train.question import ASKED

    n, runs = question["n_train"], question["runs"]
    one, whole = runs["1"]["epochs"], runs[str(n)]["epochs"]
    asked = {1: ASKED[1], n: ASKED[60000]} if n == 60000 else {}

    def cell(b, i, k):  # ours, then the question's (seconds, accuracy) where it printed them
        rows = asked.get(b, [])
        return f"{rows[i][k]:g}" if i < len(rows) else "-"

    where = question["provenance"]
    lines = ["## The question's own run", "",
             f"The question's setup run here (the `question` stage): its MLP, its DataLoader and "
             f"eager step, SGD at lr {question['lr']:g}, batch 1 and then the whole training set "
             f"in one batch, {question['epochs']} epochs each, evaluated once an epoch, beside the "
             f"figures the question printed. Seconds here are the training clock only (the "
             f"question's included its test pass), on {where['cpu_model']} with "
             f"{where['torch_threads']} torch thread.", "",
             *table(["epoch", "batch 1: s", "the question's", "test accuracy", "the question's",
                     f"batch {n}: s", "the question's", "test accuracy", "the question's"],
                    "rrrrrrrrr",
                    [[r["epoch"], f"{r['epoch_time']:.1f}", cell(1, i, 0),
                      f"{r['test_acc']:.4f}", cell(1, i, 1), f"{w['epoch_time']:.2f}",
                      cell(n, i, 0), f"{w['test_acc']:.4f}", cell(n, i, 1)]
                     for i, (r, w) in enumerate(zip(one, whole, strict=True))]), ""]
    ratio = statistics.median(r["epoch_time"] for r in one) / statistics.median(
        w["epoch_time"] for w in whole)
    lines += [f"Per epoch the whole-set batch is {ratio:.0f}x cheaper than batch 1, as the "
              "question found. But an epoch is "
              f"{n} steps at batch 1 and one at batch {n}: after {len(whole)} epochs the "
              f"whole-set batch has taken {len(whole)} steps at lr {question['lr']:g} and is at "
              f"{whole[-1]['test_acc']:.1%}, while batch 1 was at {one[0]['test_acc']:.1%} after "
              "its first. Time per epoch measures the cost of a pass over the data, not of "
              "learning; the right measure is the time to a target accuracy, at a rate fair to "
              f"each batch size: the answer above, where batch {spot['batch_size']} reaches "
              f"{spot['target']:g} in {spot['estimate']:.2f} s and no batch size above "
              f"{_largest_reaching(spot)} does within {max_epochs} epochs.", ""]
    return lines


def _largest_reaching(spot: dict) -> int:
    rows = spot["per_batch"]
    return int(rows[rows["estimate"].map(math.isfinite)]["batch_size"].max())


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
            "| class | " + " | ".join(str(c) for c in per_class) + " |",
            "|---" * (len(per_class) + 1) + "|",
            "| accuracy | " + " | ".join(f"{a:.1%}" for a in per_class.values()) + " |", ""]
