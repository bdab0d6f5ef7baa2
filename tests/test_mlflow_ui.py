"""What a user sees: `mlflow ui`, opened in a real headless browser, lists the sweep and its runs,
each with its dataset in the Dataset column.

A real sqlite store is built the way the project builds it (cell runs through
`tracking.open_run`, the parent through `tracking.file_sweep`), served by `mlflow ui` on a free
loopback port and loaded in Debian's Chromium (`apt-get install chromium`) driven by Playwright
from the package index. The system browser is used as is: `playwright install` (a browser
download) is never needed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sweetspot.track.server import free_port

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [  # headless=True adds --headless; Playwright adds a fresh --user-data-dir
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--no-proxy-server",
]
CELLS = {"b64-lr1.0-s0-tensor": (64, 1.5), "b256-lr1.0-s0-tensor": (256, 2.5)}
UP_WITHIN_S = 60
DIGEST = "5a7bf5a360c0"  # tracking.dataset_digest of MNIST's canonical MD5s
UI_TIMEOUT_MS = 30_000


@pytest.fixture
def sweep_store(tmp_path, monkeypatch):
    """A store holding one filed sweep over two cell runs, written by the project's own code.

    Returns (store URI, experiment id, parent run name, child run names)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    from mlflow.tracking import MlflowClient

    from sweetspot import config
    from sweetspot.data.idx import MD5
    from sweetspot.report import report
    from sweetspot.track import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # file_sweep reads reports/... relative to the working folder
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    previous_uri = mlflow.get_tracking_uri()
    params = config.load(REPO / "params.yaml")
    name = params.train.experiment
    client = MlflowClient(uri)
    experiment = tracking.experiment_id(name)  # as every run creates it: tagged model training

    results = []
    try:
        for run_name, (batch_size, seconds) in CELLS.items():
            with tracking.open_run(name, run_name, {"outcome": "reached"}) as active:
                active.log_dataset("MNIST", tracking.dataset_digest(MD5["MNIST"]),
                                   Path("data/MNIST/raw").resolve())
                active.log_params({"batch_size": batch_size, "lr": 1.0, "seed": 0})
                active.log_metrics({"time_to_target": seconds})
            results.append({"run_id": active.run_id, "name": run_name})
        figures = tmp_path / "reports" / "figures"
        figures.mkdir(parents=True)
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([64, 256], [1.5, 2.5])
        fig.savefig(figures / "epoch_vs_target.png")
        plt.close(fig)
        (tmp_path / "reports" / "report.md").write_text("# sweet spot: 64\n")
        doc = {"batch_size": 64, "time_to_target": 1.5}
        (tmp_path / "reports" / "sweet_spot.json").write_text(json.dumps(doc))
        report.file_sweep(params, results, doc)
    finally:
        mlflow.set_tracking_uri(previous_uri)

    key = report.sweep_key(params)
    parents = client.search_runs([experiment], f"tags.sweep_key = '{key}' and tags.kind = 'sweep'")
    assert len(parents) == 1, "file_sweep did not file exactly one parent run"
    for r in results:  # the store is right, so a failure below is the UI's
        assert client.get_run(r["run_id"]).data.tags["mlflow.parentRunId"] == \
            parents[0].info.run_id
    return uri, experiment, parents[0].info.run_name, list(CELLS)


@pytest.fixture
def mlflow_ui(tmp_path, sweep_store):
    """`mlflow ui` on a free loopback port, answering; stopped (its whole process group) after."""
    uri = sweep_store[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log_path = tmp_path / "mlflow-ui.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(mlflow_cli), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own group: the uvicorn worker goes down with it
    try:
        wait_until_up(server, f"{url}/health", log_path)
        yield url
    finally:
        stop(server)


def wait_until_up(server: subprocess.Popen, health: str, log_path: Path) -> None:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    deadline = time.monotonic() + UP_WITHIN_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow ui exited ({server.returncode}):\n{log_path.read_text()}")
        try:
            with direct.open(health, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"mlflow ui did not answer {health} within {UP_WITHIN_S} s:\n"
                f"{log_path.read_text()}")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)
    except ProcessLookupError:
        pass


@pytest.mark.slow
def test_mlflow_ui_lists_the_sweep_and_its_runs(mlflow_ui, sweep_store, tmp_path):
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: .venv/bin/pip install -e '.[dev]' (never "
                    "`playwright install`; the test drives the system Chromium)")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from sweetspot.track import tracking

    _, experiment, parent_name, child_names = sweep_store
    shot = tmp_path / "mlflow-ui.png"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        try:
            # The address the report prints opens the model-training view: its runs table
            page.goto(tracking.ui_url(experiment, mlflow_ui))
            expect(page.get_by_text("Model registry", exact=True)).to_be_visible()
            expect(page.get_by_text("Evaluation runs", exact=True)).to_have_count(0)  # GenAI's
            assert re.fullmatch(r"MNIST mlp sgd sweep \d{4}-\d{2}-\d{2}", parent_name)
            parent = page.get_by_role("link", name=parent_name, exact=True)
            children = [page.get_by_role("link", name=n, exact=True) for n in child_names]
            expect(parent).to_be_visible(timeout=UI_TIMEOUT_MS)
            for child in children:  # nested: folded under the parent, not listed beside it
                expect(child).to_have_count(0)
            page.get_by_role("gridcell").filter(has=parent).get_by_role("button").click()
            for child in children:
                expect(child).to_be_visible(timeout=UI_TIMEOUT_MS)
            # each run's Dataset column names its data: MNIST, with its digest
            dataset = page.get_by_role("gridcell").filter(has_text="MNIST").filter(
                has_text=DIGEST[:8])
            expect(dataset).to_have_count(len(child_names))
        finally:
            try:
                page.screenshot(path=str(shot))
                print(f"screenshot: {shot}")
            except Exception as e:  # noqa: BLE001 - the screenshot only helps diagnose
                print(f"no screenshot: {e}")
            browser.close()
