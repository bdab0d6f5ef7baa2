"""outage.py: which failures of the tracking store pass, how long a write waits for it, and the
one line that says so. Real exceptions as MLflow and requests raise them; no store needed."""

import math
import re
import time

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE

from sweetspot.errors import ConfigError
from sweetspot.track import outage

# What MLflow's client raised here, each request tried once (outage.bound_http): nothing listening
# on the port; a server answering 503
REFUSED = ("API request to http://127.0.0.1:5077/api/2.0/mlflow/runs/log-batch failed with "
           "exception HTTPConnectionPool(host='127.0.0.1', port=5077): Max retries exceeded with "
           "url: /api/2.0/mlflow/runs/log-batch (Caused by NewConnectionError(\"HTTPConnection("
           "host='127.0.0.1', port=5077): Failed to establish a new connection: [Errno 111] "
           "Connection refused\"))")
UNAVAILABLE = ("API request to http://127.0.0.1:5077/api/2.0/mlflow/runs/log-batch failed with "
               "exception HTTPConnectionPool(host='127.0.0.1', port=5077): Max retries exceeded "
               "with url: /api/2.0/mlflow/runs/log-batch (Caused by ResponseError('too many 503 "
               "error responses'))")


@pytest.mark.parametrize(("error", "passes"), [
    (MlflowException(UNAVAILABLE), True),  # no error code: INTERNAL_ERROR, 500
    (MlflowException("database is locked", error_code=TEMPORARILY_UNAVAILABLE), True),
    (requests.ConnectionError("refused"), True),
    (ConnectionRefusedError(111, "refused"), True),
    (TimeoutError("read timed out"), True),
    (Exception("(sqlite3.OperationalError) database is locked"), True),
    (MlflowException("Run 'x' not found", error_code=RESOURCE_DOES_NOT_EXIST), False),
    (FileNotFoundError(2, "No such file"), False),  # a missing artifact, not an outage
    (ValueError("a bug"), False),
])
def test_which_failures_pass(error, passes):
    assert outage.transient(error) is passes


@pytest.mark.parametrize(("text", "said"), [
    (UNAVAILABLE, "503 from http://127.0.0.1:5077"),
    (REFUSED, "no connection to http://127.0.0.1:5077"),
    ("(sqlite3.OperationalError) database is locked", "the sqlite file is locked"),
])
def test_the_cause_in_a_few_words(text, said):
    assert outage.cause(MlflowException(text)) == said


def flaky(failures: int, message: str = "database is locked"):
    """A write that fails `failures` times with `message`, then returns x * scale; and its calls."""
    calls = []

    def write(x, scale=1):
        calls.append(x)
        if len(calls) <= failures:
            raise Exception(f"(sqlite3.OperationalError) {message}")
        return x * scale

    return write, calls


def test_retry_waits_out_a_locked_database():
    write, calls = flaky(2)
    assert outage.retry(write, 21, scale=2) == 42
    assert len(calls) == 3


def test_retry_raises_other_errors_at_once():
    write, calls = flaky(2, "no such table: runs")
    with pytest.raises(Exception, match="no such table"):
        outage.retry(write, 21)
    assert len(calls) == 1


def test_retry_says_so_in_one_line_and_gives_up_after_the_wait(monkeypatch, capsys):
    monkeypatch.setenv(outage.WAIT_VARIABLE, "1.5")
    write, calls = flaky(math.inf)
    began = time.monotonic()
    with pytest.raises(outage.Undelivered, match="unavailable for 1.5 s"):
        outage.retry(write, 21, doing="training goes on")
    assert 1.5 <= time.monotonic() - began < 5
    assert len(calls) > 3
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["sweetspot: tracking store unavailable (the sqlite file is locked): "
                     "training goes on for up to 1.5 s"]


def test_retry_says_when_the_store_is_back(monkeypatch, capsys):
    write, calls = flaky(5)  # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s of failures
    assert outage.retry(write, 21) == 21
    err = capsys.readouterr().err
    back = re.search(r"tracking store back after (\d+) s", err)
    assert "tracking store unavailable" in err and back
    assert int(back.group(1)) >= 3  # the pauses alone; load only adds to them


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_bad_wait_setting_is_one_line(monkeypatch, value):
    monkeypatch.setenv(outage.WAIT_VARIABLE, value)
    with pytest.raises(ConfigError, match=f"{outage.WAIT_VARIABLE}={value}: give the seconds"):
        outage.wait_s()
