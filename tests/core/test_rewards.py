"""GRPO rewards: the built-ins and a user's reward file, with errors attributed to that file."""

import pytest

from tunesmith.core.training.rewards import (
    RewardFileError,
    build_rewards,
    builtin_reward,
    load_reward_file,
    normalize_answer,
)


def chat(text):
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The answer is 1,000.", "1000"),
        ("x = 3.50", "3.5"),
        ("-2", "-2"),
        ("Paris!", "paris"),
        ("first 3 then 7", "7"),
    ],
)
def test_answers_are_normalised(text, normal):
    assert normalize_answer(text) == normal


def test_exact_match_compares_numbers_and_words():
    reward = builtin_reward("exact_match")
    scores = reward(None, [chat("It is 7."), chat("seven"), chat("Paris.")], answer=["7", "7", "paris"])
    assert scores == [1.0, 0.0, 1.0]


def test_format_and_length_rewards():
    fmt = builtin_reward("format:^Answer: ")
    assert fmt(None, [chat("Answer: 4"), chat("4")]) == [1.0, 0.0]
    length = builtin_reward("length:4")
    assert length(None, [chat("one two three four"), chat("one two"), chat("a b c d e f g h")]) == [
        1.0,
        0.5,
        0.5,
    ]


def test_unknown_builtin_and_no_rewards_are_clear():
    with pytest.raises(ValueError, match="unknown reward 'lenght:3'"):
        builtin_reward("lenght:3")
    with pytest.raises(ValueError, match="needs at least one reward"):
        build_rewards([], None)


def test_user_reward_file_is_loaded_and_called(tmp_path):
    path = tmp_path / "my_reward.py"
    path.write_text(
        "def reward_short(prompts, completions, **kw):\n    return [1.0 / (1 + len(c[0]['content'])) for c in completions]\n"
        "def helper():\n    return 0\n"
    )
    (function,) = load_reward_file(path)
    assert function.__name__ == "reward_short"
    assert function(prompts=[None, None], completions=[chat(""), chat("abc")]) == [1.0, 0.25]


def test_errors_in_the_users_file_name_it_and_show_their_line(tmp_path):
    path = tmp_path / "broken_reward.py"
    path.write_text(
        "def reward(prompts, completions, **kw):\n    scores = []\n    return [1 / 0 for c in completions]\n"
    )
    (function,) = load_reward_file(path)
    with pytest.raises(RewardFileError) as info:
        function(prompts=[None], completions=[chat("x")])
    message = str(info.value)
    assert message.startswith(f"{path}: your reward function 'reward' raised an error:")
    assert f'File "{path}", line 3' in message and "ZeroDivisionError: division by zero" in message
    assert "tunesmith" not in message.split("\n", 1)[1]  # only the user's frames

    path.write_text("def reward(prompts, completions):\n  return [1.0]\nsyntax error here\n")
    with pytest.raises(RewardFileError, match="failed to load"):
        load_reward_file(path)

    path.write_text("def reward(prompts, completions, **kw):\n    return 1.0\n")
    (function,) = load_reward_file(path)
    with pytest.raises(RewardFileError, match="must return a list of 2 numbers"):
        function(prompts=[1, 2], completions=[chat("a"), chat("b")])
