"""Memory: the step against this machine's limits, from the memory stage's document. Pure.

Two floors bound a step from below: the arithmetic one (its FLOPs at the measured matmul rate) and
the memory one (the bytes it must move at the measured bandwidth of the cache level its working
set fits in). Where the measured cost per example stops falling, and whether it jumps where the
working set leaves a level, are read from the same rows."""

from __future__ import annotations

LEVEL_JUMP = 0.05  # per-example cost rising by more than this across a cache level is a jump
FLAT = 0.10  # per-example cost within this of its lowest has stopped falling


def level_of(nbytes: float, levels: dict[str, int]) -> str:
    """The smallest cache level holding nbytes (L1d, L2, L3), else RAM."""
    return next((level for level in sorted(levels, key=levels.get)
                 if level != "RAM" and nbytes <= levels[level]), "RAM")


def level_bandwidth(bandwidth: dict[int, float], levels: dict[str, int]) -> dict[str, float]:
    """Each level's bandwidth: the fastest copy whose source and destination fit in it but not in
    the level below (or, with none such, the fastest that fits); RAM's, the largest copy's."""
    out, below = {}, 0
    for level in sorted(levels, key=levels.get):
        fits = ([bw for size, bw in bandwidth.items() if below < 2 * size <= levels[level]]
                or [bw for size, bw in bandwidth.items() if 2 * size <= levels[level]])
        if fits:
            out[level] = max(fits)
        below = levels[level]
    out["RAM"] = bandwidth[max(bandwidth)]
    return out


def traffic(c: dict, b: int) -> tuple[float, float]:
    """A step's bytes at batch b from its counts: (moved, working set). Moved: the weights read
    forward, the gradients written, the update reading both and writing the weights (5 passes),
    the batch read twice (forward, weight gradients) and each activation written, read forward
    and read back (3). Working set: weights and gradients, the batch, activations and theirs."""
    w, x, act = c["weight_bytes"], c["input_bytes"], c["activation_bytes"]
    return 5 * w + b * (2 * x + 3 * act), 2 * w + b * (x + 2 * act)


def floors(doc: dict) -> dict:
    """Per batch size: measured us per example; the working set and its cache level; the
    arithmetic floor (FLOPs at the matmul rate) and the memory floor (bytes at that level's
    bandwidth), per example. Then where the cost stops falling (within FLAT of its lowest),
    the jumps across a cache level, and t0 and c against their floors."""
    levels = doc["caches"]
    bw = level_bandwidth({int(s): v for s, v in doc["bandwidth"].items()}, levels)
    rate, rows = doc["flops_per_second"], []
    for b_text, seconds in sorted(doc["seconds_per_step"].items(), key=lambda kv: int(kv[0])):
        b, c = int(b_text), doc["counted"][b_text]
        moved, working = traffic(c, b)
        level = level_of(working, levels)
        rows.append({"batch_size": b, "us_per_example": 1e6 * seconds / b, "working_set": working,
                     "level": level, "arithmetic_floor": 1e6 * c["flops"] / rate / b,
                     "memory_floor": 1e6 * moved / bw.get(level, bw["RAM"]) / b})
    lowest = min(r["us_per_example"] for r in rows)
    stops = next(r["batch_size"] for r in rows if r["us_per_example"] <= (1 + FLAT) * lowest)
    jumps = [{"from": a["batch_size"], "to": z["batch_size"], "level": z["level"],
              "rise": z["us_per_example"] / a["us_per_example"] - 1}
             for a, z in zip(rows, rows[1:], strict=False) if a["level"] != z["level"]
             and z["us_per_example"] > (1 + LEVEL_JUMP) * a["us_per_example"]]
    largest = max(doc["counted"], key=int)
    w, big = doc["counted"][min(doc["counted"], key=int)]["weight_bytes"], doc["counted"][largest]
    per_example_bytes = 2 * big["input_bytes"] + 3 * big["activation_bytes"]
    flops_per_example = big["flops"] / int(largest)
    return {"rows": rows, "bandwidth": bw, "lowest": lowest, "stops_falling": stops,
            "jumps": jumps, "t0_floor": 5 * w / bw.get(level_of(2 * w, levels), bw["RAM"]),
            "c_floor": max(flops_per_example / rate, per_example_bytes / bw["RAM"])}
