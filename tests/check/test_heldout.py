"""The held-out check's picks and its reading of fresh times against the verdicts."""

import math

from sweetspot.check import heldout


def test_the_picks_are_the_spot_a_member_and_the_first_left_out_above_the_region():
    tried = [12, 16, 24, 32, 48, 64, 96, 128]
    assert heldout.picks(24, [24, 32, 48], tried) == {24: "spot", 48: "in", 64: "out"}
    # the spot is the largest: the member checked is the smallest
    assert heldout.picks(24, [16, 24], tried) == {24: "spot", 16: "in", 32: "out"}
    assert heldout.picks(32, [32], tried) == {32: "spot", 48: "out"}  # the spot alone
    assert heldout.picks(96, [64, 96, 128], tried) == {96: "spot", 128: "in"}  # none above


def test_a_member_agrees_within_the_margin_and_an_excluded_one_when_slower():
    rows = [{"batch_size": 24, "verdict": "spot", "time": 2.0},
            {"batch_size": 48, "verdict": "in", "time": 2.3},
            {"batch_size": 64, "verdict": "out", "time": 1.9},
            {"batch_size": 96, "verdict": "out", "time": math.inf}]
    got = {r["batch_size"]: (r["ratio"], r["agrees"]) for r in heldout.agreement(rows, 0.10)}
    assert got[24] == (1.0, None)
    assert got[48][1] is False and round(got[48][0], 2) == 1.15  # more than 10% slower
    assert got[64][1] is False  # the excluded one came out faster: it disagrees
    assert got[96] == (math.inf, True)  # censored: slower than any time
