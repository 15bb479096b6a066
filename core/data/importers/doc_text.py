"""Plain text from documents, made ready for continued pre-training: page furniture removed, paragraphs
found, and paragraphs packed into chunks that fit the model's max length.

Pure functions over strings; knows nothing of PDF or DOCX (docs.py reads those) nor of files.
- `strip_page_furniture(pages)`: drops the running headers/footers and page numbers that repeat across
  a PDF's pages (a line seen at the top or bottom of most pages, once its digits are ignored, so
  "Annual report - page 3" and "Page 3 of 10" count as the same line on every page).
- `paragraphs_of_lines(lines)`: joins a PDF's hard-wrapped lines back into paragraphs.
- `chunk_paragraphs(paragraphs, max_tokens, count)`: packs whole paragraphs into chunks; a paragraph
  longer than the limit is split at sentence boundaries (and a sentence longer than it at word ones).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

# Lines looked at for running headers (top) and footers (bottom) on each page.
_EDGE_LINES = 3
# "12", "- 12 -", "Page 12", "page 3 of 10", "3/10", "iv": a line that is only a page number.
_PAGE_NUMBER = re.compile(
    r"^[\s\-–—|·•]*(?:(?i:page|p\.|seite|página|pagina)\s*)?(?:\d{1,4}|[ivxlcdm]{1,7})"
    r"(?:\s*(?i:of|/|de|von|sur|di)\s*\d{1,4})?[\s\-–—|·•]*$"
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-ZÀ-ÖØ-Þ0-9])")


def words_token_estimate(text: str) -> int:
    """Tokens in `text` without a tokenizer: English BPE vocabularies average about 1.3 tokens per
    word (more for numbers, code and other languages), so words * 1.5 rounded up keeps chunks on the
    safe side of the limit.  Used only when no model tokenizer is given."""
    words = len(text.split())
    return -(-words * 3 // 2)


def strip_page_furniture(pages: list[list[str]]) -> tuple[list[list[str]], int]:
    """The pages' lines without repeating headers/footers and page numbers, and how many lines went.

    Only a page's first and last few lines that hold text are candidates.  A line (digits ignored) that
    is among them on at least 60% of the pages (and on two or more) is a running header or footer; a
    line that is only a page number is dropped there too.  Blank lines are kept: they end paragraphs."""
    repeated: Counter[str] = Counter()
    for lines in pages:
        repeated.update({_shape(lines[i]) for i in _edge_indices(lines)})
    needed = max(2, -(-len(pages) * 3 // 5))
    furniture = {shape for shape, seen in repeated.items() if seen >= needed and shape}
    kept_pages, removed = [], 0
    for lines in pages:
        edges = _edge_indices(lines)
        dropped = {i for i in edges if _shape(lines[i]) in furniture or _PAGE_NUMBER.match(lines[i])}
        kept_pages.append([line for i, line in enumerate(lines) if i not in dropped])
        removed += len(dropped)
    return kept_pages, removed


def _edge_indices(lines: list[str]) -> set[int]:
    """The indices of a page's first and last `_EDGE_LINES` lines that hold text."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return set(filled[:_EDGE_LINES] + filled[-_EDGE_LINES:])


def _shape(line: str) -> str:
    """A line with its numbers blanked and spacing folded, so page 3's footer matches page 4's."""
    return re.sub(r"\s+", " ", re.sub(r"\d+", "#", line)).strip().lower()


def paragraphs_of_lines(lines: list[str]) -> list[str]:
    """Hard-wrapped lines joined back into paragraphs.

    A blank line always ends a paragraph; so does a line that ends a sentence while being clearly
    shorter than the text's usual line (the short last line of a paragraph).  A word broken by a hyphen
    at a line's end is joined again."""
    widths = sorted(len(line.strip()) for line in lines if line.strip())
    usual = widths[int(len(widths) * 0.8)] if widths else 0
    paragraphs: list[str] = []
    current = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            paragraphs.append(current)
            current = ""
            continue
        if current.endswith("-") and current[-2:-1].isalpha() and line[:1].islower():
            current = current[:-1] + line
        else:
            current = f"{current} {line}" if current else line
        if line[-1] in '.!?:…"”' and len(line) < 0.75 * usual:
            paragraphs.append(current)
            current = ""
    paragraphs.append(current)
    return [p for p in paragraphs if p.strip()]


def paragraphs_of_text(text: str) -> list[str]:
    """Paragraphs of a text file or Markdown: blocks separated by blank lines, each block's lines joined
    (Markdown headings, list items and code keep their own lines)."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    paragraphs = []
    for block in blocks:
        lines = [line.rstrip() for line in block.strip("\n").split("\n") if line.strip()]
        if not lines:
            continue
        structured = any(re.match(r"\s*([#>|`*+-]|\d+[.)])\s*", line) for line in lines)
        paragraphs.append("\n".join(lines) if structured else " ".join(line.strip() for line in lines))
    return paragraphs


def chunk_paragraphs(paragraphs: list[str], max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """Whole paragraphs packed into chunks of at most `max_tokens` (as `count` counts them), joined by a
    blank line; a paragraph over the limit is split at sentences, a sentence over it at words."""
    pieces = [piece for paragraph in paragraphs for piece in _fitting_pieces(paragraph, max_tokens, count)]
    chunks: list[str] = []
    current: list[str] = []
    for piece in pieces:
        candidate = "\n\n".join([*current, piece])
        if current and count(candidate) > max_tokens:
            chunks.append("\n\n".join(current))
            current = [piece]
        else:
            current.append(piece)
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _fitting_pieces(paragraph: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """The paragraph itself when it fits; else its sentences packed into pieces that fit."""
    if count(paragraph) <= max_tokens:
        return [paragraph]
    sentences = [s for s in _SENTENCE_END.split(paragraph) if s.strip()]
    if len(sentences) == 1:
        return _pack(paragraph.split(), " ", max_tokens, count)
    units = [unit for s in sentences for unit in _fitting_pieces(s, max_tokens, count)]
    return _pack(units, " ", max_tokens, count)


def _pack(units: list[str], joiner: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """Consecutive units joined while the result still fits (a single unit over the limit stays alone)."""
    pieces: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}{joiner}{unit}" if current else unit
        if current and count(candidate) > max_tokens:
            pieces.append(current)
            current = unit
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces
