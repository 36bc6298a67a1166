"""Parsing a column of JSON texts at once equals parsing it row by row."""

from __future__ import annotations

import json

import pytest

from gandata.util.json_rows import parse_json_rows


def test_same_values_as_a_parse_per_row() -> None:
    texts = [json.dumps({"license": "cc-by-4.0", "origin": f"img{i}.jpg", "n": i, "x": [1.5, None]}) for i in range(100)]
    texts += ["{}", '"text"', "3", "null", '{"nested": {"a": [1, 2]}}']
    assert parse_json_rows(texts) == [json.loads(t) for t in texts]


def test_missing_texts_are_none() -> None:
    assert parse_json_rows(['{"a": 1}', None, "", '{"b": 2}']) == [{"a": 1}, None, None, {"b": 2}]
    assert parse_json_rows([]) == []


def test_a_text_of_two_values_does_not_shift_the_rows_after_it() -> None:
    # Joined, "1, 2" would parse as two rows; the per-row parse refuses it.
    with pytest.raises(json.JSONDecodeError):
        parse_json_rows(['{"a": 1}', "1, 2", '{"b": 2}'])


def test_an_invalid_text_raises() -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_json_rows(['{"a": 1}', "{not json"])
