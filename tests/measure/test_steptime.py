"""Seconds per step: which batch sizes, the interleaved order, the epoch starts spread over their
steps, the fastest round as the estimate, and the stage for real on the tiny config (its JSON,
how busy the machine was, and its MLflow run)."""

import dataclasses
import json

import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import tiny_params
from sweetspot import cli, paths
from sweetspot.answer import procedure
from sweetspot.measure import machine, steptime


def test_every_batch_size_the_sweep_may_train_is_measured():
    params = tiny_params(sweep={"batch_sizes": [16, 64, 96], "extremes": [1]})
    # the grid, the extremes, and the neighbours refinement could add: 16 -> 12, 24; 64 -> 48;
    # 96 -> 64 and 128 (64 already there)
    assert procedure.candidate_batches(params) == [1, 12, 16, 24, 48, 64, 96, 128]
    off = tiny_params(sweep={"batch_sizes": [16, 64], "refine": False})
    assert procedure.candidate_batches(off) == [16, 64]


def test_a_block_times_steps_and_each_epoch_start_apart(tiny_data):
    cfg = dataclasses.replace(tiny_params().train, batch_size=1000)  # 6 steps an epoch
    stepper = steptime.Stepper(cfg, tiny_data)
    seconds, starts = stepper.block(13)  # epochs start at steps 1, 7 and 13
    assert seconds > 0 and len(starts) == 3 and all(s > 0 for s in starts)
    _, starts = stepper.block(5)  # every block starts an epoch, so each round times one
    assert len(starts) == 1


def test_rounds_are_interleaved_across_batch_sizes(tiny_data):
    params = tiny_params()
    rows = steptime.measure(params.train, tiny_data, [32, 128, 64], params.steptime)
    assert [(r["round"], r["batch_size"]) for r in rows] == [
        (rnd, b) for rnd in range(3) for b in (32, 128, 64)]  # B1 ... Bn, then again
    assert [r["order"] for r in rows] == list(range(9))
    # at least min_examples (600) and min_steps (5) a block
    assert {r["batch_size"]: r["steps"] for r in rows} == {32: 19, 128: 5, 64: 10}


def test_interleave_reads_every_timer_once_a_round_with_the_rounds_load(capsys):
    calls = []

    def timer(name):
        return lambda: calls.append(name) or {"key": name, "seconds": len(calls)}

    rows = steptime.interleave([timer("a"), timer("b")], 2, "test")
    assert calls == ["a", "b", "a", "b"]
    assert [(r["round"], r["order"], r["key"], r["seconds"]) for r in rows] == [
        (0, 0, "a", 1), (0, 1, "b", 2), (1, 2, "a", 3), (1, 3, "b", 4)]
    assert rows[0]["load"] is rows[1]["load"]  # read once a round
    assert set(rows[0]) == {"round", "order", "key", "seconds", "load"}
    lines = capsys.readouterr().err.splitlines()  # progress on stderr, a line a round
    assert [line.split(",")[0] for line in lines] == ["test: round 1/2", "test: round 2/2"]
    steptime.interleave([timer("a")], 2)
    assert capsys.readouterr().err == ""  # no label, no progress


def test_a_timer_reads_one_block_in_its_own_threads(tiny_data):
    params = tiny_params()
    cfg = dataclasses.replace(params.train, batch_size=100, threads=1)
    found = torch.get_num_threads()
    read = steptime.timer(cfg, tiny_data, params.steptime)
    torch.set_num_threads(2)  # another stack's, timed in between
    try:
        row = read()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(found)
    assert set(row) == {"batch_size", "steps", "seconds", "epoch_starts"}
    assert (row["batch_size"], row["steps"], len(row["epoch_starts"])) == (100, 6, 1)


def test_the_stack_carries_every_setting_it_names_loader_workers_too():
    cfg = dataclasses.replace(tiny_params().train, loader="torchvision", threads=1,
                              loader_workers=2)
    assert steptime.stack(cfg) == {"device": "cpu", "loader": "torchvision", "step": "eager",
                                   "threads": 1, "loader_workers": 2}
    assert steptime.stack_name(cfg) == "cpu-torchvision-eager-1threads-2workers"
    # every setting the stack names is one predict accepts, compile as the step it picks
    assert set(steptime.stack(cfg)) == set(machine.STACK) - {"compile"} | {"step"}


def test_the_summary_spreads_each_epoch_start_and_takes_the_fastest_round():
    rows = [{"round": i, "batch_size": 100, "steps": 10, "seconds": s, "epoch_starts": starts}
            for i, (s, starts) in enumerate([(0.010, [0.06]), (0.011, [0.05, 0.07]),
                                             (0.009, [0.04]), (0.050, [0.3])])]  # 3: a burst
    out = steptime.summarise(rows, n_train=1000)["100"]  # 10 steps an epoch
    # each round: its block's seconds per step + its epoch starts' mean over the epoch's steps
    assert out["rounds"] == pytest.approx([0.001 + 0.006, 0.0011 + 0.006, 0.0009 + 0.004,
                                           0.005 + 0.03])
    assert out["seconds"] == out["min"] == pytest.approx(0.0049)  # the burst cannot move it
    assert out["epoch_start"] == pytest.approx(0.04)
    assert out["min"] < out["q1"] <= out["median"] <= out["q3"] < out["max"]


def test_the_load_summary_counts_the_quiet_rounds_of_a_measurement():
    quiet, loaded = {"other": 0.01, "steal": 0.0, "quiet": True}, {"other": 0.5, "steal": 0.0,
                                                                   "quiet": False}
    rows = [{"round": r, "batch_size": b, "load": quiet if r % 3 else loaded}
            for r in range(9) for b in (32, 64)]  # rounds 0, 3, 6 loaded: read once a round
    load = steptime.load_summary(rows)
    assert load == {"rounds": 9, "quiet_rounds": 6, "other": pytest.approx(0.52 / 3),
                    "steal": 0.0, "busy": False}


@pytest.mark.slow
def test_the_stage_writes_its_json_and_one_mlflow_run(workdir, capsys):
    folder, env = workdir
    with pytest.raises(SystemExit) as done:
        cli.main(["steptime"])
    assert done.value.code == 0
    doc = json.loads((folder / paths.STEPTIME).read_text())["per_loader"]["tensor"]
    sizes = procedure.candidate_batches(tiny_params())
    assert doc["batch_sizes"] == sizes and sorted(map(int, doc["per_batch"])) == sizes
    assert doc["stack"] == {"device": "cpu", "loader": "tensor", "step": "exact",
                            "threads": doc["stack"]["threads"], "loader_workers": 0}
    for cell in doc["per_batch"].values():
        assert len(cell["rounds"]) == 3 and cell["seconds"] == min(cell["rounds"]) > 0
    assert len(doc["rows"]) == 3 * len(sizes)
    assert doc["machine"] == machine.fingerprint()
    assert doc["load"]["rounds"] == 3 and 0 <= doc["load"]["other"] <= 1
    both = json.loads((folder / paths.STEPTIME).read_text())["per_loader"]
    assert set(both) == {"tensor", "torchvision"}  # steptime.loaders: the question's path too
    assert both["torchvision"]["batch_sizes"] == sizes
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    by_loader = {r.data.params["loader"]: r for r in runs}
    assert set(by_loader) == {"tensor", "torchvision"}  # one MLflow run per data path
    run = by_loader["tensor"]
    assert run.info.status == "FINISHED" and run.data.tags["kind"] == "steptime"
    # the run spans the measurement it records, though it is opened after it
    assert run.info.end_time - run.info.start_time >= 1000 * doc["seconds"]
    history = client.get_metric_history(run.info.run_id, "seconds_per_step")
    assert sorted(h.step for h in history) == sizes
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"steptime.json"}
    assert run.data.metrics["load/rounds"] == 3
    assert "wrote reports/steptime.json" in capsys.readouterr().out
