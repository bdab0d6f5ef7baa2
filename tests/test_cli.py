"""The `sweetspot` command on bad input: every subcommand exits 2 with one line on stderr,
"sweetspot: error: ..." naming the problem, before any work starts and with nothing written.

The tables list every subcommand; a new one fails test_every_subcommand_is_in_the_tables until it
has a row. Most cases run `cli.main` in-process (fast); the slow test runs one per subcommand as
a user types it, to see the real stderr whole."""

import argparse
import os
from pathlib import Path

import pytest

from conftest import sweetspot, write_params
from sweetspot import cli

CELL = ["--batch-size", "64", "--base-lr", "1.0", "--seed", "0", "--loader", "tensor"]

# Each subcommand called as the pipeline calls it: enough arguments to start real work.
GOOD = {
    "download": ["download"],
    "train": ["train"],
    "question": ["question"],
    "sweep": ["sweep", *CELL],
    "machine": ["machine"],
    "plan": ["plan"],
    "refine": ["refine"],
    "rates": ["rates"],
    "seeds": ["seeds"],
    "race": ["race"],
    "heldout": ["heldout"],
    "reproduce": ["reproduce"],
    "report": ["report"],
    "bench": ["bench"],
    "steptime": ["steptime"],
    "predict": ["predict"],
    "validate": ["validate"],
    "forecast": ["forecast"],
    "server": ["server", "status", "--dir", "server"],
    "upload": ["upload"],
    "cores": ["cores"],
    "memory": ["memory"],
    "blocks": ["blocks"],
    "pipeline": ["pipeline"],
}
NO_PARAMS = {"server", "upload"}  # read no params.yaml: a tracking server serves every sweep


def cell_with(flag: str, value: str) -> list[str]:
    """`sweep` with one of its cell arguments replaced."""
    args = list(CELL)
    args[args.index(flag) + 1] = value
    return ["sweep", *args]


# Bad values on the command line, or a state of the folder the stage cannot start from (the
# tiny params.yaml: train.train_examples 6000): (argv, what the error line says).
BAD_VALUES = [
    (["download", "--dataset", "cifar"], "data.dataset: unknown dataset 'cifar'"),
    (["download", "--sources", "ftp"], "data.sources: unknown value 'ftp'"),
    (["download", "--timeout-s", "0"], "data.timeout_s: must be > 0"),
    (["train", "--batch-size", "0"], "train.batch_size: must be > 0"),
    (["train", "--lr", "-1"], "train.lr: must be a finite number > 0"),
    (["train", "--lr", "nan"], "train.lr: must be a finite number > 0"),
    (["train", "--batch-size", "lots"], "train.batch_size: expected int, got 'lots'"),
    (["train", "--batch-size", "8192"], "train.batch_size: 8192 is larger than the training set"),
    (["train", "--compile", "maybe"], "train.compile: expected bool, got 'maybe'"),
    (["train", "--loader", "torchvision", "--loader-workers", "-1"],
     "train.loader_workers: -1 is outside 0.."),
    (["train", "--loader", "torchvision", "--loader-workers", "999"],
     "train.loader_workers: 999 is outside 0.."),
    (["train", "--loader-workers", "1"], "train.loader_workers: the tensor loader has no workers"),
    (["train", "--dataset", "mnist"], "unknown dataset 'mnist' (did you mean 'MNIST'?)"),
    (["train", "--network", "resnet"], "train.network: unknown network 'resnet'; choose one of "
                                       "mlp, cnn, or name your own as package.module:function"),
    (["train", "--network", "nowhere.nets:lenet"], "train.network: cannot import 'nowhere.nets'"),
    (["train", "--network", "os:nothing_here"], "train.network: 'os' has no function "
                                                "'nothing_here'"),
    (["train", "--network", "os:getcwd"], "os:getcwd returned a value of type str, not a "
                                          "torch.nn.Module"),
    (["forecast", "--epochs", "0"], "--epochs: must be >= 1"),
    (["forecast", "-S", "train.depth=3"], "-S train.depth=3: expected section.key=value with a "
                                          "key of params.yaml"),
    (["forecast", "-S", "train.network"], "-S train.network: expected section.key=value"),
    (["forecast", "-S", "train.network=vgg"], "train.network: unknown network 'vgg'"),
    (["forecast", "-S", "sweep.batch_sizes=[16,0]"], "sweep.batch_sizes: 0 is out of range"),
    (["question", "--epochs", "0"], "advice.question_epochs: must be >= 1"),
    (["question", "--train-examples", "70000"], "train.train_examples: must be <= 60000"),
    (cell_with("--batch-size", "0"), "train.batch_size: must be > 0"),
    (cell_with("--batch-size", "8192"), "train.batch_size: 8192 is larger than the training set"),
    (cell_with("--base-lr", "0"), "train.lr: must be a finite number > 0"),
    (["plan"], "cell(s) missing"),  # no coarse cells on disk
    (["refine"], "reports/refine_plan.json is missing: run `dvc repro plan`"),
    (["seeds"], "cell(s) missing"),
    (["race"], "cell(s) missing"),
    (["reproduce"], "cell(s) missing"),
    (["heldout"], "cell(s) missing"),
    (["report"], "cell(s) missing"),
    (["bench", "--repeats", "0"], "bench.repeats: must be > 0"),
    (["bench", "--device", "tpu"], "bench.device: unknown value 'tpu'"),
    (["bench", "--batch-sizes", "0"], "bench.batch_sizes: 0 is out of range"),
    (["predict"], "--steps: no steps table at reports/steps_to_target.csv"),  # none here yet
    (["predict", "--steps", "nowhere.csv"], "--steps: no steps table at nowhere.csv"),
    (["predict", "--loader", "dali"], "train.loader: unknown value 'dali'"),
    (["predict", "--device", "tpu"], "train.device: unknown value 'tpu'"),
    (["predict", "--threads", "-1"], "train.threads: must be >= 0"),
    (["predict", "--compile", "maybe"], "train.compile: expected bool, got 'maybe'"),
    (["predict", "--loader-workers", "999"], "train.loader_workers: 999 is outside 0.."),
    (["predict", "--loader", "torchvision", "--loader-workers", "1"],  # a stack it accepts
     "--steps: no steps table"),
    (["validate", "--steps", "nowhere.csv"], "--steps: no steps table at nowhere.csv"),
    (["validate", "--threads", "two"], "train.threads: expected int, got 'two'"),
    (["sweep", "--batch-size", "64"], "one cell needs --base-lr, --seed, --loader"),
    (["sweep", *CELL, "--force"], "--force is an option of --executor ray"),
    (["sweep", "--executor", "ray", "--batch-size", "64"],
     "--executor ray runs every stale cell: drop --batch-size"),
    (["sweep", "--executor", "ray", "--threads", "0"], "--threads must be >= 1"),
    (["sweep", "--executor", "ray"], "no dvc.yaml here: run from the project's root"),
    (["server", "start", "--port", "0"], "--port must be in 1..65535"),
    (["server", "start", "--workers", "0"], "--workers >= 1"),
    (["upload", "0123abcd"], "no run 0123abcd is kept in"),
]

# A params.yaml the stage cannot start from: (subcommand, changes to the tiny params, the error).
BAD_PARAMS = [
    ("machine", {"train": {"threads": -1}}, "train.threads: must be >= 0"),
    ("machine", {"machine": {"tolerance": 1.5}}, "machine.tolerance: must be in (0, 1)"),
    ("machine", {"machine": {"probe_rounds": 1}}, "machine.probe_rounds: must be >= 3"),
    ("machine", {"train": {"network": "nowhere:net"}}, "train.network: cannot import 'nowhere'"),
    ("steptime", {"steptime": {"rounds": 2}}, "steptime.rounds: must be >= 3"),
    ("steptime", {"steptime": {"min_steps": 0}}, "steptime.min_steps: must be > 0"),
    ("refine", {"sweep": {"resamples": 10}}, "sweep.resamples: must be >= 100"),
    ("train", {"train": {"noise_every": 0}}, "train.noise_every: must be > 0"),
    ("sweep", {"train": {"network": "nowhere:net"}}, "train.network: cannot import 'nowhere'"),
    ("steptime", {"train": {"network": "torch.nn:Identity"}},
     "torch.nn:Identity gives outputs of shape [1, 28, 28] for each image, not 10 class scores"),
    ("cores", {"advice": {"split_batch_sizes": [16, 8192]}},
     "advice.split_batch_sizes: batch size 8192 is larger than the training set (6000)"),
    ("memory", {"advice": {"memory_batch_sizes": [1, 60000]}},
     "advice.memory_batch_sizes: batch size 60000 is larger than the training set (6000)"),
    ("blocks", {"advice": {"block_powers": [4, 13]}},
     "advice.block_powers: batch size 12296 is larger than the training set (6000)"),
    ("blocks", {"advice": {"rounds": 2}}, "advice.rounds: must be >= 3"),
    ("pipeline", {"advice": {"pipeline_batch_sizes": [16, 8192]}},
     "advice.pipeline_batch_sizes: batch size 8192 is larger than the training set (6000)"),
    ("race", {"race": {"margin": 0}}, "race.margin: must be in (0, 1)"),
    ("race", {"race": {"max_cells": -1}}, "race.max_cells: must be >= 0"),
    ("race", {"race": {"max_seeds": 2}}, "race.max_seeds: 2 cannot hold the 2 seeds"),
    ("rates", {"sweep": {"rate_ratio": 1}}, "sweep.rate_ratio: must be a finite number > 1"),
    ("forecast", {"train": {"network": "torch.nn:Flatten"}},
     "torch.nn:Flatten gives outputs of shape [784]"),
]

# What argparse itself refuses (its usage message, then the problem on the last line).
USAGE_ERRORS = [
    ([], "the following arguments are required: command"),
    (["fly"], "invalid choice: 'fly'"),
    (cell_with("--loader", "bogus"), "argument --loader: invalid choice: 'bogus'"),
    (cell_with("--base-lr", "fast"), "argument --base-lr: invalid float value: 'fast'"),
    (["sweep", "--executor", "dask"], "argument --executor: invalid choice: 'dask'"),
    (["server", "restart"], "argument action: invalid choice: 'restart'"),
    (["question", "--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
    (["train", "--bogus", "1"], "unrecognized arguments: --bogus 1"),
    (["report", "--batch-size", "64"], "unrecognized arguments: --batch-size 64"),
]


def ids(table) -> list[str]:
    return [" ".join(argv) or "(nothing)" for argv, _ in table]


def subcommands() -> set[str]:
    (action,) = [a for a in cli.build_parser()._actions
                 if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def contents(folder: Path) -> set[str]:
    """Every file and folder under `folder`, not following data/ (a link to the real MNIST)."""
    found = set()
    for top, dirs, files in os.walk(folder):
        found |= {os.path.relpath(os.path.join(top, n), folder) for n in dirs + files}
    return found


def fails(argv, capsys) -> tuple[int, list[str]]:
    """Run `sweetspot ARGV` in-process: (exit code, stderr lines); nothing on stdout."""
    with pytest.raises(SystemExit) as exit_:
        cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert out == ""
    return exit_.value.code, err.splitlines()


def assert_one_error_line(code, lines, says):
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("sweetspot: error: ")
    assert says in lines[0]


def test_every_subcommand_is_in_the_tables():
    assert set(GOOD) == subcommands()
    assert {argv[0] for argv, _ in BAD_VALUES} | {c for c, _, _ in BAD_PARAMS} == subcommands()


@pytest.mark.parametrize(("command", "changes", "says"), BAD_PARAMS,
                         ids=[f"{c}: {s}" for c, _, s in BAD_PARAMS])
def test_bad_params_exit_2_with_one_line_before_any_work(workdir, capsys, command, changes, says):
    folder, _ = workdir
    write_params(folder, changes)
    assert_one_error_line(*fails(GOOD[command], capsys), says)
    assert contents(folder) == {"data", "params.yaml"}


@pytest.mark.parametrize(("argv", "says"), BAD_VALUES, ids=ids(BAD_VALUES))
def test_bad_values_exit_2_with_one_line_before_any_work(workdir, capsys, argv, says):
    folder, _ = workdir
    before = contents(folder)
    assert_one_error_line(*fails(argv, capsys), says)
    assert contents(folder) == before  # no mlflow.db, no reports/


@pytest.mark.parametrize("command", sorted(set(GOOD) - NO_PARAMS))
def test_a_missing_params_file_is_named(workdir, capsys, command):
    folder, _ = workdir
    assert_one_error_line(*fails(["--params", "missing.yaml", *GOOD[command]], capsys),
                          "missing.yaml: not found")
    assert contents(folder) == {"data", "params.yaml"}


@pytest.mark.parametrize("command", sorted(set(GOOD) - NO_PARAMS))
def test_an_unknown_params_key_is_named(workdir, capsys, command):
    folder, _ = workdir
    write_params(folder, {"train": {"batch_sise": 64}})
    assert_one_error_line(*fails(GOOD[command], capsys),
                          "params.yaml: unknown key train.batch_sise")
    assert contents(folder) == {"data", "params.yaml"}


@pytest.mark.parametrize("command", sorted(set(GOOD) - NO_PARAMS))
def test_a_target_above_one_is_refused(workdir, capsys, command):
    folder, _ = workdir
    write_params(folder, {"sweep": {"targets": [1.5]}})
    assert_one_error_line(*fails(GOOD[command], capsys),
                          "sweep.targets: 1.5 is out of range (0, 1.0]")
    assert contents(folder) == {"data", "params.yaml"}


@pytest.mark.parametrize("command", ["train", "sweep", "question"])
def test_a_bad_tracking_wait_is_one_line_before_any_work(workdir, capsys, monkeypatch, command):
    folder, _ = workdir
    monkeypatch.setenv("SWEETSPOT_TRACKING_WAIT", "soon")
    assert_one_error_line(*fails(GOOD[command], capsys),
                          "SWEETSPOT_TRACKING_WAIT=soon: give the seconds a write may wait")
    assert contents(folder) == {"data", "params.yaml"}


def test_a_params_file_that_is_not_yaml_is_named(workdir, capsys):
    folder, _ = workdir
    (folder / "params.yaml").write_text("train: [batch_size: 64\n")
    assert_one_error_line(*fails(["train"], capsys), "params.yaml: not valid YAML")


@pytest.mark.parametrize(("argv", "says"), USAGE_ERRORS, ids=ids(USAGE_ERRORS))
def test_usage_errors_exit_2_naming_the_problem(workdir, capsys, argv, says):
    folder, _ = workdir
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("usage: sweetspot")
    assert lines[-1].startswith("sweetspot") and says in lines[-1]
    assert contents(folder) == {"data", "params.yaml"}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(GOOD))
def test_as_a_user_types_it_stderr_is_one_line(workdir, command):
    """The whole stderr of a real process (warnings from imports would show here), a few
    seconds each: the first bad value of each subcommand's table."""
    folder, env = workdir
    argv, says = next(((a, s) for a, s in BAD_VALUES if a[0] == command), (None, None))
    if argv is None:  # a stage with no flags: a bad params.yaml
        _, changes, says = next(row for row in BAD_PARAMS if row[0] == command)
        write_params(folder, changes)
        argv = GOOD[command]
    done = sweetspot(*argv, cwd=folder, env=env, timeout=120)
    assert_one_error_line(done.returncode, done.stderr.splitlines(), says)
    assert done.stdout == ""
    assert contents(folder) == {"data", "params.yaml"}


@pytest.mark.parametrize(("code", "says"), [
    ("import torch\n\nSCALE = 1 / 0\n", "importing 'brokennet' raised ZeroDivisionError: "
                                         "division by zero at brokennet.py:3"),
    ("def net(:\n", "importing 'brokennet' raised SyntaxError: invalid syntax "),
    ("def net():\n    raise RuntimeError('no weights')\n",
     "brokennet:net() raised RuntimeError: no weights at brokennet.py:2"),
])
def test_a_user_network_that_raises_is_one_line_naming_its_line(workdir, code, says):
    """The user's module raising on import (or its function on call) is the user's fault: one
    line with the exception and the user's file:line, exit 2, no run, as a user types it."""
    folder, env = workdir
    (folder / "brokennet.py").write_text(code)
    done = sweetspot("train", "--network", "brokennet:net", cwd=folder, env=env, timeout=120)
    assert_one_error_line(done.returncode, done.stderr.splitlines(), f"train.network: {says}")
    written = {n for n in contents(folder) if not n.startswith("__pycache__")}
    assert written == {"data", "params.yaml", "brokennet.py"}  # no mlflow.db: no run
