"""A number as the report prints it: formatted, or a word where there is none (inf, NaN, None);
a set of batch sizes; a Markdown table."""

from __future__ import annotations

import math


def fmt(value, spec: str = ".2f", missing: str = "not reached", scale: float = 1.0) -> str:
    """`value` x `scale` as `spec` says; `missing` where there is none (None, inf, NaN)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    return format(value * scale, spec)


def table(columns: list[str], align: str, rows) -> list[str]:
    """A Markdown table's lines: a header of `columns`, aligned as `align` says column by column
    ("l" left, "r" right), and a line per row of cells (each printed with str)."""
    rule = "".join({"l": "|---", "r": "|---:"}[a] for a in align) + "|"
    return ["| " + " | ".join(columns) + " |", rule,
            *("| " + " | ".join(map(str, row)) + " |" for row in rows)]


def sizes(region, tried) -> str:
    """A set of batch sizes as the set it is: "16-32" only where it is contiguous among the batch
    sizes `tried` (none tried between them is left out), else "{12, 16, 32}"; one alone as "32"."""
    region, tried = sorted(int(b) for b in region), sorted({int(b) for b in tried} | set(region))
    if len(region) == 1:
        return str(region[0])
    if region and tried[tried.index(region[0]):tried.index(region[-1]) + 1] == region:
        return f"{region[0]}-{region[-1]}"
    return "{" + ", ".join(map(str, region)) + "}"
