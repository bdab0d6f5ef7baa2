"""The answer's advice in the report: the three stages' documents and the answer in, each claim's
verdict (advice/claims.py, advice/ends.py), its figures and sweet_spot.json's part out (build);
then the claims in words: the section's table and the README's sentence (section, headline)."""

from __future__ import annotations

import json
import math
import statistics

from sweetspot import paths
from sweetspot.advice import claims, ends, floors
from sweetspot.advice.claims import HOLDS, NOT, PART, UNTESTED
from sweetspot.answer import analysis, estimate, fastest
from sweetspot.config import Params
from sweetspot.fmt import fmt, sizes, table
from sweetspot.report import advice_figures

NAMES = ("time_per_epoch", "batch_1", "whole_batch", "single_image", "extremes", "memory",
         "processors", "blocks", "procedure", "neighbours")  # in the answer's order


def build(params: Params, results: list[dict], per_loader: dict, target: float,
          cost: dict | None, steps, undecided: list[int]) -> dict:
    """Every claim's verdict from this machine's data: `per_loader` the answer of each data path
    steptime measured ({loader: {target: spot}}; the first the headline), `cost` its cost model
    (t0, c), `steps` the steps table (estimate.steps_table), `undecided` the region's members the
    race left undecided. The question's pipeline is answered at its best split here, from the
    cores stage's seconds and the sweep's steps, beside num_workers=0 (steptime's torchvision)."""
    cores, memory, blocks = (json.loads(p.read_text())
                             for p in (paths.CORES, paths.MEMORY, paths.BLOCKS))
    question, pipeline = (json.loads(p.read_text()) if p.exists() else None
                          for p in (paths.QUESTION, paths.PIPELINE))
    s = params.sweep
    spot = per_loader[s.loaders[0]][target]
    per_batch = spot["per_batch"]
    spot_question = per_loader.get("torchvision", {}).get(target)
    spot_best = spot_question  # the best split no faster than the question's beyond the spread
    if cores["best_split"]:
        spot_best = estimate.answers(results, fastest.round_seconds(cores["best_split"]),
                                     [target], s.resamples, runs=[])[target]
    found = floors.floors(memory)
    replayed = claims.replay(per_batch, params.train.n_train, spot, undecided)
    spread = (spot["high"] - spot["low"]) / 2 / spot["estimate"]  # the seeds' and rounds'
    verdict = claims.block_verdict(
        {int(b): v["rounds"] for b, v in blocks["steptime"]["per_batch"].items()},
        [tuple(c) for c in blocks["centres"]], s.resamples, spread)
    judged = dict(zip(NAMES, [
        claims.time_per_epoch(per_batch, spot, params.train.n_train, s.max_epochs),
        ends.batch_one(per_batch, spot, s.extremes_max_epochs, censored(results, params)),
        ends.whole_batch(per_batch, spot, question, target),
        ends.single_image(steps, spot, target),
        ends.extremes(per_batch, spot, question, target, s.max_epochs),
        claims.memory(found, cost, spot),
        claims.processors(cores, spot_best, spot_question), verdict,
        claims.advised_procedure(replayed, spot, params.race.margin),
        claims.neighbours(per_batch, spot, undecided)], strict=True))
    drawn = {"advice_memory": advice_figures.memory(found),
             "advice_cores": advice_figures.cores(cores),
             "advice_blocks": advice_figures.blocks(blocks, verdict)}
    best = {**cores["best"], "speedup": cores["speedup"]}
    if spot_best:
        best.update(batch_size=spot_best["batch_size"], time_to_target=spot_best["estimate"])
    doc = {"verdicts": {name: v["verdict"] for name, v in judged.items()},
           "replay": {k: replayed.get(k) for k in ("grid_best", "best", "ratio", "in_region")},
           "best_split": best, "blocks": verdict["verdict"],
           "memory": {k: found[k] for k in ("stops_falling", "t0_floor", "c_floor")}}
    return {"claims": judged, "figures": drawn, "doc": doc, "question": question,
            "pipeline": pipeline}


def censored(results: list[dict], params: Params) -> list[str]:
    """The small end's runs (sweep.extremes) that did not reach the headline target in their
    budget, by cell name."""
    target = params.sweep.targets[0]
    return sorted(r["name"] for r in results if r["batch_size"] in params.sweep.extremes
                  and not analysis.time_to_target(r.get("curve") or [], target)["reached"])


# --- the claims in words: each claim's (what the answer says, in its words, quoted, or closely
# paraphrased in brackets; the test; this machine's numbers), beside its verdict and figure

def _sizes(spot: dict) -> str:
    """A region as the set it is (fmt.sizes) among the batch sizes the estimate has."""
    return sizes([r["batch_size"] for r in spot["region"]], spot["per_batch"]["batch_size"])


def _many(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _split(best: dict, joint: str = " and ") -> str:
    """A split of the CPUs: "2 loader workers and 1 thread"."""
    return f"{_many(best['workers'], 'loader worker')}{joint}{_many(best['threads'], 'thread')}"


def time_per_epoch(v: dict) -> tuple[str, str, str]:
    reach = (f"reaches the target in {fmt(v['ratio'], '.1f')}x the spot's time"
             if math.isfinite(v["ratio"]) else
             f"does not reach the target in {v['max_epochs']} epochs")
    return ("\"you are measuring execution time per epoch, rather than total Time-to-Train\"",
            "each batch size's epoch (steps x seconds per step) against its time to the target",
            f"the fastest epoch is batch {v['fast']}'s ({fmt(v['epoch'])} s, the spot "
            f"{v['spot']}'s {fmt(v['spot_epoch'])} s); batch {v['fast']} {reach}")


def batch_1(v: dict) -> tuple[str, str, str]:
    said = "\"a batch size of 1 is almost guaranteed to be sub-optimal\""
    if v["verdict"] == UNTESTED:
        return said, "batch 1 as a cell", "not trained (sweep.extremes lacks 1)"
    budget = v["budget"]
    stopped = (f"; {v['stopped']} runs at rates not chosen stopped short in {budget} epochs"
               if v["stopped"] else "")
    return (said, f"batch sizes below the region trained like the grid ({budget} epochs for the "
            "small end, the grid's budget above it), steps x seconds",
            "; ".join(f"{b}: {fmt(t)} s ({fmt(ratio, '.1f')}x)" if math.isfinite(t) else
                      f"{b}: not in {budget} epochs" for b, t, ratio in v["below"]) + stopped)


def whole_batch(v: dict) -> tuple[str, str, str]:
    numbers = (f"to {v['target']:g}, batch {v['largest']} (the largest to reach it) sees "
               f"{fmt(v['examples'], '.1f')}x the examples the spot {v['spot']} sees, in "
               f"{fmt(v['steps'], '.2f')}x its steps")
    if q := v["question"]:
        numbers = (f"the question's run at {q['n_train']}: {q['test_acc']:.1%} after "
                   f"{q['epoch']} epochs ({q['epoch']} steps); {numbers}")
    return ("\"[batch 60000] tends to lose the learning you can get from focusing on little-seen "
            "features\"", "the question's run at the whole set (lr 0.1), and the examples seen "
            "to the target (steps x batch size) against the spot's; why (little-seen features) "
            "is not tested apart", numbers)


def single_image(v: dict) -> tuple[str, str, str]:
    test = (f"the spread of steps to the target over seeds {', '.join(map(str, v['seeds']))} "
            "(range over median), batch 1 against the spot, each at its rate; the \"too much "
            "weight to the first few images\" is not tested apart")
    one, mine = v.get("one"), v.get("mine")
    numbers = ({"batch 1": "batch 1 not trained",
                "steps": "steps missing at batch 1 or the spot"}[v["lacks"]] if not one else
               f"batch 1: {fmt(one['low'], '.0f')}-{fmt(one['high'], '.0f')} steps "
               f"({fmt(one['spread'], '.0%')} of the median); the spot {v['spot']}: "
               f"{fmt(mine['low'], '.0f')}-{fmt(mine['high'], '.0f')} "
               f"({fmt(mine['spread'], '.0%')}): {fmt(v['ratio'], '.1f')}x")
    return "\"[batch 1] tends to over-emphasize individual effects\"", test, numbers


def extremes(v: dict) -> tuple[str, str, str]:
    parts = [f"batch 1 takes {fmt(v['ratio'], '.1f')}x the spot's time"
             if math.isfinite(v["ratio"]) else "batch 1 not trained"]
    if q := v["question"]:
        parts.append(f"batch {q['n_train']} (the question's run) is at {q['test_acc']:.1%} after "
                     f"{q['epoch']} epochs")
    if v["censored"]:
        parts.append(f"{' and '.join(map(str, v['censored']))} never reach {v['target']:g} in "
                     f"{v['max_epochs']} epochs")
    return ("\"Either of these approaches is an extreme case, usually absurd in application\"",
            "batch 1's time to the target over the spot's; the whole set in one batch in the "
            "question's run", "; ".join(parts))


def memory(v: dict) -> tuple[str, str, str]:
    found, cost = v["found"], v["cost"]
    rows = {r["batch_size"]: r for r in found["rows"]}
    first, stop = rows[min(rows)], rows[found["stops_falling"]]
    jumps = "; ".join(f"+{fmt(j['rise'], '.0%')} from {j['from']} to {j['to']} (into "
                      f"{j['level']})" for j in found["jumps"]) or (
        "none above 5% where the working set leaves a level")
    fitted = ""
    if cost:
        t0, c = cost["t0"], cost["c"]
        fitted = (f"; t0 {fmt(t0 * 1e6)} µs, {fmt(t0 / found['t0_floor'], '.1f')}x its floor, "
                  f"c {fmt(c * 1e6)} µs, {fmt(c / found['c_floor'], '.1f')}x its")
    return ("\"you want to be able to ingest the entire batch into memory at once [...] If you "
            "under-use the memory, you leave some potential performance untapped\"",
            "µs per example from batch 1 up, beside the working set, the cache sizes and the "
            "step's arithmetic and memory floors",
            f"in the memory stage's rounds, {fmt(first['us_per_example'])} µs an example at "
            f"batch {first['batch_size']}, falling to within 10% of its lowest "
            f"({fmt(found['lowest'])} µs) at {found['stops_falling']} (working set "
            f"{fmt(stop['working_set'] / 2**20)} MiB, {stop['level']}); jumps: {jumps}{fitted}")


def processors(v: dict) -> tuple[str, str, str]:
    cores, spot_best, spot_question = v["cores"], v["spot_best"], v["spot_question"]
    best = cores["best"]

    def spread(speedup):
        return ", ".join(f"batch {b}: {fmt(s['speedup'], '.2f')}x fastest round against fastest "
                         f"(round by round, quartiles {fmt(s['q1'], '.2f')}-"
                         f"{fmt(s['q3'], '.2f')})" for b, s in speedup.items())

    answer = ""
    if spot_best and spot_question and spot_best is not spot_question:
        answer = (f"; to the target: spot {spot_best['batch_size']} in "
                  f"{fmt(spot_best['estimate'])} s, region {_sizes(spot_best)}, against spot "
                  f"{spot_question['batch_size']} in {fmt(spot_question['estimate'])} s, region "
                  f"{_sizes(spot_question)}, with no loader worker")
    if not best["beyond"]:
        answer = "; within the rounds' spread of the question's own split (1 thread, no worker)"
    tensor = cores["tensor_threads"]
    return ("\"if you're on a multi-processor chip, you want to keep them all busy\" [some on the "
            "model, some on I/O: 28 of 32 cores in the answer's project]",
            "both paths at every split of the CPUs (the question's pipeline: loader workers x "
            "torch threads; the tensor path: threads), interleaved rounds; a 2-CPU machine "
            "cannot test a reserve like 4 of 32 cores",
            f"the question's pipeline: best of {len(cores['splits'])} splits on {cores['cpus']} "
            f"CPUs, {_split(best)}, {spread(cores['speedup'])}{answer}; the tensor path: its "
            f"fastest round on {_many(tensor['best'], 'thread')}, "
            f"{spread(tensor.get('speedup', {})) or 'no other timed'}")


def blocks(v: dict) -> tuple[str, str, str]:
    (powers_by_one, threes_by_one), powers, threes = v["by_one"], v["powers"], v["threes"]
    return ("\"a batch size that is 2^n or 3 * 2^n for some n, works best, simply because of "
            "block sizes\"", "seconds per step at 2^n and 3*2^(n-1) against the line through "
            "their neighbours at +-1 (odd) and +-8 (multiples of 8), interleaved rounds; a "
            "verdict only beyond the rounds' spread and the seeds' spread",
            f"beside odd sizes (+-1), which any multiple of 8 beats, a power of two is faster at "
            f"{powers_by_one} of {powers} powers and 3*2^(n-1) at {threes_by_one} of {threes}; "
            f"beside multiples of 8 (+-8), at {v['faster']} of {powers} and "
            f"{v['threes_by_eight']} of {threes}; the largest effect beside multiples of 8 "
            f"{fmt(v['largest'], '+.1%')}, against the seeds' spread of time to the target "
            f"{fmt(v['spread'], '.0%')}")


def procedure(v: dict) -> tuple[str, str, str]:
    found, spot = v["replay"], v["spot"]
    said = ("\"start with a power of 2 that is roughly the square root of the training set size "
            "[...] 64, 128, 256, 512, and 1024 [...] one step of refinement, using that factor "
            "of 3\"")
    test = (f"the procedure replayed on the estimates (grid {sizes(found['grid'], found['grid'])}"
            f"), against the region's members the race decided and its {v['margin']:.0%} margin")
    if found["best"] is None:
        return said, test, "no batch size of its grid reached the target"
    missing = f"; {found['missing']} untrained" if found["missing"] else ""
    where = ("in the region but undecided in the race" if found["undecided"] else
             "a decided member of the region" if found["in_region"] else "outside the region")
    return (said, test, f"the grid's best {found['grid_best']}, then "
            f"{' and '.join(map(str, found['neighbours']))}: it picks {found['best']} at "
            f"{fmt(found['estimate'])} s, {fmt(found['ratio'], '.2f')}x the spot "
            f"{spot['batch_size']}'s, {where} ({_sizes(spot)}){missing}")


def neighbours(v: dict) -> tuple[str, str, str]:
    return ("\"You will likely see very little difference between your 'sweet spot' and the "
            "adjacent batch sizes\"", "the spot's neighbours' estimates over the spot's, and the "
            "region's decided members",
            ", ".join(f"{b}: {fmt(ratio, '.2f')}x ({status})" for b, ratio, status in v["beside"]))


WORDS = {"time_per_epoch": (time_per_epoch, "epoch_vs_target"), "batch_1": (batch_1, "two_factors"),
         "whole_batch": (whole_batch, "steps_to_target"),
         "single_image": (single_image, "steps_to_target"), "extremes": (extremes, "two_factors"),
         "memory": (memory, "advice_memory"), "processors": (processors, "advice_cores"),
         "blocks": (blocks, "advice_blocks"), "procedure": (procedure, "two_factors"),
         "neighbours": (neighbours, "steps_to_target")}  # each claim's words and its figure


def headline(judged: dict, target: float) -> str:
    """The README's sentence: how many claims hold here, and the question's pipeline at its best
    split (the processors claim's)."""
    counts = {v: sum(c["verdict"] == v for c in judged.values()) for v in (HOLDS, PART, NOT)}

    def hold(n, verb):  # 1 holds, 2 hold; 1 does not, 2 do not
        return f"{n} {verb if n == 1 else {'holds': 'hold', 'does': 'do'}[verb]}"

    text = (f"Of the accepted answer's {sum(counts.values())} claims tested here, "
            f"{hold(counts[HOLDS], 'holds')}, {hold(counts[PART], 'holds')} in part and "
            f"{hold(counts[NOT], 'does')} not")
    cpus = judged["processors"]
    cores, spot_best, spot_question = cpus["cores"], cpus["spot_best"], cpus["spot_question"]
    best = cores["best"]
    if spot_best and spot_question and spot_best is spot_question:
        speedup = statistics.geometric_mean(v["speedup"] for v in cores["speedup"].values())
        text += (f"; no split of the CPUs between DataLoader workers and torch threads makes the "
                 f"question's pipeline faster beyond the rounds' spread (the best, {_split(best)}, "
                 f"{fmt(speedup, '.2f')}x in geometric mean over the batch sizes timed), so its "
                 f"answer stays {fmt(spot_question['estimate'])} s at batch "
                 f"{spot_question['batch_size']}")
    elif spot_best and spot_question:
        text += (f"; the question's pipeline at its best split ({_split(best, ', ')}) reaches "
                 f"{target:.0%} in {fmt(spot_best['estimate'])} s at batch "
                 f"{spot_best['batch_size']}, against "
                 f"{fmt(spot_question['estimate'])} s with no loader worker")
    return text + "."


def section(judged: dict, target: float) -> list[str]:
    """The report's section on the advice: the README's sentence, then a row per claim."""
    return ["## The answer's advice, tested here", "",
            "The accepted answer to the StackOverflow question (README) gives advice a reader "
            "will act on. Each of its claims in its own words (brackets: paraphrased), the test "
            "run on this machine, its numbers and the verdict (docs/advice.md says how each is "
            "measured).", "", headline(judged, target), "",
            *table(["the answer says", "test", "this machine", "verdict", "figure"], "lllll",
                   [[*WORDS[name][0](v), f"**{v['verdict']}**",
                     f"[{WORDS[name][1]}](figures/{WORDS[name][1]}.png)"]
                    for name, v in judged.items()])]
