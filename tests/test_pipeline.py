"""The real `dvc repro` on a small profile, in a copy of the repository: cells, refinement, report,
MLflow grouping, resumability, the machine as a dependency, re-measuring without retraining,
and a DVC experiment."""

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import copy_answered, sh, stale
from sweetspot.answer import estimate
from sweetspot.report.report import PICKLED
from sweetspot.track.delivery import PICKLE_WARNING


def set_params(folder: Path, changes: dict) -> None:
    """Change some values of folder/params.yaml, keeping the rest."""
    params = yaml.safe_load((folder / "params.yaml").read_text())
    for section, values in changes.items():
        params[section].update(values)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory, answered):
    """The tiny profile (two batch sizes, one rate) answered by `dvc repro report`: a copy of its
    own, which this module's tests change in turn."""
    return copy_answered(answered, tmp_path_factory.mktemp("pipeline") / "project")


def ran_stages(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.mark.slow
def test_repro_writes_the_answer(project):
    folder, output = project
    ran = [s for s in ran_stages(output) if s != "download"]  # dvc.lock may know the data
    advice = ("cores", "memory", "blocks", "pipeline")
    assert ran.index("question") < ran.index("report")  # the question's own run, committed
    assert [s for s in ran if s not in ("machine", "question", *advice)] == [
        "sweep@32-1.0-0-tensor", "sweep@128-1.0-0-tensor", "steptime", "plan", "refine", "rates",
        "seeds", "race", "reproduce", "heldout", "report"]
    assert ran.index("machine") < min(ran.index(s) for s in ("steptime", *advice))
    assert max(ran.index(s) for s in advice) < ran.index("report")
    # MLflow's pickle warning said once, by the report, not by each cell; the report's last
    # line is the address of the sweep's runs in the model-training view
    assert PICKLE_WARNING not in output and output.count(f"report: {PICKLED}") == 1
    said = []  # the report stage's lines, up to DVC's own after it
    for line in output.split("Running stage 'report'")[1].splitlines():
        if line.startswith(("Updating lock file", "To track the changes", "Use `dvc push`")):
            break
        said += [line] if line.strip() else []
    last = said[-1]
    assert last.startswith("mlflow ui: http") and "?workflowType=machine_learning" in last
    metrics = json.loads((folder / "reports/sweet_spot.json").read_text())
    plan = json.loads((folder / "reports/cells/refine/plan.json").read_text())
    tried = {32, 128, *plan["batch_sizes"]}
    assert metrics["batch_size"] in tried
    assert metrics["target"] == 0.8 and set(metrics["per_target"]) == {"0.8", "0.85"}
    assert metrics["time_to_target"] > 0 and 0 < metrics["share"] <= 1
    spot = metrics["per_target"]["0.8"]
    assert spot["low"] <= spot["estimate"] <= spot["high"] and spot["measured"] > 0
    for name in ("epoch_vs_target", "two_factors", "accuracy_vs_time", "steps_to_target",
                 "confusion", "loaders"):
        png = (folder / "reports/figures" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
    report = (folder / "reports/report.md").read_text()
    summary = json.loads((folder / "reports/compare/MNIST-mlp.json").read_text())
    named = (f"**batch size {metrics['batch_size']}**" if summary["tie"] == [metrics["batch_size"]]
             else f"**{' or '.join(map(str, summary['tie']))}** win")  # under 80%: the tie
    assert summary["tie"][0] == metrics["batch_size"] and named in report
    assert "**Sweet region: " in report
    assert metrics["batch_size"] in metrics["region"] and metrics["region"] == sorted(
        r["batch_size"] for r in spot["region"])
    assert "Refinement (automatic" in report
    # the race: within its budget, its cells read by the report, each batch size a verdict
    race = json.loads((folder / "reports/cells/race/plan.json").read_text())
    assert len(race["cells"]) == metrics["race"]["cells"] <= 2  # the tiny race.max_cells
    assert sorted(map(int, metrics["race"]["batch"])) == sorted(
        int(b) for b in race["tensor"]["status"])
    assert "## The race: seeds where the region was undecided" in report
    for section in ("## What makes the comparison fair",
                    "## The two factors, and the direct measurement beside them",
                    "## The question's own data pipeline", "## The final model"):
        assert section in report
    # both data paths answered from the same steps; the spot's final model scored per class
    paths = metrics["per_loader"]
    assert set(paths) == {"tensor", "torchvision"}
    assert paths["torchvision"]["batch_size"] in tried and paths["torchvision"]["cost_model"]
    assert paths["torchvision"]["per_target"]["0.8"]["measured"] is None  # not trained on it
    assert set(metrics["per_class_accuracy"]) == {str(c) for c in range(10)}
    assert "Through the question's own pipeline" in report
    # the question's own run beside the question's figures, and its pipeline taken apart
    assert "## The question's own run" in report and "| 1 | " in report.split(
        "## The question's own run")[1]
    parts = json.loads((folder / "reports/advice/pipeline.json").read_text())["per_batch"]
    assert set(parts) == {"32"} and parts["32"]["total"] > 1
    assert "The question's pipeline taken apart" in report
    # the answer's advice: every claim a row with a verdict, its figure drawn
    advice = report.split("## The answer's advice, tested here")[1]
    rows = [line for line in advice.splitlines() if line.startswith("| ") and "**" in line]
    assert len(rows) == 10 and "Of the accepted answer's 8 claims tested here" in advice
    assert "not tested here" in rows[1] and "not tested here" in rows[3]  # no batch 1 here
    for name in ("advice_memory", "advice_cores", "advice_blocks"):
        assert f"(figures/{name}.png)" in advice
        assert (folder / "reports/figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    verdicts = metrics["advice"]["verdicts"]
    assert set(verdicts.values()) <= {"holds", "holds in part", "does not hold here",
                                      "not tested here"}
    cores = json.loads((folder / "reports/advice/cores.json").read_text())
    cpus = len(os.sched_getaffinity(0))
    assert len(cores["splits"]) == cpus * (cpus + 1) and [1, 0] in cores["splits"]
    if cores["best"]["beyond"]:  # measured at every batch size, and answered at
        assert cores["best_split"]["stack"]["loader_workers"] == cores["best"]["workers"]
    else:  # the question's own split answers: steptime measured it
        assert cores["best_split"] is None and (
            "within the rounds' spread of the question's own split" in rows[6])
    # `dvc metrics show`: the headline, flat (the whole answer stays in sweet_spot.json)
    shown = json.loads(sh("dvc", "metrics", "show", "--json", cwd=folder).stdout)[""]["data"]
    assert set(shown) == {"reports/metrics/answer.json", "reports/metrics/bench.json"}
    top = shown["reports/metrics/answer.json"]["data"]  # (bench has not run here)
    assert top == json.loads((folder / "reports/metrics/answer.json").read_text())
    assert top["batch_size"] == metrics["batch_size"] and top["target"] == 0.8
    assert top["region_low"] == min(metrics["region"]) and top["b_star"] > 0
    assert not [v for v in top.values() if isinstance(v, (dict, list))]
    html = sh("dvc", "plots", "show", "-o", "plots_html", cwd=folder).stdout
    page = (folder / "plots_html/index.html").read_text()
    assert "plots_html" in html
    assert "reports_plots_time_to_target_csv" in page and "reports_plots_curves" in page
    assert "reports_steps_to_target_csv" in page


@pytest.mark.slow
def test_steptime_and_the_steps_table(project):
    folder, _ = project
    times = json.loads((folder / "reports/steptime.json").read_text())["per_loader"]["tensor"]
    assert times["batch_sizes"] == [24, 32, 48, 96, 128, 192]  # the grid and every neighbour
    both = json.loads((folder / "reports/steptime.json").read_text())["per_loader"]
    assert both["torchvision"]["batch_sizes"] == times["batch_sizes"]
    assert both["torchvision"]["stack"]["loader"] == "torchvision"
    order = [(r["round"], r["batch_size"]) for r in times["rows"]]
    assert order == [(i, b) for i in range(3) for b in times["batch_sizes"]]  # interleaved
    table = pd.read_csv(folder / "reports/steps_to_target.csv")
    assert list(table.columns) == [*estimate.STEPS_COLUMNS, "resolution"]
    cells = sum(len(json.loads((folder / f"reports/cells/{s}/plan.json").read_text())["cells"])
                for s in ("refine", "rates", "seeds", "race")) + 2
    assert len(table) == 2 * cells  # a row per run and target
    assert set(table["target"]) == {0.8, 0.85} and set(table["dataset"]) == {"MNIST"}
    reached = table[~table["censored"]]
    assert (reached["steps"] > 0).all() and (reached["examples"] > 0).all()
    assert (reached["epochs"] == reached["examples"] / 6000).all()  # the tiny training set
    assert reached["epochs"].max() <= 3  # sweep.max_epochs


@pytest.mark.slow
def test_every_cell_is_a_child_of_the_sweep_run(project):
    folder, _ = project
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [r for r in runs if r.data.tags.get("kind") == "sweep"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    planned = [json.loads((folder / f"reports/cells/{stage}/plan.json").read_text())["cells"]
               for stage in ("refine", "rates", "seeds", "race")]
    assert len(planned[2]) >= 1  # at least the sweet spot reached the target: one more seed
    measured = ("sweep", "steptime", "cores", "memory", "blocks", "pipeline")  # train no cell
    asked = [r for r in runs if r.data.tags.get("dvc_stage") == "question"]
    assert sorted(int(r.data.params["batch_size"]) for r in asked) == [1, 6000]
    trained = [r for r in runs if r.data.tags.get("kind") not in measured and r not in asked]
    sample = [r for r in trained if r.data.params.get("sweep_stage") == "reproduce"]
    held = [r for r in trained if r.data.params.get("sweep_stage") == "heldout"]
    trained = [r for r in trained if r not in sample + held]  # they check the cells: no cell
    rows = json.loads((folder / "reports/heldout/MNIST-mlp.json").read_text())["rows"]
    assert len(held) == sum(len(r["seeds"]) for r in rows) and held[0].info.run_id in {
        i for r in rows for i in r["run_ids"]}
    assert len(children) == 2 + sum(map(len, planned)) == len(trained)  # the race's are cells
    assert len(sample) == json.loads((folder / "reports/reproduce.json").read_text())["sampled"]
    kinds = [r.data.tags["kind"] for r in runs if r not in trained + sample + held + asked]
    assert kinds.count("steptime") == 2 and all(kinds.count(k) == 1 for k in measured[2:])
    metrics = json.loads((folder / "reports/sweet_spot.json").read_text())
    assert parent.data.metrics["sweet_spot_batch_size"] == metrics["batch_size"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "figures")}
    assert "figures/epoch_vs_target.png" in artifacts
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"steps_to_target.csv", "steptime.json", "sweet_spot.json", "report.md"} <= files
    assert (folder / "mlruns").is_dir()  # artifacts beside the store, in the project root


@pytest.mark.slow
def test_a_sample_of_the_cells_is_retrained_here_and_reproduces_its_steps(project):
    """The reproduce stage retrains the spot's seeds and the region's edges on this machine: on
    the machine that trained the cells, bitwise the same steps; the report says so, and checks
    the estimate against those runs."""
    folder, _ = project
    sample = json.loads((folder / "reports/reproduce.json").read_text())
    answer = json.loads((folder / "reports/sweet_spot.json").read_text())
    rows = sample["rows"]
    assert sample["spot"] == answer["batch_size"] and sample["region"] == answer["region"]
    assert [r["batch_size"] for r in rows if r["role"] == "spot"] == [answer["batch_size"]] * len(
        [r for r in rows if r["role"] == "spot"]) and len(rows) >= 2  # the spot's two seeds
    edges = {r["batch_size"] for r in rows if r["role"] == "edge"}
    assert edges == {min(answer["region"]), max(answer["region"])} - {answer["batch_size"]}
    assert sample["identical"] == sample["sampled"] == len(rows) == len(sample["runs"])
    assert all(r["committed"] == r["here"] and r["causes"] == [] for r in rows)
    assert answer["reproduced"] == f"{len(rows)}/{len(rows)}"
    check = answer["self_check"]
    assert check["batch_sizes"] >= 1 and check["median"] > 0  # the sample, timed here
    report = (folder / "reports/report.md").read_text()
    cells = len(sweep_cells(folder))
    assert f"{len(rows)} of {len(rows)} sampled cells reproduced their steps" in report
    assert f"All {cells} cells behind this answer were trained on this machine." in report
    assert "sampled runs, timed on this machine, took" in report


def sweep_cells(folder: Path) -> list[Path]:
    """Every cell the report reads: the two grid cells, then those refine, rates, seeds and race
    planned."""
    grid = [folder / "reports/cells/coarse" / f"b{b}-lr1.0-s0-tensor.json" for b in (32, 128)]
    return grid + [folder / f"reports/cells/{s}/{name}.json"
                   for s in ("refine", "rates", "seeds", "race")
                   for name in json.loads((folder / f"reports/cells/{s}/plan.json").read_text())[
                       "cells"]]


@pytest.mark.slow
def test_a_report_only_edit_leaves_every_cell_and_timing_stage_up_to_date(project):
    """Change what only the report runs: only the report is stale. Change a statistic of the
    answer (analysis.py): no grid cell and no timing stage is stale (their deps are what their
    commands import: tests/test_paths.py), and the stages that plan from it retrain nothing."""
    folder, _ = project
    before = stale(folder)
    timing = ("sweep@", "extremes@", "steptime", "bench", "cores", "memory", "blocks",
              "pipeline", "question")
    cells = {p: p.read_bytes() for p in sweep_cells(folder)}
    for module in ("report/writeup.py", "answer/analysis.py"):
        source = folder / "src/sweetspot" / module
        kept = source.read_bytes()
        try:
            source.write_bytes(kept + b"\n# an edit\n")
            now = stale(folder) - before
            assert not [s for s in now if s.startswith(timing)], (module, now)
            if module == "report/writeup.py":
                assert now == {"report"}
            else:  # the plan, refine, rates, seeds and the race run again, and keep every cell
                assert {"plan", "refine", "rates", "seeds", "race"} <= now
                sh("dvc", "repro", "race", cwd=folder)
                assert {p: p.read_bytes() for p in sweep_cells(folder)} == cells
        finally:
            source.write_bytes(kept)
    sh("dvc", "repro", "race", cwd=folder)  # back to the lock's code: nothing to train
    assert {p: p.read_bytes() for p in sweep_cells(folder)} == cells
    assert stale(folder) == before


@pytest.mark.slow
def test_held_out_seeds_are_checked_against_the_verdicts(project):
    """The heldout stage of `dvc repro` trains new seeds at the spot, a member of the region and
    the first size above it left out, against the answer the report gives, and the report sets
    their times beside the verdicts; a seed the answer used is one line, exit 2, before any
    run."""
    folder, _ = project
    summary = json.loads((folder / "reports/compare/MNIST-mlp.json").read_text())
    held = folder / "reports/heldout/MNIST-mlp.json"
    doc = json.loads(held.read_text())
    assert doc["answer"] == {k: summary[k] for k in ("spot", "region", "tried")}
    rows = {r["batch_size"]: r for r in doc["rows"]}
    assert rows[summary["spot"]]["verdict"] == "spot" and rows[summary["spot"]]["ratio"] == 1
    assert set(rows) <= set(summary["tried"])
    assert all(r["seeds"] == [100, 101, 102] and len(r["steps"]) == 3 for r in rows.values())
    for r in rows.values():  # the verdict's test, applied to the fresh times
        if r["verdict"] != "spot":
            assert r["agrees"] == (r["ratio"] <= 1 + doc["margin"] if r["verdict"] == "in"
                                   else r["ratio"] > 1)
    assert "## Held out: fresh seeds against the verdicts" in (
        folder / "reports/report.md").read_text()
    kept = held.read_bytes()
    used = sh("sweetspot", "heldout", "--seeds", "0", cwd=folder, check=False)
    assert used.returncode == 2 and used.stderr.strip().count("\n") == 0
    assert "[0] trained cells of the answer" in used.stderr and held.read_bytes() == kept


@pytest.mark.slow
def test_changing_one_cell_reruns_only_that_cell(project):
    """What `dvc repro` would run for a grid with one batch size swapped (`--dry`: DVC's own plan,
    nothing trained): that cell and the stages that read it, no other cell. The report reads
    only the grid params.yaml defines now (tests/sweep/test_sweep.py)."""
    folder, _ = project
    shutil.copy(folder / "params.yaml", folder / "params.good")
    try:
        set_params(folder, {"sweep": {"batch_sizes": [32, 64]}})  # 128 -> 64: one new cell
        dry = ran_stages(sh("dvc", "repro", "--dry", "report", cwd=folder).stdout)
        assert [s for s in dry if s.startswith("sweep@")] == ["sweep@64-1.0-0-tensor"]
        assert "steptime" in dry and "report" in dry  # a new batch size needs its step time
    finally:
        shutil.move(folder / "params.good", folder / "params.yaml")
    again = ran_stages(sh("dvc", "repro", "--dry", "report", cwd=folder).stdout)
    assert not [s for s in again if s.startswith("sweep@")]  # the grid as it was: all there


@pytest.mark.slow
def test_a_clone_from_another_machine_or_speed_re_measures_the_seconds(project):
    """The committed machine.json is another machine's (as in a fresh clone of a commit made
    there): another identity, or this identity at another speed, makes steptime stale once the
    machine stage runs; this machine at its own speed re-runs nothing. (bench and the advice
    stages depend on machine.json as steptime does: tests/test_paths.py.)"""
    folder, _ = project
    sh("dvc", "repro", "steptime", cwd=folder)
    fingerprint = folder / "reports/machine.json"
    mine = json.loads(fingerprint.read_text())
    ran = ran_stages(sh("dvc", "repro", "steptime", cwd=folder).stdout)
    assert ran == ["machine"] and json.loads(fingerprint.read_text()) == mine  # speed kept
    slower = {loader: {b: 20 * t for b, t in sizes.items()} for loader, sizes in
              mine["speed"].items()}  # beyond TINY's tolerance (90%): this one is 20x faster
    for there in ({**mine, "speed": slower}, {**mine, "cpu_stepping": "another"}):
        fingerprint.write_text(json.dumps(there))
        sh("dvc", "commit", "--force", "machine", "steptime", cwd=folder)  # as there
        assert "steptime" not in stale(folder)
        sh("dvc", "repro", "machine", cwd=folder)
        assert "steptime" in stale(folder)
        found = json.loads(fingerprint.read_text())
        assert found["speed"] != slower and found["cpu_stepping"] == mine["cpu_stepping"]
    sh("dvc", "repro", "steptime", cwd=folder)
    assert "steptime" not in stale(folder)


@pytest.mark.slow
def test_re_measuring_the_seconds_retrains_nothing_unless_the_plan_changes(project):
    folder, _ = project
    sh("dvc", "repro", "race", cwd=folder)  # the plan and the race on the seconds measured now
    plan = (folder / "reports/refine_plan.json").read_bytes()
    sh("dvc", "repro", "-f", "-s", "steptime", cwd=folder)
    sh("dvc", "repro", "plan", cwd=folder)
    dry = ran_stages(sh("dvc", "repro", "--dry", "report", cwd=folder).stdout)
    training = [s for s in dry if s.startswith(("sweep@", "extremes@", "refine", "seeds"))]
    if (folder / "reports/refine_plan.json").read_bytes() == plan:
        assert training == [] and "report" in dry
    else:  # the new seconds moved the coarse region: refinement must follow it
        assert "refine" in training
    raced = {p.name: p.read_bytes() for p in (folder / "reports/cells/race").glob("b*.json")}
    sh("dvc", "repro", "race", cwd=folder)  # the race on the new seconds
    after = {p.name: p.read_bytes() for p in (folder / "reports/cells/race").glob("b*.json")}
    if training == []:  # the same cells before it: every cell it keeps is the one it trained
        assert all(after[name] == raced[name] for name in set(after) & set(raced))


@pytest.mark.slow
def test_bad_grid_fails_at_the_start_with_one_line(project):
    folder, _ = project
    shutil.copy(folder / "params.yaml", folder / "params.good")
    cells = {p: p.read_bytes() for p in sweep_cells(folder)}
    try:
        set_params(folder, {"sweep": {"targets": [1.5]}})
        done = sh("dvc", "repro", "report", cwd=folder, check=False)
        assert done.returncode != 0
        assert "sweep.targets: 1.5 is out of range (0, 1.0]" in done.stdout + done.stderr
        assert {p: p.read_bytes() for p in sweep_cells(folder)} == cells  # none deleted by DVC
    finally:
        shutil.move(folder / "params.good", folder / "params.yaml")


@pytest.mark.slow
def test_a_missing_committed_cell_is_retrained_alone_and_the_report_says_so(project):
    """As in a clone of cells committed elsewhere: one cell goes missing; `dvc repro` retrains
    that cell and no other (refine, seeds and the race keep theirs), and the report names it.
    Last in this file: it leaves the cells marked as trained elsewhere."""
    folder, _ = project
    for path in sweep_cells(folder):  # trained on another host, committed there
        cell = json.loads(path.read_text())
        path.write_text(json.dumps({**cell, "provenance": {**cell["provenance"],
                                                          "host": "elsewhere"}}))
    sh("dvc", "commit", "--force", "--quiet", cwd=folder)
    shutil.rmtree(folder / ".dvc" / "cache")  # a clone has none: no run cache restores the cell
    cells = {p: p.read_bytes() for p in sweep_cells(folder)}
    gone = folder / "reports/cells/coarse/b32-lr1.0-s0-tensor.json"
    gone.unlink()
    assert {s for s in stale(folder) if s.startswith("sweep@")} == {"sweep@32-1.0-0-tensor"}
    ran = ran_stages(sh("dvc", "repro", "report", cwd=folder).stdout)
    assert [s for s in ran if s.startswith(("sweep@", "extremes@"))] == ["sweep@32-1.0-0-tensor"]
    after = {p: p.read_bytes() for p in sweep_cells(folder)}
    assert [p.name for p in cells if after[p] != cells[p]] == [gone.name]  # no other retrained
    report = (folder / "reports/report.md").read_text()
    assert (f"1 of the {len(cells)} cells behind this answer was trained on this machine "
            f"(b32-lr1.0-s0-tensor)") in report
