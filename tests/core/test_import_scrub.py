"""Privacy scrubbing and duplicate removal of imported rows: what is replaced, what is left alone (dates,
times, prices, order numbers), the counts the summary reports."""

from __future__ import annotations

import time

import pytest

from tunesmith.core.data.importers import ImportOptions, import_files
from tunesmith.core.data.importers.dedup import drop_duplicates
from tunesmith.core.data.importers.scrub import Scrubber


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("mail me: ann.lee+chat@example.co.uk!", "mail me: <EMAIL>!"),
        ("see https://example.org/a?b=1&c=2.", "see <URL>."),
        ("(www.example.org/path), ok", "(<URL>), ok"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN <IBAN> please"),
        ("GB82WEST12345698765432", "<IBAN>"),
        ("card 4111 1111 1111 1111 or 4111-1111-1111-1111", "card <CARD> or <CARD>"),
        ("amex 378282246310005.", "amex <CARD>."),
        ("call +49 171 1234567 now", "call <PHONE> now"),
        ("+1 (555) 123-4567", "<PHONE>"),
        ("0044 20 7946 0958", "<PHONE>"),
        ("Festnetz 030 12345678, mobil 0171/1234567", "Festnetz <PHONE>, mobil <PHONE>"),
        ("(555) 123-4567 or 555-123-4567 or 555.123.4567", "<PHONE> or <PHONE> or <PHONE>"),
        ("on 01.02.2024 0171 1234567", "on 01.02.2024 <PHONE>"),
    ],
)
def test_each_kind_is_replaced(text, scrubbed):
    assert Scrubber().scrub(text) == scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "We met on 31.12.2023 at 21:05, again 12/31/2023 9:05 PM and 2023-12-31.",
        "It cost $1,299.99, or 1.299,00 €, or € 1.299.000, or 1 299 000 €, or 0,99 EUR.",
        "Order 1234567890 shipped; tracking 123456789012.",
        "From 1990-2023 the population rose 12.5% to 3.645.000 (52.520008, 13.404954).",
        "IBAN DE89 3704 0044 0532 0130 01 has a wrong check digit",
        "card 4111 1111 1111 1112 fails Luhn, and 0000 0000 0000 0000 is a placeholder",
        "version 3.11.2, room 0.12, score 10-12",
    ],
)
def test_dates_times_prices_and_invalid_numbers_are_left_alone(text):
    scrubber = Scrubber()
    assert scrubber.scrub(text) == text
    assert sum(scrubber.counts().values()) == 0


def test_long_dotted_or_dashed_text_scrubs_in_linear_time():
    # Pasted logs and tables: with the address pattern starting at every word boundary these took seconds.
    scrubber = Scrubber(["Ann"])
    for text in ("a." * 20000 + "@", "0" + "1-" * 20000, "x@y.com " * 5000):
        start = time.perf_counter()
        scrubber.scrub(text)
        assert time.perf_counter() - start < 1.0


def test_listed_names_are_whole_words_in_any_case_and_counted():
    scrubber = Scrubber(["Ann", "Ann Lee", "bob", " "])
    text = scrubber.scrub("ann lee met Bob, BOB and Anne at the Annual meeting; Ann said hi to bobby.")
    assert text == "<NAME> met <NAME>, <NAME> and Anne at the Annual meeting; <NAME> said hi to bobby."
    scrubber.scrub("mail ann@example.org")  # the address goes whole, not the name inside it
    assert scrubber.counts() == {"email": 1, "url": 0, "iban": 0, "card": 0, "phone": 0, "name": 4}


def test_duplicates_exact_and_near_are_dropped_first_kept():
    def row(question, answer):
        return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}

    rows = [row("Coffee?", "Sure!"), row("Coffee?", "Sure!"), row("coffee", "sure."), row("Tea?", "Sure")]
    rows += [{"text": "A page."}, {"text": "a  page"}, {"text": "Another page."}]
    kept, dropped = drop_duplicates(rows)
    assert kept == [rows[0], rows[3], rows[4], rows[6]]
    assert dropped == {"exact": 1, "near": 2}


def test_import_scrubs_every_turn_and_says_how_many(tmp_path):
    path = tmp_path / "group.txt"
    day = (
        "{d}, 21:00 - Ann Lee: Hi all, my new number is +49 171 1234567\n"
        "{d}, 21:01 - +44 7911 123456: Mine is still 07911 123456, mail tom@example.org\n"
        "{d}, 21:02 - Sam: Thanks {ann} Pay the 45,00 € to DE89 3704 0044 0532 0130 00 by 05.01.2024\n"
        "{d}, 21:03 - Ann Lee: ok!\n"
        "{d}, 21:04 - Sam: see https://hike.example/plan\n"
    )
    path.write_text(
        day.format(d="31/12/2023", ann="Ann!") + day.format(d="01/01/2024", ann="ann."), encoding="utf-8"
    )
    result = import_files(
        "whatsapp", [path], ImportOptions(me="Sam", scrub=True, scrub_names=("Ann Lee", "Ann"))
    )
    assert [m["content"] for m in result.rows[0]["messages"]] == [
        "<NAME>: Hi all, my new number is <PHONE>\n<PHONE>: Mine is still <PHONE>, mail <EMAIL>",
        "Thanks <NAME>! Pay the 45,00 € to <IBAN> by 05.01.2024",
        "<NAME>: ok!",
        "see <URL>",
    ]
    # The second day says the same but for "Ann!" / "ann.": a near duplicate once scrubbed, dropped.
    assert len(result.rows) == 1
    assert result.duplicates_dropped == {"exact": 0, "near": 1}
    assert result.scrubbed == {"email": 2, "url": 2, "iban": 2, "card": 0, "phone": 6, "name": 6}
    summary = result.summary()
    assert "Replaced for privacy: 2 email, 2 url, 2 iban, 6 phone, 6 name." in summary
    assert "Dropped 1 near duplicate(s)." in summary
