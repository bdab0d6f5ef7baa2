"""The accepted answer's procedure: its x3 neighbours, its grid around sqrt(N), its pick."""

import pandas as pd

from sweetspot.answer import procedure


def test_refinement_batches_are_the_three_times_powers_of_two_neighbours():
    assert procedure.refinement_batches(128, set(), 60_000) == [96, 192]
    assert procedure.refinement_batches(96, set(), 60_000) == [64, 128]
    assert procedure.refinement_batches(96, {64, 128, 256}, 60_000) == []
    assert procedure.refinement_batches(128, {96}, 60_000) == [192]
    assert procedure.refinement_batches(32768, set(), 40_000) == [24576]  # 49152 > n_train
    assert procedure.refinement_batches(2, set(), 100) == [3]
    assert procedure.refinement_batches(1, set(), 100) == []
    assert procedure.refinement_batches(100, set(), 1000) == [64, 128]  # neither: powers around it


def test_answer_grid_is_the_power_of_two_nearest_root_n_and_two_doublings_each_side():
    assert procedure.advised_grid(60_000) == [64, 128, 256, 512, 1024]  # the answer's own example
    assert procedure.advised_grid(6000) == [16, 32, 64, 128, 256]  # sqrt 77 -> 64
    assert procedure.advised_grid(10) == [1, 2, 4, 8]  # sqrt 3.2 -> 4; 16 is above the set


def test_answer_pick_replays_the_grid_then_one_x3_refinement():
    rows = pd.DataFrame({"batch_size": [16, 32, 48, 64, 96, 128, 256, 512, 1024],
                         "estimate": [2.0, 1.0, 1.5, 3.0, 2.9, 4.0, 5.0, 6.0, 7.0]})
    pick = procedure.advised_pick(rows, 60_000)  # the grid is 64..1024: 64 wins; then 48 and 96
    assert pick == {"grid": [64, 128, 256, 512, 1024], "grid_best": 64, "neighbours": [48, 96],
                    "missing": [], "best": 48}
    lacking = procedure.advised_pick(rows[rows.batch_size != 96], 60_000)
    assert lacking["missing"] == [96] and lacking["best"] == 48
    assert procedure.advised_pick(rows[rows.batch_size < 64], 60_000)["best"] is None
