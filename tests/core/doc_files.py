"""Real documents built inside the tests: a multi-page PDF with a text layer (written byte by byte, as a
PDF producer writes one: catalog, pages, a standard font, one content stream per page, the xref table)
and a DOCX written with python-docx.  No files are shipped or downloaded."""

from __future__ import annotations

from pathlib import Path

HEADER = "ACME Field Guide - Internal"
# Three paragraphs per page, each a few full-width lines and a short last line (as typeset text is).
LINE = "The {topic} section explains how the crew checks the {topic} before every single trip out."


TOPICS = [
    "rope",
    "sail",
    "mast",
    "anchor",
    "rudder",
    "keel",
    "hull",
    "deck",
    "winch",
    "boom",
    "compass",
    "radio",
    "lantern",
    "bilge",
]


def handbook_pages(pages: int = 4) -> list[list[str]]:
    """Each page: the running header, paragraphs of body lines ("" = the gap between paragraphs), and
    the footer 'Page N of M'."""
    out = []
    for number in range(1, pages + 1):
        body: list[str] = [HEADER, ""]
        for topic in TOPICS[3 * number - 3 : 3 * number]:
            body += [LINE.format(topic=topic)] * 3 + [f"That is all for {topic}.", ""]
        body.append(f"Page {number} of {pages}")
        out.append(body)
    return out


def write_pdf(path: Path, pages: list[list[str]], text_layer: bool = True) -> Path:
    """A PDF whose pages show `pages`' lines top to bottom (a blank line leaves a gap); with
    `text_layer` False the pages hold only a drawn rectangle, like a scan holds only a picture."""
    objects: dict[int, bytes] = {1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    page_ids = [4 + 2 * i for i in range(len(pages))]
    kids = b" ".join(b"%d 0 R" % pid for pid in page_ids)
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages))
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    for pid, lines in zip(page_ids, pages, strict=True):
        ops, y = [], 760
        for line in lines:
            if line and text_layer:
                escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append(f"BT /F1 10 Tf 60 {y} Td ({escaped}) Tj ET")
            y -= 14
        if not text_layer:
            ops.append("0.5 g 60 100 400 600 re f")
        stream = "\n".join(ops).encode("cp1252")
        objects[pid] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (pid + 1)
        )
        objects[pid + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    data = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(data)
        data += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref, size = len(data), max(objects) + 1
    data += b"xref\n0 %d\n0000000000 65535 f \n" % size
    data += b"".join(b"%010d 00000 n \n" % offsets[number] for number in range(1, size))
    data += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    path.write_bytes(bytes(data))
    return path


def write_docx(path: Path) -> Path:
    """A Word document with a page header and footer, a heading, paragraphs and a small table."""
    from docx import Document

    document = Document()
    section = document.sections[0]
    section.header.paragraphs[0].text = "Quarterly memo - do not forward"
    section.footer.paragraphs[0].text = "Page 1"
    document.add_heading("Harbour opening hours", level=1)
    document.add_paragraph("The harbour office opens at seven. Boats leave after the morning check.")
    document.add_paragraph("In winter the office opens at eight, and the last boat returns by four.")
    table = document.add_table(rows=2, cols=2)
    for row, (day, hours) in enumerate((("Monday", "7-16"), ("Sunday", "closed"))):
        table.cell(row, 0).text, table.cell(row, 1).text = day, hours
    document.add_paragraph("Questions about the timetable go to the harbour master.")
    document.save(str(path))
    return path
