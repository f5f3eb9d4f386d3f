"""The HTML extract stage on pages of our own writing (tests/fixtures/html): body kept, chrome removed under
the right rule names, metadata found, broken input rejected rather than raised."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from docclean.config import ExtractConfig
from docclean.document import Document, Removal
from docclean.extract import extract, parse_date

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "html"


def html_doc(html: str, **fields) -> Document:
    return Document(doc_id="t", source_path="t.html", source_sha256="", content_type="html", html=html, **fields)


def run(name_or_html: str, config: ExtractConfig | None = None, **fields):
    html = (FIXTURES / name_or_html).read_text(encoding="utf-8") if name_or_html.endswith(".html") else name_or_html
    return extract(html_doc(html, **fields), config or ExtractConfig())


def removed_by(edits, rule: str) -> list[str]:
    return [e.text for e in edits if isinstance(e, Removal) and e.rule == rule]


@pytest.fixture(scope="module")
def news():
    return run("news_article.html")


def test_news_body_paragraphs_subheading_and_list_items_survive_on_their_own_lines(news):
    doc, _ = news
    blocks = doc.text.split("\n\n")
    assert blocks[0].startswith("The harbour council voted on Thursday")
    assert "Work to start in the autumn" in blocks  # subheading kept as its own block
    assert "Two new berths able to take larger vessels" in blocks  # list item, bullet dropped
    assert blocks[-1].startswith("The mayor said the terminal")
    assert doc.html is None and doc.content_type == "html" and not doc.rejected


@pytest.mark.parametrize(
    "rule, snippet",
    [
        ("dom_cookie_banner", "We use cookies"),
        ("dom_share_widget", "Share on Facebook"),
        ("dom_ad_container", "Buy one ferry ticket"),
        ("dom_newsletter", "Get the Courier in your inbox"),
        ("dom_paywall", "Subscribe to keep reading"),
        ("dom_related_links", "Fish market traders fear"),
        ("dom_site_footer", "All rights reserved"),
        ("dom_site_header", "Sport"),
    ],
)
def test_news_chrome_goes_under_its_rule_name(news, rule, snippet):
    doc, edits = news
    assert snippet not in doc.text
    assert any(snippet in text for text in removed_by(edits, rule)), f"{snippet!r} not recorded under {rule}"


def test_removed_text_keeps_link_texts_apart(news):
    _, edits = news
    header = removed_by(edits, "dom_site_header")[0]
    assert "News Sport Opinion" in header


def test_edits_are_also_on_the_document_and_tagged_with_the_stage(news):
    doc, edits = news
    assert list(doc.removed) == edits
    assert all(e.stage == "extract" for e in edits)


def test_left_out_blocks_are_recorded_as_not_main_content(news):
    _, edits = news
    assert "Harbour council approves new ferry terminal" in removed_by(edits, "not_main_content")  # the <h1>


def test_the_byline_goes_under_its_rule_name_and_still_gives_the_author(news):
    doc, edits = news
    assert "By Maren Holt · 14 March 2025" in removed_by(edits, "dom_byline")
    assert doc.author == "Maren Holt"


def test_title_repeated_as_heading_is_not_in_the_body(news):
    doc, _ = news
    assert "Harbour council approves new ferry terminal" not in doc.text


def test_news_metadata_from_json_ld_and_meta_tags(news):
    doc, _ = news
    assert doc.title == "Harbour council approves new ferry terminal"
    assert doc.author == "Maren Holt"
    assert doc.publisher == "The Coastal Courier"
    assert doc.url == "https://www.coastalcourier.example/news/2025/03/14/ferry-terminal"  # canonical, not og:url
    assert doc.published == datetime(2025, 3, 14, 7, 30, tzinfo=timezone.utc)  # +01:00 turned into UTC


def test_paywall_box_marks_the_document_truncated(news):
    assert news[0].truncated


def test_fields_already_set_are_kept():
    doc, _ = run("news_article.html", url="https://mirror.example/ferry", title="Given title")
    assert doc.url == "https://mirror.example/ferry"
    assert doc.title == "Given title"


def test_page_without_body_container_uses_main_content_heuristics():
    doc, edits = run("blog_no_container.html")
    assert "The second lesson was about water." in doc.text
    assert "Finally, I learned that patience pays" in doc.text
    assert "Ten plants that survive neglect" not in doc.text
    assert any("Ten plants that survive neglect" in t for t in removed_by(edits, "dom_sidebar"))
    assert doc.title == "Five things I learned growing tomatoes on a balcony"
    assert doc.publisher == "Green Corner"
    assert doc.published == datetime(2024, 7, 2, tzinfo=timezone.utc)
    assert not doc.truncated


def test_text_documents_pass_through_unchanged():
    doc = Document(doc_id="t", source_path="t.txt", source_sha256="", text="Plain text.\nSecond line.")
    assert extract(doc, ExtractConfig()) == (doc, [])


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   ",
        "<html><head><title>Nothing here</title></head><body></body></html>",
        "<html><body><nav><a href='/'>Home</a></nav><div class='cookie-banner'>We use cookies.</div></body></html>",
        "\x00\x01\x02<<<>>>\x00",
    ],
)
def test_pages_without_main_content_are_rejected_not_raised(html):
    doc, _ = run(html)
    assert doc.rejected
    assert doc.reject_reason == "no_main_content"
    assert doc.html is None


@pytest.mark.parametrize(
    "html",
    [
        "<html><body><div><p>An unclosed paragraph about the city budget that goes on for a while.<div><p>More"
        " unclosed text about the budget, the schools and the roads, long enough to count as body",
        "<p>Stray </b></i></table> closing tags and a paragraph of text about river levels after the storm.</p>"
        "</html></html><p>Another paragraph after the end of the document, still about the river.</p>",
        "<html><body><p>" + "<span>" * 5000 + "Deeply nested text about the weather." + "</span>" * 10 + "</p>",
    ],
)
def test_broken_html_is_extracted_without_raising(html):
    doc, _ = run(html)
    assert not doc.rejected
    assert "river" in doc.text or "budget" in doc.text or "weather" in doc.text


def test_invalid_json_ld_is_ignored():
    html = (
        '<html><head><script type="application/ld+json">{"@type": "NewsArticle", "headline": </script>'
        "<title>Fallback title</title></head><body><article><p>" + "Body sentence about the harbour. " * 10
        + "</p></article></body></html>"
    )
    doc, _ = run(html)
    assert doc.title == "Fallback title"
    assert "Body sentence about the harbour." in doc.text


def test_a_wrapper_with_a_chrome_like_class_is_not_removed():
    paragraphs = "".join(f"<p>Paragraph {i} of the story, with enough words to be real body text here.</p>" for i in range(8))
    html = f'<html><body><div class="has-sidebar share-enabled"><article>{paragraphs}</article></div></body></html>'
    doc, _ = run(html)
    assert "Paragraph 7 of the story" in doc.text


def test_trafilatura_extractor_option():
    doc, edits = run("news_article.html", ExtractConfig(extractor="trafilatura"))
    assert "The harbour council voted on Thursday" in doc.text
    assert doc.title == "Harbour council approves new ferry terminal"


def test_preclean_can_be_switched_off():
    _, edits = run("news_article.html", ExtractConfig(preclean_dom=False))
    assert not [e for e in edits if e.rule.startswith("dom_")]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2025-03-14", datetime(2025, 3, 14, tzinfo=timezone.utc)),
        ("2025-03-14T23:30:00-02:00", datetime(2025, 3, 15, 1, 30, tzinfo=timezone.utc)),
        ("2025-03-14T08:00:00Z", datetime(2025, 3, 14, 8, tzinfo=timezone.utc)),
        ("2025/03/14 10:00", datetime(2025, 3, 14, tzinfo=timezone.utc)),
        ("March 14, 2025", datetime(2025, 3, 14, tzinfo=timezone.utc)),
        ("not a date", None),
        ("2025-13-45", None),
    ],
)
def test_parse_date(value, expected):
    assert parse_date(value) == expected


def test_left_out_audit_is_capped_with_a_summary_line():
    from docclean.extract import MAX_RECORDED_CHARS

    body = "".join(f"<p>Paragraph {i} of the report on the harbour works, long enough to be body text.</p>" for i in range(6))
    junk = "".join(f"<div><a href='/p{i}'>Unrelated teaser number {i} about something else</a></div>" for i in range(2000))
    doc, edits = run(f"<html><body><article>{body}</article>{junk}</body></html>")
    left_out = removed_by(edits, "not_main_content")
    assert "Paragraph 5 of the report" in doc.text
    assert sum(len(t) for t in left_out[:-1]) <= MAX_RECORDED_CHARS
    assert "more characters left out, not recorded" in left_out[-1]


def test_pipeline_timeout_is_not_swallowed(monkeypatch):
    import docclean.extract as extract_module

    class DocumentTimeout(Exception):
        pass

    def too_slow(html):
        raise DocumentTimeout()

    monkeypatch.setattr(extract_module.HTMLTree, "parse", too_slow)
    with pytest.raises(DocumentTimeout):
        run("<html><body><p>text</p></body></html>")


def test_a_feed_of_article_boxes_is_not_taken_for_the_body():
    doc, _ = run("product_with_reviews.html")
    assert "keeps your feet dry on wet mountain paths" in doc.text
    assert "deep lugs for mud and loose gravel" in doc.text
    assert doc.publisher == "Peak Outfitters"


def test_date_search_finds_an_undeclared_date_only_when_asked():
    html = (
        "<html><head><title>Council budget</title></head><body><article>"
        "<p class='meta'>Posted on 2024-05-17</p><p>" + "The council agreed its budget for the year. " * 8
        + "</p></article></body></html>"
    )
    assert run(html)[0].published is None  # off by default: htmldate costs time
    found, _ = run(html, ExtractConfig(date_search=True))
    assert found.published == datetime(2024, 5, 17, tzinfo=timezone.utc)


CHROME_IN_BODY = """<html><head><title>How we cut our build times in half</title></head><body>
<div class="entry-content">
<p>Our builds took forty minutes last spring, and the team had started to plan their days around them.</p>
<div class="wp-block-buttons"><div class="wp-block-button"><a class="wp-block-button__link" href="/demo">Book a demo</a></div></div>
<p>We split the test suite by package, cached the dependencies and moved the slow checks to a nightly run.</p>
<p>Now a build takes eighteen minutes, and <a class="inline" href="/post">the cache write-up</a> has the details.</p>
<a class="btn btn-primary" href="/trial">Start your free trial</a>
<div id="newsletter-signup-box"><h3>Get our engineering notes every month</h3></div>
<div class="widget recent-posts"><h3>Recent posts</h3><a href="/a">Ten tips for faster tests</a></div>
<div class="product__add-to-cart"><span>Add to cart</span></div>
</div></body></html>"""


@pytest.mark.parametrize("rule, snippet", [
    ("dom_call_to_action", "Book a demo"),
    ("dom_call_to_action", "Start your free trial"),
    ("dom_call_to_action", "Add to cart"),
    ("dom_newsletter", "Get our engineering notes every month"),
    ("dom_related_links", "Ten tips for faster tests"),
])
def test_chrome_inside_the_body_container_goes_under_its_rule_name(rule, snippet):
    doc, edits = run(CHROME_IN_BODY)
    assert snippet not in doc.text
    assert any(snippet in text for text in removed_by(edits, rule))


def test_body_paragraphs_and_inline_links_around_body_chrome_stay():
    doc, _ = run(CHROME_IN_BODY)
    assert doc.text.split("\n\n") == [
        "Our builds took forty minutes last spring, and the team had started to plan their days around them.",
        "We split the test suite by package, cached the dependencies and moved the slow checks to a nightly run.",
        "Now a build takes eighteen minutes, and the cache write-up has the details.",
    ]
