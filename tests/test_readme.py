"""The README as a reader meets it: its first screen (everything before "## Set up") is short, and
the answer it gives is the one committed in reports/."""

import json

from conftest import REPO
from sweetspot.fmt import sizes


def first_screen() -> str:
    return (REPO / "README.md").read_text().split("\n## Set up")[0]


def test_the_first_screen_is_under_250_words():
    first = first_screen()
    assert "\n## " not in first  # nothing but the answer before the set-up
    assert len(first.split()) < 250


def test_its_answer_is_the_committed_one():
    """The region, the spot (or the tie where it wins under 80% of resamples) and its seconds, as
    reports/compare/'s summary of the question's MLP on MNIST has them (the report renders the
    same summary)."""
    s = json.loads((REPO / "reports/compare/MNIST-mlp.json").read_text())
    first = " ".join(first_screen().split())
    region = sizes(s["region"], s["tried"]).replace("-", "–")
    assert f"accuracy is batch sizes {region}**" in first
    assert f"batch {s['spot']} gets there in {s['estimate']:.2f} s of training" in first
    if len(s["tie"]) > 1:
        assert f"**{' or '.join(map(str, s['tie']))}**" in first


def test_its_claims_count_is_the_committed_one():
    """"Of the accepted answer's N claims tested, a hold, b in part and c not", as the committed
    answer's verdicts have them (reports/sweet_spot.json)."""
    verdicts = list(json.loads((REPO / "reports/sweet_spot.json").read_text())["advice"][
        "verdicts"].values())
    first = " ".join(first_screen().split())
    counts = [verdicts.count(v) for v in ("holds", "holds in part", "does not hold here")]
    assert (f"Of the accepted answer's {sum(counts)} claims tested, {counts[0]} hold, "
            f"{counts[1]} in part and {counts[2]} not") in first
