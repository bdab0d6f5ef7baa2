"""The data a run trains on: the verified files as tensors on the device, and the batches of an
epoch, drawn as training draws them (device-resident, or the question's torchvision DataLoader).
Reads data/<dataset>/raw (the `download` stage); writes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from sweetspot import paths
from sweetspot.data.idx import FILES, md5_problem, parse_idx
from sweetspot.errors import ConfigError, DataError

Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Data:
    """The whole dataset on the training device, scaled once: x float32 [N, 784] in [0, 1]."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    dataset: str
    root: Path

    @property
    def device(self) -> torch.device:
        return self.x_train.device


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA device is available")
    return torch.device(name)


def _raw_files(dataset: str, root: Path) -> Path:
    folder = paths.raw_dir(dataset, root)
    if not all((folder / name).is_file() for name in FILES):
        raise ConfigError(f"no {dataset} data in {folder}: run `dvc repro download` first")
    return folder


def load_tensors(dataset: str, root: Path = paths.DATA_ROOT):
    """(x_train uint8 [60000, 28, 28], y_train int64 [60000], x_test uint8 [10000, 28, 28],
    y_test int64 [10000]) as CPU tensors, straight from the verified IDX files."""
    folder = _raw_files(dataset, root)
    arrays = []
    for name in FILES:
        buf = bytearray((folder / name).read_bytes())
        # Hashing bytes already in memory is cheap beside reading them, so every load checks.
        if problem := md5_problem(dataset, name, hashlib.md5(buf).hexdigest()):
            raise DataError(f"{folder}/{problem}: run `sweetspot download` again")
        arrays.append(torch.from_numpy(parse_idx(buf, str(folder / name))))
    x_train, y_train, x_test, y_test = arrays
    return x_train, y_train.long(), x_test, y_test.long()


def load_data(dataset: str, device: torch.device, n_train: int = 0,
              root: Path = paths.DATA_ROOT) -> Data:
    x_train, y_train, x_test, y_test = load_tensors(dataset, root)
    if n_train:
        x_train, y_train = x_train[:n_train], y_train[:n_train]

    def scale(x):  # uint8 [N, 28, 28] -> float32 [N, 784] on the device, as ToTensor scales
        return x.reshape(len(x), -1).to(device=device, dtype=torch.float32).div_(255)

    return Data(scale(x_train), y_train.to(device), scale(x_test), y_test.to(device), dataset,
                Path(root))


def tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int,
                   generator: torch.Generator) -> Batches:
    """The reference epoch: a seeded permutation, then a gather per batch (the last may be
    partial). `shuffled_batches` yields the same batches faster."""
    order = torch.randperm(len(x), generator=generator).to(x.device)
    for i in range(0, len(x), batch_size):
        idx = order[i : i + batch_size]
        yield x.index_select(0, idx), y.index_select(0, idx)


def shuffled_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int,
                     generator: torch.Generator, buffers: dict | None = None) -> Batches:
    """One epoch, the batches `tensor_batches` yields (same permutation, same values), as views of
    one shuffled copy: one gather per epoch instead of two per step. The views are overwritten by
    the next epoch when `buffers` (a dict kept across epochs) is reused."""
    order = torch.randperm(len(x), generator=generator).to(x.device)
    buffers = {} if buffers is None else buffers
    if "x" not in buffers:
        buffers["x"], buffers["y"] = torch.empty_like(x), torch.empty_like(y)
    xs = torch.index_select(x, 0, order, out=buffers["x"])
    ys = torch.index_select(y, 0, order, out=buffers["y"])
    for i in range(0, len(x), batch_size):
        yield xs[i : i + batch_size], ys[i : i + batch_size]


def torchvision_loader(data: Data, batch_size: int, generator: torch.Generator,
                       workers: int = 0):
    """The question's pipeline: torchvision's dataset, ToTensor per image, DataLoader(shuffle),
    with `workers` loader processes (persistent: started once, not every epoch). The sampler
    draws the order from `generator` alone (the workers' base seeds from a generator of their
    own), so the batches are the same for any number of workers, epoch after epoch."""
    import torchvision
    from torchvision import transforms

    cls = getattr(torchvision.datasets, data.dataset)
    dataset = cls(root=str(data.root), train=True, download=False,
                  transform=transforms.Compose([transforms.ToTensor()]))
    if len(data.x_train) < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(len(data.x_train)))
    sampler = torch.utils.data.RandomSampler(dataset, generator=generator)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(generator.initial_seed()))


def epoch_batches(loader: str, data: Data, batch_size: int, generator: torch.Generator,
                  workers: int = 0) -> Callable[[], Batches]:
    """`epoch()` -> one epoch's batches on the device, as a training run draws them: `tensor`
    shuffles one device-resident copy per epoch; `torchvision` is the question's DataLoader (with
    `workers` loader processes)."""
    if loader == "torchvision":
        dataloader = torchvision_loader(data, batch_size, generator, workers)
        return lambda: ((xb.to(data.device), yb.to(data.device)) for xb, yb in dataloader)
    # One shuffled copy of the training set, reused every epoch: allocated and touched now, so
    # its page faults (~190 MB for MNIST) land on no training clock.
    buffers = {"x": torch.zeros_like(data.x_train), "y": torch.zeros_like(data.y_train)}
    return lambda: shuffled_batches(data.x_train, data.y_train, batch_size, generator, buffers)
