"""A small HTML reader for the tests: every element with a class attribute and its text."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = ("br", "img", "meta", "link", "input", "hr")  # elements that never close


class Elements(HTMLParser):
    """Every element with a class attribute: its attributes, ``tag`` and the text inside."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[dict[str, str]] = []
        self.stack: list[dict[str, str] | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        item = {**a, "tag": tag, "text": ""} if "class" in a else None
        if item is not None:
            self.found.append(item)
        if tag not in VOID:
            self.stack.append(item)

    def handle_endtag(self, tag: str) -> None:
        if self.stack:  # a fragment cut out of a page may close more than it opened
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        for item in self.stack:
            if item is not None:
                item["text"] += data

    def by_class(self, cls: str) -> list[dict[str, str]]:
        return [e for e in self.found if cls in e["class"].split()]
