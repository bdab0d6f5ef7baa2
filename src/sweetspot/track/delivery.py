"""A run's records on their way to MLflow, in order, through outages: the outbox (the one
description of it; the README and docs link here).

Every write of a run (params, tags, metrics, its dataset, files, the model, its end) is an op on one
queue, delivered in order. While the store answers, a write goes at once from the caller's thread:
the training loop calls it with its clock paused, so no second thread shares the cores with a
timed stretch. The first write that fails, and every write after it until the queue is empty
again, goes to a worker thread, which retries while the caller goes on training. A write that fails
for a reason that passes is retried for up to SWEETSPOT_TRACKING_WAIT seconds (outage.py), with one
line when an outage begins and one when it ends. Two steps do wait: creating the run
(tracking.open_run, before the training starts) and closing it (after the training, for the queue
to drain), each for up to the same wait. What is still undelivered then is kept in
.outbox/<run id>/ (ops.json and the files the ops name), the command exits 1 with one line, and
`sweetspot upload` delivers it later, in the same order (upload.py).

MLflow's own asynchronous logging is not used: its queue drops a batch whose HTTP retries ran out
(it logs an error and goes on), and it carries metrics, params and tags only, not files or models.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path

from sweetspot.track.outage import Undelivered, retry

OPS_FILE = "ops.json"
# MLflow warns, at every pickled model, that unpickling runs code; the project pickles on purpose
# (torch.export adds seconds to every run) and the report says so once (report.PICKLED).
PICKLE_WARNING = "Saving pytorch model by Pickle"
BATCH = 900  # metrics per request (MLflow takes at most 1000)


def now_ms() -> int:
    return int(time.time() * 1000)


def take(ops: list[dict], i: int) -> tuple[dict, int]:
    """The op at i, with the metrics ops right after it merged into one request; and how many."""
    op = ops[i]
    if op["kind"] != "metrics":
        return op, 1
    metrics, n = list(op["metrics"]), 1
    while i + n < len(ops) and ops[i + n]["kind"] == "metrics" and len(metrics) < BATCH:
        metrics += ops[i + n]["metrics"]
        n += 1
    return {"kind": "metrics", "metrics": metrics}, n


def deliver(client, run_id: str, experiment_id: str, op: dict, base: Path) -> None:
    """One op to the store; the files it names are under `base` (or absolute)."""
    from mlflow.entities import Metric, Param, RunTag

    kind = op["kind"]
    if kind == "params":  # skip those the run has: `mlflow run` logs -P values as typed ("0")
        have = client.get_run(run_id).data.params
        new = [Param(k, v) for k, v in op["params"].items() if k not in have]
        if new:
            client.log_batch(run_id, params=new)
    elif kind == "tags":  # this run's, or another's (`of`: the sweep's run tags its cells)
        client.log_batch(op.get("of", run_id), tags=[RunTag(k, v) for k, v in op["tags"].items()])
    elif kind == "metrics":
        client.log_batch(run_id, metrics=[Metric(k, v, t, s) for k, v, t, s in op["metrics"]])
    elif kind == "dataset":
        _log_dataset(client, run_id, op)
    elif kind == "file":
        path = base / op["path"]
        log = client.log_artifacts if path.is_dir() else client.log_artifact
        log(run_id, str(path), op.get("under"))
    elif kind == "dict":
        client.log_dict(run_id, op["doc"], op["name"])
    elif kind == "model":
        _log_model(client, run_id, experiment_id, op, base)
    elif kind == "end":
        client.set_terminated(run_id, op["status"], op["end_time"])
    else:
        raise AssertionError(kind)


def _log_dataset(client, run_id: str, op: dict) -> None:
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    with warnings.catch_warnings():  # the folder matches two equivalent local source types
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(op["source"])
    dataset = MetaDataset(source, name=op["name"], digest=op["digest"])._to_mlflow_entity()
    context = InputTag(MLFLOW_DATASET_CONTEXT, op["context"])
    client.log_inputs(run_id, [DatasetInput(dataset, [context])])


def _log_model(client, run_id: str, experiment_id: str, op: dict, base: Path) -> None:
    """The final model as an MLflow model ("model": the Models tab, `load_model("runs:/…/model")`)
    with its signature and an input example, pickled (torch.export would add seconds to every
    run) and given its pip requirements (inferring them is slow); then how long that took, as the
    run's `log_model_seconds`."""
    from importlib.metadata import version

    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    model, example = op["model"], op["example"]
    if isinstance(model, str):  # kept in the outbox
        model = torch.load(base / model, weights_only=False)
        example = torch.load(base / example)
    mlflow.set_experiment(experiment_id=experiment_id)  # where MLflow files the logged model
    logger = logging.getLogger("mlflow.pytorch")
    if _not_pickled not in logger.filters:
        logger.addFilter(_not_pickled)
    start = time.perf_counter()
    x = example.numpy()
    with torch.no_grad():
        signature = infer_signature(x, model(example).numpy())
    mlflow.pytorch.log_model(model, name="model", signature=signature, input_example=x,
                             serialization_format="pickle", run_id=run_id,
                             pip_requirements=[f"torch=={version('torch')}"])
    client.log_metric(run_id, "log_model_seconds", time.perf_counter() - start)


def _not_pickled(record: logging.LogRecord) -> bool:
    """A logging filter: drops MLflow's pickle warning (the report says it once, not every cell)."""
    return not record.getMessage().startswith(PICKLE_WARNING)


class Outbox:
    """One run's writes, in order, inline or from the worker thread (the module's doc says
    when). close() ends the run and waits."""

    def __init__(self, uri: str, run_id: str, experiment_id: str):
        from mlflow.tracking import MlflowClient

        self.uri, self.run_id, self.experiment_id = uri, run_id, experiment_id
        # What file ops name; removed at close, or when the Outbox is collected, whatever ends it
        self._folder = tempfile.TemporaryDirectory(prefix="sweetspot-run-")
        self.files = Path(self._folder.name)
        self.ops: list[dict] = []
        self.sent = 0
        self.error: Exception | None = None
        self.result: Path | None = None  # where the caller wrote the run's result, if it did
        self._client = MlflowClient(uri)
        self._changed = threading.Condition()
        self._busy = False  # a delivery under way, from either thread
        self._healthy = True  # the last delivery landed: the next may go from the caller's thread
        self._worker = threading.Thread(target=self._work, name="mlflow-outbox", daemon=True)
        self._worker.start()

    def _put(self, kind: str, **op) -> None:
        with self._changed:
            self.ops.append({"kind": kind, **op})
            inline = self._healthy and not self._busy and self.sent == len(self.ops) - 1
            self._busy = inline
            self._changed.notify_all()
        if not inline:
            return
        try:  # one try here; a failure is the worker's to retry and report
            deliver(self._client, self.run_id, self.experiment_id, self.ops[-1], Path("/"))
            landed = True
        except Exception:  # noqa: BLE001
            landed = False
        with self._changed:
            self.sent += landed
            self._busy, self._healthy = False, landed
            self._changed.notify_all()

    def log_params(self, params: dict) -> None:
        self._put("params", params={k: str(v) for k, v in params.items()})

    def set_tags(self, tags: dict, of: str | None = None) -> None:
        """Tags of this run, or of the run `of`, in this run's order."""
        self._put("tags", tags={k: str(v) for k, v in tags.items()}, **({"of": of} if of else {}))

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        t = now_ms()
        self._put("metrics", metrics=[[k, float(v), t, int(step)] for k, v in metrics.items()])

    def log_dataset(self, name: str, digest: str, folder: Path) -> None:
        self._put("dataset", name=name, digest=digest, source=str(folder), context="training")

    def log_file(self, path: Path, under: str | None = None) -> None:
        """A file or folder as artifacts; it must stay as it is until close()."""
        self._put("file", path=str(Path(path).resolve()), under=under)

    def log_dict(self, doc: dict, name: str) -> None:
        self._put("dict", doc=json.loads(json.dumps(doc)), name=name)

    def log_model(self, model, example) -> None:
        self._put("model", model=model, example=example.detach().cpu())

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._ended() or self.sent < len(self.ops)
                                       and not self._busy)
                if self._ended():
                    return
                op, n = take(self.ops, self.sent)
                self._busy = True
            try:
                retry(deliver, self._client, self.run_id, self.experiment_id, op, Path("/"),
                      doing=f"run {self.run_id} goes on, its logging retries")
            except Exception as e:  # noqa: BLE001 - kept, and raised by close()
                with self._changed:
                    self.error, self._busy = e, False
                    self._changed.notify_all()
                return
            with self._changed:
                self.sent += n
                self._busy, self._healthy = False, True
                self._changed.notify_all()

    def _ended(self) -> bool:
        return self.sent == len(self.ops) > 0 and self.ops[-1]["kind"] == "end"

    def close(self, status: str, keep_in: Path, end_ms: int | None = None) -> None:
        """End the run with `status` (at `end_ms`, else now) and wait until every write has
        landed. If the store stayed away, keep the rest in keep_in/<run id>/ and raise
        Undelivered; if it refused a write (a 4xx: nothing to keep for later), end the run FAILED
        and raise that."""
        self._put("end", status=status, end_time=end_ms or now_ms())
        with self._changed:
            self._changed.wait_for(lambda: self.sent == len(self.ops) or self.error)
        self._worker.join(timeout=30)  # gone before the process exits: a live daemon thread
        try:                           # at interpreter shutdown can abort it
            if isinstance(self.error, Undelivered):
                folder = self.keep(keep_in)
                result = f"; its result is in {self.result}" if self.result else ""
                raise Undelivered(f"{self.error}: run {self.run_id} is not complete there{result};"
                                  f" its records are kept in {folder}: `sweetspot upload` sends"
                                  " them")
            if self.error is not None:
                retry(self._client.set_terminated, self.run_id, "FAILED")
                raise self.error
        finally:
            self._folder.cleanup()

    def keep(self, keep_in: Path) -> Path:
        """The undelivered ops as keep_in/<run id>/ops.json, with copies of the files they name."""
        import torch

        folder = Path(keep_in) / self.run_id
        (folder / "files").mkdir(parents=True, exist_ok=True)
        kept = []
        for i, op in enumerate(self.ops[self.sent:]):
            op = dict(op)
            if op["kind"] == "file":
                source = Path(op["path"])
                copy = f"files/{i}-{source.name}"
                (shutil.copytree if source.is_dir() else shutil.copy2)(source, folder / copy)
                op["path"] = copy
            elif op["kind"] == "model":
                torch.save(op["model"], folder / f"files/{i}-model.pt")
                torch.save(op["example"], folder / f"files/{i}-example.pt")
                op.update(model=f"files/{i}-model.pt", example=f"files/{i}-example.pt")
            kept.append(op)
        save(folder, {"uri": self.uri, "run_id": self.run_id,
                      "experiment_id": self.experiment_id, "ops": kept})
        return folder


def save(folder: Path, doc: dict) -> None:
    """folder/ops.json, whole or not at all (a temporary file, then a rename). Not
    paths.write_json: a diverged run's NaN losses are records to keep, not nulls."""
    tmp = folder / (OPS_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(folder / OPS_FILE)
