"""machine.py: the fingerprint that steptime and bench depend on (the same on one machine, nothing
that varies between runs in it), the speed it keeps or records anew, and how busy a measurement's
machine was, on hand-made readings."""

import json
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from sweetspot import cli, paths
from sweetspot.measure import machine
from sweetspot.measure.machine import Usage


def test_the_fingerprint_names_the_machine_and_the_stack_and_holds_still():
    first = machine.fingerprint()
    assert first == machine.fingerprint()  # the same machine: byte-identical, DVC re-runs nothing
    # each against a source the fingerprint does not read
    assert first["torch_version"].startswith(version("torch"))  # the installed distribution
    assert first["python_version"] == "{}.{}.{}".format(*sys.version_info[:3])
    processors = Path("/proc/cpuinfo").read_text().count("\nprocessor\t") + 1
    assert first["cpu_count"] == processors >= first["cpus_usable"] >= 1
    assert isinstance(first["gpus"], list) and first["cpu_model"]
    changing = {"mhz", "load", "free", "time", "date", "pid", "temperature"}
    assert not any(word in key for key in first for word in changing)


def test_the_fingerprint_names_what_a_name_hides():
    found = machine.fingerprint()
    for key in ("cpu_family", "cpu_model_number", "cpu_stepping", "cpu_vector_flags", "caches",
                "torch_cpu_capability", "torchvision_version", "pillow_version",
                "numpy_version"):
        assert key in found, key
    assert found["numpy_version"] == version("numpy")
    assert set(found["cpu_vector_flags"]) <= set(machine.VECTOR_FLAGS)


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_bf16 vaes

processor\t: 1
cpu family\t: 99
"""


def test_cpu_identity_reads_family_model_stepping_and_vector_flags():
    assert machine.cpu_identity(CPUINFO) == {
        "cpu_family": "25", "cpu_model_number": "17", "cpu_stepping": "1",
        "cpu_vector_flags": ["avx", "avx2", "fma", "avx512f", "avx512_bf16"]}


def test_describe_says_what_the_name_hides_and_marks_what_an_old_record_lacks():
    found = {"cpu_model": "AMD EPYC", **machine.cpu_identity(CPUINFO),
             "torch_cpu_capability": "AVX512", "caches": {"L2": "1024K"}}
    assert machine.describe(found) == ("AMD EPYC (family 25, model 17, stepping 1; AVX512; "
                                       "L2 1024K)")
    assert machine.describe({"cpu_model": "AMD EPYC"}) == (
        "AMD EPYC (family ?, model ?, stepping ?; ?; L2 ?)")


def test_caches_by_level_and_type(tmp_path):
    for i, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                             (2, "Unified", "1024K"), (3, "Unified", "32768K")]):
        folder = tmp_path / f"index{i}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(f"{value}\n")
    assert machine.caches(tmp_path) == {"L1d": "48K", "L1i": "32K", "L2": "1024K",
                                        "L3": "32768K"}
    assert machine.caches(tmp_path / "none") == {}


RECORDED = {"tensor": {"32": 400e-6, "256": 2.5e-3}, "torchvision": {"32": 2.2e-3}}


def scaled(factors: dict) -> dict:
    return {loader: {b: t * factors.get((loader, b), 1.0) for b, t in sizes.items()}
            for loader, sizes in RECORDED.items()}


def test_a_speed_within_the_tolerance_keeps_the_record():
    keep, why = machine.speed_verdict(RECORDED, scaled({("tensor", "32"): 1.06}), False, 0.10)
    assert keep is False and "within 10%" in why
    assert machine.speed_verdict(RECORDED, RECORDED, True, 0.10)[0] is False


def test_a_faster_machine_records_its_speed_busy_or_not():
    # a fresh clone on a faster host: the DataLoader path at half the committed seconds
    for busy in (False, True):
        new, why = machine.speed_verdict(RECORDED, scaled({("torchvision", "32"): 0.5}), busy,
                                         0.10)
        assert new is True and "faster" in why and "torchvision 32 0.50x" in why


def test_a_slower_machine_records_its_speed_only_when_the_probe_was_quiet():
    slower = scaled({("tensor", "32"): 1.3, ("tensor", "256"): 1.3})
    new, why = machine.speed_verdict(RECORDED, slower, False, 0.10)
    assert new is True and "slower" in why
    kept, why = machine.speed_verdict(RECORDED, slower, True, 0.10)  # load can do that
    assert kept is False and "busy" in why and "dvc repro -f -s steptime" in why


def test_no_recorded_speed_for_the_probes_steps_records_one():
    assert machine.speed_verdict(None, RECORDED, False, 0.10)[0] is True
    other = {"tensor": RECORDED["tensor"]}  # the recorded probe never timed the DataLoader
    assert machine.speed_verdict(other, RECORDED, False, 0.10)[0] is True


def test_the_stage_writes_the_fingerprint_and_keeps_its_speed_while_the_probe_agrees(
        workdir, capsys):
    folder, _ = workdir
    identity = machine.fingerprint()
    with pytest.raises(SystemExit) as done:
        cli.main(["machine"])
    assert done.value.code == 0
    doc = json.loads((folder / paths.MACHINE).read_text())
    speed, probed = doc.pop("speed"), doc.pop("probe")
    assert doc == identity == machine.fingerprint()  # the probe left torch's threads as found
    assert probed == "Linear(784,256)-sigmoid-Linear(256,10), sgd, cpu, exact step, 1 threads"
    assert {loader: set(s) for loader, s in speed.items()} == {  # steptime.loaders
        "tensor": {"32", "256"}, "torchvision": {"32"}}
    assert all(min(s.values()) > 0 for s in speed.values())
    out = capsys.readouterr().out
    assert f"wrote {paths.MACHINE}" in out and "no machine recorded: speed recorded anew" in out
    # as if a machine twenty times as slow had committed it (beyond TINY's tolerance, 90%): this
    # one is faster, so it records its own speed
    slow = {loader: {b: 20 * t for b, t in sizes.items()} for loader, sizes in speed.items()}
    (folder / paths.MACHINE).write_text(json.dumps({**doc, "probe": probed, "speed": slow}))
    with pytest.raises(SystemExit):
        cli.main(["machine"])
    again = json.loads((folder / paths.MACHINE).read_text())["speed"]
    assert again != slow and "faster than recorded" in capsys.readouterr().out
    # another machine's fingerprint: recorded anew whatever the probe read
    (folder / paths.MACHINE).write_text(json.dumps({**doc, "cpu_stepping": "x", "probe": probed,
                                                    "speed": again}))
    with pytest.raises(SystemExit):
        cli.main(["machine"])
    assert "a new machine or stack (cpu_stepping)" in capsys.readouterr().out
    assert json.loads((folder / paths.MACHINE).read_text())["cpu_stepping"] != "x"
    # a speed recorded for another step (LeNet-5's) says nothing of this one's
    (folder / paths.MACHINE).write_text(json.dumps({**doc, "probe": "cnn, sgd, cpu, eager step, "
                                                    "1 threads", "speed": again}))
    with pytest.raises(SystemExit):
        cli.main(["machine"])
    assert "no speed recorded for the probe's steps" in capsys.readouterr().out


def test_a_reading_of_this_machine_is_consistent():
    now = machine.usage()
    if now is None:
        pytest.skip("no CPU times here")
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


def test_this_processs_children_count_as_its_own_cpu_time_not_other_processes():
    """A DataLoader worker is ours: a child spinning on the other CPU moves `own`, so the share
    of other processes stays what it was."""
    before = machine.usage()
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.6: pass\ninput()"],
                             stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while machine.usage().own - before.own < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert machine.usage().own - before.own >= 0.5  # the child's 0.6 s, counted as ours
    finally:
        child.communicate(b"\n")
