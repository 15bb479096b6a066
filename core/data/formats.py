"""Dataset formats: detect which one a set of rows uses, and turn each row into one canonical shape.

Pure functions over dicts, testable without a model.  Canonical shapes:
- conversation (alpaca, sharegpt, messages): {"messages": [{"role", "content"}, ...]}
  "alpaca" is any one-question-one-answer table: instruction/output as Alpaca names them, and the other
  common namings of the pair (`QUESTION_COLUMNS` x `ANSWER_COLUMNS`: question/answer, prompt/response,
  prompt/completion, input/output, query/response, user/assistant, ...), or two columns the user named
  (`columns`: {"question": ..., "answer": ...}, written "question=COL,answer=COL" in a config).
- text: {"text": str}
- preference: {"prompt": [messages], "chosen": [messages], "rejected": [messages]}
- prompt (prompt-only, for GRPO): {"prompt": [messages], "answer": str | None}
A row that does not fit raises RecordError naming the field and what is wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

FORMATS = ("alpaca", "sharegpt", "messages", "text", "preference", "prompt")
FORMAT_LABELS = {
    "alpaca": "Alpaca (instruction / input / output)",
    "sharegpt": "ShareGPT (conversations with from / value)",
    "messages": "OpenAI messages (role / content)",
    "text": "Plain text",
    "preference": "Preference pairs (prompt / chosen / rejected)",
    "prompt": "Prompt only (optional reference answer)",
}
CONVERSATION_FORMATS = ("alpaca", "sharegpt", "messages", "text")
# The data each training method learns from; SFT (and any method not named) learns from conversations.
METHOD_FORMAT = {"dpo": "preference", "orpo": "preference", "grpo": "prompt"}
# What a row of the formats only some methods take holds, in words.
FORMAT_HOLDS = {
    "preference": "preference pairs (prompt, chosen and rejected answers)",
    "prompt": "prompts (and optional reference answers)",
}
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "bot": "assistant",
}
ANSWER_KEYS = ("answer", "solution", "reference", "ground_truth")
# Column names people give the question and the answer of a one-exchange row, looked for in this order
# (so Alpaca's instruction wins over its optional input, which then adds context to the instruction).
# "prompt" with only a reference answer (ANSWER_KEYS) stays prompt-only data for GRPO: the sample
# prompts.jsonl is such a file; a table of prompt and answer for SFT can name its columns by hand.
QUESTION_COLUMNS = ("instruction", "question", "prompt", "query", "input", "user", "human", "source")
ANSWER_COLUMNS = ("output", "response", "completion", "answer", "reply", "assistant", "gpt", "target")
COLUMN_ROLES = ("question", "answer")


def methods_for(data_format: str) -> tuple[str, ...]:
    """The methods that learn from `data_format` ("" for the conversation formats: SFT)."""
    return tuple(method for method, wanted in METHOD_FORMAT.items() if wanted == data_format)


class RecordError(ValueError):
    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def detect_format(rows: Iterable[Any]) -> str | None:
    """The format most of the (first 50) rows look like, or None when none fits."""
    votes = Counter(_guess(row) for row, _ in zip(rows, range(50), strict=False))
    votes.pop(None, None)
    return votes.most_common(1)[0][0] if votes else None


def _guess(row: Any) -> str | None:
    if not isinstance(row, dict):
        return None
    keys = set(row)
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if "conversations" in keys:
        return "sharegpt"
    if "messages" in keys:
        return "messages"
    pair = question_answer_columns(keys)
    if pair is not None and not (pair[0] == "prompt" and pair[1] in ANSWER_KEYS):
        return "alpaca"
    if "prompt" in keys:
        return "prompt"
    if "text" in keys:
        return "text"
    return None


def question_answer_columns(keys: Iterable[str]) -> tuple[str, str] | None:
    """The (question, answer) columns among `keys` by their common names, or None."""
    present = set(keys)
    question = next((key for key in QUESTION_COLUMNS if key in present), None)
    answer = next((key for key in ANSWER_COLUMNS if key in present and key != question), None)
    return (question, answer) if question and answer else None


def detect_columns(rows: Iterable[Any]) -> dict[str, str] | None:
    """The question/answer columns most of the (first 50) rows have, as a `columns` mapping."""
    pairs = (
        question_answer_columns(row) for row, _ in zip(rows, range(50), strict=False) if isinstance(row, dict)
    )
    votes = Counter(pair for pair in pairs if pair is not None)
    if not votes:
        return None
    question, answer = votes.most_common(1)[0][0]
    return {"question": question, "answer": answer}


def parse_columns(text: str) -> dict[str, str]:
    """ "question=Q,answer=A" -> {"question": "Q", "answer": "A"}; "" -> {}.  ValueError says what is wrong."""
    mapping: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        role, sep, column = (item.strip() for item in part.partition("="))
        if not sep or role not in COLUMN_ROLES or not column:
            raise ValueError(
                f"'{part}' is not ROLE=COLUMN; write question=COLUMN,answer=COLUMN with your file's names"
            )
        mapping[role] = column
    if mapping and set(mapping) != set(COLUMN_ROLES):
        raise ValueError("name both columns: question=COLUMN,answer=COLUMN")
    return mapping


def columns_text(columns: dict[str, str]) -> str:
    """The inverse of parse_columns."""
    return ",".join(f"{role}={columns[role]}" for role in COLUMN_ROLES if role in columns)


def normalize(row: Any, fmt: str, columns: dict[str, str] | None = None) -> dict[str, Any]:
    """The canonical form of one row, or RecordError.  `columns` names an alpaca row's question and
    answer columns (found by their common names when not given)."""
    if not isinstance(row, dict):
        raise RecordError(None, f"expected an object with fields, got {type(row).__name__}")
    if fmt == "alpaca":
        return _alpaca(row, columns or _row_columns(row))
    return _NORMALIZERS[fmt](row)


def _row_columns(row: dict) -> dict[str, str]:
    question, answer = question_answer_columns(row) or ("instruction", "output")
    return {"question": question, "answer": answer}


def _text_field(row: dict, key: str, required: bool = True) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and value != value):  # None or NaN (CSV/Parquet gaps)
        if required:
            raise RecordError(key, "missing")
        return ""
    if not isinstance(value, str):
        raise RecordError(key, f"must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise RecordError(key, "is empty")
    return value


def _alpaca(row: dict, columns: dict[str, str]) -> dict[str, Any]:
    question_key, answer_key = columns["question"], columns["answer"]
    instruction = _text_field(row, question_key)
    # Alpaca's optional input adds context to the instruction (unless it is the question itself).
    extra = _text_field(row, "input", required=False) if "input" not in columns.values() else ""
    output = _text_field(row, answer_key)
    messages = []
    system = _text_field(row, "system", required=False)
    if system.strip():
        messages.append({"role": "system", "content": system})
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    return {"messages": messages}


def _message_list(
    value: Any, field: str, role_key: str, text_key: str, role_map: dict[str, str]
) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise RecordError(field, "must be a non-empty list of messages")
    messages = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise RecordError(where, "must be an object")
        role = item.get(role_key)
        if role not in role_map:
            allowed = ", ".join(sorted(role_map))
            raise RecordError(f"{where}.{role_key}", f"unknown role {role!r} (use one of: {allowed})")
        content = item.get(text_key)
        if not isinstance(content, str):
            raise RecordError(f"{where}.{text_key}", "missing or not text")
        messages.append({"role": role_map[role], "content": content})
    return messages


def _check_conversation(messages: list[dict], field: str) -> list[dict]:
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        raise RecordError(field, "has no assistant message to learn from")
    if any(m["role"] == "system" for m in messages[1:]):
        raise RecordError(field, "a system message may only come first")
    return messages


def _sharegpt(row: dict) -> dict[str, Any]:
    messages = _message_list(row.get("conversations"), "conversations", "from", "value", SHAREGPT_ROLES)
    return {"messages": _check_conversation(messages, "conversations")}


def _messages(row: dict) -> dict[str, Any]:
    roles = {r: r for r in ROLES}
    messages = _message_list(row.get("messages"), "messages", "role", "content", roles)
    return {"messages": _check_conversation(messages, "messages")}


def _text(row: dict) -> dict[str, Any]:
    return {"text": _text_field(row, "text")}


def _as_messages(value: Any, field: str, default_role: str) -> list[dict]:
    if isinstance(value, str):
        if not value.strip():
            raise RecordError(field, "is empty")
        return [{"role": default_role, "content": value}]
    return _message_list(value, field, "role", "content", {r: r for r in ROLES})


def _preference(row: dict) -> dict[str, Any]:
    chosen = _as_messages(row.get("chosen"), "chosen", "assistant")
    rejected = _as_messages(row.get("rejected"), "rejected", "assistant")
    if "prompt" in row and row["prompt"] is not None:
        prompt = _as_messages(row["prompt"], "prompt", "user")
    else:
        # Full conversations in chosen/rejected: their shared beginning is the prompt.
        shared = 0
        while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
            shared += 1
        if shared == 0:
            raise RecordError("prompt", "missing (and chosen/rejected share no opening messages)")
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    for name, reply in (("chosen", chosen), ("rejected", rejected)):
        if reply[-1]["role"] != "assistant":
            raise RecordError(name, "must end with an assistant message")
    if chosen == rejected:
        raise RecordError("rejected", "is the same as chosen, so there is nothing to prefer")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _prompt(row: dict) -> dict[str, Any]:
    prompt = _as_messages(row.get("prompt"), "prompt", "user")
    if prompt[-1]["role"] != "user":
        raise RecordError("prompt", "must end with a user message")
    answer = next((row[k] for k in ANSWER_KEYS if row.get(k) is not None), None)
    return {"prompt": prompt, "answer": None if answer is None else str(answer)}


_NORMALIZERS: dict[str, Callable[[dict], dict[str, Any]]] = {
    "sharegpt": _sharegpt,
    "messages": _messages,
    "text": _text,
    "preference": _preference,
    "prompt": _prompt,
}
