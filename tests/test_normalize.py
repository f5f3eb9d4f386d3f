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
