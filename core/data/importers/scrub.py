"""Replace personal data in texts with placeholders: e-mail addresses, URLs, IBANs, card numbers, phone
numbers, and the names the person lists.  Runs on this machine only; counts each kind it replaced.

Order matters: URLs and e-mail addresses go first (they hold digits and names), then IBANs and card
numbers, which are validated (IBAN check digits, Luhn) so an order number or a long amount is left
alone, then phone numbers, which must not eat dates, times or prices (see `_is_phone`), then names.
Placeholders are <EMAIL>, <URL>, <IBAN>, <CARD>, <PHONE>, <NAME>.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

KINDS = ("email", "url", "iban", "card", "phone", "name")
PLACEHOLDERS = {kind: f"<{kind.upper()}>" for kind in KINDS}

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}'\""
# Starts only where a run of address characters starts (not at every \b inside "a.b.c-d..."): linear time
# on long dotted or dashed text, where \b made it quadratic (20 kB: 4 s).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
# Two letters, two check digits, then 11-30 letters/digits, written in fours with spaces or not (groups of
# four so that a word after it is not swallowed and spoils the check digits).
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", re.IGNORECASE)
# 13-19 digits, in groups separated by single spaces or dashes (how cards are written).
_CARD = re.compile(r"(?<![\d+])\d(?:[ -]?\d){12,18}(?!\d)")
# A run of digits with the separators phone numbers use; `_is_phone` decides.  No commas (amounts) and
# no colons (times) inside, so "1,299.00" or "21:05" never form one candidate.
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ()./-]{4,}\d(?![\w])")
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
_AMOUNT = re.compile(r"^\d{1,3}(?:[. ]\d{3})+(?:[.]\d{1,2})?$")
_NANP = re.compile(r"^\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}$")  # (555) 123-4567, 555-123-4567, 555.123.4567
_CURRENCY_BEFORE = re.compile(r"[$€£¥₹]\s?$")
_CURRENCY_AFTER = re.compile(r"^\s?(?:[$€£¥₹%]|eur\b|usd\b|gbp\b|chf\b|kg\b|km\b)", re.IGNORECASE)


class Scrubber:
    """Scrubs texts and counts what it replaced, kind -> count, over all the texts it has seen."""

    def __init__(self, names: Iterable[str] = ()):
        self._counts = dict.fromkeys(KINDS, 0)
        listed = sorted({name.strip() for name in names if name.strip()}, key=len, reverse=True)
        # Whole words, any case; longest first so "Ann Lee" wins over "Ann".  Never inside a placeholder.
        self._names = (
            re.compile(
                r"(?<![\w<])(?:" + "|".join(re.escape(n) for n in listed) + r")(?![\w>])", re.IGNORECASE
            )
            if listed
            else None
        )

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def scrub_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A copy of a row ({"messages": [...]} or {"text": ...}) with every text scrubbed."""
        if "messages" in row:
            return {
                **row,
                "messages": [{**m, "content": self.scrub(m["content"])} for m in row["messages"]],
            }
        if isinstance(row.get("text"), str):
            return {**row, "text": self.scrub(row["text"])}
        return row

    def scrub(self, text: str) -> str:
        lowered = text.lower()
        if "http" in lowered or "www." in lowered:  # cheap checks first: most messages hold neither
            text = self._replace(_URL, "url", text, _url_end)
        if "@" in text:
            text = self._replace(_EMAIL, "email", text)
        text = self._replace(_IBAN, "iban", text, valid=_is_iban)
        text = self._replace(_CARD, "card", text, valid=_is_card)
        text = _PHONE.sub(self._phone, text)
        if self._names is not None:
            text = self._replace(self._names, "name", text)
        return text

    def _replace(
        self,
        pattern: re.Pattern[str],
        kind: str,
        text: str,
        trim: Callable[[str], tuple[str, str]] | None = None,
        valid: Callable[[str], bool] | None = None,
    ) -> str:
        def swap(match: re.Match[str]) -> str:
            found = match.group(0)
            rest = ""
            if trim is not None:
                found, rest = trim(found)
            if valid is not None and not valid(found):
                return match.group(0)
            self._counts[kind] += 1
            return PLACEHOLDERS[kind] + rest

        return pattern.sub(swap, text)

    def _phone(self, match: re.Match[str]) -> str:
        candidate = match.group(0)
        before = match.string[max(0, match.start() - 2) : match.start()]
        after = match.string[match.end() : match.end() + 4]
        if _CURRENCY_BEFORE.search(before) or _CURRENCY_AFTER.match(after) or not _is_phone(candidate):
            # A run may hold a phone number after a date ("01.02.2024 0171 1234567"): try the rest.  Only
            # after a date: inside other digit runs (an IBAN's groups) a tail can look like "0044 ...".
            head, sep, tail = candidate.partition(" ")
            return head + sep + _PHONE.sub(self._phone, tail) if sep and _DATE.match(head) else candidate
        self._counts["phone"] += 1
        return PLACEHOLDERS["phone"]


def _url_end(found: str) -> tuple[str, str]:
    """A URL without the punctuation that ends the sentence around it."""
    stripped = found.rstrip(_URL_TRAILING)
    return stripped, found[len(stripped) :]


def _is_iban(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _is_card(text: str) -> bool:
    digits = [int(ch) for ch in text if ch.isdigit()]
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_phone(candidate: str) -> bool:
    """International (+49 …, 0049 …), local with a leading 0 or area code in brackets, or the North
    American 3-3-4 form; 7-15 digits.  Dates (31.12.2023, 2023-12-31, 12/31/23) and grouped amounts
    (1.299.000) are not phones; a bare run of digits (an order number) is not either."""
    digits = sum(ch.isdigit() for ch in candidate)
    if not 7 <= digits <= 15 or candidate.count("(") != candidate.count(")"):
        return False
    if candidate.startswith(("+", "00")):
        return digits >= 8
    if _DATE.match(candidate) or _AMOUNT.match(candidate):
        return False
    if _NANP.match(candidate):
        return True
    has_separator = any(ch in candidate for ch in " ()./-")
    return candidate.startswith(("0", "(")) and (has_separator or digits >= 10)
