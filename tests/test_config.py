"""params.yaml loads into checked dataclasses; bad values are one-line errors naming the key."""

import pytest
import yaml

from sweetspot import config
from sweetspot.errors import ConfigError


def write_params(tmp_path, **changes):
    """The project's params.yaml with `section.key` values replaced."""
    raw = config.read_yaml(config.PARAMS_FILE)
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_project_params_load():
    params = config.load()
    assert params.data.dataset in config.DATASETS
    assert params.train.batch_size > 0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"data.dataset": "cifar10"}, "data.dataset: unknown dataset 'cifar10'"),
        ({"data.dataset": "fashion-mnist"}, "did you mean 'FashionMNIST'"),
        ({"data.sources": ["torchvision", "ftp"]}, "data.sources: unknown value 'ftp'"),
        ({"data.sources": []}, "data.sources: name at least one"),
        ({"steptime.loaders": ["tensor", "tensor"]}, "steptime.loaders: name each one once"),
        ({"steptime.loaders": ["tensor"], "sweep.loaders": ["torchvision"]},
         "steptime.loaders: add torchvision: sweep.loaders trains with it"),
        ({"train.batch_size": 0}, "train.batch_size: must be > 0"),
        ({"train.batch_size": 60001}, "larger than the training set"),
        ({"train.batch_size": 2.5}, "train.batch_size: expected int"),
        ({"train.batch_size": True}, "train.batch_size: expected int"),
        ({"train.lr": 0}, "train.lr: must be"),
        ({"train.target_accuracy": 1.5}, "train.target_accuracy: must be in (0, 1]"),
        ({"train.optimizer": "rmsprop"}, "train.optimizer: unknown value"),
        ({"train.device": "tpu"}, "train.device: unknown value"),
        ({"sweep.batch_sizes": []}, "sweep.batch_sizes: the grid is empty"),
        ({"sweep.batch_sizes": [64, 64]}, "sweep.batch_sizes: duplicate values"),
        ({"sweep.batch_sizes": [0, 64]}, "sweep.batch_sizes: 0 is out of range"),
        ({"sweep.batch_sizes": [64, 70000]}, "sweep.batch_sizes: 70000 is out of range"),
        ({"sweep.targets": [0.97, 1.2]}, "sweep.targets: 1.2 is out of range (0, 1.0]"),
        ({"sweep.lr_policy": "linear"}, "sweep.lrs: the linear policy scales one base rate"),
        ({"sweep.lr_policy": "cosine"}, "sweep.lr_policy: unknown value 'cosine'"),
        ({"sweep.extra_seeds": [0]}, "sweep.extra_seeds: [0] already in sweep.seeds"),
        ({"sweep.loaders": ["tensor", "dali"]}, "sweep.loaders: unknown value 'dali'"),
        ({"sweep.extremes": [64]}, "sweep.extremes: [64] already in sweep.batch_sizes"),
        ({"bench.repeats": 0}, "bench.repeats: must be > 0"),
        ({"train.eval_every_examples": 0}, "train.eval_every_examples: must be > 0"),
        ({"train.fine_every_examples": 0}, "train.fine_every_examples: must be > 0"),
        ({"train.fine_within": 1}, "train.fine_within: must be in [0, 1)"),
        ({"sweep.rate_ratio": 0.5}, "sweep.rate_ratio: must be a finite number > 1"),
        ({"race.max_seeds": 3}, "race.max_seeds: 3 cannot hold the 3 seeds"),
    ],
)
def test_bad_values_name_the_key(tmp_path, change, message):
    with pytest.raises(ConfigError, match=None) as err:
        config.load(write_params(tmp_path, **change))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_and_missing_keys(tmp_path):
    raw = config.read_yaml(config.PARAMS_FILE)
    raw["train"]["batchsize"] = 3
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="unknown key train.batchsize"):
        config.load(path)
    del raw["train"]["batchsize"], raw["train"]["lr"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="missing key train.lr"):
        config.load(path)


def test_command_line_strings_are_parsed_by_field_type():
    params = config.load(train={"batch_size": "64", "lr": "1e-3", "stop_at_target": "False"})
    assert (params.train.batch_size, params.train.lr, params.train.stop_at_target) == (64, 1e-3,
                                                                                       False)
    with pytest.raises(ConfigError, match="train.batch_size: expected int, got 'abc'"):
        config.load(train={"batch_size": "abc"})
    with pytest.raises(ConfigError, match="train.batch_size: expected int, got '2.5'"):
        config.load(train={"batch_size": "2.5"})
