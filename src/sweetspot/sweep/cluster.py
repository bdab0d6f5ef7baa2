"""The sweep on Ray: the training cells `dvc status` reports stale, as Ray tasks, then `dvc commit`.

`sweetspot sweep --executor ray [--address ADDRESS] [--threads N] [--retries N] [--force]`. Reads
params.yaml and DVC's status; each task runs the code path `dvc repro` runs (sweep.run_cell) and
writes its cell's JSON where the stage would; the driver records finished stages in dvc.lock.
Order: coarse and extremes cells; then `dvc repro plan` here (and steptime before it when stale),
with no task running (step times belong to this machine: one process); then refine's cells, then
the extra seeds'. The race (race.py) is left to `dvc repro`: each of its rounds decides from the
cells of the one before (with --force its cells go, so that `dvc repro` retrains them too).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from sweetspot import paths
from sweetspot.config import Params
from sweetspot.errors import ConfigError, ToolError
from sweetspot.sweep import planned, sweep
from sweetspot.track import outage, tracking

# planned stages, in order: their cell folders
PHASES = {"refine": paths.REFINE, "rates": paths.RATES, "seeds": paths.SEEDS}


@dataclass(frozen=True)
class Job:
    stage: str  # DVC's stage name, e.g. sweep@64-1.0-0-tensor, or refine
    label: str  # the sweep stage the run is tagged with: coarse, extremes, refine, seeds
    cell: sweep.Cell
    out: Path

    @property
    def title(self) -> str:  # what a failure is reported as: the stage, and the cell in it
        return self.stage if "@" in self.stage else f"{self.stage} {self.cell.name}"


def dvc(*args: str) -> str:
    """A dvc command in the project; its stdout. A failure is an error that quotes DVC."""
    done = subprocess.run([str(Path(sys.executable).with_name("dvc")), *args],
                          capture_output=True, text=True)
    if done.returncode:
        raise ToolError(f"dvc {' '.join(args[:2])} failed: {done.stderr.strip()[-1500:]}")
    return done.stdout


def stale() -> set[str]:
    return set(json.loads(dvc("status", "--json") or "{}"))


def grid_jobs(params: Params, stale_stages: set[str], force: bool) -> list[Job]:
    """The coarse and extremes cells to train: those DVC reports stale, or all with force."""
    jobs = []
    for label, folder, sizes in (("sweep", paths.COARSE, params.sweep.batch_sizes),
                                 ("extremes", paths.EXTREMES, params.sweep.extremes)):
        for cell in sweep.grid(params, sizes):
            name = f"{label}@{cell.batch_size}-{cell.base_lr}-{cell.seed}-{cell.loader}"
            if force or name in stale_stages:
                jobs.append(Job(name, "coarse" if label == "sweep" else label, cell,
                                paths.cell_file(folder, cell.name)))
    return jobs


def train_cell(params: Params, job: Job, root: str, uri: str) -> str:
    """One cell on a Ray worker, as its DVC stage runs it; returns the node's name."""
    # The worker's directory and environment as DVC gives the stage, for this task only (a
    # worker runs many); a multi-node cluster needs the project at this path on every node.
    with contextlib.chdir(root), mock.patch.dict(os.environ, MLFLOW_TRACKING_URI=uri,
                                                 DVC_ROOT=root, DVC_STAGE=job.stage):
        os.environ.pop("MLFLOW_RUN_ID", None)
        sweep.run_cell(params, job.cell, job.out, job.label)
    return platform.node()


def run_jobs(ray, task, params: Params, jobs: list[Job], retries: int) -> dict:
    """Every job as a Ray task (train.threads CPUs each, retried when its worker dies); progress
    as they finish. Returns {job title: error} for the cells that failed; the others complete."""
    for job in jobs:
        if job.out.is_file():  # as DVC removes a stage's outs (a directory in the way fails)
            job.out.unlink()
    root, uri, threads = str(tracking.project_root()), tracking.tracking_uri(), params.train.threads
    refs = {task.options(num_cpus=threads, max_retries=retries, name=f"cell {job.cell.name}")
            .remote(params, job, root, uri): job for job in jobs}
    began, failed, pending = time.perf_counter(), {}, list(refs)
    print(f"ray: {len(jobs)} cell(s) as tasks of {threads} thread(s)", file=sys.stderr)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            job = refs[ready[0]]
            try:
                what = f"done on {ray.get(ready[0])}"
            except Exception as e:  # noqa: BLE001 - RayTaskError, WorkerCrashedError: named
                cause = getattr(e, "cause", None) or e
                last = (str(cause).strip().splitlines() or [""])[-1][:300]
                failed[job.title] = what = f"FAILED: {type(cause).__name__}: {last}"
            print(f"ray: [{len(refs) - len(pending)}/{len(refs)}] {job.cell.name} {what} "
                  f"({time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # Ctrl-C: cancel every task left, and let the cancels land
        for ref in pending:
            ray.cancel(ref, force=True)
        ray.wait(pending, num_returns=len(pending), timeout=15)
        raise
    return failed


def mark_orphans(stages: set[str], since_ms: int) -> int:
    """Runs of these stages left RUNNING by a killed worker or a cancelled task: KILLED."""
    client = tracking.client()
    experiments = [e.experiment_id for e in outage.retry(client.search_experiments)]
    running = outage.retry(client.search_runs, experiments, "attributes.status = 'RUNNING'")
    orphans = [r for r in running
               if r.info.start_time >= since_ms and r.data.tags.get("dvc_stage") in stages]
    for r in orphans:
        outage.retry(client.set_terminated, r.info.run_id, "KILLED")
    return len(orphans)


def plan_jobs(params: Params, stage: str) -> tuple[list[Job], dict]:
    cells, plan = planned.cells_of(params, stage)
    for cell in cells:
        sweep.cell_params(params, cell)
    planned.clear_folder(PHASES[stage])
    return [Job(stage, stage, c, paths.cell_file(PHASES[stage], c.name)) for c in cells], plan


def check(params: Params, threads: int, retries: int) -> Params:
    """Bad input, before any work: one line. Returns params with the tasks' thread count."""
    if threads < 1 or retries < 0:
        raise ConfigError("--threads must be >= 1 and --retries >= 0")
    if params.train.threads and params.train.threads != threads:
        raise ConfigError(f"train.threads is {params.train.threads} in params.yaml; the tasks "
                          f"run with it: drop --threads {threads} or change params.yaml")
    if not Path("dvc.yaml").exists():
        raise ConfigError("no dvc.yaml here: run from the project's root")
    for cell in sweep.grid(params, [*params.sweep.batch_sizes, *params.sweep.extremes]):
        sweep.cell_params(params, cell)
    return dataclasses.replace(params, train=dataclasses.replace(params.train, threads=threads))


def main(params: Params, address: str | None, threads: int, retries: int, force: bool) -> int:
    params = check(params, threads, retries)
    dvc("repro", "download")  # the data every task reads (nothing to do when it is current)
    tracking.experiment_id(params.train.experiment)  # the store and experiment, once, here
    import ray

    began, since_ms, stages = time.perf_counter(), int(time.time() * 1000), set()
    training = 0.0  # s of wall time with tasks out: the training part
    if address:
        ray.init(address=address, logging_level="WARNING")
    else:  # a real cluster on this machine, gone when the driver ends
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING")
    task = ray.remote(train_cell)
    try:
        jobs = grid_jobs(params, stale(), force)
        stages |= {j.stage for j in jobs}
        phase = time.perf_counter()
        failed = run_jobs(ray, task, params, jobs, retries)
        training += time.perf_counter() - phase
        done = sorted(j.stage for j in jobs if j.title not in failed)
        if done:
            dvc("commit", "--force", "--quiet", *done)
        for stage in PHASES:
            if failed or not (force or stage in stale()):
                continue
            if stage == "refine":  # its plan needs this machine's step times: measured here
                print("ray: refine's plan: dvc repro plan (steptime first if stale), here, with "
                      "no task running", file=sys.stderr)
                dvc("repro", "plan")
            jobs, plan = plan_jobs(params, stage)
            stages.add(stage)
            phase = time.perf_counter()
            failed = run_jobs(ray, task, params, jobs, retries)
            training += time.perf_counter() - phase
            if not failed:
                planned.write_plan(PHASES[stage], [j.cell.name for j in jobs], plan)
                dvc("commit", "--force", "--quiet", stage)
        if force and not failed:  # the race keeps cells on unchanged steps: retrain them too
            planned.clear_folder(paths.RACE)
    finally:
        killed = mark_orphans(stages, since_ms)
        ray.shutdown()
        if killed:
            print(f"ray: {killed} run(s) of killed tasks marked KILLED in MLflow", file=sys.stderr)
    for title, error in failed.items():
        print(f"ray: cell {title} {error}", file=sys.stderr)
    print(f"ray: {'failed' if failed else 'done'} in {time.perf_counter() - began:.0f} s "
          f"({training:.0f} s training); `dvc repro` runs what remains", file=sys.stderr)
    return 1 if failed else 0
