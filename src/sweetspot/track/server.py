"""A shared tracking server on this machine: a real PostgreSQL (Debian's package), MLflow on it.

`sweetspot server start|stop|status [--dir DIR] [--port PORT]`. Everything lives in DIR (default
.server/ in the project, which git and DVC ignore): pg/ (the cluster, owned by the postgres user
when run as root: initdb and pg_ctl refuse root), artifacts/ (served by MLflow), the two logs and
server.json (ports, pid, the database password; mode 0600). As root in a folder the postgres user
cannot reach (a parent without o+x, as under /root), the cluster and its log live in the postgres
user's home instead, under sweetspot/<a hash of DIR>, and server.json says where. `start` prints
the tracking URI last; with MLFLOW_TRACKING_URI set to it every command logs there, over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sweetspot import paths
from sweetspot.errors import ConfigError, ToolError

DEFAULT_DIR = paths.SERVER_DIR
USER, DATABASE = "sweetspot", "mlflow"  # the database role and the database MLflow uses
UP_WITHIN_S = 90
STATE = "server.json"  # in the folder: ports, pid, the database password


def pg_bin(tool: str) -> str:
    """A PostgreSQL server tool from Debian's package (newest version installed)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not found:
        raise ConfigError(f"PostgreSQL's {tool} is missing: apt-get install -y postgresql")
    return str(found[-1])


def as_postgres(cmd: list[str]) -> list[str]:
    """initdb and pg_ctl refuse root: as root, run them as Debian's postgres user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_uri(state: dict) -> str:
    """The database URI without its password (libpq reads PGPASSWORD): safe to show and log."""
    return f"postgresql+psycopg2://{USER}@127.0.0.1:{state['pg_port']}/{DATABASE}"


def tracking_uri(state: dict) -> str:
    return f"http://127.0.0.1:{state['port']}"


def read_state(folder: Path) -> dict | None:
    path = folder / STATE
    return json.loads(path.read_text()) if path.exists() else None


def _write_state(folder: Path, state: dict) -> None:
    path = folder / STATE
    path.write_text(json.dumps(state, indent=1) + "\n")
    path.chmod(0o600)


def _run(cmd: list[str], what: str, env: dict | None = None) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise ToolError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def cluster_dir(folder: Path, state: dict) -> Path:
    return Path(state.get("pg") or folder / "pg")


def choose_cluster_dir(folder: Path) -> Path:
    """folder/pg where the postgres user can reach folder; else (root in a private folder, a
    parent without o+x, as under /root) a folder named after this one in the postgres user's
    home, which it can always reach; server.json records which."""
    if os.geteuid() != 0 or subprocess.run(as_postgres(["test", "-x", str(folder)]),
                                           capture_output=True).returncode == 0:
        return folder / "pg"
    key = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    return Path(pwd.getpwnam("postgres").pw_dir) / "sweetspot" / key / "pg"


def init_cluster(pg: Path, state: dict) -> None:
    """A new PostgreSQL cluster in pg with a password-protected role, owned by postgres."""
    pg.mkdir(mode=0o700, parents=True, exist_ok=True)  # an empty one left by a failed start: reused
    pwfile = pg.parent / "pg.pw"
    pwfile.write_text(state["password"] + "\n")
    try:
        if os.geteuid() == 0:
            shutil.chown(pg, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        _run(as_postgres([pg_bin("initdb"), "-D", str(pg), "-U", USER, "--pwfile", str(pwfile),
                          "--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C"]), "initdb")
    finally:
        pwfile.unlink(missing_ok=True)


def start_postgres(pg: Path, state: dict) -> None:
    log = pg.parent / "postgres.log"
    if os.geteuid() == 0 and not log.exists():
        log.touch()
        shutil.chown(log, "postgres", "postgres")
    options = f"-p {state['pg_port']} -c listen_addresses=127.0.0.1 -k {pg}"
    _run(as_postgres([pg_bin("pg_ctl"), "-D", str(pg), "-l", str(log), "-o", options, "-w",
                      "start"]), f"pg_ctl start (see {log})")


def create_database(state: dict) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=state["pg_port"], user=USER,
                            password=state["password"], dbname="postgres")
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction (nor `with conn`)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        conn.close()


def start_mlflow(folder: Path, state: dict) -> int:
    """`mlflow db upgrade`, then `mlflow server` in its own session; returns its pid."""
    mlflow_cli = [sys.executable, "-m", "mlflow"]
    env = {**os.environ, "PGPASSWORD": state["password"]}
    _run([*mlflow_cli, "db", "upgrade", backend_uri(state)], "mlflow db upgrade", env)
    artifacts = folder / "artifacts"
    artifacts.mkdir(exist_ok=True)
    log = (folder / "mlflow.log").open("a")
    server = subprocess.Popen(
        [*mlflow_cli, "server", "--backend-store-uri", backend_uri(state),
         "--artifacts-destination", str(artifacts.resolve()), "--host", "127.0.0.1",
         "--port", str(state["port"]), "--workers", str(state["workers"])],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)  # its own group: stop takes its workers down with it
    return server.pid


def healthy(state: dict) -> bool:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    try:
        with direct.open(f"{tracking_uri(state)}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def postgres_running(pg: Path) -> bool:
    if not (pg / "PG_VERSION").exists():
        return False
    status = as_postgres([pg_bin("pg_ctl"), "-D", str(pg), "status"])
    return subprocess.run(status, capture_output=True).returncode == 0


def start(folder: Path, port: int, workers: int) -> int:
    """Bring up PostgreSQL, then MLflow on it; print the tracking URI on the last line."""
    began = time.perf_counter()
    state = read_state(folder)
    if state and alive(state.get("pid")) and healthy(state):
        print(f"server: already running (stop it with `sweetspot server stop`)\n"
              f"{tracking_uri(state)}")
        return 0
    if state is None:
        state = {"pg_port": free_port(), "password": secrets.token_urlsafe(24)}
    state.update(port=port, workers=workers, pid=None)
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise ConfigError(f"port {port} is taken: choose another with --port")
    for tool in ("initdb", "pg_ctl"):
        pg_bin(tool)  # PostgreSQL is installed, before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    if not state.get("pg"):  # (a server.json from before the choice has its cluster in pg/)
        state["pg"] = str(folder / "pg" if (folder / "pg").exists() else choose_cluster_dir(folder))
    _write_state(folder, state)  # the password, before anything uses it
    pg = cluster_dir(folder, state)
    if not (pg / "PG_VERSION").exists():
        print(f"server: creating a PostgreSQL cluster in {pg}"
              + ("" if pg.parent == folder else f" (the postgres user cannot reach {folder})"),
              file=sys.stderr)
        init_cluster(pg, state)
    if not postgres_running(pg):
        start_postgres(pg, state)
    create_database(state)
    print(f"server: PostgreSQL up on 127.0.0.1:{state['pg_port']}; starting MLflow",
          file=sys.stderr)
    state["pid"] = start_mlflow(folder, state)
    _write_state(folder, state)
    deadline = time.monotonic() + UP_WITHIN_S
    while not healthy(state):
        if not alive(state["pid"]) or time.monotonic() > deadline:
            raise ToolError(f"mlflow server did not come up; see {folder / 'mlflow.log'}")
        time.sleep(0.25)
    print(f"server: up in {time.perf_counter() - began:.1f} s (data in {folder}); "
          f"export MLFLOW_TRACKING_URI={tracking_uri(state)}", file=sys.stderr)
    print(tracking_uri(state))
    return 0


def stop(folder: Path, state: dict) -> int:
    if alive(state.get("pid")):
        try:
            os.killpg(state["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while alive(state["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(state["pid"]):
            os.killpg(state["pid"], signal.SIGKILL)
    pg = cluster_dir(folder, state)
    if postgres_running(pg):
        _run(as_postgres([pg_bin("pg_ctl"), "-D", str(pg), "-m", "fast", "-w", "stop"]),
             "pg_ctl stop")
    state["pid"] = None
    _write_state(folder, state)
    elsewhere = "" if pg.parent == folder else f", its database in {pg}"
    print(f"server: stopped (data kept in {folder}{elsewhere})")
    return 0


def status(folder: Path, state: dict) -> int:
    """0 when both are up, 1 otherwise; one line each."""
    pg_up = postgres_running(cluster_dir(folder, state))
    mlflow_up = alive(state.get("pid")) and healthy(state)
    print(f"postgresql: {'running' if pg_up else 'stopped'} on 127.0.0.1:{state['pg_port']}")
    print(f"mlflow: {'running' if mlflow_up else 'stopped'} at {tracking_uri(state)}")
    return 0 if pg_up and mlflow_up else 1


def main(action: str, folder: Path, port: int, workers: int) -> int:
    folder = folder.resolve()
    if action == "start":
        return start(folder, port, workers)
    state = read_state(folder)
    if state is None:
        print(f"server: none in {folder} (`sweetspot server start` creates it)")
        return 0 if action == "stop" else 1
    return stop(folder, state) if action == "stop" else status(folder, state)
