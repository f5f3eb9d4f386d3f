"""Shared helpers for the benchmarks: the extraction-dev corpus, its plain-text rendering, and the
4-word-shingle scorer. Nothing here is tuned on the corpus; it only reads it.

Scoring (as the issues define it): tokens are ``\\w+`` (lower-cased); each document's text becomes the
multiset of its 4-word shingles; precision = |pred & truth| / |pred|, recall = |pred & truth| / |truth|,
both averaged over documents; F1 is the harmonic mean of the two averages.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import lxml.html

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = Path(os.environ.get("DOCCLEAN_EXTRACTION_DEV", HERE.parent.parent / "shared" / "corpora" / "extraction-dev"))

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Page:
    id: str
    url: str
    page_type: str
    title: str
    author: str | None
    published: str | None
    body: str
    with_: tuple[str, ...]
    without: tuple[str, ...]
    html_path: Path

    def html_bytes(self) -> bytes:
        return gzip.decompress(self.html_path.read_bytes())


def load_pages(root: Path = DEFAULT_CORPUS, limit: int | None = None, page_type: str | None = None) -> list[Page]:
    pages = []
    with open(root / "truth.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if page_type and r["page_type"] != page_type:
                continue
            pages.append(
                Page(
                    id=r["id"], url=r["url"], page_type=r["page_type"], title=r.get("title") or "",
                    author=r.get("author"), published=r.get("published"), body=r.get("body") or "",
                    with_=tuple(r.get("with") or ()), without=tuple(r.get("without") or ()),
                    html_path=root / "html" / f"{r['id']}.html.gz",
                )
            )
            if limit and len(pages) >= limit:
                break
    return pages


def split(pages: list[Page], part: str) -> list[Page]:
    """A fixed split by page id (no tuning on test): ids ending in 0-6 are 'train', 7-9 'test'."""
    if part == "all":
        return pages
    train = [p for p in pages if int(p.id) % 10 < 7]
    test = [p for p in pages if int(p.id) % 10 >= 7]
    return train if part == "train" else test


_INVISIBLE = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object"}


def render_plain_text(html: bytes | str) -> str:
    """The page as a scraper that keeps all chrome would save it: script/style dropped, every visible
    text node on its own line, nothing else removed."""
    try:
        tree = lxml.html.fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return ""
    lines: list[str] = []

    def walk(el) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag.lower() in _INVISIBLE or not isinstance(el.tag, str):
            pass
        else:
            if el.text and el.text.strip():
                lines.append(" ".join(el.text.split()))
            for child in el:
                walk(child)
        if el.getparent() is not None and el.tail and el.tail.strip():
            lines.append(" ".join(el.tail.split()))

    walk(tree)
    return "\n".join(lines)


def shingles(text: str, n: int = 4) -> Counter:
    toks = _WORD.findall(text.lower())
    if len(toks) < n:
        return Counter([tuple(toks)]) if toks else Counter()
    return Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))


def prf(pred: str, truth: str) -> tuple[float, float]:
    p, t = shingles(pred), shingles(truth)
    if not t:
        return (1.0, 1.0) if not p else (0.0, 1.0)
    if not p:
        return 0.0, 0.0
    overlap = sum((p & t).values())
    return overlap / sum(p.values()), overlap / sum(t.values())


def summarize(scores: list[tuple[float, float]]) -> tuple[float, float, float]:
    if not scores:
        return 0.0, 0.0, 0.0
    p = sum(s[0] for s in scores) / len(scores)
    r = sum(s[1] for s in scores) / len(scores)
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def snippet_hits(pred: str, page: Page) -> tuple[int, int, int, int]:
    """(with found, with total, without found, without total), on whitespace-folded lower-case text."""
    norm = " ".join(pred.split()).lower()
    w = sum(1 for s in page.with_ if " ".join(s.split()).lower() in norm)
    wo = sum(1 for s in page.without if " ".join(s.split()).lower() in norm)
    return w, len(page.with_), wo, len(page.without)


def iter_pages(pages: list[Page]) -> Iterator[tuple[Page, bytes]]:
    for p in pages:
        yield p, p.html_bytes()
