"""This machine and its software stack, as a DVC dependency, and how busy it is while we time it.

`sweetspot machine` (the `machine` stage, `always_changed: true`) writes reports/machine.json: the
fingerprint of what seconds per step depend on besides the code and params (the CPU: its name,
family, model, stepping, vector instruction sets and caches; GPUs; torch's version, build and
default thread count; Python and the libraries the data paths run on), and this machine's speed:
a few seconds' probe of the step steptime measures (steptime.probe), and which step that was.
steptime and bench depend on that file, so `dvc repro` re-measures them when the machine, the
stack or its speed changed. Hosts of one kind and one name can differ by 2x, which only a
measurement sees: a probe further from the recorded speed than `machine.tolerance` replaces it
(faster: always, as load never makes a step faster; slower: only in three probes in a row, the
last one quiet), and one within it leaves the file byte-identical, so DVC sees an unchanged
dependency and re-runs nothing. The output persists, so the stage reads the speed it recorded
last.

`usage()` and `busy_share()` read the CPU times (psutil) around a measurement: the share of the
machine's CPU time that went to other processes, and steal time, so a report can say when it was
busy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil

from sweetspot import paths
from sweetspot.config import Params

# The train settings seconds per step depend on besides the batch size: the stack (steptime's
# document, predict's options). Here, not in steptime, so that the CLI reads it without torch.
STACK = ("device", "loader", "compile", "threads", "loader_workers")

QUIET = 0.10  # a timed round is quiet when other processes and steal took less than this share
QUIET_ROUNDS = 0.25  # busy: fewer than this share of the rounds (or fewer than 3) were quiet


# The vector instruction sets torch's CPU kernels can use, as /proc/cpuinfo's flags name them.
VECTOR_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
LIBRARIES = ("torchvision", "pillow", "numpy")  # what the question's data path runs on
PROBE_RETRIES = 2  # probes after one that read slower than recorded, before believing it


def fingerprint() -> dict:
    """What this machine and stack are, and nothing that changes between runs on them."""
    import torch

    from sweetspot.track.tracking import cpu_model

    gpus = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else [])
    build = hashlib.sha1(torch.__config__.show().encode()).hexdigest()[:12]
    return {"cpu_model": cpu_model(), **cpu_identity(), "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "arch": platform.machine(), "caches": caches(), "gpus": gpus,
            "torch_version": torch.__version__, "torch_cuda": torch.version.cuda or "",
            "torch_build": build, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_default_threads": torch.get_num_threads(),
            "python_version": platform.python_version(),
            **{f"{name}_version": _version(name) for name in LIBRARIES}}


def describe(found: dict) -> str:
    """A fingerprint in a few words: "AMD EPYC (family 25, model 1, stepping 1; AVX2; L2 512K)";
    "?" where an older fingerprint did not record it."""
    return (f"{found.get('cpu_model', '?')} (family {found.get('cpu_family', '?')}, model "
            f"{found.get('cpu_model_number', '?')}, stepping {found.get('cpu_stepping', '?')}; "
            f"{found.get('torch_cpu_capability', '?')}; "
            f"L2 {found.get('caches', {}).get('L2', '?')})")


def cpu_identity(text: str | None = None) -> dict:
    """The first CPU's family, model number and stepping, and which of VECTOR_FLAGS it has, from
    /proc/cpuinfo (a virtual machine may hide the name, not these). Empty where there is none."""
    from sweetspot.track.tracking import cpuinfo  # not at the top: the CLI imports this module

    fields = cpuinfo(text)
    if not fields:
        return {}
    flags = set(fields.get("flags", "").split())
    return {"cpu_family": fields.get("cpu family", ""), "cpu_model_number": fields.get("model", ""),
            "cpu_stepping": fields.get("stepping", ""),
            "cpu_vector_flags": [f for f in VECTOR_FLAGS if f in flags]}


def caches(folder: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> dict[str, str]:
    """The first CPU's caches by level and type ({"L1d": "32K", "L2": "512K", ...}), from sysfs;
    empty where sysfs does not say."""
    out = {}
    for index in sorted(folder.glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip()
                                 for name in ("level", "type", "size"))
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[f"L{level}{suffix}"] = size
    return out


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def compare_speed(recorded: dict | None, probed: dict, tolerance: float) -> tuple[str, str]:
    """How a probe's speed ({loader: {batch size: seconds per step}}) stands to the recorded one:
    "unrecorded", "faster" or "slower" (any step beyond `tolerance`; faster first) or "same";
    and the ratios, in words. Pure."""
    keys = [(loader, b) for loader, sizes in probed.items() for b in sizes]
    if not recorded or any(b not in recorded.get(loader, {}) for loader, b in keys):
        return "unrecorded", "no speed recorded for the probe's steps"
    ratios = [probed[loader][b] / recorded[loader][b] for loader, b in keys]
    said = ", ".join(f"{loader} {b} {r:.2f}x" for (loader, b), r in zip(keys, ratios, strict=True))
    if any(r < 1 - tolerance for r in ratios):
        return "faster", said
    if any(r > 1 + tolerance for r in ratios):
        return "slower", said
    return "same", said


def speed_verdict(recorded: dict | None, probed: dict, busy: bool,
                  tolerance: float) -> tuple[bool, str]:
    """Whether a probe's speed replaces the recorded one, and why, in words. Load only ever adds
    time, so a probe faster than the recorded speed by more than `tolerance` is a faster machine;
    a slower one is a slower machine only when the probe ran quiet (`busy` False). Pure."""
    how, said = compare_speed(recorded, probed, tolerance)
    if how == "unrecorded":
        return True, said
    if how == "slower" and busy:
        return False, (f"slower than recorded ({said}) but busy while probing, so kept the "
                       "recorded speed; re-measure when quiet: `dvc repro -f -s steptime`")
    if how != "same":  # faster, or slower while quiet
        return True, f"{how} than recorded ({said} the recorded seconds per step)"
    return False, f"speed as recorded, within {tolerance:.0%} ({said})"


def main(params: Params, probe: Callable[[Params], tuple[str, dict, dict | None]]) -> int:
    """The machine stage. `probe(params)` -> (which step it timed, its speed, how busy the
    machine was): steptime.probe, handed in by the CLI, as steptime depends on this module."""
    identity = fingerprint()
    what, speed, load = probe(params)
    old = json.loads(paths.MACHINE.read_text()) if paths.MACHINE.exists() else {}
    recorded = old.pop("speed", None) if old.pop("probe", None) == what else None
    changed = [k for k in identity if old.get(k) != identity[k]]
    for _ in range(PROBE_RETRIES):  # a slower probe may be a burst: probe again, keep the fastest
        if changed or compare_speed(recorded, speed, params.machine.tolerance)[0] != "slower":
            break
        _, again, load = probe(params)
        speed = {loader: {b: min(t, again[loader][b]) for b, t in sizes.items()}
                 for loader, sizes in speed.items()}
    if not old:
        new, why = True, "no machine recorded"
    elif changed:  # another machine or stack: its own speed, whatever the probe read
        new, why = True, f"a new machine or stack ({', '.join(changed)})"
    else:
        new, why = speed_verdict(recorded, speed, bool(load and load["busy"]),
                                 params.machine.tolerance)
    paths.write_json(paths.MACHINE, {**identity, "probe": what,
                                     "speed": speed if new else recorded})
    print(f"machine: {identity['cpu_model']} x{identity['cpus_usable']}, "
          f"{', '.join(identity['gpus']) or 'no GPU'}, torch {identity['torch_version']}; "
          f"{why}: {'speed recorded anew, so steptime and bench re-measure' if new else 'kept'}; "
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
    """The machine's CPU times and this process's, its children's included (its DataLoader
    workers are ours, not other processes'; live ones and those that ended); None where psutil
    cannot read them."""
    try:
        cpu, me = psutil.cpu_times(), psutil.Process()
        mine = me.cpu_times()
        own = mine.user + mine.system + mine.children_user + mine.children_system
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):  # gone meanwhile
                own += sum(child.cpu_times()[:2])  # user, system
    except (psutil.Error, OSError):
        return None
    total = sum(cpu) - getattr(cpu, "guest", 0.0) - getattr(cpu, "guest_nice", 0.0)  # in user
    idle = cpu.idle + getattr(cpu, "iowait", 0.0)
    return Usage(total - idle, total, getattr(cpu, "steal", 0.0), own)  # steal: Linux only


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
        return "how busy the machine was is unknown (no CPU times)"
    text = (f"other processes took {load['other']:.0%} of the CPU time and steal "
            f"{load['steal']:.0%}; {load['quiet_rounds']:.0f} of {load['rounds']:.0f} rounds quiet")
    if load["busy"]:
        return (f"{text}: A BUSY MACHINE, too few quiet rounds for the fastest to be a quiet "
                "one, so these seconds, and the answer, are for a busy machine")
    return text
