"""Typed `params.yaml`: each section loads once into a frozen dataclass that checks itself. Unknown
or missing keys, wrong types and out-of-range values raise `ConfigError`, one line naming the
key: the CLI's exit code 2, before any work starts."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from sweetspot import typed
from sweetspot.errors import ConfigError
from sweetspot.paths import PARAMS_FILE

TRAIN_SIZE = 60_000  # both datasets: 60000 training and 10000 test images

DATASETS = ("MNIST", "FashionMNIST")
SOURCES = ("torchvision", "pypi", "local")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
ACTIVATIONS = ("sigmoid", "relu", "tanh")
DEVICES = ("cpu", "cuda", "auto")
LOADERS = ("tensor", "torchvision")
NETWORKS = ("mlp", "cnn")  # or a user's own as package.module:function (model.py)
LR_POLICIES = ("fixed", "linear", "sqrt", "tuned")


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: unknown value {value!r}; choose one of {', '.join(allowed)}")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _positive(section: str, config, *keys: str) -> None:
    for key in keys:
        _require(getattr(config, key) > 0, f"{section}.{key}", "must be > 0")


def _names(key: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    _require(len(values) > 0, key, "name at least one")
    _require(len(set(values)) == len(values), key, "name each one once")
    for value in values:
        _one_of(key, value, allowed)


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    sources: tuple[str, ...]
    local_dir: str
    timeout_s: float

    def check(self) -> None:
        guess = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}.get(self.dataset.lower())
        _require(self.dataset in DATASETS, "data.dataset", f"unknown dataset {self.dataset!r}"
                 f"{f' (did you mean {guess!r}?)' if guess else ''}; choose one of "
                 f"{', '.join(DATASETS)}")
        _names("data.sources", self.sources, SOURCES)
        _require(self.timeout_s > 0, "data.timeout_s", "must be > 0")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int
    lr: float
    optimizer: str
    momentum: float
    network: str
    width: int
    activation: str
    seed: int
    device: str
    loader: str
    compile: bool
    target_accuracy: float
    eval_every_examples: int
    max_epochs: int
    max_seconds: float
    stop_at_target: bool
    warmup_steps: int
    lr_warmup_steps: int
    noise_scale: bool
    noise_every: int
    train_examples: int
    threads: int
    loader_workers: int
    experiment: str

    @property
    def n_train(self) -> int:
        return self.train_examples or TRAIN_SIZE

    def check(self) -> None:
        _require(self.train_examples >= 0, "train.train_examples", "must be >= 0")
        _require(self.train_examples <= TRAIN_SIZE, "train.train_examples",
                 f"must be <= {TRAIN_SIZE}")
        _require(self.batch_size > 0, "train.batch_size", "must be > 0")
        _require(self.batch_size <= self.n_train, "train.batch_size",
                 f"{self.batch_size} is larger than the training set ({self.n_train})")
        _require(self.lr > 0 and math.isfinite(self.lr), "train.lr", "must be a finite number > 0")
        _one_of("train.optimizer", self.optimizer, OPTIMIZERS)
        _require(0 <= self.momentum < 1, "train.momentum", "must be in [0, 1)")
        _require(self.network in NETWORKS or ":" in self.network, "train.network",
                 f"unknown network {self.network!r}; choose one of {', '.join(NETWORKS)}, or "
                 "name your own as package.module:function")
        _one_of("train.activation", self.activation, ACTIVATIONS)
        _one_of("train.device", self.device, DEVICES)
        _one_of("train.loader", self.loader, LOADERS)
        _require(0 < self.target_accuracy <= 1, "train.target_accuracy", "must be in (0, 1]")
        _positive("train", self, "width", "eval_every_examples", "max_epochs", "noise_every")
        _require(self.max_seconds >= 0, "train.max_seconds", "must be >= 0 (0 = no limit)")
        for key in ("warmup_steps", "lr_warmup_steps", "threads"):
            _require(getattr(self, key) >= 0, f"train.{key}", "must be >= 0")
        cpus = len(os.sched_getaffinity(0))  # the CPUs this process may use
        _require(0 <= self.loader_workers <= cpus, "train.loader_workers", f"{self.loader_workers}"
                 f" is outside 0..{cpus} (this machine's CPUs)")
        _require(self.loader == "torchvision" or not self.loader_workers, "train.loader_workers",
                 "the tensor loader has no workers: use 0, or train.loader torchvision")
        _require(bool(self.experiment.strip()), "train.experiment", "must not be empty")


def _distinct_positive(key: str, values: tuple, upper: float | None = None) -> None:
    _require(len(values) > 0, key, "the grid is empty")
    _require(len(set(values)) == len(values), key, f"duplicate values in {list(values)}")
    for v in values:
        _require(v > 0 and (upper is None or v <= upper), key,
                 f"{v} is out of range (0, {upper if upper is not None else 'inf'}]")


@dataclass(frozen=True)
class SweepConfig:
    batch_sizes: tuple[int, ...]
    extremes: tuple[int, ...]
    extremes_max_epochs: int
    extremes_lrs: tuple[float, ...]
    lr_policy: str
    lrs: tuple[float, ...]
    ref_batch: int
    seeds: tuple[int, ...]
    extra_seeds: tuple[int, ...]
    loaders: tuple[str, ...]
    targets: tuple[float, ...]
    max_epochs: int
    refine: bool
    resamples: int

    def check(self) -> None:
        _distinct_positive("sweep.batch_sizes", self.batch_sizes, TRAIN_SIZE)
        if self.extremes:
            _distinct_positive("sweep.extremes", self.extremes, TRAIN_SIZE)
            _distinct_positive("sweep.extremes_lrs", self.extremes_lrs)
            both = sorted(set(self.extremes) & set(self.batch_sizes))
            _require(not both, "sweep.extremes", f"{both} already in sweep.batch_sizes")
        _one_of("sweep.lr_policy", self.lr_policy, LR_POLICIES)
        _distinct_positive("sweep.lrs", self.lrs)
        _require(self.lr_policy == "tuned" or len(self.lrs) == 1, "sweep.lrs",
                 f"the {self.lr_policy} policy scales one base rate; give one, or use tuned")
        _require(self.ref_batch > 0, "sweep.ref_batch", "must be > 0")
        _require(len(self.seeds) > 0, "sweep.seeds", "name at least one seed")
        _require(len(set(self.seeds)) == len(self.seeds), "sweep.seeds", "duplicate seeds")
        _require(len(set(self.extra_seeds)) == len(self.extra_seeds), "sweep.extra_seeds",
                 "duplicate seeds")
        both = sorted(set(self.seeds) & set(self.extra_seeds))
        _require(not both, "sweep.extra_seeds", f"{both} already in sweep.seeds")
        _names("sweep.loaders", self.loaders, LOADERS)
        _distinct_positive("sweep.targets", self.targets, 1.0)
        for key in ("max_epochs", "extremes_max_epochs"):
            _require(getattr(self, key) > 0, f"sweep.{key}", "must be > 0")
        _require(self.resamples >= 100, "sweep.resamples", "must be >= 100")


@dataclass(frozen=True)
class SteptimeConfig:
    rounds: int
    min_examples: int
    min_steps: int
    loaders: tuple[str, ...]

    def check(self) -> None:
        _names("steptime.loaders", self.loaders, LOADERS)
        _require(self.rounds >= 3, "steptime.rounds", "must be >= 3 (the fastest of a few)")
        _positive("steptime", self, "min_examples", "min_steps")


@dataclass(frozen=True)
class BenchConfig:
    batch_sizes: tuple[int, ...]
    repeats: int
    min_examples: int
    device: str
    matmul_size: int

    def check(self) -> None:
        _distinct_positive("bench.batch_sizes", self.batch_sizes, TRAIN_SIZE)
        _positive("bench", self, "repeats", "min_examples", "matmul_size")
        _one_of("bench.device", self.device, DEVICES)


@dataclass(frozen=True)
class MachineConfig:
    probe_rounds: int
    tolerance: float

    def check(self) -> None:
        _require(self.probe_rounds >= 3, "machine.probe_rounds",
                 "must be >= 3 (the fastest of a few)")
        _require(0 < self.tolerance < 1, "machine.tolerance", "must be in (0, 1)")


@dataclass(frozen=True)
class AdviceConfig:
    rounds: int
    split_batch_sizes: tuple[int, ...]
    memory_batch_sizes: tuple[int, ...]
    block_powers: tuple[int, ...]
    pipeline_batch_sizes: tuple[int, ...]
    question_epochs: int

    def check(self) -> None:
        _require(self.rounds >= 3, "advice.rounds", "must be >= 3 (the fastest of a few)")
        _require(self.question_epochs >= 1, "advice.question_epochs", "must be >= 1")
        for key in ("split_batch_sizes", "memory_batch_sizes", "pipeline_batch_sizes"):
            _distinct_positive(f"advice.{key}", getattr(self, key))
        _distinct_positive("advice.block_powers", self.block_powers, 14)


@dataclass(frozen=True)
class RaceConfig:
    margin: float
    max_seeds: int
    max_cells: int

    def check(self) -> None:
        _require(0 < self.margin < 1, "race.margin", "must be in (0, 1)")
        _require(min(self.max_seeds, self.max_cells) >= 0, "race", "budgets must be >= 0")


@dataclass(frozen=True)
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
    raw = read_yaml(path)
    built = {}
    for section, cls in SECTIONS.items():
        if section not in raw:
            raise ConfigError(f"{Path(path).name}: missing section {section!r}")
        built[section] = typed.section(cls, section, raw[section], overrides.get(section),
                               Path(path).name)
    untimed = sorted(set(built["sweep"].loaders) - set(built["steptime"].loaders))
    if untimed:
        raise ConfigError(f"steptime.loaders: add {untimed[0]}: sweep.loaders trains with it")
    return Params(**built)


def as_dict(config) -> dict:
    return dataclasses.asdict(config)
