"""How a write waits out an unavailable tracking store: which failures pass (transient), how long
to wait (SWEETSPOT_TRACKING_WAIT seconds, default 600), and the one line that says so (retry).

MLflow's client retries a failed request for minutes by itself and silently; inside bounded_http()
it tries each request once, so that retry() does the waiting, says so, and stops.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
from unittest import mock

from sweetspot.errors import ConfigError, ToolError

WAIT_VARIABLE = "SWEETSPOT_TRACKING_WAIT"
DEFAULT_WAIT_S = 600.0  # ten minutes: a database restart or fail-over, a server restarted by hand


class Undelivered(ToolError):
    """The tracking store stayed unavailable for the whole wait."""


def wait_s() -> float:
    """How long a write waits out an outage: SWEETSPOT_TRACKING_WAIT seconds, or the default."""
    text = os.environ.get(WAIT_VARIABLE, "").strip()
    try:
        value = float(text or DEFAULT_WAIT_S)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{WAIT_VARIABLE}={text}: give the seconds a write may wait for the "
                          "tracking store, a number >= 0")
    return value


@contextlib.contextmanager
def bounded_http():
    """Each MLflow request tried once while inside, unless the user chose otherwise (see above):
    MLflow reads these variables at every request; the environment is restored on leaving."""
    chosen = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
    with mock.patch.dict(os.environ, {k: v for k, v in chosen.items() if k not in os.environ}):
        yield


def transient(error: BaseException) -> bool:
    """A failure that passes: the store unreachable or failing (5xx, 429, no connection, a locked
    sqlite file); not MLflow refusing the request itself (a 4xx), nor a bug."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException):
        code = error.get_http_status_code()
        return code >= 500 or code == 429
    passing = (ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout)
    return isinstance(error, passing) or "database is locked" in str(error)


def cause(error: BaseException) -> str:
    """The failure in a few words: '503 from http://host:port', 'no connection to ...'."""
    text = str(error)
    where = re.search(r"https?://[^/\s'\"]+", text)
    at = f" from {where.group(0)}" if where else ""
    status = re.search(r"too many (\d{3}) error responses|response code (\d{3})", text)
    if status:
        return f"{status.group(1) or status.group(2)}{at}"
    if re.search(r"refused|Failed to establish|RemoteDisconnected|Connection aborted", text):
        return f"no connection{at.replace(' from', ' to')}"
    if "database is locked" in text:
        return "the sqlite file is locked"
    return (text.splitlines() or [type(error).__name__])[0][:120]


def say(line: str) -> None:
    print(f"sweetspot: {line}", file=sys.stderr, flush=True)


def retry(fn, *args, doing: str = "waiting", **kwargs):
    """fn(*args, **kwargs), tried again while it fails for a reason that passes, up to wait_s()
    seconds from its first failure; one line once that has lasted a second, one when it is over.
    Raises Undelivered (the last failure as its cause) when the wait runs out."""
    limit = wait_s()
    began, said, pause = None, False, 0.1
    while True:
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            if not transient(e):
                raise
            now = time.monotonic()
            began = now if began is None else began
            if not said and now - began >= 1:
                say(f"tracking store unavailable ({cause(e)}): {doing} for up to {limit:g} s")
                said = True
            if now - began >= limit:
                raise Undelivered(f"the tracking store stayed unavailable for {limit:g} s "
                                  f"({cause(e)})") from e
            time.sleep(min(pause, began + limit - now))
            pause = min(2 * pause, 5.0)
        else:
            if said:
                say(f"tracking store back after {time.monotonic() - began:.0f} s")
            return result
