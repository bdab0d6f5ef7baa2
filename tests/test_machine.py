"""machine.py: the fingerprint that steptime and bench depend on (the same on one machine, nothing
that varies between runs in it), and how busy a measurement's machine was, on hand-made readings."""

import json
import platform

import pytest
import torch

from sweetspot import cli, machine, paths
from sweetspot.machine import Usage


def test_the_fingerprint_names_the_machine_and_the_stack_and_holds_still():
    first = machine.fingerprint()
    assert first == machine.fingerprint()  # the same machine: byte-identical, DVC re-runs nothing
    assert first["torch_version"] == torch.__version__
    assert first["torch_default_threads"] == torch.get_num_threads()
    assert first["python_version"] == platform.python_version()
    assert first["cpu_count"] >= first["cpus_usable"] >= 1
    assert isinstance(first["gpus"], list) and first["cpu_model"]
    changing = {"mhz", "load", "free", "time", "date", "pid", "temperature"}
    assert not any(word in key for key in first for word in changing)


def test_the_stage_writes_the_fingerprint(workdir, capsys):
    folder, _ = workdir
    with pytest.raises(SystemExit) as done:
        cli.main(["machine"])
    assert done.value.code == 0
    assert json.loads((folder / paths.MACHINE).read_text()) == machine.fingerprint()
    assert f"wrote {paths.MACHINE}" in capsys.readouterr().out


def test_a_reading_of_this_machine_is_consistent():
    now = machine.usage()
    if now is None:
        pytest.skip("no /proc/stat here")
    assert 0 <= now.own <= now.busy <= now.total and 0 <= now.steal <= now.busy


def test_busy_share_is_other_processes_and_steal_over_all_cpu_time():
    before = Usage(busy=100.0, total=200.0, steal=1.0, own=10.0)
    # 2 CPUs for 1 s: we used 1.2 CPU-seconds, others 0.5, the hypervisor took 0.1
    after = Usage(busy=101.8, total=202.0, steal=1.1, own=11.2)
    share = machine.busy_share(before, after)
    assert share["other"] == pytest.approx(0.25) and share["steal"] == pytest.approx(0.05)
    assert share["quiet"] is False
    alone = Usage(busy=101.2, total=202.0, steal=1.0, own=11.2)  # only us
    assert machine.busy_share(before, alone) == {"other": 0.0, "steal": 0.0, "quiet": True}
    assert machine.busy_share(None, after) is None and machine.busy_share(after, after) is None


def test_a_measurement_is_busy_when_too_few_rounds_were_quiet():
    quiet = {"other": 0.02, "steal": 0.0, "quiet": True}
    loaded = {"other": 0.45, "steal": 0.01, "quiet": False}
    bursty = [loaded if i % 3 == 0 else quiet for i in range(24)]  # one core busy 1 s in 3
    assert machine.summary(bursty)["busy"] is False
    sustained = [loaded] * 23 + [quiet]  # one core always busy
    found = machine.summary(sustained)
    assert found["busy"] is True and found["quiet_rounds"] == 1
    assert found["other"] == pytest.approx((23 * 0.45 + 0.02) / 24)
    assert machine.summary([quiet, quiet, loaded])["busy"] is True  # fewer than 3 quiet rounds
    assert machine.summary([None, None]) is None
    assert "A BUSY MACHINE" in machine.load_text(found)
    assert "BUSY" not in machine.load_text(machine.summary(bursty))
    assert "unknown" in machine.load_text(None)
