"""The extract stage's shortcuts give what the long way gives: the nesting-depth bound never undercounts, the
class-word scan never drops a selector that matches, a container renders alone as its re-parsed HTML does
and the page is put back as it was."""

from __future__ import annotations

import random

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
