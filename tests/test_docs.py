"""The docs quote no stage's number that the committed results do not hold: every number a doc
gives as a result, with its unit ("2.57 s", "1.07x", "113 µs", "51%", "46 runs") or as "spot 32",
"region 24-32" or "B_noise 43", must be quoted so in reports/report.md, be a value of what `dvc
metrics show` prints or of reports/sweet_spot.json, or of params.yaml, or be in ALLOWED. Code
(commands, example output) quotes nothing. Not every JSON of reports/: steptime.json's and the
advice stages' thousands of rounds would hold almost any number, and the test could not fail."""

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VALUES = ["reports/metrics/answer.json", "reports/metrics/bench.json", "reports/sweet_spot.json",
          "params.yaml"]
SCALE = {"us": 1e6, "ms": 1e3, "%": 100}  # a value in seconds or a share, as a doc writes it

# Numbers that are no stage's result, as the docs write them.
ALLOWED = {
    "64 s", "6 s",  # the StackOverflow question's seconds per epoch at batch 1 and at 60000
    "1.36×",  # measurement.md: the quiet probes that set machine.tolerance
    "327 µs", "794 µs", "367 µs",  # measurement.md: the two-thread states that set train.threads
    "91%",  # method.md: LeNet-5's probe at batch 1024 that sized its sweep
}
NUMBER = r"\d+(?:\.\d+)?"
QUOTE = re.compile(rf"({NUMBER}(?:-{NUMBER})?) ?(µs|us|ms|s|%|x|×|runs|cells)(?!\w)")  # 1-2 s too
PHRASE = re.compile(r"\b(spot|region|B_noise) (\d+(?:-\d+)?)\b")


def prose(path: Path) -> str:
    """A Markdown file without its code, en dashes as hyphens and lines joined."""
    text = re.sub(r"`[^`]*`", "", re.sub(r"```.*?```", "", path.read_text(), flags=re.S))
    return re.sub(r"\s+", " ", text.replace("–", "-"))


def quotes(text: str) -> list[tuple[str, str, str]]:
    """(the quote as written, a number, its unit as report.md writes it) for each number quoted,
    both ends of a range."""
    unit = {"×": "x", "µs": "us"}
    return [(m.group(0), n, unit.get(m.group(2), m.group(2)))
            for m in QUOTE.finditer(text) for n in m.group(1).split("-")]


def numbers(value) -> list[float]:
    """Every number in a parsed JSON or YAML document."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return [float(value)] if is_number else []


def test_docs_quote_only_numbers_the_committed_results_hold():
    report = prose(REPO / "reports/report.md")
    in_report = {(n, u) for _, n, u in quotes(report)}
    load = {".json": json.loads, ".yaml": yaml.safe_load}
    values = [v for f in VALUES for v in numbers(load[Path(f).suffix]((REPO / f).read_text()))]

    def held(number: str, unit: str) -> bool:
        """Quoted so in report.md, or a value written with the quote's decimals."""
        scales, decimals = {1, SCALE.get(unit, 1)}, len(number.partition(".")[2])
        return (number, unit) in in_report or any(
            f"{v * s:.{decimals}f}" == number for v in values for s in scales)

    stale = []
    for doc in sorted((REPO / "docs").glob("*.md")):
        text = prose(doc)
        stale += [f"{doc.name}: {q!r}" for q, n, u in quotes(text)
                  if q not in ALLOWED and not held(n, u)]
        for word, value in PHRASE.findall(text):
            pattern = {"spot": rf"spot {value}\b", "region": rf"\b{value}\b",
                       "B_noise": rf"B_noise\W+{value}\b"}[word]
            if not re.search(pattern, report):
                stale.append(f"{doc.name}: {word} {value!r}")
    stale = list(dict.fromkeys(stale))  # a range's two ends, once
    assert not stale, "numbers in docs/ that no committed result holds:\n" + "\n".join(stale)
