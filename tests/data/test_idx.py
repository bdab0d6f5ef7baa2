"""IDX and CSV: the formats of the four files, read, written and rejected when malformed."""

import io

import numpy as np
import pytest

from conftest import csv_text
from sweetspot.data import idx
from sweetspot.data.idx import DataError


def test_idx_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5, dtype=np.uint8)
    idx.write_idx(tmp_path / "i", images)
    idx.write_idx(tmp_path / "l", labels)
    header = bytes.fromhex("00000803 00000005 0000001c 0000001c")  # magic 2051, 5, 28, 28
    assert (tmp_path / "i").read_bytes()[:16] == header
    assert (tmp_path / "l").read_bytes()[:8] == bytes.fromhex("00000801 00000005")
    assert (tmp_path / "i").stat().st_size == 16 + 5 * 784
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "i"), images)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "l"), labels)
    assert idx.read_idx(tmp_path / "i").dtype == np.uint8


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda b: b[:-1], "truncated: 3151 bytes, the header [4, 28, 28] needs 3152"),
        (lambda b: b[:10], "truncated header"),
        (lambda b: b[:3], "too short for an IDX header"),
        (lambda b: b + b"\0", "too long"),
        (lambda b: (2052).to_bytes(4, "big") + b[4:], "magic number 2052 is neither 2051"),
        (lambda b: b[:8] + (27).to_bytes(4, "big") + b[12:], "images are 27x28, expected 28x28"),
    ],
)
def test_read_idx_rejects_malformed_files(tmp_path, edit, message):
    path = tmp_path / "images"
    idx.write_idx(path, np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(edit(path.read_bytes()))
    with pytest.raises(DataError, match=None) as err:
        idx.read_idx(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_write_idx_rejects_other_dtypes(tmp_path):
    with pytest.raises(DataError, match="expected uint8"):
        idx.write_idx(tmp_path / "x", np.zeros((2, 28, 28), np.float32))


def test_csv_to_idx(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[1, 27, 27] = 255, 0  # the extremes survive the round trip
    labels = np.array([5, 0, 9], np.uint8)
    csv = tmp_path / "small.csv"
    csv.write_text(csv_text(images, labels))
    with open(csv, "rb") as f:  # a binary stream, like a zip member
        got_images, got_labels = idx.parse_csv(f)
    idx.write_idx(tmp_path / "images", got_images)
    idx.write_idx(tmp_path / "labels", got_labels)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "images"), images)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "labels"), labels)


GOOD_ROW = "3," + ",".join(["0"] * 784)


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD_ROW + "\n", "the first row should be a header starting with 'label'"),
        ("label,a,b\n3,0,0\n", "3 columns, expected 785"),
        ("label\n", "1 columns, expected 785"),
        ("HEADER\n" + GOOD_ROW.replace(",0", ",256", 1) + "\n", "could not convert string '256'"),
        ("HEADER\n" + GOOD_ROW.replace(",0", ",-1", 1) + "\n", "could not convert string '-1'"),
        ("HEADER\n" + GOOD_ROW.replace(",0", ",0.5", 1) + "\n", "could not convert string '0.5'"),
        ("HEADER\n" + GOOD_ROW.replace(",0", ",x", 1) + "\n", "could not convert string 'x'"),
        ("HEADER\n" + GOOD_ROW + "\n" + GOOD_ROW[:-2] + "\n", "number of columns changed"),
        ("HEADER\n" + GOOD_ROW[:-2] + "\n", "rows have 784 columns, expected 785"),
        ("HEADER\n" + "12" + GOOD_ROW[1:] + "\n", "label 12 is not a digit"),
        ("HEADER\n", "no rows after the header"),
    ],
)
def test_malformed_csv_is_a_clear_error(text, message):
    header = csv_text(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8)).strip()
    text = text.replace("HEADER", header)
    with pytest.raises(DataError, match=None) as err:
        idx.parse_csv(io.BytesIO(text.encode()))
    assert str(err.value).startswith("malformed CSV: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)
