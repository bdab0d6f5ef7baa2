"""params.yaml's value types, through pydantic: numbers that refuse booleans, counts, fractions,
lists of distinct names and grids, each a one-line check; `section` makes a class a frozen pydantic
dataclass whose every construction (dataclasses.replace too) raises a one-line `ConfigError`
naming the key."""

import functools
import math
from typing import Annotated

import pydantic
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError

from sweetspot.errors import ConfigError
from sweetspot.paths import PARAMS_FILE


def must(ok, message: str) -> AfterValidator:
    """A check of one value: `message` (after the key; {} is the value) where `ok(value)` fails."""
    def check(value):
        if not ok(value):
            raise ValueError(message.format(value))
        return value
    return AfterValidator(check)


def number(kind: type):
    # pydantic's lax mode (which parses the command line's "256") takes true for 1 and 2.0 for 2
    def as_typed(value):
        if isinstance(value, bool) or kind is int and isinstance(value, float):
            raise ValueError(f"expected {kind.__name__}, got {value!r}")
        return value
    return Annotated[kind, BeforeValidator(as_typed)]


Int, Float = number(int), number(float)
Count = Annotated[Int, Field(gt=0)]
Whole = Annotated[Int, Field(ge=0)]
Rounds = Annotated[Int, Field(ge=3)]  # the fastest of a few
Fraction = Annotated[Float, must(lambda v: 0 < v < 1, "must be in (0, 1)")]
# a list from the command line is one string, "16,32"
_split = BeforeValidator(lambda v: [s.strip() for s in v.split(",") if s.strip()]
                         if isinstance(v, str) else v)


def names(kind, empty: bool = False):
    """A list of distinct values."""
    def check(values):
        if not values and not empty:
            raise ValueError("name at least one")
        if len(set(values)) < len(values):
            raise ValueError("name each one once")
        return values
    return Annotated[tuple[kind, ...], _split, AfterValidator(check)]


def grid(kind, upper: float = math.inf, empty: bool = False):
    """A grid of distinct values in (0, upper]."""
    def check(values):
        if not values and not empty:
            raise ValueError("the grid is empty")
        if len(set(values)) < len(values):
            raise ValueError(f"duplicate values in {list(values)}")
        for v in values:
            if not 0 < v <= upper:
                raise ValueError(f"{v} is out of range (0, {upper}]")
        return values
    return Annotated[tuple[kind, ...], _split, AfterValidator(check)]


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than_equal": "<="}
_TYPES = {"string": "str", "tuple": "a list"}  # pydantic's names as the messages say them


def one_line(err: ValidationError, cls, source: str = PARAMS_FILE.name) -> str:
    """pydantic's first error as one line naming the key (section.field)."""
    e, fields = err.errors()[0], list(cls.__dataclass_fields__)
    kind, ctx, value, field = e["type"], e.get("ctx", {}), e["input"], e["loc"][0]
    if isinstance(field, int) and field < len(fields):  # given by position
        field = fields[field]
    key = f"{cls.__name__.removesuffix('Config').lower()}.{field}"
    if kind in ("missing", "unexpected_keyword_argument"):
        return f"{source}: {'missing' if kind == 'missing' else 'unknown'} key {key}"
    if kind == "value_error":
        return f"{key}: {ctx['error']}"
    if kind == "literal_error":
        return f"{key}: unknown value {value!r}; choose one of {ctx['expected']}"
    if kind in _BOUNDS:
        return f"{key}: must be {_BOUNDS[kind]} {next(iter(ctx.values()))}"
    if kind.endswith(("_type", "_parsing", "_from_float")):  # int_parsing, string_type, ...
        expected = kind.split("_")[0]
        return f"{key}: expected {_TYPES.get(expected, expected)}, got {value!r}"
    return f"{key}: {e['msg']}"


def section(cls):
    """`cls` as a frozen pydantic dataclass whose every construction (dataclasses.replace too)
    raises a one-line `ConfigError`."""
    cls = pydantic.dataclasses.dataclass(frozen=True, config={"extra": "forbid"})(cls)
    init = cls.__init__

    @functools.wraps(init)
    def checked(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except ValidationError as e:
            raise ConfigError(one_line(e, cls)) from None

    cls.__init__ = checked
    return cls


class Section:
    def check(self) -> None:
        """The checks across fields, run by `load` (pydantic checks each field on its own)."""
