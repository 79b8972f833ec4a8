"""Convert selected pages of the Python 3.11 HTML documentation into the out-of-domain Markdown corpus.

Source: Debian's ``python3-doc`` package (3.11.2-1), whose Sphinx HTML lands in ``/usr/share/doc/python3/html``.
Only the page body (``<div class="body" role="main">``) is converted; the navigation bar, sidebars, search
box and footer lie outside it and are dropped. Stdlib only (``html.parser``)::

    python eval/ood/build_corpus.py /usr/share/doc/python3/html eval/ood/corpus

Conversion rules:

* ``<h1>``..``<h6>`` become ``#``..``######`` headings (plain text, permalink "¶" dropped).
* Paragraphs are written on one line each (no hard wrapping), so a sentence copied from the file is a substring
  of it and of the text the ingestion loader extracts from it.
* Inline ``<code>`` becomes a backtick code span; ``<strong>`` becomes ``**bold**``; ``<em>`` becomes ``*x*``
  unless it is a bare identifier (Sphinx's parameter names), which is written plain. Links keep their text only.
* Code blocks become fenced blocks tagged with Sphinx's highlight language; tables become pipe tables; lists
  keep their nesting; API entries (``<dl class="py ...">``) become their signature in a code span followed by
  their description; notes, warnings and "see also" boxes become block quotes; "New in version" /
  "Changed in version" lines stay as ordinary paragraphs.
* A page whose Markdown exceeds its byte budget is cut at the last heading that keeps it within budget (so the
  file holds the page's first whole sections) and says so in its closing line.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

MAX_FILE_BYTES = 40_000
MAX_TOTAL_BYTES = 450_000


@dataclass(frozen=True, slots=True)
class Page:
    stem: str  # corpus file name without ``.md``
    html: str  # path under the HTML root
    budget: int = MAX_FILE_BYTES


PAGES: tuple[Page, ...] = (
    Page("heapq", "library/heapq.html"),
    Page("bisect", "library/bisect.html"),
    Page("functools", "library/functools.html"),
    Page("itertools", "library/itertools.html"),
    Page("datetime", "library/datetime.html"),
    Page("json", "library/json.html"),
    Page("sqlite3", "library/sqlite3.html"),
    Page("argparse-howto", "howto/argparse.html"),
    Page("pathlib", "library/pathlib.html"),
    Page("collections", "library/collections.html"),
    Page("statistics", "library/statistics.html"),
    Page("textwrap", "library/textwrap.html"),
    Page("zipfile", "library/zipfile.html"),
    Page("secrets", "library/secrets.html"),
    Page("enum", "library/enum.html"),
    Page("logging-howto", "howto/logging.html"),
    Page("shelve", "library/shelve.html"),
    Page("graphlib", "library/graphlib.html"),
)

VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})
SKIP_TAGS = frozenset({"script", "style", "nav", "form", "button", "svg", "noscript", "template"})
INLINE_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "br", "cite", "code", "del", "dfn", "em", "i", "img",
        "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "tt",
        "u", "var", "wbr",
    }
)  # fmt: skip
CODE_TAGS = frozenset({"code", "tt", "kbd", "samp"})
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
WHITESPACE = re.compile(r"\s+")
HIGHLIGHT_LANG = re.compile(r"\bhighlight-([\w+-]+)")
SIGNATURE = "\x1f"  # marks an API signature block: a place where a long page may be cut
LANG_NAMES = {"python3": "python", "default": "python", "none": "text", "shell": "sh"}


@dataclass(slots=True)
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class TreeBuilder(HTMLParser):
    """A forgiving DOM: Sphinx's output is well nested, so closing tags simply pop to their opener."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID_TAGS:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def find_body(node: Node) -> Node | None:
    if node.tag == "div" and "body" in node.classes and node.attrs.get("role") == "main":
        return node
    for child in node.children:
        if isinstance(child, Node) and (found := find_body(child)):
            return found
    return None


def raw_text(node: Node | str) -> str:
    """All text below ``node``, whitespace kept (for code blocks), permalinks dropped."""
    if isinstance(node, str):
        return node
    if node.tag in SKIP_TAGS or "headerlink" in node.classes:
        return ""
    return "".join(raw_text(child) for child in node.children)


def squash(text: str) -> str:
    return WHITESPACE.sub(" ", text).strip()


def code_span(text: str) -> str:
    text = squash(text)
    if not text:
        return ""
    if "`" in text:
        return f"`` {text} ``"
    return f"`{text}`"


def is_inline(node: Node | str) -> bool:
    return isinstance(node, str) or node.tag in INLINE_TAGS


def inline(node: Node | str, plain: bool = False) -> str:
    """Inline Markdown of ``node``; ``plain`` drops all markup (headings, signatures)."""
    if isinstance(node, str):
        return node
    if node.tag in SKIP_TAGS or node.tag == "img" or "headerlink" in node.classes:
        return ""
    if node.tag in ("br", "wbr"):
        return " "
    if node.tag in CODE_TAGS:
        return raw_text(node) if plain else code_span(raw_text(node))
    inner = "".join(inline(child, plain) for child in node.children)
    if plain:
        return inner
    if node.tag in ("em", "i", "cite", "var", "dfn"):
        word = inner.strip()
        if IDENTIFIER.fullmatch(word) or "*" in word or not any(c.isalnum() for c in word):
            return inner
        return f"*{word}*"
    if node.tag in ("strong", "b"):
        word = inner.strip()
        return f"**{word}**" if any(c.isalnum() for c in word) and "*" not in word else inner
    return inner


def indent(text: str, prefix: str, first: str) -> str:
    lines = text.split("\n")
    out = [first + lines[0]]
    out += [prefix + line if line else "" for line in lines[1:]]
    return "\n".join(out)


def code_block(pre: Node, lang: str) -> str:
    text = raw_text(pre).strip("\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    fence = "~~~" if "```" in text else "```"
    return f"{fence}{lang}\n{text}\n{fence}"


def table(node: Node) -> list[str]:
    rows: list[list[str]] = []
    header_rows = 0
    caption = ""

    def walk(n: Node, in_head: bool) -> None:
        nonlocal header_rows, caption
        for child in n.children:
            if not isinstance(child, Node):
                continue
            if child.tag == "caption":
                caption = squash(inline(child))
            elif child.tag == "tr":
                cells = [
                    " ".join(squash(b) for b in blocks(cell)).replace("|", "\\|")
                    for cell in child.children
                    if isinstance(cell, Node) and cell.tag in ("td", "th")
                ]
                rows.append(cells)
                header_rows += in_head
            elif child.tag in ("thead", "tbody", "tfoot", "colgroup"):
                walk(child, in_head or child.tag == "thead")

    walk(node, False)
    if not rows:
        return []
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    head = rows[0] if header_rows else [""] * width
    body = rows[1:] if header_rows else rows
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    out = [caption] if caption else []
    return [*out, "\n".join(lines)]


def list_block(node: Node) -> list[str]:
    items: list[str] = []
    number = int(node.attrs.get("start", "1") or 1)
    for child in node.children:
        if not isinstance(child, Node) or child.tag != "li":
            continue
        marker = f"{number}. " if node.tag == "ol" else "- "
        number += 1
        body = "\n\n".join(blocks(child)) or ""
        items.append(indent(body, " " * len(marker), marker))
    if not items:
        return []
    tight = all("\n" not in item for item in items)
    return [("\n" if tight else "\n\n").join(items)]


def definition_list(node: Node) -> list[str]:
    out: list[str] = []
    api = any(isinstance(c, Node) and c.tag == "dt" and "sig" in c.classes for c in node.children)
    for child in node.children:
        if not isinstance(child, Node):
            continue
        if child.tag == "dt":
            term = squash(inline(child, plain=True))
            if term:
                out.append(SIGNATURE + code_span(term) if api else f"**{term}**")
        elif child.tag == "dd":
            out.extend(blocks(child))
    return out


def admonition(node: Node) -> list[str]:
    parts: list[str] = []
    for child in node.children:
        if isinstance(child, Node) and "admonition-title" in child.classes:
            title = squash(inline(child, plain=True))
            parts.append(f"**{title}**")
        else:
            parts.extend(blocks(Node("div", children=[child])))
    text = "\n\n".join(parts)
    return ["\n".join(f"> {line}" if line else ">" for line in text.split("\n"))] if parts else []


def block(node: Node) -> list[str]:
    tag = node.tag
    if tag in SKIP_TAGS or tag in ("hr", "header", "footer"):
        return []
    if re.fullmatch(r"h[1-6]", tag):
        title = squash(inline(node, plain=True))
        return [f"{'#' * int(tag[1])} {title}"] if title else []
    if tag == "pre":
        return [code_block(node, "")]
    if tag == "div" and (match := HIGHLIGHT_LANG.search(node.attrs.get("class", ""))):
        lang = LANG_NAMES.get(match.group(1), match.group(1))
        pres = [c for c in iter_nodes(node) if c.tag == "pre"]
        return [code_block(pre, lang) for pre in pres]
    if tag in ("ul", "ol"):
        return list_block(node)
    if tag == "dl":
        return definition_list(node)
    if tag == "table":
        return table(node)
    if "admonition" in node.classes:
        return admonition(node)
    return blocks(node)


def iter_nodes(node: Node) -> list[Node]:
    found: list[Node] = []
    for child in node.children:
        if isinstance(child, Node):
            found.append(child)
            found.extend(iter_nodes(child))
    return found


def blocks(node: Node) -> list[str]:
    """Markdown blocks of a container: runs of inline content become paragraphs, block children recurse."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        text = squash("".join(run))
        if text:
            out.append(text)
        run.clear()

    for child in node.children:
        if is_inline(child) and not (isinstance(child, Node) and has_block(child)):
            run.append(inline(child))
        else:
            flush()
            assert isinstance(child, Node)
            out.extend(block(child))
    flush()
    return out


def has_block(node: Node) -> bool:
    return any(isinstance(c, Node) and (not is_inline(c) or has_block(c)) for c in node.children)


def convert(html: str) -> list[str]:
    """The Markdown blocks of one Sphinx page body."""
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    body = find_body(builder.root)
    if body is None:
        raise ValueError("no <div class='body' role='main'> in page")
    return [b for b in blocks(body) if b.strip()]


def cut(parts: list[str], budget: int) -> int:
    """Length of the longest prefix that fits in ``budget`` bytes and ends just before a heading or an API entry."""
    if size(parts) <= budget:
        return len(parts)
    best = 0
    for i, part in enumerate(parts):
        if i and part.startswith(("#", SIGNATURE)) and size(parts[:i]) <= budget:
            best = i
    if not best:
        raise ValueError("no heading or API entry leaves the page within budget")
    return best


def size(parts: list[str]) -> int:
    return len("\n\n".join(parts).encode("utf-8")) + 1


def render(page: Page, html_root: Path) -> tuple[str, str | None]:
    """The corpus file's text and, for a cut page, the first block left out."""
    parts = convert((html_root / page.html).read_text(encoding="utf-8"))
    footer_room = 400
    keep = cut(parts, page.budget - footer_room)
    kept = [part.replace(SIGNATURE, "") for part in parts[:keep]]
    dropped = parts[keep].replace(SIGNATURE, "").split("\n")[0] if keep < len(parts) else None
    note = (
        f"Source: Python 3.11.2 documentation, {page.html} (Debian python3-doc 3.11.2-1);"
        " PSF License, see LICENSE-PSF.txt."
    )
    if dropped is not None:
        note += " This file keeps only the first sections of the page; the rest of the page was cut."
    return "\n\n".join([*kept, "---", f"*{note}*"]) + "\n", dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("html_root", type=Path, help="root of the Python HTML docs, e.g. /usr/share/doc/python3/html")
    parser.add_argument("out_dir", type=Path, help="where the <stem>.md files go")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    for page in PAGES:
        text, dropped = render(page, args.html_root)
        data = text.encode("utf-8")
        if len(data) > MAX_FILE_BYTES:
            raise SystemExit(f"{page.stem}: {len(data)} bytes > {MAX_FILE_BYTES}")
        (args.out_dir / f"{page.stem}.md").write_bytes(data)
        total += len(data)
        print(f"{page.stem:16} {len(data):6d} B  {'whole page' if dropped is None else 'cut before: ' + dropped}")
    print(f"{len(PAGES)} files, {total} B in all")
    if total > MAX_TOTAL_BYTES:
        print(f"total exceeds {MAX_TOTAL_BYTES} B", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
