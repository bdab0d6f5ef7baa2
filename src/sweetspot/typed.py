"""A section of params.yaml, with the command line's overrides, as its dataclass: each value checked
(and parsed, for a string the command line gave) against its field's type, a `ConfigError` naming
the key where it is not."""

from __future__ import annotations

import dataclasses
import typing

from sweetspot.errors import ConfigError


def convert(key: str, tp, value):
    """Check (and for strings from the command line, parse) one value against its field type."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp, _) = typing.get_args(tp)
        return tuple(convert(key, item_tp, v) for v in value)
    if isinstance(value, str) and tp is not str:
        text = value.strip()
        if tp is bool:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
        else:
            try:
                return convert(key, tp, tp(text) if tp is float else int(text, 10))
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}")
    return value


def section(cls, section: str, values: dict, overrides: dict | None = None,
            source: str = "params.yaml"):
    """Make a `cls` from one params.yaml section plus command-line overrides, checked."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: section {section!r} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"{source}: unknown key {section}.{unknown[0]}")
    missing = [n for n in names if n not in values]
    if missing:
        raise ConfigError(f"{source}: missing key {section}.{missing[0]}")
    merged = {**values, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    obj = cls(**{n: convert(f"{section}.{n}", hints[n], merged[n]) for n in names})
    obj.check()
    return obj
