"""Normalize: repair broken encodings and odd characters without changing what the text says.

ftfy does the hard part (mojibake, HTML entities, control characters, NFC). We keep typographic quotes and
dashes (ftfy would straighten quotes by default) and add what ftfy leaves alone: non-breaking and other odd
spaces, zero-width characters, runs of spaces. Every fix applied is recorded by name with a count.
"""

from __future__ import annotations

import re
import unicodedata
from re import _constants as sre_c, _parser as sre_parse
from collections import Counter
from typing import Iterator

import ftfy
from ftfy import TextFixerConfig, chardata
from ftfy.badness import BADNESS_RE, is_bad

from .config import NormalizeConfig
from .document import Document, Edit, Fix, StageResult

STAGE = "normalize"

# ftfy's explanation steps are ('apply', name) / ('encode', codec) / ('decode', codec); we name each fix.
_FTFY_RULE = {
    "unescape_html": "html_entities",
    "remove_terminal_escapes": "terminal_escapes",
    "restore_byte_a0": "mojibake",
    "replace_lossy_sequences": "mojibake",
    "decode_inconsistent_utf8": "mojibake",
    "fix_c1_controls": "c1_controls",
    "fix_latin_ligatures": "latin_ligatures",
    "fix_character_width": "character_width",
    "fix_line_breaks": "line_breaks",
    "fix_surrogates": "surrogates",
    "remove_control_chars": "control_chars",
}

# Spaces that look like a space but aren't one: NBSP (the seeds have it), the U+2000 block, narrow NBSP...
_ODD_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
# Zero-width characters and soft hyphens only hide inside words and break matching downstream.
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SPACE_RUNS = re.compile(r"[ \t]{2,}")
_TRAILING = re.compile(r"[ \t]+$", re.M)


def _ftfy_config(config: NormalizeConfig) -> TextFixerConfig:
    return TextFixerConfig(
        uncurl_quotes=config.uncurl_quotes,
        fix_character_width=False,  # full-width CJK punctuation is legitimate text
        fix_latin_ligatures=True,
        unescape_html=True,  # scraped text often keeps &amp; and &nbsp; from the page
        normalization="NFC",
        explain=True,
    )


# Every character one of ftfy's fixers (as we configure them) acts on, apart from mojibake, which
# ftfy.badness.is_bad detects: entities (ftfy's own entity pattern: a bare "&", as in "Terms & Conditions",
# is most of a page's hits and never changes), C0/C1 controls and terminal escapes, ligatures, ftfy's other
# control characters, lone surrogates, Unicode line breaks. A line with none of them and no mojibake
# is returned by ftfy unchanged (but for NFC, which normalize_text applies to the whole text), so the
# gate skips ftfy's full pass for almost every line at regex speed.
_FTFY_TRIGGERS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029"
    + "".join(re.escape(chr(c)) for c in sorted(set(chardata.LIGATURES) | set(chardata.CONTROL_CHARS)))
    + "]"
)
_HTML_ENTITY = chardata.HTML_ENTITY_RE  # scanned on its own: one character class scans fastest
_CURLY_QUOTES = re.compile(f"{chardata.SINGLE_QUOTE_RE.pattern}|{chardata.DOUBLE_QUOTE_RE.pattern}")


def _utf8_sequence_as_text() -> re.Pattern:
    # Mojibake is UTF-8 decoded with a one-byte encoding: a lead byte 0xC0-0xF4 followed by a continuation
    # byte 0x80-0xBF each became a character. Every path of ftfy's
    # fix_encoding re-encodes and decodes such a sequence, so a line without one can skip its slow
    # detector: accented letters followed by plain letters (French, German...) don't match.
    import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-windows-* codecs)

    def chars(enc: str, lo: int, hi: int) -> str:
        found = {bytes([b]).decode(enc, errors="ignore") for b in range(lo, hi + 1)}
        return "".join(re.escape(c) for c in sorted(found) if c)

    leads = "".join(chars(enc, 0xC0, 0xF4) for enc in chardata.CHARMAP_ENCODINGS)
    continuations = "".join(chars(enc, 0x80, 0xBF) for enc in chardata.CHARMAP_ENCODINGS)
    # A space may stand for a lost 0xA0, U+FFFD for bytes a sloppy codec dropped (ftfy restores both).
    return re.compile(f"[{leads}][{continuations} \ufffd]")  # one class each: a superset, one fast scan


_MOJIBAKE_LEAD = _utf8_sequence_as_text()


# ftfy's BADNESS_RE is an alternation of ~40 sequences of large character classes, tried one after the
# other at every character: on French or German text, where nearly every line holds a possible UTF-8 lead
# ("é " may be "\xc3\xa9" with a lost 0xA0), it cost 60% of the stage. Every alternative holds two adjacent
# single characters from known sets (or, for C1 controls, one), so a line it matches holds such a pair.
# The gate below is derived from ftfy's own pattern: for each alternative, the rarest adjacent pair; it
# starts with one character class (the regex engine then skips ahead at C speed) and checks the pair with
# a look-behind. It is a superset of BADNESS_RE on any line (tests check it exhaustively on pairs), so
# is_bad runs only where the gate fires, and the result is unchanged. If a later ftfy's pattern uses
# something we can't reason about, we fall back to running is_bad after the lead check alone.


# (negated, chars): BADNESS_RE's single-character items are finite sets and complements of finite sets.
CharSet = tuple[bool, frozenset]


def _item_chars(op, av) -> CharSet | None:
    """The characters one regex item matches, or None when it isn't a single character of a known set."""
    if op is sre_c.LITERAL:
        return False, frozenset(chr(av))
    if op is sre_c.NOT_LITERAL:
        return True, frozenset(chr(av))
    if op is sre_c.ANY:
        return True, frozenset("\n")
    if op is not sre_c.IN:
        return None
    negated, chars = False, set()
    for kind, value in av:
        if kind is sre_c.NEGATE:
            negated = True
        elif kind is sre_c.LITERAL:
            chars.add(chr(value))
        elif kind is sre_c.RANGE:
            chars.update(map(chr, range(value[0], value[1] + 1)))
        else:  # a category (\s, \w...): not worth enumerating, never chosen
            return None
    return negated, frozenset(chars)


def _weight(chars: CharSet) -> int:
    negated, found = chars
    return 10**6 if negated else 1000 * sum(c.isascii() for c in found) + len(found)


def _rarest_pair(branch: list) -> tuple[CharSet, CharSet | None]:
    """Two adjacent single-character items of one alternative (or one item), chosen to be rare in text."""
    items = [_item_chars(op, av) for op, av in branch]
    pairs = [(a, b) for a, b in zip(items, items[1:]) if a is not None and b is not None and not a[0]]
    if pairs:
        return min(pairs, key=lambda p: 10 * _weight(p[0]) + _weight(p[1]))
    singles = [a for a in items if a is not None and not a[0]]
    if not singles:
        raise ValueError(f"no rare part in {branch!r}")
    return min(singles, key=_weight), None


def _union(a: CharSet | None, b: CharSet | None) -> CharSet | None:
    if a is None or b is None:
        return None  # None: any next character, or none at all
    (neg_a, a), (neg_b, b) = a, b
    if neg_a and neg_b:
        return True, a & b
    if neg_a or neg_b:
        return True, (a if neg_a else b) - (b if neg_a else a)
    return False, a | b


def _char_class(chars: CharSet) -> str:
    negated, found = chars
    return ("[^" if negated else "[") + "".join(re.escape(c) for c in sorted(found)) + "]"


def _badness_gate(badness_re: re.Pattern) -> re.Pattern:
    if badness_re.flags & re.IGNORECASE:
        raise ValueError("case-insensitive")
    tree = sre_parse.parse(badness_re.pattern, badness_re.flags)
    if len(tree.data) == 1 and tree.data[0][0] is sre_c.BRANCH:
        branches = tree.data[0][1][1]
    else:
        branches = [tree]
    following: dict[str, CharSet | None] = {}  # first character of a pair -> the characters that may follow
    for branch in branches:
        (_, first), second = _rarest_pair(list(branch))
        for c in first:
            following[c] = _union(following[c], second) if c in following else second
    groups: dict[CharSet | None, list[str]] = {}
    for c, second in following.items():
        if second is not None:  # a line is one line: "\n" never follows within it
            neg, found = second
            second = (True, found | {"\n"}) if neg else (False, found - {"\n"})
            if not neg and not found:
                continue
        groups.setdefault(second, []).append(c)
    first_chars = (False, frozenset(c for cs in groups.values() for c in cs))
    branches_re = [
        f"(?<={_char_class((False, frozenset(cs)))})" + ("" if second is None else _char_class(second))
        for second, cs in sorted(groups.items(), key=lambda g: g[0] is not None)
    ]
    return re.compile(_char_class(first_chars) + "(?:" + "|".join(branches_re) + ")")


try:
    _BADNESS_GATE: re.Pattern | None = _badness_gate(BADNESS_RE)
except (ValueError, TypeError, AttributeError, re.error):
    _BADNESS_GATE = None


def _looks_like_mojibake(line: str) -> bool:
    return _MOJIBAKE_LEAD.search(line) is not None and is_bad(line)


def _line_spans(text: str, pattern: re.Pattern, check=None) -> Iterator[tuple[int, int]]:
    """(start, end) of each line of ``text`` where ``pattern`` matches (and ``check(line)`` holds).

    One regex scan over the whole text, jumping to the next line after a hit: per-line calls cost more
    than the scan on pages of a thousand short lines."""
    pos = 0
    while (m := pattern.search(text, pos)) is not None:
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.end())
        end = len(text) if end < 0 else end
        if check is None or check(text[start:end]):
            yield start, end
        pos = end + 1


def lines_needing_ftfy(text: str, uncurl_quotes: bool = False) -> list[tuple[int, int]]:
    spans = set(_line_spans(text, _FTFY_TRIGGERS))
    if "&" in text:
        spans.update(_line_spans(text, _HTML_ENTITY))
    if not text.isascii():
        if uncurl_quotes:
            spans.update(_line_spans(text, _CURLY_QUOTES))
        if _BADNESS_GATE is None:
            spans.update(_line_spans(text, _MOJIBAKE_LEAD, is_bad))
        else:  # the gate is rarer than a lead sequence: scan for it, check the line
            spans.update(_line_spans(text, _BADNESS_GATE, _looks_like_mojibake))
    return sorted(spans)


def fix_encoding_and_entities(text: str, config: NormalizeConfig) -> tuple[str, Counter]:
    """ftfy, line by line (so one mojibake line doesn't make ftfy judge the whole text), only where needed."""
    counts: Counter = Counter()
    spans = lines_needing_ftfy(text, config.uncurl_quotes)
    if not spans:
        return text, counts
    cfg = _ftfy_config(config)
    out, pos = [], 0
    for start, end in spans:
        line = text[start:end]
        fixed, steps = ftfy.fix_and_explain(line, cfg)
        if fixed != line:
            for kind, name in steps or ():
                if kind == "apply":
                    counts[_FTFY_RULE.get(name, name)] += 1
                elif kind == "encode":
                    counts[f"mojibake:{name}"] += 1
        out.append(text[pos:start])
        out.append(fixed)
        pos = end
    out.append(text[pos:])
    return "".join(out), counts


def fix_spaces(text: str) -> tuple[str, Counter]:
    # Line breaks first: a space before a "\r" is a trailing space only once "\r" is "\n", and one pass
    # must leave nothing for a second (normalize_text relies on it).
    counts: Counter = Counter()
    if "\r" in text:
        counts["line_breaks"] += text.count("\r")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():  # odd and zero-width spaces are all outside ASCII
        text, n = _ODD_SPACES.subn(" ", text)
        if n:
            counts["odd_spaces"] += n
        text, n = _ZERO_WIDTH.subn("", text)
        if n:
            counts["zero_width_chars"] += n
    # The substring tests are exact prefilters, and much cheaper than a regex scan of a page (which
    # stops at every space).
    if "  " in text or "\t" in text:
        text, n = _SPACE_RUNS.subn(" ", text)
        if n:
            counts["space_runs"] += n
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        text, n = _TRAILING.subn("", text)
        if n:
            counts["trailing_spaces"] += n
    return text, counts


def normalize_text(text: str, config: NormalizeConfig) -> tuple[str, list[Fix]]:
    # Spaces first (a zero-width character inside mojibake hides it from ftfy), ftfy until nothing
    # changes (one fix can uncover another), spaces again (a repaired sequence can be a NBSP), then NFC:
    # so that normalizing a normalized text changes nothing.
    text, counts = fix_spaces(text)
    spaced = text
    for _ in range(3):
        fixed, more = fix_encoding_and_entities(text, config)
        counts.update(more)
        if fixed == text:
            break
        text = fixed
    if text is not spaced:  # fix_spaces is idempotent: only a change by ftfy can give it more to do
        text, space_counts = fix_spaces(text)
        counts.update(space_counts)
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
        counts["nfc"] += 1
    fixes = [Fix(rule=rule.split(":")[0], detail=f"{rule} x{n}", stage=STAGE) for rule, n in sorted(counts.items())]
    return text, fixes


def normalize(doc: Document, config: NormalizeConfig) -> StageResult:
    """Normalize the text of a document; an HTML document is normalized once it has been extracted.

    Running ftfy over raw HTML cost more than extracting it (measured: 322 ms against 200 ms a page), and
    the markup has nothing to fix: the parser decodes entities, the reader already chose the encoding."""
    if doc.html is not None:
        return doc, []
    text, fixes = normalize_text(doc.text, config)
    edits: list[Edit] = list(fixes)
    return (doc.with_edits(edits, text=text) if edits else doc), edits
