"""Normalize: mojibake, entities, odd spaces; typographic quotes and dashes kept; every fix recorded."""

from docclean.config import NormalizeConfig
from docclean.document import Document
from docclean.normalize import normalize

CFG = NormalizeConfig()


def _doc(text: str, **kw) -> Document:
    return Document(doc_id="d", source_path="d.txt", source_sha256="", text=text, **kw)


def test_mojibake_and_nbsp_are_repaired_and_recorded():
    doc, edits = normalize(_doc("Minister Jean-NoÃ«l Barrot said â‚¬100 billion\u00a0was spent.\nSponsor:\u00a0 QWIKET\u00a0"), CFG)
    assert doc.text == "Minister Jean-Noël Barrot said €100 billion was spent.\nSponsor: QWIKET"
    rules = {e.rule for e in edits}
    assert {"mojibake", "odd_spaces"} <= rules
    assert doc.fixes == tuple(edits)


def test_typographic_quotes_and_dashes_are_kept():
    text = "She said, \u201cIt doesn\u2019t add up\u201d \u2013 and left \u2014 quickly."
    doc, edits = normalize(_doc(text), CFG)
    assert doc.text == text and edits == []


def test_entities_and_control_characters_in_scraped_text():
    doc, _ = normalize(_doc("Fish &amp; chips\x07 at Caf\u0065\u0301"), CFG)
    assert doc.text == "Fish & chips at Caf\u00e9"  # entity decoded, BEL dropped, NFC


def test_clean_ascii_text_is_untouched_and_idempotent():
    doc, edits = normalize(_doc("Plain text.\n\nSecond paragraph."), CFG)
    assert edits == [] and doc.text == "Plain text.\n\nSecond paragraph."
    once, _ = normalize(_doc("Jean-NoÃ«l \u00a0 went"), CFG)
    twice, more = normalize(once, CFG)
    assert twice.text == once.text and more == []


def test_html_is_left_for_the_extractor():
    doc = _doc("", html="<p>Caf&eacute; &amp; bar</p>", content_type="html")
    out, edits = normalize(doc, CFG)
    assert out is doc and edits == []


def test_a_space_before_a_carriage_return_goes_in_one_pass():
    # Windows line ends after a space: "\r" becomes "\n" before trailing spaces are trimmed, so a second
    # normalization has nothing left to do (it once found " \n").
    from docclean.normalize import normalize_text

    once, _ = normalize_text("HARBOUR TIMES \r\nDockworkers walked off the job. \r", NormalizeConfig())
    assert once == "HARBOUR TIMES\nDockworkers walked off the job.\n"
    assert normalize_text(once, NormalizeConfig()) == (once, [])


def test_the_gates_agree_with_ftfy_on_a_scraped_page():
    # normalize skips ftfy on lines that can't change: a bare "&" is no entity, an ASCII text has no odd
    # spaces. The gated result must equal ftfy run on every line (then spaces, NFC) on text like a page.
    import ftfy

    from docclean.normalize import _ftfy_config, fix_spaces, normalize_text

    page = (
        "HOME | NEWS | Terms & Conditions | Privacy & Cookies\t\n"
        "Rock &amp; roll festival returns to the harbour &#8212; organisers say  tickets sold out.\n"
        "Ships & boats: the port\u2019s caf\u00e9 reopened \u00a0 after the storm. \n"
        "Minister Jean-NoÃ«l Barrot said â‚¬100 billion\n"
        "Q&A with the mayor &copy 2024 & more&nbsp;here\n"
        "\u00a9 2024 Harbour Times &  partners"
    )
    fixed, _ = normalize_text(page, NormalizeConfig())
    spaced, _ = fix_spaces(page)
    by_line = "\n".join(ftfy.fix_and_explain(line, _ftfy_config(NormalizeConfig()))[0] for line in spaced.split("\n"))
    assert fixed == fix_spaces(by_line)[0]
    assert "Terms & Conditions | Privacy & Cookies\n" in fixed  # trailing tab gone, bare "&" kept
    assert "Rock & roll festival returns to the harbour \u2014 organisers say tickets" in fixed
    assert "caf\u00e9 reopened after the storm.\n" in fixed and "Jean-Noël Barrot said €100 billion" in fixed


# The gate in front of ftfy's slow mojibake detector (is_bad) must fire on every line is_bad flags.

import functools  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402

import pytest  # noqa: E402
from ftfy.badness import BADNESS_RE, MOJIBAKE_CATEGORIES  # noqa: E402

FRENCH_GERMAN_SPANISH = [
    "L\u2019été dernier, à Marseille, la ministre a présenté « un plan » pour 2025 \u2014 près de 3\u00a0000 € par élève.",
    "Die Bürger in Köln müssen ab März höhere Gebühren für Straßenreinigung zahlen; Füße, Öl, Übermaß.",
    "El presidente anunció que la inversión aumentará un 5 % el próximo año. ¿Hasta cuándo? ¡Basta!",
    "Ça coûte cher : 12,50 € la séance, œuvre d\u2019art comprise ; cœur, sœur, créé, agréée.",
    "Μια ελληνική πρόταση με «εισαγωγικά» και € σύμβολο. Русский текст с «кавычками» \u2014 5 000 ₽.",
]
MOJIBAKE = ["cafÃ©", "â€™", "вЂ", "β€™", "Ã ", "Â ", "NoÃ«l", "â‚¬", "Ã\u00a0", "ā€", "Ã¢â‚¬â„¢", "ГўВЂВњa"]
CODECS = ["latin-1", "sloppy-windows-1252", "sloppy-windows-1251", "sloppy-windows-1253", "macroman", "sloppy-windows-1250"]


def _gate():
    from docclean.normalize import _BADNESS_GATE

    assert _BADNESS_GATE is not None, "the gate could not be derived from this ftfy's BADNESS_RE"
    return _BADNESS_GATE


def _mojibake_lines(rnd: random.Random, n: int) -> list[str]:
    import ftfy.bad_codecs  # noqa: F401

    lines = []
    for _ in range(n):
        line = rnd.choice(FRENCH_GERMAN_SPANISH)
        kind = rnd.random()
        if kind < 0.4:
            line = line.encode("utf-8").decode(rnd.choice(CODECS), errors="replace")
            line = line.replace("\u00a0", " ") if rnd.random() < 0.3 else line
        elif kind < 0.7:
            words = line.split(" ")
            words.insert(rnd.randrange(len(words) + 1), rnd.choice(MOJIBAKE))
            line = " ".join(words)
        lines.append(line)
    return lines


@functools.cache
def _badness_alphabet() -> list[str]:
    # Every character of BADNESS_RE's classes, plus the Latin, Greek and Cyrillic blocks, and spaces and
    # outsiders (for \s, \w, [^A-Za-z] and ".").
    chars = set("".join(MOJIBAKE_CATEGORIES.values()))
    chars |= {c for c in BADNESS_RE.pattern if not c.isascii()}
    for lo, hi in re.findall(r"(.)-(.)", "".join(MOJIBAKE_CATEGORIES.values())):
        chars |= set(map(chr, range(ord(lo), ord(hi) + 1)))
    chars |= set(map(chr, range(0x20, 0x250))) | set(map(chr, range(0x370, 0x460)))
    chars |= set("\t\r\x0b\x0c\x85\u00a0\u2028\u3000\ufffd\u4e2d")
    return sorted(chars)


def test_gate_fires_on_every_line_is_bad_flags_in_mojibaked_european_text():
    from ftfy.badness import is_bad

    gate = _gate()
    lines = _mojibake_lines(random.Random(1), 3000)
    flagged = [line for line in lines if is_bad(line)]
    assert len(flagged) > 500  # the sample really holds mojibake
    assert all(gate.search(line) for line in flagged)
    # and it is selective: clean European text rarely wakes is_bad up
    assert sum(bool(gate.search(line)) for line in FRENCH_GERMAN_SPANISH) <= 1


def test_gate_fires_on_random_strings_of_mojibake_characters():
    gate = _gate()
    rnd = random.Random(2)
    alphabet = _badness_alphabet()
    for _ in range(40_000):
        s = "".join(rnd.choices(alphabet, k=rnd.randint(2, 7)))
        assert not BADNESS_RE.search(s) or gate.search(s), repr(s)


def test_gate_fires_on_every_pair_of_characters_badness_re_matches():
    # Exhaustive over the alphabet (~870 characters, 750k pairs, about a second).
    gate = _gate()
    alphabet = _badness_alphabet()
    for a in alphabet:
        for b in alphabet:
            assert not BADNESS_RE.search(a + b) or gate.search(a + b), repr(a + b)


def test_gate_never_crosses_a_line_break():
    # normalize scans the whole text with the gate and checks the line of each hit: a hit spanning "\n"
    # would hand it two lines.
    gate = _gate()
    assert not any(gate.search(c + "\n") and gate.search(c + "\n").end() > 1 for c in _badness_alphabet())
    assert gate.search("œ.") and not gate.search("œ\nx") and not gate.search("cœur")


def test_normalize_is_the_same_with_and_without_the_gate(monkeypatch):
    import docclean.normalize as normalize_module
    from docclean.normalize import normalize_text

    rnd = random.Random(3)
    texts = ["\n".join(_mojibake_lines(rnd, rnd.randint(1, 15))) for _ in range(200)]
    gated = [normalize_text(text, CFG) for text in texts]
    monkeypatch.setattr(normalize_module, "_BADNESS_GATE", None)
    assert [normalize_text(text, CFG) for text in texts] == gated
    assert sum(any(f.rule == "mojibake" for f in fixes) for _, fixes in gated) > 50


def _a_match_of(branch, rnd: random.Random) -> str:
    """A random string matching one alternative of BADNESS_RE (single characters, \\s?, ^ only)."""
    from re import _constants as c

    out = []
    for op, av in branch:
        if op is c.LITERAL:
            out.append(chr(av))
        elif op is c.ANY:
            out.append(rnd.choice("xé €"))
        elif op is c.MAX_REPEAT:
            out.append(rnd.choice(["", " ", "\t"]))
        elif op is c.AT:
            continue
        else:
            assert op is c.IN
            out.append(rnd.choice(_members(_class_source(av))))
    return "".join(out)


@functools.cache
def _members(char_class: str) -> list[str]:
    return [ch for ch in _badness_alphabet() if re.fullmatch(char_class, ch)]


def _class_source(av) -> str:
    from re import _constants as c

    parts, negated = [], False
    for kind, value in av:
        if kind is c.NEGATE:
            negated = True
        elif kind is c.LITERAL:
            parts.append(re.escape(chr(value)))
        elif kind is c.RANGE:
            parts.append(f"{re.escape(chr(value[0]))}-{re.escape(chr(value[1]))}")
        else:
            parts.append({c.CATEGORY_SPACE: r"\s", c.CATEGORY_WORD: r"\w"}[value])
    return ("[^" if negated else "[") + "".join(parts) + "]"


def test_gate_fires_on_generated_matches_of_every_alternative():
    # Longer alternatives (\s + two letters, the Arabic four-character one, "ГўВЂВ.x") are rare among
    # random strings: build matches of each, set in a line of French.
    from re import _parser

    gate = _gate()
    rnd = random.Random(4)
    [(_, (_, branches))] = _parser.parse(BADNESS_RE.pattern, BADNESS_RE.flags).data
    assert len(branches) > 30
    for branch in branches:
        for _ in range(30):
            bad = _a_match_of(list(branch), rnd)
            line = rnd.choice(["", "Le prix était ", "Straße "]) + bad + rnd.choice(["", " fin.", "é"])
            line = line if BADNESS_RE.search(line) else bad  # "^" alternatives only match at the start
            assert BADNESS_RE.search(line) and gate.search(line), repr(line)


def test_gate_fires_after_oe_for_every_non_letter():
    # [Œœ][^A-Za-z] is the one alternative whose second character is nearly anything: check all of the BMP.
    gate = _gate()
    for code in range(0x10000):
        ch = chr(code)
        if ch != "\n" and not ("A" <= ch <= "Z" or "a" <= ch <= "z") and not 0xD800 <= code < 0xE000:
            assert gate.search("cœ" + ch) and gate.search("Œ" + ch), repr(ch)
