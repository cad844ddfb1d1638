"""Reading the review page in a browser (a Playwright page from the `open_page` fixture)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse


def listed(page) -> list[str]:
    """The ids of the items the table shows now."""
    return page.locator("#items tbody tr.item").evaluate_all("rows => rows.map(row => row.dataset.id)")


def choose(page, name: str, value: str) -> list[str]:
    """Pick `value` in the filter `name` ("" for all); the ids then shown."""
    page.select_option(f"#filters select[name={name}]", value)
    return listed(page)


def open_all(page) -> None:
    """Open every listed item, and wait until each shows its texts."""
    for item_id in listed(page):
        page.click(f"tr.item[data-id='{item_id}']")
    page.wait_for_function("document.querySelectorAll('tr.detail .spoken').length"
                           " === document.querySelectorAll('tr.item').length")


def played_files(page) -> list[Path]:
    """The files the open items' audio players play."""
    return [Path(unquote(urlparse(src).path)) for src in
            page.locator("tr.detail audio").evaluate_all("players => players.map(p => p.src)")]
