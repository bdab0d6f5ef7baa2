"""The race on synthetic steps tables: a batch size's steps drawn per seed from its own true
distribution (deterministic in the seed), one time per step for all, so the truth is known."""

import numpy as np
import pandas as pd
import pytest

from sweetspot.sweep import race

SECONDS = {b: [1e-3] * 5 for b in (16, 32, 64, 128)}  # steps alone decide: the truth is the steps


def draw(truth: dict, b: int, lr: float, seed: int) -> dict:
    """One run's row: steps ~ truth[(b, lr)] = (mean, relative spread), fixed by the seed."""
    mean, spread = truth[b, lr]
    rng = np.random.default_rng([b, int(lr * 1000), seed])
    return {"batch_size": b, "lr": lr, "target": 0.97, "seed": seed, "censored": False,
            "steps": float(round(mean * (1 + spread * rng.standard_normal())))}


def table(truth: dict, seeds: dict) -> pd.DataFrame:
    return pd.DataFrame([draw(truth, b, lr, s) for (b, lr), ss in seeds.items() for s in ss])


BUDGET = race.Budget(0.10, 8, 40)


def racing(truth, seeds, budget=BUDGET):
    """Run the race against the truth; (rounds, verdicts, the table it ended with)."""
    trained = []

    def train(cells):
        rows = pd.DataFrame([draw(truth, b, lr, s) for b, lr, s in cells])
        trained.append(rows)
        return rows

    start = table(truth, seeds)
    rounds, decided = race.run(start, train, SECONDS, 0.97, budget, 500)
    return rounds, decided, pd.concat([start, *trained], ignore_index=True)


THREE = [0, 1, 2]  # the grid's seed and the seeds stage's two


def test_a_batch_size_truly_30_percent_slower_leaves_the_region_with_few_seeds():
    truth = {(32, 1.0): (1000, 0.02), (64, 1.0): (1300, 0.02)}
    rounds, decided, _ = racing(truth, {(32, 1.0): THREE, (64, 1.0): THREE})
    assert decided["spot"] == 32 and decided["batch"][64]["status"] == race.OUT
    assert sum(map(len, rounds)) <= 2


def test_a_true_tie_stays_in():
    truth = {(32, 1.0): (1000, 0.01), (64, 1.0): (1000, 0.01)}
    _, decided, _ = racing(truth, {(32, 1.0): THREE, (64, 1.0): THREE})
    other = 64 if decided["spot"] == 32 else 32
    assert decided["batch"][other]["status"] == race.IN


def test_a_noisy_equal_batch_size_gets_seeds_until_decided_or_the_budget():
    truth = {(32, 1.0): (1000, 0.02), (64, 1.0): (1000, 0.15)}
    rounds, decided, end = racing(truth, {(32, 1.0): THREE, (64, 1.0): THREE})
    assert rounds, "three noisy seeds cannot decide a tie within 10%"
    statuses = {v["status"] for v in decided["batch"].values()}
    seeds = end.groupby("batch_size")["seed"].nunique()
    assert race.UNDECIDED not in statuses or seeds.max() == BUDGET.max_seeds


@pytest.mark.parametrize("max_seeds,max_cells", [(8, 3), (5, 40), (4, 1)])
def test_the_budget_is_never_exceeded(max_seeds, max_cells):
    truth = {(16, 1.0): (2000, 0.2), (32, 1.0): (1000, 0.2), (64, 1.0): (1050, 0.2),
             (128, 1.0): (1100, 0.2)}
    seeds = {key: THREE for key in truth}
    rounds, _, end = racing(truth, seeds, race.Budget(0.10, max_seeds, max_cells))
    assert sum(map(len, rounds)) <= max_cells
    assert end.groupby("batch_size")["seed"].nunique().max() <= max(max_seeds, len(THREE))


def test_the_same_steps_add_the_same_cells():
    truth = {(32, 1.0): (1000, 0.1), (64, 1.0): (1050, 0.1), (128, 1.0): (1500, 0.05)}
    seeds = {key: THREE for key in truth}
    first, second = racing(truth, seeds)[0], racing(truth, seeds)[0]
    assert first == second and first


def test_a_close_rate_on_one_seed_gets_the_chosen_rates_seeds():
    truth = {(32, 1.0): (1000, 0.02), (32, 0.3): (1020, 0.02), (64, 1.0): (1400, 0.02)}
    seeds = {(32, 1.0): THREE, (32, 0.3): [0], (64, 1.0): THREE}
    rounds, _, end = racing(truth, seeds)
    assert rounds[0][:2] == [(32, 0.3, 1), (32, 0.3, 2)]
    assert sorted(end[(end["batch_size"] == 32) & (end["lr"] == 0.3)]["seed"]) == THREE


def test_a_chosen_rate_on_fewer_seeds_gets_the_close_rates_seeds():
    # 0.5 is chosen on its one lucky seed; 1.0, within the margin on three, lends it its seeds
    truth = {(32, 1.0): (1000, 0.02), (32, 0.5): (1000, 0.02), (64, 1.0): (1400, 0.02)}
    start = table(truth, {(32, 1.0): THREE, (32, 0.5): [0], (64, 1.0): THREE})
    start.loc[(start["lr"] == 0.5), "steps"] = 950.0
    decided = race.verdicts(start, SECONDS, 0.97, 0.10, 500)
    assert decided["batch"][32]["lr"] == 0.5 and decided["rates"] == {32: {0.5: [1, 2]}}
    assert race.next_cells(start, decided, BUDGET, 0)[:2] == [(32, 0.5, 1), (32, 0.5, 2)]


def test_a_far_rate_gets_no_seeds():
    truth = {(32, 1.0): (1000, 0.02), (32, 0.3): (2000, 0.02), (64, 1.0): (1400, 0.02)}
    rounds, _, _ = racing(truth, {(32, 1.0): THREE, (32, 0.3): [0], (64, 1.0): THREE})
    assert not any(lr == 0.3 for cells in rounds for _, lr, _ in cells)


def test_each_batch_size_gets_a_verdict_and_its_reason():
    truth = {(16, 1.0): (2000, 0.02), (32, 1.0): (1000, 0.02), (64, 1.0): (1000, 0.15)}
    start = table(truth, {key: THREE for key in truth})
    censored = pd.DataFrame([{**draw(truth, 16, 1.0, s), "batch_size": 128, "censored": True,
                              "steps": np.nan} for s in THREE])
    decided = race.verdicts(pd.concat([start, censored]), SECONDS, 0.97, 0.10, 500)
    batch = decided["batch"]
    assert batch[16]["status"] == race.OUT and 1 <= batch[16]["distance"] < 2  # twice the steps
    assert batch[128]["status"] == race.OUT and batch[128]["distance"] == np.inf  # censored
    spot, other = (32, 64) if decided["spot"] == 32 else (64, 32)
    assert batch[spot]["status"] == race.SPOT
    assert batch[other]["status"] == race.UNDECIDED  # three noisy seeds
    assert batch[other]["bound"] > 1.10 and 0 < batch[other]["as_fast"] < 1
