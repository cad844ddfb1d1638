"""Plain-text tables for the human summaries the commands print (the library builds them, the CLI prints them)."""

from __future__ import annotations

from typing import Any, Sequence

from soundmind_data.core.corpus import LabelCounts


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned text columns, numbers right-aligned, with a rule under the header."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(row) for row in cells[1:]])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def id_sample(ids: Sequence[str], limit: int = 5, *, total: int | None = None) -> str:
    """The first few ids of a list, with a count of the rest: "a, b, c (+12 more)". `total` is the number of ids
    when `ids` is itself only the start of a longer list (reports cap their id lists)."""
    total = len(ids) if total is None else total
    shown = ", ".join(ids[:limit])
    return f"{shown} (+{total - min(limit, len(ids))} more)" if total > min(limit, len(ids)) else shown


def split_label_table(counts: LabelCounts) -> str:
    return format_table(("split", "not-entailed", "entailed", "items"), counts.rows())


def before_after_table(before: LabelCounts, after: LabelCounts, middle: dict[str, dict] | None = None) -> str:
    """Per split x label counts before and after a stage, with stage-specific columns (`middle`) in between."""
    middle = middle or {}
    rows = [(name, *before[name], *(column.get(name, "") for column in middle.values()), *after[name])
            for name in dict.fromkeys([*before, *after])]
    return format_table(("split", "not-entailed before", "entailed before", *middle,
                         "not-entailed after", "entailed after"), rows)
