"""Typed `params.yaml`: each section loads once into a frozen pydantic dataclass. Unknown or missing
keys, wrong types and out-of-range values raise `ConfigError`, one line naming the key: the CLI's
exit code 2, before any work starts. `dataclasses.replace` checks each field again."""

import dataclasses
import math
import os
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import AfterValidator, Field, TypeAdapter, ValidationError

from sweetspot.errors import ConfigError
from sweetspot.paths import PARAMS_FILE
from sweetspot.typed import (
    Count,
    Float,
    Fraction,
    Int,
    Rounds,
    Section,
    Whole,
    grid,
    must,
    names,
    one_line,
    section,
)

TRAIN_SIZE = 60_000  # both datasets: 60000 training and 10000 test images

DATASETS = ("MNIST", "FashionMNIST")
Source = Literal["torchvision", "pypi", "local"]
Optimizer = Literal["sgd", "momentum", "nesterov", "adam"]
Activation = Literal["sigmoid", "relu", "tanh"]
Device = Literal["cpu", "cuda", "auto"]
Loader = Literal["tensor", "torchvision"]
LrPolicy = Literal["fixed", "linear", "sqrt", "tuned"]
SOURCES, OPTIMIZERS, ACTIVATIONS, DEVICES, LOADERS, LR_POLICIES = map(
    get_args, (Source, Optimizer, Activation, Device, Loader, LrPolicy))
NETWORKS = ("mlp", "cnn")  # or a user's own as package.module:function (model.py)


def _dataset(name: str) -> str:
    if name not in DATASETS:
        guess = {d.lower(): d for d in DATASETS}.get(name.lower().replace("-", ""))
        raise ValueError(f"unknown dataset {name!r}{f' (did you mean {guess!r}?)' if guess else ''}"
                         f"; choose one of {', '.join(DATASETS)}")
    return name


@section
class DataConfig(Section):
    dataset: Annotated[str, AfterValidator(_dataset)]
    sources: names(Source)
    local_dir: str
    timeout_s: Annotated[Float, Field(gt=0)]


@section
class TrainConfig(Section):
    batch_size: Count
    lr: Annotated[Float, must(lambda v: 0 < v < math.inf, "must be a finite number > 0")]
    optimizer: Optimizer
    momentum: Annotated[Float, must(lambda v: 0 <= v < 1, "must be in [0, 1)")]
    network: Annotated[str, must(lambda v: v in NETWORKS or ":" in v, "unknown network {!r}; "
                                 f"choose one of {', '.join(NETWORKS)}, or name your own as "
                                 "package.module:function")]
    width: Count
    activation: Activation
    seed: Int
    device: Device
    loader: Loader
    compile: bool
    target_accuracy: Annotated[Float, must(lambda v: 0 < v <= 1, "must be in (0, 1]")]
    eval_every_examples: Count
    fine_every_examples: Count
    fine_within: Annotated[Float, must(lambda v: 0 <= v < 1, "must be in [0, 1)")]
    max_epochs: Count
    max_seconds: Annotated[Float, Field(ge=0)]  # 0 = no limit
    stop_at_target: bool
    warmup_steps: Whole
    lr_warmup_steps: Whole
    noise_scale: bool
    noise_every: Count
    train_examples: Annotated[Int, Field(ge=0, le=TRAIN_SIZE)]  # 0 = all
    threads: Whole
    loader_workers: Int
    experiment: Annotated[str, must(str.strip, "must not be empty")]

    @property
    def n_train(self) -> int:
        return self.train_examples or TRAIN_SIZE

    def check(self) -> None:
        cpus = len(os.sched_getaffinity(0))  # the CPUs this process may use
        for ok, key, message in [
            (self.batch_size <= self.n_train, "batch_size",
             f"{self.batch_size} is larger than the training set ({self.n_train})"),
            (0 <= self.loader_workers <= cpus, "loader_workers",
             f"{self.loader_workers} is outside 0..{cpus} (this machine's CPUs)"),
            (self.loader == "torchvision" or not self.loader_workers, "loader_workers",
             "the tensor loader has no workers: use 0, or train.loader torchvision")]:
            if not ok:
                raise ConfigError(f"train.{key}: {message}")


@section
class SweepConfig(Section):
    batch_sizes: grid(Int, TRAIN_SIZE)
    extremes: grid(Int, TRAIN_SIZE, empty=True)
    extremes_max_epochs: Count
    extremes_lrs: grid(Float, empty=True)
    lr_policy: LrPolicy
    lrs: grid(Float)
    ref_batch: Count
    seeds: names(Int)
    extra_seeds: names(Int, empty=True)
    loaders: names(Loader)
    targets: grid(Float, 1.0)
    max_epochs: Count
    refine: bool
    rate_ratio: Annotated[Float, must(lambda v: 1 < v < math.inf, "must be a finite number > 1")]
    resamples: Annotated[Int, Field(ge=100)]

    def check(self) -> None:
        both = sorted(set(self.extremes) & set(self.batch_sizes))
        again = sorted(set(self.seeds) & set(self.extra_seeds))
        for ok, key, message in [
            (not self.extremes or self.extremes_lrs, "extremes_lrs", "the grid is empty"),
            (not both, "extremes", f"{both} already in sweep.batch_sizes"),
            (self.lr_policy == "tuned" or len(self.lrs) == 1, "lrs",
             f"the {self.lr_policy} policy scales one base rate; give one, or use tuned"),
            (not again, "extra_seeds", f"{again} already in sweep.seeds")]:
            if not ok:
                raise ConfigError(f"sweep.{key}: {message}")


@section
class SteptimeConfig(Section):
    rounds: Rounds
    min_examples: Count
    min_steps: Count
    loaders: names(Loader)


@section
class BenchConfig(Section):
    batch_sizes: grid(Int, TRAIN_SIZE)
    repeats: Count
    min_examples: Count
    device: Device
    matmul_size: Count


@section
class MachineConfig(Section):
    probe_rounds: Rounds
    tolerance: Fraction


@section
class AdviceConfig(Section):
    rounds: Rounds
    split_batch_sizes: grid(Int)
    memory_batch_sizes: grid(Int)
    block_powers: grid(Int, 14)
    pipeline_batch_sizes: grid(Int)
    question_epochs: Annotated[Int, Field(ge=1)]


@section
class RaceConfig(Section):
    margin: Fraction
    max_seeds: Whole  # budgets
    max_cells: Whole


@dataclasses.dataclass(frozen=True)
class Params:
    data: DataConfig
    train: TrainConfig
    sweep: SweepConfig
    steptime: SteptimeConfig
    bench: BenchConfig
    machine: MachineConfig
    advice: AdviceConfig
    race: RaceConfig


SECTIONS = {"data": DataConfig, "train": TrainConfig, "sweep": SweepConfig,
            "steptime": SteptimeConfig, "bench": BenchConfig, "machine": MachineConfig,
            "advice": AdviceConfig, "race": RaceConfig}


def read_yaml(path: Path = PARAMS_FILE) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: not found (run from the project root)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError) as e:  # a folder, unreadable, not text
        raise ConfigError(f"{path}: cannot be read as YAML ({type(e).__name__})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections")
    return raw


def load(path: Path = PARAMS_FILE, **overrides: dict) -> Params:
    """Load params.yaml; `overrides` maps a section to {key: value} (None keeps the file's)."""
    raw, source = read_yaml(path), Path(path).name
    built = {}
    for name, cls in SECTIONS.items():
        if name not in raw:
            raise ConfigError(f"{source}: missing section {name!r}")
        if not isinstance(values := raw[name], dict):
            raise ConfigError(f"{source}: section {name!r} must be a mapping")
        given = {k: v for k, v in (overrides.get(name) or {}).items() if v is not None}
        try:  # not cls(...): an unknown or missing key names this file
            built[name] = TypeAdapter(cls).validate_python({**values, **given})
        except ValidationError as e:
            raise ConfigError(one_line(e, cls, source)) from None
        built[name].check()
    untimed = sorted(set(built["sweep"].loaders) - set(built["steptime"].loaders))
    if untimed:
        raise ConfigError(f"steptime.loaders: add {untimed[0]}: sweep.loaders trains with it")
    sweep, race = built["sweep"], built["race"]
    held = len(sweep.seeds) + len(sweep.extra_seeds)  # seeds at a chosen rate before the race
    if race.max_cells and race.max_seeds <= held:
        raise ConfigError(f"race.max_seeds: {race.max_seeds} cannot hold the {held} seeds the "
                          "sweep already trains at a chosen rate: raise it, or race.max_cells 0 "
                          "(no race)")
    return Params(**built)


def as_dict(config) -> dict:
    return dataclasses.asdict(config)
