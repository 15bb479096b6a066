"""Chat importers: realistic WhatsApp, Telegram, Discord and CSV exports built here, read into
conversations checked turn by turn, with the per-file reports and the refusals a person would see."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from datetime import datetime

import pytest

from tunesmith.core.data.importers import ImportOptions, ImportProblem, import_files, sniff, write_jsonl
from tunesmith.core.data.importers.whatsapp import date_order

LRM, NNBSP = "\u200e", "\u202f"
ENCRYPTED = (
    "Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read "
    "or listen to them."
)


def turns(row: dict) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in row["messages"]]


# ----------------------------------------------------------------------------- WhatsApp
# One chat between Ann and Sam (the person importing), written in each layout below.  None as author is
# a system line; "MEDIA" and "DELETED" stand for the attachment and deleted-message lines of each phone.
CHAT = [
    (datetime(2023, 12, 31, 21, 5, 0), None, "ENCRYPTED"),
    (datetime(2023, 12, 31, 21, 5, 9), "Ann", "Hi Sam!"),
    (datetime(2023, 12, 31, 21, 6, 0), "Ann", "Are you coming\ntomorrow?"),
    (datetime(2023, 12, 31, 21, 7, 0), "Sam", "MEDIA"),
    (datetime(2023, 12, 31, 21, 8, 0), "Sam", "Yes, at 10"),
    (datetime(2023, 12, 31, 21, 9, 0), "Sam", "See you"),
    (datetime(2023, 12, 31, 21, 10, 0), "Ann", "DELETED"),
    # 13 Jan: a day above 12, so the file itself says which of day and month comes first.
    (datetime(2024, 1, 13, 10, 0, 0), "Sam", "Morning"),
    (datetime(2024, 1, 13, 10, 1, 0), "Ann", "Morning! Coffee?"),
    (datetime(2024, 1, 13, 10, 2, 0), "Sam", "Sure"),
    (datetime(2024, 1, 13, 10, 3, 0), "Ann", "ok"),
]
EXPECTED = [
    [("user", "Hi Sam!\nAre you coming\ntomorrow?"), ("assistant", "Yes, at 10\nSee you")],
    # Sam's opening "Morning" and Ann's last "ok" are trimmed: a conversation starts with the user and
    # ends with the assistant.
    [("user", "Morning! Coffee?"), ("assistant", "Sure")],
]


def _h12(t: datetime, space: str = " ") -> str:
    return f"{t.hour % 12 or 12}:{t:%M}{space}{'PM' if t.hour >= 12 else 'AM'}"


def android(stamp: Callable[[datetime], str]) -> Callable[[datetime, str | None, str], str]:
    special = {
        "ENCRYPTED": ENCRYPTED + " Tap to learn more.",
        "MEDIA": "<Media omitted>",
        "DELETED": "This message was deleted",
    }

    def line(t: datetime, author: str | None, text: str) -> str:
        body = special.get(text, text)
        return f"{stamp(t)} - {body}" if author is None else f"{stamp(t)} - {author}: {body}"

    return line


def iphone(stamp: Callable[[datetime], str]) -> Callable[[datetime, str | None, str], str]:
    # iPhones write system lines under the chat's name with U+200E before the text, and put U+200E in
    # front of attachment lines.
    def line(t: datetime, author: str | None, text: str) -> str:
        if author is None:
            return f"[{stamp(t)}] Ann: {LRM}{ENCRYPTED}"
        if text == "MEDIA":
            return f"{LRM}[{stamp(t)}] {author}: {LRM}image omitted"
        if text == "DELETED":
            return f"[{stamp(t)}] {author}: {LRM}This message was deleted."
        return f"[{stamp(t)}] {author}: {text}"

    return line


LAYOUTS = {
    "android en-US": android(lambda t: f"{t.month}/{t.day}/{t:%y}, {_h12(t)}"),
    "android en-US new (U+202F)": android(lambda t: f"{t.month}/{t.day}/{t:%y}, {_h12(t, NNBSP)}"),
    "android en-GB": android(lambda t: f"{t:%d/%m/%Y}, {t:%H:%M}"),
    "android de": android(lambda t: f"{t:%d.%m.%y}, {t:%H:%M}"),
    "android sv (ISO)": android(lambda t: f"{t:%Y-%m-%d} {t:%H:%M}"),
    "iphone en-GB": iphone(lambda t: f"{t:%d/%m/%Y}, {t:%H:%M:%S}"),
    "iphone en-US": iphone(
        lambda t: (
            f"{t.month}/{t.day}/{t:%y}, {t.hour % 12 or 12}:{t:%M:%S}{NNBSP}{'PM' if t.hour >= 12 else 'AM'}"
        )
    ),
    "iphone de": iphone(lambda t: f"{t:%d.%m.%y}, {t:%H:%M:%S}"),
}


def export(layout: str, chat=CHAT) -> str:
    return "\n".join(LAYOUTS[layout](t, author, text) for t, author, text in chat) + "\n"


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_whatsapp_layouts_give_the_same_conversations(tmp_path, layout):
    path = tmp_path / "WhatsApp Chat with Ann.txt"
    path.write_text(export(layout), encoding="utf-8")
    assert sniff(path) == "whatsapp"
    result = import_files("whatsapp", [path], ImportOptions(me="sam"))  # any case
    assert [turns(row) for row in result.rows] == EXPECTED
    report = result.files[0]
    assert (report.conversations_read, report.conversations_kept) == (2, 2)
    assert (report.messages_read, report.messages_kept) == (11, 6)
    assert report.skipped == {
        "system lines (joins, encryption notices, calls, group changes)": 1,
        "attachments without text (photos, voice notes, stickers, files)": 1,
        "deleted messages": 1,
    }
    assert report.unparsed == []


def test_whatsapp_date_order_is_decided_per_file():
    assert date_order(["12/31/23"]) == "mdy"
    assert date_order(["31.12.23"]) == "dmy"
    assert date_order(["2023-12-31"]) == "ymd"
    # All days <= 12: the order under which the chat runs forward in time wins.
    assert date_order(["12/01/24", "01/02/24", "03/02/24"]) == "dmy"  # 12 Jan, 1 Feb, 3 Feb
    assert date_order(["01/12/24", "02/01/24", "02/03/24"]) == "mdy"  # 12 Jan, 1 Feb, 3 Feb


def test_whatsapp_zip_from_android_and_iphone(tmp_path):
    for inner, layout in (("WhatsApp Chat with Ann.txt", "android de"), ("_chat.txt", "iphone en-US")):
        path = tmp_path / f"{layout}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            attached = (
                f"{LRM}[1/13/24, 10:04:00{NNBSP}AM] Sam: {LRM}<attached: 00000012-PHOTO-2024-01-13.jpg>\n"
            )
            archive.writestr(inner, export(layout) + (attached if inner == "_chat.txt" else ""))
            archive.writestr("IMG-20231231-WA0001.jpg", b"\xff\xd8\xff\xe0 not really a photo")
        assert sniff(path) == "whatsapp"
        result = import_files("whatsapp", [path], ImportOptions(me="Sam"))
        assert [turns(row) for row in result.rows] == EXPECTED
        media = result.files[0].skipped["attachments without text (photos, voice notes, stickers, files)"]
        assert media == (2 if inner == "_chat.txt" else 1)
    empty = tmp_path / "photos.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("IMG-1.jpg", b"x")
    with pytest.raises(
        ImportProblem, match=r"photos\.zip: no chat \(\.txt\) inside this \.zip; it holds IMG-1\.jpg"
    ):
        import_files("whatsapp", [empty], ImportOptions(me="Sam"))


def test_whatsapp_group_names_kept_or_dropped_and_gap_splits(tmp_path):
    path = tmp_path / "group.txt"
    path.write_text(
        '31/12/2023, 21:00 - Ann created group "Hike"\n'
        "31/12/2023, 21:00 - Ann added Bob\n"
        "31/12/2023, 21:01 - Ann: Who brings the map?\n"
        "31/12/2023, 21:02 - Bob: Not me\n"
        "31/12/2023, 21:03 - Sam: I will\n"
        "31/12/2023, 21:03 - Sam: IMG-20231231-WA0003.jpg (file attached)\n"
        "this one\n"
        "31/12/2023, 21:30 - Bob: great\n"
        "31/12/2023, 21:45 - Sam: see you\n",
        encoding="utf-8",
    )
    kept = import_files("whatsapp", [path], ImportOptions(me="Sam"))
    assert [turns(row) for row in kept.rows] == [
        [
            ("user", "Ann: Who brings the map?\nBob: Not me"),
            ("assistant", "I will\nthis one"),
            ("user", "Bob: great"),
            ("assistant", "see you"),
        ]
    ]
    dropped = import_files("whatsapp", [path], ImportOptions(me="Sam", group_names="drop", gap_minutes=20))
    assert [turns(row) for row in dropped.rows] == [
        [("user", "Who brings the map?\nNot me"), ("assistant", "I will\nthis one")],
        # 27 minutes of silence > 20: Bob's "great" opens a new conversation.
        [("user", "great"), ("assistant", "see you")],
    ]
    assert dropped.files[0].skipped == {"system lines (joins, encryption notices, calls, group changes)": 2}


def test_whatsapp_reports_lines_it_cannot_read_and_asks_who_you_are(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text(
        "Chat history exported by a cleaner app\n\n" + export("android en-GB"),
        encoding="utf-8",
    )
    with pytest.raises(ImportProblem) as asked:
        import_files("whatsapp", [path], ImportOptions())
    assert "say which speaker is you (--me NAME)" in str(asked.value)
    assert "Ann (4 messages), Sam (4 messages)" in str(asked.value)
    assert asked.value.speakers == {"Ann": 4, "Sam": 4}
    with pytest.raises(ImportProblem, match=r"no messages from 'Samuel'. Speakers found: Ann \(4"):
        import_files("whatsapp", [path], ImportOptions(me="Samuel"))
    result = import_files("whatsapp", [path], ImportOptions(me="Sam"))
    assert result.files[0].unparsed == [("line 1", "Chat history exported by a cleaner app")]
    assert "line 1: Chat history exported by a cleaner app" in result.summary()


def test_nothing_kept_is_a_problem_with_the_reasons(tmp_path):
    path = tmp_path / "monologue.txt"
    path.write_text(
        "31/12/2023, 21:00 - Sam: hello?\n31/12/2023, 21:01 - Sam: anyone?\n"
        "31/12/2023, 21:02 - Ann: <Media omitted>\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportProblem) as refused:
        import_files("whatsapp", [path], ImportOptions(me="Sam"))
    words = str(refused.value)
    assert words.startswith("nothing to import: no rows were kept.")
    assert "skipped 1: conversations with only your messages (nobody to answer)" in words
    assert "skipped 1: attachments without text" in words


def test_wrong_source_says_what_the_file_looks_like(tmp_path):
    whatsapp = tmp_path / "WhatsApp Chat with Ann.txt"
    whatsapp.write_text(export("iphone en-GB"), encoding="utf-8")
    with pytest.raises(ImportProblem, match="it looks like a WhatsApp chat export: import it as whatsapp"):
        import_files("telegram", [whatsapp], ImportOptions(me="Sam"))
    with pytest.raises(ImportProblem, match="it looks like a WhatsApp chat export: import it as whatsapp"):
        import_files("discord", [whatsapp], ImportOptions(me="Sam"))
    telegram = tmp_path / "result.json"
    telegram.write_text(json.dumps(TELEGRAM_SINGLE), encoding="utf-8")
    with pytest.raises(
        ImportProblem, match="it looks like a Telegram Desktop export .*: import it as telegram"
    ):
        import_files("whatsapp", [telegram], ImportOptions(me="Sam"))
    with pytest.raises(ImportProblem, match="import it as telegram"):
        import_files("discord", [telegram], ImportOptions(me="Sam"))
    prose = tmp_path / "notes.txt"
    prose.write_text("Dear diary,\ntoday I learned to fine-tune.\n", encoding="utf-8")
    with pytest.raises(ImportProblem, match="it looks like a document: import it as docs"):
        import_files("whatsapp", [prose], ImportOptions(me="Sam"))
    # One bad file among several is reported and the others still import.
    good = tmp_path / "good.txt"
    good.write_text(export("android de"), encoding="utf-8")
    result = import_files("whatsapp", [good, telegram], ImportOptions(me="Sam"))
    assert len(result.rows) == 2
    assert "result.json: not imported:" in result.summary()


# ----------------------------------------------------------------------------- Telegram
def tg(i, when, author, text, **extra):
    return {
        "id": i,
        "type": "message",
        "date": when,
        "date_unixtime": "0",
        "from": author,
        "from_id": f"user{abs(hash(author)) % 1000}",
        "text": text,
        **extra,
    }


TELEGRAM_MESSAGES = [
    {"id": 1, "type": "service", "date": "2023-12-31T20:00:00", "actor": "Ann", "action": "phone_call"},
    tg(2, "2023-12-31T21:05:09", "Ann", ["Look at ", {"type": "bold", "text": "this"}, "!"]),
    tg(3, "2023-12-31T21:05:30", "Ann", "", photo="photos/photo_1.jpg", width=800, height=600),
    tg(
        4,
        "2023-12-31T21:06:00",
        "Ann",
        [{"type": "link", "text": "https://example.org"}],
        forwarded_from="News Channel",
    ),
    tg(5, "2023-12-31T21:07:00", "Sam", "Nice one"),
    tg(6, "2023-12-31T21:07:10", "Sam", "Funny thing I got", forwarded_from="Bob"),
    tg(7, "2023-12-31T21:07:20", "Sam", [{"type": "italic", "text": "really"}, " nice"]),
    # Three hours later Sam answers Ann's message 2: the reply brings it along as the question.
    tg(8, "2024-01-01T00:30:00", "Sam", "Still thinking about it", reply_to_message_id=2),
    tg(9, "2024-01-01T00:31:00", "Ann", "haha"),
]
TELEGRAM_SINGLE = {"name": "Ann", "type": "personal_chat", "id": 42, "messages": TELEGRAM_MESSAGES}


def test_telegram_single_chat(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(TELEGRAM_SINGLE, ensure_ascii=False), encoding="utf-8")
    assert sniff(path) == "telegram"
    result = import_files("telegram", [path], ImportOptions(me="Sam"))
    assert [turns(row) for row in result.rows] == [
        [("user", "Look at this!\nhttps://example.org"), ("assistant", "Nice one\nreally nice")],
        [("user", "Look at this!"), ("assistant", "Still thinking about it")],
    ]
    report = result.files[0]
    assert report.skipped == {
        "service messages (joins, calls, pins, group changes)": 1,
        "attachments without text (photos, voice notes, stickers, files)": 1,
        "messages you forwarded (not your words)": 1,
    }
    assert (report.messages_read, report.conversations_read, report.conversations_kept) == (9, 2, 2)


def test_telegram_all_chats_never_mixes_chats_and_reports_json_paths(tmp_path):
    group = {
        "name": "Hike",
        "type": "private_group",
        "id": 7,
        "messages": [
            tg(1, "2023-12-31T21:00:00", "Ann", "Who brings the map?"),
            tg(2, "2023-12-31T21:01:00", "Bob", "Not me"),
            tg(3, "2023-12-31T21:02:00", "Sam", "I will"),
            {"id": 4, "type": "message", "date": "yesterday", "from": "Bob", "text": "x"},
            tg(5, "2023-12-31T21:03:00", "Bob", {"unexpected": "shape"}),
        ],
    }
    channel = {
        "name": "News",
        "type": "public_channel",
        "id": 8,
        "messages": [tg(1, "2023-12-31T21:00:00", "News", "Headline")],
    }
    data = {
        "about": "Here is the data you requested.",
        "personal_information": {"first_name": "Sam"},
        "chats": {
            "about": "This page lists all chats from this export.",
            "list": [TELEGRAM_SINGLE, group, channel],
        },
    }
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = import_files("telegram", [path], ImportOptions(me="Sam", group_names="keep"))
    assert [turns(row) for row in result.rows] == [
        [("user", "Look at this!\nhttps://example.org"), ("assistant", "Nice one\nreally nice")],
        [("user", "Look at this!"), ("assistant", "Still thinking about it")],
        [("user", "Ann: Who brings the map?\nBob: Not me"), ("assistant", "I will")],
    ]
    report = result.files[0]
    assert report.unparsed == [
        ("chats.list[1].messages[3].date", "no readable date: 'yesterday'"),
        ("chats.list[1].messages[4].text", "text is neither a string nor a list: {'unexpected': 'shape'}"),
    ]
    assert report.skipped["channel posts (a channel is not a conversation)"] == 1
    broken = tmp_path / "cut.json"
    broken.write_text(json.dumps(data)[:500], encoding="utf-8")
    with pytest.raises(ImportProblem, match=r"cut\.json: not valid JSON \(line 1, column \d+"):
        import_files("telegram", [broken], ImportOptions(me="Sam"))


# ----------------------------------------------------------------------------- Discord
def dc(i, when, name, content, nickname=None, kind="Default", **extra):
    return {
        "id": str(i),
        "type": kind,
        "timestamp": when,
        "timestampEdited": None,
        "isPinned": False,
        "content": content,
        "author": {
            "id": str(100 + len(name)),
            "name": name,
            "discriminator": "0000",
            "nickname": nickname or name,
            "isBot": False,
        },
        "attachments": [],
        "embeds": [],
        "stickers": [],
        "reactions": [],
        "mentions": [],
        **extra,
    }


def test_discord_chat_exporter_json(tmp_path):
    data = {
        "guild": {"id": "1", "name": "Makers", "iconUrl": "https://cdn.example/icon.png"},
        "channel": {"id": "2", "type": "GuildTextChat", "category": "Text", "name": "general", "topic": None},
        "dateRange": {"after": None, "before": None},
        "messages": [
            dc(1, "2023-12-31T21:00:00.123+00:00", "ann_k", "", kind="GuildMemberJoin"),
            dc(2, "2023-12-31T21:01:00.5+00:00", "ann_k", "How do I solder this?", nickname="Ann"),
            dc(
                3,
                "2023-12-31T21:02:00+00:00",
                "sam99",
                "",
                nickname="Sam",
                attachments=[{"id": "9", "url": "https://cdn.example/a.png", "fileName": "a.png"}],
            ),
            dc(
                4,
                "2023-12-31T22:02:00+01:00",
                "sam99",
                "Flux first, then heat the pad",
                nickname="Sam",
                kind="Reply",
                reference={"messageId": "2", "channelId": "2", "guildId": "1"},
            ),
            dc(5, "2023-12-31T21:03:00Z", "ann_k", "thanks!", nickname="Ann"),
            dc(
                6,
                "2024-01-02T09:00:00+00:00",
                "sam99",
                "Did it work?",
                nickname="Sam",
                kind="Reply",
                reference={"messageId": "5"},
            ),
            dc(7, "2024-01-02T09:00:00+00:00", "sam99", "pinned", kind="ChannelPinnedMessage"),
        ],
        "messageCount": 7,
    }
    path = tmp_path / "Makers - general.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert sniff(path) == "discord"
    result = import_files("discord", [path], ImportOptions(me="sam99"))  # the user name works too
    assert [turns(row) for row in result.rows] == [
        [("user", "How do I solder this?"), ("assistant", "Flux first, then heat the pad")],
        [("user", "thanks!"), ("assistant", "Did it work?")],
    ]
    assert result.files[0].skipped == {
        "system messages (joins, pins, calls, channel changes)": 2,
        "attachments without text (images, files, stickers, embeds)": 1,
    }


# ----------------------------------------------------------------------------- CSV
def test_csv_with_named_columns_newest_first(tmp_path):
    path = tmp_path / "sms.csv"
    path.write_text(
        "Sent;From;Body;Thread\n"
        "13/01/2024 10:02;Me;Sure;1\n"
        '13/01/2024 10:01;Ann;"Coffee?\nAt the usual place";1\n'
        "not a time;Ann;hello;1\n"
        "13/01/2024 10:00;Ann;Morning;1\n"
        "12/01/2024 08:00;Me;Too early;1;extra\n",
        encoding="utf-8",
    )
    assert sniff(path) == "csv"
    columns = {"time": "Sent", "author": "From", "text": "Body"}
    result = import_files("csv", [path], ImportOptions(me="me", csv_columns=columns))
    assert [turns(row) for row in result.rows] == [
        [("user", "Morning\nCoffee?\nAt the usual place"), ("assistant", "Sure")],
    ]
    assert result.files[0].unparsed == [
        ("line 5", "time 'not a time' is not a date and time"),  # lines 3-4 are one row
        ("line 7", "5 fields, the header has 4"),
    ]
    with pytest.raises(
        ImportProblem, match=r"sms\.csv: no column named 'Message'; its columns are: Sent, From, Body, Thread"
    ):
        import_files("csv", [path], ImportOptions(me="Me", csv_columns={**columns, "text": "Message"}))


def test_csv_columns_found_by_common_names(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "timestamp,sender,message\n"
        "2023-12-31T21:00:00,Ann,Hi\n"
        "2023-12-31T21:01:00,Sam,Hello\n"
        "1704060000,Ann,Later\n"  # Unix seconds: 2023-12-31 ~22:00 UTC, within the hour or not by zone
        "1704150000000,Sam,A day later (milliseconds)\n",
        encoding="utf-8",
    )
    result = import_files("csv", [path], ImportOptions(me="Sam"))
    assert turns(result.rows[0])[:2] == [("user", "Hi"), ("assistant", "Hello")]
    excel = tmp_path / "excel.csv"
    excel.write_bytes(
        "Zeit;Absender;Text\n31.12.2023 21:00;Jörg;Grüße\n31.12.2023 21:01;Sam;Danke\n".encode("cp1252")
    )
    read = import_files(
        "csv",
        [excel],
        ImportOptions(me="Sam", csv_columns={"time": "Zeit", "author": "Absender", "text": "Text"}),
    )
    assert turns(read.rows[0]) == [("user", "Grüße"), ("assistant", "Danke")]
    assert "note: not UTF-8; read as Windows-1252" in read.summary()
    nameless = tmp_path / "nameless.csv"
    nameless.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(
        ImportProblem, match="could not tell the author and text columns; its columns are: a, b, c"
    ):
        import_files("csv", [nameless], ImportOptions(me="Sam"))


# ----------------------------------------------------------------------------- output
def test_output_is_written_atomically_and_loads_as_a_dataset(tmp_path, demo_tokenizer):
    from tunesmith.core.data import load_dataset_file, render_example

    sources = tmp_path / "in"
    sources.mkdir()
    (sources / "a.txt").write_text(export("android en-US"), encoding="utf-8")
    (sources / "b.txt").write_text(export("iphone de").replace("Coffee?", "Tea?"), encoding="utf-8")
    result = import_files("whatsapp", sorted(sources.iterdir()), ImportOptions(me="Sam"))
    # a.txt and b.txt share their first conversation: the copy is dropped.
    assert result.duplicates_dropped == {"exact": 1, "near": 0}
    out = write_jsonl(result, tmp_path / "chats.jsonl")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    with pytest.raises(ImportProblem, match="chats.jsonl: already exists"):
        write_jsonl(result, out)
    dataset = load_dataset_file(out)
    assert (dataset.format, dataset.usable_rows, dataset.problems) == ("messages", 3, [])
    rendered = render_example(dataset.records[2].example, demo_tokenizer, 512)
    trained = "".join(text for text, is_trained in rendered.segments if is_trained)
    assert "Sure" in trained and "Tea?" not in trained and "Tea?" in rendered.text


def test_refusals_name_the_file(tmp_path):
    with pytest.raises(
        ImportProblem, match="unknown source 'signal': use one of whatsapp, telegram, discord, csv, docs"
    ):
        import_files("signal", [tmp_path / "x.txt"], ImportOptions(me="Sam"))
    with pytest.raises(ImportProblem, match=r"gone\.txt: no such file"):
        import_files("whatsapp", [tmp_path / "gone.txt"], ImportOptions(me="Sam"))
    with pytest.raises(ImportProblem, match="is a folder; give the export file inside it"):
        import_files("telegram", [tmp_path], ImportOptions(me="Sam"))
    chat = tmp_path / "chat.txt"
    chat.write_text(export("android en-GB"), encoding="utf-8")
    result = import_files("whatsapp", [chat], ImportOptions(me="Sam", scrub=True))
    assert "Privacy scrub: found nothing to replace." in result.summary()
    with pytest.raises(ImportProblem, match="the folder .*nowhere does not exist"):
        write_jsonl(result, tmp_path / "nowhere" / "out.jsonl")
    (tmp_path / "out.jsonl").write_text("keep me\n", encoding="utf-8")
    write_jsonl(result, tmp_path / "out.jsonl", overwrite=True)
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8").count("\n") == 2
