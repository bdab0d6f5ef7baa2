"""The sweet spot on any machine and stack, without a sweep: `sweetspot predict`.

Reads a steps table (reports/steps_to_target.csv by default, or a path, or an MLflow run id whose
artifacts hold one) and params.yaml; measures seconds per step here and now with the stack asked
for (--device, --loader, --threads, --compile); prints the predicted seconds to each target per
batch size and the sweet spot with its interval; writes reports/predict-<stack>.json (with the
MD5 of the steps table it read) and one MLflow run. Trains nothing. Run: `sweetspot predict
--threads 1`.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import pandas as pd

from sweetspot import paths
from sweetspot.answer import estimate, fastest
from sweetspot.config import Params
from sweetspot.data.idx import md5
from sweetspot.data.load import load_data, resolve_device
from sweetspot.errors import ConfigError
from sweetspot.fmt import table
from sweetspot.measure import machine, steptime
from sweetspot.track import outage, tracking
from sweetspot.train import networks


def load_steps(source: str | None) -> tuple[pd.DataFrame, str]:
    """The steps table from a path (default: the committed one) or an MLflow run's artifacts
    (downloaded into a folder gone once read), refused whole when it is not one, and the MD5 of
    the file as read (as dvc.lock records it)."""
    path = Path(source) if source else paths.STEPS_TABLE
    with tempfile.TemporaryDirectory(prefix="sweetspot-steps-") as folder:
        if source and not path.exists() and re.fullmatch("[0-9a-f]{32}", source):  # a run id
            path = _from_run(source, folder)
        if not path.is_file():
            raise ConfigError(f"--steps: no steps table at {path} (run `dvc repro report`, or "
                              "give a path or an MLflow run id)")
        try:
            table = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise ConfigError(f"--steps: {path} is not a CSV table ({str(e).splitlines()[0]})") \
                from None
        digest = md5(path)
    missing = [c for c in estimate.STEPS_COLUMNS if c not in table]
    if missing:
        raise ConfigError(f"--steps: {path} has no column {missing[0]!r}; expected "
                          f"{', '.join(estimate.STEPS_COLUMNS)}")
    if table.empty:
        raise ConfigError(f"--steps: {path} has no rows")
    bad = table[~table["censored"].astype(bool) & ~(table["steps"] > 0)]
    if len(bad) or not (table["batch_size"] > 0).all():
        raise ConfigError(f"--steps: {path} has a row that is neither censored nor a positive "
                          "number of steps at a positive batch size")
    return table, digest


def _from_run(run_id: str, folder: str) -> Path:
    """steps_to_target.csv from the MLflow run `run_id` (the sweep's parent run holds one), into
    `folder`."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking.tracking_uri())
    try:
        return Path(outage.retry(client.download_artifacts, run_id, paths.STEPS_TABLE.name,
                                   folder))
    except Exception as e:  # noqa: BLE001 - MLflow raises several kinds for a missing run/file
        raise ConfigError(f"--steps: MLflow run {run_id} has no {paths.STEPS_TABLE.name} "
                          f"({type(e).__name__})") from None


def check_problem(table: pd.DataFrame, params: Params) -> None:
    """The table must be for the dataset, network and optimizer asked for: steps belong to them."""
    want = {"dataset": params.data.dataset, "network": networks.network_name(params.train),
            "optimizer": params.train.optimizer}
    for key, value in want.items():
        found = sorted(set(table[key].astype(str)))
        if found != [value]:
            raise ConfigError(f"--steps: the table is for {key} {', '.join(found)}, not {value}")


def predict(params: Params, table: pd.DataFrame, doc: dict) -> dict:
    """Per target of the table: the estimate per batch size and the sweet spot, from the table's
    steps (every loader's runs: steps do not depend on the data path) and the measurement."""
    seconds = fastest.round_seconds(doc)
    out = {}
    for target in sorted(table["target"].unique(), reverse=True):
        found = estimate.estimate(table, seconds, float(target), params.sweep.resamples)
        rows = found["per_batch"].drop(columns="steps_runs")
        out[f"{target:g}"] = {"spot": found["spot"], "per_batch": rows.to_dict("records")}
    return out


def table_text(prediction: dict, name: str, load: dict | None) -> str:
    lines = [f"predicted seconds of training to each target on {name}; while measuring, "
             f"{machine.load_text(load)}:", "",
             *table(["target", "batch size", "lr", "steps", "µs/step", "seconds",
                     "95% interval", "wins"], "rrrrrrlr",
                    [[target, r["batch_size"], f"{r['lr']:g}", f"{r['median_steps']:.0f}",
                      f"{r['seconds_per_step'] * 1e6:.0f}", f"{r['estimate']:.2f}",
                      f"{r['low']:.2f}-{r['high']:.2f}", f"{r['share']:.0%}"]
                     for target, found in prediction.items() for r in found["per_batch"]])]
    for target, found in prediction.items():
        s = found["spot"]
        if s["batch_size"] is None:
            lines.append(f"target {target}: no sweet spot ({s['reason']})")
        else:
            region = [r["batch_size"] for r in s["region"]]
            lines.append(f"target {target}: sweet spot {s['batch_size']} (lr {s['lr']:g}), "
                         f"{s['estimate']:.2f} s [{s['low']:.2f}, {s['high']:.2f}], wins "
                         f"{s['share']:.0%} of resamples; sweet region {region}")
    return "\n".join(lines)


def run(params: Params, table: pd.DataFrame) -> dict:
    """Measure here, predict, log one MLflow run; returns the prediction document."""
    started = time.time()
    data = load_data(params.data.dataset, resolve_device(params.train.device),
                     params.train.train_examples)
    doc = steptime.measure_doc(params, data, sorted(int(b) for b in table["batch_size"].unique()))
    prediction = predict(params, table, doc)
    name = doc["stack_name"]
    result = {"stack": name, "steptime": {k: v for k, v in doc.items() if k != "rows"},
              "prediction": prediction}
    with tracking.open_run(params.train.experiment, f"predict {name}",
                      {**tracking.provenance(str(data.device)), "kind": "predict"},
                      started) as active:
        steptime.log(active, doc)
        for target, found in prediction.items():
            for r in found["per_batch"]:
                active.log_metrics({f"predicted_seconds/{target}": r["estimate"]},
                                   step=int(r["batch_size"]))
            if found["spot"]["batch_size"] is not None:
                active.log_metrics({f"sweet_spot/{target}": found["spot"]["batch_size"]})
        result["run_id"] = active.run_id
    return result


def main(params: Params, steps: str | None) -> int:
    """Check everything first (the table, the stack's device, the data), then measure and
    predict; params.train is the stack asked for (already checked)."""
    table, table_md5 = load_steps(steps)
    check_problem(table, params)
    resolve_device(params.train.device)  # a missing CUDA device: one line, before any work
    result = {**run(params, table), paths.STEPS_MD5: table_md5}
    out = paths.predict_file(result["stack"])
    paths.write_json(out, result)
    print(table_text(result["prediction"], result["stack"], result["steptime"]["load"]))
    print(f"wrote {out}; mlflow run {result['run_id']}")
    return 0
