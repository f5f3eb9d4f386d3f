"""Text boilerplate removal: named rules plus a line classifier that judges each line in its context.

The text arrives one paragraph (or one visible text node) per line. Three layers run in order:

1. **Header metadata** (plain-text input only): the top of a scraped page often carries the site name,
   a date, a dateline ``Brussels, Belgium, Feb 13 (AFP) Feb 13, 2025``, the publisher and the title. They
   are parsed into the document's fields (never overwriting a field that is already set) and the lines
   are removed under ``site_header`` / ``date_line`` / ``dateline`` / ``publisher_line`` / ``title_line``.
2. **High-precision patterns** (always): sponsor lines, ``ADVERTISEMENT`` markers, paywall residue (which
   also sets ``truncated``), share / newsletter / cookie prompts, copyright footers, image credits, lone
   navigation words.
3. **Context classifier** (plain-text input only): a two-pass logistic regression over cheap line features
   (length, terminal punctuation, stopword density, title case, digits, link-like words, position in the
   page's text mass) and then over the first pass's scores of the neighbouring lines, like jusText's
   context smoothing: a short line between body paragraphs is a subheading and stays, a run of short
   title-like lines after the body is a related-links block and goes. Weights are trained on
   extraction-dev by ``benchmarks/train_boilerplate.py`` and shipped in ``docclean/data``.

Text that came out of an HTML extractor (``content_type == "html"``) only gets layer 2: the extractor
already removed the page chrome, and the classifier is meant for raw scraped text.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
from collections import Counter
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

from docclean.config import BoilerplateConfig
from docclean.document import Document, Edit, Removal

STAGE = "boilerplate"
DATA = Path(__file__).resolve().parent / "data"
MODEL_PATH = DATA / "boilerplate_model.json"
STOPWORDS_PATH = DATA / "boilerplate_stopwords.json"

_WORD = re.compile(r"\w+", re.UNICODE)
_ALPHA_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_TERMINAL = re.compile(r"[.!?…:;][\"'”’»)\]]*$")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*$")
_DOMAIN = re.compile(r"\b[\w-]+\.(?:com|net|org|co\.uk|fr|de|io|info|news|tv|eu|gov|edu)\b", re.I)

# --- high-precision patterns -------------------------------------------------------------------------

_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("sponsor_line", re.compile(
        r"^(?:sponsor(?:ed)?(?:\s+by)?\s*:|sponsored\s+(?:by|content|post|links?)\b|paid\s+(?:content|post|partner)\b"
        r"|partner\s+content\b|promoted\s+(?:content|stories|links)\b)", re.I)),
    ("advertisement_marker", re.compile(
        r"^(?:-+\s*)?(?:advertisement|advertisements|advertising|advert|ad|ads|sponsored|publicité|anzeige"
        r"|story continues below(?: advertisement)?|article continues below(?: advertisement)?"
        r"|advertisement\s*[-–—:]?\s*(?:continue|scroll) (?:reading|to continue)(?: below)?"
        r"|continue reading below|scroll to continue(?: with content)?|skip advert(?:isement)?)(?:\s*-+)?$", re.I)),
    ("paywall_residue", re.compile(
        r"(?:you have \d+(?:[.,]\d+)?\s?% of (?:this|the) article (?:left )?(?:to read|remaining)"
        r"|the rest (?:of this article )?is (?:reserved )?for subscribers(?: only)?"
        r"|(?:this|the rest of this) (?:article|story|content) is (?:only )?(?:available|reserved) (?:only )?(?:to|for) (?:subscribers|members)"
        r"|subscribe (?:now )?to (?:continue|keep) reading|to continue reading(?:,| this)? (?:please )?(?:subscribe|log ?in|sign ?in)"
        r"|already (?:a subscriber|have an account)\?\s*(?:log|sign) ?in"
        r"|(?:sign|log) ?in (?:or subscribe )?to (?:continue|read the (?:full|rest)))", re.I)),
    ("cookie_notice", re.compile(
        r"(?:\bwe use cookies\b|\bthis (?:web)?site uses cookies\b|\buses? cookies to\b|\baccept (?:all )?cookies\b"
        r"|^cookie (?:policy|settings|preferences|consent)$|\bby continuing to (?:use|browse) (?:this|our) (?:site|website)\b"
        r"|^(?:manage|customi[sz]e) (?:cookies|consent|preferences)$)", re.I)),
    ("newsletter_prompt", re.compile(
        r"(?:^(?:sign up|subscribe) (?:now )?(?:for|to) (?:our|the|my) (?:free )?(?:\w+ ){0,3}(?:newsletters?|emails?|alerts?)"
        r"|^get (?:our|the) (?:\w+ ){0,3}newsletter|delivered (?:straight |directly )?to your inbox|^enter your e-?mail(?: address)?"
        r"|^newsletters?$|^(?:join|subscribe to) our (?:mailing list|newsletter)|in your inbox(?: every| each)? (?:day|week|morning|evening)"
        r"|^(?:thanks|thank you) for (?:signing up|subscribing)[.!]?$)", re.I)),
    ("share_prompt", re.compile(
        r"^(?:share(?: (?:this|the) (?:article|story|post|page|video))?(?: (?:on|via) \w+)?|share:?|tweet(?: this)?|pin it"
        r"|(?:click to )?share on (?:facebook|twitter|x|linkedin|whatsapp|reddit|pinterest|telegram|email)(?: \(opens in new window\))?"
        r"|copy (?:the )?link|link copied|(?:facebook|twitter|linkedin|whatsapp|reddit|pinterest|telegram|flipboard)"
        r"|follow us(?: on \w+)?|print(?: this article)?|email(?: this article)?)[.!:]?$", re.I)),
    ("copyright_footer", re.compile(
        r"(?:^(?:©|\(c\)|copyright\b|&copy;)|\ball rights reserved\b|^(?:\w+\s){0,6}©\s*(?:\d{4}))", re.I)),
    ("image_credit", re.compile(
        r"(?:^(?:image|images|photo|photos|photograph|picture|illustration|credit|credits|photo credit|image credit|source)s?\s*(?:[:|/]\s*|\s+)(?:\S+\s*){1,6}$"
        r"|(?:/|\bvia|\bby|\()\s*(?:getty images|shutterstock|istock(?:photo)?|afp|reuters|ap photo|ap|epa|alamy)\)?$"
        r"|^(?:getty images|shutterstock|istock(?:photo)?|afp|reuters|ap photo)(?:\s*[/|]\s*\S+)?$)", re.I)),
]
_PATTERN_MAX_WORDS = {
    "advertisement_marker": 8, "share_prompt": 10, "newsletter_prompt": 30, "cookie_notice": 60,
    "image_credit": 10, "sponsor_line": 40, "paywall_residue": 40, "copyright_footer": 120,
}

# Rules too loose for text an HTML extractor already cleaned (a caption there is usually one it kept on purpose).
_TEXT_ONLY_RULES = {"image_credit"}

_NAV_WORDS = {
    "back", "topic", "topics", "home", "menu", "next", "previous", "prev", "more", "top", "back to top", "skip to content",
    "skip to main content", "search", "log in", "login", "sign in", "sign up", "register", "close", "comments",
    "reply", "read more", "see more", "load more", "show more", "view all", "see all", "next article", "previous article",
    "related", "tags", "categories", "go", "submit", "continue reading", "read next", "up next", "main menu",
    "toggle navigation", "open menu", "close menu", "sections", "all", "latest", "trending", "watch", "listen",
    "subscribe", "my account", "account", "download", "cancel", "ok", "« back", "<< back", "back »",
}
_NAV_CRUMB = re.compile(r"^(?:\|\s*\S.*|.*\S\s*\|\s*|\d{1,4}|[|/»›>·•\-–—:]+)$")

# --- header metadata -----------------------------------------------------------------------------

_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_MON = r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_TIME = r"(?:,?\s*(?:at\s+)?\d{1,2}[:.]\d{2}(?:\s*[ap]\.?m\.?)?(?:\s*(?:utc|gmt|[ecmp][sd]t|cet|cest))?)?"
_WEEKDAY = r"(?:(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?,?\s+)?"
_LEAD = r"(?:(?:published|updated|posted|last updated|first published|date)(?:\s+on)?\s*:?\s*)?"
_DATE_FORMS = [
    re.compile(_WEEKDAY + _MON + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})", re.I),
    re.compile(_WEEKDAY + r"(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+" + _MON + r",?\s+(?P<year>\d{4})", re.I),
    re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?", re.I),
]
_DATE_LINE = re.compile(
    r"^[\s|·•\-–—,]*" + _LEAD + r"(?P<date>.+?)" + _TIME + r"[\s|·•\-–—,]*$", re.I)
_AGENCIES = {
    "afp": "AFP", "ap": "AP", "reuters": "Reuters", "upi": "UPI", "xinhua": "Xinhua", "dpa": "dpa", "ians": "IANS",
    "pti": "PTI", "ani": "ANI", "efe": "EFE", "ansa": "ANSA", "tass": "TASS", "bloomberg": "Bloomberg",
}
_DATELINE = re.compile(
    r"^(?P<place>[A-Z][\w.'’\- ]{1,40}(?:,\s*[A-Z][\w.'’\- ]{1,40}){0,2}),?\s+"
    r"(?:" + _MON.replace("?P<mon>", "?:") + r"\s+\d{1,2},?\s+)?\((?P<agency>[A-Za-z]{2,10})\)\s*(?P<rest>.*)$")
_MONTH_DAY_TAIL = re.compile(r",?\s+" + _MON.replace("?P<mon>", "?:") + r"\s+\d{1,2}$", re.I)
_INLINE_DATELINE = re.compile(r"^(?P<place>[A-Z][\w.'’]+(?: [A-Z][\w.'’]+){0,2}(?:, [A-Z][\w.'’]+(?: [A-Z][\w.'’]+){0,2})?)\s+[–—]\s+\S")
_KNOWN_PUBLISHERS = {
    "le monde", "the guardian", "the new york times", "the washington post", "reuters", "afp", "agence france-presse",
    "associated press", "the associated press", "bbc", "bbc news", "cnn", "bloomberg", "politico", "politico europe",
    "financial times", "the economist", "al jazeera", "euronews", "deutsche welle", "dw", "france 24", "the times",
    "the telegraph", "the independent", "wall street journal", "the wall street journal", "le figaro", "libération",
    "der spiegel", "el país", "npr", "axios", "the hill", "fox news", "nbc news", "cbs news", "abc news",
}


def parse_date(text: str) -> datetime | None:
    """The first date in ``text`` in a common news form, as midnight UTC (or the stated time for ISO)."""
    for form in _DATE_FORMS:
        m = form.search(text)
        if not m:
            continue
        g = m.groupdict()
        try:
            month = int(g["month"]) if g.get("month") else _MONTHS[g["mon"][:3].lower()]
            return datetime(int(g["year"]), month, int(g["day"]), tzinfo=timezone.utc)
        except (ValueError, KeyError):
            continue
    return None


def _date_only_line(line: str) -> datetime | None:
    """The date when the line holds nothing but a date (with an optional time, label and separators)."""
    m = _DATE_LINE.match(line)
    if not m or len(line) > 60:
        return None
    inner = m.group("date").strip()
    for form in _DATE_FORMS:
        dm = form.fullmatch(inner)
        if dm:
            return parse_date(inner)
    return None


# --- line features -------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    try:
        return frozenset(json.loads(STOPWORDS_PATH.read_text(encoding="utf-8")))
    except OSError:
        return frozenset()


_CHROME_WORDS = {
    "login", "log", "sign", "subscribe", "subscription", "cookie", "cookies", "privacy", "terms", "share", "follow",
    "comments", "comment", "reply", "menu", "newsletter", "advertisement", "advertise", "contact", "about", "careers",
    "copyright", "rights", "reserved", "policy", "facebook", "twitter", "instagram", "linkedin", "youtube", "tiktok",
    "whatsapp", "pinterest", "rss", "home", "search", "account", "password", "cart", "checkout", "shop", "sitemap",
    "faq", "help", "support", "download", "app", "apps", "podcast", "podcasts", "video", "videos", "photos", "more",
    "related", "trending", "popular", "latest", "read", "click", "tap", "view", "next", "previous", "page", "tags",
}

FEATURE_NAMES = [
    "bias", "log_words", "log_chars", "ends_sentence", "ends_colon", "stopword_ratio", "titlecase_ratio",
    "digit_ratio", "upper_ratio", "starts_lower", "starts_punct", "chrome_word_ratio", "has_separator",
    "has_domain", "is_date", "log_duplicates", "rel_pos", "comma_rate", "mean_word_len", "very_short",
    "mass_before", "mass_after", "is_first_mass", "is_last_mass",
    "win1_words", "win3_words", "win10_words", "win3_prose", "win10_prose",
    "prev_words", "prev_sentence", "prev_stop", "next_words", "next_sentence", "next_stop", "next_starts_lower",
    "prev_open", "joins_sentence", "pattern_hit", "nav_word", "words_gt_8", "words_gt_20", "n_lines_log",
    "lex_mean", "lex_min", "lex_max", "lex_coverage", "known_chrome_line", "prev_lex_mean", "next_lex_mean",
    "win3_lex_mean", "log_short_run", "run_between_prose", "log_prose_distance",
]


class Lexicon:
    """Word log-odds of body vs chrome, and whole lines known as chrome on many sites, learned on the
    training split (see benchmarks/train_boilerplate.py); empty when no model ships."""

    __slots__ = ("words", "lines")

    def __init__(self, words: dict[str, float] | None = None, lines: set[str] | frozenset[str] = frozenset()):
        self.words = words or {}
        self.lines = frozenset(lines)


# Whole-page tokenizers: the lines joined with "\n", which no token crosses, so one regex pass gives every
# line's tokens with the newlines as separators (a per-line loop of small calls cost ten times more).
_WORD_OR_NEWLINE = re.compile(r"\w+|\n")
_ALPHA_OR_NEWLINE = re.compile(r"[^\W\d_]+|\n")
_SENTENCE_END_EACH = re.compile(_SENTENCE_END.pattern, re.M)
# the tail of _DOMAIN alone: a cheap scan for the few lines worth the full (backtracking) pattern
_TOP_LEVEL_DOMAIN = re.compile(r"\.(?:com|net|org|co\.uk|fr|de|io|info|news|tv|eu|gov|edu)\b", re.I)
_FIRST_CHAR = operator.itemgetter(0)
_LEADING_PUNCT = frozenset(",.;:!?)]}’”'\"-–—")
_SEPARATORS = "|»›•·"
_NAV_STRIP = operator.methodcaller("strip", " .:|»›")
_ENDS_COLON = operator.methodcaller("endswith", ":")


@lru_cache(maxsize=1)
def _char_classes() -> tuple[np.ndarray, np.ndarray]:
    """str.isdigit / str.isupper of every BMP code point, as lookup tables (astral ones are asked directly)."""
    bmp = [chr(c) for c in range(0x10000)]
    return (np.fromiter(map(str.isdigit, bmp), dtype=bool, count=0x10000),
            np.fromiter(map(str.isupper, bmp), dtype=bool, count=0x10000))


def _chars_per_line(text: str, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits, upper-case letters, commas and separator characters in each line of ``text``."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    is_digit, is_upper = _char_classes()
    bmp = np.minimum(codes, 0xFFFF)
    digit, upper = is_digit[bmp], is_upper[bmp]
    for i in np.flatnonzero(codes > 0xFFFF):
        char = text[i]
        digit[i], upper[i] = char.isdigit(), char.isupper()
    comma = codes == ord(",")
    separator = np.isin(codes, [ord(c) for c in _SEPARATORS])
    return tuple(np.add.reduceat(flags.astype(np.int64), starts) for flags in (digit, upper, comma, separator))


def _tokens_per_line(tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """For a token list with a newline token between lines: which tokens are words, and each token's line."""
    newline = np.fromiter(map("\n".__eq__, tokens), dtype=bool, count=len(tokens))
    return ~newline, np.cumsum(newline)


def _count(line_of: np.ndarray, m: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(line_of, weights=weights, minlength=m)[:m]


def _local_columns(lines: list[str], stop: frozenset[str], pattern_hits: list[bool], lexicon: Lexicon) -> dict:
    """The features of each line on its own, as columns. Lines are non-empty and hold no newline."""
    m = len(lines)
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=m)
    starts = np.concatenate([[0], np.cumsum(lengths[:-1] + 1)]).astype(np.int64)
    text = "\n".join(lines)
    lows = list(map(str.lower, lines))
    low_text = "\n".join(lows)

    tokens = _WORD_OR_NEWLINE.findall(low_text)
    is_word, line_of = _tokens_per_line(tokens)
    word_line = line_of[is_word]
    n = _count(word_line, m)
    n_or_1 = np.maximum(n, 1)
    stop_flags = np.fromiter(map(stop.__contains__, tokens), dtype=bool, count=len(tokens))
    chrome_flags = np.fromiter(map(_CHROME_WORDS.__contains__, tokens), dtype=bool, count=len(tokens))
    token_len = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    letters_in_words = _count(word_line, m, token_len[is_word].astype(float))

    lex_value = np.fromiter(map(lexicon.words.get, tokens, itertools.repeat(math.nan)), dtype=float, count=len(tokens))
    found = ~np.isnan(lex_value)
    found_line, found_value = line_of[found], lex_value[found]
    n_found = _count(found_line, m)
    has_found = n_found > 0
    lex_sum = _count(found_line, m, found_value)  # in line order, as a left-to-right sum
    lex_min, lex_max = np.full(m, math.inf), np.full(m, -math.inf)
    np.minimum.at(lex_min, found_line, found_value)
    np.maximum.at(lex_max, found_line, found_value)
    word_lines = map(str.strip, " ".join(tokens).split("\n"))  # each line's words, space-joined
    known = np.fromiter(map(lexicon.lines.__contains__, word_lines), dtype=float, count=m)
    lex = np.column_stack([
        np.where(has_found, lex_sum / np.maximum(n_found, 1), 0.0), np.where(has_found, lex_min, 0.0),
        np.where(has_found, lex_max, 0.0), np.where(has_found, n_found / n_or_1, 0.0), known,
    ])

    alpha = _ALPHA_OR_NEWLINE.findall(text)
    is_alpha, alpha_line_of = _tokens_per_line(alpha)
    alpha_line = alpha_line_of[is_alpha]
    n_alpha = np.maximum(_count(alpha_line, m), 1)
    alpha_len = np.fromiter(map(len, alpha), dtype=float, count=len(alpha))[is_alpha]
    letters = _count(alpha_line, m, alpha_len)
    letters = np.where(letters == 0, 1.0, letters)
    titlecase = np.fromiter(map(str.isupper, map(_FIRST_CHAR, alpha)), dtype=bool, count=len(alpha))
    n_titlecase = _count(alpha_line_of[titlecase & is_alpha], m)

    digits, uppers, commas, separators = _chars_per_line(text, starts)
    line_index = np.arange(m)
    ends_sentence = np.zeros(m)
    ends_sentence[np.searchsorted(starts, [h.start() for h in _SENTENCE_END_EACH.finditer(text)], "right") - 1] = 1.0
    has_domain = np.zeros(m)
    for i in set(np.searchsorted(starts, [h.start() for h in _TOP_LEVEL_DOMAIN.finditer(text)], "right") - 1):
        has_domain[i] = 1.0 if _DOMAIN.search(lines[i]) else 0.0
    is_date = np.zeros(m)
    for i in np.flatnonzero((n <= 8) & (digits >= 4)):  # every date form has a four-digit year
        is_date[i] = 1.0 if parse_date(lines[i]) else 0.0
    firsts = list(map(_FIRST_CHAR, lines))
    n_list = n.tolist()
    return {
        "n_words": n.astype(float),
        "log_words": np.fromiter(map(math.log1p, n_list), dtype=float, count=m),
        "log_chars": np.fromiter(map(math.log1p, lengths.tolist()), dtype=float, count=m),
        "ends_sentence": ends_sentence,
        "ends_colon": np.fromiter(map(_ENDS_COLON, lines), dtype=float, count=m),
        "stop_ratio": _count(line_of[stop_flags & is_word], m) / n_or_1,
        "title_ratio": n_titlecase / n_alpha,
        "digit_ratio": digits / lengths,
        "upper_ratio": uppers / letters,
        "starts_lower": np.fromiter(map(str.islower, firsts), dtype=float, count=m),
        "starts_punct": np.fromiter(map(_LEADING_PUNCT.__contains__, firsts), dtype=float, count=m),
        "chrome_ratio": _count(line_of[chrome_flags & is_word], m) / n_or_1,
        "has_separator": (separators > 0).astype(float),
        "has_domain": has_domain,
        "is_date": is_date,
        "mean_word_len": np.where(n > 0, letters_in_words / n_or_1, 0.0),
        "comma_rate": commas / n_or_1,
        "pattern_hit": np.array(pattern_hits, dtype=float).reshape(m),
        "nav_word": np.fromiter(map(_NAV_WORDS.__contains__, map(_NAV_STRIP, lows)), dtype=float, count=m),
        "lex": lex,
    }


def line_features(lines: list[str], lexicon: Lexicon | None = None, pattern_hits: list[bool] | None = None) -> np.ndarray:
    """One row of FEATURE_NAMES per line; the same function serves training and inference."""
    stop = _stopwords()
    if pattern_hits is None:
        pattern_hits = [_pattern_rule(line) is not None for line in lines]
    if lexicon is None:
        model = _model()
        lexicon = model["lexicon"] if model else Lexicon()
    m = len(lines)
    if not m:
        return np.zeros((0, len(FEATURE_NAMES)))
    c = _local_columns(lines, stop, pattern_hits, lexicon)
    lex = c["lex"]
    words = c["n_words"]
    sentence = c["ends_sentence"]
    prose = ((words >= 10) & (sentence > 0)) | (words >= 25)
    mass = np.where(prose, words, 0.0)
    total = mass.sum() or 1.0
    cum = np.cumsum(mass)
    mass_before = (cum - mass) / total
    mass_after = (total - cum) / total
    prose_idx = np.flatnonzero(prose)
    first_prose = prose_idx[0] if len(prose_idx) else m
    last_prose = prose_idx[-1] if len(prose_idx) else -1
    counts = Counter(lines)

    def window_sum(arr: np.ndarray, k: int) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(arr)])
        idx = np.arange(m)
        lo = np.clip(idx - k, 0, m)
        hi = np.clip(idx + k + 1, 0, m)
        return (c[hi] - c[lo]) - arr

    prose_f = prose.astype(float)
    win1 = np.log1p(window_sum(words, 1))
    win3 = np.log1p(window_sum(words, 3))
    win10 = np.log1p(window_sum(words, 10))
    win3p = window_sum(prose_f, 3) / 6
    win10p = window_sum(prose_f, 10) / 20

    def shift(arr, k, fill=0.0):
        arr = np.asarray(arr, dtype=float)
        out = np.full(m, fill)
        if k > 0:
            out[k:] = arr[:-k] if m > k else out[k:]
        else:
            out[:k] = arr[-k:] if m > -k else out[:k]
        return out

    lw = c["log_words"]
    st = c["stop_ratio"]
    sl = c["starts_lower"]
    prev_open = shift(1.0 - sentence, 1) * shift(lw, 1)  # previous line stops mid-sentence
    joins = np.clip(shift(1.0 - sentence, 1) * (sl + c["starts_punct"]), 0, 1)
    idx = np.arange(m)
    cols = [
        np.ones(m), lw, c["log_chars"], sentence, c["ends_colon"], st, c["title_ratio"],
        c["digit_ratio"], c["upper_ratio"], sl, c["starts_punct"], c["chrome_ratio"],
        c["has_separator"], c["has_domain"], c["is_date"],
        np.log1p(np.array([counts[line] - 1 for line in lines], dtype=float)),
        idx / max(m - 1, 1), c["comma_rate"], c["mean_word_len"] / 10, (words <= 2).astype(float),
        mass_before, mass_after, (idx < first_prose).astype(float), (idx > last_prose).astype(float),
        win1, win3, win10, win3p, win10p,
        shift(lw, 1), shift(sentence, 1), shift(st, 1), shift(lw, -1), shift(sentence, -1), shift(st, -1),
        shift(sl, -1), prev_open, joins, c["pattern_hit"], c["nav_word"],
        (words > 8).astype(float), (words > 20).astype(float), np.full(m, math.log1p(m)) / 8,
    ]
    lex_mean = lex[:, 0]
    cols += [lex_mean, lex[:, 1], lex[:, 2], lex[:, 3], lex[:, 4], shift(lex_mean, 1), shift(lex_mean, -1),
             window_sum(lex_mean, 3) / 6, *_run_features(prose)]
    return np.column_stack(cols)


def _run_features(prose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """jusText's context, directly: how long the run of short lines around a line is (a menu is long, a
    subheading is a run of one), whether prose closes the run on both sides, and how far the nearest prose is."""
    m = len(prose)
    run_len = np.zeros(m)
    between = np.zeros(m)
    distance = np.zeros(m)
    i = 0
    while i < m:
        if prose[i]:
            i += 1
            continue
        j = i
        while j < m and not prose[j]:
            j += 1
        run_len[i:j] = j - i
        between[i:j] = 1.0 if i > 0 and j < m else 0.0
        k = np.arange(i, j)
        before = k - (i - 1) if i > 0 else np.full(j - i, m)
        after = j - k if j < m else np.full(j - i, m)
        distance[i:j] = np.minimum(before, after)
        i = j
    return np.log1p(run_len), between, np.log1p(distance)


def context_features(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Second-pass features: the first pass's body scores of the neighbours (jusText-style smoothing)."""
    m = len(p)

    def window_mean(k: int) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(p)])
        idx = np.arange(m)
        lo = np.clip(idx - k, 0, m)
        hi = np.clip(idx + k + 1, 0, m)
        return (c[hi] - c[lo] - p) / np.maximum(hi - lo - 1, 1)

    prev_p = np.concatenate([[0.0], p[:-1]]) if m else p
    next_p = np.concatenate([p[1:], [0.0]]) if m else p
    max_before = np.maximum.accumulate(np.concatenate([[0.0], p[:-1]])) if m else p
    max_after = np.maximum.accumulate(np.concatenate([p[1:], [0.0]])[::-1])[::-1] if m else p
    logit = np.log(np.clip(p, 1e-4, 1 - 1e-4) / np.clip(1 - p, 1e-4, 1))
    cols = [p, logit / 5, prev_p, next_p, window_mean(2), window_mean(5), window_mean(15), max_before, max_after,
            np.minimum(prev_p, next_p), np.maximum(prev_p, next_p)]
    return np.column_stack([x] + cols)


CONTEXT_NAMES = FEATURE_NAMES + ["p", "logit", "prev_p", "next_p", "win2_p", "win5_p", "win15_p", "max_p_before",
                                 "max_p_after", "min_neigh_p", "max_neigh_p"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


class _Stage:
    """One pass of the line model: a logistic regression or a tree ensemble, evaluated with numpy.

    The trees are packed as perfect binary trees in heap order (a leaf above the last level fills both of
    its subtrees), so one walk over [trees x lines] needs only flat ``take`` gathers: about twice as fast as
    following the trained node arrays, with the same leaves and the same sums."""

    def __init__(self, spec: dict):
        self.kind = spec["kind"]
        if self.kind == "logistic":
            self.weights = np.array(spec["weights"])
            return
        self.bias = float(spec["bias"])
        self.depth = depth = int(spec["depth"])
        feature, threshold, value = spec["feature"], spec["threshold"], spec["value"]
        left, right, roots = spec["left"], spec["right"], spec["roots"]
        n_inner, n_leaves, n_trees = 2**depth - 1, 2**depth, len(roots)
        self.n_trees = n_trees
        heap_feature = np.zeros((n_trees, n_inner), dtype=np.intp)
        heap_threshold = np.full((n_trees, n_inner), np.inf)
        heap_value = np.zeros((n_trees, n_leaves))
        for tree, root in enumerate(roots):
            stack = [(0, 0, root)]  # (heap position, level, trained node)
            while stack:
                pos, level, node = stack.pop()
                if level == depth:  # rows stop here after ``depth`` steps, leaf or not
                    heap_value[tree, pos - n_inner] = value[node]
                elif left[node] < 0:
                    stack += [(2 * pos + 1, level + 1, node), (2 * pos + 2, level + 1, node)]
                else:
                    heap_feature[tree, pos] = feature[node]
                    heap_threshold[tree, pos] = threshold[node]
                    stack += [(2 * pos + 1, level + 1, left[node]), (2 * pos + 2, level + 1, right[node])]
        self.feature = heap_feature.ravel()
        self.threshold = heap_threshold.ravel()
        self.value = heap_value.ravel()
        self.root_feature = heap_feature[:, 0].copy()
        self.root_threshold = heap_threshold[:, 0].copy()
        self.tree_base = (np.arange(n_trees) * n_inner)[:, None]
        self.leaf_base = (np.arange(n_trees) * n_leaves - n_inner)[:, None]

    def logit(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "logistic":
            return x @ self.weights
        m = len(x)
        by_feature = np.ascontiguousarray(x.T)  # [features x lines]: a tree's rows mostly read one feature
        flat = by_feature.ravel()
        rows = np.arange(m)[None, :]
        feature_offset = self.feature * m
        goes_left = by_feature[self.root_feature] <= self.root_threshold[:, None]
        pos = 2 - goes_left.astype(np.intp)  # [trees x lines] heap position: left child 2k+1, right 2k+2
        for _ in range(1, self.depth):
            node = pos + self.tree_base
            goes_left = flat.take(feature_offset.take(node) + rows) <= self.threshold.take(node)
            pos *= 2
            pos += 2
            pos -= goes_left
        leaves = self.value.take(pos + self.leaf_base)
        # summed along each line's trees in order, as the trained evaluation did
        return np.ascontiguousarray(leaves.T).sum(axis=1) + self.bias


@lru_cache(maxsize=1)
def _model() -> dict | None:
    try:
        raw = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    except OSError:
        return None
    if raw.get("features") != FEATURE_NAMES:
        return None  # weights from another feature set: fall back to hand-set thresholds
    lex = raw.get("lexicon") or {}
    return {
        "stage1": _Stage(raw["stage1"]), "stage2": _Stage(raw["stage2"]),
        "lexicon": Lexicon(lex.get("words"), set(lex.get("lines", ()))),
        "smoothing": raw.get("smoothing"),
    }


def _hand_scores(x: np.ndarray) -> np.ndarray:
    """Hand-set fallback when no trained weights ship: prose-like lines and lines sitting among prose."""
    f = {name: x[:, i] for i, name in enumerate(FEATURE_NAMES)}
    score = (1.2 * f["ends_sentence"] + 1.5 * (f["log_words"] - 1.8) + 2.0 * f["stopword_ratio"]
             + 1.5 * f["win3_prose"] - 1.0 * f["chrome_word_ratio"] - 2.0 * (f["is_first_mass"] + f["is_last_mass"])
             + 1.5 * f["joins_sentence"])
    return _sigmoid(score)


def body_scores(lines: list[str], pattern_hits: list[bool] | None = None) -> np.ndarray:
    """The probability that each line is main content, given the lines around it."""
    if not lines:
        return np.zeros(0)
    model = _model()
    if model is None:
        return _hand_scores(line_features(lines, Lexicon(), pattern_hits))
    x = line_features(lines, model["lexicon"], pattern_hits)
    p1 = _sigmoid(model["stage1"].logit(x))
    return _sigmoid(model["stage2"].logit(context_features(x, p1)))


# --- the stage -----------------------------------------------------------------------------------

# a cheap substring test before each rule's regex (most lines match none)
_PATTERN_GATE = {
    "sponsor_line": lambda low: low.startswith(("sponsor", "paid", "partner", "promoted")),
    "paywall_residue": lambda low: "subscri" in low or "log" in low or "sign" in low or "member" in low,
    "cookie_notice": lambda low: "cookie" in low or "continuing" in low or "consent" in low or "preferences" in low,
    "newsletter_prompt": lambda low: "newsletter" in low or "inbox" in low or "mail" in low or "sign" in low
    or "subscri" in low or "thank" in low or "mailing" in low,
    "copyright_footer": lambda low: "©" in low or "(c)" in low or "copyright" in low or "reserved" in low,
}


def _pattern_rule(line: str, n_words: int | None = None) -> str | None:
    if n_words is None:
        n_words = line.count(" ") + 1  # an upper bound on the words is enough for the length caps
    low = line.lower()
    exact = None
    for rule, pattern in _PATTERNS:
        cap = _PATTERN_MAX_WORDS[rule]
        if n_words > cap:
            if exact is None:
                exact = len(_WORD.findall(line))
            if exact > cap:
                continue
        gate = _PATTERN_GATE.get(rule)
        if gate is not None and not gate(low):
            continue
        if pattern.search(line):
            return rule
    return None


# Every gate word of _PATTERN_GATE, to find in one pass the lines a gated rule could match.
_GATE_WORDS = re.compile(
    "sponsor|paid|partner|promoted|subscri|log|sign|member|cookie|continuing|consent|preferences|newsletter"
    "|inbox|mail|thank|©|\\(c\\)|copyright|reserved")
_SMALL_TEXT = 4000
_FEW_LINES = 100
_NAV_LINE_STRIP = operator.methodcaller("strip", " .:")


def _word_counts(text: str) -> list[int]:
    """The number of ``\\w+`` words in each line of ``text``."""
    if len(text) < _SMALL_TEXT:  # numpy's fixed costs outweigh a loop on a short extracted article
        return [len(_WORD.findall(line)) for line in text.split("\n")]
    tokens = _WORD_OR_NEWLINE.findall(text)
    is_word, line_of = _tokens_per_line(tokens)
    return np.bincount(line_of[is_word], minlength=text.count("\n") + 1).tolist()


def _lines_with(pattern: re.Pattern, text: str) -> set[int]:
    """The lines of ``text`` where ``pattern`` matches, and every line a match runs into (so a line whose
    own match a longer one swallowed is found too)."""
    hits = [(hit.start(), max(hit.end() - 1, hit.start())) for hit in pattern.finditer(text)]
    if not hits:
        return set()
    first, last = (np.searchsorted(_line_starts(text), np.array(hits).T, "right") - 1).tolist()
    return {line for a, b in zip(first, last) for line in range(a, b + 1)}


def _line_starts(text: str) -> np.ndarray:
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return np.concatenate([[0], np.flatnonzero(codes == 10) + 1])


# The rules without a gate word, as one pattern tried at the start of each line (they are anchored there),
# plus the one place they are not: a credit at the end of a caption ("... / Getty Images"), which a scan for
# its loose form over the whole page finds. A line with none of these and no gate word cannot match a rule.
_UNGATED_ANY = re.compile(
    "|".join(f"(?:{pattern.pattern})" for rule, pattern in _PATTERNS if rule not in _PATTERN_GATE), re.I)
_CREDIT_TAIL = re.compile(r"(?:/|via|by|\()\s*(?:getty images|shutterstock|istock|afp|reuters|ap|epa|alamy)", re.I)


def _pattern_rules(lines: list[str], text: str) -> list[str | None]:
    """_pattern_rule of each line, asked only where a rule could match."""
    if len(lines) < _FEW_LINES:  # an extracted article: its few long lines fail the word caps at once
        return list(map(_pattern_rule, lines))
    candidates = _lines_with(_GATE_WORDS, text.lower()) | _lines_with(_CREDIT_TAIL, text)
    candidates.update(i for i, hit in enumerate(map(_UNGATED_ANY.match, lines)) if hit is not None)
    rules: list[str | None] = [None] * len(lines)
    for i in candidates:
        rules[i] = _pattern_rule(lines[i])
    return rules


def _is_prose(line: str, n: int | None = None) -> bool:
    """``n``: the line's word count when already known."""
    if n is None:
        n = len(_WORD.findall(line))
    return (n >= 12 and bool(_TERMINAL.search(line))) or n >= 30


def _title_like(line: str, n: int | None = None) -> bool:
    if n is None:
        n = len(_WORD.findall(line))
    return 2 <= n <= 30 and not line.endswith(".")


def _parse_header(lines: list[str], doc: Document, taken: set[int]) -> tuple[dict[int, str], dict]:
    """Rule names for the metadata lines at the top of a plain-text page, and the fields they give.
    ``taken`` are lines another rule already removed (a long sponsor line is not where the body starts)."""
    limit = next((i for i, line in enumerate(lines[:30]) if i not in taken and _is_prose(line)), min(len(lines), 30))
    rules: dict[int, str] = {}
    meta: dict = {}
    dates: list[tuple[int, datetime]] = []
    for i in range(limit):
        if i in taken:
            continue
        line = lines[i]
        m = _DATELINE.match(line)
        if m and m.group("agency").lower() in _AGENCIES:
            rules[i] = "dateline"
            meta["dateline"] = _MONTH_DAY_TAIL.sub("", m.group("place")).strip().rstrip(",")
            meta["publisher"] = _AGENCIES[m.group("agency").lower()]
            when = parse_date(m.group("rest")) or parse_date(line)
            if when:
                dates.append((i, when))
            continue
        when = _date_only_line(line)
        if when:
            rules[i] = "date_line"
            dates.append((i, when))
    if dates:
        # an aggregator puts its own date above the original one: the date nearest the body wins
        meta["published"] = dates[-1][1]
    date_rows = {i for i, _ in dates}
    # The top line, once lines already removed (an ad marker above the masthead) are set aside: so that
    # cleaning a cleaned text finds the same site header.
    top = next((i for i in range(limit) if i not in rules and i not in taken), -1)
    # bottom-up, so a masthead repeated above its publisher line ("Le Soir" / "Le Soir" / date) is seen too
    for i in reversed(range(limit)):
        if i in rules or i in taken:
            continue
        line = lines[i]
        words = _WORD.findall(line)
        near_date = any(abs(i - j) <= 2 for j in date_rows)
        if i == top and limit > 1 and len(words) <= 10 and not _TERMINAL.search(line) and (
            _DOMAIN.search(line) or (line.isupper() and len(words) >= 2)
        ):
            rules[i] = "site_header"
        elif line.lower() in _KNOWN_PUBLISHERS or (
            near_date and 1 <= len(words) <= 4 and not any(c.isdigit() for c in line) and not _TERMINAL.search(line)
            and all(w[0].isupper() for w in _ALPHA_WORD.findall(line)) and (i + 1) in date_rows | set(rules)
        ):
            rules[i] = "publisher_line"
            if "publisher" not in meta or lines[i].lower() in _KNOWN_PUBLISHERS:
                meta["publisher"] = line.strip()
    for i in range(limit):
        if i in rules or i in taken:
            continue
        line = lines[i]
        nxt = rules.get(i + 1)
        if nxt in ("dateline", "date_line") and _title_like(line) and len(_WORD.findall(line)) >= 3:
            rules[i] = "title_line"
            meta.setdefault("title", line)
        elif doc.title and line.casefold() == doc.title.strip().casefold():
            rules[i] = "title_line"
        elif rules and line.isupper() and len(_WORD.findall(line)) <= 6 and i < limit:
            rules[i] = "section_label"
    if "dateline" not in meta:
        # "Paris, France – Amid ..." opening one of the first paragraphs: the place is recorded, the text stays
        for line in lines[limit : limit + 5]:
            m = _INLINE_DATELINE.match(line)
            if m and _is_prose(line):
                meta["dateline"] = m.group("place")
                break
    return rules, meta


def _name_classified(i: int, line: str, first_body: int, last_body: int, n: int) -> str:
    if n <= 2 or _NAV_CRUMB.match(line):
        return "navigation"
    if i < first_body:
        return "page_header"
    if i > last_body:
        return "related_headlines" if _title_like(line, n) else "page_footer"
    return "inline_chrome"


_GLUE_WORDS = {
    "a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "from", "with", "and", "or", "but", "as", "than",
    "our", "your", "their", "its", "his", "her", "my", "see", "via", "into", "about", "like", "is", "are", "was",
}
_CLOSING = tuple(",.;:!?)]}%’”»")


def _continues(previous: str, line: str) -> bool:
    """Whether ``line`` is the next piece of the same sentence (a scraper puts each link on its own line)."""
    if line.startswith(_CLOSING):
        return True
    if _TERMINAL.search(previous):
        return False
    if line[0].islower():
        return True
    last = previous.rsplit(None, 1)[-1].lower()
    return last in _GLUE_WORDS or previous.endswith((",", "(", "“", "‘", "—", "–"))


def _join_fragments(lines: list[str], kept: list[int], after_blank: set[int] = frozenset()) -> str:
    """Kept lines as paragraphs separated by a blank line, with the pieces of one sentence put back together.

    Only lines that were next to each other, with no blank line between, are joined: the output separates
    paragraphs by blank lines, so cleaning it again joins nothing more (idempotent)."""
    paragraphs: list[str] = []
    previous = -2
    for i in kept:
        line = lines[i]
        if paragraphs and i == previous + 1 and i not in after_blank and _continues(lines[previous], line):
            glue = "" if line.startswith(_CLOSING) else " "
            paragraphs[-1] += glue + line
        else:
            paragraphs.append(line)
        previous = i
    return "\n\n".join(paragraphs)


def strip_boilerplate(doc: Document, config: BoilerplateConfig) -> tuple[Document, list[Edit]]:
    if not config.enabled or doc.rejected:
        return doc, []
    if not doc.text.strip():  # blank lines only: nothing to judge, nothing to keep
        return (doc.replace(text="") if doc.text else doc), []
    try:
        return _strip(doc, config)
    except Exception as exc:  # a cleaning bug must not lose the document
        return doc.reject("boilerplate_error", f"{type(exc).__name__}: {exc}"), []


def _strip(doc: Document, config: BoilerplateConfig) -> tuple[Document, list[Edit]]:
    disabled = set(config.disabled_rules)
    lines: list[str] = []
    after_blank: set[int] = set()  # a blank line before it: a paragraph break, never a broken sentence
    blank = False
    for line in doc.text.splitlines():
        line = line.strip()
        if not line:
            blank = True
            continue
        if blank and lines:
            after_blank.add(len(lines))
        lines.append(line)
        blank = False
    plain = doc.content_type == "text"
    rules: dict[int, str] = {}
    meta: dict = {}
    m = len(lines)
    text = "\n".join(lines)
    words = _word_counts(text) if plain else []
    pattern_rules = _pattern_rules(lines, text)
    pattern_hits = [rule is not None for rule in pattern_rules]
    if plain:
        nav_words = map(_NAV_WORDS.__contains__, map(_NAV_LINE_STRIP, map(str.lower, lines)))
        crumbs = map(_NAV_CRUMB.match, lines)
        navigation = [a or b is not None for a, b in zip(nav_words, crumbs)]
    for i, rule in enumerate(pattern_rules):
        if rule in _TEXT_ONLY_RULES and not plain:
            rule = None
        if rule is None and plain and navigation[i]:
            rule = "navigation"
        if rule:
            rules[i] = rule
    if plain and config.header_metadata:
        header_rules, meta = _parse_header(lines, doc, {i for i, r in rules.items() if r != "navigation"})
        rules.update(header_rules)
    candidates = m - len(rules)
    if plain and config.classifier and candidates >= config.classifier_min_lines:
        scores = body_scores(lines, pattern_hits).tolist()
        dropped = {
            i for i in range(len(lines))
            if i not in rules and scores[i] < config.threshold
            # a paragraph of real prose needs stronger evidence against it than a short line
            and not (scores[i] >= config.prose_threshold and _is_prose(lines[i], words[i]))
        }
        # a run of short lines after the last paragraph of prose is a related-links block, whatever the scores
        prose = [i for i in range(len(lines)) if i not in rules and i not in dropped and _is_prose(lines[i], words[i])]
        if prose:
            tail = [i for i in range(prose[-1] + 1, len(lines)) if i not in rules]
            if len(tail) >= config.min_related_run:
                dropped.update(tail)
        kept = [i for i in range(len(lines)) if i not in rules and i not in dropped]
        first_body, last_body = (kept[0], kept[-1]) if kept else (len(lines), -1)
        for i in dropped:
            rules[i] = _name_classified(i, lines[i], first_body, last_body, words[i])
    rules = {i: r for i, r in rules.items() if r not in disabled}
    edits: list[Edit] = [Removal(rule=rules[i], text=lines[i], stage=STAGE) for i in sorted(rules)]
    kept = [i for i in range(len(lines)) if i not in rules]
    if plain and config.join_fragments:
        text = _join_fragments(lines, kept, after_blank)
    else:
        text = "\n\n".join(lines[i] for i in kept)
    changes: dict = {"text": text}
    if any(r == "paywall_residue" for r in rules.values()):
        changes["truncated"] = True
    for name in ("title", "published", "publisher", "dateline"):
        if meta.get(name) is not None and getattr(doc, name) is None:
            changes[name] = meta[name]
    return doc.with_edits(edits, **changes), edits
