"""How the report writes a set of batch sizes (never a range over one it left out) and a table."""

import pytest

from sweetspot.fmt import sizes, table

TRIED = [12, 16, 24, 32, 48, 64, 96, 128]


@pytest.mark.parametrize("region,text", [
    ([16, 24, 32], "16-32"),               # contiguous among those tried
    ([12, 16, 32, 48, 96], "{12, 16, 32, 48, 96}"),  # 24 and 64 tried and left out
    ([32], "32"),
    ([32, 64], "{32, 64}"),                # 48 was tried between them
    ([96, 128], "96-128"),
])
def test_a_region_is_a_range_only_where_it_is_contiguous(region, text):
    assert sizes(region, TRIED) == text


def test_a_set_is_never_printed_as_a_range_when_a_tried_size_is_missing():
    for left_out in TRIED[1:-1]:
        region = [b for b in TRIED if b != left_out]
        assert "-" not in sizes(region, TRIED) and str(left_out) not in sizes(region, TRIED)


def test_a_table_is_a_header_a_rule_aligned_per_column_and_a_line_per_row():
    assert table(["problem", "batch size"], "lr", [["mlp", 24], ["cnn", 48]]) == [
        "| problem | batch size |", "|---|---:|", "| mlp | 24 |", "| cnn | 48 |"]
    assert table(["a"], "l", []) == ["| a |", "|---|"]
