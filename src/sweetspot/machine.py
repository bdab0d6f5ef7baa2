"""This machine and its software stack, as a DVC dependency, and how busy it is while we time it.

`sweetspot machine` (the `machine` stage, `always_changed: true`) writes reports/machine.json: the
fingerprint of what seconds per step depend on besides the code and params (CPU model and count,
GPUs, torch's version, build and default thread count, Python). steptime and bench depend on that
file, so `dvc repro` re-measures them exactly when the machine or the stack changes; on the same
machine the file is byte-identical, DVC sees an unchanged dependency and re-runs nothing. Nothing
that varies from run to run on one machine (clock speed, load, free memory) is in it.

`usage()` and `busy_share()` read /proc/stat around a measurement: the share of the machine's CPU
time that went to other processes, and steal time, so a report can say when it was busy.
"""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path

from sweetspot import paths

QUIET = 0.10  # a timed round is quiet when other processes and steal took less than this share
QUIET_ROUNDS = 0.25  # busy: fewer than this share of the rounds (or fewer than 3) were quiet


def fingerprint() -> dict:
    """What this machine and stack are, and nothing that changes between runs on them."""
    import torch

    from sweetspot.tracking import cpu_model

    gpus = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else [])
    build = hashlib.sha1(torch.__config__.show().encode()).hexdigest()[:12]
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "arch": platform.machine(), "gpus": gpus, "torch_version": torch.__version__,
            "torch_cuda": torch.version.cuda or "", "torch_build": build,
            "torch_default_threads": torch.get_num_threads(),
            "python_version": platform.python_version()}


def main() -> int:
    doc = fingerprint()
    paths.write_json(paths.MACHINE, doc)
    print(f"machine: {doc['cpu_model']} x{doc['cpus_usable']}, "
          f"{', '.join(doc['gpus']) or 'no GPU'}, torch {doc['torch_version']}; "
          f"wrote {paths.MACHINE}")
    return 0


@dataclass(frozen=True)
class Usage:
    """Cumulative CPU seconds at one instant: all CPUs busy, all CPUs in all, steal, and ours."""

    busy: float
    total: float
    steal: float
    own: float


def usage() -> Usage | None:
    """A reading of /proc/stat and of this process's CPU time; None where there is no /proc."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal (guest time is inside user)
    jiffies = [int(v) for v in fields[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    total = sum(jiffies) / hz
    idle = (jiffies[3] + jiffies[4]) / hz
    own = os.times()
    return Usage(total - idle, total, jiffies[7] / hz, own.user + own.system)


def busy_share(before: Usage | None, after: Usage | None) -> dict | None:
    """Between two readings: the share of all CPU time that other processes used ("other") and
    that the hypervisor took ("steal"), and whether that left the interval quiet."""
    if before is None or after is None or after.total <= before.total:
        return None
    total = after.total - before.total
    steal = max(after.steal - before.steal, 0.0)
    other = max(after.busy - before.busy - (after.own - before.own) - steal, 0.0) / total
    steal /= total
    return {"other": round(other, 4), "steal": round(steal, 4), "quiet": other + steal < QUIET}


def summary(rounds: list[dict | None]) -> dict | None:
    """Over a measurement's rounds (busy_share each): the mean shares of other processes and of
    steal, how many rounds were quiet, and whether the machine was busy: fewer than QUIET_ROUNDS
    of the rounds, or fewer than 3, were quiet, too few for the fastest round to be a quiet one.
    None when nothing was read."""
    known = [r for r in rounds if r is not None]
    if not known:
        return None
    quiet = sum(r["quiet"] for r in known)
    return {"rounds": len(known), "quiet_rounds": quiet,
            "other": statistics.fmean(r["other"] for r in known),
            "steal": statistics.fmean(r["steal"] for r in known),
            "busy": quiet < max(3, QUIET_ROUNDS * len(known))}


def load_text(load: dict | None) -> str:
    """How busy the machine was, in a line a person reads (the report, predict)."""
    if load is None:
        return "how busy the machine was is unknown (no /proc/stat)"
    text = (f"other processes took {load['other']:.0%} of the CPU time and steal "
            f"{load['steal']:.0%}; {load['quiet_rounds']:.0f} of {load['rounds']:.0f} rounds quiet")
    if load["busy"]:
        return (f"{text}: A BUSY MACHINE, too few quiet rounds for the fastest to be a quiet "
                "one, so these seconds, and the answer, are for a busy machine")
    return text
