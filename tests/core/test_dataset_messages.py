"""What a person reads about a dataset file that cannot be used as it is (issue 21, points 5 and 6):
their own column names recognised or named back to them, and each read error in their terms, at the line
where it starts, with what to do."""

from __future__ import annotations

import json

import pytest

from tunesmith.core.cli import main
from tunesmith.core.data import DatasetError, load_dataset_file, sample_dataset_path


def test_question_answer_csv_is_recognised_and_unknown_columns_are_listed(tmp_path):
    qa = tmp_path / "qa.csv"
    qa.write_text("question,answer\nWhat is 2+2?,4\nWho are you?,Tunesmith\n")
    dataset = load_dataset_file(qa)
    assert (dataset.format, dataset.usable_rows, dataset.columns) == (
        "alpaca",
        2,
        {"question": "question", "answer": "answer"},
    )
    odd = tmp_path / "odd.csv"
    odd.write_text("Frage,Antwort,id\nWie heißt du?,Tunesmith,1\n")
    with pytest.raises(DatasetError) as info:
        load_dataset_file(odd)
    assert "Its columns are: Frage, Antwort, id." in str(info.value)
    assert "--columns question=COLUMN,answer=COLUMN" in str(info.value)
    assert info.value.columns == ["Frage", "Antwort", "id"]
    mapped = load_dataset_file(odd, columns="question=Frage,answer=Antwort")
    assert mapped.records[0].example["messages"][1] == {"role": "assistant", "content": "Tunesmith"}
    with pytest.raises(DatasetError, match="no column named 'Answer'; its columns are Frage, Antwort, id"):
        load_dataset_file(odd, columns="question=Frage,answer=Answer")


def test_a_forced_format_that_fits_no_row_lists_every_problem(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"q": f"q{i}", "a": f"a{i}"}) + "\n" for i in range(3)))
    with pytest.raises(DatasetError) as info:
        load_dataset_file(path, "text")
    assert "no usable rows as text (3 problems, each listed with its line)" in str(info.value)
    assert [(p.line, p.field, p.message) for p in info.value.problems] == [
        (n, "text", "missing") for n in (1, 2, 3)
    ]


def test_a_line_cut_off_mid_json_is_named_in_words_at_its_line(tmp_path):
    good = json.dumps({"question": "q", "answer": "a"})
    path = tmp_path / "cut.jsonl"
    path.write_text(f'{good}\n{{"question": "q2", "answer": "a2 cut o\n{good}\n')
    (problem,) = load_dataset_file(path).problems
    assert problem.line == 2
    assert "not closed by the end of the line" in problem.message and "the line is cut off" in problem.message
    assert "Invalid control character" not in problem.message
    array = tmp_path / "cut.json"
    array.write_text(f'[\n{good},\n{{"question": "q2", "answer": "a2 cut o\n{good}\n]\n')
    with pytest.raises(DatasetError, match=r"cut\.json:3: not valid JSON: a text value \(in quotes\) is not"):
        load_dataset_file(array)


def test_a_picture_renamed_json_an_empty_file_and_utf16_are_refused_in_words(tmp_path):
    picture = tmp_path / "photo.json"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(DatasetError, match="this is not a text file: it looks like a PNG picture"):
        load_dataset_file(picture)
    for name in ("empty.jsonl", "empty.csv", "blank.txt"):
        (tmp_path / name).write_text("" if name != "blank.txt" else "\n\n  \n")
        with pytest.raises(DatasetError, match=f"{name}: the file is empty"):
            load_dataset_file(tmp_path / name)
    wide = tmp_path / "wide.jsonl"
    wide.write_bytes('{"text": "hi"}\n'.encode("utf-16"))
    with pytest.raises(DatasetError, match="saved as UTF-16 text; save it as UTF-8"):
        load_dataset_file(wide)


def test_an_unclosed_csv_quote_is_reported_where_it_opens(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('question,answer\nq2,a2\nq3,a3\nq4,a4\nq5,"a5 never closed\nq6,a6\nq7,a7\n')
    dataset = load_dataset_file(path)
    assert [r.line for r in dataset.records] == [2, 3, 4]
    (problem,) = dataset.problems
    assert problem.line == 5 and "a double quote opened on this line is never closed" in problem.message
    assert "lines 5-7 (the rest of the file)" in problem.message
    closed_late = tmp_path / "late.csv"
    closed_late.write_text('question,answer\nq2,"a2 not closed here\nq3,a3"\nq4,a4\n')
    late = load_dataset_file(closed_late)
    assert [r.line for r in late.records] == [2, 4] and not late.problems
    assert late.notes == [
        f"{closed_late}:2: the quoted value that opens on line 2 runs on to line 3, and line 3 inside it "
        "looks like a row of its own. If it is one, close the quote on line 2 (a quote inside a value is "
        'written twice: "").'
    ]
    multi = tmp_path / "multi.csv"  # a real multi-line answer: no note
    multi.write_text('question,answer\nq2,"first line\nsecond line"\n')
    assert not load_dataset_file(multi).notes


def test_prose_text_as_one_example_gets_a_word(tmp_path):
    prose = tmp_path / "story.txt"
    prose.write_text("Once upon a time there was a cat.\nIt sat on a mat.\nThe end.\n")
    dataset = load_dataset_file(prose)
    assert dataset.usable_rows == 1
    (note,) = dataset.notes
    assert "split into examples at blank lines" in note and "all 3 lines are one example" in note
    assert "question and answer columns" in note
    assert not load_dataset_file(sample_dataset_path()).notes


def test_data_check_prints_the_notes_and_takes_columns(tmp_path, capsys):
    prose = tmp_path / "story.txt"
    prose.write_text("Line one.\nLine two.\n")
    assert main(["data", "check", str(prose), "--no-tokens"]) == 0
    assert "note: " in capsys.readouterr().out
    odd = tmp_path / "odd.csv"
    odd.write_text("Frage,Antwort\nWie heißt du?,Tunesmith\n")
    assert main(["data", "check", str(odd), "--no-tokens"]) == 1
    assert "Its columns are: Frage, Antwort." in capsys.readouterr().err
    assert main(["data", "check", str(odd), "--no-tokens", "--columns", "question=Frage,answer=Antwort"]) == 0
    assert (
        "1 of 1 rows usable (alpaca: question column 'Frage', answer column 'Antwort')"
        in capsys.readouterr().out
    )
