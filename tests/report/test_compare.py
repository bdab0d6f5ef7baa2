"""Beyond one network: each problem's summary, and the report's comparison of them."""

import math

import pandas as pd
import pytest

from conftest import tiny_params
from sweetspot.report import compare, figures
from sweetspot.report.answer import cost_model, noise_scale


def problem(network, dataset, spot, b_star, relative=None, forecast=None, region=None,
            machine="AMD EPYC (family 25, model 1, stepping 1; AVX2; L2 512K)"):
    return {"machine": machine, "network_key": network, "network": network.upper(),
            "dataset": dataset, "target": 0.97, "spot": spot, "estimate": 2.0,
            "region": region or [spot], "b_noise": 40.0,
            "t0": 1e-4, "c": 1e-5, "b_star": b_star, "b_simple_early": 80.0,
            "b_simple_averaged": 300.0, "sqrt_n": math.sqrt(60000),
            "relative_time": relative or {spot: 1.0, 256: 3.0}, "forecast": forecast}


REF = problem("mlp", "MNIST", 32, 22.0)


def test_a_summary_holds_the_answer_and_the_cost_model(answer):
    _, cells, _, spots = answer
    model = cost_model(spots[0.97]["per_batch"])
    made = {"made_at": "2026-11-30T14:00:00+00:00", "headline": "early", "t0": 1e-4,
            "c": 1e-5, "per_noise": {"early": {"b_simple": 50.0, "b_star": 22.4, "spot": 24}}}
    s = compare.summary(tiny_params(), "MLP", spots[0.97], model, noise_scale(cells), made,
                        "this machine")
    assert s["spot"] == spots[0.97]["batch_size"] and s["b_star"] == model["b_star"]
    assert s["relative_time"][s["spot"]] == 1.0 and min(s["relative_time"].values()) == 1.0
    assert 1024 not in s["relative_time"]  # censored: no time to draw ...
    assert 1024 in s["tried"]  # ... but tried: a region is contiguous only among all tried
    assert s["forecast"] == {"made_at": made["made_at"], "b_simple": 50.0, "b_star": 22.4,
                             "spot": 24, "t0": 1e-4, "c": 1e-5}
    assert s["sqrt_n"] == pytest.approx(math.sqrt(6000))  # the tiny profile's subset
    assert s["machine"] == "this machine" and s["race"] is None


@pytest.mark.parametrize(("shares", "named"), [
    ({24: 0.56, 32: 0.43, 48: 0.01}, [24, 32]),  # 24 wins most, not 80%: 24 or 32
    ({24: 0.85, 32: 0.15, 48: 0.0}, [24]),  # 24 wins 80% and more: named alone
    ({24: 0.40, 32: 0.35, 48: 0.25}, [24, 32, 48]),  # three before 80%
])
def test_a_spot_that_wins_under_80_percent_is_named_as_the_tie(shares, named):
    rows = pd.DataFrame({"batch_size": list(shares), "share": list(shares.values()),
                         "estimate": [2.0, 2.0, 2.1]})
    assert compare.tie({"batch_size": 24, "per_batch": rows}) == named
    tied = problem("mlp", "MNIST", 24, 22.0, region=[24, 32, 48])
    assert f"| {' or '.join(map(str, named))} |" in compare.problems_table(
        [{**tied, "tie": named}])[2]


def test_the_table_prints_a_region_as_the_set_it_is():
    relative = {12: 1.1, 16: 1.0, 24: 1.05, 32: 1.02, 48: 1.1, 64: 1.12, 96: 1.14}
    holed = problem("cnn", "MNIST", 16, 32.0, relative=relative, region=[12, 16, 32, 48, 96])
    tight = problem("cnn", "FashionMNIST", 16, 32.0, relative=relative, region=[12, 16, 24])
    lines = compare.problems_table([REF, holed, tight])
    assert "| 12-24 |" in lines[3] and "| {12, 16, 32, 48, 96} |" in lines[4]  # ordered


@pytest.mark.parametrize(("spot", "b_star", "says"), [
    (64, 44.0, ["up (22 -> 44, x2.00)", "up (32 -> 64, x2.00)", "yes", "yes"]),
    (36, 12.0, ["down (22 -> 12, x0.55)", "about the same (32 -> 36, x1.12)", "no", "no"]),
    (256, 24.0, ["about the same (22 -> 24, x1.09)", "up (32 -> 256, x8.00)", "no", "no"]),
])
def test_the_moves_read_both_against_the_reference(spot, b_star, says):
    assert compare.moves(problem("cnn", "MNIST", spot, b_star), REF) == says


def test_a_spot_inside_the_other_sweet_region_is_no_move():
    flat = problem("cnn", "MNIST", 16, 32.0, region=[12, 16, 24, 32, 48, 64, 96, 128])
    assert compare.moves(flat, REF) == ["up (22 -> 32, x1.45)",
                                        "none the data can tell (32 -> 16)", "no", "yes"]


def test_the_section_puts_the_reference_first_and_gives_a_row_per_problem():
    cnn = problem("cnn", "FashionMNIST", 16, 11.0, forecast={
        "made_at": "2026-11-30T14:10:00+00:00", "b_star": 12.3, "spot": 12, "b_simple": 9.0,
        "t0": 1e-4, "c": 1e-5})
    lines = compare.section([cnn, REF])
    rows = [line for line in lines if line.startswith("| MLP") or line.startswith("| CNN")]
    assert rows[0].startswith("| MLP | MNIST |") and rows[1].startswith("| CNN | FashionMNIST |")
    assert "12 (B* 12, 2026-11-30T14:10)" in rows[1]
    moved = [line for line in lines if line.startswith(("| mlp on", "| cnn on"))]
    assert moved[0] == "| mlp on MNIST | - | - | - | - | - | - | 256: x3.00 |"
    assert moved[1].startswith("| cnn on FashionMNIST | down (22 -> 11, x0.50) |")
    assert moved[1].endswith("| 12 (B* 12) | outside | 256: x3.00 |")
    said = [line for line in lines if line]
    assert len(said) == len(set(said))  # no line said twice
    assert "![" in lines[-2] and "figures/comparison.png" in lines[-2]
    assert compare.section([REF]) == []  # nothing to compare
    assert not any(line.startswith("- Measured elsewhere") for line in lines)  # one machine


def test_the_section_names_problems_whose_seconds_are_another_machines():
    there = problem("cnn", "MNIST", 16, 32.0, machine="AMD EPYC (family 25, model 17, "
                    "stepping 1; AVX512; L2 1024K)")
    older = problem("mlp", "FashionMNIST", 48, 35.0, machine=None)
    said = [line for line in compare.section([REF, there, older])
            if line.startswith("- Measured elsewhere")]
    assert said == [
        "- Measured elsewhere: the seconds per step behind mlp on MNIST are from AMD EPYC "
        "(family 25, model 1, stepping 1; AVX2; L2 512K); those of cnn on MNIST on AMD EPYC "
        "(family 25, model 17, stepping 1; AVX512; L2 1024K); mlp on FashionMNIST on a machine "
        "its summary does not name. Their t0, c, seconds and B* are each machine's own, so a "
        "move of B* between them mixes two machines' speeds with the problems' difference."]


def test_the_figure_draws_one_curve_per_problem():
    curves = compare.curves([REF, problem("cnn", "MNIST", 64, 40.0)])
    assert set(curves["problem"]) == {"mlp on MNIST", "cnn on MNIST"} and len(curves) == 4
    fig = figures.comparison(curves)
    assert len(fig.axes[0].get_legend().get_texts()) == 2
    figures.plt.close(fig)
