"""One value of params.yaml or of the command line, checked (and parsed, for a string the
command line gave) against its field's type: a `ConfigError` naming the key where it is not."""

from __future__ import annotations

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
