"""Another problem as a DVC experiment, on the tiny profile in a copy of the repository, as the
README's commands run it: another network (LeNet-5) on the second dataset (Fashion-MNIST, from
Debian's package through the `local` source), by params alone; its forecast committed first, its
sweep as `dvc exp run -S`, back to the question's MLP keeping its summary, then the main report
compares the two (and the committed others). The stages that only time this machine for the
advice (conftest's ADVICE_STAGES) are frozen at the tiny answer's: they train no cell."""

import json
from pathlib import Path

import pytest

from conftest import commit, copy_answered, freeze, sh
from test_pipeline import ran_stages

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
# LeNet-5 at lr 0.1 on 6000 Fashion-MNIST images reaches 0.5 within the tiny sweep's 3 epochs;
# as the README's LeNet-5 commands, one data path; no extra seeds or race (the flow, not the answer)
OTHER = ["-S", "train.network=cnn", "-S", "train.lr=0.1", "-S", "sweep.lrs=[0.1]",
         "-S", "data.dataset=FashionMNIST", "-S", f"data.local_dir={DEBIAN}",
         "-S", "sweep.targets=[0.5,0.45]", "-S", "steptime.loaders=[tensor]",
         "-S", "sweep.extra_seeds=[]", "-S", "race.max_cells=0"]
BACK = [["git", "checkout", "--", "params.yaml", "dvc.lock", ".gitignore", "reports",
         ":!reports/compare"], ["git", "clean", "-qfdx", "reports/cells"],
        ["dvc", "checkout"]]  # the README's back()


@pytest.mark.slow
def test_another_network_and_dataset_is_forecast_swept_and_compared(tmp_path, answered):
    assert DEBIAN.is_dir(), "run the README's set-up (apt-get install dataset-fashion-mnist)"
    folder, _ = copy_answered(answered, tmp_path / "project")  # the tiny profile's answer
    freeze(folder)
    sh("sweetspot", "download", "--dataset", "FashionMNIST", "--local-dir", DEBIAN, cwd=folder)
    sh("sweetspot", "forecast", *OTHER, cwd=folder)
    made = json.loads((folder / "reports/forecast/FashionMNIST-cnn.json").read_text())["made_at"]
    commit(folder, "the forecast, before the sweep")

    sh("dvc", "exp", "run", "-n", "lenet-fashion", *OTHER, cwd=folder)
    assert '"lenet-fashion"' in sh("dvc", "exp", "show", "--json", cwd=folder).stdout
    # the second dataset by params alone: the local source verified Debian's files, the same
    # stages answered for it
    assert (folder / "data/FashionMNIST/raw/train-images-idx3-ubyte").stat().st_size == 47040016
    metrics = json.loads((folder / "reports/sweet_spot.json").read_text())
    assert metrics["dataset"] == "FashionMNIST" and metrics["target"] == 0.5
    assert (folder / "reports/report.md").read_text().startswith(
        "# Which batch size reaches the target fastest here? FashionMNIST, LeNet-5")
    summary = json.loads((folder / "reports/compare/FashionMNIST-cnn.json").read_text())
    assert summary["network"].startswith("LeNet-5") and summary["target"] == 0.5
    assert summary["spot"] == metrics["batch_size"] and summary["forecast"]["made_at"] == made

    for command in BACK:
        sh(*command, cwd=folder)
    ran = ran_stages(sh("dvc", "repro", cwd=folder).stdout)
    assert "report" in ran and not [s for s in ran if s.startswith(("sweep", "refine", "rates",
                                                                    "seeds", "race"))]
    assert sh("git", "status", "--porcelain", "--untracked-files=all", "reports/cells",
              cwd=folder).stdout == ""  # no cell of the experiment left behind
    text = (folder / "reports/report.md").read_text()
    assert text.startswith("# Which batch size reaches the target fastest here? MNIST, Linear(")
    assert "## Beyond one network" in text and "| cnn on FashionMNIST | " in text  # its moves
    (row,) = [line for line in text.splitlines() if line.startswith("| LeNet-5") and
              "| FashionMNIST |" in line]
    assert "| 0.5 |" in row and made[:16] in row
    assert (folder / "reports/figures/comparison.png").is_file()
