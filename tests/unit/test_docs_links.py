"""Every relative link in the README and in docs/ leads somewhere.

The pages name files to read first and link to each other; a file that moves or a
heading that is renamed would leave a newcomer in front of a 404. Links are read as
GitHub renders Markdown: outside code blocks and HTML comments, with ``#fragment``
anchors made from the target page's headings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

_HIDDEN = re.compile(r"```.*?```|<!--.*?-->", re.DOTALL)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")  # a URL (https:, mailto:), not a repository file


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def visible(page: Path) -> str:
    """The text of ``page`` that GitHub renders as Markdown (no code blocks, no comments)."""
    return _HIDDEN.sub("", page.read_text(encoding="utf-8"))


def anchors(page: Path) -> set[str]:
    """The ``#fragment`` names the headings of ``page`` give."""
    return {slug(heading) for heading in _HEADING.findall(visible(page))}


def relative_links(page: Path) -> list[str]:
    """The links of ``page`` into the repository: every link without a URL scheme."""
    return [link for link in _LINK.findall(visible(page)) if not _SCHEME.match(link)]


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file, or whose heading, does not exist."""
    broken = []
    for link in relative_links(page):
        path, _, fragment = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif fragment and target.suffix == ".md" and fragment not in anchors(target):
            broken.append(f"{link}: no heading #{fragment} in {target.name}")
    return broken


def test_the_readme_and_the_docs_are_all_checked() -> None:
    names = {page.relative_to(REPO).as_posix() for page in PAGES}
    assert {"README.md", "docs/configuration.md", "docs/sampling.md"} <= names
    assert sum(len(relative_links(page)) for page in PAGES) > 20


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_every_relative_link_points_to_an_existing_file(page: Path) -> None:
    assert broken_links(page) == []


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md) [ok](other.md#a-heading) [web](https://example.com)\n"
        "[gone](missing.md) [no anchor](other.md#elsewhere)\n"
        "```\n[in code](not-a-link.md)\n```\n<!-- [hidden](nor-this.md) -->\n"
    )
    assert [entry.split(":")[0] for entry in broken_links(page)] == [
        "missing.md",
        "other.md#elsewhere",
    ]
