"""The extract stage's shortcuts give what the long way gives: the nesting-depth bound never undercounts, the
class-word scan never drops a selector that matches, a container renders alone as its re-parsed HTML does
and the page is put back as it was."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

import docclean.extract as ex
from docclean.config import ExtractConfig
from docclean.document import Document

PIECES = ["<div>", "</div>", "<br>", "<BR/>", "<img src=a/>", "<p class='x'>", "</p>", "<", ">", "/", "a", " ",
          "<A HREF=x/>", "</x>", "<a-b>", "<div/ >", '<span data-x="1/">', "</", "</a", "<a title='<b'>",
          "<path d='M0 0'/>", "<path>", "</path>", "<br-x>", "<g/>", "<svg>", "<input>", "<linear>"]


def test_nesting_depth_bound_is_never_below_the_depth():
    rng = random.Random(11)
    cases = ["", "<div>" * 40, "<path/>" * 50 + "<div>" * 3, "<img>" * 30]
    cases += ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 60))) for _ in range(3000)]
    for html in cases:
        assert ex.nesting_depth_bound(html) >= ex.nesting_depth(html, 10**9), html


def test_nesting_depth_bound_is_tight_on_an_ordinary_page():
    row = "<tr><td><a href='/x'>item</a><br><img src='i.png'/><svg><path d='M0 0'/></svg></td></tr>"
    html = "<html><body><div><table>" + row * 3000 + "</table></div></body></html>"
    assert ex.nesting_depth_bound(html) == ex.nesting_depth(html) == 7


def test_a_page_nested_too_deep_is_still_rejected():
    deep = "<div>" * (ex.MAX_DEPTH + 10) + "text" + "</div>" * (ex.MAX_DEPTH + 10)
    html = "<html><body>" + "<p>line<br>" * 3000 + deep + "</body></html>"  # enough tags to pass the cheap gate
    doc = Document(doc_id="d", source_path="d.html", source_sha256="", content_type="html", html=html)
    out, _ = ex.extract(doc, ExtractConfig())
    assert out.rejected and out.reject_reason == "html_too_deep"


CLASSY_PAGE = """<html><head><title>t</title></head><body>
<div CLASS="Share-Buttons">Share this</div>
<div class = 'site-menu  cookie-banner'>Accept cookies</div>
<div class=ad>Buy now</div>
<section class="x related-posts y">Related</section>
<div id="comments" class="comments">Comments</div>
<div Class="Paywall">Subscribe</div>
<article class="entry-content"><p>Body text.</p></article>
</body></html>"""


@pytest.mark.parametrize("html", [CLASSY_PAGE, CLASSY_PAGE.replace("CLASS=", "class=")])
def test_class_word_scan_keeps_every_selector_that_matches(html):
    attributes = ex.PageAttributes(html)
    tree = HTMLTree.parse(html)
    all_selectors = [s for group in ex.DOM_RULES.values() for s in group] + [s for g in ex.BODY_CONTAINERS for s in g]
    for selector in all_selectors:
        if tree.body.query_selector(selector) is not None:
            assert attributes.selector((selector,)) == selector, selector


def test_class_word_scan_leaves_out_selectors_that_cannot_match():
    attributes = ex.PageAttributes("<html><body><div class='story'><p>Text</p></div></body></html>")
    assert attributes.selector(("[class*=share-buttons]", "[class~=ad]")) is None
    assert attributes.selector(("[class*=tor]", "nav")) == "[class*=tor], nav"  # part of a word; no class test
    assert "dom_share_widget" in attributes.rules()  # [id^=share] is still asked: ids are not scanned


def test_preclean_with_the_scan_removes_what_it_removes_without():
    def removals(use_scan: bool):
        tree = HTMLTree.parse(CLASSY_PAGE)
        found = ex.preclean(tree, ex.PageAttributes(CLASSY_PAGE) if use_scan else None)
        return [(r.rule, r.text) for r in found], tree.document.html

    assert removals(True) == removals(False)
    assert ("dom_cookie_banner", "Accept cookies") in removals(True)[0]


CONTAINER_PAGE = """<html><head><title>t</title></head><body>
<header><nav><a href='/'>Home</a></nav></header>
<div class="wrap">Before <span>the body</span>
  <table><tr><td class="cell"><p>In a table cell.</p><ul><li>first</li><li>second</li></ul></td></tr></table>
  <div class="article-body"><h2>Heading</h2><p>One paragraph with <a href='#'>a link</a>.</p><p>Two</p></div>
  after text
</div>
<footer>Footer</footer></body></html>"""


@pytest.mark.parametrize("selector", [".article-body", ".cell", ".wrap", "header", "footer"])
def test_a_container_renders_alone_as_its_reparsed_html_and_the_page_is_put_back(selector):
    tree = HTMLTree.parse(CONTAINER_PAGE)
    page_before = tree.document.html
    element = tree.body.query_selector(selector)
    reparsed = extract_plain_text(HTMLTree.parse(element.html), main_content=False, alt_texts=False,
                                  comments=False, form_fields=False)
    assert ex.text_blocks(ex._plain_text_alone(tree, element)) == ex.text_blocks(reparsed)
    assert tree.document.html == page_before


def _random_page(rng: random.Random) -> str:
    """Nested boxes whose class and id values mix the rules' words (in several cases and forms) with others."""
    words = ["related", "related-posts", "Related", "share", "Share-bar", "share-buttons", "signup", "signup-form",
             "subscribe", "subscriber-only", "footer", "footer-links", "site-footer", "ad", "ads", "advert-box",
             "cookie-banner", "COOKIE", "recommended", "recommend", "author-bio", "x-cta", "cta-box", "menu", "story",
             "entry-content", "article-body", "main", "nav", "sidebar", "comments", "paywall", "meter", "meters"]
    tags = ["div", "section", "aside", "footer", "header", "nav", "span", "p", "article", "form"]

    def box(depth: int) -> str:
        tag = rng.choice(tags)
        attrs = ""
        if rng.random() < 0.7:
            attrs += f' class="{" ".join(rng.sample(words, rng.randint(1, 3)))}"'
        if rng.random() < 0.2:
            attrs += f' id="{rng.choice(words)}"'
        inner = "".join(box(depth + 1) for _ in range(rng.randint(0, 3))) if depth < 4 else ""
        return f"<{tag}{attrs}>{rng.choice(words)} text {inner}</{tag}>"

    attribute = rng.choice(["class", "CLASS", "Class"])
    body = "".join(box(0) for _ in range(4)).replace(' class="', f' {attribute}="', rng.randint(0, 3))
    return f"<html><head><title>t</title></head><body>{body}</body></html>"


def test_scan_and_pruned_query_remove_what_the_full_query_removes_on_random_pages():
    rng = random.Random(7)
    for _ in range(300):
        html = _random_page(rng)
        with_scan, without = HTMLTree.parse(html), HTMLTree.parse(html)
        assert ex.preclean(with_scan, ex.PageAttributes(html)) == ex.preclean(without), html
        assert with_scan.document.html == without.document.html, html


def test_scan_keeps_case_where_lexbor_does():
    attributes = ex.PageAttributes("<html><body><div class='share-tools Related'>x</div></body></html>")
    assert attributes.selector(("[class*=Share]",)) is None  # lexbor compares class values case-sensitively
    assert attributes.selector(("[class*=Related]", "[class*=related]")) == "[class*=Related]"
    folded = ex.PageAttributes("<html><body><div CLASS='Share-Tools'>x</div></body></html>")
    assert folded.selector(("[class*=Share]", "[class*=share-tools]")) == "[class*=Share], [class*=share-tools]"


def test_a_word_start_is_told_from_a_word_part():
    attributes = ex.PageAttributes("<html><body><div class='x-footer sidebar-left'>x</div></body></html>")
    assert attributes.selector(("[class^=footer]", "[class*=footer]", "[class^=sidebar]")) == \
        "[class*=footer], [class^=sidebar]"


@pytest.mark.parametrize("narrow, wide", [
    ("[class*=related-posts]", "[class*=related]"), ("[class^=related]", "[class*=related]"),
    ("[class~=recommended]", "[class*=recommend]"), ("body > footer", "footer"), ("footer[class*=site]", "footer"),
    ("[class^=advert-x]", "[class^=advert]"), ('[class*="share-bar"]', "[class*=share]"),
])
def test_a_selector_that_finds_all_another_finds_is_wider(narrow, wide):
    assert ex._wider(narrow, wide) and not ex._wider(wide, narrow)


@pytest.mark.parametrize("a, b", [
    ("[class*=related]", "[class^=related]"), ("[id*=share]", "[class*=share]"), ("footer", "body > footer"),
    ("[class*=share]", "[class*=share]"), ("[class~=share]", "[class*=share-x]"), ("#share", "[id*=share]"),
    ("[class*=share i]", "[class*=share]"),
])
def test_selectors_neither_wider_nor_the_same_are_kept_apart(a, b):
    assert not ex._wider(a, b)


CONTAINER_CONTEXTS = [
    "{c}",
    "<div><section>{c}</section></div>",
    "<ul><li>{c}</li></ul>",
    "<ol><li>one</li><li>{c}</li></ol>",
    "<pre>pre text {c}</pre>",
    "<aside>{c}</aside>",
    "<noscript>{c}</noscript>",
    "<table><tr><td>{c}</td></tr></table>",
    "<span>inline {c} more</span>",
    "<a href='/x'>{c}</a>",
    "Loose text {c} after",
    "<div><ul><li>Before</li><li> </li></ul>{c}<ul><li></li><li> </li><li>Tips</li></ul></div>",
    "<ol><li></li></ol>{c}<ol><li> </li></ol>",
]
CONTAINER = ("<div class='entry-content'><h2>Heading</h2><p>One paragraph with <a href='#'>a link</a> that runs on "
             "long enough to count as the body of this page, and a little more text. A second sentence makes sure "
             "the container holds more than the two hundred characters a body container needs.</p><ul><li>first</li>"
             "<li>second</li></ul><p>Two {extra}</p></div>")


@pytest.mark.parametrize("context", CONTAINER_CONTEXTS)
@pytest.mark.parametrize("extra", ["", "docclean-container-mark-2f9c1e7a-start", "docclean-container-mark-2f9c1e7a-"])
def test_a_container_rendered_within_the_page_gives_the_blocks_of_the_long_way(context, extra):
    html = ("<html><head><title>t</title></head><body><header>Site</header><p>Intro</p>"
            + context.format(c=CONTAINER.format(extra=extra)) + "<footer>Footer</footer></body></html>")
    tree = HTMLTree.parse(html)
    page_before = tree.document.html
    containers = ex.BodyContainers(tree)
    page_blocks = containers.render_page()
    assert tree.document.html == page_before
    assert page_blocks == ex.text_blocks(ex._plain_text(tree))
    best = containers.first_candidate()
    assert best is not None
    assert containers.blocks(best) == ex.text_blocks(ex._plain_text_alone(tree, best))
    assert tree.document.html == page_before


def test_a_container_among_plain_blocks_is_rendered_once_within_the_page(monkeypatch):
    html = ("<html><body><p>Intro</p><div><section>" + CONTAINER.format(extra="") + "</section></div></body></html>")
    tree = HTMLTree.parse(html)
    containers = ex.BodyContainers(tree)
    containers.render_page()
    best = containers.first_candidate()
    calls = []
    monkeypatch.setattr(ex, "_plain_text_alone", lambda *args: calls.append(args))
    blocks = containers.blocks(best)
    assert not calls and blocks[0] == "Heading" and blocks[-1] == "Two"


CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "extraction-dev"


@pytest.mark.slow
def test_shortcuts_give_the_long_way_on_real_pages():
    """On real pages: the class-word scan and the pruned query remove what the full rule list removes, and the
    container read off the page's rendering equals the container rendered alone."""
    if not (CORPUS / "html").is_dir():
        pytest.skip(f"{CORPUS} is not here")
    for path in sorted((CORPUS / "html").glob("*.html.gz")):
        html = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        scanned, full = HTMLTree.parse(html), HTMLTree.parse(html)
        if scanned.body is None:
            continue
        attributes = ex.PageAttributes(html)
        assert ex.preclean(scanned, attributes) == ex.preclean(full), path.name
        assert scanned.document.html == full.document.html, path.name
        containers = ex.BodyContainers(scanned, attributes)
        assert containers.render_page() == ex.text_blocks(ex._plain_text(scanned)), path.name
        best = containers.first_candidate() if containers.found else None
        if best is not None:
            assert containers.blocks(best) == ex.text_blocks(ex._plain_text_alone(scanned, best)), path.name
