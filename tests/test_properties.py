"""Properties of every stage, on arbitrary Unicode text, arbitrary bytes and seed-like text built from
real kinds of lines (body prose, site chrome, spinner damage, mojibake):

- no exception escapes a stage (it rejects the document instead);
- a stage is idempotent: cleaning a cleaned document changes nothing more;
- nothing vanishes without a record: every non-blank line of the normalized input is in the output or in
  ``removed``;
- repairs change the number of words only as recorded, and their offsets point at what they replaced.

The default suite runs a few dozen examples per property (fast); the ``slow`` marker runs many more.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from docclean import boilerplate, extract, language, normalize, pipeline, read, repair
from docclean.config import Config
from docclean.document import Document, Removal

CONFIG = Config()
FEW = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
MANY = settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
NB = "\u00a0"

BODY = [
    "Hundreds of fishing boats blocked the harbour of Brest on Wednesday in protest against new catch quotas.",
    "The quotas, agreed in Brussels last month, cut the allowed catch of sole and hake by up to 40%.",
    "\u201cWe are the first to want fish in the sea tomorrow,\u201d said Yann Le Goff, who has fished for 31 years.",
    "The regional government has promised an emergency fund of 15 million euros to help the fleet.",
    "In Li\u00e8ge, the steelworks that once lit up the valley at night have almost all gone quiet.",
    "Some of the land is polluted deep into the ground, and cleaning it up will cost a great deal.",
    "Die Stadt Freiburg hat am Montag einen neuen Radweg entlang der Dreisam er\u00f6ffnet.",
    "The council said it would publish the full report \u2013 all 212 pages of it \u2013 before the vote.",
    "What comes next",
]
CHROME = [
    "ADVERTISEMENT", "Advertisement", f"Sponsor:{NB} QWIKET{NB}", "back", "topic", f"Apr 10, 2025 {NB}|{NB}",
    "CoastalWire.com - News From Every Shore", "THE MORNING HERALD ONLINE", "Images Le Soir.be",
    "All rights reserved. Copyright Agence France-Presse.", "Share on Facebook", "Sign up for our newsletter",
    "You have 71.40% of this article left to read. The rest is for subscribers only.",
    "Storm season starts early in the North Atlantic", "Oyster farmers count the cost of a warm winter",
    "We use cookies to improve your experience. Accept all cookies", "0", "| Bend,OR",
]
SPUN = [
    "The club intconcludes to rebuild its west stand before the new season, the secretary said on Monday.",
    "The hugegest obstacle is the planning permission, which the council is expected to grant in March.",
    "Supporters stressed the necessary for clear communication about temporary seating at the ground.",
    "\u201cIt doesn\u2019t build sense to rush this,\u201d she said, adding that ininformigent planning would help.",
]
DAMAGED = ["Caf\u00c3\u00a9 owners say the \u00e2\u20ac\u0153new\u00e2\u20ac\x9d rules hurt", "Fish &amp; chips &eacute;t&eacute;",
           "zero\u200bwidth\u00adsoft spaces\u3000here", "tab\tand   runs   of spaces  ", "\x1b[31mred\x1b[0m terminal"]

lines_of_text = st.lists(
    st.one_of(st.sampled_from(BODY), st.sampled_from(CHROME), st.sampled_from(SPUN), st.sampled_from(DAMAGED),
              st.just(""), st.text(max_size=80)),
    max_size=30,
)
seed_like_text = lines_of_text.map("\n".join)
any_text = st.one_of(st.text(max_size=2000), seed_like_text)


def text_doc(text: str) -> Document:
    return Document(doc_id="d" * 20, source_path="p.txt", source_sha256="0" * 64, text=text, content_type="text")


def html_doc(html: str) -> Document:
    return Document(doc_id="d" * 20, source_path="p.html", source_sha256="0" * 64, html=html, content_type="html")


def both(strategy, check):
    """The same property with a few examples (default suite) and with many (slow)."""
    fast = FEW(given(strategy)(check))
    many = pytest.mark.slow(MANY(given(strategy)(check)))
    return fast, many


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _squash(text: str) -> str:
    return " ".join(text.split())  # stages may collapse runs of (odd) spaces: compare words, not spacing


def _accounted(line: str, text: str, removed: tuple[Removal, ...]) -> bool:
    line = _squash(line)
    return line in _squash(text) or any(line in _squash(r.text) for r in removed)


# --------------------------------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------------------------------


def check_normalize(text: str) -> None:
    once, edits = normalize.normalize(text_doc(text), CONFIG.normalize)
    assert not once.rejected
    twice, more = normalize.normalize(once, CONFIG.normalize)
    assert twice.text == once.text and more == []
    as_html, _ = normalize.normalize(html_doc(text), CONFIG.normalize)
    assert normalize.normalize(as_html, CONFIG.normalize)[0].html == as_html.html


test_normalize_is_total_and_idempotent, test_normalize_is_total_and_idempotent_many = both(any_text, check_normalize)


# --------------------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------------------

tag = st.sampled_from(["p", "div", "article", "nav", "footer", "aside", "span", "b", "h1", "script", "style",
                       "table", "td", "li", "ul", "main", "header", "iframe", "noscript", "svg", "title", "body"])
tag_soup = st.lists(
    st.one_of(tag.map(lambda t: f"<{t}>"), tag.map(lambda t: f"</{t}>"), st.sampled_from(BODY + CHROME),
              st.text(max_size=40), st.sampled_from(["<!--", "-->", "<![CDATA[", "&amp;", "&#0;", "&#x110000;",
                                                      "<p class='share'>", "<div class='paywall'>", "<br/>",
                                                      "<meta charset='utf-16'>", "<html>", "<head>"])),
    max_size=60,
).map("".join)


def check_extract_total(html: str) -> None:
    doc, edits = extract.extract(html_doc(html), CONFIG.extract)
    assert doc.html is None  # every page ends as text or as a reject, never half-extracted
    assert doc.rejected or doc.text.strip()
    if doc.rejected:
        assert doc.reject_reason in {"no_main_content", "unparsable_html"}


test_extract_is_total, test_extract_is_total_many = both(st.one_of(st.text(max_size=2000), tag_soup),
                                                          check_extract_total)

paragraph_lists = st.lists(st.sampled_from(BODY + CHROME + SPUN), min_size=1, max_size=12)


def check_extract_accounts_for_paragraphs(paragraphs: list[str]) -> None:
    html = ("<html><head><title>T</title></head><body><nav>Home | World</nav><article>"
            + "".join(f"<p>{p}</p>" for p in paragraphs) + "</article><footer>Contact us</footer></body></html>")
    doc, _ = extract.extract(html_doc(html), CONFIG.extract)
    if doc.rejected:
        return
    for p in paragraphs:
        assert _accounted(p.strip(), doc.text, doc.removed), p


test_extract_records_every_paragraph_it_leaves_out, test_extract_records_every_paragraph_it_leaves_out_many = both(
    paragraph_lists, check_extract_accounts_for_paragraphs)


# --------------------------------------------------------------------------------------------------
# boilerplate
# --------------------------------------------------------------------------------------------------


def _normalized(text: str) -> Document:
    return normalize.normalize(text_doc(text), CONFIG.normalize)[0]


def check_boilerplate_total_and_accounted(text: str) -> None:
    doc = _normalized(text)
    out, edits = boilerplate.strip_boilerplate(doc, CONFIG.boilerplate)
    assert not out.rejected, out.reject_detail
    assert all(isinstance(e, Removal) and e.rule and re.fullmatch(r"[a-z0-9_]+", e.rule) for e in edits)
    for line in _lines(doc.text):
        assert _accounted(line, out.text, out.removed), line


test_boilerplate_records_every_line_it_removes, test_boilerplate_records_every_line_it_removes_many = both(
    any_text, check_boilerplate_total_and_accounted)


# Fixed: joins across a removed line, and a masthead under an ad marker, made a second pass differ.
JOINED_ACROSS_A_REMOVAL = "What comes next\nADVERTISEMENT\nThe council said it would publish the report"
# Still open: a known counterexample, run first every time, so the strict xfail below is deterministic.
_BODY = "Hundreds of fishing boats blocked the harbour of Brest on Wednesday in protest against new catch quotas."
CHROME_AMID_BODY = "\n".join([
    "Storm season starts early in the North Atlantic", "CafÃ© owners say the â€œnewâ€\x9d rules hurt",
    "CafÃ© owners say the â€œnewâ€\x9d rules hurt", _BODY,
    "The quotas, agreed in Brussels last month, cut the allowed catch of sole and hake by up to 40%.",
    "“We are the first to want fish in the sea tomorrow,” said Yann Le Goff, who has fished for 31 years.",
    "ADVERTISEMENT",
    "The club intconcludes to rebuild its west stand before the new season, the secretary said on Monday.",
    "In Liège, the steelworks that once lit up the valley at night have almost all gone quiet.",
])
CONTEXT_XFAIL = pytest.mark.xfail(strict=True, reason=(
    "boilerplate: the context classifier scores a line with its neighbours; a site header in the middle of "
    "the body is kept while an ADVERTISEMENT line removed by a pattern sits beside it, and removed on a "
    "second pass once that neighbour is gone. Score neighbours as they will be after pattern removals."))


def check_boilerplate_idempotent(text: str) -> None:
    once, _ = boilerplate.strip_boilerplate(_normalized(text), CONFIG.boilerplate)
    twice, more = boilerplate.strip_boilerplate(once, CONFIG.boilerplate)
    assert (twice.text, [e.text for e in more]) == (once.text, [])


test_boilerplate_is_idempotent, test_boilerplate_is_idempotent_many = (CONTEXT_XFAIL(t) for t in both(
    seed_like_text, example(CHROME_AMID_BODY)(example(JOINED_ACROSS_A_REMOVAL)(check_boilerplate_idempotent))))


# --------------------------------------------------------------------------------------------------
# repair
# --------------------------------------------------------------------------------------------------

MODEL = None


def _model():
    global MODEL
    if MODEL is None:
        MODEL = repair.RepairModel.load()
    return MODEL


def check_repair(text: str) -> None:
    doc = text_doc(text)
    out, edits = repair.repair(doc, CONFIG.repair, _model())
    # offsets point at what was replaced, and the recorded repairs alone turn the input into the output
    rebuilt, pos = [], 0
    for r in sorted(edits, key=lambda r: r.offset):
        assert text[r.offset: r.offset + len(r.original)] == r.original
        rebuilt += [text[pos: r.offset], r.replacement]
        pos = r.offset + len(r.original)
    assert "".join(rebuilt) + text[pos:] == out.text
    # words change in number only as recorded
    delta = sum(len(r.replacement.split()) - len(r.original.split()) for r in edits)
    assert len(out.text.split()) == len(text.split()) + delta
    again, more = repair.repair(out, CONFIG.repair, _model())
    assert again.text == out.text and more == []


test_repair_is_accounted_and_idempotent, test_repair_is_accounted_and_idempotent_many = both(any_text, check_repair)


def test_the_spun_sentences_do_get_repaired():
    # guards the property above against testing nothing
    out, edits = repair.repair(text_doc("\n".join(SPUN)), CONFIG.repair, _model())
    assert len(edits) >= 4


# --------------------------------------------------------------------------------------------------
# language
# --------------------------------------------------------------------------------------------------


def check_language(text: str) -> None:
    out, _ = language.detect(text_doc(text), CONFIG.language)
    assert re.fullmatch(r"[a-z]{2,3}", out.language) and 0.0 <= out.language_score <= 1.0
    again, _ = language.detect(out, CONFIG.language)
    assert (again.language, again.language_score) == (out.language, out.language_score)


test_language_is_total_and_deterministic, test_language_is_total_and_deterministic_many = both(any_text, check_language)


# --------------------------------------------------------------------------------------------------
# read
# --------------------------------------------------------------------------------------------------

NAMES = ["a.txt", "a.html", "a.jsonl", "a.txt.gz", "a.jsonl.gz", "a.warc", "a.warc.gz", "a.md", "noext"]


def _read(tmp: Path, name: str, data: bytes) -> list[Document]:
    root = tmp / "raw"
    if root.exists():
        for p in root.iterdir():
            p.unlink()
    root.mkdir(exist_ok=True)
    (root / name).write_bytes(data)
    sources = read.discover(root, CONFIG.read)
    return [d for s in sources for d in read.read_source(root, s, CONFIG.read)]


def check_read_bytes(tmp: Path, name: str, data: bytes) -> None:
    docs = _read(tmp, name, data)
    assert docs, "a regular file is at least one document or one reject"
    for doc in docs:
        assert doc.source_path == name or doc.source_path.startswith(name + "#")
        assert re.fullmatch(r"[0-9a-f]{64}", doc.source_sha256)
        if doc.rejected:
            assert re.fullmatch(r"[a-z0-9_]+", doc.reject_reason) and doc.reject_reason != "read_error", doc.reject_detail
        else:
            assert (doc.html if doc.content_type == "html" else doc.text).strip()


payloads = st.one_of(st.binary(max_size=4096), any_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                     any_text.map(lambda t: gzip.compress(t.encode("utf-8", "surrogatepass"))))


@FEW
@given(name=st.sampled_from(NAMES), data=payloads)
def test_read_never_raises_on_arbitrary_bytes(tmp_path_factory, name, data):
    check_read_bytes(tmp_path_factory.mktemp("read"), name, data)


@pytest.mark.slow
@MANY
@given(name=st.sampled_from(NAMES), data=payloads)
def test_read_never_raises_on_arbitrary_bytes_many(tmp_path_factory, name, data):
    check_read_bytes(tmp_path_factory.mktemp("read"), name, data)


@FEW
@given(text=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=500).filter(str.strip))
def test_read_gives_back_valid_utf8_text_unchanged(tmp_path_factory, text):
    docs = _read(tmp_path_factory.mktemp("read"), "a.txt", text.encode())
    assert len(docs) == 1
    doc = docs[0]
    if not doc.rejected and doc.content_type == "text":
        assert doc.text == text.removeprefix("\ufeff") and doc.encoding is None


# --------------------------------------------------------------------------------------------------
# the per-document chain
# --------------------------------------------------------------------------------------------------

STAGES = pipeline.Stages(CONFIG)


def check_chain_never_fails(text: str) -> None:
    for doc in (text_doc(text), html_doc(text)):
        out = pipeline.clean_document(doc, stages=STAGES)
        assert out.reject_reason not in {"stage_error", "boilerplate_error", "timeout"}, out.reject_detail


test_the_chain_never_fails_a_stage, test_the_chain_never_fails_a_stage_many = both(any_text, check_chain_never_fails)


def check_chain_idempotent(text: str) -> None:
    once = pipeline.clean_document(text_doc(text), stages=STAGES)
    if once.rejected:
        return
    twice = pipeline.clean_document(text_doc(once.text), stages=STAGES)
    assert not twice.rejected and twice.text == once.text


test_cleaning_a_cleaned_text_changes_nothing, test_cleaning_a_cleaned_text_changes_nothing_many = (
    CONTEXT_XFAIL(t) for t in both(
        seed_like_text, example(CHROME_AMID_BODY)(example(JOINED_ACROSS_A_REMOVAL)(check_chain_idempotent))))


unrepaired_text = st.lists(
    st.one_of(st.sampled_from(BODY), st.sampled_from(CHROME), st.sampled_from(DAMAGED), st.just(""),
              st.text(max_size=80)),
    max_size=30,
).map("\n".join)


def check_chain_accounts_for_every_line(text: str) -> None:
    doc = text_doc(text)
    out = pipeline.clean_document(doc, stages=STAGES)
    if out.repairs:
        return  # repaired words are accounted for by the repair property
    source = out.text if not out.rejected else ""
    for line in _lines(normalize.normalize(doc, CONFIG.normalize)[0].text):
        assert out.rejected or _accounted(line, source, out.removed), line


test_the_chain_records_every_line_it_removes, test_the_chain_records_every_line_it_removes_many = both(
    unrepaired_text, check_chain_accounts_for_every_line)
