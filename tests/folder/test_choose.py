"""Naming jobs: key prefixes as file names show them, and input rows such as 3,7-9."""

from __future__ import annotations

import pytest

from batchgen.errors import UsageError
from batchgen.folder.choose import check_rows, parse_rows, resolve_keys

KEYS = ["0a1b2c3d4e5f6071", "0a1b99990000aaaa", "ffee000011112222", "1234567890abcdef"]


def test_rows_and_ranges() -> None:
    """Rows and inclusive ranges, separated by commas or spaces, make one set."""
    assert parse_rows("3,7-9") == {3, 7, 8, 9}
    assert parse_rows(" 1 , 2-2 5") == {1, 2, 5}


@pytest.mark.parametrize("text", ["", "x", "3-", "0", "9-7", "2,,a"])
def test_bad_rows_are_usage_errors(text: str) -> None:
    """Anything but row numbers and ranges from 1 up is refused, quoting the bad part."""
    with pytest.raises(UsageError, match="--rows"):
        parse_rows(text)


def test_missing_rows_are_named() -> None:
    """Rows that no job was planned from are named, with the rows the input has."""
    check_rows({1, 2}, {1, 2, 3})
    with pytest.raises(UsageError, match=r"no job at row 7, 9 \(the input has rows 1 to 3\)"):
        check_rows({1, 7, 9}, {1, 2, 3})


def test_prefixes_name_one_key_each() -> None:
    """An unambiguous prefix (any case) or a whole key names its job, once, in order given."""
    assert resolve_keys(KEYS, ["FFEE0000", "0a1b2c", "ffee", "1234567890abcdef"]) == [
        "ffee000011112222",
        "0a1b2c3d4e5f6071",
        "1234567890abcdef",
    ]


def test_unknown_and_ambiguous_prefixes_are_all_named() -> None:
    """Every prefix that names no job or several is named in one error, with the matches."""
    with pytest.raises(UsageError) as caught:
        resolve_keys(KEYS, ["0a1b", "beef", "ffee", "c0de"])
    message = str(caught.value)
    assert "no job has a key starting 'beef', 'c0de'" in message
    assert "more than one job has a key starting '0a1b' (0a1b2c3d4e5f6071, 0a1b99990000aaaa)" in (
        message
    )
    assert "give more characters" in message
    with pytest.raises(UsageError, match="no job has a key starting ''"):
        resolve_keys(KEYS, [" "])
