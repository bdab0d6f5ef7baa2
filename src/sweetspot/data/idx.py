"""The four canonical files of MNIST and Fashion-MNIST and their formats: IDX (what torchvision
reads) and CSV (the package-index copy). Reads and writes only the files it is given."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np

from sweetspot.errors import DataError

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SIZES = dict(zip(FILES, (47_040_016, 60_008, 7_840_016, 10_008), strict=True))
MD5 = {  # of the uncompressed files: what defines the data, whichever source it came from
    "MNIST": dict(zip(FILES, (
        "6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
        "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637"), strict=True)),
    "FashionMNIST": dict(zip(FILES, (
        "f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
        "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965"), strict=True)),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # IDX: 0x08 (uint8) then the number of dimensions
SIDE = 28
CHUNK = 1 << 20


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
        elif problem := md5_problem(dataset, name, md5(path)):
            problems.append(problem)
    return problems


def md5_problem(dataset: str, name: str, digest: str) -> str | None:
    """The one check of a file's MD5 against its canonical one: what is wrong, or None."""
    want = MD5[dataset][name]
    return None if digest == want else f"{name}: MD5 {digest} is not the canonical {want}"


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


def parse_idx(buf: bytearray, where: str) -> np.ndarray:
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
    return parse_idx(bytearray(Path(path).read_bytes()), str(path))


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
