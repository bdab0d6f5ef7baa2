"""Everything MLflow: where the store is, how a run starts and ends, and the provenance it carries.

The store is MLflow's default sqlite file, `mlflow.db` in the project root, named by an absolute URI
so runs launched from DVC's temporary experiment copies land in the same store; artifacts go to
`mlruns/` beside it. MLFLOW_TRACKING_URI overrides both (e.g. the server of `sweetspot server`).
Under `mlflow run` (MLFLOW_RUN_ID set) the given run is resumed instead of choosing an experiment.
A sqlite store is created once, under a lock, before any run opens (see ensure_store).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import os
import platform
import socket
import subprocess
import time
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags

from sweetspot import paths
from sweetspot.track import delivery, outage


def project_root() -> Path:
    """The project folder: DVC_ROOT under DVC (the parent repo, also for temporary experiment
    copies), else the working directory."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def default_uri() -> str:
    return f"sqlite:///{project_root() / paths.MLFLOW_DB}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_uri()


_READY: set[str] = set()  # sqlite stores this process has created or checked


def ensure_store(uri: str | None = None) -> None:
    """Create or upgrade a sqlite store once, under a file lock, before any run opens: processes
    that find no store and create it together race MLflow's schema migration (one dies with
    "duplicate column name"). A server's database is the server's business."""
    uri = uri or tracking_uri()
    if not uri.startswith("sqlite:///") or uri in _READY:
        return
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        MlflowClient(uri).search_experiments(max_results=1)  # creates or migrates the schema
    _READY.add(uri)


def client() -> MlflowClient:
    ensure_store()
    return MlflowClient(tracking_uri())


def dataset_digest(md5s: dict[str, str]) -> str:
    """The run's data as the runs table's Dataset column names it: a digest of its files'
    canonical MD5s (the same whichever source it came from)."""
    return hashlib.md5(" ".join(md5s[f] for f in sorted(md5s)).encode()).hexdigest()[:12]


# What `dvc repro` itself rewrites while it runs (dvc.lock after every stage, the results): not
# a change to the code or params a run ran with, so not what makes its tree dirty.
PIPELINE_WRITES = (".", ":(exclude)dvc.lock", ":(exclude)reports")

KIND = {"mlflow.experimentKind": "custom_model_development"}  # the UI's model-training view


def experiment_id(name: str) -> str:
    """The experiment's id, creating it (artifacts under <root>/mlruns) when it is new. It is
    tagged as model training, so the MLflow UI opens it in that view, not the GenAI one."""
    mlflow_client = client()
    found = outage.retry(mlflow_client.get_experiment_by_name, name)
    if found is not None:
        for tag, value in KIND.items():
            if tag not in found.tags:  # a store from before the tag
                outage.retry(mlflow_client.set_experiment_tag, found.experiment_id, tag, value)
        return found.experiment_id
    location = None  # artifacts beside the default store; a server or other store decides its own
    if tracking_uri() == default_uri():  # (mlflow.set_tracking_uri also sets the variable)
        location = (project_root() / paths.MLRUNS).as_uri()
    try:
        return outage.retry(mlflow_client.create_experiment, name, artifact_location=location,
                            tags=KIND)
    except Exception:  # created meanwhile by a parallel process
        return outage.retry(mlflow_client.get_experiment_by_name, name).experiment_id


@contextlib.contextmanager
def open_run(experiment: str, run_name: str, tags: dict | None = None,
             started: float | None = None, ended: float | None = None, resume: bool = True):
    """One MLflow run that always ends: FINISHED, FAILED on an exception, KILLED on Ctrl-C. It
    yields the run's Outbox (delivery.py): its writes return at once and reach the store in
    order, through an outage of up to SWEETSPOT_TRACKING_WAIT seconds; what has not landed by
    then is kept in .outbox/ and the run ends with Undelivered (one line). A run opened after
    the work it records gives `started` (time.time() when the work began), and `ended` if the
    work ended before the run closes, so that its duration spans the work. Under `mlflow run`
    (MLFLOW_RUN_ID) it resumes that run, unless `resume` is False."""
    with outage.bounded_http():  # each request once: outage.retry() does the waiting
        uri = tracking_uri()
        store = client()
        mlflow.set_tracking_uri(uri)  # where mlflow.pytorch.log_model writes, from any thread
        given = os.environ.get("MLFLOW_RUN_ID") if resume else None
        if given:  # launched by `mlflow run`: resume its run, in its experiment
            outage.retry(store.update_run, given, status="RUNNING", name=run_name)
            experiment = outage.retry(store.get_run, given).info.experiment_id
            run_id = given
        else:  # created with its tags: no one sees it RUNNING without them (cluster.mark_orphans)
            experiment = experiment_id(experiment)
            start = round(started * 1000) if started is not None else None
            run_id = outage.retry(store.create_run, experiment, start_time=start,
                                  run_name=run_name, tags=resolve_tags(tags or {})).info.run_id
        outbox = delivery.Outbox(uri, run_id, experiment)
        if given and tags:
            outbox.set_tags(tags)
        keep_in = project_root() / paths.OUTBOX
        try:
            yield outbox
        except BaseException as e:
            try:
                outbox.close("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED", keep_in)
            except outage.Undelivered as lost:  # the failure that ended the run goes on up
                outage.say(str(lost))
            raise
        outbox.close("FINISHED", keep_in, round(ended * 1000) if ended is not None else None)


def git(*args: str) -> str:
    """git ARGS in the project, its output stripped; "" where git fails or is absent."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=project_root())
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def cpuinfo(text: str | None = None) -> dict[str, str]:
    """The first CPU's fields in /proc/cpuinfo (or `text`), {"model name": ..., "flags": ...};
    empty where there is none."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    fields = (line.partition(":") for line in text.split("\n\n", 1)[0].splitlines())
    return {key.strip(): value.strip() for key, _, value in fields}


def cpu_model() -> str:
    return cpuinfo().get("model name") or platform.processor() or platform.machine()


def host() -> str:
    """This host since its last boot, where a run was timed: "<name> boot <boot id>". A run
    tagged with another was timed on another machine, or before a reboot."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()} boot {boot}" if boot else socket.gethostname()


def provenance(device: str) -> dict[str, str]:
    """Tags for every run: code version, library versions, hardware."""
    from importlib.metadata import version

    import torch

    tags = {
        "git_commit": git("rev-parse", "HEAD") or "unknown",
        "git_dirty": str(bool(git("status", "--porcelain", "--untracked-files=no", "--",
                                   *PIPELINE_WRITES))).lower(),
        "torch_version": torch.__version__,
        "torchvision_version": version("torchvision"),  # no import: torchvision loads slowly
        "mlflow_version": mlflow.__version__,
        "python_version": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),  # its kernels' vectors
        "device": device,
        "host": host(),
    }
    if device.startswith("cuda"):
        tags["gpu_name"] = torch.cuda.get_device_name(torch.device(device))
    if os.environ.get("DVC_STAGE"):
        tags["dvc_stage"] = os.environ["DVC_STAGE"]
    return tags


def ui_url(experiment: str, base: str | None = None) -> str:
    """Where a person opens the experiment: on the server, or where `mlflow ui` serves by
    default; in the model-training view (MLflow 3.17's UI opens its GenAI view, whatever the
    experiment's tag, unless the address asks for the other)."""
    uri = tracking_uri()
    local = f"http://127.0.0.1:{paths.MLFLOW_PORT}"  # where `mlflow ui` serves by default
    base = base or (uri if uri.startswith(("http://", "https://")) else local)
    return f"{base.rstrip('/')}/#/experiments/{experiment}?workflowType=machine_learning"


def sweep_name(dataset: str, network: str, optimizer: str) -> str:
    """The parent run's name, for a person: what was swept, how, and when (the report's day)."""
    return f"{dataset} {network} {optimizer} sweep {datetime.date.today():%Y-%m-%d}"


def file_sweep(experiment: str, key: str, name: str, summary: dict, params: dict,
               artifacts: list[Path], cells: dict[str, str]) -> str:
    """One parent run per sweep definition (`key`), named `name`, carrying the answer (`summary`
    metrics, `params`) and the report's files (`artifacts`: files, or folders logged under their
    name); every cell run ({cell name: run id}) present in this store becomes its child, so the
    `mlflow ui` groups them under it, and the parent spans them: it starts when the first began
    and ends when the last ended (a parent from an earlier report is replaced). Its records go
    through the outbox, as a run's do. Returns its id."""
    store = client()
    children, elsewhere = {}, []
    for cell, run_id in cells.items():
        try:
            children[run_id] = outage.retry(store.get_run, run_id).info
        except Exception:  # noqa: BLE001 - a committed cell, trained and tracked elsewhere
            elsewhere.append(cell)
    if elsewhere:
        print(f"report: {len(elsewhere)} of {len(cells)} cells have no run in this MLflow store "
              f"(trained elsewhere and committed, e.g. {elsewhere[0]}); the sweep's run links "
              "the others")
    now = time.time()
    start = min((c.start_time / 1000 for c in children.values()), default=now)
    end = max(((c.end_time or now * 1000) / 1000 for c in children.values()), default=now)
    sweeps = f"tags.sweep_key = '{key}' and tags.kind = 'sweep'"
    for old in outage.retry(store.search_runs, [experiment_id(experiment)], sweeps):
        outage.retry(store.delete_run, old.info.run_id)
    with open_run(experiment, name, {"sweep_key": key, "kind": "sweep"}, start, end,
                  resume=False) as parent:
        parent.log_metrics({k: float(v) for k, v in summary.items() if v is not None})
        parent.log_params(params)
        for path in artifacts:
            parent.log_file(path, Path(path).name if Path(path).is_dir() else None)
        for run_id in children:
            parent.set_tags({"mlflow.parentRunId": parent.run_id, "sweep_key": key}, of=run_id)
    print(f"mlflow ui: {ui_url(experiment_id(experiment))} (the sweep: {name})")
    return parent.run_id
