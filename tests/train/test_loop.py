"""train_one on a 6000-example subset of MNIST: the loop, its clock, evaluation and the target.
Wall-clock comparisons live in `sweetspot bench` (reports/bench.json), never in a test."""

import pytest
import torch

from conftest import tiny_params
from sweetspot.data.load import load_data
from sweetspot.sweep import sweep
from sweetspot.train import loop
from sweetspot.train.loop import Tally, stop_reason, train_one, warmup_factor
from sweetspot.train.run import summary_metrics


def tiny_cfg(**overrides):
    return tiny_params(train=overrides).train


def test_evaluation_stays_off_the_clock(tiny_data, monkeypatch):
    """Evaluating after every batch is booked as eval_time, and changes nothing of the training.
    The training clock is a stand-in that moves a millisecond a read, and each evaluation moves it
    on by 1000 s: none of that reaches the training time. (How little a real evaluation moves the
    training clock is measured by `sweetspot bench`, eval_off_clock.)"""
    now = [0.0]

    def stand_in(device):
        now[0] += 1e-3
        return now[0]

    def a_long_evaluation(point):
        now[0] += 1000.0

    rare = train_one(tiny_cfg(eval_every_examples=6000, target_accuracy=1.0), tiny_data)
    monkeypatch.setattr(loop, "clock", stand_in)
    often = train_one(tiny_cfg(eval_every_examples=64, target_accuracy=1.0), tiny_data,
                      on_eval=a_long_evaluation)
    assert rare["steps"] == often["steps"] == 94
    assert len(often["curve"]) == 94 and len(rare["curve"]) == 1
    assert often["train_time"] < 1.0  # 94 evaluations x 1000 s, none of it on the clock
    assert often["eval_time"] > 0 and often["curve"][-1]["time"] == often["train_time"]
    times = [p["time"] for p in often["curve"]]
    assert times == sorted(times) and len(set(times)) == len(times)  # the clock only runs on
    # ...and the two runs are the same training: evaluation does not touch the weights or streams
    assert often["curve"][-1]["test_acc"] == rare["curve"][-1]["test_acc"]
    assert often["curve"][-1]["test_loss"] == rare["curve"][-1]["test_loss"]


def test_time_to_target_is_the_first_evaluation_at_or_above_it(tiny_data):
    result = train_one(tiny_cfg(target_accuracy=0.6, stop_at_target=True), tiny_data)
    accs = [p["test_acc"] for p in result["curve"]]
    first = next(i for i, a in enumerate(accs) if a >= 0.6)
    assert len(accs) == first + 1  # stopped there
    hit = result["curve"][first]
    assert (result["time_to_target"], result["steps_to_target"]) == (hit["time"], hit["step"])
    assert result["epochs_to_target"] == pytest.approx(hit["examples"] / 6000)



def test_a_seconds_budget_censors_a_single_run(tiny_data):
    result = train_one(tiny_cfg(max_seconds=1e-9, target_accuracy=0.99), tiny_data)
    assert result["outcome"] == "not_reached" and len(result["curve"]) == 1  # first evaluation


def test_the_sweeps_stopping_rule_reads_no_clock():
    """A cell stops for divergence or its target, never for the time it took: the same training
    clock, from nothing to a day, gives the same decision, so its steps are the problem's."""
    cell = sweep.cell_params(tiny_params(train={"max_seconds": 5}),
                             sweep.Cell(64, 1.0, 0, "tensor")).train
    below, at = ({"step": 9, "test_acc": a, "train_loss": 0.1, "test_loss": 0.1} for a in (0, 1))
    for curve, diverged, why in (([below], False, None), ([below, at], False, "target"),
                                 ([below], True, "diverged")):
        reasons = {stop_reason(cell, Tally(train_time=t, curve=curve, diverged=diverged))
                   for t in (0.0, 4.9, 5.0, 86_400.0)}
        assert reasons == {why}
    single = tiny_cfg(max_seconds=5)  # a single run may still have a clock budget
    assert stop_reason(single, Tally(train_time=4.9)) is None
    assert stop_reason(single, Tally(train_time=5.0)) == "seconds"



def test_unreached_target_is_censored_not_an_error(tiny_data):
    result = train_one(tiny_cfg(target_accuracy=0.999), tiny_data)
    assert result["outcome"] == "not_reached"
    assert result["time_to_target"] is None
    assert "time_to_target" not in summary_metrics(result)



def test_same_seed_same_training(tiny_data):
    a = train_one(tiny_cfg(), tiny_data)
    b = train_one(tiny_cfg(), tiny_data)
    c = train_one(tiny_cfg(seed=1), tiny_data)
    losses = lambda r: [p["train_loss"] for p in r["curve"]]  # noqa: E731
    assert losses(a) == losses(b)
    assert losses(a) != losses(c)



def test_compiled_training_is_the_same_training_compiled_off_the_clock(tiny_data):
    exact = train_one(tiny_cfg(lr=0.1), tiny_data)
    compiled = train_one(tiny_cfg(lr=0.1, compile=True), tiny_data)
    assert exact["compile_time"] == 0 and compiled["compile_time"] > 0  # 64 and 6000 % 64 = 48
    assert summary_metrics(compiled)["compile_time"] == compiled["compile_time"]
    for a, b in zip(exact["curve"], compiled["curve"], strict=True):
        assert a["step"] == b["step"]
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
        assert b["test_acc"] == pytest.approx(a["test_acc"], abs=2e-3)  # a few of 10000 images



def test_lr_warmup_ramps_the_rate(tiny_data):
    plain = train_one(tiny_cfg(noise_scale=False), tiny_data)
    one = train_one(tiny_cfg(noise_scale=False, lr_warmup_steps=1), tiny_data)
    ramp = train_one(tiny_cfg(noise_scale=False, lr_warmup_steps=50), tiny_data)
    loss = lambda r: r["curve"][0]["train_loss"]  # noqa: E731
    assert loss(one) == loss(plain)  # a one-step ramp is the full rate from the start
    assert loss(ramp) != loss(plain)



def test_noise_scale_is_estimated_off_the_clock(tiny_data):
    on = train_one(tiny_cfg(), tiny_data)
    off = train_one(tiny_cfg(noise_scale=False), tiny_data)
    assert [p["train_loss"] for p in on["curve"]] == [p["train_loss"] for p in off["curve"]]
    assert all(p["b_simple"] > 0 for p in on["curve"]) and "b_simple" not in off["curve"][0]
    assert on["b_simple_mean"] > 0 and off["b_simple_mean"] is None



@pytest.mark.slow
def test_both_loaders_see_the_same_examples_and_learn_alike(mnist_root):
    """One full epoch at batch 1000 (60 steps, a partial-free split) through each data path."""
    data = load_data("MNIST", torch.device("cpu"), 0, mnist_root)
    cfg = dict(train_examples=0, batch_size=1000, eval_every_examples=60000)
    tensor = train_one(tiny_cfg(**cfg), data)
    question = train_one(tiny_cfg(loader="torchvision", **cfg), data)
    for key in ("steps", "examples"):
        assert tensor[key] == question[key] == {"steps": 60, "examples": 60000}[key]
    assert tensor["final_test_acc"] > 0.7
    assert abs(tensor["final_test_acc"] - question["final_test_acc"]) < 0.03



def test_the_last_partial_batch_is_kept(tiny_data):
    result = train_one(tiny_cfg(batch_size=1024), tiny_data)  # 5 x 1024 + 880
    assert (result["steps"], result["examples"]) == (6, 6000)



def test_warmup_factor_ramps_to_one():
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_the_noise_scale_every_kth_evaluation(tiny_data):
    every = train_one(tiny_cfg(eval_every_examples=600), tiny_data)  # 10 evaluations
    third = train_one(tiny_cfg(eval_every_examples=600, noise_every=3), tiny_data)
    assert [i for i, p in enumerate(third["curve"]) if "b_simple" in p] == [0, 3, 6, 9]
    assert third["curve"][0]["b_simple"] == every["curve"][0]["b_simple"]
    assert [p["test_acc"] for p in third["curve"]] == [p["test_acc"] for p in every["curve"]]


def test_evaluation_turns_fine_near_the_target_and_trains_the_same_steps(tiny_data):
    """Within train.fine_within below the target the run evaluates every fine_every_examples
    until it reaches it: the same weights at every step (the coarse evaluations read the same
    accuracy), the hit no later and read to within a fine interval's steps. The noise scale
    counts coarse evaluations only."""
    base = dict(max_epochs=2, target_accuracy=0.88, stop_at_target=True)
    coarse = train_one(tiny_cfg(**base, fine_within=0.0), tiny_data)
    fine = train_one(tiny_cfg(**base, fine_within=0.03, fine_every_examples=300), tiny_data)
    at = {p["step"]: p["test_acc"] for p in fine["curve"]}
    assert all(at[p["step"]] == p["test_acc"] for p in coarse["curve"])
    first = next(i for i, p in enumerate(fine["curve"]) if p["fine"])
    near = [p["test_acc"] for p in fine["curve"][first - 2:first]]
    assert near[1] >= 0.88 - 0.03 > near[0]  # the first within 0.03 turned it fine
    steps = [p["step"] for p in fine["curve"][first - 1:]]
    assert {b - a for a, b in zip(steps, steps[1:], strict=False)} <= {4, 5}  # 300 examples
    assert fine["steps_to_target"] <= coarse["steps_to_target"]
    assert not any("b_simple" in p for p in fine["curve"][first:])
    assert [p.get("b_simple") for p in fine["curve"][:first]] == [
        p.get("b_simple") for p in coarse["curve"][:first]]
