"""The report's pure parts on hand-made runs that follow a known cost model: the answer (steps x
seconds per step beside the direct measurement), the cost model, the metrics and the text."""

import math

import pytest

from conftest import B_NOISE, S_MIN, T0, C, fake_run, tiny_params
from sweetspot import paths
from sweetspot.answer import analysis, costmodel, estimate
from sweetspot.data.idx import md5
from sweetspot.report import checks, firstscreen, report, writeup
from sweetspot.report.answer import (
    Answer,
    cost_model,
    final_model,
    noise_scale,
    reproduced_here,
    validations,
)

# A validation as `sweetspot validate` writes it (validate.main): one stack, three batch sizes,
# two seeds each, one run censored (its time written as null).
CHECK = {
    "stack": "cpu-1thread-tensor", "target": 0.97, "batch_sizes": [16, 32, 64], "seeds": [0, 1],
    "predicted_spot": 32, "measured_spot": 64, "median_abs_error": 0.08, "spot_near": True,
    "goal_met": True,
    "runs": [{"batch_size": b, "seed": s, "lr": 1.0, "time": t, "run_id": f"run{b}s{s}"}
             for b, times in ((16, [2.0, 2.1]), (32, [1.6, 1.5]), (64, [1.4, None]))
             for s, t in enumerate(times)],
    "per_batch": [{"batch_size": 16, "estimate": 1.9, "low": 1.8, "high": 2.0, "measured": 2.05},
                  {"batch_size": 32, "estimate": 1.4, "low": 1.3, "high": 1.5, "measured": 1.55},
                  {"batch_size": 64, "estimate": 1.5, "low": 1.4, "high": 1.6, "measured": 1.4}],
}


# The headline loader's steptime document, as far as the text reads it: a quiet measurement.
TIMING = {"steptime": {"rounds": 25, "min_examples": 3000, "min_steps": 5},
          "load": {"rounds": 25, "quiet_rounds": 24, "other": 0.02, "steal": 0.0, "busy": False}}


def text(spots, cells, checks=(), timing=TIMING, loaders=None, final=None, here=None):
    """report.md for an Answer made of these parts (the rest empty)."""
    params = tiny_params(sweep={"targets": [0.97], "lrs": [0.3, 1.0], "lr_policy": "tuned"})
    cost = cost_model(spots[0.97]["per_batch"])
    loaders = loaders or {"tensor": {"spots": spots, "cost": cost}}
    return writeup.markdown(Answer(
        params=params, spots=spots, cells=cells, loaders=loaders, timing=timing,
        noise=noise_scale(cells), validations=list(checks), final=final, here=here,
        measured_on={"dataset": "MNIST"}), ["cost_model"])


def test_answer_recovers_the_generating_model(answer):
    results, cells, seconds, spots = answer
    spot = spots[0.97]
    best = min((16, 32, 64, 128, 256),
               key=lambda b: costmodel.predicted_time(b, S_MIN, B_NOISE, T0, C))
    assert spot["batch_size"] == best and spot["lr"] == 1.0 and spot["direct"] == best
    assert spot["estimate"] == pytest.approx(costmodel.predicted_time(best, S_MIN, B_NOISE, T0, C))
    assert spot["median_steps"] == pytest.approx(S_MIN * (1 + B_NOISE / best))
    assert spot["seconds_per_step"] == pytest.approx(T0 + C * best)
    assert spot["share"] == 1.0  # no noise: every resample agrees
    # 64's true time is 0.4% above 32's (B* = 45 sits between them): a tie, however certain
    region = {r["batch_size"]: r for r in spot["region"]}
    assert set(region) == {32, 64} and best == 32
    assert region[64]["distance"] == pytest.approx(costmodel.predicted_time(
        64, S_MIN, B_NOISE, T0, C) / costmodel.predicted_time(32, S_MIN, B_NOISE, T0, C) - 1)
    assert spot["censored"] == [1024]


def test_answer_sets_the_estimate_beside_the_measured_time(answer):
    results, cells, seconds, spots = answer
    rows = spots[0.97]["per_batch"].set_index("batch_size")
    assert list(rows.index) == [16, 32, 64, 128, 256, 1024]
    hit = rows.drop(index=1024)
    # fake_run's clock is steps x step time exactly, so the model's check reads 1
    assert hit["measured"].to_numpy() == pytest.approx(hit["estimate"].to_numpy())
    assert hit["ratio"].to_numpy() == pytest.approx(1.0)
    assert hit["step_ratio"].to_numpy() == pytest.approx(1.0)  # the machine's factor alone
    assert not rows.loc[1024, "reached"] and rows.loc[1024, "measured"] == math.inf


def test_cost_model_recovers_b_noise_and_b_star(answer):
    results, cells, seconds, spots = answer
    model = cost_model(spots[0.97]["per_batch"])
    assert model["s_min"] == pytest.approx(S_MIN, rel=0.02)
    assert model["b_noise"] == pytest.approx(B_NOISE, rel=0.02)
    assert (model["t0"], model["c"]) == (pytest.approx(T0, rel=0.02), pytest.approx(C, rel=0.02))
    assert model["b_star"] == pytest.approx(math.sqrt(B_NOISE * T0 / C), rel=0.02)
    assert noise_scale(cells) == {"early": 80.0, "averaged": 400.0}


def test_cost_model_needs_two_batch_sizes_that_reached(answer):
    results, cells, seconds, spots = answer
    rows = spots[0.97]["per_batch"]
    assert cost_model(rows[rows["batch_size"].isin([32, 1024])]) is None


def test_metrics_name_the_sweet_spot_and_the_censored(answer):
    results, cells, seconds, spots = answer
    spot = spots[0.97]
    doc = report.metrics_doc(spots, [0.97])
    assert (doc["target"], doc["batch_size"], doc["lr"]) == (0.97, spot["batch_size"], 1.0)
    assert doc["time_to_target"] == spot["estimate"] and doc["share"] == 1.0
    assert doc["region"] == [32, 64] and "as fast as the spot" in doc["region_rule"]
    one = doc["per_target"]["0.97"]
    assert one["censored"] == [1024] and one["direct"] == spot["batch_size"]
    assert one["measured"] == pytest.approx(spot["estimate"])
    assert "per_batch" not in one  # a DataFrame has no place in a metrics file


def test_text_names_the_sweet_spot_and_keeps_the_censored(answer):
    results, cells, seconds, spots = answer
    md = text(spots, cells)
    b = spots[0.97]["batch_size"]
    assert md.startswith("# Which batch size reaches the target fastest here? MNIST")
    assert "**Sweet region: batch sizes 32-64, a tie within 1%**, at learning rate 1 (the " \
           "question trained at 0.1" in md
    assert f"**batch size {b}**" in md and "wins 100% of the resamples" in md
    assert "Measured on a busy machine" not in md and "24 of 25 rounds quiet" in md
    assert "B_noise = 40" in md
    factors = md.split("## The two factors")[1]
    row = next(line for line in factors.splitlines() if line.startswith("| 1024 |"))
    assert "not reached" in row and "0/2" in row  # censored, never dropped


def test_a_spot_that_wins_under_80_percent_of_resamples_is_named_as_a_tie(answer):
    results, cells, seconds, spots = answer
    spot = spots[0.97]
    split = spot["per_batch"].assign(share=spot["per_batch"]["batch_size"].map({32: 0.6, 64: 0.4}))
    md = text({0.97: {**spot, "share": 0.6, "per_batch": split.fillna({"share": 0.0})}}, cells)
    first = md.split("\n\n")[1]
    assert "No batch size wins 80% of the resamples of seeds and timing rounds: **32 or 64** " \
           "win 60% and 40%, a tie the data do not break. Batch 32, which wins most," in first
    assert "**batch size 32**" not in md


def test_text_explains_what_makes_the_comparison_fair(answer):
    results, cells, seconds, spots = answer
    md = text(spots, cells)
    assert "## What makes the comparison fair" in md
    assert "chosen by steps, not seconds" in md
    assert "| 1024 | 0.3, 1 | 4 | 1 |" in md  # what the budget cut off: rates, runs, epochs
    assert "never by the clock" in md


def test_text_sets_the_two_factors_beside_the_measurement(answer):
    results, cells, seconds, spots = answer
    md = text(spots, cells)
    assert "## The two factors, and the direct measurement beside them" in md
    assert ("| measured (s) | measured / estimate | runs' µs per step | runs' / estimate's "
            "| clock (s) |") in md
    b = spots[0.97]["batch_size"]
    row = next(line for line in md.splitlines() if line.startswith(f"| {b} | 1 |"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[-5] == "1.00" and cells[-3] == "1.000"  # fake_run: the estimate's own seconds
    assert row.count(f"| {T0 * 1e6 + C * b * 1e6:.0f} |") == 2  # the estimate's and the runs'
    assert "Measured over estimated: median 1.00" in md
    assert "The machine's factor alone, the runs' seconds per step over the estimate's: " in md
    assert "## The machine's factor" in md and "fastest round" in md


def test_text_says_plainly_when_the_machine_was_busy(answer):
    results, cells, seconds, spots = answer
    busy = {**TIMING, "load": {"rounds": 25, "quiet_rounds": 1, "other": 0.48, "steal": 0.01,
                               "busy": True}}
    md = text(spots, cells, timing=busy)
    first = md.split("**Sweet region")[0]  # before the answer
    assert "**Measured on a busy machine.**" in first and "other processes took 48%" in first
    assert "the answer, are for a busy machine" in first


def test_text_has_a_validation_section_only_when_there_are_checks(answer):
    results, cells, seconds, spots = answer
    assert "Validation" not in text(spots, cells)
    md = text(spots, cells, [CHECK])
    assert "## Validation on stacks the sweep did not use" in md
    assert "| cpu-1thread-tensor | 32 | 64 | [16, 32, 64] | 6 | 8% |" in md
    assert "met on 1 of 1: cpu-1thread-tensor" in md
    missed = {**CHECK, "stack": "cuda-tensor", "goal_met": False, "median_abs_error": None}
    md = text(spots, cells, [CHECK, missed])
    assert "| cuda-tensor | 32 | 64 | [16, 32, 64] | 6 | - |" in md  # no error: measured none
    assert "met on 1 of 2: cpu-1thread-tensor" in md


def test_a_validation_made_with_an_older_steps_table_says_so(root):
    """CHECK records no MD5 (made before validations did): older, as is one whose MD5 is not the
    table's; by default the table is the committed file."""
    (root / paths.STEPS_TABLE).parent.mkdir()
    (root / paths.STEPS_TABLE).write_text("batch_size,steps\n32,4969\n")
    now = {**CHECK, "stack": "cpu-2threads", paths.STEPS_MD5: md5(root / paths.STEPS_TABLE)}
    old = {**CHECK, "stack": "cuda-tensor", paths.STEPS_MD5: "0" * 32}
    md = "\n".join(checks.validation_section([now, old, CHECK]))
    assert "| cpu-2threads | 32 | 64 | [16, 32, 64] | 6 | 8% | current |" in md
    assert "| cuda-tensor | 32 | 64 | [16, 32, 64] | 6 | 8% | older |" in md
    assert "| cpu-1thread-tensor | 32 | 64 | [16, 32, 64] | 6 | 8% | older |" in md
    assert "Predicted from an older table of steps than this report's" in md
    assert "recorded): cuda-tensor, cpu-1thread-tensor." in md
    assert "this table of steps" not in md  # the intro claims no table for them
    md = "\n".join(checks.validation_section([now], table_md5=now[paths.STEPS_MD5]))
    assert "| current |" in md and "older" not in md


def test_no_step_times_is_no_answer_not_a_crash():
    spots = estimate.answers([fake_run(32, 1.0, 0)], {4096: [0.01] * 3}, [0.97], resamples=200)
    spot = spots[0.97]
    assert spot["batch_size"] is None and "no batch size with steps" in spot["reason"]
    assert spots[0.97]["per_batch"].empty


def test_each_data_path_is_answered_from_the_same_steps(answer):
    """A slower path (the question's DataLoader: 3x the fixed cost, 4x the cost per example)
    gets its own region, spot and cost model from the same runs' steps, with nothing measured
    beside it (no run trained on it)."""
    results, cells, seconds, spots = answer
    slow = {b: [3 * T0 + 4 * C * b] * 7 for b in seconds}
    loader = estimate.answers(results, slow, [0.97], resamples=200, runs=[])
    rows = loader[0.97]["per_batch"]
    assert rows["median_steps"].tolist() == spots[0.97]["per_batch"]["median_steps"].tolist()
    assert rows["measured"].isna().all() and loader[0.97]["direct"] is None
    model = cost_model(rows)
    assert (model["t0"], model["c"]) == (pytest.approx(3 * T0, rel=0.02),
                                         pytest.approx(4 * C, rel=0.02))
    both = {"tensor": {"spots": spots, "cost": cost_model(spots[0.97]["per_batch"])},
            "torchvision": {"spots": loader, "cost": model}}
    md = text(spots, cells, loaders=both)
    assert "## The question's own data pipeline" in md
    ratio = loader[0.97]["estimate"] / spots[0.97]["estimate"]
    assert (f"| torchvision | 0.97 | {firstscreen.region_text(loader[0.97])} | "
            f"{loader[0.97]['batch_size']} |") in md
    assert f"the same steps take {ratio:.1f}x as long" in md
    row = next(line for line in md.splitlines()
               if line.startswith(f"| torchvision | {model['t0'] * 1e6:.0f} |"))
    assert f"| {model['b_star']:.0f} | {loader[0.97]['batch_size']} |" in row


def test_the_final_model_is_scored_on_the_test_labels(answer):
    results, cells, seconds, spots = answer
    labels = [i % 10 for i in range(1000)]
    wrong = {5: 3, 7: 1}  # every 5 read as 3, every 7 as 1
    guesses = "".join(str(wrong.get(y, y)) for y in labels)
    runs = [{**r, "test_predictions": guesses, "run_id": "abc"} for r in results]
    final = final_model(runs, spots[0.97]["per_batch"], spots[0.97], labels)
    assert final["batch_size"] == spots[0.97]["batch_size"] and final["accuracy"] == 0.8
    assert final["per_class"][5] == 0.0 and final["per_class"][0] == 1.0
    assert final["matrix"].loc[5, 3] == 100 and final["matrix"].to_numpy().sum() == 1000
    md = text(spots, cells, final=final)
    assert "## The final model" in md and "Its weakest class is 5 (0.0%)" in md
    assert "| accuracy | 100.0% |" in md
    assert final_model(results, spots[0.97]["per_batch"], spots[0.97], labels) is None


def test_a_report_draws_only_its_own_problems_validations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("MNIST-mlp-cpu-a", "MNIST-cnn-cpu-a", "FashionMNIST-mlp-cpu-b"):
        paths.write_json(paths.VALIDATION / f"validate-{name}.json", {"stack": name})
    mlp = tiny_params(data={"dataset": "MNIST"}, train={"network": "mlp"})
    assert [d["stack"] for d in validations(mlp)] == ["MNIST-mlp-cpu-a"]
    cnn = tiny_params(data={"dataset": "MNIST"}, train={"network": "cnn"})
    assert [d["stack"] for d in validations(cnn)] == ["MNIST-cnn-cpu-a"]


def sampled(rows: list[dict] | None = None) -> dict:
    """The reproduce stage's document, as far as the text reads it: five cells sampled."""
    rows = rows or []
    return {"spot": 32, "region": [16, 32, 64], "sampled": 5,
            "identical": 5 - sum(not r["identical"] for r in rows), "seconds": 61.0,
            "rows": rows, "runs": []}


def timed_here(results, factor):
    """reproduced_here's answer for a sample of runs timed here, whose step time is `factor` x
    the one steptime measured; every cell trained here."""
    seconds = {b: [(T0 + C * b) / factor] * 7 for b in (16, 32, 64, 128, 256, 1024)}
    spots = estimate.answers(results, seconds, [0.97], resamples=50)
    table = analysis.target_table(results, [0.97], samples=7)
    return spots, {"sample": sampled(), "cells": len(results),
                   "trained_here": [f"cell{i}" for i in range(len(results))], "elsewhere_on": [],
                   "self_check": estimate.self_check(estimate.beside_measured(
                       spots[0.97]["per_batch"], table, 0.97))}


def test_a_quarter_off_opens_the_report_with_the_finding_and_the_fix(answer):
    results, cells, _, _ = answer
    spots, here = timed_here(results, 1.25)  # the runs read 1.25x the estimate
    md = text(spots, cells, here=here)
    first = md.split("**Sweet region")[0]
    assert "These seconds per step are not this machine's now" in first
    assert "took 1.25x the estimate" in first and "`dvc repro -f -s steptime && dvc repro`" in first
    assert "this is beyond it" in md


def test_five_percent_off_is_within_the_goal_and_said_only_in_its_section(answer):
    results, cells, _, _ = answer
    spots, here = timed_here(results, 1.05)
    md = text(spots, cells, here=here)
    assert "not this machine's now" not in md
    assert "## Reproduced here" in md and "took 1.05x the estimate" in md
    assert "within it: the seconds per step are this machine's" in md
    assert "All 24 cells behind this answer were trained on this machine." in md


def test_no_run_timed_here_leaves_the_estimate_unchecked(answer):
    results, cells, _, spots = answer
    here = {"sample": sampled(), "self_check": None, "cells": 24, "trained_here": [],
            "elsewhere_on": ["AMD EPYC (AVX2)"]}
    md = text(spots, cells, here=here)
    assert "nothing checks the estimate here" in md and "not this machine's" not in md
    assert ("None of the 24 cells behind this answer was trained on this machine: they came "
            "with the checkout, trained on AMD EPYC (AVX2).") in md


def test_the_sample_sentence_says_how_far_a_cell_moved_and_why():
    assert checks.sample_sentence(sampled()).startswith(
        "5 of 5 sampled cells reproduced their steps (every seed of the sweet spot, batch 32, "
        "retrained here in 61 s")
    edges = [{"role": "edge", "batch_size": b, "identical": True} for b in (16, 64)]
    assert ("batch 32, and one seed of 16 and 64, the sweet region's other edges, retrained" in
            checks.sample_sentence(sampled(edges)))
    moved = {"name": "b12-lr1.0-s0-tensor", "batch_size": 12, "lr": 1.0, "seed": 0,
             "role": "edge", "identical": False, "ratio": 1.0256,
             "committed": {"0.97": 7800.0, "0.95": 5000.0},
             "here": {"0.97": 8000.0, "0.95": 5000.0},
             "causes": ["the CPU's vector width (AVX2 there, AVX512 here)"]}
    said = checks.sample_sentence(sampled([moved]))
    assert said.startswith("4 of 5 sampled cells reproduced their steps")
    assert ("Batch 12 at lr 1, seed 0: 7800 -> 8000 steps to 0.97, 1.026x; likely the CPU's "
            "vector width (AVX2 there, AVX512 here).") in said
    unexplained = {**moved, "causes": [], "here": {"0.97": None, "0.95": 5000.0}, "ratio": None}
    assert ("7800 -> never steps to 0.97; not explained by the vector width, the torch version "
            "or the rate.") in checks.sample_sentence(sampled([unexplained]))


def test_reproduced_here_checks_the_sample_and_names_the_cells_trained_here(answer):
    results, _, _, spots = answer
    named = [{**r, "name": f"cell{i}", "provenance": {"host": "here" if i in (2, 3) else "there",
                                                       "cpu_model": "AMD EPYC"}}
             for i, r in enumerate(results)]
    sample = {**sampled(), "runs": named[2:4]}  # the sample: batch 16's two seeds at lr 1
    here = reproduced_here(named, spots[0.97]["per_batch"], [0.97], sample, 20)
    assert here["trained_here"] == ["cell2", "cell3"] and here["cells"] == 24
    assert here["elsewhere_on"] == ["AMD EPYC (vector width unrecorded)"]
    assert here["self_check"]["median"] == pytest.approx(1.0)  # these runs: the cost model's
    assert reproduced_here(named, spots[0.97]["per_batch"], [0.97], None, 20) is None
    unread = reproduced_here(named, spots[0.97]["per_batch"], [0.97], sample, None)
    assert unread["self_check"] is None  # no seconds' rounds: no run's own seconds to read




def test_the_first_screen_says_how_far_the_spots_time_moves_to_its_rates_neighbours(answer):
    results, _, _, spots = answer
    spot = spots[0.97]
    b = spot["batch_size"]
    slower = fake_run(b, 1.732, 0)  # a neighbour that takes 1.25x the steps, on one seed
    for p in slower["curve"]:
        p["step"] *= 1.25
    steps = estimate.steps_table([*results, slower], [0.97])
    said = firstscreen.rate_moves(steps, spot)
    assert said == (f" Its rate against the others tried at batch {b}: lr 0.3 never reaches it "
                    "(2 seeds), lr 1.732 takes 1.25x its steps (1 seed); at one batch size the "
                    "seconds per step do not depend on the rate, so the time moves as much.")
    assert firstscreen.rate_moves(steps[steps["lr"] == 1.0], spot) == ""
