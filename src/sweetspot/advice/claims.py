"""The answer's advice as claims, each with its test, this machine's numbers and a verdict: holds,
holds in part, does not hold here. Pure: documents and tables in, rows and sentences out; the
report stage renders them (`section`) and the README's headline takes `headline`."""

from __future__ import annotations

import math
import statistics

import numpy as np

from sweetspot.answer import procedure
from sweetspot.fmt import fmt, sizes

HOLDS, PART, NOT, UNTESTED = "holds", "holds in part", "does not hold here", "not tested here"
MEANINGFUL = 0.02  # a per-example difference under 2% between neighbours is none worth choosing


# --- block sizes ---------------------------------------------------------------------------------

def block_verdict(per_round: dict[int, list[float]], centres: list[tuple[str, int]],
                  resamples: int, seed: int = 0) -> dict:
    """For each centre c (a power of two, or 3*2^(n-1)) with both neighbours timed: the effect,
    how much more an example costs at c-1 and c+1 (their mean) than at c, from each size's
    fastest round, and its 5-95% interval over resampled rounds (aligned, so paired). Faster:
    the interval above 0 and the effect above MEANINGFUL; slower: the mirror; else no
    difference. The claim holds where powers of two are faster at most of their centres."""
    rng = np.random.default_rng(seed)
    n_rounds = len(next(iter(per_round.values())))
    picks = rng.integers(0, n_rounds, size=(resamples, n_rounds))
    out = []
    for kind, c in centres:
        if not {c - 1, c, c + 1} <= set(per_round):
            continue
        below, at, above = (np.asarray(per_round[b]) / b for b in (c - 1, c, c + 1))  # per example
        point = float(_effect(below, at, above, np.arange(n_rounds)))
        low, high = (float(v) for v in np.quantile(_effect(below, at, above, picks), [0.05, 0.95]))
        verdict = ("faster" if low > 0 and point > MEANINGFUL else
                   "slower" if high < 0 and point < -MEANINGFUL else "no difference")
        out.append({"kind": kind, "size": c, "effect": point, "low": low, "high": high,
                    "verdict": verdict})
    powers = [r for r in out if r["kind"] == "2^n"]
    faster = sum(r["verdict"] == "faster" for r in powers)
    threes = sum(r["verdict"] == "faster" for r in out if r["kind"] != "2^n")
    verdict = HOLDS if faster > len(powers) / 2 else PART if faster or threes else NOT
    sizes = ", ".join(str(r["size"]) for r in out if r["verdict"] == "faster") or "none"
    sentence = (f"a power of two steps faster per example than both its neighbours at {faster} of "
                f"{len(powers)} powers, 3*2^(n-1) at {threes} of {len(out) - len(powers)} "
                f"(faster: {sizes}); the largest effect "
                f"{fmt(max((r['effect'] for r in out), default=0), '+.1%')}")
    return {"centres": out, "faster": faster, "powers": len(powers), "verdict": verdict,
            "sentence": sentence}


def _effect(below, at, above, rounds):
    """How much more an example costs at the neighbours (their mean) than at the centre, each
    the fastest of the given rounds (an index array; one row per resample)."""
    return (below[rounds].min(-1) + above[rounds].min(-1)) / 2 / at[rounds].min(-1) - 1


# --- the answer's procedure, replayed -----------------------------------------------------------

def replay(per_batch, n_train: int, spot: dict) -> dict:
    """The answer's grid and its one x3 refinement on this estimate table (procedure.answer_pick):
    its pick, the pick's time over the spot's, and whether the region holds it."""
    pick = procedure.answer_pick(per_batch[["batch_size", "estimate"]], n_train)
    region = [r["batch_size"] for r in spot.get("region", [])]
    if pick["best"] is None:
        return {**pick, "ratio": math.inf, "in_region": False, "region": region}
    at = per_batch.set_index("batch_size")["estimate"]
    return {**pick, "estimate": float(at[pick["best"]]),
            "ratio": float(at[pick["best"]]) / spot["estimate"],
            "in_region": pick["best"] in region, "region": region}


# --- the table ----------------------------------------------------------------------------------

def _row(claim, test, numbers, verdict, figure):
    return {"claim": claim, "test": test, "numbers": numbers, "verdict": verdict,
            "figure": figure}


def _sizes(spot: dict) -> str:
    """A region as the set it is (fmt.sizes) among the batch sizes the estimate has."""
    return sizes([r["batch_size"] for r in spot["region"]], spot["per_batch"]["batch_size"])


def _ratio(per_batch, spot: dict, b: int) -> float:
    at = per_batch.set_index("batch_size")["estimate"]
    return float(at[b]) / spot["estimate"] if b in at.index else math.nan


def time_per_epoch(per_batch, spot: dict, n_train: int, max_epochs: int) -> dict:
    """The question's metric against the target's: the batch size with the fastest epoch."""
    epochs = {int(r.batch_size): math.ceil(n_train / r.batch_size) * r.seconds_per_step
              for r in per_batch.itertuples()}
    fast = min(epochs, key=epochs.get)
    ratio = _ratio(per_batch, spot, fast)
    region = [r["batch_size"] for r in spot["region"]]
    reach = (f"reaches it in {fmt(ratio, '.1f')}x the spot's time" if math.isfinite(ratio)
             else f"does not reach it in {max_epochs} epochs")
    return _row("Time per epoch says which batch size is fastest (the question's reading)",
                "each batch size's epoch (steps x seconds per step) against its time to the "
                "target", f"the fastest epoch is batch {fast}'s ({fmt(epochs[fast])} s, the "
                f"spot {spot['batch_size']}'s {fmt(epochs[spot['batch_size']])} s); it {reach}",
                HOLDS if fast not in region else NOT, "epoch_vs_target")


def small_end(per_batch, spot: dict, budget: int, censored: list[str]) -> dict:
    """Batch 1 and the rest below the region; `censored` names the runs the budget stopped."""
    claim = "A batch size of 1 is almost guaranteed to be sub-optimal"
    rows = per_batch[per_batch["batch_size"] < min(r["batch_size"] for r in spot["region"])]
    if 1 not in set(per_batch["batch_size"]):
        return _row(claim, "batch 1 as a cell", "not trained (sweep.extremes lacks 1)", UNTESTED,
                    "two_factors")

    def said(r):
        if not math.isfinite(r.estimate):
            return f"{int(r.batch_size)}: not in {budget} epochs"
        ratio = _ratio(per_batch, spot, r.batch_size)
        return f"{int(r.batch_size)}: {fmt(r.estimate)} s ({fmt(ratio, '.1f')}x)"

    stopped = f"; censored at {budget} epochs: {', '.join(censored)}" if censored else ""
    inside = 1 in [r["batch_size"] for r in spot["region"]]
    return _row(claim, f"batch sizes below the region trained like the grid ({budget}-epoch "
                "budget), steps x seconds", "; ".join(map(said, rows.itertuples())) + stopped,
                NOT if inside else HOLDS, "two_factors")


def answer_procedure(found: dict, spot: dict) -> dict:
    """The answer's start, grid and refinement (replay)."""
    claim = ("Start at the power of two nearest sqrt(N), run 2 halvings and 2 doublings, then one "
             "x3 refinement")
    test = f"the procedure replayed on the estimates (grid {found['grid']})"
    if found["best"] is None:
        return _row(claim, test, "no batch size of its grid reached the target", UNTESTED,
                    "two_factors")
    missing = f"; {found['missing']} untrained" if found["missing"] else ""
    numbers = (f"the grid's best {found['grid_best']}, then {found['neighbours']}: it picks "
               f"{found['best']} at {fmt(found['estimate'])} s, {fmt(found['ratio'], '.2f')}x the "
               f"spot {spot['batch_size']}'s, {'inside' if found['in_region'] else 'outside'} the "
               f"region {_sizes(spot)}{missing}")
    verdict = HOLDS if found["in_region"] else PART if found["ratio"] <= 1.25 else NOT
    return _row(claim, test, numbers, verdict, "two_factors")


def neighbours(per_batch, spot: dict) -> dict:
    """The spot's adjacent batch sizes (those trained, either side)."""
    sizes = sorted(int(b) for b in per_batch["batch_size"])
    i = sizes.index(spot["batch_size"])
    beside = [b for b in (sizes[i - 1] if i else None, sizes[i + 1] if i + 1 < len(sizes)
                          else None) if b is not None]
    region = [r["batch_size"] for r in spot["region"]]
    inside = sum(b in region for b in beside)
    said = ", ".join(f"{b}: {fmt(_ratio(per_batch, spot, b), '.2f')}x "
                     f"({'in' if b in region else 'out of'} the region)" for b in beside)
    return _row("Very little difference between the sweet spot and the adjacent batch sizes",
                "the spot's neighbours' estimates over the spot's, and the region's rule",
                said, HOLDS if inside == len(beside) else PART if inside else NOT,
                "steps_to_target")


def memory(found: dict, cost: dict | None, spot: dict) -> dict:
    """The step against its floors (floors.floors())."""
    rows = {r["batch_size"]: r for r in found["rows"]}
    first, stop = rows[min(rows)], rows[found["stops_falling"]]
    jumps = "; ".join(f"+{fmt(j['rise'], '.0%')} from {j['from']} to {j['to']} (into "
                      f"{j['level']})" for j in found["jumps"]) or (
        "none above 5% where the working set leaves a level")
    fitted = ""
    if cost:
        t0, c = cost["t0"], cost["c"]
        fitted = (f"; t0 {fmt(t0 * 1e6)} us, {fmt(t0 / found['t0_floor'], '.1f')}x its floor, "
                  f"c {fmt(c * 1e6)} us, {fmt(c / found['c_floor'], '.1f')}x its")
    numbers = (f"{fmt(first['us_per_example'])} us an example at batch {first['batch_size']}, "
               f"falling to within 10% of its lowest ({fmt(found['lowest'])} us) at "
               f"{found['stops_falling']} (working set {fmt(stop['working_set'] / 2**20)} MiB, "
               f"{stop['level']}); jumps: {jumps}{fitted}")
    verdict = HOLDS if found["stops_falling"] <= spot["batch_size"] else PART
    return _row("Use the memory: ingest the whole batch at once, or leave performance untapped",
                "us per example from batch 1 up, beside the working set, the cache sizes and the "
                "step's arithmetic and memory floors", numbers, verdict, "advice_memory")


def processors(cores: dict, spot_best: dict | None, spot_question: dict | None) -> dict:
    best = cores["best"]
    ratios = cores["speedup"]
    said = ", ".join(f"batch {b}: {fmt(v['speedup'], '.2f')}x (rounds {fmt(v['q1'], '.2f')}-"
                     f"{fmt(v['q3'], '.2f')})" for b, v in ratios.items())
    answer = ""
    if spot_best and spot_question and spot_best is not spot_question:
        answer = (f"; to the target: spot {spot_best['batch_size']} in "
                  f"{fmt(spot_best['estimate'])} s, region {_sizes(spot_best)}, against spot "
                  f"{spot_question['batch_size']} in {fmt(spot_question['estimate'])} s, region "
                  f"{_sizes(spot_question)}, with num_workers=0")
    if not best["beyond"]:
        answer = "; no split beats the question's beyond the rounds' spread: its answer stands"
    tensor = cores["tensor_threads"]
    numbers = (f"best of {len(cores['splits'])} splits on "
               f"{cores['cpus']} CPUs: {best['workers']} loader worker(s) + {best['threads']} "
               f"thread(s), per step {said}{answer}; the tensor path is fastest on "
               f"{tensor['best']} thread(s)")
    beyond = [v["q1"] > 1 + MEANINGFUL for v in ratios.values()]  # in 3 rounds of 4, by 2%
    verdict = HOLDS if best["beyond"] else PART if any(beyond) else NOT
    return _row("Keep every processor busy, some on the model and some on the input pipeline",
                "the question's pipeline at every split of the CPUs between DataLoader workers "
                "and torch threads, interleaved rounds", numbers, verdict, "advice_cores")


def blocks(verdict: dict) -> dict:
    return _row("2^n or 3*2^n works best, because of block sizes",
                "seconds per step at 2^n-1, 2^n, 2^n+1 and 3*2^(n-1)+-1, interleaved rounds, "
                "per example", verdict["sentence"], verdict["verdict"], "advice_blocks")


def headline(rows: list[dict], cores: dict, spot_best: dict | None,
             spot_question: dict | None, target: float) -> str:
    """The README's sentence: how many claims hold here, and the question's pipeline at its best
    split."""
    counts = {v: sum(r["verdict"] == v for r in rows) for v in (HOLDS, PART, NOT)}
    def hold(n, verb):  # 1 holds, 2 hold; 1 does not, 2 do not
        return f"{n} {verb if n == 1 else {'holds': 'hold', 'does': 'do'}[verb]}"

    text = (f"Of the accepted answer's {sum(counts.values())} claims tested here, "
            f"{hold(counts[HOLDS], 'holds')}, {hold(counts[PART], 'holds')} in part and "
            f"{hold(counts[NOT], 'does')} not")
    best = cores.get("best", {})
    if spot_best and spot_question and spot_best is spot_question:
        speedup = statistics.geometric_mean(v["speedup"] for v in cores["speedup"].values())
        text += (f"; no split of the CPUs between DataLoader workers and torch threads makes the "
                 f"question's pipeline faster beyond the rounds' spread (the best, "
                 f"{best['workers']} worker(s) and {best['threads']} thread(s), "
                 f"{fmt(speedup, '.2f')}x), so its answer stays "
                 f"{fmt(spot_question['estimate'])} s at batch {spot_question['batch_size']}")
    elif spot_best and spot_question:
        text += (f"; the question's pipeline at its best split ({best['workers']} loader "
                 f"worker(s), {best['threads']} torch thread(s)) reaches {target:.0%} in "
                 f"{fmt(spot_best['estimate'])} s at batch {spot_best['batch_size']}, against "
                 f"{fmt(spot_question['estimate'])} s with num_workers=0")
    return text + "."


def section(rows: list[dict], sentence: str) -> str:
    """The report's section, in markdown."""
    lines = ["## The answer's advice, tested here", "",
             "The accepted answer to the StackOverflow question (README) gives advice a reader "
             "will act on. Each claim, the test run on this machine, its numbers and the verdict "
             "(docs/advice.md says how each is measured).", "", sentence, "",
             "| claim | test | this machine | verdict | figure |", "|---|---|---|---|---|"]
    lines += [f"| {r['claim']} | {r['test']} | {r['numbers']} | **{r['verdict']}** | "
              f"[{r['figure']}](figures/{r['figure']}.png) |" for r in rows]
    return "\n".join(lines) + "\n"
