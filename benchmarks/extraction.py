"""Extraction benchmark: docclean's cleaned text vs trafilatura's, against extraction-dev's ground truth.

    .venv/bin/python -m benchmarks.extraction [--limit N] [--split train|test|all] [--mode html|text|both]
                                              [--page-type T] [--by-type] [--metadata]

Two inputs per page: the HTML itself, and its plain-text rendering with all the chrome still in it
(``benchmarks.corpus.render_plain_text``, one visible text node per line). docclean runs its real
per-document chain (``docclean.pipeline.clean_document`` when it exists, else the extract and boilerplate
stages); trafilatura runs with default settings on the HTML, and on the text lines wrapped as <p> paragraphs.
Prints 4-word-shingle precision/recall/F1, must-have / must-not-have snippet hit rates, pages/s, and the
ratio of the two speeds, overall and by page type.
"""

from __future__ import annotations

import argparse
import html as html_lib
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import trafilatura

from benchmarks.corpus import Page, load_pages, prf, render_plain_text, snippet_hits, split, summarize
from docclean.config import Config, load_config
from docclean.document import Document

try:  # the lead's full per-document chain, once it exists
    from docclean.pipeline import Stages, clean_document
except ImportError:  # pragma: no cover - depends on the state of the repo
    clean_document = Stages = None


def decode_html(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(raw).best()
        return str(best) if best is not None else raw.decode("utf-8", errors="replace")


def _stage_chain(doc: Document, config: Config) -> Document:
    """Fallback chain while docclean.pipeline is missing: extract, then boilerplate if it exists."""
    from docclean.extract import extract

    doc, _ = extract(doc, config.extract)
    if doc.rejected:
        return doc
    try:
        from docclean.boilerplate import strip_boilerplate
    except ImportError:
        return doc
    doc, _ = strip_boilerplate(doc, config.boilerplate)
    return doc


def docclean_runner(config: Config) -> tuple[Callable[[Document], Document], object | None]:
    """The per-document chain, and the object that counts seconds per stage (None without a pipeline)."""
    if clean_document is not None:
        stages = Stages(config)
        return (lambda doc: clean_document(doc, config, stages=stages)), stages
    return (lambda doc: _stage_chain(doc, config)), None


def print_stage_seconds(mode: str, stages, pages: int, baseline: "Tally | None") -> None:
    """Milliseconds per page in each stage of the chain; on HTML also the extract stage's own speed, the
    figure to hold against trafilatura (which does only extraction)."""
    if stages is None or not getattr(stages, "stats", None) or not pages:
        return
    parts = ", ".join(f"{name} {1000 * s.seconds / pages:.1f}" for name, s in stages.stats.items())
    print(f"docclean ms/page by stage ({mode}; language not counted): {parts}")
    extract_stats = stages.stats.get("extract")
    if mode == "html" and extract_stats and extract_stats.seconds:
        own = pages / extract_stats.seconds
        line = f"docclean extract stage alone: {own:.1f} pages/s"
        if baseline is not None and baseline.pages_per_second:
            line += f", {own / baseline.pages_per_second:.2f}x trafilatura's"
        print(line)


def print_splits(mode: str, tallies: dict[str, "Tally"], pages: list[Page]) -> None:
    """F1 on the fixed train/test parts of the pages scored (the split by page id, see corpus.split)."""
    for part in ("train", "test"):
        ids = {p.id for p in split(pages, part)}
        cells = []
        for name, t in tallies.items():
            scores = [s for s, pid in zip(t.scores, t.page_ids) if pid in ids]
            cells.append(f"{name} F1 {summarize(scores)[2]:.3f}")
        print(f"{mode} split {part:<5} ({len(ids)} pages): " + ", ".join(cells))


def html_document(page: Page, html: str, raw: bytes) -> Document:
    return Document(doc_id=page.id, source_path=page.id, source_sha256="", raw=raw, content_type="html", html=html)


def text_document(page: Page, text: str) -> Document:
    return Document(doc_id=page.id, source_path=page.id, source_sha256="", content_type="text", text=text)


def lines_as_paragraphs(text: str) -> str:
    body = "".join(f"<p>{html_lib.escape(line)}</p>" for line in text.splitlines() if line.strip())
    return f"<html><head><title></title></head><body>{body}</body></html>"


@dataclass
class Tally:
    """Scores of one system on one input mode."""

    seconds: float = 0.0
    scores: list[tuple[float, float]] = field(default_factory=list)
    page_ids: list[str] = field(default_factory=list)
    by_type: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    with_found: int = 0
    with_total: int = 0
    without_found: int = 0
    without_total: int = 0
    rejected: int = 0

    def add(self, page: Page, text: str, seconds: float) -> None:
        self.seconds += seconds
        score = prf(text, page.body)
        self.scores.append(score)
        self.page_ids.append(page.id)
        self.by_type[page.page_type].append(score)
        w, wt, wo, wot = snippet_hits(text, page)
        self.with_found += w
        self.with_total += wt
        self.without_found += wo
        self.without_total += wot

    @property
    def pages_per_second(self) -> float:
        return len(self.scores) / self.seconds if self.seconds else 0.0


def run_system(name: str, fn: Callable[[], str], page: Page, tally: Tally) -> None:
    start = time.perf_counter()
    try:
        text = fn() or ""
    except Exception as exc:  # a crash scores as empty output, and is shown
        print(f"  ! {name} raised on page {page.id}: {type(exc).__name__}: {exc}")
        text = ""
    tally.add(page, text, time.perf_counter() - start)


def docclean_text(runner: Callable[[Document], Document], doc: Document, tally: Tally) -> str:
    out = runner(doc)
    if out.rejected:
        tally.rejected += 1
        return ""
    return out.text


def trafilatura_text(html: str) -> str:
    return trafilatura.extract(html) or ""


_WORDS = re.compile(r"\w+")


@dataclass
class MetadataTally:
    counts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, page: Page, doc: Document) -> None:
        if doc.rejected:
            return
        if page.title:
            self._count("title", _same_text(doc.title, page.title))
        if page.published:
            found = doc.published.date().isoformat() if doc.published else None
            self._count("published", found == page.published[:10])
        if page.author:
            self._count("author", _same_text(doc.author, page.author))

    def _count(self, key: str, ok: bool) -> None:
        self.counts[key][0] += int(ok)
        self.counts[key][1] += 1


def _same_text(found: str | None, truth: str) -> bool:
    """Same words (punctuation and case aside), or one contains the other ("Title" vs "Title | Site")."""
    if not found:
        return False
    a, b = (" ".join(w for w in _WORDS.findall(t.lower()) if w != "and") for t in (found, truth))  # "A, B and C"
    return bool(a) and (a == b or a in b or b in a)


def print_table(mode: str, tallies: dict[str, Tally], by_type: bool) -> None:
    print(f"\n== {mode.upper()} ==")
    print(f"{'system':<12} {'pages':>5} {'P':>6} {'R':>6} {'F1':>6} {'with%':>6} {'w/out%':>6} {'pages/s':>8} {'rejected':>8}")
    for name, t in tallies.items():
        p, r, f = summarize(t.scores)
        w = 100 * t.with_found / t.with_total if t.with_total else 0.0
        wo = 100 * t.without_found / t.without_total if t.without_total else 0.0
        print(f"{name:<12} {len(t.scores):>5} {p:>6.3f} {r:>6.3f} {f:>6.3f} {w:>6.1f} {wo:>6.1f} {t.pages_per_second:>8.1f} {t.rejected:>8}")
    names = list(tallies)
    if len(names) == 2 and tallies[names[1]].pages_per_second:
        ratio = tallies[names[0]].pages_per_second / tallies[names[1]].pages_per_second
        print(f"speed ratio {names[0]}/{names[1]}: {ratio:.2f}x")
    if by_type:
        types = sorted({t for tally in tallies.values() for t in tally.by_type})
        header = "  ".join(f"{n + ' F1':>14}" for n in names)
        print(f"{'page type':<14} {'pages':>5}  {header}")
        for page_type in types:
            cells = "  ".join(f"{summarize(tallies[n].by_type[page_type])[2]:>14.3f}" for n in names)
            print(f"{page_type:<14} {len(tallies[names[0]].by_type[page_type]):>5}  {cells}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N pages (after the split)")
    ap.add_argument("--split", choices=["train", "test", "all"], default="all")
    ap.add_argument("--mode", choices=["html", "text", "both"], default="both")
    ap.add_argument("--page-type", default=None)
    ap.add_argument("--no-by-type", dest="by_type", action="store_false", help="skip the per-page-type table")
    ap.add_argument("--no-trafilatura", dest="trafilatura", action="store_false", help="docclean only (faster)")
    args = ap.parse_args(argv)

    pages = split(load_pages(page_type=args.page_type), args.split)
    if args.limit:
        pages = pages[: args.limit]
    config = load_config()
    runners = {mode: docclean_runner(config) for mode in ("html", "text")}
    chain = "docclean.pipeline.clean_document" if clean_document is not None else "extract + boilerplate stages"
    print(f"{len(pages)} pages (split={args.split}, page type={args.page_type or 'all'}); docclean chain: {chain}")

    modes = ["html", "text"] if args.mode == "both" else [args.mode]
    systems = ["docclean"] + (["trafilatura"] if args.trafilatura else [])
    results = {m: {s: Tally() for s in systems} for m in modes}
    metadata = MetadataTally()
    for n, page in enumerate(pages, 1):
        if n % 100 == 0:
            print(f"  ... {n} pages", file=sys.stderr, flush=True)
        raw = page.html_bytes()
        html = decode_html(raw)
        if "html" in modes:
            tallies = results["html"]
            doc = html_document(page, html, raw)
            runner = runners["html"][0]
            start = time.perf_counter()
            try:
                out = runner(doc)
            except Exception as exc:
                print(f"  ! docclean raised on page {page.id}: {type(exc).__name__}: {exc}")
                out = doc.reject("exception", str(exc))
            elapsed = time.perf_counter() - start
            if out.rejected:
                tallies["docclean"].rejected += 1
            tallies["docclean"].add(page, "" if out.rejected else out.text, elapsed)
            metadata.add(page, out)
            if args.trafilatura:
                run_system("trafilatura", lambda: trafilatura_text(html), page, tallies["trafilatura"])
        if "text" in modes:
            tallies = results["text"]
            text = render_plain_text(raw)
            doc = text_document(page, text)
            runner = runners["text"][0]
            run_system("docclean", lambda: docclean_text(runner, doc, tallies["docclean"]), page, tallies["docclean"])
            if args.trafilatura:
                wrapped = lines_as_paragraphs(text)
                run_system("trafilatura", lambda: trafilatura_text(wrapped), page, tallies["trafilatura"])

    for mode in modes:
        print_table(mode, results[mode], args.by_type)
        print_stage_seconds(mode, runners[mode][1], len(pages), results[mode].get("trafilatura"))
        if args.split == "all":
            print_splits(mode, results[mode], pages)
    if "html" in modes:
        print("\n== METADATA (docclean, HTML, pages where the truth has the field) ==")
        for key, (ok, total) in metadata.counts.items():
            print(f"{key:<10} {ok:>4}/{total:<4} {100 * ok / total:5.1f}%")


if __name__ == "__main__":
    main()
