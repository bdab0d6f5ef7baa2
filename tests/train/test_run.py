"""One tracked run (`sweetspot train`) is one MLflow run: real training on a subset of MNIST."""

import json
import signal
import subprocess
import time

import pytest
from mlflow.tracking import MlflowClient

from conftest import SWEETSPOT, TINY, interruptible, sweetspot
from sweetspot import cli


def sweetspot_train(workdir, **overrides):
    folder, env = workdir
    args = [f"--{k.replace('_', '-')}={v}" for k, v in {**TINY["train"], **overrides}.items()]
    return sweetspot("train", *args, "--out", "result.json", cwd=folder, env=env)


def runs(workdir):
    client = MlflowClient(workdir[1]["MLFLOW_TRACKING_URI"])
    return client, client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.slow
def test_a_run_is_logged_and_read_back(workdir):
    done = sweetspot_train(workdir)
    assert done.returncode == 0, done.stderr
    client, found = runs(workdir)
    assert len(found) == 1
    run = found[0]
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert (p["batch_size"], p["lr"], p["optimizer"], p["loader"], p["dataset"]) == (
        "64", "1.0", "sgd", "tensor", "MNIST")
    assert p["network_name"] == "Linear(784,256)-sigmoid-Linear(256,10)"
    for key in ("seed", "device", "momentum", "target_accuracy", "eval_every_examples"):
        assert key in p
    tags = run.data.tags
    assert tags["outcome"] == "reached"
    assert tags["data_md5.train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    for key in ("git_commit", "git_dirty", "torch_version", "mlflow_version", "cpu_model"):
        assert tags[key]
    assert tags["torch_threads"] == p["threads"] == "1"  # the threads it trained with
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
    assert {"curve.csv", "result.json"} <= artifacts
    result = json.loads((workdir[0] / "result.json").read_text())
    assert result["run_id"] == run.info.run_id
    assert result["time_to_target"] == pytest.approx(m["time_to_target"])
    assert len(result["curve"]) == 4
    assert m["log_model_seconds"] > 0  # the model's logging, timed where it happens
    # the data as MLflow's dataset input: the runs table's Dataset column
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name == "MNIST" and len(dataset.dataset.digest) == 12
    raw = (workdir[0] / "data" / "MNIST" / "raw").resolve()  # data/ may be a link: its target
    assert json.loads(dataset.dataset.source)["uri"] == str(raw)
    assert [t.value for t in dataset.tags if t.key == "mlflow.data.context"] == ["training"]
    # the final model, loaded as a client would, in a new process: it predicts what the run saw
    load = ("import json, sys, mlflow.pytorch, torch; from sweetspot.data.load import load_data;"
            f"m = mlflow.pytorch.load_model('runs:/{run.info.run_id}/model');"
            "x = load_data('MNIST', torch.device('cpu')).x_test;"
            "print(type(m).__name__, ''.join(map(str, m(x).argmax(1).tolist())) == "
            "json.load(open('result.json'))['test_predictions'])")
    loaded = subprocess.run([SWEETSPOT[0], "-c", load], cwd=workdir[0], env=workdir[1],
                            capture_output=True, text=True)
    assert loaded.stdout.split() == ["MLP", "True"], loaded.stderr[-2000:]
    assert len(result["test_predictions"]) == 10_000



@pytest.mark.slow
def test_divergence_is_recorded_not_a_crash(workdir):
    done = sweetspot_train(workdir, lr=1e6, activation="relu")  # sigmoid saturates, stays finite
    assert done.returncode == 0, done.stderr
    _, found = runs(workdir)
    assert [r.data.tags["outcome"] for r in found] == ["diverged"]
    assert found[0].info.status == "FINISHED"



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
def test_bad_input_is_one_line_exit_2_and_no_run(workdir, capsys, override, message):
    """In-process (test_cli's slow test reads a real process's whole stderr, train's included)."""
    folder, _ = workdir
    args = [f"--{k.replace('_', '-')}={v}" for k, v in {**TINY["train"], **override}.items()]
    with pytest.raises(SystemExit) as done:
        cli.main(["train", *args, "--out", "result.json"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(lines) == 1 and message in lines[0], lines
    assert not (folder / "mlflow.db").exists()  # no store, so no run
    assert not (folder / "result.json").exists()



@pytest.mark.slow
def test_ctrl_c_marks_the_run_killed(workdir):
    folder, env = workdir
    args = [*SWEETSPOT, "train", "--batch-size=1", "--max-epochs=5", "--train-examples=60000",
            "--target-accuracy=1.0"]
    proc = subprocess.Popen(args, cwd=folder, env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=interruptible)
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
    assert [r.info.status for r in runs(workdir)[1]] == ["KILLED"]
