"""Format detection and normalisation: pure functions over dicts, no model needed."""

import pytest

from tunesmith.core.data.formats import RecordError, columns_text, detect_format, normalize, parse_columns

ALPACA = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"}
SHAREGPT = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]}
MESSAGES = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ]
}
TEXT = {"text": "Once upon a time."}
PREFERENCE = {"prompt": "Say hi", "chosen": "Hi!", "rejected": "Go away."}
PROMPT = {"prompt": "What is 2+2?", "answer": 4}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (ALPACA, "alpaca"),
        (SHAREGPT, "sharegpt"),
        (MESSAGES, "messages"),
        (TEXT, "text"),
        (PREFERENCE, "preference"),
        (PROMPT, "prompt"),
    ],
)
def test_detects_each_format(row, expected):
    assert detect_format([row, row]) == expected


def test_detection_follows_the_majority_and_ignores_junk():
    assert detect_format([ALPACA, ALPACA, TEXT, "not a dict", {"x": 1}]) == "alpaca"
    assert detect_format([{"x": 1}, 5]) is None


def test_alpaca_becomes_a_conversation_with_input_appended():
    result = normalize(ALPACA, "alpaca")
    assert result["messages"] == [
        {"role": "user", "content": "Add the numbers.\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]


def test_sharegpt_roles_are_mapped():
    roles = [m["role"] for m in normalize(SHAREGPT, "sharegpt")["messages"]]
    assert roles == ["user", "assistant"]


def test_preference_strings_become_message_lists():
    result = normalize(PREFERENCE, "preference")
    assert result["prompt"] == [{"role": "user", "content": "Say hi"}]
    assert result["chosen"] == [{"role": "assistant", "content": "Hi!"}]


def test_preference_without_prompt_splits_the_shared_opening():
    user = {"role": "user", "content": "Q"}
    row = {
        "chosen": [user, {"role": "assistant", "content": "good"}],
        "rejected": [user, {"role": "assistant", "content": "bad"}],
    }
    result = normalize(row, "preference")
    assert result["prompt"] == [user]
    assert result["rejected"] == [{"role": "assistant", "content": "bad"}]


def test_prompt_only_keeps_reference_answer_as_text():
    assert normalize(PROMPT, "prompt")["answer"] == "4"
    assert normalize({"prompt": "x"}, "prompt")["answer"] is None


@pytest.mark.parametrize(
    ("row", "fmt", "field", "words"),
    [
        ({"instruction": "x"}, "alpaca", "output", "missing"),
        ({"instruction": "x", "output": "  "}, "alpaca", "output", "empty"),
        ({"instruction": 3, "output": "y"}, "alpaca", "instruction", "must be text"),
        ({"conversations": []}, "sharegpt", "conversations", "non-empty list"),
        (
            {"conversations": [{"from": "alien", "value": "x"}]},
            "sharegpt",
            "conversations[0].from",
            "unknown role",
        ),
        (
            {"messages": [{"role": "user", "content": "only a question"}]},
            "messages",
            "messages",
            "no assistant",
        ),
        (
            {"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]},
            "messages",
            "messages[0].content",
            "missing",
        ),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "preference", "rejected", "same as chosen"),
        ({"text": None}, "text", "text", "missing"),
    ],
)
def test_broken_rows_name_the_field(row, fmt, field, words):
    with pytest.raises(RecordError) as info:
        normalize(row, fmt)
    assert info.value.field == field
    assert words in info.value.message


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("question", "answer"),
        ("prompt", "response"),
        ("prompt", "completion"),
        ("input", "output"),
        ("instruction", "response"),
        ("query", "response"),
        ("user", "assistant"),
    ],
)
def test_common_question_and_answer_names_are_one_exchange(question, answer):
    row = {question: "What is the capital of France?", answer: "Paris."}
    assert detect_format([row]) == "alpaca"
    assert normalize(row, "alpaca")["messages"] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]


def test_prompt_with_a_reference_answer_stays_prompt_only_and_named_columns_are_used():
    assert detect_format([PROMPT]) == "prompt"  # GRPO's prompts.jsonl shape
    row = {"Frage": "Wie heißt du?", "Antwort": "Tunesmith.", "note": "x"}
    assert detect_format([row]) is None
    columns = parse_columns("question=Frage, answer=Antwort")
    assert columns == {"question": "Frage", "answer": "Antwort"} and columns_text(columns) == (
        "question=Frage,answer=Antwort"
    )
    assert normalize(row, "alpaca", columns)["messages"][1]["content"] == "Tunesmith."
    with pytest.raises(ValueError, match="name both columns"):
        parse_columns("question=Frage")
    with pytest.raises(ValueError, match="'Frage' is not ROLE=COLUMN"):
        parse_columns("Frage")
