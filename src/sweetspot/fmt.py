"""A number as the report prints it: formatted, or a word where there is none (inf, NaN, None)."""

from __future__ import annotations

import math


def fmt(value, spec: str = ".2f", missing: str = "not reached") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    return format(value, spec)
