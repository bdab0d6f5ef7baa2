"""The advice's verdicts on hand-made numbers: block sizes, the step's floors, the claims (and
the numbers report/advice.py words them with)."""

import math

import numpy as np
import pandas as pd
import pytest

from conftest import spot_of
from sweetspot.advice import blocks, claims, cores, ends, floors, memory
from sweetspot.report import advice

POWERS = [4, 5, 6, 7, 8, 9, 10]


def noisy_rounds(effect: float, seed: int, rounds: int = 20) -> dict[int, list[float]]:
    """Seconds per step at every block size: t0 + c B, and `effect` off at each 2^n; every
    reading slowed by a little jitter and, in a third of them, by a burst (load only adds)."""
    rng = np.random.default_rng(seed)
    out = {}
    for b in blocks.block_sizes(POWERS):
        base = (200e-6 + 12e-6 * b) * (1 - effect if b & (b - 1) == 0 else 1)
        slowed = 1 + rng.uniform(0, 0.01, rounds) + (rng.random(rounds) < 0.3) * rng.exponential(
            0.3, rounds)
        out[b] = list(base * slowed)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_a_real_ten_percent_effect_at_powers_of_two_is_found(seed):
    found = claims.block_verdict(noisy_rounds(0.10, seed), blocks.centres(POWERS), 500, 0.05)
    powers = [c for c in found["centres"] if c["kind"] == "2^n"]
    assert [c["verdict"] for c in powers] == ["faster"] * 2 * len(POWERS)  # beside +-1 and +-8
    assert all(0.08 < c["effect"] < 0.13 for c in powers if c["d"] == 1)  # 1 / 0.9 - 1
    assert all(c["effect"] > 0.05 for c in powers)  # 16's neighbour 8 is a power of two too
    assert found["verdict"] == claims.HOLDS and found["faster"] == len(POWERS)
    # the same gain, smaller than the seeds' spread of time to the target: it cannot show there
    hidden = claims.block_verdict(noisy_rounds(0.10, seed), blocks.centres(POWERS), 500, 0.2)
    assert hidden["verdict"] == claims.PART
    assert "spread of time to the target 20%" in advice.blocks(hidden)[2]


def test_a_gain_over_odd_sizes_only_is_no_gain_of_powers_of_two():
    """Every multiple of 8 steps faster than the line through its neighbours at +-1 (odd sizes
    waste vector lanes): powers of two are no faster than other multiples of 8."""
    per_round = {b: [(200e-6 + 12e-6 * b) * (0.9 if b % 8 == 0 else 1)] * 5
                 for b in blocks.block_sizes(POWERS)}
    found = claims.block_verdict(per_round, blocks.centres(POWERS), 200)
    assert {c["verdict"] for c in found["centres"] if c["d"] == 1} == {"faster"}
    assert {c["verdict"] for c in found["centres"] if c["d"] == 8} == {"no difference"}
    assert found["verdict"] == claims.NOT and found["faster"] == 0  # any multiple of 8 would do


@pytest.mark.parametrize("seed", range(5))
def test_no_effect_is_not_invented(seed):
    found = claims.block_verdict(noisy_rounds(0.0, seed), blocks.centres(POWERS), 500)
    assert all(c["verdict"] == "no difference" for c in found["centres"])
    assert found["verdict"] == claims.NOT and "at 0 of 7 and 0 of 7" in advice.blocks(found)[2]


def test_block_sizes_are_each_centre_and_its_neighbours_at_1_and_8():
    assert blocks.centres([4]) == [("2^n", 16), ("3*2^(n-1)", 24)]
    assert blocks.block_sizes([4]) == [8, 15, 16, 17, 23, 24, 25, 32]


def test_cache_sizes_and_copy_sizes_from_sysfs_text():
    levels = memory.cache_bytes({"L1d": "32K", "L1i": "32K", "L2": "512K", "L3": "32768K"})
    assert levels == {"L1d": 32 << 10, "L2": 512 << 10, "L3": 32 << 20}
    sizes = memory.copy_sizes(levels)
    assert sizes[0] == 16 << 10 and sizes[-1] == 64 << 20 and sizes[1] == 4 * sizes[0]


LEVELS = {"L1d": 32 << 10, "L2": 512 << 10, "L3": 32 << 20}


def test_each_level_gets_the_bandwidth_of_copies_that_fit_it_and_not_the_one_below():
    bandwidth = {16 << 10: 100e9, 64 << 10: 60e9, 256 << 10: 50e9, 1 << 20: 30e9,
                 4 << 20: 25e9, 128 << 20: 10e9}
    assert floors.level_bandwidth(bandwidth, LEVELS) == {
        "L1d": 100e9, "L2": 60e9, "L3": 30e9, "RAM": 10e9}
    assert floors.level_of(32 << 10, LEVELS) == "L1d"
    assert floors.level_of((32 << 20) + 1, LEVELS) == "RAM"


def test_floors_on_hand_made_sizes():
    # a network of 1000 weights (4000 bytes), 100-byte inputs, 50 bytes of activations
    counted = {str(b): {"flops": 2000 * b, "weight_bytes": 4000, "input_bytes": 100,
                        "activation_bytes": 50} for b in (1, 1000, 10_000)}
    doc = {"caches": LEVELS, "flops_per_second": 1e9,
           "bandwidth": {str(16 << 10): 100e9, str(1 << 20): 40e9, str(128 << 20): 10e9},
           "seconds_per_step": {"1": 10e-6, "1000": 500e-6, "10000": 4e-3},
           "counted": counted}
    found = floors.floors(doc)
    rows = {r["batch_size"]: r for r in found["rows"]}
    moved, working = floors.traffic(counted["1"], 1)
    assert (moved, working) == (5 * 4000 + 2 * 100 + 3 * 50, 2 * 4000 + 100 + 2 * 50)
    assert rows[1]["level"] == "L1d" and rows[1000]["level"] == "L2"  # 208 KB
    assert rows[10_000]["level"] == "L3"  # 8000 + 10000 * 200 bytes = 1.9 MiB
    assert rows[1]["memory_floor"] == pytest.approx(1e6 * moved / 100e9)
    assert rows[1000]["arithmetic_floor"] == pytest.approx(2.0)  # 2000 FLOPs at 1 GFLOP/s
    assert [r["us_per_example"] for r in found["rows"]] == pytest.approx([10, 0.5, 0.4])
    assert found["stops_falling"] == 10_000  # 0.5 is 25% above the lowest, 0.4
    assert found["jumps"] == []
    assert found["t0_floor"] == pytest.approx(5 * 4000 / 100e9)  # 8000 bytes sit in L1
    assert found["c_floor"] == pytest.approx(2e-6)  # FLOPs bound it: 350 bytes take 35 ns


def test_a_rise_where_the_working_set_leaves_a_level_is_a_jump():
    counted = {str(b): {"flops": 1, "weight_bytes": 4000, "input_bytes": 100,
                        "activation_bytes": 50} for b in (10, 1000)}
    doc = {"caches": LEVELS, "flops_per_second": 1e12,
           "bandwidth": {str(16 << 10): 100e9, str(128 << 20): 10e9},
           "seconds_per_step": {"10": 10e-6, "1000": 2e-3}, "counted": counted}
    (jump,) = floors.floors(doc)["jumps"]
    assert jump["from"] == 10 and jump["to"] == 1000 and jump["level"] == "L2"
    assert jump["rise"] == pytest.approx(1.0)


def test_the_splits_of_two_cpus_and_the_best_one():
    assert cores.splits(2) == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    fastest = {cores.key("torchvision", t, w, b): 1.0 / (1 + w) + 0.1 * t
               for t, w in cores.splits(2) for b in (16, 32)}
    assert cores.best_split(fastest, 2, [16, 32]) == (1, 2)
    per_round = {k: [v, 2 * v, 1.5 * v] for k, v in fastest.items()}
    speed = cores.speedups(per_round, (1, 2), [16])["16"]
    assert speed["speedup"] == pytest.approx(1.1 / (1 / 3 + 0.1))
    assert speed["q1"] == speed["q3"] == pytest.approx(speed["speedup"])  # same each round


ESTIMATES = {1: 20.0, 8: 5.0, 16: 3.3, 32: 3.0, 48: 3.4, 64: 3.6, 96: 4.0, 128: 6.0, 256: 9.0,
             512: math.inf, 1024: math.inf}


def test_the_claims_from_an_answer():
    spot = spot_of(ESTIMATES, [16, 32])
    replayed = claims.replay(spot["per_batch"], 60_000, spot)
    assert (replayed["grid_best"], replayed["best"], replayed["in_region"]) == (64, 48, False)
    assert replayed["ratio"] == pytest.approx(3.4 / 3.0)
    row = claims.advised_procedure(replayed, spot, 0.25)
    assert row["verdict"] == claims.PART and "picks 48" in advice.procedure(row)[2]
    assert "outside the region (16-32)" in advice.procedure(row)[2]
    small = ends.batch_one(spot["per_batch"], spot, 3, ["b1-lr3.0-s0-tensor"])
    assert small["verdict"] == claims.HOLDS
    assert advice.batch_1(small)[2] == ("1: 20.00 s (6.7x); 8: 5.00 s (1.7x); 1 runs at rates not "
                                "chosen stopped short in 3 epochs")
    assert claims.neighbours(spot["per_batch"], spot)["verdict"] == claims.PART  # 16 in, 48 out
    epoch = claims.time_per_epoch(spot["per_batch"], spot, 60_000, 20)
    assert epoch["verdict"] == claims.HOLDS and "batch 1024's" in advice.time_per_epoch(epoch)[2]
    assert "batch 1024 does not reach the target in 20 epochs" in advice.time_per_epoch(epoch)[2]


def cores_doc(q1s: list[float], best=(1, 2)) -> dict:
    beyond = all(q > 1.02 for q in q1s)  # as the cores stage decides (cores.BEYOND)
    return {"best": {"threads": best[0], "workers": best[1], "beyond": beyond}, "cpus": 2,
            "splits": cores.splits(2), "tensor_threads": {"best": 1},
            "speedup": {str(16 * (i + 1)): {"speedup": q + 0.05, "q1": q, "q3": q + 0.1}
                        for i, q in enumerate(q1s)}}


def test_a_split_holds_only_where_it_beats_the_questions_in_three_rounds_of_four():
    assert claims.processors(cores_doc([1.5, 1.4]), None, None)["verdict"] == claims.HOLDS
    assert claims.processors(cores_doc([1.5, 1.01]), None, None)["verdict"] == claims.PART
    # two threads and no worker, no faster beyond the rounds' spread: the question's is as good
    same = claims.processors(cores_doc([0.82, 0.81], best=(2, 0)), None, None)
    assert same["verdict"] == claims.NOT
    assert "0 loader workers and 2 threads" in advice.processors(same)[2]
    assert "within the rounds' spread of the question's own split" in advice.processors(same)[2]
    # the tensor path on both threads, beyond its rounds' spread: in part, whatever the loader
    both = cores_doc([0.82, 0.81], best=(2, 0))
    both["tensor_threads"] = {"best": 2, "speedup": {"32": {"speedup": 1.3, "q1": 1.1,
                                                            "q3": 1.3}}}
    tensor = claims.processors(both, None, None)
    assert tensor["verdict"] == claims.PART
    assert ("the tensor path: its fastest round on 2 threads, batch 32: 1.30x fastest round "
            "against fastest (round by round, quartiles 1.10-1.30)") in advice.processors(tensor)[2]


QUESTION_RUN = {"n_train": 60000, "runs": {"1": {"epochs": [{"epoch": 1, "test_acc": 0.96}]},
                "60000": {"epochs": [{"epoch": e, "test_acc": 0.11} for e in (1, 2, 3)]}}}


def with_steps(estimates: dict[int, float], steps: dict[int, float], region: list[int]) -> dict:
    spot = spot_of(estimates, region)
    spot["per_batch"]["median_steps"] = [steps[b] for b in estimates]
    spot["per_batch"]["lr"] = [0.1 if b == 1 else 1.0 for b in estimates]
    return spot


def test_the_whole_set_in_one_batch_loses_per_example_not_per_step():
    steps = {1: 96000, 8: 15000, 16: 9000, 32: 5000, 48: 4000, 64: 3600, 96: 3500, 128: 3400,
             256: 3100, 512: math.inf, 1024: math.inf}
    spot = with_steps(ESTIMATES, steps, [16, 32])
    row = ends.whole_batch(spot["per_batch"], spot, QUESTION_RUN, 0.97)
    assert row["verdict"] == claims.HOLDS  # stuck near chance, and 256 sees 5x the examples
    words = advice.whole_batch(row)[2]
    assert words.startswith("the question's run at 60000: 11.0% after 3 epochs (3 steps)")
    assert "sees 5.0x the examples the spot 32 sees, in 0.62x its steps" in words
    # a run of the whole set that reached the target: the claim holds only in part
    reached = {**QUESTION_RUN, "runs": {**QUESTION_RUN["runs"], "60000": {"epochs": [
        {"epoch": 1, "test_acc": 0.98}]}}}
    assert ends.whole_batch(spot["per_batch"], spot, reached, 0.97)["verdict"] == claims.PART


def test_batch_one_over_emphasis_is_its_seeds_spread_against_the_spots():
    spot = spot_of({1: 20.0, 32: 3.0}, [32])
    spot["per_batch"]["lr"] = [0.1, 1.0]
    rows = [(1, 0.1, s, n) for s, n in zip((0, 1, 2), (90000, 96000, 144000), strict=True)]
    rows += [(32, 1.0, s, n) for s, n in zip((0, 1, 2, 3), (5000, 5500, 6000, 99999),
                                             strict=True)]  # seed 3 is not compared
    rows += [(32, 0.3, 0, 20000)]  # another rate is not compared either
    table = pd.DataFrame(rows, columns=["batch_size", "lr", "seed", "steps"]).assign(target=0.97)
    row = ends.single_image(table, spot, 0.97)
    assert "batch 1: 90000-144000 steps (56% of the median)" in advice.single_image(row)[2]
    assert "the spot 32: 5000-6000 (18%): 3.1x" in advice.single_image(row)[2]
    assert row["verdict"] == claims.HOLDS


def test_the_extremes_hold_where_batch_1_is_slow_and_the_whole_set_stuck():
    spot = spot_of(ESTIMATES, [16, 32])
    row = ends.extremes(spot["per_batch"], spot, QUESTION_RUN, 0.97, 20)
    assert row["verdict"] == claims.HOLDS
    assert advice.extremes(row)[2] == (
        "batch 1 takes 6.7x the spot's time; batch 60000 (the question's run) is at 11.0% after 3 "
        "epochs; 512 and 1024 never reach 0.97 in 20 epochs")
    assert ends.extremes(spot["per_batch"], spot, None, 0.97, 20)["verdict"] == claims.PART


def test_an_undecided_member_decides_no_claim():
    spot = spot_of(ESTIMATES, [32, 48])
    replayed = claims.replay(spot["per_batch"], 60_000, spot, undecided=[48])
    row = claims.advised_procedure(replayed, spot, 0.25)
    assert row["verdict"] == claims.PART  # picks 48, in the region but undecided
    assert "in the region but undecided in the race (32-48)" in advice.procedure(row)[2]
    decided = claims.advised_procedure(claims.replay(spot["per_batch"], 60_000, spot), spot, 0.1)
    assert decided["verdict"] == claims.HOLDS
    near = claims.neighbours(spot["per_batch"], spot, undecided=[48])
    assert near["verdict"] == claims.NOT and "48: 1.13x (undecided)" in advice.neighbours(near)[2]


def test_the_pipeline_factors_and_shares():
    from sweetspot.advice import pipeline

    fastest = {pipeline.key(loader, kind, 24): seconds for (loader, kind), seconds in zip(
        pipeline.STACKS, (100e-6, 130e-6, 400e-6, 500e-6), strict=True)}
    (found,) = pipeline.factors(fastest, [24]).values()
    assert (found["total"], found["loader"], found["step"]) == pytest.approx((5.0, 4.0, 1.3))
    assert (found["loader_share"], found["step_share"]) == pytest.approx((0.6, 0.06))
