"""Every path the project reads or writes (a stage's files, the MLflow store, the server's
folder) and the tracking server's port, named once (tests/test_paths.py holds dvc.yaml to them),
and the one way a stage writes a result file: whole or not at all."""

from __future__ import annotations

import json
import math
from pathlib import Path

PARAMS_FILE = Path("params.yaml")
DATA_ROOT = Path("data")  # torchvision's `root`: files live in data/<dataset>/raw

REPORTS = Path("reports")
CELLS = REPORTS / "cells"  # one JSON per training run, by sweep stage
COARSE = CELLS / "coarse"
EXTREMES = CELLS / "extremes"
REFINE = CELLS / "refine"
RATES = CELLS / "rates"  # the chosen rates' neighbours (sweep.rate_ratio)
SEEDS = CELLS / "seeds"
RACE = CELLS / "race"  # seeds where the sweet region is undecided (race.py)
PLAN = "plan.json"  # what refine/seeds/race decided to train, beside their cells

SWEET_SPOT = REPORTS / "sweet_spot.json"  # the answer, whole
METRICS = REPORTS / "metrics"  # what `dvc metrics show` prints: the headline numbers
ANSWER_METRICS = METRICS / "answer.json"
BENCH_METRICS = METRICS / "bench.json"
REPORT_MD = REPORTS / "report.md"
FIGURES = REPORTS / "figures"
PLOTS = REPORTS / "plots"
CURVES = PLOTS / "curves"
TIME_TO_TARGET = PLOTS / "time_to_target.csv"

MACHINE = REPORTS / "machine.json"  # this machine, stack and speed: steptime and bench depend on it
STEPTIME = REPORTS / "steptime.json"
REFINE_PLAN = REPORTS / "refine_plan.json"  # the batch sizes refinement adds, and its cells
STEPS_TABLE = REPORTS / "steps_to_target.csv"  # the table a machine does not change
STEPS_MD5 = "steps_table_md5"  # the key under which a prediction or validation records the MD5
                               # of the steps table it read (the report compares it with the file)
VALIDATION = REPORTS / "validation"  # validate-<stack>.json, one per stack validated
FORECAST = REPORTS / "forecast"  # <dataset>-<network>.json: a sweet spot forecast before its sweep
COMPARE = REPORTS / "compare"  # <dataset>-<network>.json: each swept problem's answer, summarised
REPRODUCE = REPORTS / "reproduce.json"  # a sample of the cells retrained here (reproduce.py)
HELDOUT = REPORTS / "heldout"  # <dataset>-<network>.json: fresh seeds against an answer's verdicts

ADVICE = REPORTS / "advice"  # the accepted answer's advice, timed here (advice/)
CORES = ADVICE / "cores.json"
MEMORY = ADVICE / "memory.json"
BLOCKS = ADVICE / "blocks.json"
PIPELINE = ADVICE / "pipeline.json"  # the question's DataLoader and eager step, each alone
QUESTION = REPORTS / "question.json"  # the question's own run: batch 1 and 60000 at lr 0.1
BENCH_JSON = REPORTS / "bench.json"
BENCH_PNG = REPORTS / "bench.png"

MLFLOW_DB = Path("mlflow.db")  # the default tracking store, in the project root (tracking.py)
MLRUNS = Path("mlruns")  # its artifacts, beside it
SERVER_DIR = Path(".server")  # `sweetspot server`'s database, artifacts and logs (server.py)
OUTBOX = Path(".outbox")  # a run's records the tracking store did not take in time (delivery.py)

MLFLOW_PORT = 5000  # MLflow's own default, for `sweetspot server` and `mlflow ui` alike


def raw_dir(dataset: str, root: Path = DATA_ROOT) -> Path:
    return Path(root) / dataset / "raw"


def predict_file(stack: str) -> Path:
    return REPORTS / f"predict-{stack}.json"


def validate_file(dataset: str, network_slug: str, stack: str) -> Path:
    """One problem's check on one stack: reports/validation/validate-<dataset>-<network>-<stack>."""
    return VALIDATION / f"validate-{dataset}-{network_slug}-{stack}.json"


def problem_file(folder: Path, dataset: str, network_slug: str) -> Path:
    """One (dataset, network)'s file in FORECAST or COMPARE."""
    return Path(folder) / f"{dataset}-{network_slug}.json"


def cell_file(folder: Path, name: str) -> Path:
    return Path(folder) / f"{name}.json"


def write_json(path: Path, doc) -> None:
    """Write as strict JSON (numpy scalars as numbers, inf and nan as null), atomically (a
    temporary file, then a rename): DVC sees the whole file or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_json_safe(doc), indent=1, allow_nan=False) + "\n")
    tmp.replace(path)


def _json_safe(value):
    """numpy scalars to Python, inf and nan to None, dict keys to strings."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
