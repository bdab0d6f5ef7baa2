"""Values and paths written in two places agree: MLproject vs params.yaml, dvc.yaml vs paths.py,
and each stage's deps vs the modules its command imports."""

import ast
from pathlib import Path

import yaml

from conftest import REPO
from sweetspot import config, paths
from sweetspot.sweep.sweep import Cell

SRC = REPO / "src"
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
BOOKKEEPING = {"sweetspot/config.py", "sweetspot/errors.py", "sweetspot/paths.py",  # no numbers
               "sweetspot/typed.py", "sweetspot/track/tracking.py", "sweetspot/track/delivery.py",
               "sweetspot/track/outage.py"}


def test_mlproject_defaults_mirror_params_train():
    mlproject = yaml.safe_load((REPO / "MLproject").read_text())
    parameters = mlproject["entry_points"]["main"]["parameters"]
    train = config.read_yaml(REPO / paths.PARAMS_FILE)["train"]
    assert set(parameters) == set(train)
    for key, value in train.items():
        assert str(parameters[key]["default"]).lower() == str(value).lower(), key
        assert f"--{key.replace('_', '-')} {{{key}}}" in mlproject["entry_points"]["main"][
            "command"]


def test_mlproject_declares_an_environment_that_installs_this_project():
    mlproject = yaml.safe_load((REPO / "MLproject").read_text())
    env = yaml.safe_load((REPO / mlproject["python_env"]).read_text())
    assert env["dependencies"] == ["."]


def stage_outs(stage: dict) -> list[str]:
    outs = []
    for key in ("outs", "metrics", "plots"):
        for entry in stage.get(key, []):
            outs.append(entry if isinstance(entry, str) else next(iter(entry)))
    return outs


def test_dvc_outs_are_the_paths_the_code_writes():
    assert stage_outs(STAGES["download"]) == ["data/${data.dataset}/raw"]
    assert str(paths.raw_dir("MNIST")) == "data/MNIST/raw"
    cell = "b${item.batch_size}-lr${item.lr}-s${item.seed}-${item.loader}.json"
    for stage, folder in (("sweep", paths.COARSE), ("extremes", paths.EXTREMES)):
        assert stage_outs(STAGES[stage]) == [f"{folder}/{cell}"]
        assert f"--out {folder}/{cell}" in STAGES[stage]["cmd"]
    # as DVC formats ${item.lr} = 1.0
    assert Cell(64, 1.0, 0, "tensor").name == "b64-lr1.0-s0-tensor"
    assert stage_outs(STAGES["refine"]) == [str(paths.REFINE)]
    assert stage_outs(STAGES["seeds"]) == [str(paths.SEEDS)]
    assert stage_outs(STAGES["rates"]) == [str(paths.RATES)]
    assert str(paths.RATES) in STAGES["seeds"]["deps"]  # seeds at the rate the neighbours left
    assert stage_outs(STAGES["race"]) == [str(paths.RACE)]
    # the race keeps its cells between runs (a re-measurement retrains none it still needs)
    assert STAGES["race"]["outs"][0][str(paths.RACE)] == {"cache": False, "persist": True}
    assert str(paths.STEPTIME) in STAGES["race"]["deps"]
    assert set(stage_outs(STAGES["report"])) == {
        str(paths.ANSWER_METRICS), str(paths.SWEET_SPOT), str(paths.FIGURES), str(paths.REPORT_MD),
        str(paths.CURVES),
        str(paths.TIME_TO_TARGET), str(paths.STEPS_TABLE), str(paths.COMPARE)}
    assert STAGES["report"]["deps"][:5] == [str(paths.CELLS), str(paths.STEPTIME),
                                            str(paths.REPRODUCE), str(paths.VALIDATION),
                                            str(paths.FORECAST)]
    assert stage_outs(STAGES["reproduce"]) == [str(paths.REPRODUCE)]
    # the other problems' summaries stay when this one's report is rewritten
    (compare,) = [o for o in STAGES["report"]["outs"] if str(paths.COMPARE) in o]
    assert compare[str(paths.COMPARE)] == {"cache": False, "persist": True}
    assert (REPO / paths.FORECAST).is_dir() and (REPO / paths.COMPARE).is_dir()
    assert stage_outs(STAGES["steptime"]) == [str(paths.STEPTIME)]
    assert stage_outs(STAGES["machine"]) == [str(paths.MACHINE)]
    assert stage_outs(STAGES["plan"]) == [str(paths.REFINE_PLAN)]
    assert str(paths.STEPTIME) in STAGES["plan"]["deps"]  # the plan uses the estimate ...
    assert str(paths.REFINE_PLAN) in STAGES["refine"]["deps"]  # ... and refine only the plan
    assert str(paths.STEPTIME) not in STAGES["refine"]["deps"]
    assert (REPO / paths.VALIDATION).is_dir()  # a dep of the report: present in every clone
    assert set(stage_outs(STAGES["bench"])) == {str(paths.BENCH_METRICS), str(paths.BENCH_JSON),
                                                str(paths.BENCH_PNG)}
    # `dvc metrics show` prints the headline files only
    assert [next(iter(m)) for s in STAGES.values() for m in s.get("metrics", [])] == [
        str(paths.ANSWER_METRICS), str(paths.BENCH_METRICS)]


def test_the_machines_factor_depends_on_the_machine_and_nothing_else_does():
    assert STAGES["machine"]["always_changed"] is True
    assert not STAGES["machine"]["outs"][0][str(paths.MACHINE)]["cache"]  # committed: in git
    users = {name for name, stage in STAGES.items() if str(paths.MACHINE) in stage.get("deps", [])}
    # never a training cell: steps are the problem's (reproduce retrains a sample to check that)
    assert users == {"steptime", "bench", "cores", "memory", "blocks", "pipeline", "reproduce"}
    # the question's own run is committed as the cells are: its seconds are the committing
    # machine's (named in the file), not re-measured on every machine
    assert STAGES["question"]["outs"] == [{str(paths.QUESTION): {"cache": False}}]


def test_every_cell_travels_with_the_repository():
    """The cells are committed outputs (cache: false), so a clone trains none of them."""
    for stage, out in (("sweep", 0), ("extremes", 0), ("refine", 0), ("rates", 0), ("seeds", 0),
                       ("race", 0)):
        (entry,) = STAGES[stage]["outs"][out].values()
        assert entry["cache"] is False, stage
    assert not (REPO / paths.CELLS / ".gitignore").exists()


def test_no_cell_reads_the_clock_budget_of_params():
    assert not any("max_seconds" in p for p in STAGES["sweep"]["params"])
    assert "max_seconds" not in config.read_yaml(REPO / paths.PARAMS_FILE)["sweep"]


def test_cells_depend_on_every_train_setting_except_their_own():
    keys = {p.split(".", 1)[1] for p in STAGES["sweep"]["params"] if p.startswith("train.")}
    own = {"batch_size", "lr", "seed", "loader", "target_accuracy", "max_epochs", "max_seconds",
           "stop_at_target", "experiment",  # set per cell by the sweep, or naming only
           "loader_workers"}  # changes no batch, so no step (tests/data/test_load.py)
    assert keys == set(config.read_yaml(REPO / paths.PARAMS_FILE)["train"]) - own
    for stage in ("refine", "rates", "seeds", "race"):
        planned = {p.split(".", 1)[1] for p in STAGES[stage]["params"] if p.startswith("train.")}
        assert planned == keys, stage


def imported(module: str) -> set[str]:
    """The files of sweetspot's own modules that `module` ("sweetspot/train/run.py") imports at
    its top, directly or not, itself included; package __init__ files left out. An import inside
    a function (sweep.run_cell's) runs only when that function does."""
    seen, todo = set(), [module]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.parse((SRC / path).read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                     if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                file = Path(*name.split(".")).with_suffix(".py")
                if name.startswith("sweetspot.") and (SRC / file).is_file():
                    todo.append(str(file))
    return seen


def code_deps(stage: str) -> set[str]:
    return {d.removeprefix("src/") for d in STAGES[stage]["deps"] if d.endswith(".py")}


def test_each_stage_depends_on_the_code_its_command_runs():
    """Change a module a stage runs and DVC re-runs the stage; only bookkeeping is left out."""
    train = imported("sweetspot/train/run.py") - BOOKKEEPING
    assert code_deps("sweep") == code_deps("extremes") == train
    assert "sweetspot/train/loop.py" in train and "sweetspot/train/noise.py" in train
    for stage in ("refine", "rates", "seeds"):  # plan with planned.py, then train as a cell
        assert code_deps(stage) == train | (imported("sweetspot/sweep/planned.py") - BOOKKEEPING)
    assert code_deps("plan") == imported("sweetspot/sweep/planned.py") - BOOKKEEPING
    assert code_deps("race") == train | (imported("sweetspot/sweep/race.py") - BOOKKEEPING)
    assert code_deps("machine") == imported("sweetspot/measure/machine.py") - BOOKKEEPING
    reproduce = imported("sweetspot/check/reproduce.py") - BOOKKEEPING
    assert code_deps("reproduce") == train | reproduce
    assert code_deps("heldout") == train | (imported("sweetspot/check/heldout.py") - BOOKKEEPING)
    assert code_deps("report") == imported("sweetspot/report/report.py") - BOOKKEEPING
    # a cell runs no report statistic, and what measures runs no sweep or report code
    assert "sweetspot/answer/analysis.py" not in train
    for stage in ("steptime", "bench", "cores", "memory", "blocks", "pipeline", "question"):
        assert not {"sweetspot/answer/analysis.py", "sweetspot/answer/estimate.py",
                    "sweetspot/sweep/sweep.py"} & code_deps(stage), stage
    assert code_deps("bench") == imported("sweetspot/measure/bench.py") - BOOKKEEPING
    assert code_deps("steptime") == imported("sweetspot/measure/steptime.py") - BOOKKEEPING
    for stage in ("cores", "memory", "blocks", "pipeline"):
        assert code_deps(stage) == imported(f"sweetspot/advice/{stage}.py") - BOOKKEEPING
    assert code_deps("question") == imported("sweetspot/train/question.py") - BOOKKEEPING


def test_no_import_cycle():
    files = {str(p.relative_to(SRC)) for p in (SRC / "sweetspot").rglob("*.py")}
    for file in files:
        deps = imported(file) - {file}
        assert all(file not in imported(d) for d in deps), file


# The README's layout, bottom up: each folder imports only from those before it (the frame is
# the package's own top-level modules; cli.py and __main__.py sit on top of everything).
LAYERS = ["frame", "answer", "data", "track", "train", "sweep", "measure", "check", "advice",
          "report"]


def test_each_folder_imports_only_from_the_folders_below_it():
    package = SRC / "sweetspot"

    def layer(name: str) -> str:
        return name if (package / name).is_dir() else "frame"

    upward = []
    for path in package.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py"):
            continue
        here = layer(path.relative_to(package).parts[0]) if path.parent != package else "frame"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    "sweetspot"):
                parts = node.module.split(".")
                targets = ([layer(a.name) for a in node.names] if len(parts) == 1
                           else [layer(parts[1])])
                upward += [(str(path.relative_to(package)), t) for t in targets
                           if LAYERS.index(t) > LAYERS.index(here)]
    assert sorted({p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"}
                  ) == sorted(LAYERS[1:])
    assert upward == []
