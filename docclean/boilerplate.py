"""Text boilerplate removal: named rules plus a line classifier that judges each line in its context.

The text arrives one paragraph (or one visible text node) per line. Three layers run in order:

1. **Header metadata** (plain-text input only): the top of a scraped page often carries the site name,
   a date, a dateline ``Brussels, Belgium, Feb 13 (AFP) Feb 13, 2025``, the publisher and the title. They
   are parsed into the document's fields (never overwriting a field that is already set) and the lines
   are removed under ``site_header`` / ``date_line`` / ``dateline`` / ``publisher_line`` / ``title_line``.
2. **High-precision patterns** (always): sponsor lines, ``ADVERTISEMENT`` markers, paywall residue (which
   also sets ``truncated``), share / newsletter / cookie prompts, copyright footers, image credits, lone
   navigation words.
3. **Context classifier** (plain-text input only): a two-pass tree ensemble (or logistic regression) over cheap line features
   (length, terminal punctuation, stopword density, title case, digits, link-like words, position in the
   page's text mass, how the page is built: the repeated marker lines that open a forum's posts, the block
   of words between them, the number of separate runs of prose) and then over the first pass's scores of
   the neighbouring lines, like jusText's
   context smoothing: a short line between body paragraphs is a subheading and stays, a run of short
   title-like lines after the body is a related-links block and goes (unless its sure lines outweigh the
   body above it: a listing's entries). The second pass also sees where the
   line stands against the page's likeliest body stretch (the largest-sum span of the first pass's
   scores). Lines a pattern or navigation rule already removed are not scored (their neighbours see them
   as chrome). The scores are then decided page by page: a threshold of the page's own (a doubtful line
   goes on a page whose body is sure, stays on one where nothing is), body/chrome segments rather than lone
   lines. A long line repeating an earlier one (a quoted reply) goes first, as ``repeated_in_page``, and the
   classifier judges the page without it. Weights are trained on
   extraction-dev by ``benchmarks/train_boilerplate.py`` and shipped in ``docclean/data``.

Speed: a page is judged as a whole, never line by line in Python. Its lines are joined once into a ``_Page``
whose code points and character classes (numpy arrays) give every count per line; word look-ups go through a
hash of each token computed for the whole page; the tree ensembles walk all lines and trees at once.

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
from functools import cached_property, lru_cache
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
    if len(line) > 60:  # first: the pattern's lazy group costs a long line dearly
        return None
    m = _DATE_LINE.match(line)
    if not m:
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
    "page_marker_share", "page_date_lines", "since_marker", "to_marker", "block_words", "page_prose_runs",
    "page_prose_share", "ends_question", "is_marker",
]


class Lexicon:
    """Word log-odds of body vs chrome, and whole lines known as chrome on many sites, learned on the
    training split (see benchmarks/train_boilerplate.py); empty when no model ships."""

    __slots__ = ("words", "lines", "_tables", "_hashes")

    def __init__(self, words: dict[str, float] | None = None, lines: set[str] | frozenset[str] = frozenset()):
        self.words = words or {}
        self.lines = frozenset(lines)
        self._tables = None
        self._hashes: tuple[np.ndarray, np.ndarray] | None = None

    def token_ids(self, page: "_Page") -> np.ndarray:
        """The vocabulary id of every ``\\w+`` token of the page's lower-cased text (0 when unknown), found
        by a polynomial hash of each token computed for the whole page with numpy: a look-up per token in
        a Python dict cost as much as all the other features together. The vocabulary is known words
        only, so a 64-bit collision between one of them and a page's token is not a practical concern."""
        return self._ids_and_hashes(page)[0]

    def known_lines(self, page: "_Page", words: np.ndarray) -> np.ndarray:
        """Whether each line's words, space-joined, are one of ``lines``: a hash of each line's sequence of
        token hashes, compared with those of the known lines (``words``: the lines' token counts)."""
        token_hashes = self._ids_and_hashes(page)[1]
        _, _, known_hashes = self._hashes
        if not len(known_hashes) or not len(token_hashes):
            return np.zeros(len(words), bool)
        powers, inverse_powers = _hash_powers(len(token_hashes), _SEQUENCE_BASE)
        prefix = np.zeros(len(token_hashes) + 1, dtype=np.uint64)
        _cumsum(_mix_array(token_hashes) * powers, out=prefix[1:])
        last = _cumsum(words)
        first = last - words
        line_hashes = (prefix[last] - prefix[np.minimum(first, len(token_hashes))]) * inverse_powers[
            np.minimum(first, len(token_hashes) - 1)]
        at = np.minimum(_searchsorted(known_hashes, line_hashes), len(known_hashes) - 1)
        return (words > 0) & (words <= 8) & (known_hashes[at] == line_hashes)

    def _ids_and_hashes(self, page: "_Page") -> tuple[np.ndarray, np.ndarray]:
        cached = getattr(page, "_token_ids", None)
        if cached is not None and cached[0] is self:
            return cached[1]
        if self._hashes is None:
            vocab = self.tables(_stopwords())[0]
            known = np.array([_hash_sequence(map(_hash_word, line.split(" "))) for line in self.lines], dtype=np.uint64)
            self._hashes = (_HashTable({_hash_word(word): i for word, i in vocab.items()}), None, np.sort(known))
        table = self._hashes[0]
        codes, classes, _ = page.low_classes
        if not len(codes) or not table.size:
            n = int(_run_starts((classes & _WORD_CHAR).astype(bool)).sum())
            result = (np.zeros(n, dtype=np.intp), np.zeros(n, dtype=np.uint64))
            page._token_ids = (self, result)
            return result
        word = (classes & _WORD_CHAR).astype(bool)
        first = _flatnonzero(_run_starts(word))
        after = _flatnonzero(_run_starts(word[::-1]))[::-1]
        after = len(word) - after  # one past each token's last character
        powers, inverse_powers = _hash_powers(len(codes))
        prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
        _cumsum(codes.astype(np.uint64) * powers, out=prefix[1:])
        token_hashes = (prefix[after] - prefix[first]) * inverse_powers[first]
        result = (table.get(token_hashes), token_hashes)
        page._token_ids = (self, result)
        return result

    def tables(self, stop: frozenset[str]) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
        """One dictionary look-up per token instead of three: every word the features know gets an id (0 for
        the rest), and per id whether it is a stopword, a chrome word, and its log-odds (NaN when unknown)."""
        if self._tables is None or self._tables[0] is not stop:
            vocab = {word: i for i, word in enumerate(sorted(stop | _CHROME_WORDS | set(self.words)), 1)}
            size = len(vocab) + 1
            is_stop, is_chrome, value = np.zeros(size, bool), np.zeros(size, bool), np.full(size, math.nan)
            for word, i in vocab.items():
                is_stop[i], is_chrome[i] = word in stop, word in _CHROME_WORDS
                value[i] = self.words.get(word, math.nan)
            self._tables = (stop, vocab, is_stop, is_chrome, value)
        return self._tables[1:]


_HASH_BASE = 0x100000001B3  # odd, so invertible modulo 2**64


def _hash_word(word: str) -> int:
    """Sum of code point * base**position, modulo 2**64: what Lexicon.token_ids computes with numpy."""
    total, power = 0, 1
    for char in word:
        total = (total + ord(char) * power) % 2**64
        power = power * _HASH_BASE % 2**64
    return total


# A sequence of tokens is hashed with its own base, over mixed token hashes: the character hash is linear,
# so with the same base "e commerce" would hash like "ecommerce".
_SEQUENCE_BASE = 0x9E3779B97F4A7C15
_MIX = 0xBF58476D1CE4E5B9


def _mix(value: int) -> int:
    return ((value ^ (value >> 31)) * _MIX) % 2**64


def _mix_array(values: np.ndarray) -> np.ndarray:
    return (values ^ (values >> np.uint64(31))) * np.uint64(_MIX)


class _HashTable:
    """64-bit hashes to ids (0 when absent), open addressing with linear probing, looked up for a whole array
    at once: a binary search (np.searchsorted) of thousands of tokens cost ten times more."""

    def __init__(self, ids: dict[int, int]):
        self.size = len(ids)
        self.bits = max(12, (4 * len(ids)).bit_length())  # a quarter full at most
        mask = (1 << self.bits) - 1
        self.hashes = np.zeros(1 << self.bits, dtype=np.uint64)
        self.ids = np.zeros(1 << self.bits, dtype=np.intp)  # an empty slot reads id 0, "unknown"
        self.by_hash = dict(ids)
        taken = set()
        for value, i in ids.items():
            slot = _mix(value) >> (64 - self.bits)  # mixed: a short word's own top bits are all 0
            while slot in taken:
                slot = (slot + 1) & mask
            taken.add(slot)
            self.hashes[slot], self.ids[slot] = value, i

    def get(self, values: np.ndarray) -> np.ndarray:
        slots = (_mix_array(values) >> np.uint64(64 - self.bits)).astype(np.intp)
        seen = self.hashes.take(slots)
        hit = seen == values
        found = np.where(hit, self.ids.take(slots), 0)
        # A value whose first slot is empty is absent (linear probing without deletions leaves no empty slot
        # between a hash's first slot and its own); the few whose slot holds another hash (a few dozen a
        # page) are looked up in a dict: cheaper than more passes of probing over arrays.
        pending = _flatnonzero(~hit & (seen != 0))
        if len(pending):
            found[pending] = list(map(self.by_hash.get, values[pending].tolist(), itertools.repeat(0)))
        return found


def _hash_sequence(hashes) -> int:
    """Sum of mixed token hash * sequence base**position, modulo 2**64 (see Lexicon.known_lines)."""
    total, power = 0, 1
    for value in hashes:
        total = (total + _mix(value) * power) % 2**64
        power = power * _SEQUENCE_BASE % 2**64
    return total


_CACHED_POWERS = 1 << 17


@lru_cache(maxsize=4)
def _hash_power_table(size: int, base: int = _HASH_BASE) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(over="ignore"):
        # np.full would take a Python int above 2**63 through a float: repeat an exact uint64 instead
        powers = np.cumprod(np.repeat(np.array([base], dtype=np.uint64), size))  # wraps modulo 2**64
        inverse = np.cumprod(np.repeat(np.array([pow(base, -1, 2**64)], dtype=np.uint64), size))
    # shifted by one (base**0 first) without np.concatenate, which would promote int64 and uint64 to float
    powers[1:], inverse[1:] = powers[:-1].copy(), inverse[:-1].copy()
    powers[0] = inverse[0] = 1
    return powers, inverse


def _hash_powers(n: int, base: int = _HASH_BASE) -> tuple[np.ndarray, np.ndarray]:
    """base**k and base**-k modulo 2**64 for k < n (from one cached table, pages up to 128K characters)."""
    if n > _CACHED_POWERS:  # a rare huge page: its tables are not kept
        powers, inverse = _hash_power_table.__wrapped__(n, base)
    else:
        powers, inverse = _hash_power_table(_CACHED_POWERS, base)  # one table serves every page up to 128K chars
    return powers[:n], inverse[:n]


# Character classes of the whole page at once: the lines joined with "\n" (which no token crosses) become an
# array of code points, and one table look-up gives each character's class; a token starts where a run of
# word characters starts. Per-line and per-token Python loops cost ten times more.
_WORD_CHAR, _ALPHA_CHAR, _DIGIT_CHAR, _UPPER_CHAR, _LOWER_CHAR = 1, 2, 4, 8, 16
_LEADING_PUNCT = frozenset(",.;:!?)]}’”'\"-–—")
# the tail of _DOMAIN alone: a cheap scan for the few lines worth the full (backtracking) pattern
_TOP_LEVEL_DOMAIN = re.compile(r"\.(?:com|net|org|co\.uk|fr|de|io|info|news|tv|eu|gov|edu)\b", re.I)
_SEPARATORS = "|»›•·"
_NAV_STRIP = operator.methodcaller("strip", " .:|»›")
_LOG1P = np.array([math.log1p(k) for k in range(4096)])  # math's values, as the per-line features had

# numpy's module functions below go through a layer of Python (np.cumsum -> _wrapfunc -> ndarray.cumsum) that
# costs more than the work on a page's few lines: the array methods themselves, same results (1-D arrays).
_cumsum = np.ndarray.cumsum
_argmax = np.ndarray.argmax
_argmin = np.ndarray.argmin
_searchsorted = np.ndarray.searchsorted


def _flatnonzero(flags: np.ndarray) -> np.ndarray:
    """np.flatnonzero of a 1-D array."""
    return flags.nonzero()[0]


def _trues(m: int) -> np.ndarray:
    """np.ones(m, bool)."""
    out = np.empty(m, bool)
    out.fill(True)
    return out


def _full(m: int, value: float) -> np.ndarray:
    """np.full(m, value) of a float."""
    out = np.empty(m)
    out.fill(value)
    return out


def _class_of(char: str) -> int:
    """``\\w`` is str.isalnum or "_" and ``[^\\W\\d_]`` is isalnum but not isdecimal (as in the re module)."""
    word = char.isalnum() or char == "_"
    return (_WORD_CHAR * word | _ALPHA_CHAR * (char.isalnum() and not char.isdecimal())
            | _DIGIT_CHAR * char.isdigit() | _UPPER_CHAR * char.isupper() | _LOWER_CHAR * char.islower())


@lru_cache(maxsize=1)
def _class_table() -> np.ndarray:
    """The class bits of every BMP code point (astral ones are asked directly)."""
    return np.fromiter(map(_class_of, map(chr, range(0x10000))), dtype=np.uint8, count=0x10000)


def _char_classes(text: str) -> tuple[np.ndarray, np.ndarray]:
    """The code points of ``text`` and their class bits."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if text.isascii() or not len(codes) or codes.max() <= 0xFFFF:  # most pages: no astral character
        return codes, _class_table().take(codes)  # take: a third cheaper than indexing
    classes = _class_table().take(np.minimum(codes, 0xFFFF))
    for i in _flatnonzero(codes > 0xFFFF).tolist():
        classes[i] = _class_of(text[i])
    return codes, classes


@lru_cache(maxsize=32)
def _char_set_table(chars: str | frozenset[str]) -> np.ndarray:
    """Whether each BMP code point is one of ``chars``, and a last entry (False) that every astral one reads."""
    table = np.zeros(0x10001, dtype=bool)
    table[[ord(c) for c in chars]] = True
    return table


def _one_of(codes: np.ndarray, chars: str | frozenset[str]) -> np.ndarray:
    """Whether each code point is one of ``chars`` (BMP characters): a table look-up, where np.isin sorts."""
    return _char_set_table(chars).take(np.minimum(codes, 0x10000))


def _run_starts(flags: np.ndarray) -> np.ndarray:
    """Where a run of set flags starts (a token of those characters)."""
    starts = flags.copy()
    starts[1:] &= ~flags[:-1]
    return starts


def _per_line(flags: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """How many flags are set in each line (the line's newline, never set, included)."""
    return np.add.reduceat(flags.astype(np.int64), starts) if len(flags) else np.zeros(len(starts), np.int64)


# Arrays that depend on a page's line count only, kept for the sizes that recur (read-only: shared).
@lru_cache(maxsize=512)
def _line_index(m: int) -> np.ndarray:
    """np.arange(m)."""
    return _read_only(np.arange(m))


@lru_cache(maxsize=512)
def _window(m: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``m`` lines, the bounds [lo, hi) of the lines at most ``k`` away."""
    idx = _line_index(m)
    return _read_only(_clip(idx - k, 0, m)), _read_only(_clip(idx + k + 1, 0, m))


@lru_cache(maxsize=512)
def _window_size(m: int, k: int) -> np.ndarray:
    """How many other lines each _window holds (at least 1)."""
    lo, hi = _window(m, k)
    return _read_only(np.maximum(hi - lo - 1, 1))


def _read_only(values: np.ndarray) -> np.ndarray:
    values.setflags(write=False)
    return values


def _log1p(counts: np.ndarray) -> np.ndarray:
    """math.log1p of non-negative integers, from a table where it can."""
    small = counts < len(_LOG1P)
    if np.logical_and.reduce(small):  # ndarray.all without its Python layer
        return _LOG1P[counts]
    return np.array([math.log1p(v) for v in counts.tolist()])


def _newline_starts(codes: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], _flatnonzero(codes == 10) + 1])


_SENTENCE_MARKS = ".!?…"
# _TERMINAL and _SENTENCE_END as sets: the marks, and the closers that may follow them
_TERMINAL_MARKS = frozenset(".!?…:;")
_SENTENCE_MARK_SET = frozenset(_SENTENCE_MARKS)
_STRIP_CLOSERS = operator.methodcaller("rstrip", "\"'”’»)]")


class _Page:
    """One page's lines joined with "\n", and the per-character arrays that every whole-page pass (rules,
    features, joining) reads: computed once per page rather than once per pass. Lines hold no newline."""

    def __init__(self, lines: list[str], text: str | None = None):
        self.lines = lines
        self.text = "\n".join(lines) if text is None else text
        self.codes, self.classes = _char_classes(self.text)
        self.starts = _newline_starts(self.codes)
        self.ends = np.concatenate((self.starts[1:] - 1, [len(self.codes)]))  # one past each line's last character
        self._token_ids = None  # (lexicon, its token ids and hashes), see Lexicon.token_ids

    @cached_property
    def low_text(self) -> str:
        return self.text.lower()

    @cached_property
    def lows(self) -> list[str]:
        return self.low_text.split("\n")

    @cached_property
    def low_classes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Code points, classes and line starts of the lower-cased text (lower() may change lengths: "İ")."""
        if self.low_text == self.text:
            return self.codes, self.classes, self.starts
        codes, classes = _char_classes(self.low_text)
        return codes, classes, (self.starts if len(codes) == len(self.codes) else _newline_starts(codes))

    @cached_property
    def words(self) -> np.ndarray:
        """The number of ``\\w+`` words in each line."""
        return _per_line(_run_starts((self.classes & _WORD_CHAR).astype(bool)), self.starts)

    @cached_property
    def digits(self) -> np.ndarray:
        """The number of digit characters (str.isdigit) in each line."""
        return _per_line((self.classes & _DIGIT_CHAR).astype(bool), self.starts)

    @cached_property
    def endings(self) -> tuple[np.ndarray, np.ndarray]:
        """Whether each line ends like _TERMINAL, and like _SENTENCE_END: both patterns say that the line's
        last character that is no closer is a mark, so one rstrip a line answers both (a regex scan of
        the page tried every character)."""
        m = len(self.lines)
        last_marks = [line[-1:] for line in map(_STRIP_CLOSERS, self.lines)]
        return (np.fromiter(map(_TERMINAL_MARKS.__contains__, last_marks), bool, count=m),
                np.fromiter(map(_SENTENCE_MARK_SET.__contains__, last_marks), bool, count=m))

    @cached_property
    def could_be_crumb(self) -> np.ndarray:
        """The lines _NAV_CRUMB could match: starting or ending with "|", separators only (no word), or a
        number of four digits at most (a news paragraph starting with a year or a dash is not tried)."""
        first, last = self.codes[self.starts], self.codes[self.ends - 1]
        return ((first == ord("|")) | (last == ord("|")) | (_one_of(first, _CRUMB_FIRST) & (self.words == 0))
                | ((self.classes[self.starts] & _DIGIT_CHAR).astype(bool) & (self.ends - self.starts <= 4)))

    @cached_property
    def navigation(self) -> np.ndarray:
        return _find_navigation_lines(self)

    @cached_property
    def prose(self) -> np.ndarray:
        """_is_prose of each line."""
        terminal, _ = self.endings
        return ((self.words >= 12) & terminal) | (self.words >= 30)


def _local_columns(lines: list[str], stop: frozenset[str], pattern_hits: list[bool], lexicon: Lexicon,
                   page: _Page | None = None) -> dict:
    """The features of each line on its own, as columns. Lines are non-empty and hold no newline."""
    m = len(lines)
    page = page or _Page(lines)
    text, low_text, codes, classes, starts, ends = page.text, page.low_text, page.codes, page.classes, page.starts, page.ends
    lengths = ends - starts
    _, low_classes, low_starts = page.low_classes

    word = (low_classes & _WORD_CHAR).astype(bool)
    word_start = _run_starts(word)
    n = _per_line(word_start, low_starts)
    n_or_1 = np.maximum(n, 1)
    letters_in_words = _per_line(word, low_starts).astype(float)

    _, is_stop, is_chrome, lex_of = lexicon.tables(stop)
    ids = lexicon.token_ids(page)
    token_line = _line_index(m).repeat(n)
    stop_count = np.bincount(token_line[is_stop[ids]], minlength=m)
    chrome_count = np.bincount(token_line[is_chrome[ids]], minlength=m)
    lex_value = lex_of[ids]
    found = ~np.isnan(lex_value)
    found_line, found_value = token_line[found], lex_value[found]
    n_found = np.bincount(found_line, minlength=m)
    has_found = n_found > 0
    lex_sum = np.bincount(found_line, weights=found_value, minlength=m)  # in line order, a left-to-right sum
    lex_min, lex_max = _full(m, math.inf), _full(m, -math.inf)
    np.minimum.at(lex_min, found_line, found_value)
    np.maximum.at(lex_max, found_line, found_value)
    known = lexicon.known_lines(page, n).astype(float)  # whole lines known as chrome have at most 8 words
    lex = np.array([  # built as rows and handed over as their columns (a view): np.column_stack costs more
        np.where(has_found, lex_sum / np.maximum(n_found, 1), 0.0), np.where(has_found, lex_min, 0.0),
        np.where(has_found, lex_max, 0.0), np.where(has_found, n_found / n_or_1, 0.0), known,
    ]).T

    alpha = (classes & _ALPHA_CHAR).astype(bool)
    alpha_start = _run_starts(alpha)
    n_alpha = np.maximum(_per_line(alpha_start, starts), 1)
    letters = _per_line(alpha, starts).astype(float)
    letters = np.where(letters == 0, 1.0, letters)
    n_titlecase = _per_line(alpha_start & (classes & _UPPER_CHAR).astype(bool), starts)
    digits = page.digits
    uppers = _per_line((classes & _UPPER_CHAR).astype(bool), starts)
    commas = _per_line(codes == ord(","), starts)
    separators = _per_line(_one_of(codes, _SEPARATORS), starts)
    first_codes, last_codes = codes[starts], codes[ends - 1]

    ends_sentence = page.endings[1].astype(float)
    has_domain = np.zeros(m)
    for i in set(_searchsorted(starts, [h.start() for h in _TOP_LEVEL_DOMAIN.finditer(text)], "right") - 1):
        has_domain[i] = 1.0 if _DOMAIN.search(lines[i]) else 0.0
    is_date = np.zeros(m)
    for i in _flatnonzero((n <= 8) & (digits >= 4)).tolist():  # every date form has a four-digit year
        is_date[i] = 1.0 if parse_date(lines[i]) else 0.0
    lows = page.lows
    return {
        "n_words": n.astype(float),
        "log_words": _log1p(n),
        "log_chars": _log1p(lengths),
        "ends_sentence": ends_sentence,
        "ends_colon": (last_codes == ord(":")).astype(float),
        "stop_ratio": stop_count / n_or_1,
        "title_ratio": n_titlecase / n_alpha,
        "digit_ratio": digits / lengths,
        "upper_ratio": uppers / letters,
        "starts_lower": (classes[starts] & _LOWER_CHAR).astype(bool).astype(float),
        "starts_punct": _one_of(first_codes, _LEADING_PUNCT).astype(float),
        "chrome_ratio": chrome_count / n_or_1,
        "has_separator": (separators > 0).astype(float),
        "has_domain": has_domain,
        "is_date": is_date,
        "mean_word_len": np.where(n > 0, letters_in_words / n_or_1, 0.0),
        "comma_rate": commas / n_or_1,
        "pattern_hit": np.array(pattern_hits, dtype=float).reshape(m),
        "nav_word": np.fromiter(map(_NAV_WORDS.__contains__, map(_NAV_STRIP, lows)), dtype=float, count=m),
        "lex": lex,
    }


def line_features(lines: list[str], lexicon: Lexicon | None = None, pattern_hits: list[bool] | None = None,
                  page: _Page | None = None) -> np.ndarray:
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
    page = page or _Page(lines)
    c = _local_columns(lines, stop, pattern_hits, lexicon, page)
    lex = c["lex"]
    words = c["n_words"]
    sentence = c["ends_sentence"]
    prose = ((words >= 10) & (sentence > 0)) | (words >= 25)
    mass = np.where(prose, words, 0.0)
    total = mass.sum() or 1.0
    cum = _cumsum(mass)
    mass_before = (cum - mass) / total
    mass_after = (total - cum) / total
    prose_idx = _flatnonzero(prose)
    first_prose = prose_idx[0] if len(prose_idx) else m
    last_prose = prose_idx[-1] if len(prose_idx) else -1
    idx = _line_index(m)

    def window_sum(arr: np.ndarray, k: int) -> np.ndarray:
        c = np.zeros(m + 1)
        _cumsum(arr, out=c[1:])
        lo, hi = _window(m, k)
        return (c[hi] - c[lo]) - arr

    prose_f = prose.astype(float)
    win1 = np.log1p(window_sum(words, 1))
    win3 = np.log1p(window_sum(words, 3))
    win10 = np.log1p(window_sum(words, 10))
    win3p = window_sum(prose_f, 3) / 6
    win10p = window_sum(prose_f, 10) / 20

    def shift(arr, k):
        """The value of the line k above (k > 0) or below, 0.0 past the page's ends."""
        out = np.zeros(m)
        if k > 0:
            if m > k:
                out[k:] = arr[:-k]
        elif m > -k:
            out[:k] = arr[-k:]
        return out

    lw = c["log_words"]
    st = c["stop_ratio"]
    sl = c["starts_lower"]
    prev_unfinished = shift(1.0 - sentence, 1)
    prev_open = prev_unfinished * shift(lw, 1)  # previous line stops mid-sentence
    joins = _clip(prev_unfinished * (sl + c["starts_punct"]), 0, 1)
    if len(set(lines)) == m:  # no line repeats on most pages
        duplicates = np.zeros(m)
        copies = np.zeros(m)
    else:
        counts = Counter(lines)
        copies = np.array([counts[line] - 1 for line in lines], dtype=float)
        duplicates = np.log1p(copies)
    cols = [
        _full(m, 1.0), lw, c["log_chars"], sentence, c["ends_colon"], st, c["title_ratio"],
        c["digit_ratio"], c["upper_ratio"], sl, c["starts_punct"], c["chrome_ratio"],
        c["has_separator"], c["has_domain"], c["is_date"],
        duplicates,
        idx / max(m - 1, 1), c["comma_rate"], c["mean_word_len"] / 10, (words <= 2).astype(float),
        mass_before, mass_after, (idx < first_prose).astype(float), (idx > last_prose).astype(float),
        win1, win3, win10, win3p, win10p,
        shift(lw, 1), shift(sentence, 1), shift(st, 1), shift(lw, -1), shift(sentence, -1), shift(st, -1),
        shift(sl, -1), prev_open, joins, c["pattern_hit"], c["nav_word"],
        (words > 8).astype(float), (words > 20).astype(float), _full(m, math.log1p(m)) / 8,
    ]
    lex_mean = lex[:, 0]
    cols += [lex_mean, lex[:, 1], lex[:, 2], lex[:, 3], lex[:, 4], shift(lex_mean, 1), shift(lex_mean, -1),
             window_sum(lex_mean, 3) / 6, *_run_features(prose)]
    cols += _structure_features(words, prose, c["is_date"], copies, page.codes[page.ends - 1])
    return _as_columns(cols)


def _structure_features(words: np.ndarray, prose: np.ndarray, is_date: np.ndarray, copies: np.ndarray,
                        last_codes: np.ndarray) -> list[np.ndarray]:
    """How a page is built, for the pages whose body is many stretches (a forum's posts, a listing's entries,
    a shop's blocks): the markers that open each post (a short line repeated three times or more on the
    page, "Reply", "Senior Member", or a date line), how far a line is from the markers around it and how
    many words the block between them holds, and how many separate runs of prose the page has."""
    m = len(words)
    idx = _line_index(m)
    marker = ((copies >= 2) & (words <= 6)) | (is_date > 0)
    previous = np.maximum.accumulate(np.where(marker, idx, -1))
    following = np.minimum.accumulate(np.where(marker, idx, m)[::-1])[::-1]
    cum = np.concatenate([[0.0], _cumsum(words)])
    lo, hi = np.maximum(previous, 0), np.minimum(following + 1, m)
    block = cum[hi] - cum[lo]
    prose_runs = int(np.count_nonzero(prose[1:] & ~prose[:-1]) + (prose[0] if m else 0))
    total = words.sum() or 1.0
    n_markers = int(np.count_nonzero(marker))
    return [  # (a bool mean is the count over m, in float64: the same value as the division here)
        _full(m, n_markers / m if m else 0.0), _full(m, math.log1p(int(np.count_nonzero(is_date)))),
        np.log1p(np.where(previous >= 0, idx - previous, m)), np.log1p(np.where(following < m, following - idx, m)),
        np.log1p(block), _full(m, math.log1p(prose_runs)), _full(m, float(words[prose].sum() / total)),
        (last_codes == ord("?")).astype(float), marker.astype(float),
    ]


def _as_columns(rows: list[np.ndarray]) -> np.ndarray:
    """np.column_stack of equal-length 1-D arrays (C-ordered), at a third of its cost for a page's few lines."""
    return np.ascontiguousarray(np.array(rows, dtype=float).T)


def _run_features(prose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """jusText's context, directly: how long the run of short lines around a line is (a menu is long, a
    subheading is a run of one), whether prose closes the run on both sides, and how far the nearest prose is."""
    m = len(prose)
    idx = _line_index(m)
    previous = np.maximum.accumulate(np.where(prose, idx, -1)) if m else idx  # the last prose line at or above
    following = np.minimum.accumulate(np.where(prose, idx, m)[::-1])[::-1] if m else idx  # at or below
    short = ~prose
    run_len = np.where(short, following - previous - 1, 0)
    between = (short & (previous >= 0) & (following < m)).astype(float)
    before = np.where(previous >= 0, idx - previous, m)
    after = np.where(following < m, following - idx, m)
    distance = np.where(short, np.minimum(before, after), 0)
    return np.log1p(run_len.astype(float)), between, np.log1p(distance.astype(float))


def context_features(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Second-pass features: the first pass's body scores of the neighbours (jusText-style smoothing)."""
    m = len(p)

    c = np.concatenate([[0.0], _cumsum(p)])

    def window_mean(k: int) -> np.ndarray:
        lo, hi = _window(m, k)
        return (c[hi] - c[lo] - p) / _window_size(m, k)

    prev_p = np.concatenate([[0.0], p[:-1]]) if m else p
    next_p = np.concatenate([p[1:], [0.0]]) if m else p
    max_before = np.maximum.accumulate(np.concatenate([[0.0], p[:-1]])) if m else p
    max_after = np.maximum.accumulate(np.concatenate([p[1:], [0.0]])[::-1])[::-1] if m else p
    logit = np.log(_clip(p, 1e-4, 1 - 1e-4) / _clip(1 - p, 1e-4, 1))
    cols = [p, logit / 5, prev_p, next_p, window_mean(2), window_mean(5), window_mean(15), max_before, max_after,
            np.minimum(prev_p, next_p), np.maximum(prev_p, next_p)]
    return np.concatenate([x, np.array(cols + _body_mass_columns(x, p) + _span_columns(x, p), dtype=float).T], axis=1)


def _shifted(values: np.ndarray, k: int) -> np.ndarray:
    """``values`` of the line ``k`` below (k > 0) or above, 0 past the page's ends."""
    out = np.zeros(len(values))
    if k > 0:
        out[:-k] = values[k:]
    else:
        out[-k:] = values[:k]
    return out


def _body_mass_columns(x: np.ndarray, p: np.ndarray) -> list[np.ndarray]:
    """Where a line sits in the page's likely body: the first pass's scores two and three lines away, the
    share of the likely-body words before and after it (a footer comes after all of them), the body words
    around it, its distance to the densest stretch of body text, and the page's overall body score (forums
    and shops have less body than articles, so their scores mean something else)."""
    m = len(p)
    words = np.expm1(x[:, FEATURE_NAMES.index("log_words")])
    body = p * words
    total = body.sum() or 1.0
    cum = _cumsum(body)
    before, after = (cum - body) / total, (total - cum) / total
    window = np.concatenate([[0.0], cum])
    idx = _line_index(m)
    lo, hi = _window(m, 10)
    near = window[hi] - window[lo]
    near_words = np.concatenate([[0.0], _cumsum(words)])
    near_all = near_words[hi] - near_words[lo]
    densest = int(_argmax(near)) if m else 0
    page_body = float(body.sum() / (words.sum() or 1.0))
    return [
        _shifted(p, -2), _shifted(p, 2), _shifted(p, -3), _shifted(p, 3), before, after,
        np.log1p(near), near / np.maximum(near_all, 1.0), np.log1p(np.abs(idx - densest)) / 5,
        np.sign(idx - densest), near / (near.max() or 1.0), _full(m, page_body), p - page_body,
    ]


# The body of a page is mostly one stretch of lines: the stretch whose words best agree with the first pass
# (most likely-body words minus likely-chrome ones, Kadane's maximum-sum span) at three levels of trust.
# The best single span of the true labels alone scores F1 0.88 on the training pages.
_SPAN_LEVELS = (0.3, 0.5, 0.7)


def _best_span(values: np.ndarray) -> tuple[int, int]:
    """First and last line of the contiguous run with the largest sum (Kadane's, with numpy prefix sums);
    (len, -1) when every value is negative."""
    first, last = _best_spans(values[None, :])
    return int(first[0]), int(last[0])


def _best_spans(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """_best_span of each row of ``values``, all rows in one pass of prefix sums (rows of equal length)."""
    n, m = values.shape
    if not m:
        return np.zeros(n, np.intp), np.full(n, -1, np.intp)
    cum = np.zeros((n, m + 1))
    _cumsum(values, axis=1, out=cum[:, 1:])
    gain = cum[:, 1:] - np.minimum.accumulate(cum[:, :-1], axis=1)
    last = _argmax(gain, axis=1)
    found = gain.max(axis=1) > 0  # the gain at its argmax
    first = np.array([int(_argmin(cum[k, : e + 1])) for k, e in enumerate(last.tolist())], np.intp)
    return np.where(found, first, m), np.where(found, last, -1)


_SPAN_LEVEL_COLUMN = np.array(_SPAN_LEVELS)[:, None]


def _span_columns(x: np.ndarray, p: np.ndarray) -> list[np.ndarray]:
    """For each level t: whether the line is inside the span maximizing the sum of words * (p - t), how far
    outside it is (signed: negative above the span), and the span's share of the page's words. The three
    levels are searched at once (one row each)."""
    m = len(p)
    words = np.expm1(x[:, FEATURE_NAMES.index("log_words")])
    total = words.sum() or 1.0
    first, last = _best_spans(words * (p - _SPAN_LEVEL_COLUMN))
    found = last >= 0
    idx = _line_index(m)
    above, below = idx < first[:, None], idx > last[:, None]
    distance = np.where(above, first[:, None] - idx, np.where(below, idx - last[:, None], 0))
    columns = np.empty((len(_SPAN_LEVELS), 3, m))
    columns[:, 0] = ~above & ~below
    columns[:, 1] = np.log1p(distance) * np.where(above, -1.0, 1.0)
    for k, (start, end) in enumerate(zip(first.tolist(), last.tolist())):
        columns[k, 2] = np.add.reduce(words[start : end + 1]) / total if found[k] else 0.0
    if not found.all():  # no span at that level: outside it everywhere, at the page's length
        columns[~found, 0] = 0.0
        columns[~found, 1] = math.log1p(m)
    return list(columns.reshape(-1, m))


CONTEXT_NAMES = FEATURE_NAMES + ["p", "logit", "prev_p", "next_p", "win2_p", "win5_p", "win15_p", "max_p_before",
                                 "max_p_after", "min_neigh_p", "max_neigh_p",
                                 "p_minus2", "p_plus2", "p_minus3", "p_plus3", "body_mass_before", "body_mass_after",
                                 "log_body_near", "body_share_near", "log_densest_distance", "after_densest",
                                 "near_vs_densest", "page_body", "p_vs_page"] + [
    f"{name}_{int(level * 10)}" for level in _SPAN_LEVELS for name in ("in_span", "span_distance", "span_share")]


def _clip(values: np.ndarray, lowest, highest) -> np.ndarray:
    """np.clip without its Python wrapper (which costs more than the clipping, on a page's few lines)."""
    return np.minimum(np.maximum(values, lowest), highest)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-_clip(z, -30, 30)))


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
        self._offsets_by_lines: dict[int, tuple[np.ndarray, np.ndarray]] = {}
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
        self.feature = heap_feature.ravel().astype(np.int32)
        self.threshold = heap_threshold.ravel()
        self.value = heap_value.ravel()
        self.root_feature = heap_feature[:, 0].copy()
        self.root_threshold = heap_threshold[:, 0].copy()
        if depth >= 2:  # the second level's two nodes of each tree (heap positions 1 and 2)
            self.second_level = (heap_feature[:, 1].copy(), heap_threshold[:, 1][:, None].copy(),
                                 heap_feature[:, 2].copy(), heap_threshold[:, 2][:, None].copy())
        # positions are global (tree * n_inner + heap position): the children of global g in tree t are
        # 2g + 1 - base_t and 2g + 2 - base_t, so one step is g = 2g + (2 - base_t) - goes_left
        tree_base = (np.arange(n_trees, dtype=np.int32) * n_inner)[:, None]
        self.tree_base = tree_base
        self.first_step = tree_base + 2
        self.step = 2 - tree_base
        self.leaf_offset = (np.arange(n_trees) * n_leaves - n_inner)[:, None] - tree_base

    def logit(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "logistic":
            return x @ self.weights
        m = len(x)
        by_feature = np.ascontiguousarray(x.T)  # [features x lines]: a tree's rows mostly read one feature
        flat = by_feature.ravel()
        rows, feature_offset = self._offsets(m)
        goes_left = by_feature[self.root_feature] <= self.root_threshold[:, None]
        if self.depth >= 2:
            # The second level as the first, by whole rows of the matrix (a copy, where the walk below gathers
            # line by line): both children of each root are asked and the root's answer picks one. The third
            # level's heap position is then 2 * (2 - left_0) + 2 - left_1.
            left_feature, left_threshold, right_feature, right_threshold = self.second_level
            second = np.where(goes_left, by_feature[left_feature] <= left_threshold,
                              by_feature[right_feature] <= right_threshold)
            node = self.tree_base + 6 - 2 * goes_left.astype(np.int32) - second
            first_level = 2
        else:
            node = self.first_step - goes_left  # [trees x lines], global heap positions
            first_level = 1
        for _ in range(first_level, self.depth):
            at = feature_offset.take(node)
            at += rows
            goes_left = flat.take(at) <= self.threshold.take(node)
            node *= 2
            node += self.step
            node -= goes_left
        leaves = self.value.take(node + self.leaf_offset)
        # summed along each line's trees in order, as the trained evaluation did (np.add.reduce: ndarray.sum
        # without its Python layer)
        return np.add.reduce(np.ascontiguousarray(leaves.T), axis=1) + self.bias

    def _offsets(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The line numbers as a row, and each node's feature times ``m`` (where its feature's row starts in
        the flat [features x lines] matrix): they depend on the line count only, kept for the recent ones."""
        cached = self._offsets_by_lines.get(m)
        if cached is None:
            if len(self._offsets_by_lines) >= 256:
                self._offsets_by_lines.clear()
            cached = self._offsets_by_lines[m] = (
                _read_only(np.arange(m, dtype=np.int32)[None, :]), _read_only(self.feature * np.int32(m)))
        return cached


@lru_cache(maxsize=1)
def _model() -> dict | None:
    try:
        raw = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    except OSError:
        return None
    if raw.get("features") != FEATURE_NAMES or raw.get("context_features", CONTEXT_NAMES) != CONTEXT_NAMES:
        return None  # weights from another feature set: fall back to hand-set thresholds
    lex = raw.get("lexicon") or {}
    return {
        "stage1": _Stage(raw["stage1"]), "stage2": _Stage(raw["stage2"]),
        "stage3": _Stage(raw["stage3"]) if raw.get("stage3") else None,
        "lexicon": Lexicon(lex.get("words"), set(lex.get("lines", ()))),
        "decision": raw.get("decision"),
    }


def _decided(page: _Page, x: np.ndarray) -> np.ndarray:
    """The lines a pattern or navigation rule removes whatever their score: the model never scores them."""
    decided = x[:, FEATURE_NAMES.index("pattern_hit")] > 0
    decided[_navigation_lines(page)] = True
    return decided


def _hand_scores(x: np.ndarray) -> np.ndarray:
    """Hand-set fallback when no trained weights ship: prose-like lines and lines sitting among prose."""
    f = {name: x[:, i] for i, name in enumerate(FEATURE_NAMES)}
    score = (1.2 * f["ends_sentence"] + 1.5 * (f["log_words"] - 1.8) + 2.0 * f["stopword_ratio"]
             + 1.5 * f["win3_prose"] - 1.0 * f["chrome_word_ratio"] - 2.0 * (f["is_first_mass"] + f["is_last_mass"])
             + 1.5 * f["joins_sentence"])
    return _sigmoid(score)


def body_scores(lines: list[str], pattern_hits: list[bool] | None = None, *, page: _Page | None = None,
                rows: np.ndarray | None = None) -> np.ndarray:
    """The probability that each line is main content, given the lines around it. With ``rows``, only
    those lines are scored (the rest read 0): the first pass still sees every line, as context."""
    if not lines:
        return np.zeros(0)
    model = _model()
    if model is None:
        return _hand_scores(line_features(lines, Lexicon(), pattern_hits, page))
    page = page or _Page(lines)
    x = line_features(lines, model["lexicon"], pattern_hits, page)
    open_rows = ~_decided(page, x)
    p1 = np.zeros(len(lines))  # a line a rule removes is chrome to its neighbours too
    p1[open_rows] = _sigmoid(model["stage1"].logit(x[open_rows]))
    x2 = context_features(x, p1)
    last = model["stage2"]
    if model.get("stage3") is not None:  # the smoothing once more, over the second pass's scores
        p2 = np.zeros(len(lines))
        p2[open_rows] = _sigmoid(last.logit(x2[open_rows]))
        x2, last = context_features(x, p2), model["stage3"]
    if rows is None:
        return _sigmoid(last.logit(x2))
    scores = np.zeros(len(lines))
    scores[rows] = _sigmoid(last.logit(x2[rows]))
    return scores


# --- the stage -----------------------------------------------------------------------------------

# a cheap substring test before each rule's regex (most lines match none)
# The words each gated rule's every alternative contains (lower-cased): a page is scanned for them with
# str.find, and a line holding none of a rule's is not matched against it. (The first condition of the
# paywall and newsletter gates is the rules' historical gate; the second, which every alternative implies,
# lets the page scan skip the many lines with "log", "sign" or "mail" in a word.)
_SPONSOR_STARTS = ("sponsor", "paid", "partner", "promoted")
_GATE_NEEDLES = {
    "paywall_residue": ("subscri", "member", "continue", "already", "read the", "article"),
    "cookie_notice": ("cookie", "continuing", "consent", "preferences"),
    "newsletter_prompt": ("newsletter", "inbox", "mail", "alert", "thank"),
    "copyright_footer": ("©", "(c)", "copyright", "reserved"),
}
_PATTERN_GATE = {
    "sponsor_line": lambda low: low.startswith(_SPONSOR_STARTS),
    "paywall_residue": lambda low: ("subscri" in low or "log" in low or "sign" in low or "member" in low)
    and any(needle in low for needle in _GATE_NEEDLES["paywall_residue"]),
    "cookie_notice": lambda low: "cookie" in low or "continuing" in low or "consent" in low or "preferences" in low,
    "newsletter_prompt": lambda low: ("newsletter" in low or "inbox" in low or "mail" in low or "sign" in low
                                      or "subscri" in low or "thank" in low or "mailing" in low)
    and any(needle in low for needle in _GATE_NEEDLES["newsletter_prompt"]),
    "copyright_footer": lambda low: "©" in low or "(c)" in low or "copyright" in low or "reserved" in low,
}


def _pattern_rule(line: str, n_words: int | None = None, ungated: bool = True,
                  exact: int | None = None) -> str | None:
    """The first high-precision rule ``line`` matches. ``ungated=False``: the caller knows the line cannot
    match a rule without a gate (see _pattern_rules). ``exact``: the line's word count, when known (asked
    only where the space count says the line may pass a cap, as before: "a,b,c" has more words than that)."""
    if n_words is None:
        n_words = line.count(" ") + 1  # an upper bound on the words is enough for the length caps
    low = line.lower()
    for rule, pattern in _PATTERNS:
        cap = _PATTERN_MAX_WORDS[rule]
        if n_words > cap:
            if exact is None:
                exact = len(_WORD.findall(line))
            if exact > cap:
                continue
        gate = _PATTERN_GATE.get(rule)
        if gate is None and not ungated or gate is not None and not gate(low):
            continue
        if pattern.search(line):
            return rule
    return None


# Every gate word of _GATE_NEEDLES, to find in one pass the lines a gated rule could match (sponsor lines
# are found by how they start).
_GATE_STRINGS = tuple(dict.fromkeys(needle for needles in _GATE_NEEDLES.values() for needle in needles))
_SMALL_TEXT = 4000
_FEW_LINES = 100
_NAV_LINE_STRIP = operator.methodcaller("strip", " .:")


def _word_counts(text: str) -> list[int]:
    """The number of ``\\w+`` words in each line of ``text``."""
    if len(text) < _SMALL_TEXT:  # numpy's fixed costs outweigh a loop on a short extracted article
        return [len(_WORD.findall(line)) for line in text.split("\n")]
    codes, classes = _char_classes(text)
    return _per_line(_run_starts((classes & _WORD_CHAR).astype(bool)), _newline_starts(codes)).tolist()


def _lines_containing(needles: tuple[str, ...], text: str, starts: np.ndarray) -> set[int]:
    """The lines of ``text`` (starting at ``starts``) that contain one of ``needles`` (which hold no newline):
    str.find runs at C speed where a regex alternation tries every word at every character."""
    hits = []
    for needle in needles:
        at = text.find(needle)
        while at >= 0:
            hits.append(at)
            at = text.find("\n", at)  # the rest of this line is already a candidate
            if at < 0:
                break
            at = text.find(needle, at)
    if not hits:
        return set()
    return set((_searchsorted(starts, hits, "right") - 1).tolist())


# The rules without a gate word, as one pattern tried at the start of each line (they are anchored there),
# plus the one place they are not: a credit at the end of a caption ("... / Getty Images"). A line with none
# of these and no gate word cannot match a rule.
_UNGATED_ANY = re.compile(
    "|".join(f"(?:{pattern.pattern})" for rule, pattern in _PATTERNS if rule not in _PATTERN_GATE), re.I)
# How the anchored alternatives of _UNGATED_ANY (advertisement_marker, share_prompt and image_credit's) can
# begin, lower-cased: only lines starting so are tried. The four letters re.IGNORECASE equates with ASCII ones
# that lower() does not ("ſ" is an "s") make a page try every line.
_UNGATED_STARTS = (
    "-", "ad", "sponsored", "publicit", "anzeige", "story", "article", "continue", "scroll", "skip", "share", "tweet",
    "pin", "click", "copy", "link", "facebook", "twitter", "linkedin", "whatsapp", "reddit", "pinterest", "telegram",
    "flipboard", "follow", "print", "email", "image", "photo", "picture", "illustration", "credit", "source", "getty",
    "shutterstock", "istock", "afp", "reuters", "ap",
)
_IGNORECASE_ODDITIES = ("ı", "ſ", "\u212a", "i\u0307")
_UNGATED_MAX_WORDS = max(_PATTERN_MAX_WORDS[rule] for rule, _ in _PATTERNS if rule not in _PATTERN_GATE)
# image_credit's unanchored alternative ends the line: a credit name, maybe in brackets
_CREDIT_NAMES = ("getty images", "shutterstock", "istock", "istockphoto", "afp", "reuters", "ap photo", "ap", "epa", "alamy")
_CREDIT_ENDS = _CREDIT_NAMES + tuple(name + ")" for name in _CREDIT_NAMES)


def _pattern_rules(lines: list[str], text: str, page: _Page | None = None) -> list[str | None]:
    """_pattern_rule of each line, asked only where a rule could match."""
    if page is None:
        if len(lines) < _FEW_LINES:  # an extracted article: its few long lines fail the word caps at once
            return list(map(_pattern_rule, lines))
        page = _Page(lines, text)
    # (a plain-text page's _Page is built anyway: the gates cost a third of trying every line, even on a
    # short page, whose many short lines pass the word caps)
    _, _, low_starts = page.low_classes
    gated = _lines_containing(_GATE_STRINGS, page.low_text, low_starts)
    lows = page.lows
    if any(odd in page.low_text for odd in _IGNORECASE_ODDITIES):
        could_start = range(len(lines))
    else:
        starts_so = operator.methodcaller("startswith", _UNGATED_STARTS + _SPONSOR_STARTS)
        could_start = list(itertools.compress(range(len(lines)), map(starts_so, lows)))
    gated.update(i for i in could_start if lows[i].startswith(_SPONSOR_STARTS))
    # A line _pattern_rule would find over the word caps of all the ungated rules (10 words at most) cannot
    # match one of them: the pattern is not tried ("Apple said on Monday that ..." starts like "AP").
    words = page.words.tolist()
    ungated = {i for i in could_start if (words[i] <= _UNGATED_MAX_WORDS or lines[i].count(" ") < _UNGATED_MAX_WORDS)
               and _UNGATED_ANY.match(lines[i])}
    ends_credit = operator.methodcaller("endswith", _CREDIT_ENDS)
    ungated.update(itertools.compress(range(len(lines)), map(ends_credit, lows)))
    rules: list[str | None] = [None] * len(lines)
    for i in gated | ungated:
        rules[i] = _pattern_rule(lines[i], ungated=i in ungated, exact=words[i])
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


def _parse_header(lines: list[str], doc: Document, taken: set[int],
                  page: _Page | None = None) -> tuple[dict[int, str], dict]:
    """Rule names for the metadata lines at the top of a plain-text page, and the fields they give.
    ``taken`` are lines another rule already removed (a long sponsor line is not where the body starts).
    ``page``: the lines' _Page, whose word counts and prose flags spare a regex per line."""
    if page is not None:
        top_words = page.words[:30].tolist()
        top_prose = page.prose[:30].tolist()
        # every date form has a four-digit year (\d is str.isdecimal, which implies isdigit)
        could_be_date = (page.digits[:30] >= 4).tolist()
    else:
        top_words = [len(_WORD.findall(line)) for line in lines[:30]]
        top_prose = [_is_prose(line, n) for line, n in zip(lines, top_words)]
        could_be_date = [True] * len(top_words)
    limit = next((i for i, prose in enumerate(top_prose) if prose and i not in taken), min(len(lines), 30))
    rules: dict[int, str] = {}
    meta: dict = {}
    dates: list[tuple[int, datetime]] = []
    for i in range(limit):
        if i in taken:
            continue
        line = lines[i]
        m = _DATELINE.match(line) if "(" in line else None  # the agency stands in brackets
        if m and m.group("agency").lower() in _AGENCIES:
            rules[i] = "dateline"
            meta["dateline"] = _MONTH_DAY_TAIL.sub("", m.group("place")).strip().rstrip(",")
            meta["publisher"] = _AGENCIES[m.group("agency").lower()]
            when = parse_date(m.group("rest")) or parse_date(line)
            if when:
                dates.append((i, when))
            continue
        when = _date_only_line(line) if could_be_date[i] else None
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
        n_words = top_words[i]
        near_date = any(abs(i - j) <= 2 for j in date_rows)
        if i == top and limit > 1 and n_words <= 10 and not _TERMINAL.search(line) and (
            _DOMAIN.search(line) or (line.isupper() and n_words >= 2)
        ):
            rules[i] = "site_header"
        elif line.lower() in _KNOWN_PUBLISHERS or (
            near_date and 1 <= n_words <= 4 and not any(c.isdigit() for c in line) and not _TERMINAL.search(line)
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
        if nxt in ("dateline", "date_line") and _title_like(line, top_words[i]) and top_words[i] >= 3:
            rules[i] = "title_line"
            meta.setdefault("title", line)
        elif doc.title and line.casefold() == doc.title.strip().casefold():
            rules[i] = "title_line"
        elif rules and line.isupper() and top_words[i] <= 6 and i < limit:
            rules[i] = "section_label"
    if "dateline" not in meta:
        # "Paris, France – Amid ..." opening one of the first paragraphs: the place is recorded, the text stays
        for line in lines[limit : limit + 5]:
            m = _INLINE_DATELINE.match(line)
            if m and _is_prose(line):
                meta["dateline"] = m.group("place")
                break
    return rules, meta


_GLUE_WORDS = {
    "a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "from", "with", "and", "or", "but", "as", "than",
    "our", "your", "their", "its", "his", "her", "my", "see", "via", "into", "about", "like", "is", "are", "was",
}
_CLOSING = tuple(",.;:!?)]}%’”»")


_CLOSING_CHARS = "".join(_CLOSING)
_OPEN_END_CHARS = ",(“‘—–"


def _join_fragments(page: _Page, kept: np.ndarray, after_blank: set[int] = frozenset()) -> str:
    """Kept lines as paragraphs separated by a blank line, with the pieces of one sentence put back together
    (``_continues`` of each pair of neighbours, asked of the whole page at once).

    Only lines that were next to each other, with no blank line between, are joined: the output separates
    paragraphs by blank lines, so cleaning it again joins nothing more (idempotent)."""
    lines = page.lines
    kept_lines = [lines[i] for i in kept.tolist()]
    if len(kept_lines) < 2:
        return "".join(kept_lines)
    previous, current = kept[:-1], kept[1:]
    adjacent = current == previous + 1
    if after_blank:  # a look-up in a mask of the lines: np.isin sorts both arrays
        follows_blank = np.zeros(len(lines), bool)
        follows_blank[list(after_blank)] = True
        adjacent &= ~follows_blank[current]
    closing = _one_of(page.codes[page.starts[current]], _CLOSING_CHARS)
    terminal = page.endings[0][previous]
    lower = (page.classes[page.starts[current]] & _LOWER_CHAR).astype(bool)
    open_end = _one_of(page.codes[page.ends[previous] - 1], _OPEN_END_CHARS)
    joins = adjacent & (closing | (~terminal & (lower | open_end)))
    for j in _flatnonzero(adjacent & ~joins & ~terminal).tolist():  # only the last word can still decide
        joins[j] = lines[previous[j]].rsplit(None, 1)[-1].lower() in _GLUE_WORDS
    glue = np.where(joins, np.where(closing, "", " "), "\n\n").tolist()
    return kept_lines[0] + "".join(itertools.chain.from_iterable(zip(glue, kept_lines[1:])))


def _split_lines(text: str) -> tuple[list[str], set[int]]:
    """The non-blank lines, stripped, and which of them follow a blank line (a paragraph break, never a
    broken sentence)."""
    stripped = list(map(str.strip, text.splitlines()))
    lines = list(filter(None, stripped))
    after_blank: set[int] = set()
    if len(lines) < len(stripped):
        blank, k = False, 0
        for line in stripped:
            if not line:
                blank = True
                continue
            if blank and k:
                after_blank.add(k)
            k += 1
            blank = False
    return lines, after_blank


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
    lines, after_blank = _split_lines(doc.text)
    plain = doc.content_type == "text"
    m = len(lines)
    text = "\n".join(lines)
    page = _Page(lines, text) if plain else None
    pattern_rules = _pattern_rules(lines, text, page)
    rules: dict[int, str] = {}
    for i, rule in enumerate(pattern_rules):
        if rule is not None and (plain or rule not in _TEXT_ONLY_RULES):
            rules[i] = rule
    meta: dict = {}
    if plain:
        for i in _navigation_lines(page).tolist():
            rules.setdefault(i, "navigation")
        if config.header_metadata:
            header_rules, meta = _parse_header(lines, doc, {i for i, r in rules.items() if r != "navigation"}, page)
            rules.update(header_rules)
    if plain:
        repeated = [i for i in _flatnonzero(_repeated_lines(page)).tolist() if i not in rules]
        rules.update(dict.fromkeys(repeated, "repeated_in_page"))
    if plain and config.classifier and m - len(rules) >= config.classifier_min_lines:
        if repeated:  # the page is judged as it will read without the copies (as a second cleaning sees it)
            rest = _flatnonzero(~np.isin(np.arange(m), repeated))
            rest_rules = {j: rules[i] for j, i in enumerate(rest.tolist()) if i in rules}
            _classify(_Page([lines[i] for i in rest.tolist()]), rest_rules,
                      [pattern_rules[i] is not None for i in rest.tolist()], config)
            rules.update(zip(rest[list(rest_rules)].tolist(), rest_rules.values()))
        else:
            _classify(page, rules, [rule is not None for rule in pattern_rules], config)
    if config.disabled_rules:
        disabled = set(config.disabled_rules)
        rules = {i: r for i, r in rules.items() if r not in disabled}
    order = sorted(rules)
    # positional arguments: a frozen dataclass's keyword call costs twice as much, hundreds of times a page
    edits: list[Edit] = list(map(Removal, map(rules.__getitem__, order), map(lines.__getitem__, order),
                                 itertools.repeat(STAGE)))
    keep = _trues(m)
    keep[order] = False
    kept = _flatnonzero(keep)
    if plain and config.join_fragments:
        text = _join_fragments(page, kept, after_blank)
    else:
        text = "\n\n".join([lines[i] for i in kept.tolist()])
    changes: dict = {"text": text}
    if "paywall_residue" in rules.values():
        changes["truncated"] = True
    for name in ("title", "published", "publisher", "dateline"):
        if meta.get(name) is not None and getattr(doc, name) is None:
            changes[name] = meta[name]
    return doc.with_edits(edits, **changes), edits


# The first characters a _NAV_CRUMB line can start with ("| World", "12", "»"), besides digits: other lines
# are only tried when they end in "|".
_CRUMB_FIRST = "|/»›>·•-–—:"


def _navigation_lines(page: _Page) -> np.ndarray:
    """The lines that are a lone navigation word or a breadcrumb / pager / separator line."""
    return page.navigation


def _find_navigation_lines(page: _Page) -> np.ndarray:
    nav_word = np.fromiter(map(_NAV_WORDS.__contains__, map(_NAV_LINE_STRIP, page.lows)), dtype=bool,
                           count=len(page.lines))
    for i in _flatnonzero(page.could_be_crumb & ~nav_word).tolist():
        nav_word[i] = _NAV_CRUMB.match(page.lines[i]) is not None
    return _flatnonzero(nav_word)


def _classify(page: _Page, rules: dict[int, str], pattern_hits: list[bool], config: BoilerplateConfig) -> None:
    """Adds to ``rules`` the lines the context classifier judges chrome (only lines no rule took are scored)."""
    m = len(page.lines)
    open_rows = _trues(m)
    open_rows[list(rules)] = False
    scores = body_scores(page.lines, pattern_hits, page=page, rows=_flatnonzero(open_rows))
    model = _model()
    if model is not None and model.get("decision"):
        scores = _page_decision(scores, page.words, open_rows, model["decision"])
    prose = page.prose
    # a paragraph of real prose needs stronger evidence against it than a short line
    dropped = open_rows & (scores < config.threshold) & ~((scores >= config.prose_threshold) & prose)
    kept_prose = _flatnonzero(open_rows & ~dropped & prose)
    if len(kept_prose):
        # a run of short lines after the last paragraph of prose is a related-links block, whatever the scores,
        # unless its sure lines say more than the body above it: then it is a listing's entries (a recipe
        # index, a shop's products) and only its doubtful lines go
        tail = kept_prose[-1] + 1 + _flatnonzero(open_rows[kept_prose[-1] + 1 :])
        if len(tail) >= config.min_related_run:
            sure = tail[scores[tail] >= _LISTING_SURE_SCORE]
            above = _flatnonzero(open_rows[: tail[0]] & ~dropped[: tail[0]])
            if page.words[sure].sum() > _LISTING_SHARE * page.words[above].sum():
                dropped[tail[scores[tail] < _LISTING_SURE_SCORE]] = True
            else:
                dropped[tail] = True
    kept = _flatnonzero(open_rows & ~dropped)
    first_body, last_body = (kept[0], kept[-1]) if len(kept) else (m, -1)
    rules.update(zip(_flatnonzero(dropped).tolist(), _names_classified(page, dropped, first_body, last_body)))


# A run after the last prose kept as a listing (see _classify). Page F1 on the training split, with the
# page-structure features (model trained on two folds): the whole run dropped 0.804; runs of any size kept by score (>= 0.6) 0.809 but a news page's related
# headlines stay; kept when their sure words exceed half of the body above: 0.808 (twice them 0.807), and the
# related headlines of a wire story still go.
_LISTING_SURE_SCORE = 0.6
_LISTING_SHARE = 0.5
_REPEAT_MIN_WORDS = 8


def _repeated_lines(page: _Page) -> np.ndarray:
    """Lines of ``_REPEAT_MIN_WORDS`` words or more that repeat an earlier line of the page character for
    character: a forum's quoted replies, a teaser above its own paragraph. One copy says it all (and the
    benchmark's shingle multisets count a second copy as chrome); short lines repeat legitimately ("Step 1",
    a label). Out-of-fold page F1 on the training split: from 8 words +0.001, from 12 the same, from 5 -0.002,
    every repeat -0.015 (documentation and collections repeat short lines)."""
    repeated = np.zeros(len(page.lines), bool)
    rows = _flatnonzero(page.words >= _REPEAT_MIN_WORDS).tolist()
    long_lines = [page.lines[i] for i in rows]
    if len(set(long_lines)) == len(long_lines):  # most pages: no copy at all, found without a Python loop
        return repeated
    first_seen: dict[str, int] = {}
    for i, line in zip(rows, long_lines):
        if first_seen.setdefault(line, i) != i:
            repeated[i] = True
    return repeated


def _page_decision(scores: np.ndarray, words: np.ndarray, open_rows: np.ndarray, spec: dict) -> np.ndarray:
    """The scores re-centred on this page's own threshold (so the config's thresholds, 0.5 by default, apply
    relative to it), then smoothed into stretches.

    The threshold: the benchmark averages precision and recall per page, so the page's threshold is the
    one whose kept lines (taken by decreasing score) maximize ``precision_weight`` * expected precision +
    (1 - it) * expected recall, the scores read as the probabilities that a word is body; kept within
    [lowest, highest]. A line is then worth keeping when its score beats about ``precision_weight`` times
    the expected precision of what is kept: on a page whose body lines are sure, a doubtful line would
    lower a high precision and goes; on a page where nothing is sure (a forum, a shop), it is as good as
    the rest and its recall counts.

    The stretches: body and chrome come in runs, so the lines are split into the body/chrome segments that
    maximize the sum of (words + 1) * (score - threshold) over the body ones minus ``switch_cost`` per
    change (a two-state Viterbi path); a line the segments put on the other side of the threshold gets
    its score mirrored around 0.5."""
    rows = _flatnonzero(open_rows)
    p = scores[rows]
    order = (-p).argsort(kind="stable")
    ranked, weight = p[order], words[rows[order]].astype(float)
    body = _cumsum(ranked * weight)
    if not len(body) or body[-1] <= 0:
        return scores
    alpha = spec["precision_weight"]
    objective = alpha * body / np.maximum(_cumsum(weight), 1e-9) + (1 - alpha) * body / body[-1]
    k = int(_argmax(objective))
    below = ranked[k + 1] if k + 1 < len(ranked) else 0.0
    threshold = min(max((ranked[k] + below) / 2, spec["lowest"]), spec["highest"])
    shifted = scores.copy()
    z = np.log(_clip(p, 1e-6, 1 - 1e-6) / _clip(1 - p, 1e-6, 1)) - math.log(threshold / (1 - threshold))
    shifted[rows] = _sigmoid(z)
    if spec.get("switch_cost"):
        segments = _segments((words + 1.0) * (scores - threshold), spec["switch_cost"])
        flip = open_rows & (segments != (shifted >= 0.5))
        shifted[flip] = 1.0 - shifted[flip]
    return shifted


def _segments(values: np.ndarray, switch_cost: float) -> np.ndarray:
    """Which lines are in body segments: the two-state path maximizing the sum of ``values`` over body lines
    minus ``switch_cost`` per change of state (starting as chrome). A change only pays off where the sign
    of the values changes, so the path runs over runs of one sign (a few dozen a page), not over lines."""
    m = len(values)
    if not m:
        return np.zeros(0, bool)
    positive = values > 0
    starts = np.concatenate([[0], _flatnonzero(positive[1:] != positive[:-1]) + 1])
    chrome, body = 0.0, -switch_cost  # best totals so far ending as chrome / as body
    came_from = []
    for total in np.add.reduceat(values, starts).tolist():
        stay_chrome, to_chrome = chrome, body - switch_cost
        stay_body, to_body = body, chrome - switch_cost
        came_from.append((stay_chrome < to_chrome, stay_body >= to_body))  # (chrome came from body, body from body)
        chrome = max(stay_chrome, to_chrome)
        body = max(stay_body, to_body) + total
    state = body - switch_cost > chrome  # the page ends in chrome: a last body segment pays its change too
    states = []
    for from_chrome_body, from_body_body in reversed(came_from):
        states.append(state)
        state = from_body_body if state else from_chrome_body
    bounds = np.concatenate((starts, [m]))
    return np.array(states[::-1], bool).repeat(bounds[1:] - bounds[:-1])


def _names_classified(page: _Page, dropped: np.ndarray, first_body: int, last_body: int) -> list[str]:
    """_name_classified of each dropped line, in line order."""
    rows = _flatnonzero(dropped)
    n = page.words[rows]
    navigation = n <= 2
    for j in _flatnonzero(~navigation & page.could_be_crumb[rows]).tolist():
        navigation[j] = _NAV_CRUMB.match(page.lines[rows[j]]) is not None
    title_like = (n >= 2) & (n <= 30) & (page.codes[page.ends[rows] - 1] != ord("."))
    names = np.where(rows < first_body, "page_header", np.where(
        rows > last_body, np.where(title_like, "related_headlines", "page_footer"), "inline_chrome"))
    return np.where(navigation, "navigation", names).tolist()
