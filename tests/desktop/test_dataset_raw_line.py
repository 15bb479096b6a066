"""The raw line a problem row shows, and the failure the Dataset tab shows, computed without Qt
(desktop.logic.dataset_preview) from real files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tunesmith.core.data import DatasetError, load_dataset_file
from tunesmith.desktop.logic.dataset_preview import describe_failure, raw_line


def test_raw_line_is_the_line_as_stored_or_the_item_of_a_list(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_bytes(b'{"text": "one"}\n{"text": "caf\xe9"}\n')
    assert raw_line(str(jsonl), 1) == '{"text": "one"}'
    assert raw_line(str(jsonl), 2) == '{"text": "caf\\xe9"}'  # the byte that is not UTF-8, visibly
    assert raw_line(str(jsonl), 9) == "" and raw_line(str(tmp_path / "gone.jsonl"), 1) == ""
    array = tmp_path / "d.json"
    array.write_text(json.dumps({"data": [{"q": "a"}, {"q": "b"}]}))
    assert json.loads(raw_line(str(array), 2)) == {"q": "b"}
    table = tmp_path / "d.parquet"
    pd.DataFrame([{"q": "a"}, {"q": "b"}]).to_parquet(table)
    assert json.loads(raw_line(str(table), 1)) == {"q": "a"}


def test_a_failure_keeps_every_problem_and_the_columns_but_no_traceback(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"q": "a"}\n{"q": "b"}\n')
    with pytest.raises(DatasetError) as info:
        load_dataset_file(path, "text")
    info.value.details = "Traceback (most recent call last): ..."  # what the background job attaches
    failure = describe_failure(str(path), info.value, "a hint")
    assert failure.problems == [(1, "text", "missing"), (2, "text", "missing")]
    assert failure.columns == ["q"] and failure.hint == "a hint"
    assert "Traceback" not in failure.message and "no usable rows as text" in failure.message
