"""Guess which source a file comes from, from its name and its first bytes, so that a file given to the
wrong importer gets "this looks like a WhatsApp export: import it as whatsapp" instead of a bare failure.

Reads at most the first `_PEEK` bytes of a file (exports can be hundreds of MB); never parses a whole file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from tunesmith.core.data.importers.common import FileReport, ImportProblem

_PEEK = 256 * 1024
# What each source's files look like, in words ("it looks like ...").
LOOKS = {
    "whatsapp": "a WhatsApp chat export",
    "telegram": "a Telegram Desktop export (result.json)",
    "discord": "a DiscordChatExporter export",
    "csv": "a table (CSV)",
    "docs": "a document",
}
_DOC_SUFFIXES = {".pdf", ".docx", ".md", ".markdown", ".rst"}


def sniff(path: str | Path) -> str | None:
    """The source that would read this file ("whatsapp", "telegram", "discord", "csv", "docs"), or None."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".zip":
            return _sniff_zip(path)
        if suffix in {".pdf", ".docx"}:
            return "docs"
        with path.open("rb") as handle:
            head = handle.read(_PEEK).decode("utf-8", errors="replace").lstrip("\ufeff")
    except (OSError, zipfile.BadZipFile):
        return None
    return _sniff_text(head, suffix)


def _sniff_zip(path: Path) -> str | None:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.lower().endswith(".txt"):
                with archive.open(name) as handle:
                    head = handle.read(_PEEK).decode("utf-8", errors="replace").lstrip("\ufeff")
                if _sniff_text(head, ".txt") == "whatsapp":
                    return "whatsapp"
    return None


def _sniff_text(head: str, suffix: str) -> str | None:
    from tunesmith.core.data.importers.whatsapp import looks_like_whatsapp

    if looks_like_whatsapp(head.splitlines()[:50]):  # before JSON: iPhone lines start with "["
        return "whatsapp"
    if head.lstrip().startswith(("{", "[")):
        if '"guild"' in head and '"channel"' in head:
            return "discord"
        if any(key in head for key in ('"date_unixtime"', '"from_id"', '"personal_information"')):
            return "telegram"
        if '"chats"' in head and '"list"' in head:
            return "telegram"
        return None
    if suffix in {".csv", ".tsv"}:
        return "csv"
    if suffix in _DOC_SUFFIXES or suffix == ".txt":
        return "docs"
    return None


def wrong_format(path: str | Path, source: str, report: FileReport | None = None) -> ImportProblem:
    """The refusal for a file that `source` cannot read, saying what it looks like and who reads it."""
    guess = sniff(path)
    expected = LOOKS[source]
    if guess is not None and guess != source:
        looks = f"{LOOKS[guess]}: import it as {guess}"
        if report is not None:
            report.looks_like = looks
        return ImportProblem(f"{path}: this is not {expected}; it looks like {looks}")
    return ImportProblem(f"{path}: this does not look like {expected}; is it the right file?")
