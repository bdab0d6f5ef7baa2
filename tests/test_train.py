"""One training run is one MLflow run with an honest clock: real training on (a subset of) MNIST."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from sweetspot import config, train

SWEETSPOT = [sys.executable, "-m", "sweetspot"]
TINY = {  # a few hundred steps on a 6000-example subset
    "train_examples": 6000, "batch_size": 64, "lr": 1.0, "max_epochs": 1,
    "eval_every_examples": 1500, "target_accuracy": 0.5, "warmup_steps": 2,
    "stop_at_target": False,
}


@pytest.fixture
def project(tmp_path, mnist_root):
    """A working folder like the project root: params.yaml, data/ (the verified MNIST), a store."""
    (tmp_path / "params.yaml").write_text(config.PARAMS_FILE.read_text())
    (tmp_path / "data").symlink_to(mnist_root.resolve())
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return tmp_path, env


def sweetspot_train(project, **overrides):
    folder, env = project
    args = [f"--{k.replace('_', '-')}={v}" for k, v in {**TINY, **overrides}.items()]
    return subprocess.run([*SWEETSPOT, "train", *args, "--out", "result.json"], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=600)


def runs(project):
    client = MlflowClient(project[1]["MLFLOW_TRACKING_URI"])
    return client, client.search_runs([e.experiment_id for e in client.search_experiments()])


def tiny_cfg(**overrides) -> config.TrainConfig:
    return config.load(train={**TINY, **overrides}).train


@pytest.fixture(scope="module")
def tiny_data(mnist_root):
    return train.load_data("MNIST", torch.device("cpu"), 6000, mnist_root)


@pytest.mark.slow
def test_a_run_is_logged_and_read_back(project):
    done = sweetspot_train(project)
    assert done.returncode == 0, done.stderr
    client, found = runs(project)
    assert len(found) == 1
    run = found[0]
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert (p["batch_size"], p["lr"], p["optimizer"], p["loader"], p["dataset"]) == (
        "64", "1.0", "sgd", "tensor", "MNIST")
    assert p["model"] == "Linear(784,256)-sigmoid-Linear(256,10)"
    for key in ("seed", "device", "momentum", "target_accuracy", "eval_every_examples"):
        assert key in p
    tags = run.data.tags
    assert tags["outcome"] == "reached"
    assert tags["data_md5.train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    for key in ("git_commit", "git_dirty", "torch_version", "mlflow_version", "cpu_model",
                "torch_threads"):
        assert tags[key]
    m = run.data.metrics
    assert 0 < m["time_to_target"] <= m["train_time"]
    assert m["steps"] == 94  # ceil(6000 / 64), the last batch partial
    assert m["examples"] == 6000
    history = client.get_metric_history(run.info.run_id, "test/acc")
    assert [h.step for h in history] == [1536, 3008, 4544, 6000]  # first batch end past each 1500
    assert history[-1].value > 0.7  # one sixth of an epoch of MNIST at lr 1
    assert [h.step for h in client.get_metric_history(run.info.run_id, "epoch_time")] == [1]
    noise = client.get_metric_history(run.info.run_id, "noise/b_simple")
    assert [h.step for h in noise] == [1536, 3008, 4544, 6000] and noise[0].value > 0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"curve.csv", "result.json", "model_state_dict.pt"} <= artifacts
    result = json.loads((project[0] / "result.json").read_text())
    assert result["run_id"] == run.info.run_id
    assert result["time_to_target"] == pytest.approx(m["time_to_target"])
    assert len(result["curve"]) == 4


def test_evaluation_stays_off_the_clock(tiny_data):
    """Evaluating after every batch costs more than training, yet the clock barely moves."""
    rare = train.train_one(tiny_cfg(eval_every_examples=6000, target_accuracy=1.0), tiny_data)
    often = train.train_one(tiny_cfg(eval_every_examples=64, target_accuracy=1.0), tiny_data)
    assert rare["steps"] == often["steps"] == 94
    assert len(often["curve"]) == 94 and len(rare["curve"]) == 1
    # Evaluation costs many times the whole training here, so on the clock it would show;
    # off it, training time stays of the same order (steps after an evaluation start cache-cold).
    assert often["eval_time"] > 5 * rare["train_time"]
    assert often["train_time"] < 3 * rare["train_time"]
    # ...and the two runs are the same training: evaluation does not touch the weights or streams
    assert often["curve"][-1]["test_acc"] == pytest.approx(rare["curve"][-1]["test_acc"])


def test_time_to_target_is_the_first_evaluation_at_or_above_it(tiny_data):
    result = train.train_one(tiny_cfg(target_accuracy=0.6, stop_at_target=True), tiny_data)
    accs = [p["test_acc"] for p in result["curve"]]
    first = next(i for i, a in enumerate(accs) if a >= 0.6)
    assert len(accs) == first + 1  # stopped there
    hit = result["curve"][first]
    assert (result["time_to_target"], result["steps_to_target"]) == (hit["time"], hit["step"])
    assert result["epochs_to_target"] == pytest.approx(hit["examples"] / 6000)


def test_a_seconds_budget_censors_the_run(tiny_data):
    result = train.train_one(tiny_cfg(max_seconds=1e-9, target_accuracy=0.99), tiny_data)
    assert result["outcome"] == "not_reached" and len(result["curve"]) == 1  # first evaluation


def test_unreached_target_is_censored_not_an_error(tiny_data):
    result = train.train_one(tiny_cfg(target_accuracy=0.999), tiny_data)
    assert result["outcome"] == "not_reached"
    assert result["time_to_target"] is None
    assert "time_to_target" not in train.summary_metrics(result)


def test_same_seed_same_training(tiny_data):
    a = train.train_one(tiny_cfg(), tiny_data)
    b = train.train_one(tiny_cfg(), tiny_data)
    c = train.train_one(tiny_cfg(seed=1), tiny_data)
    losses = lambda r: [p["train_loss"] for p in r["curve"]]  # noqa: E731
    assert losses(a) == losses(b)
    assert losses(a) != losses(c)


def test_compiled_training_is_the_same_training_compiled_off_the_clock(tiny_data):
    exact = train.train_one(tiny_cfg(lr=0.1), tiny_data)
    compiled = train.train_one(tiny_cfg(lr=0.1, compile=True), tiny_data)
    assert exact["compile_time"] == 0 and compiled["compile_time"] > 0  # 64 and 6000 % 64 = 48
    assert train.summary_metrics(compiled)["compile_time"] == compiled["compile_time"]
    for a, b in zip(exact["curve"], compiled["curve"], strict=True):
        assert a["step"] == b["step"]
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
        assert b["test_acc"] == pytest.approx(a["test_acc"], abs=2e-3)  # a few of 10000 images


def test_lr_warmup_ramps_the_rate(tiny_data):
    plain = train.train_one(tiny_cfg(noise_scale=False), tiny_data)
    one = train.train_one(tiny_cfg(noise_scale=False, lr_warmup_steps=1), tiny_data)
    ramp = train.train_one(tiny_cfg(noise_scale=False, lr_warmup_steps=50), tiny_data)
    loss = lambda r: r["curve"][0]["train_loss"]  # noqa: E731
    assert loss(one) == loss(plain)  # a one-step ramp is the full rate from the start
    assert loss(ramp) != loss(plain)


def test_noise_scale_is_estimated_off_the_clock(tiny_data):
    on = train.train_one(tiny_cfg(), tiny_data)
    off = train.train_one(tiny_cfg(noise_scale=False), tiny_data)
    assert [p["train_loss"] for p in on["curve"]] == [p["train_loss"] for p in off["curve"]]
    assert all(p["b_simple"] > 0 for p in on["curve"]) and "b_simple" not in off["curve"][0]
    assert on["b_simple_mean"] > 0 and off["b_simple_mean"] is None


@pytest.mark.slow
def test_divergence_is_recorded_not_a_crash(project):
    done = sweetspot_train(project, lr=1e6, activation="relu")  # sigmoid saturates, stays finite
    assert done.returncode == 0, done.stderr
    _, found = runs(project)
    assert [r.data.tags["outcome"] for r in found] == ["diverged"]
    assert found[0].info.status == "FINISHED"


@pytest.mark.slow
@pytest.mark.parametrize(
    "override, message",
    [
        ({"batch_size": 0}, "train.batch_size: must be > 0"),
        ({"batch_size": 60001, "train_examples": 0}, "larger than the training set"),
        ({"batch_size": "2.5"}, "train.batch_size: expected int"),
        ({"lr": 0}, "train.lr: must be"),
        ({"lr": -1}, "train.lr: must be"),
        ({"target_accuracy": 0}, "train.target_accuracy: must be in (0, 1]"),
        ({"target_accuracy": 1.01}, "train.target_accuracy: must be in (0, 1]"),
        ({"device": "tpu"}, "train.device: unknown value 'tpu'"),
        ({"optimizer": "rmsprop"}, "train.optimizer: unknown value 'rmsprop'"),
        ({"dataset": "cifar"}, "data.dataset: unknown dataset 'cifar'"),
        ({"dataset": "FashionMNIST"}, "run `dvc repro download`"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run(project, override, message):
    done = sweetspot_train(project, **override)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert runs(project)[1] == []
    assert not (project[0] / "result.json").exists()


@pytest.mark.slow
def test_both_loaders_see_the_same_examples_and_learn_alike(mnist_root):
    """One full epoch at batch 1000 (60 steps, a partial-free split) through each data path."""
    data = train.load_data("MNIST", torch.device("cpu"), 0, mnist_root)
    cfg = dict(train_examples=0, batch_size=1000, eval_every_examples=60000)
    tensor = train.train_one(tiny_cfg(**cfg), data)
    question = train.train_one(tiny_cfg(loader="torchvision", **cfg), data)
    for key in ("steps", "examples"):
        assert tensor[key] == question[key] == {"steps": 60, "examples": 60000}[key]
    assert tensor["final_test_acc"] > 0.7
    assert abs(tensor["final_test_acc"] - question["final_test_acc"]) < 0.03


def test_the_last_partial_batch_is_kept(tiny_data):
    result = train.train_one(tiny_cfg(batch_size=1024), tiny_data)  # 5 x 1024 + 880
    assert (result["steps"], result["examples"]) == (6, 6000)


@pytest.mark.slow
def test_the_question_preset_prints_its_table(project):
    folder, env = project
    done = subprocess.run([*SWEETSPOT, "question", "--epochs", "2", "--train-examples", "600"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2 and "batch 1: s/epoch" in done.stdout and "batch 600" in done.stdout
    _, found = runs(project)
    assert sorted(int(r.data.params["batch_size"]) for r in found) == [1, 600]
    assert {r.data.params["loader"] for r in found} == {"torchvision"}
    assert {r.data.params["lr"] for r in found} == {"0.1"}


@pytest.mark.slow
def test_ctrl_c_marks_the_run_killed(project):
    folder, env = project
    args = [*SWEETSPOT, "train", "--batch-size=1", "--max-epochs=5", "--train-examples=60000",
            "--target-accuracy=1.0"]
    proc = subprocess.Popen(args, cwd=folder, env=env, stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # wait until the training process has made the store...
        time.sleep(0.1)
        if (folder / "mlflow.db").exists():
            break
    time.sleep(5)  # ...its run (made before training starts) and a few seconds of training
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "sweetspot: interrupted"
    assert [r.info.status for r in runs(project)[1]] == ["KILLED"]
