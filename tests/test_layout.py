"""Values and paths written in two places agree: MLproject vs params.yaml, dvc.yaml vs the code."""

import yaml

from sweetspot import config, report, sweep

ROOT = config.PARAMS_FILE.resolve().parent


def test_mlproject_defaults_mirror_params_train():
    mlproject = yaml.safe_load((ROOT / "MLproject").read_text())
    parameters = mlproject["entry_points"]["main"]["parameters"]
    train = config.read_yaml()["train"]
    assert set(parameters) == set(train)
    for key, value in train.items():
        assert str(parameters[key]["default"]).lower() == str(value).lower(), key
        assert f"--{key.replace('_', '-')} {{{key}}}" in mlproject["entry_points"]["main"][
            "command"]


def test_mlproject_declares_an_environment_that_installs_this_project():
    mlproject = yaml.safe_load((ROOT / "MLproject").read_text())
    env = yaml.safe_load((ROOT / mlproject["python_env"]).read_text())
    assert env["dependencies"] == ["."]


def stage_outs(stage: dict) -> list[str]:
    outs = []
    for key in ("outs", "metrics", "plots"):
        for entry in stage.get(key, []):
            outs.append(entry if isinstance(entry, str) else next(iter(entry)))
    return outs


def test_dvc_outs_are_the_paths_the_code_writes():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stage_outs(stages["download"]) == ["data/${data.dataset}/raw"]
    assert str(config.raw_dir("MNIST")) == "data/MNIST/raw"
    cell = "b${item.batch_size}-lr${item.lr}-s${item.seed}-${item.loader}.json"
    for stage, folder in (("sweep", sweep.COARSE), ("extremes", sweep.EXTREMES)):
        assert stage_outs(stages[stage]) == [f"{folder}/{cell}"]
        assert f"--out {folder}/{cell}" in stages[stage]["cmd"]
    # as DVC formats ${item.lr} = 1.0
    assert sweep.Cell(64, 1.0, 0, "tensor").name == "b64-lr1.0-s0-tensor"
    assert stage_outs(stages["refine"]) == [str(sweep.REFINE)]
    assert stage_outs(stages["seeds"]) == [str(sweep.SEEDS)]
    assert set(stage_outs(stages["report"])) == {
        str(report.METRICS), str(report.FIGURES), str(report.REPORT_MD),
        str(report.PLOTS / "curves"), str(report.PLOTS / "time_to_target.csv")}
    assert stages["report"]["deps"][0] == str(sweep.CELLS)


def test_cells_depend_on_every_train_setting_except_their_own():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    keys = {p.split(".", 1)[1] for p in stages["sweep"]["params"] if p.startswith("train.")}
    own = {"batch_size", "lr", "seed", "loader", "target_accuracy", "max_epochs", "max_seconds",
           "stop_at_target", "experiment"}  # set per cell by the sweep, or naming only
    assert keys == set(config.read_yaml()["train"]) - own
    for stage in ("refine", "seeds"):
        planned = {p.split(".", 1)[1] for p in stages[stage]["params"] if p.startswith("train.")}
        assert planned == keys, stage
