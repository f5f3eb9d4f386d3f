"""Extract stage: the main content of an HTML page as text, plus its title, date, author, site name and URL.

How (measured on extraction-dev, see benchmarks/extraction.py):

1. Parse once with Resiliparse's lexbor DOM (about 10x faster than trafilatura's pipeline; bs4 would
   take longer to parse a page than this whole stage takes, so it is not used on this hot path).
2. Read metadata from the parsed head: JSON-LD, OpenGraph / Dublin Core / article meta tags, <title>,
   <link rel=canonical>, <time datetime>.
3. Pre-clean the DOM with named rules (``dom_ad_container``, ``dom_paywall``...): each matched container
   is removed and its text recorded as a Removal under the rule's name.
4. Extract the main content with Resiliparse's main-content heuristics; when that looks unreliable (too
   little text) fall back to trafilatura on an lxml tree.
5. Clean the extracted blocks with a few text rules (the title repeated as a heading, repeated blocks,
   ad markers), and record every visible text block that was left out as ``not_main_content``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

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
        "[class*=a2a_kit]", "[class*=sharedaddy]", "[id^=share]",
    ),
    "dom_newsletter": (
        "[class*=newsletter]", "[id*=newsletter]", "[class^=subscribe]", "[class~=signup]", "[class*=signup-form]",
        "[id*=mc_embed]", "[class*=mc4wp]",
    ),
    "dom_related_links": (
        "[class^=related]", "[class*=related-posts]", "[class*=related-articles]", "[class*=related-content]",
        "[class*=related-stories]", "[id^=related]", "[class*=more-stories]", "[class^=trending]", "[class*=most-popular]",
        "[class*=outbrain]", "[id*=outbrain]", "[class*=taboola]", "[id*=taboola]", "[class*=read-next]", "[class~=recommended]",
    ),
    "dom_navigation": ("nav", "[role=navigation]", "[class*=breadcrumb]", "[class~=menu]", "[class*=skip-link]"),
    "dom_site_header": ("body > header", "[role=banner]"),
    "dom_site_footer": ("body > footer", "[role=contentinfo]", "footer[class*=site]", "footer[id*=site]"),
    "dom_sidebar": ("aside", "[role=complementary]", "[class^=sidebar]", "[class~=sidebar]", "[id^=sidebar]"),
    "dom_form": ("form",),
    "dom_comments": ("[id=comments]", "[class~=comments]", "[id=respond]", "[class*=comment-respond]"),
}

_RULE_SELECTORS = {rule: ", ".join(selectors) for rule, selectors in DOM_RULES.items()}
_ALL_RULES_SELECTOR = ", ".join(_RULE_SELECTORS.values())

# A container holding this share of the page's text or more is a page wrapper, whatever its class says.
WRAPPER_TEXT_SHARE = 0.5
NEVER_REMOVED = {"html", "body", "main", "article"}

DROP_REPEATS = False
MAX_RECORDED_CHARS = 20_000  # audit of left-out blocks per document; the rest is summarized in one line

AD_MARKER = re.compile(r"^\W*(advertisement|advertising|sponsored|ad|anzeige|publicité|publicidad)\W*$", re.I)
BULLET = re.compile(r"^\s*(?:[•◦▪‣·*\-–]|\d{1,3}[.)])\s+")


def extract(doc: Document, config: ExtractConfig) -> StageResult:
    if doc.content_type != "html" or doc.html is None:
        return doc, []
    try:
        return _extract(doc, config)
    except Exception as exc:  # broken HTML must never escape as an exception
        return doc.replace(html=None).reject("unparsable_html", f"{type(exc).__name__}: {exc}"), []


def _extract(doc: Document, config: ExtractConfig) -> StageResult:
    tree = HTMLTree.parse(doc.html)
    if tree.body is None:
        return doc.replace(html=None).reject("no_main_content", "the page has no <body>"), []
    meta = page_metadata(tree)
    edits: list[Edit] = []
    if config.preclean_dom:
        edits += preclean(tree)
        if EXPERIMENT.get("link_lists", 0):
            edits += remove_link_lists(tree.body)

    main_blocks = text_blocks(
        extract_plain_text(tree, main_content=True, alt_texts=False, comments=False, form_fields=False)
    )
    all_blocks = text_blocks(
        extract_plain_text(tree, main_content=False, alt_texts=False, comments=True, form_fields=False)
    )
    blocks = main_blocks
    if EXPERIMENT.get("rescue"):
        blocks = rescue_prose(all_blocks, main_blocks)
    if len("".join(blocks)) < config.fallback_below_chars or (EXPERIMENT.get("unsure") and unsure(all_blocks, main_blocks)):
        EXPERIMENT["fallbacks"] = EXPERIMENT.get("fallbacks", 0) + 1
        source = tree.document.html if EXPERIMENT.get("fb_clean") else doc.html
        blocks = trafilatura_blocks(source, doc.url) or blocks

    title = doc.title or meta.get("title")
    blocks, rule_edits = clean_blocks(blocks, title)
    edits += rule_edits
    text = "\n\n".join(blocks)
    if len(text) < max(config.min_text_chars, 1):
        detail = "no main text found" + (f" (after removing {len(edits)} chrome blocks)" if edits else "")
        return doc.replace(html=None).reject("no_main_content", detail), edits

    if config.record_left_out:
        edits += left_out_blocks(all_blocks, blocks, already=edits)

    changes = dict(html=None, text=text)
    for field in ("title", "author", "publisher", "url", "published"):
        if getattr(doc, field) is None and meta.get(field):
            changes[field] = meta[field]
    return doc.with_edits(edits, **changes), edits


EXPERIMENT: dict = {}

SENTENCE_END = re.compile(r"[.!?:;)\"”’]$")


def _prose(block: str) -> bool:
    return len(block) >= EXPERIMENT.get("prose_chars", 120) and bool(SENTENCE_END.search(block))


def rescue_prose(all_blocks: list[str], main_blocks: list[str]) -> list[str]:
    main = {_fold(b) for b in main_blocks}
    out = []
    for b in all_blocks:
        f = _fold(b)
        if f in main or _prose(b):
            out.append(b)
            main.discard(f)
    return out


def unsure(all_blocks: list[str], main_blocks: list[str]) -> bool:
    main = {_fold(b) for b in main_blocks}
    left_prose = sum(len(b) for b in all_blocks if _fold(b) not in main and _prose(b))
    main_chars = sum(len(b) for b in main_blocks)
    return left_prose > EXPERIMENT.get("unsure_ratio", 0.3) * main_chars


# --- DOM pre-cleaning ------------------------------------------------------------------------------


def preclean(tree: HTMLTree) -> list[Removal]:
    """Remove the containers the named DOM rules match, recording each one's text under its rule."""
    body = tree.body
    removals: list[Removal] = []
    removed: list = []
    page_chars = 0
    for element in body.query_selector_all(_ALL_RULES_SELECTOR):
        if element.tag in NEVER_REMOVED or any(r.contains(element) for r in removed[-20:]):
            continue  # gone already with an enclosing container
        text = _squash(element.text)
        if len(text) > 2000:  # only big containers can be page wrappers with an unlucky class name
            page_chars = page_chars or len(body.text)
            if len(text) >= WRAPPER_TEXT_SHARE * page_chars:
                continue
        if _holds_body_text(element):
            continue
        rule = next(name for name, group in _RULE_SELECTORS.items() if element.matches(group))
        element.remove()
        removed.append(element)
        if text:
            removals.append(Removal(rule=rule, text=text[:2000], stage=STAGE))
    return removals


def remove_link_lists(body) -> list[Removal]:
    """Lists whose items are nothing but links (menus, related headlines, tag clouds): link density ~1."""
    removals = []
    for lst in body.query_selector_all("ul, ol"):
        if lst.parent is None:
            continue
        items = lst.query_selector_all("li")
        if len(items) < EXPERIMENT.get("link_list_items", 3):
            continue
        text = _squash(lst.text)
        if not text:
            continue
        link_chars = sum(len(_squash(a.text)) for a in lst.query_selector_all("a"))
        if link_chars >= EXPERIMENT.get("link_density", 0.9) * len(text):
            lst.decompose()
            removals.append(Removal("dom_link_list", text[:2000], STAGE))
    return removals


def _holds_body_text(element) -> bool:
    """Chrome containers hold links and teasers, not the article: several long paragraphs or the <h1> mean
    the class name is misleading (``body-ad-wrapper``, ``has-sidebar``)."""
    if element.query_selector("article, main, h1") is not None:
        return True
    long_paragraphs = 0
    for p in element.query_selector_all("p"):
        if len(p.text) > 150:
            long_paragraphs += 1
            if long_paragraphs >= 3:
                return True
    return False


# --- extraction helpers ----------------------------------------------------------------------------


def text_blocks(text: str) -> list[str]:
    """One block per non-empty line, whitespace folded, list bullets dropped."""
    blocks = []
    for line in text.splitlines():
        line = _squash(BULLET.sub("", line))
        if line:
            blocks.append(line)
    return blocks


def trafilatura_blocks(html: str, url: str | None) -> list[str]:
    import lxml.html
    import trafilatura

    try:
        result = trafilatura.extract(lxml.html.fromstring(html), url=url, include_comments=False,
                                     fast=bool(EXPERIMENT.get("fb_fast")))
    except Exception:
        return []
    return text_blocks(result or "")


def clean_blocks(blocks: list[str], title: str | None) -> tuple[list[str], list[Removal]]:
    kept: list[str] = []
    removed: list[Removal] = []
    seen: set[str] = set()
    folded_title = _fold(title) if title else None
    for i, block in enumerate(blocks):
        folded = _fold(block)
        if folded_title and i < 5 and folded and (folded == folded_title or folded in folded_title and len(folded) > 20):
            removed.append(Removal("title_repeated", block, STAGE))
        elif AD_MARKER.match(block):
            removed.append(Removal("ad_marker", block, STAGE))
        elif folded in seen and len(folded) > 0 and DROP_REPEATS:
            removed.append(Removal("repeated_block", block, STAGE))
        else:
            kept.append(block)
            seen.add(folded)
    return kept, removed


def left_out_blocks(all_blocks: list[str], kept: list[str], already: list[Edit]) -> list[Removal]:
    """The visible blocks the extractor did not keep (and no rule already recorded)."""
    accounted = {_fold(b) for b in kept}
    accounted.update(_fold(e.text) for e in already if isinstance(e, Removal))
    out: list[Removal] = []
    budget = MAX_RECORDED_CHARS
    skipped = 0
    for block in all_blocks:
        folded = _fold(block)
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


def page_metadata(tree: HTMLTree) -> dict:
    meta: dict = {}
    ld = _json_ld(tree)
    head = tree.head
    tags: dict[str, str] = {}
    if head is not None:
        for m in head.query_selector_all("meta[content]"):
            key = (m.getattr("property") or m.getattr("name") or m.getattr("itemprop") or "").strip().lower()
            if key and key not in tags:
                tags[key] = m.getattr("content").strip()
    meta["title"] = _first(ld.get("headline"), tags.get("og:title"), tags.get("twitter:title"), tags.get("dc.title"),
                           _h1(tree), tree.title)
    meta["author"] = _first(ld.get("author"), tags.get("author"), tags.get("article:author"), tags.get("dc.creator"),
                            tags.get("parsely-author"), tags.get("sailthru.author"))
    if meta["author"] and meta["author"].startswith("http"):
        meta["author"] = None
    meta["publisher"] = _first(tags.get("og:site_name"), ld.get("publisher"), tags.get("application-name"))
    published = _first(ld.get("datePublished"), tags.get("article:published_time"), tags.get("datepublished"),
                        tags.get("date"), tags.get("dc.date"), tags.get("dc.date.issued"), tags.get("pubdate"),
                        tags.get("publish-date"), tags.get("parsely-pub-date"), tags.get("sailthru.date"),
                        _time_element(tree))
    meta["published"] = parse_date(published) if published else None
    meta["url"] = _canonical(tree) or tags.get("og:url")
    return meta


def _json_ld(tree: HTMLTree) -> dict:
    """The first JSON-LD object that looks like the page's article (or web page)."""
    found: dict = {}
    for script in tree.document.query_selector_all('script[type="application/ld+json"]'):
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
    return value.strip() if isinstance(value, str) and value.strip() else None


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


def parse_date(value: str) -> datetime | None:
    """An ISO-like date or date-time as a timezone-aware UTC datetime (naive values are taken as UTC)."""
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        m = re.match(r"(\d{4})-(\d{2})-(\d{2})", value) or re.match(r"(\d{4})/(\d{2})/(\d{2})", value)
        if not m:
            return None
        try:
            parsed = datetime(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


# --- small helpers --------------------------------------------------------------------------------


def _first(*values) -> str | None:
    for v in values:
        if isinstance(v, str) and v.strip():
            return _squash(v)
    return None


def _squash(text: str) -> str:
    return " ".join(text.split())


def _fold(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))
