"""Feedback pairs (core.feedback): every verdict is kept, whatever happens while it is written.

- several processes appending at once: every pair of every writer is in the file, each line whole;
- a writer killed at random moments (SIGKILL, mid-write or not): the file always holds whole lines, the
  pairs written before the kill are all there in order, and the next append goes on from them;
- the lines are pairs the dataset loader reads as preference data (conversation as the prompt);
- a pair that would make the file unusable (the same answer twice, an empty one, no question) is refused.

Pure logic on real files, no model: under 10 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tunesmith.core.data import load_dataset_file
from tunesmith.core.feedback import append_preference, count_preferences, preferences_path

WRITER = textwrap.dedent(
    """
    import sys
    from tunesmith.core.feedback import append_preference

    run_dir, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(count):
        history = [{"role": "user", "content": f"{name} question {i}"}]
        append_preference(run_dir, history, f"{name} good {i} " + "x" * 2000, f"{name} bad {i}")
    """
)


def _writer(run_dir, name: str, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), name, str(count)])


def _questions(run_dir) -> list[str]:
    """The question of each pair in the file, in order (every line must be whole JSON)."""
    lines = preferences_path(run_dir).read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["prompt"][-1]["content"] for line in lines]


def test_concurrent_writers_lose_no_pair(tmp_path):
    writers = [_writer(tmp_path, f"w{n}", 15) for n in range(4)]
    assert all(writer.wait(60) == 0 for writer in writers)
    questions = _questions(tmp_path)
    assert len(questions) == 60 == count_preferences(tmp_path)
    for n in range(4):  # each writer's pairs, all there, in the order it wrote them
        assert [q for q in questions if q.startswith(f"w{n} ")] == [f"w{n} question {i}" for i in range(15)]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_writer_killed_mid_append_never_loses_earlier_pairs(tmp_path):
    append_preference(tmp_path, [{"role": "user", "content": "before question"}], "good", "bad")
    kept: list[str] = ["before question"]
    for round_ in range(4):
        writer = _writer(tmp_path, f"k{round_}", 10_000)
        deadline = time.monotonic() + 10
        while count_preferences(tmp_path) < len(kept) + 3 + round_ and time.monotonic() < deadline:
            time.sleep(0.002)
        os.kill(writer.pid, signal.SIGKILL)  # at whatever point the writer is
        writer.wait()
        questions = _questions(tmp_path)  # every line whole JSON: no torn last line
        assert questions[: len(kept)] == kept, "a pair written before the kill was lost"
        new = questions[len(kept) :]
        assert new == [f"k{round_} question {i}" for i in range(len(new))], "pairs out of order or lost"
        assert len(new) >= 3 + round_
        kept = questions
    after = append_preference(tmp_path, [{"role": "user", "content": "after question"}], "good", "bad")
    assert after == len(kept) + 1 and _questions(tmp_path) == [*kept, "after question"]


def test_pairs_are_preference_rows_the_loader_reads(tmp_path):
    history = [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "I am Quill."},
        {"role": "user", "content": "Where do you live?"},
    ]
    assert append_preference(tmp_path, history, "On the sea, matey!", "In a data centre.") == 1
    path = preferences_path(tmp_path)
    with path.open("ab") as handle:  # a hand edit that left no newline at the end
        handle.write(json.dumps({"prompt": "Hi", "chosen": "Arr!", "rejected": "Hello."}).encode())
    assert append_preference(tmp_path, history[:2], "Quill, the pirate-poet.", "An AI assistant.") == 3
    dataset = load_dataset_file(path)
    assert dataset.format == "preference" and dataset.usable_rows == 3 and not dataset.problems
    first = dataset.records[0].example
    assert first["prompt"] == history  # the whole conversation, system prompt first
    assert first["chosen"] == [{"role": "assistant", "content": "On the sea, matey!"}]
    assert first["rejected"] == [{"role": "assistant", "content": "In a data centre."}]
    assert not list(path.parent.glob("*.tmp")), "no temporary file left behind"


@pytest.mark.parametrize(
    ("history", "chosen", "rejected", "words"),
    [
        ([{"role": "user", "content": "Hi"}], "Same.", " Same. ", "nothing to prefer"),
        ([{"role": "user", "content": "Hi"}], "", "Hello.", "must have text"),
        ([{"role": "assistant", "content": "Hi"}], "A", "B", "end with the user's message"),
        ([{"role": "robot", "content": "Hi"}], "A", "B", r"history\[0\] must have a role"),
    ],
)
def test_a_pair_the_loader_would_refuse_is_not_written(tmp_path, history, chosen, rejected, words):
    with pytest.raises(ValueError, match=words):
        append_preference(tmp_path, history, chosen, rejected)
    assert count_preferences(tmp_path) == 0
