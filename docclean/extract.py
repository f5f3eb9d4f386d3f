"""Extract stage: the main content of an HTML page as text, plus its title, date, author, site name and URL.

The design, chosen by measurement on extraction-dev (benchmarks/extraction.py; README has the figures):

1. Parse once with Resiliparse's lexbor DOM: several times faster than lxml + trafilatura, and bs4 would
   spend longer parsing a page than this whole stage takes, so bs4 is not used on this hot path.
2. Metadata from the parsed page: JSON-LD, OpenGraph / article / Dublin Core meta tags, <title>, <h1>,
   <link rel=canonical>, <time datetime>, byline elements; htmldate's quick search when no date is declared.
3. DOM pre-cleaning with named rules (``dom_ad_container``, ``dom_paywall``, ``dom_share_widget``...):
   each matched container is removed and its text recorded as a Removal under the rule's name. A paywall
   box marks the document ``truncated``. lexbor tests every alternative of a selector list on every element,
   so a scan of the raw markup for class words first drops the alternatives that cannot match, and those
   another alternative already covers (``[class*=related]`` covers ``[class*=related-posts]``).
4. Main content: when the page has one dominant article-body container (``itemprop=articleBody``,
   ``.entry-content``, <article>, <main>...) holding most of the prose, all of its pre-cleaned text
   (as if it were all the page had: read off the page's own rendering between two marker lines where only
   plain blocks surround it, else rendered alone with the rest of the body set aside for the moment);
   otherwise Resiliparse's main-content heuristics; when those look unsure (little text, or much prose
   left outside) trafilatura (fast mode, on the pre-cleaned page) decides instead.
5. Text rules on the blocks (the title repeated as a heading, bare ad markers); every visible block left
   out is recorded as ``not_main_content`` (up to MAX_RECORDED_CHARS per document), so the audit trail
   shows what went and why.
"""

from __future__ import annotations

import functools
import html as html_lib
import json
import re
from datetime import datetime, timezone
from itertools import accumulate
from operator import sub

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from .config import ExtractConfig
from .document import Document, Edit, Removal, StageResult

STAGE = "extract"

# Named DOM rules: CSS selectors (lexbor) of containers that are never main content. Order matters only
# for the rule name a container is recorded under when several match.
DOM_RULES: dict[str, tuple[str, ...]] = {
    "dom_cookie_banner": (
        "[id^=cookie]", "[class^=cookie]", "[class*=cookie-banner]", "[class*=cookie-notice]", "[class*=cookie-consent]",
        "[id*=cookie-banner]", "[id*=cookie-notice]", "[id*=cookie-consent]", "[id^=consent]", "[class^=consent]",
        "[id*=onetrust]", "[id^=gdpr]", "[class^=gdpr]", "#CybotCookiebotDialog", "[class~=cc-window]",
    ),
    "dom_paywall": (
        "[class*=paywall]", "[id*=paywall]", "[class*=regwall]", "[class^=piano]", "[id^=piano]",
        "[class*=subscriber-only]", "[class*=premium-wall]", "[class~=meter]", "[class*=subscription-wall]",
    ),
    "dom_ad_container": (
        "[class~=ad]", "[class~=ads]", "[class~=advert]", "[class~=advertisement]", "[class^=advert]", "[id^=advert]",
        "[class~=ad-slot]", "[class~=ad-container]", "[class~=ad-wrapper]", "[class~=ad-unit]", "[class~=adslot]",
        "[class~=adsbygoogle]", "[id^=div-gpt-ad]", "[id^=google_ads]", "[class^=dfp-]", "[class~=advertisement-label]",
        "[aria-label=advertisement]", "[aria-label=Advertisement]", "[data-ad-slot]",
    ),
    "dom_share_widget": (
        "[class~=share]", "[class*=share-buttons]", "[class*=share-bar]", "[class*=share-links]", "[class*=share-tools]",
        "[class*=social-share]", "[class*=sharing]", "[class*=social-links]", "[class*=social-icons]", "[class*=addtoany]",
        "[class*=a2a_kit]", "[class*=sharedaddy]", "[id^=share]", "[class*=Share]", "[class*=social]",
    ),
    "dom_newsletter": (
        "[class*=newsletter]", "[id*=newsletter]", "[class^=subscribe]", "[class~=signup]", "[class*=signup-form]",
        "[id*=mc_embed]", "[class*=mc4wp]", "[class*=signup]", "[class*=sign-up]", "[class*=subscribe]",
        "[id*=signup]", "[id*=subscribe]",
    ),
    "dom_related_links": (
        "[class^=related]", "[class*=related-posts]", "[class*=related-articles]", "[class*=related-content]",
        "[class*=related-stories]", "[id^=related]", "[class*=more-stories]", "[class^=trending]", "[class*=most-popular]",
        "[class*=outbrain]", "[id*=outbrain]", "[class*=taboola]", "[id*=taboola]", "[class*=read-next]", "[class~=recommended]",
        "[class*=related]", "[class*=Related]", "[class*=recommend]", "[class*=recent-posts]", "[id*=recent-posts]",
    ),
    "dom_call_to_action": (
        "[class~=cta]", "[class^=cta-]", "[class*=-cta]", "[class*=call-to-action]", "[class*=calltoaction]", "[id^=cta]",
        "a[class*=button]", "a[class*=btn]", "[class*=wp-block-button]", "[class*=elementor-button]",
        "[class*=button-wrapper]", "[class*=add-to-cart]",
    ),
    "dom_author_bio": (
        "[class*=author-bio]", "[class*=about-author]", "[class*=author-box]", "[class*=author-info]",
        "[class*=authorbio]", "[class*=author-card]", "[class*=about_author]", "[class*=author__about]",
        "[class*=author__bio]", "[class*=author--bio]", "[class*=author-promo]",
    ),
    "dom_byline": ("[class*=byline]", "[class*=post-meta]", "[class*=entry-meta]", "[class*=article-meta]",
                   "[class*=read-time]", "[class*=readtime]", "[class*=reading-time]"),
    "dom_tag_list": ("[class~=tags]", "[class*=tag-list]", "[class*=post-tags]", "[class*=entry-tags]",
                     "[class*=article-tags]"),
    "dom_navigation": ("nav", "[role=navigation]", "[class*=breadcrumb]", "[class~=menu]", "[class*=skip-link]",
                       "[class*=pagination]", "[class*=nav-links]"),
    "dom_site_header": ("body > header", "[role=banner]"),
    "dom_site_footer": ("body > footer", "[role=contentinfo]", "footer[class*=site]", "footer[id*=site]", "footer",
                        "[class^=footer]", "[class*=footer-]", "[class*=main-footer]", "[class*=post-footer]",
                        "[class*=article-footer]", "[class*=entry-footer]"),
    "dom_sidebar": ("aside", "[role=complementary]", "[class^=sidebar]", "[class~=sidebar]", "[id^=sidebar]"),
    "dom_form": ("form",),
    "dom_dialog": ("dialog",),
    "dom_disclaimer": ("[class*=disclaimer]", "[class*=disclosure]"),
    "dom_comments": ("[id=comments]", "[class~=comments]", "[id=respond]", "[class*=comment-respond]"),
}

_RULE_SELECTORS = {rule: ", ".join(selectors) for rule, selectors in DOM_RULES.items()}

# A container holding this share of the page's text or more is a page wrapper, whatever its class says.
WRAPPER_TEXT_SHARE = 0.5
NEVER_REMOVED = {"html", "body", "main", "article"}

MAX_RECORDED_CHARS = 20_000  # audit of left-out blocks per document; the rest is summarized in one line

AD_MARKER = re.compile(r"^\W*(advertisement|advertising|sponsored|ad|anzeige|publicité|publicidad)\W*$", re.I)
BULLET = re.compile(r"^\s*(?:[•◦▪‣·*\-–]|\d{1,3}[.)])\s+")


def extract(doc: Document, config: ExtractConfig) -> StageResult:
    if doc.content_type != "html" or doc.html is None:
        return doc, []
    try:
        return _extract(doc, config)
    except Exception as exc:  # broken HTML must never escape as an exception
        _reraise_timeout(exc)
        return doc.replace(html=None).reject("unparsable_html", f"{type(exc).__name__}: {exc}"), []


MAX_DEPTH = 1500  # real pages nest a few dozen deep; main-content extraction is superlinear in depth
# [^<>]: linear on unclosed tags; greedy, with the self-closing "/" read off the end: twice as fast as a lazy
# attribute run that tries "/?>" at every character
_TAG_TOKEN = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*)>")
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())


def nesting_depth(html: str, limit: int = MAX_DEPTH) -> int:
    """Approximate element nesting depth (stops counting at ``limit``). Unclosed <p>/<li> count as nested,
    which only overestimates on pages with thousands of them."""
    depth = deepest = 0
    for closing, name, attributes in _TAG_TOKEN.findall(html):
        if closing:
            depth = max(0, depth - 1)
        elif not attributes.endswith("/") and name.lower() not in _VOID:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest >= limit:
                    break
    return deepest


# The steps of nesting_depth where they are cheap to tell: complete closing tags close; void tags and
# self-closed SVG shapes (thousands on some pages) stay level; any other tag start opens, even where
# nesting_depth finds no complete tag, which can only add depth.
_TAG_STEP = re.compile(
    r"<(?:(/)[a-zA-Z][^<>]*>"
    r"|(?!(?:area|base|br|col|embed|hr|img|input|link|meta|param|source|track|wbr)[\s/>])"
    r"(?!(?:path|polygon|polyline|circle|rect|line|ellipse|use|stop|g)[\s/][^<>]*/>)[a-zA-Z])"
)
_STEP = {"": 1, "/": -1}


def nesting_depth_bound(html: str) -> int:
    """An upper bound of ``nesting_depth`` computed in C loops, several times faster: the same steps, plus
    openings for incomplete tags, which only add depth. The depth floored at 0 is the running height minus
    the lowest height so far."""
    heights = list(accumulate(map(_STEP.__getitem__, _TAG_STEP.findall(html)), initial=0))
    return max(map(sub, heights, accumulate(heights, min)))


def _extract(doc: Document, config: ExtractConfig) -> StageResult:
    # Cheap gate first: only pages with many tags can nest deep enough to stall the extractor.
    if (doc.html.count("<") > 5 * MAX_DEPTH and nesting_depth_bound(doc.html) >= MAX_DEPTH
            and nesting_depth(doc.html) >= MAX_DEPTH):
        return doc.replace(html=None).reject(
            "html_too_deep", f"elements nest {MAX_DEPTH} or more levels deep; no real page does"), []
    tree = HTMLTree.parse(doc.html)
    if tree.body is None:
        return doc.replace(html=None).reject("no_main_content", "the page has no <body>"), []
    attributes = PageAttributes(doc.html)
    meta = page_metadata(tree, attributes, doc.html)
    edits: list[Edit] = []
    if config.preclean_dom:
        edits += preclean(tree, attributes)

    if config.extractor == "trafilatura":  # trafilatura's full pipeline (with its fallbacks), for comparison
        all_blocks = text_blocks(_plain_text(tree))
        blocks = trafilatura_blocks(tree.document.html if config.preclean_dom else doc.html, doc.url, fast=False)
    else:
        containers = BodyContainers(tree, attributes)
        all_blocks = containers.render_page()
        blocks = main_content_blocks(doc, tree, all_blocks, config, containers)

    title = doc.title or meta.get("title")
    blocks, rule_edits = clean_blocks(blocks, title)
    edits += rule_edits
    text = "\n\n".join(blocks)
    if len(text) < max(config.min_text_chars, 1) or not _WORD.search(text):
        detail = "no main text found" + (f" (after removing {len(edits)} chrome blocks)" if edits else "")
        return doc.replace(html=None).reject("no_main_content", detail), edits

    if config.record_left_out:
        edits += left_out_blocks(all_blocks, blocks, already=edits)

    changes = dict(html=None, text=text)
    if any(e.rule == "dom_paywall" for e in edits if isinstance(e, Removal)):
        changes["truncated"] = True  # a paywall box means the page shows only the start of the article
    if meta.get("published") is None and doc.published is None and config.date_search:
        meta["published"] = searched_date(doc.html)
    for field in ("title", "author", "publisher", "url", "published"):
        if getattr(doc, field) is None and meta.get(field):
            changes[field] = meta[field]
    return doc.with_edits(edits, **changes), edits


# --- main content -------------------------------------------------------------------------------

# Where CMSs put the article body, most specific first (the vocabulary trafilatura's BODY_XPATH uses).
BODY_CONTAINERS = (
    ("[itemprop=articleBody]",),
    ("[class*=entry-content]", "[class*=post-content]", "[class*=article-body]", "[class*=article__body]",
     "[class*=articleBody]", "[class*=article-content]", "[class*=article__content]", "[class*=post-body]",
     "[class*=story-body]", "[id*=article-body]", "[class*=body-text]", "[class*=article-text]",
     "[class*=story-content]", "[class*=post-entry]", "[class*=rich-text]", "[class*=single-content]",
     "[class*=blog-content]"),
    ("article",),
    ("main", "[role=main]"),
)
MIN_CONTAINER_CHARS = 200
CONTAINER_SHARE_OF_MAIN = 0.5  # a container with less text than this share of the main prose is a teaser
DOMINANT_CONTAINER_SHARE = 0.6
UNSURE_LEFT_OUT_PROSE = 0.3  # prose left out beyond this share of the kept text: ask trafilatura
PROSE_CHARS = 120
SENTENCE_END = re.compile(r"[.!?:;)\"”’]$")


def main_content_blocks(doc: Document, tree: HTMLTree, all_blocks: list[str], config: ExtractConfig,
                        containers: BodyContainers | None = None) -> list[str]:
    main_blocks: list[str] | None = None

    def main() -> list[str]:  # Resiliparse's main-content pass is the costliest step: only when needed
        nonlocal main_blocks
        if main_blocks is None:
            main_blocks = text_blocks(
                extract_plain_text(tree, main_content=True, alt_texts=False, comments=False, form_fields=False)
            )
        return main_blocks

    blocks = body_container_blocks(tree, main, all_blocks, containers)
    if blocks and sum(len(b) for b in blocks) >= config.fallback_below_chars:
        return blocks
    if sum(len(b) for b in main()) < config.fallback_below_chars or leaves_out_prose(all_blocks, main()):
        return trafilatura_blocks(tree.document.html, doc.url, fast=True) or main()
    return main()


def _plain_text(tree: HTMLTree) -> str:
    return extract_plain_text(tree, main_content=False, alt_texts=False, comments=True, form_fields=False)


class BodyContainers:
    """The page's article-body container candidates (BODY_CONTAINERS), found with one walk of the tree; each
    group's largest element and the group's total text are measured when first asked for."""

    def __init__(self, tree: HTMLTree, attributes: PageAttributes | None = None):
        self.tree = tree
        self.groups = [attributes.selector(selectors) if attributes is not None else ", ".join(selectors)
                       for selectors in BODY_CONTAINERS]
        query = ", ".join(group for group in self.groups if group)
        self.found = _nodes(tree.body.query_selector_all(query)) if query else []
        self._measured: dict[int, tuple] = {}
        self._rendered: tuple | None = None  # (element, its blocks) rendered within the page

    def best(self, index: int) -> tuple:
        """(largest element or None, its text length, all the group's elements' text length)."""
        if index not in self._measured:
            group = self.groups[index]
            best, best_chars, all_chars = None, 0, 0
            for element in (e for e in self.found if e.matches(group)) if group is not None else ():
                chars = len(element.text)
                all_chars += chars
                if chars > best_chars:
                    best, best_chars = element, chars
            self._measured[index] = best, best_chars, all_chars
        return self._measured[index]

    def first_candidate(self):
        """The element body_container_blocks weighs first: the largest of the first group with enough text."""
        for index in range(len(self.groups)):
            best, best_chars, _ = self.best(index)
            if best is not None and best_chars >= MIN_CONTAINER_CHARS:
                return best
        return None

    def render_page(self) -> list[str]:
        """The page's blocks. The first candidate container is rendered within the page between two marker
        paragraphs, which gives its own blocks too, saving a second rendering of most of the page: the same
        blocks as rendering it alone where nothing around it changes how it renders (only <div>, <section>,
        <article>, <main> above it), both markers come out as lines of their own and no list bullet stands
        alone beside one (tests/test_extract_fast_paths.py checks every extraction-dev page); otherwise it
        is rendered alone when needed. (``comments=`` matters only to main-content extraction.)"""
        candidate = self.first_candidate() if self.found else None
        if candidate is None or not _renders_alike_alone(candidate):
            return text_blocks(_plain_text(self.tree))
        start, end = self.tree.create_element("p"), self.tree.create_element("p")
        start.append_child(self.tree.create_text_node(_MARK_START))
        end.append_child(self.tree.create_text_node(_MARK_END))
        parent, after = candidate.parent, candidate.next_sibling
        parent.insert_before(start, candidate)
        if after is not None:
            parent.insert_before(end, after)
        else:
            parent.append_child(end)
        try:
            text = _plain_text(self.tree)
        finally:
            start.remove()
            end.remove()
        if _MARK not in text:  # not rendered (inside an element Resiliparse skips)
            return text_blocks(text)
        blocks = text_blocks(text)
        try:
            first, last = blocks.index(_MARK_START), blocks.index(_MARK_END)
        except ValueError:
            first = last = -1
        if not (0 <= first < last) or text.count(_MARK) != 2 or _bullet_beside_a_mark(text):
            return text_blocks(_plain_text(self.tree))  # a marker ran into other text, or may have changed it
        self._rendered = candidate, blocks[first + 1:last]
        del blocks[last]
        del blocks[first]
        return blocks

    def blocks(self, element) -> list[str]:
        """The element's blocks as if it were all the page had."""
        if self._rendered is not None and self._rendered[0] is element:
            return self._rendered[1]
        return text_blocks(_plain_text_alone(self.tree, element))


def _bullet_beside_a_mark(text: str) -> bool:
    """Whether a line next to a marker holds a list bullet alone: whether text_blocks drops such a line
    depends on white space after it, which the marker beside it can change."""
    for mark in (_MARK_START, _MARK_END):
        at = text.find(mark)
        before = text[max(0, at - 200):at].splitlines()
        after = text[at + len(mark):at + len(mark) + 200].splitlines()
        lines = [line for line in before if line.strip()][-1:] + [line for line in after if line.strip()][:1]
        if any(not text_blocks(line + " ") for line in lines):  # dropped when white space follows: a bullet
            return True
    return False


_MARK = "docclean-container-mark-2f9c1e7a-"  # a page that writes it takes the long way (counted below)
_MARK_START, _MARK_END = _MARK + "start", _MARK + "end"
_PLAIN_BLOCK_TAGS = frozenset(("div", "section", "article", "main"))


def _renders_alike_alone(element) -> bool:
    """Whether the element renders within the page as it does alone: it and its ancestors below <body> are
    plain block containers (no list, table, link, pre or skipped element around it)."""
    node = element
    while node is not None and node.tag != "body":
        if node.tag not in _PLAIN_BLOCK_TAGS:
            return False
        node = node.parent
    return node is not None


def body_container_blocks(tree: HTMLTree, main_blocks, all_blocks: list[str],
                          containers: BodyContainers | None = None) -> list[str] | None:
    """All the text of the page's article-body container, when it has one that holds most of the text.
    ``main_blocks`` gives the main-content blocks; it is called only when the page's prose does not already
    settle the question (the main content's prose is, nearly always, part of the page's)."""
    containers = containers or BodyContainers(tree)
    if not containers.found:
        return None
    page_prose_chars = sum(len(b) for b in all_blocks if _is_prose(b))
    for index in range(len(containers.groups)):
        best, best_chars, all_chars = containers.best(index)
        if best is None or best_chars < MIN_CONTAINER_CHARS:
            continue
        # A main content's prose measured up to 10% more than the page's, and Resiliparse renders some pages'
        # full text empty: the page's prose settles the question only with a margin, and when there is some.
        if not page_prose_chars or best_chars < 1.5 * CONTAINER_SHARE_OF_MAIN * page_prose_chars:
            main_prose_chars = sum(len(b) for b in main_blocks() if _is_prose(b))
            if best_chars < CONTAINER_SHARE_OF_MAIN * main_prose_chars:
                continue
        if best_chars < DOMINANT_CONTAINER_SHARE * all_chars:
            continue  # a feed of similar boxes (reviews, teasers, posts): none of them is "the" body
        blocks = containers.blocks(best)
        if blocks:
            return blocks
    return None


def _plain_text_alone(tree: HTMLTree, element) -> str:
    """The element's plain text as if it were all the page had: the body's children are set aside while the
    element alone renders, then everything goes back in place. (Resiliparse renders only whole trees; this
    gives the same text as re-parsing the element's HTML, without serializing and parsing it.)"""
    body = tree.body
    parent, after = element.parent, element.next_sibling
    children = body.child_nodes.values()
    for child in children:
        child.remove()
    if element.parent is not None:
        element.remove()
    body.append_child(element)
    try:
        return extract_plain_text(tree, main_content=False, alt_texts=False, comments=False, form_fields=False)
    finally:
        element.remove()
        if parent is not body:
            if after is not None:
                parent.insert_before(element, after)
            else:
                parent.append_child(element)
        for child in children:
            body.append_child(child)


def leaves_out_prose(all_blocks: list[str], main_blocks: list[str]) -> bool:
    kept = {_key(b) for b in main_blocks}
    left_out = sum(len(b) for b in all_blocks if _key(b) not in kept and _is_prose(b))
    return left_out > UNSURE_LEFT_OUT_PROSE * sum(len(b) for b in main_blocks)


def _is_prose(block: str) -> bool:
    return len(block) >= PROSE_CHARS and bool(SENTENCE_END.search(block))


# --- DOM pre-cleaning ------------------------------------------------------------------------------


def preclean(tree: HTMLTree, attributes: PageAttributes | None = None) -> list[Removal]:
    """Remove the containers the named DOM rules match, recording each one's text under its rule."""
    rule_selectors = attributes.rules() if attributes is not None else _RULE_SELECTORS
    if not rule_selectors:
        return []
    body = tree.body
    removals: list[Removal] = []
    removed: list = []
    page_chars = 0
    query = attributes.rules_query() if attributes is not None else ", ".join(rule_selectors.values())
    for element in _nodes(body.query_selector_all(query)):
        # Matches come in document order and nothing inside a removed container is removed, so an element
        # inside any removed container is inside the last one (each contains() call walks up the ancestors).
        if element.tag in NEVER_REMOVED or (removed and removed[-1].contains(element)):
            continue  # gone already with an enclosing container
        text = _visible_text(element)
        if len(text) > 2000:  # only big containers can be page wrappers with an unlucky class name
            page_chars = page_chars or len(body.text)
            if len(text) >= WRAPPER_TEXT_SHARE * page_chars:
                continue
        if len(text) > 300 and _holds_body_text(element):
            continue
        if text:  # named only when recorded (each rule's test is a call into lexbor), and while in place
            rule = next(name for name, group in rule_selectors.items() if element.matches(group))
            removals.append(Removal(rule=rule, text=text[:2000], stage=STAGE))
        element.remove()
        removed.append(element)
    return removals


def _holds_body_text(element) -> bool:
    """Chrome containers hold links and teasers, not the article: several long paragraphs or the <h1> mean
    the class name is misleading (``body-ad-wrapper``, ``has-sidebar``)."""
    if element.query_selector("article, main, h1") is not None:
        return True
    long_paragraphs = 0
    for p in _nodes(element.query_selector_all("p")):
        if len(p.text) > 150:
            long_paragraphs += 1
            if long_paragraphs >= 3:
                return True
    return False


# --- selectors that can match ----------------------------------------------------------------------

# lexbor tests every alternative of a selector list on every element, and the class tests were most of this
# stage's time: most alternatives name a class word the page never uses. A regex scan of the raw markup for
# class values tells which can match; the others are left out of the query (the matches are the same).
# (Tests on id and other attributes are cheap for lexbor: elements rarely carry them.) lexbor compares
# attribute values case-sensitively (in quirks mode too), so the scan keeps the words' case.
_CLASS_VALUES = re.compile(r"""lass\s*=\s*["']?([^"'>]*)""")  # "class=" and "Class=": a fast literal search
_CLASS_TEST = re.compile(r"""\[class([~^*$|]?)=["']?([^"'\]]*)["']?(?:\s+([is]))?\]""")
_OPERATOR_KIND = {"": "word", "~": "word", "^": "start", "|": "start", "*": "part", "$": "part"}


def _class_needs(selector: str) -> tuple[tuple[str, str], ...]:
    """The tests a single selector makes on the class attribute, as (kind, value): "word", a whole word;
    "start", the start of one (``^=``, ``|=``); "part", a part of one. Case-insensitive tests are left out."""
    return tuple((_OPERATOR_KIND[operator], value) for operator, value, flag in _CLASS_TEST.findall(selector)
                 if value and flag != "i" and not any(c.isspace() for c in value))


@functools.cache
def _with_needs(selectors: tuple[str, ...]) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    return tuple((selector, _class_needs(selector)) for selector in selectors)


@functools.cache
def _shorter_parts(value: str) -> tuple[str, ...]:
    """The part tests of the module's selectors that ``value`` contains: when one of them fails, so does
    ``value``, and its scan is saved."""
    return tuple(part for part in _known_parts() if part != value and part in value)


@functools.cache
def _known_parts() -> tuple[str, ...]:
    groups = (*DOM_RULES.values(), *BODY_CONTAINERS, _AUTHOR_ELEMENTS, _BYLINE_ELEMENTS)
    return tuple(sorted({value for group in groups for _, needs in _with_needs(group)
                         for kind, value in needs if kind == "part"}, key=len))


class PageAttributes:
    """The class words a page's markup uses (a superset: the scan does not parse the page)."""

    def __init__(self, html: str):
        # "CLASS=" is rare: such a page is scanned lower-cased (a regex ignoring case is several times slower)
        self.folded = "LASS" in html
        values = set(_CLASS_VALUES.findall(html.lower() if self.folded else html))
        self.class_words = set(" ".join(values).split())
        self.word_starts = " " + " ".join(self.class_words)  # " x" in it: a word starts with x
        self._found: dict[tuple[str, str], bool] = {}
        self._rules: dict[str, str] | None = None
        self._rules_query: str | None = None
        self._kept_alternatives: dict[str, None] = {}  # of all rules, in order

    def has(self, need: tuple[str, str]) -> bool:
        """Whether a class word equals (``word``), starts with (``start``) or contains (``part``) the need's
        value; a value holding a part already found missing is not scanned for."""
        found = self._found.get(need)
        if found is None:
            kind, value = need
            folded = value.lower() if self.folded else value
            if kind == "word":
                found = folded in self.class_words
            else:
                found = (all(self.has(("part", part)) for part in _shorter_parts(value))
                         and (" " + folded if kind == "start" else folded) in self.word_starts)
            self._found[need] = found
        return found

    def alternatives(self, selectors: tuple[str, ...]) -> list[str]:
        """The alternatives of ``selectors`` that may match on this page."""
        found, has = self._found, self.has
        kept = []
        for selector, needs in _with_needs(selectors):
            for need in needs:  # a plain loop: this runs for some 170 selectors a page
                present = found.get(need)
                if not (has(need) if present is None else present):
                    break
            else:
                kept.append(selector)
        return kept

    def selector(self, selectors: tuple[str, ...]) -> str | None:
        """The alternatives of ``selectors`` that may match on this page, as one selector list."""
        return ", ".join(self.alternatives(selectors)) or None

    def rules(self) -> dict[str, str]:
        """DOM_RULES as selector lists, without the alternatives that cannot match and the empty rules."""
        if self._rules is None:
            self._rules = {}
            for rule, selectors in DOM_RULES.items():
                kept = self.alternatives(selectors)
                if kept:
                    self._rules[rule] = ", ".join(kept)
                    self._kept_alternatives.update(dict.fromkeys(kept))
        return self._rules

    def rules_query(self) -> str:
        """All the rules' alternatives in one selector list, without those another one left in already
        matches (``[class*=related]`` finds every ``[class*=related-posts]``): the same elements, sooner."""
        if self._rules_query is None:
            self.rules()
            kept = self._kept_alternatives
            self._rules_query = ", ".join(a for a in kept if not any(wider in kept for wider in _WIDER.get(a, ())))
        return self._rules_query


# "body > tag", "tag", "[attr]", "[attr OP value]", "tag[attr OP value]" (no case flag); other forms are
# left alone
_SIMPLE_SELECTOR = re.compile(
    r"""(body > )?([a-z][a-z0-9-]*)?(?:\[([a-z][a-z-]*)(?:([~^*$|]?)=(?:"([^"]*)"|'([^']*)'|([^"'\]\s]+)))?\])?""")


def _parse_simple(selector: str) -> tuple | None:
    m = _SIMPLE_SELECTOR.fullmatch(selector)
    if m is None or not (m[2] or m[3]):
        return None
    value = next((v for v in m.group(5, 6, 7) if v is not None), None)
    return bool(m[1]), m[2], m[3], m[4], value


def _attribute_implies(narrow: tuple, wide: tuple) -> bool:
    """Every element ``[name op value]`` ``narrow`` matches, ``wide`` matches."""
    (name, op, value), (wide_name, wide_op, wide_value) = narrow, wide
    if name != wide_name:
        return False
    if wide_op is None:  # [name]: the attribute is there
        return True
    if op is None:
        return False
    if wide_op == "*":
        return wide_value in value and op in "*^$|~="
    if wide_op == "^":
        return value.startswith(wide_value) and op in ("^", "|", "")
    if wide_op == "$":
        return value.endswith(wide_value) and op in ("$", "")
    return wide_op == op and wide_value == value


def _wider(narrow: str, wide: str) -> bool:
    """Whether selector ``wide`` matches every element ``narrow`` matches (and is not the same selector)."""
    return _parsed_wider(_parse_simple(narrow), _parse_simple(wide))


def _parsed_wider(n: tuple | None, w: tuple | None) -> bool:
    """_wider of two selectors parsed by _parse_simple."""
    if n is None or w is None or n == w:
        return False
    (n_child, n_tag, *n_attribute), (w_child, w_tag, *w_attribute) = n, w
    return ((n_child or not w_child) and (w_tag is None or w_tag == n_tag)
            and (w_attribute[0] is None or (n_attribute[0] is not None and _attribute_implies(n_attribute, w_attribute))))


_ALL_ALTERNATIVES = tuple(dict.fromkeys(a for group in DOM_RULES.values() for a in group))
_PARSED = [(a, _parse_simple(a)) for a in _ALL_ALTERNATIVES]  # parsed once: every pair is compared at import
_WIDER = {a: wider for a, n in _PARSED if (wider := tuple(w for w, parsed in _PARSED if _parsed_wider(n, parsed)))}


# --- extraction helpers ----------------------------------------------------------------------------


_BULLET_CHARS = frozenset("•◦▪‣·*-–")


def text_blocks(text: str) -> list[str]:
    """One block per non-empty line, whitespace folded, list bullets dropped (what BULLET matches: a bullet
    word followed by white space; tested on the line's words, which is twice as fast as the regex)."""
    blocks = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        first = words[0]
        if (first in _BULLET_CHARS or (1 < len(first) < 5 and first[-1] in ".)" and first[:-1].isdecimal())) and (
            len(words) > 1 or line[-1].isspace()
        ):
            del words[0]
            if not words:
                continue
        blocks.append(" ".join(words))
    return blocks


def trafilatura_blocks(html: str, url: str | None, fast: bool = True) -> list[str]:
    import lxml.html
    import trafilatura

    try:
        result = trafilatura.extract(lxml.html.fromstring(html), url=url, include_comments=False, fast=fast)
    except Exception as exc:  # lxml refuses some documents resiliparse parsed; then there is no second opinion
        _reraise_timeout(exc)
        return []
    return text_blocks(result or "")


def clean_blocks(blocks: list[str], title: str | None) -> tuple[list[str], list[Removal]]:
    """The title (kept in ``doc.title``) repeated as the first heading, and bare ad markers, go."""
    kept: list[str] = []
    removed: list[Removal] = []
    folded_title = _fold(title) if title else None
    for i, block in enumerate(blocks):
        folded = _fold(block) if folded_title and i < 5 else None
        if folded and (folded == folded_title or folded in folded_title and len(folded) > 20):
            removed.append(Removal("title_repeated", block, STAGE))
        elif AD_MARKER.match(block):
            removed.append(Removal("ad_marker", block, STAGE))
        else:
            kept.append(block)
    return kept, removed


def left_out_blocks(all_blocks: list[str], kept: list[str], already: list[Edit]) -> list[Removal]:
    """The visible blocks the extractor did not keep (and no rule already recorded)."""
    accounted = {_key(b) for b in kept}
    accounted.update(_key(e.text) for e in already if isinstance(e, Removal))
    out: list[Removal] = []
    budget = MAX_RECORDED_CHARS
    skipped = 0
    for block in all_blocks:
        folded = _key(block)
        if not folded or folded in accounted:
            continue
        accounted.add(folded)
        if budget <= 0:
            skipped += len(block)
            continue
        out.append(Removal("not_main_content", block[:budget], STAGE))
        budget -= len(block)
    if skipped:
        out.append(Removal("not_main_content", f"[{skipped} more characters left out, not recorded]", STAGE))
    return out


# --- metadata -------------------------------------------------------------------------------------


_META_KEYS = (
    "og:title", "twitter:title", "dc.title", "author", "article:author", "dc.creator", "parsely-author",
    "sailthru.author", "twitter:creator", "og:site_name", "application-name", "article:published_time",
    "datepublished", "date", "dc.date", "dc.date.issued", "pubdate", "publish-date", "parsely-pub-date",
    "sailthru.date", "og:url", "twitter:label1", "twitter:data1",
)
_META_SELECTOR = ", ".join(
    f'meta[{attr}="{key}" i][content]' for key in _META_KEYS for attr in ("property", "name", "itemprop")
)


def page_metadata(tree: HTMLTree, attributes: PageAttributes | None = None, html: str | None = None) -> dict:
    """title, author, publisher, published (UTC datetime) and canonical url, from what the page declares.
    ``html``, the page's markup, lets it skip searches that cannot find anything."""
    meta: dict = {}
    ld = _json_ld(tree, html)
    tags: dict[str, str] = {}
    if tree.head is not None:
        for m in _nodes(tree.head.query_selector_all(_META_SELECTOR)):
            key = (m.getattr("property") or m.getattr("name") or m.getattr("itemprop") or "").strip().lower()
            if key and key not in tags:
                tags[key] = html_lib.unescape(m.getattr("content").strip())  # often entity-encoded twice
    declared_title = _first(ld.get("headline"), tags.get("og:title"), tags.get("twitter:title"), tags.get("dc.title"))
    page_title = _first(tree.title)
    h1 = _h1(tree)
    # The visible <h1> is the article's own title; trust it when it agrees with a declared one.
    if h1 and any(_similar(h1, t) for t in (declared_title, page_title) if t):
        meta["title"] = h1
    else:
        meta["title"] = _first(declared_title, _strip_site_name(page_title), h1)
    written_by = tags.get("twitter:data1") if (tags.get("twitter:label1") or "").lower() == "written by" else None
    author = _first(ld.get("author"), tags.get("author"), tags.get("article:author"), tags.get("dc.creator"),
                    tags.get("parsely-author"), tags.get("sailthru.author"), written_by) or _first(_byline(tree, attributes))
    meta["author"] = _clean_author(author)
    meta["publisher"] = _first(tags.get("og:site_name"), ld.get("publisher"), tags.get("application-name"))
    published = _first(ld.get("datePublished"), tags.get("article:published_time"), tags.get("datepublished"),
                       tags.get("date"), tags.get("dc.date"), tags.get("dc.date.issued"), tags.get("pubdate"),
                       tags.get("publish-date"), tags.get("parsely-pub-date"), tags.get("sailthru.date")
                       ) or _first(_time_element(tree))
    meta["published"] = parse_date(published) if published else None
    meta["url"] = _canonical(tree) or (tags.get("og:url") if (tags.get("og:url") or "").startswith("http") else None)
    return meta


_SITE_SUFFIX = re.compile(r"\s+[|\-–—·:]\s+[^|\-–—·:]{2,40}$")
_BY = re.compile(r"^\s*(?:by|written by|author:?)\s+", re.I)


def _strip_site_name(title: str | None) -> str | None:
    """"Story title | Site" -> "Story title" (only one trailing segment, and only when the rest is long)."""
    if not title:
        return title
    stripped = _SITE_SUFFIX.sub("", title)
    return stripped if len(stripped) >= 15 else title


def _similar(a: str, b: str) -> bool:
    fa, fb = _fold(a), _fold(b)
    return bool(fa) and bool(fb) and (fa == fb or (len(fa) > 10 and (fa in fb or fb in fa)))


_BY_NAME = re.compile(r"\b[Bb]y:?\s+([A-Z][\w.'’-]+(?:\s+(?:[A-Z][\w.'’-]+|de|van|von|and|&)){0,4})")


_AUTHOR_ELEMENTS = ("[rel=author]", "[itemprop=author] [itemprop=name]", "[itemprop=author]", "[class*=author-name]",
                    "[class*=byline] a", "[class~=author] a", "[class~=author]", "[class*=-author]", "[class*=the-author]")
_BYLINE_ELEMENTS = ("[class*=byline]", "[class*=meta]", "[class*=posted]")


def _byline(tree: HTMLTree, attributes: PageAttributes | None = None) -> str | None:
    """The author as the page shows it: an author element, or "By Name" in a byline or meta line."""
    if tree.body is None:
        return None
    authors = attributes.selector(_AUTHOR_ELEMENTS) if attributes is not None else ", ".join(_AUTHOR_ELEMENTS)
    bylines = attributes.selector(_BYLINE_ELEMENTS) if attributes is not None else ", ".join(_BYLINE_ELEMENTS)
    # one walk of the tree for both lists, then each list's elements
    found = _nodes(tree.body.query_selector_all(f"{authors}, {bylines}" if bylines else authors))
    for el in [e for e in found if e.matches(authors)][:8]:
        text = _BY.sub("", _squash(el.text))
        if 2 < len(text) < 60 and not text.lower().startswith(("author", "about", "the author", "written by")):
            return text
    for el in [e for e in found if e.matches(bylines)][:8] if bylines else ():
        m = _BY_NAME.search(_squash(el.text))
        if m:
            return m[1]
    return None


def _clean_author(author: str | None) -> str | None:
    if not author or author.startswith("http") or author.startswith("@"):
        return None
    author = _BY.sub("", author).strip(" ,;|")
    return author or None


_LD_SCRIPT = 'script[type="application/ld+json"]'


def _json_ld_scripts(tree: HTMLTree, html: str | None):
    """The page's JSON-LD scripts in document order; the body (a long walk) only when the markup mentions
    more of them than the head holds (lexbor matches the type in any case: lower and upper are counted)."""
    in_head = _nodes(tree.head.query_selector_all(_LD_SCRIPT)) if tree.head is not None else []
    yield from in_head
    if tree.body is not None and (html is None or _more_than(html, len(in_head), "ld+json", "LD+JSON")):
        yield from _nodes(tree.body.query_selector_all(_LD_SCRIPT))


def _more_than(text: str, count: int, *needles: str) -> bool:
    """Whether the needles occur more than ``count`` times in all (each search a pass over ``text``)."""
    for needle in needles:
        count -= text.count(needle)
        if count < 0:
            return True
    return False


def _json_ld(tree: HTMLTree, html: str | None = None) -> dict:
    """The first JSON-LD object that looks like the page's article (or web page)."""
    found: dict = {}
    for script in _json_ld_scripts(tree, html):
        try:
            data = json.loads(script.text)
        except ValueError:
            continue
        for item in _ld_items(data):
            kind = item.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if not any(isinstance(k, str) for k in kinds):
                continue
            article_like = any(isinstance(k, str) and ("Article" in k or k in ("BlogPosting", "NewsArticle", "Report"))
                               for k in kinds)
            if article_like or (not found and any(k in ("WebPage", "ItemPage") for k in kinds)):
                found = {
                    "headline": _ld_text(item.get("headline") or item.get("name")),
                    "author": _ld_name(item.get("author")),
                    "publisher": _ld_name(item.get("publisher")),
                    "datePublished": _ld_text(item.get("datePublished") or item.get("dateCreated")),
                }
                if article_like:
                    return found
    return found


def _ld_items(data):
    if isinstance(data, list):
        for d in data:
            yield from _ld_items(d)
    elif isinstance(data, dict):
        yield data
        if "@graph" in data:
            yield from _ld_items(data["@graph"])


def _ld_text(value) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return html_lib.unescape(value.strip()) if isinstance(value, str) and value.strip() else None


def _ld_name(value) -> str | None:
    if isinstance(value, list):
        names = [_ld_name(v) for v in value]
        names = [n for n in names if n]
        return ", ".join(names) if names else None
    if isinstance(value, dict):
        return _ld_text(value.get("name"))
    return _ld_text(value)


def _h1(tree: HTMLTree) -> str | None:
    h1 = tree.body.query_selector("h1") if tree.body is not None else None
    return _squash(h1.text) if h1 is not None else None


def _time_element(tree: HTMLTree) -> str | None:
    if tree.body is None:
        return None
    t = tree.body.query_selector("article time[datetime], time[datetime]")
    return t.getattr("datetime") if t is not None else None


def _canonical(tree: HTMLTree) -> str | None:
    if tree.head is None:
        return None
    link = tree.head.query_selector('link[rel="canonical"][href]')
    href = link.getattr("href").strip() if link is not None else ""
    return href if href.startswith("http") else None


def searched_date(html: str) -> datetime | None:
    """htmldate's date for a page that declares none (its quick search: URL, markup, date elements; the
    extensive one guesses from any date-like text and invented dates for most undated pages we tried)."""
    import lxml.html
    from htmldate import find_date

    try:
        found = find_date(lxml.html.fromstring(html), original_date=True, extensive_search=False)
    except Exception as exc:
        _reraise_timeout(exc)
        return None
    return parse_date(found) if found else None


def parse_date(value: str) -> datetime | None:
    """A date or date-time as a timezone-aware UTC datetime (naive values are taken as UTC)."""
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = _loose_date(value)
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _loose_date(value: str) -> datetime | None:
    m = re.match(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", value)
    if m:
        try:
            return datetime(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    if not re.search(r"\d{4}", value) or len(value) > 60:
        return None
    from dateutil import parser as date_parser  # written-out dates: "March 14, 2025", "14 Mar 2025 10:00 GMT"

    try:
        return date_parser.parse(value, default=datetime(1900, 1, 1))
    except (ValueError, OverflowError):
        return None


# --- small helpers --------------------------------------------------------------------------------


def _first(*values) -> str | None:
    for v in values:
        if isinstance(v, str) and v.strip():
            return _squash(v)
    return None


_INVISIBLE_ELEMENTS = re.compile(r"<(script|style|noscript|template|svg)\b.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"\w")
_WORDS = re.compile(r"\w+")


def _visible_text(element) -> str:
    """An element's text with its blocks and links kept apart (lexbor's ``.text`` runs them together)."""
    return _squash(html_lib.unescape(_TAG.sub(" ", _INVISIBLE_ELEMENTS.sub(" ", element.html))))


def _nodes(found) -> list:
    """A query's matches as a list. Indexing or iterating Resiliparse's node list rebuilds it for every item
    (quadratic: 140 us an item on a page with a thousand <p>); ``values()`` builds it once."""
    return found.values()


def _reraise_timeout(exc: Exception) -> None:
    """The pipeline's per-document time limit (docclean.pipeline.DocumentTimeout) is not a parsing problem."""
    if type(exc).__name__ == "DocumentTimeout":
        raise exc


def _squash(text: str) -> str:
    return " ".join(text.split())


def _fold(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def _key(block: str) -> str:
    """Identity of a text block (blocks are whitespace-folded already)."""
    return block.lower()
