"""The report's checks in words, on hand-made verdicts: the race's table and the held-out one."""

import math

from sweetspot.report import checks
from sweetspot.sweep import race


def test_the_race_gives_each_batch_size_its_seeds_verdict_and_reason():
    def size(status, distance, **why):
        return {"status": status, "lr": 1.0, "seeds": 3, "distance": distance, **why}

    raced = {"budget": {"margin": 0.1, "max_seeds": 8, "max_cells": 40}, "cells": 4,
             "seconds": 60.0, "added": {16: 0, 32: 2, 48: 0, 64: 2, 128: 0}, "rates": {},
             "batch": {16: size(race.OUT, 1.02), 32: size(race.SPOT, 0.0),
                       48: size(race.IN, 0.01, as_fast=0.4, bound=1.05),
                       64: size(race.UNDECIDED, 0.03, as_fast=0.3, bound=1.2),
                       128: size(race.OUT, math.inf)}}
    lines = checks.race_section(raced)
    rows = {int(line.split("|")[1]): line for line in lines if line[:3] in ("| 1", "| 3", "| 4",
                                                                             "| 6")}
    assert lines[0] == "## The race: seeds where the region was undecided"
    assert "It added 4 cells, 60 s of training and evaluation." in " ".join(lines)
    assert rows[16] == ("| 16 | 1 | 3 (0) | 2.02 | out | as fast as the spot in under 5% of "
                        "resamples, and over 5% slower |")
    assert rows[128].endswith("| 3 (0) | censored | out | censored at its rate |")
    assert rows[32].endswith("| 3 (2) | 1.00 | the spot | wins the most resamples |")
    assert rows[48].endswith("| in | as fast as the spot in 40% of resamples; 95% bound 1.050 "
                             "<= 1.10 |")
    assert "| in, undecided (the budget was spent) | as fast as the spot in 30%" in rows[64]
    assert "Rates still close" not in " ".join(lines)
    assert checks.race_section(None) == []


def test_the_held_out_table_marks_a_disagreement():
    doc = {"network": "mlp", "dataset": "MNIST", "rows": [
        {"batch_size": 24, "verdict": "spot", "seeds": [100, 101], "median_steps": 900.0,
         "ratio": 1.0, "agrees": None},
        {"batch_size": 48, "verdict": "in", "seeds": [100, 101], "median_steps": 700.0,
         "ratio": 1.15, "agrees": False}]}
    lines = checks.heldout_section([doc])
    assert lines[0] == "## Held out: fresh seeds against the verdicts"
    assert "| mlp on MNIST | 24 | spot | 100, 101 | 900 | 1.00 | - |" in lines
    assert "| mlp on MNIST | 48 | in | 100, 101 | 700 | 1.15 | **no** |" in lines
    assert checks.heldout_section([]) == []
