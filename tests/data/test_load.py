"""Loading the verified files as tensors, and the batches a run draws from them."""

import dataclasses

import pytest
import torch

from conftest import wrong_set
from sweetspot import paths
from sweetspot.data import idx, load
from sweetspot.errors import ConfigError


@pytest.mark.slow
def test_load_tensors_matches_torchvision(mnist_root):
    import torch
    import torchvision

    x_train, y_train, x_test, y_test = load.load_tensors("MNIST", mnist_root)
    assert (x_train.dtype, x_train.shape) == (torch.uint8, (60_000, 28, 28))
    assert (y_train.dtype, y_train.shape) == (torch.int64, (60_000,))
    assert (x_test.dtype, x_test.shape) == (torch.uint8, (10_000, 28, 28))
    assert (y_test.dtype, y_test.shape) == (torch.int64, (10_000,))
    for train, x, y in ((True, x_train, y_train), (False, x_test, y_test)):
        ref = torchvision.datasets.MNIST(root=mnist_root, train=train, download=False)
        assert torch.equal(ref.data, x) and torch.equal(ref.targets, y)
    raw = paths.raw_dir("MNIST", mnist_root)
    assert {name: idx.md5(raw / name) for name in idx.FILES} == idx.MD5["MNIST"]


def test_load_tensors_without_data(tmp_path):
    folder = paths.raw_dir("FashionMNIST", tmp_path)
    with pytest.raises(ConfigError, match=None) as err:
        load.load_tensors("FashionMNIST", tmp_path)
    assert str(err.value) == f"no FashionMNIST data in {folder}: run `dvc repro download` first"


def test_load_tensors_rejects_wrong_files(tmp_path):
    wrong_set(paths.raw_dir("MNIST", tmp_path))
    with pytest.raises(ConfigError, match="is not the canonical"):
        load.load_tensors("MNIST", tmp_path)


def test_shuffled_batches_are_the_reference_batches():
    x, y = torch.rand(1000, 784), torch.randint(0, 10, (1000,))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    buffers = {}
    for _ in range(2):  # two epochs, the second reusing the shuffled copy
        ours = [(a.clone(), b.clone()) for a, b in load.shuffled_batches(x, y, 96, g2, buffers)]
        theirs = list(load.tensor_batches(x, y, 96, g1))
        assert len(ours) == len(theirs) == 11  # 10 full batches and one of 40
        for (x1, y1), (x2, y2) in zip(ours, theirs, strict=True):
            assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert sorted(torch.cat([b for _, b in theirs]).tolist()) == sorted(y.tolist())  # a shuffle


def test_epoch_batches_draw_as_training_draws(tiny_data):
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    epoch = load.epoch_batches("tensor", tiny_data, 1024, g1)
    sizes = [len(yb) for yb in (b for _, b in epoch())]
    assert sizes == [1024] * 5 + [880]  # the last partial batch is kept
    first = next(epoch())[1]  # the next epoch reshuffles: same stream as the reference
    list(load.tensor_batches(tiny_data.x_train, tiny_data.y_train, 1024, g2))  # epoch 1
    expected = next(load.tensor_batches(tiny_data.x_train, tiny_data.y_train, 1024, g2))[1]
    assert torch.equal(first, expected)


@pytest.mark.slow
def test_the_questions_loader_draws_the_same_batches_with_any_number_of_workers(tiny_data):
    def three_epochs(workers):
        epoch = load.epoch_batches("torchvision", tiny_data, 500,
                                   torch.Generator().manual_seed(3), workers)
        return [torch.cat([torch.cat([x.flatten(), y.float()]) for x, y in epoch()])
                for _ in range(3)]  # epochs 2 and 3 too: persistent workers are not restarted

    alone = three_epochs(0)
    assert not torch.equal(alone[0], alone[1])  # each epoch reshuffles
    for workers in (1, 2):
        assert all(torch.equal(a, b) for a, b in zip(alone, three_epochs(workers), strict=True))


@pytest.mark.slow
def test_a_run_learns_the_same_curve_with_any_number_of_loader_workers(tiny_data):
    from conftest import tiny_params
    from sweetspot.train.loop import train_one

    cfg = tiny_params(train={"loader": "torchvision", "max_epochs": 2}).train
    curves = [train_one(dataclasses.replace(cfg, loader_workers=w), tiny_data)["curve"]
              for w in (0, 1, 2)]
    points = [[(p["step"], p["train_loss"], p["test_loss"], p["test_acc"]) for p in c]
              for c in curves]
    assert len(points[0]) >= 8 and points[0] == points[1] == points[2]
