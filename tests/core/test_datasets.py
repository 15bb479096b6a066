"""Reading real files of every type, and the FILE:LINE problems for broken records."""

import json

import pandas as pd
import pytest

from tunesmith.core.data import DatasetError, load_dataset_file, require_clean, sample_dataset_path


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_sample_dataset_is_clean_messages():
    dataset = load_dataset_file(sample_dataset_path())
    assert dataset.format == "messages"
    assert dataset.usable_rows == dataset.total_rows >= 30
    assert not dataset.problems


def test_jsonl_broken_rows_are_reported_with_line_and_field(tmp_path):
    good = {"instruction": "Say hi", "output": "Hi"}
    path = write_jsonl(
        tmp_path / "data.jsonl",
        [good, "{not json", good, {"instruction": "x"}, {"instruction": "y", "output": 7}],
    )
    dataset = load_dataset_file(path)
    assert dataset.format == "alpaca"
    assert dataset.usable_rows == 2 and dataset.total_rows == 5
    lines = [str(p) for p in dataset.problems]
    assert lines[0].startswith(f"{path}:2:") and "not valid JSON" in lines[0]
    assert lines[1] == f"{path}:4: field 'output': missing"
    assert lines[2] == f"{path}:5: field 'output': must be text, got int"
    with pytest.raises(DatasetError) as info:
        require_clean(dataset, skip_invalid=False)
    assert "3 broken row(s)" in str(info.value) and len(info.value.problems) == 3
    assert require_clean(dataset, skip_invalid=True).usable_rows == 2


def test_blank_lines_keep_line_numbers_right(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text('{"text": "a"}\n\n\n{"text": ""}\n')
    dataset = load_dataset_file(path)
    assert [p.line for p in dataset.problems] == [4]


def test_json_array_csv_parquet_and_text(tmp_path):
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(3)]
    (tmp_path / "d.json").write_text(json.dumps(rows))
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    (tmp_path / "d.txt").write_text("first block\nstill first\n\nsecond block\n")
    for name in ("d.json", "d.csv", "d.parquet"):
        dataset = load_dataset_file(tmp_path / name)
        assert (dataset.format, dataset.usable_rows) == ("alpaca", 3), name
    text = load_dataset_file(tmp_path / "d.txt")
    assert text.format == "text"
    assert [r.line for r in text.records] == [1, 4]
    assert text.records[0].example["text"] == "first block\nstill first"


def test_csv_problem_names_the_file_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("instruction,output\nq1,a1\nq2,\n")
    dataset = load_dataset_file(path)
    assert [str(p) for p in dataset.problems] == [f"{path}:3: field 'output': is empty"]


def test_format_override_and_unknown_format(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "hello", "instruction": "x", "output": "y"}])
    assert load_dataset_file(path).format == "alpaca"
    assert load_dataset_file(path, "text").format == "text"
    with pytest.raises(DatasetError, match="unknown format 'nope'"):
        load_dataset_file(path, "nope")


def test_unreadable_inputs_get_clear_messages(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset_file(tmp_path / "missing.jsonl")
    (tmp_path / "d.xlsx").write_bytes(b"x")
    with pytest.raises(DatasetError, match="unsupported file type"):
        load_dataset_file(tmp_path / "d.xlsx")
    with pytest.raises(DatasetError, match="hub datasets cannot be fetched offline"):
        load_dataset_file("someone/some-dataset")
    path = write_jsonl(tmp_path / "odd.jsonl", [{"foo": 1}])
    with pytest.raises(DatasetError, match="Its columns are: foo. Say which column holds the question"):
        load_dataset_file(path)


def test_dataset_file_is_never_modified(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}, "{bad"])
    before = path.read_bytes()
    load_dataset_file(path)
    assert path.read_bytes() == before


def test_a_non_utf8_byte_spoils_only_its_own_jsonl_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    rows = [json.dumps({"text": f"row {i}"}).encode() for i in (1, 2)]
    rows.append('{"text": "caf\u00e9"}'.encode("latin-1"))  # line 3: é as the single byte 0xE9
    rows += [json.dumps({"text": f"row {i}"}).encode() for i in (4, 5)]
    path.write_bytes(b"\n".join(rows) + b"\n")
    dataset = load_dataset_file(path)
    assert (dataset.usable_rows, dataset.total_rows) == (4, 5)
    assert [r.line for r in dataset.records] == [1, 2, 4, 5]
    assert [str(p) for p in dataset.problems] == [
        f"{path}:3: not UTF-8 text (byte 0xE9 at column 14; the file was probably saved as Latin-1 or "
        "Windows-1252): save it as UTF-8"
    ]
    with pytest.raises(DatasetError, match="1 broken row"):
        require_clean(dataset, skip_invalid=False)


def test_a_csv_row_with_an_extra_or_missing_field_is_reported_at_its_line(tmp_path):
    path = tmp_path / "d.csv"
    lines = ["instruction,output"] + [f"q{i},a{i}" for i in range(2, 6)]
    lines += ["q6,a6,surplus", "q7,a7", "q8"]  # line 6: one field more than the header; 8: one fewer
    path.write_text("\n".join(lines) + "\n")
    dataset = load_dataset_file(path)
    assert (dataset.usable_rows, dataset.total_rows) == (5, 7)
    assert [str(p) for p in dataset.problems] == [
        f"{path}:6: 3 fields, but the header (line 1) has 2: a value holding a comma must be in double "
        "quotes; this row is left out",
        f"{path}:8: 1 fields, but the header (line 1) has 2: a field is missing (leave it empty between "
        "two commas if it has no value); this row is left out",
    ]


def test_non_utf8_bytes_in_csv_text_and_json_name_their_line(tmp_path):
    (tmp_path / "d.csv").write_bytes(b"instruction,output\nq1,a1\nq2,caf\xe9\n")
    dataset = load_dataset_file(tmp_path / "d.csv")
    assert [str(p) for p in dataset.problems] == [
        f"{tmp_path / 'd.csv'}:3: field 'output': not UTF-8 text (byte 0xE9; the file was probably saved "
        "as Latin-1 or Windows-1252): save it as UTF-8"
    ]
    (tmp_path / "d.txt").write_bytes(b"first\n\nsecond caf\xe9\nstill second\n\nthird\n")
    text = load_dataset_file(tmp_path / "d.txt")
    assert [r.line for r in text.records] == [1, 6] and [p.line for p in text.problems] == [3]
    (tmp_path / "d.json").write_bytes(b'[\n {"text": "a"},\n {"text": "caf\xe9"}\n]\n')
    with pytest.raises(DatasetError, match=r"d\.json:3: not UTF-8 text \(byte 0xE9;"):
        load_dataset_file(tmp_path / "d.json")
