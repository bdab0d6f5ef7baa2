"""`sweetspot upload`: the runs kept in .outbox/ (delivery.py) sent to their tracking store, each
in its order, oldest first."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sweetspot.errors import ConfigError
from sweetspot.track.delivery import OPS_FILE, deliver, save, take
from sweetspot.track.outage import bounded_http, retry


def upload(folder: Path) -> None:
    """Deliver one kept run's ops in order, dropping each from ops.json once it has landed (so
    an upload cut short goes on where it stopped); the folder is removed at the end, and one
    line says how many ops it sent."""
    import mlflow
    from mlflow.tracking import MlflowClient

    doc = json.loads((folder / OPS_FILE).read_text())
    mlflow.set_tracking_uri(doc["uri"])
    client, sent = MlflowClient(doc["uri"]), 0
    while doc["ops"]:
        op, n = take(doc["ops"], 0)
        retry(deliver, client, doc["run_id"], doc["experiment_id"], op, folder)
        doc["ops"] = doc["ops"][n:]
        save(folder, doc)
        sent += n
    shutil.rmtree(folder)
    print(f"upload: run {folder.name}: {sent} records sent to {doc['uri']}", flush=True)


def main(outbox: Path, runs: list[str]) -> int:
    """`sweetspot upload [RUN ...]`: every kept run (or those named), oldest first."""
    kept = sorted((p.parent for p in Path(outbox).glob(f"*/{OPS_FILE}")),
                  key=lambda p: p.stat().st_mtime)
    unknown = sorted(set(runs) - {p.name for p in kept})
    if unknown:
        raise ConfigError(f"no run {unknown[0]} is kept in {outbox}")
    kept = [p for p in kept if not runs or p.name in runs]
    if not kept:
        print(f"upload: nothing is kept in {outbox}")
        return 0
    with bounded_http():
        for folder in kept:
            upload(folder)
    return 0
