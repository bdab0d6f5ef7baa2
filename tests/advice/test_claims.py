"""The advice's verdicts on hand-made numbers: block sizes, the step's floors, the claims."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tiny_params
from sweetspot.advice import blocks, claims, cores, floors, memory

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
    found = claims.block_verdict(noisy_rounds(0.10, seed), blocks.centres(POWERS), 500)
    powers = [c for c in found["centres"] if c["kind"] == "2^n"]
    assert [c["verdict"] for c in powers] == ["faster"] * len(POWERS)
    assert all(0.08 < c["effect"] < 0.13 for c in powers)
    assert found["verdict"] == claims.HOLDS and found["faster"] == len(POWERS)


@pytest.mark.parametrize("seed", range(5))
def test_no_effect_is_not_invented(seed):
    found = claims.block_verdict(noisy_rounds(0.0, seed), blocks.centres(POWERS), 500)
    assert all(c["verdict"] == "no difference" for c in found["centres"])
    assert found["verdict"] == claims.NOT and "at 0 of 7 powers" in found["sentence"]


def test_block_sizes_are_each_centre_and_its_neighbours():
    assert blocks.centres([4]) == [("2^n", 16), ("3*2^(n-1)", 24)]
    assert blocks.block_sizes([4, 5]) == [15, 16, 17, 23, 24, 25, 31, 32, 33, 47, 48, 49]


def test_the_step_is_counted_off_the_clock():
    cfg = tiny_params().train  # the question's MLP: 784 -> 256 sigmoid -> 10
    x, y = torch.rand(8, 784), torch.randint(0, 10, (8,))
    c = memory.counted(cfg, x, y)
    weights = 784 * 256 + 256 + 256 * 10 + 10
    # forward: two matmuls; backward: both weight gradients and layer 2's input gradient
    assert c["flops"] == 8 * (4 * 784 * 256 + 6 * 256 * 10)
    assert c["weight_bytes"] == 4 * weights and c["input_bytes"] == 4 * 784
    assert c["activation_bytes"] == 4 * (256 + 256 + 10)  # Linear, Sigmoid, Linear


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


def spot_of(estimates: dict[int, float], region: list[int]) -> dict:
    per_batch = pd.DataFrame({"batch_size": list(estimates), "estimate": list(estimates.values()),
                              "seconds_per_step": [1e-3] * len(estimates)})
    best = min(estimates, key=estimates.get)
    return {"batch_size": best, "estimate": estimates[best], "per_batch": per_batch,
            "region": [{"batch_size": b} for b in region]}


ESTIMATES = {1: 20.0, 8: 5.0, 16: 3.3, 32: 3.0, 48: 3.4, 64: 3.6, 96: 4.0, 128: 6.0, 256: 9.0,
             512: math.inf, 1024: math.inf}


def test_the_claims_from_an_answer():
    spot = spot_of(ESTIMATES, [16, 32])
    replayed = claims.replay(spot["per_batch"], 60_000, spot)
    assert (replayed["grid_best"], replayed["best"], replayed["in_region"]) == (64, 48, False)
    assert replayed["ratio"] == pytest.approx(3.4 / 3.0)
    row = claims.answer_procedure(replayed, spot)
    assert row["verdict"] == claims.PART and "picks 48" in row["numbers"]
    assert "outside the region 16-32" in row["numbers"]
    small = claims.small_end(spot["per_batch"], spot, 3, ["b1-lr3.0-s0-tensor"])
    assert small["verdict"] == claims.HOLDS
    assert small["numbers"] == ("1: 20.00 s (6.7x); 8: 5.00 s (1.7x); censored at 3 epochs: "
                                "b1-lr3.0-s0-tensor")
    assert claims.neighbours(spot["per_batch"], spot)["verdict"] == claims.PART  # 16 in, 48 out
    epoch = claims.time_per_epoch(spot["per_batch"], spot, 60_000, 20)
    assert epoch["verdict"] == claims.HOLDS and "batch 1024's" in epoch["numbers"]
    assert "does not reach it in 20 epochs" in epoch["numbers"]
    rows = [epoch, row]
    assert claims.headline(rows, {}, None, None, 0.97) == (
        "Of the accepted answer's 2 claims tested here, 1 holds, 1 holds in part and 0 do not.")


def test_a_region_is_a_range_only_where_it_is_contiguous_in_the_sizes_tried():
    assert claims._sizes(spot_of(ESTIMATES, [16, 32, 48])) == "16-48"
    assert claims._sizes(spot_of(ESTIMATES, [16, 48])) == "{16, 48}"  # 32 tried, and out
    assert claims._sizes(spot_of(ESTIMATES, [32])) == "32"


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
    assert "0 loader worker(s) + 2 thread(s)" in same["numbers"]
    assert "no split beats the question's beyond the rounds' spread" in same["numbers"]
    spot = spot_of(ESTIMATES, [16, 32])
    assert claims.headline([], cores_doc([0.82, 0.81], best=(2, 0)), spot, spot, 0.97) == (
        "Of the accepted answer's 0 claims tested here, 0 hold, 0 hold in part and 0 do not; no "
        "split of the CPUs between DataLoader workers and torch threads makes the question's "
        "pipeline faster beyond the rounds' spread (the best, 0 worker(s) and 2 thread(s), "
        "0.86x), so its answer stays 3.00 s at batch 32.")


def test_a_small_end_run_is_censored_as_the_project_reads_a_curve():
    from sweetspot.advice import tested

    def run(name, batch, accuracies, losses):
        curve = [{"time": i, "step": i, "examples": i, "epoch": i, "train_loss": loss,
                  "test_loss": loss, "test_acc": acc}
                 for i, (acc, loss) in enumerate(zip(accuracies, losses, strict=True))]
        return {"name": name, "batch_size": batch, "curve": curve}

    params = tiny_params(sweep={"extremes": [1, 2]})  # the headline target: 0.8
    results = [run("b1-reached", 1, [0.5, 0.9], [1.0, 0.5]),
               run("b1-short", 1, [0.5, 0.7], [1.0, 0.5]),
               run("b2-diverged", 2, [0.5, 0.9], [math.nan, math.nan]),  # nan, then a high read
               run("b32-short", 32, [0.5, 0.7], [1.0, 0.5])]  # not an extreme
    assert tested.censored(results, params) == ["b1-short", "b2-diverged"]
