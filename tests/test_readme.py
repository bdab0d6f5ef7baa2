"""The README as a reader meets it: its first screen (everything before "## Set up") is short."""

from conftest import REPO


def test_the_first_screen_is_under_250_words():
    first = (REPO / "README.md").read_text().split("\n## Set up")[0]
    assert "\n## " not in first  # nothing but the answer before the set-up
    assert len(first.split()) < 250
