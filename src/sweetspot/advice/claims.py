"""The answer's advice as claims, each with its test, this machine's numbers and a verdict: holds,
holds in part, does not hold here. Pure: documents and tables in, rows and sentences out; the
report stage renders them (`section`) and the README's headline takes `headline`."""

from __future__ import annotations

import math
import statistics

import numpy as np

from sweetspot.answer import procedure
from sweetspot.fmt import fmt, sizes, table

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
    picks = rng.integers(0, n_rounds, size=(resamples, n_rounds))
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
    said = [f"beside odd sizes (+-1), which any multiple of 8 beats, a power of two is faster at "
            f"{len(faster(True, 1))} of {len(powers)} powers and 3*2^(n-1) at "
            f"{len(faster(False, 1))} of {threes}; beside multiples of 8 (+-8), at "
            f"{len(by_eight)} of {len(powers)} and {len(faster(False, 8))} of {threes}",
            f"the largest effect beside multiples of 8 {fmt(largest, '+.1%')}, against the seeds' "
            f"spread of time to the target {fmt(spread, '.0%')}"]
    return {"centres": out, "faster": len(by_eight), "powers": len(powers), "verdict": verdict,
            "sentence": "; ".join(said)}


def _effect(below, at, above, rounds):
    """How much longer the neighbours' mean step is than the centre's, each the fastest of the
    given rounds (an index array; one row per resample)."""
    return (below[rounds].min(-1) + above[rounds].min(-1)) / 2 / at[rounds].min(-1) - 1


# --- the answer's procedure, replayed -----------------------------------------------------------

def replay(per_batch, n_train: int, spot: dict, undecided: list[int] = ()) -> dict:
    """The answer's grid and its one x3 refinement on this estimate table (procedure.answer_pick):
    its pick, the pick's time over the spot's, and whether the region's decided members hold it
    (`undecided`: the members the race left undecided)."""
    pick = procedure.answer_pick(per_batch[["batch_size", "estimate"]], n_train)
    region = [r["batch_size"] for r in spot.get("region", [])]
    if pick["best"] is None:
        return {**pick, "ratio": math.inf, "in_region": False, "region": region,
                "undecided": False}
    at = per_batch.set_index("batch_size")["estimate"]
    return {**pick, "estimate": float(at[pick["best"]]),
            "ratio": float(at[pick["best"]]) / spot["estimate"],
            "in_region": pick["best"] in region and pick["best"] not in undecided,
            "undecided": pick["best"] in undecided, "region": region}


# --- the table ----------------------------------------------------------------------------------
# Each row: what the answer says (its words, quoted, or closely paraphrased in brackets), the
# test, this machine's numbers, the verdict and the figure that shows it.

def claim(said, test, numbers, verdict, figure):
    return {"claim": said, "test": test, "numbers": numbers, "verdict": verdict,
            "figure": figure}


def _sizes(spot: dict) -> str:
    """A region as the set it is (fmt.sizes) among the batch sizes the estimate has."""
    return sizes([r["batch_size"] for r in spot["region"]], spot["per_batch"]["batch_size"])


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
    ratio = ratio_to_spot(per_batch, spot, fast)
    region = [r["batch_size"] for r in spot["region"]]
    reach = (f"reaches the target in {fmt(ratio, '.1f')}x the spot's time" if math.isfinite(ratio)
             else f"does not reach the target in {max_epochs} epochs")
    return claim("\"you are measuring execution time per epoch, rather than total Time-to-Train\"",
                 "each batch size's epoch (steps x seconds per step) against its time to the "
                 "target", f"the fastest epoch is batch {fast}'s ({fmt(epochs[fast])} s, the "
                 f"spot {spot['batch_size']}'s {fmt(epochs[spot['batch_size']])} s); batch {fast} "
                 f"{reach}",
                 HOLDS if fast not in region else NOT, "epoch_vs_target")


def answer_procedure(found: dict, spot: dict, margin: float) -> dict:
    """The answer's start, grid and refinement (replay), judged by the decided members: in part
    where its pick is undecided or within the race's `margin` of the spot."""
    said = ("\"start with a power of 2 that is roughly the square root of the training set size "
            "[...] 64, 128, 256, 512, and 1024 [...] one step of refinement, using that factor "
            "of 3\"")
    test = (f"the procedure replayed on the estimates (grid {sizes(found['grid'], found['grid'])}"
            f"), against the region's members the race decided and its {margin:.0%} margin")
    if found["best"] is None:
        return claim(said, test, "no batch size of its grid reached the target", UNTESTED,
                     "two_factors")
    missing = f"; {found['missing']} untrained" if found["missing"] else ""
    where = ("in the region but undecided in the race" if found["undecided"] else
             "a decided member of the region" if found["in_region"] else "outside the region")
    numbers = (f"the grid's best {found['grid_best']}, then "
               f"{' and '.join(map(str, found['neighbours']))}: it picks "
               f"{found['best']} at {fmt(found['estimate'])} s, {fmt(found['ratio'], '.2f')}x the "
               f"spot {spot['batch_size']}'s, {where} ({_sizes(spot)}){missing}")
    verdict = (HOLDS if found["in_region"] else PART if found["undecided"] or
               found["ratio"] <= 1 + margin else NOT)
    return claim(said, test, numbers, verdict, "two_factors")


def neighbours(per_batch, spot: dict, undecided: list[int] = ()) -> dict:
    """The spot's adjacent batch sizes (those trained, either side), judged by the decided
    members."""
    sizes = sorted(int(b) for b in per_batch["batch_size"])
    i = sizes.index(spot["batch_size"])
    beside = [b for b in (sizes[i - 1] if i else None, sizes[i + 1] if i + 1 < len(sizes)
                          else None) if b is not None]
    region = [r["batch_size"] for r in spot["region"]]
    inside = [b for b in beside if b in region and b not in undecided]

    def status(b):
        return ("undecided" if b in undecided else "in the region" if b in region else
                "out of the region")

    said = ", ".join(f"{b}: {fmt(ratio_to_spot(per_batch, spot, b), '.2f')}x ({status(b)})"
                     for b in beside)
    return claim("\"You will likely see very little difference between your 'sweet spot' and the "
                 "adjacent batch sizes\"", "the spot's neighbours' estimates over the spot's, and "
                 "the region's decided members", said, HOLDS if len(inside) == len(beside) else
                 PART if inside else NOT, "steps_to_target")


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
        fitted = (f"; t0 {fmt(t0 * 1e6)} µs, {fmt(t0 / found['t0_floor'], '.1f')}x its floor, "
                  f"c {fmt(c * 1e6)} µs, {fmt(c / found['c_floor'], '.1f')}x its")
    numbers = (f"in the memory stage's rounds, {fmt(first['us_per_example'])} µs an example at "
               f"batch {first['batch_size']}, falling to within 10% of its lowest "
               f"({fmt(found['lowest'])} µs) at "
               f"{found['stops_falling']} (working set {fmt(stop['working_set'] / 2**20)} MiB, "
               f"{stop['level']}); jumps: {jumps}{fitted}")
    verdict = HOLDS if found["stops_falling"] <= spot["batch_size"] else PART
    return claim("\"you want to be able to ingest the entire batch into memory at once [...] If "
                 "you under-use the memory, you leave some potential performance untapped\"",
                 "µs per example from batch 1 up, beside the working set, the cache sizes and the "
                 "step's arithmetic and memory floors", numbers, verdict, "advice_memory")


def _workers(n: int) -> str:
    return f"{n} loader worker{'s' if n != 1 else ''}"


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n != 1 else ''}"


def processors(cores: dict, spot_best: dict | None, spot_question: dict | None) -> dict:
    """Both paths at every split of the CPUs: the question's pipeline (loader workers x torch
    threads) and the tensor path (torch threads)."""
    best, ratios = cores["best"], cores["speedup"]

    def spread(speedup):
        return ", ".join(f"batch {b}: {fmt(v['speedup'], '.2f')}x fastest round against fastest "
                         f"(round by round, quartiles {fmt(v['q1'], '.2f')}-"
                         f"{fmt(v['q3'], '.2f')})" for b, v in speedup.items())

    answer = ""
    if spot_best and spot_question and spot_best is not spot_question:
        answer = (f"; to the target: spot {spot_best['batch_size']} in "
                  f"{fmt(spot_best['estimate'])} s, region {_sizes(spot_best)}, against spot "
                  f"{spot_question['batch_size']} in {fmt(spot_question['estimate'])} s, region "
                  f"{_sizes(spot_question)}, with no loader worker")
    if not best["beyond"]:
        answer = "; within the rounds' spread of the question's own split (1 thread, no worker)"
    tensor = cores["tensor_threads"]
    tensor_speed = tensor.get("speedup", {})
    numbers = (f"the question's pipeline: best of {len(cores['splits'])} splits on "
               f"{cores['cpus']} CPUs, {_workers(best['workers'])} and "
               f"{_threads(best['threads'])}, {spread(ratios)}{answer}; the tensor path: its "
               f"fastest round on {_threads(tensor['best'])}, "
               f"{spread(tensor_speed) or 'no other timed'}")
    tensor_gains = any(v["q1"] > 1 + MEANINGFUL for v in tensor_speed.values())
    verdict = (HOLDS if best["beyond"] else PART if tensor_gains or any(
        v["q1"] > 1 + MEANINGFUL for v in ratios.values()) else NOT)
    return claim("\"if you're on a multi-processor chip, you want to keep them all busy\" [some on "
                 "the model, some on I/O: 28 of 32 cores in the answer's project]",
                 "both paths at every split of the CPUs (the question's pipeline: loader workers x "
                 "torch threads; the tensor path: threads), interleaved rounds; a 2-CPU machine "
                 "cannot test a reserve like 4 of 32 cores", numbers, verdict, "advice_cores")


def blocks(verdict: dict) -> dict:
    return claim("\"a batch size that is 2^n or 3 * 2^n for some n, works best, simply because of "
                 "block sizes\"", "seconds per step at 2^n and 3*2^(n-1) against the line through "
                 "their neighbours at +-1 (odd) and +-8 (multiples of 8), interleaved rounds; a "
                 "verdict only beyond the rounds' spread and the seeds' spread",
                 verdict["sentence"], verdict["verdict"], "advice_blocks")


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
                 f"{_workers(best['workers'])} and {_threads(best['threads'])}, "
                 f"{fmt(speedup, '.2f')}x in geometric mean over the batch sizes timed), so its "
                 "answer stays "
                 f"{fmt(spot_question['estimate'])} s at batch {spot_question['batch_size']}")
    elif spot_best and spot_question:
        text += (f"; the question's pipeline at its best split ({_workers(best['workers'])}, "
                 f"{_threads(best['threads'])}) reaches {target:.0%} in "
                 f"{fmt(spot_best['estimate'])} s at batch {spot_best['batch_size']}, against "
                 f"{fmt(spot_question['estimate'])} s with no loader worker")
    return text + "."


def section(rows: list[dict], sentence: str) -> str:
    """The report's section, in markdown."""
    lines = ["## The answer's advice, tested here", "",
             "The accepted answer to the StackOverflow question (README) gives advice a reader "
             "will act on. Each of its claims in its own words (brackets: paraphrased), the test "
             "run on this machine, its numbers and the verdict (docs/advice.md says how each is "
             "measured).", "", sentence, "",
             *table(["the answer says", "test", "this machine", "verdict", "figure"], "lllll",
                    [[r["claim"], r["test"], r["numbers"], f"**{r['verdict']}**",
                      f"[{r['figure']}](figures/{r['figure']}.png)"] for r in rows])]
    return "\n".join(lines) + "\n"
