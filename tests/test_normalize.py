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
