"""The other problems as DVC experiments, on the tiny profile in a copy of the repository: the
second dataset by params alone, and another network forecast, swept and compared, as the
README's commands run them."""

import json
from pathlib import Path

import pytest

from conftest import commit, copy_project, sh, write_params
from test_pipeline import ran_stages


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_root):
    folder = copy_project(tmp_path_factory.mktemp("experiments"), mnist_root)
    write_params(folder)  # the tiny profile
    commit(folder, "tiny profile")
    return folder, None


@pytest.mark.slow
def test_fashion_mnist_is_the_same_pipeline(project):
    """The second workload by changing params only, as a DVC experiment (`dvc exp run -S`, listed
    by `dvc exp show`): Debian's dataset-fashion-mnist folder (the README's set-up installs it)
    through the `local` source, then the same stages."""
    folder, _ = project
    debian = Path("/usr/share/datasets/fashion-mnist")
    assert debian.is_dir(), "run the README's set-up (apt-get install dataset-fashion-mnist)"
    sh("dvc", "exp", "run", "report", "-n", "fashion", "-S", "data.dataset=FashionMNIST",
       "-S", f"data.local_dir={debian}", "-S", "sweep.targets=[0.7]", cwd=folder)
    assert '"fashion"' in sh("dvc", "exp", "show", "--json", cwd=folder).stdout  # an experiment
    metrics = json.loads((folder / "reports/sweet_spot.json").read_text())
    assert metrics["dataset"] == "FashionMNIST" and metrics["target"] == 0.7
    assert metrics["batch_size"] in {32, 64, 24, 48, 96}
    assert (folder / "reports/report.md").read_text().startswith(
        "# Which batch size reaches the target fastest here? FashionMNIST")
    assert (folder / "data/FashionMNIST/raw/train-images-idx3-ubyte").stat().st_size == 47040016


@pytest.mark.slow
def test_another_network_is_forecast_swept_and_compared(project):
    """The README's flow for another network, on the tiny profile (the shared project, last):
    its forecast committed first, its sweep as `dvc exp run -S`, back to the question's MLP
    keeping its summary, then the main report compares the two (and the committed others)."""
    folder, _ = project
    back = [["git", "checkout", "--", "params.yaml", "dvc.lock", ".gitignore", "reports",
             ":!reports/compare"], ["git", "clean", "-qfdx", "reports/cells"],
            ["dvc", "checkout"]]  # the README's back()
    for command in back:  # from the experiment before: the MLP on MNIST as committed
        sh(*command, cwd=folder)
    sh("dvc", "repro", cwd=folder)
    commit(folder, "the tiny profile's answer")
    cnn = ["-S", "train.network=cnn", "-S", "train.lr=0.1", "-S", "sweep.lrs=[0.1]",
           "-S", "sweep.targets=[0.8,0.7]"]
    sh("sweetspot", "forecast", *cnn, cwd=folder)
    made = json.loads((folder / "reports/forecast/MNIST-cnn.json").read_text())["made_at"]
    commit(folder, "the forecast, before the sweep")
    sh("dvc", "exp", "run", "-n", "cnn", *cnn, cwd=folder)
    summary = json.loads((folder / "reports/compare/MNIST-cnn.json").read_text())
    assert summary["network"].startswith("LeNet-5") and summary["target"] == 0.8
    assert summary["forecast"]["made_at"] == made
    for command in back:
        sh(*command, cwd=folder)
    ran = ran_stages(sh("dvc", "repro", cwd=folder).stdout)
    assert "report" in ran and not [s for s in ran if s.startswith(("sweep", "refine", "seeds",
                                                                    "race"))]
    assert sh("git", "status", "--porcelain", "--untracked-files=all", "reports/cells",
              cwd=folder).stdout == ""  # no cell of the experiment left behind
    text = (folder / "reports/report.md").read_text()
    assert text.startswith("# Which batch size reaches the target fastest here? MNIST, Linear(")
    assert "## Beyond one network" in text and "- cnn on MNIST: B* moved" in text
    (row,) = [line for line in text.splitlines() if line.startswith("| LeNet-5") and
              "| MNIST |" in line]
    assert "| 0.8 |" in row and made[:16] in row
    assert (folder / "reports/figures/comparison.png").is_file()
