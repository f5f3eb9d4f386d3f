"""The text boilerplate stage on fixtures of our own writing, shaped like the real scraped seeds."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from docclean.boilerplate import body_scores, parse_date, strip_boilerplate
from docclean.config import BoilerplateConfig, NormalizeConfig
from docclean.document import Document, Removal
from docclean.normalize import normalize_text

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "text"


def _doc(name: str, content_type: str = "text", **fields) -> Document:
    text, _ = normalize_text((FIXTURES / name).read_text(encoding="utf-8"), NormalizeConfig())
    return Document(doc_id=name, source_path=name, source_sha256="0" * 64, content_type=content_type, text=text, **fields)


def _run(doc: Document, **config) -> tuple[Document, list[tuple[str, str]]]:
    out, edits = strip_boilerplate(doc, BoilerplateConfig(**config))
    assert all(isinstance(e, Removal) and e.stage == "boilerplate" for e in edits)
    assert list(out.removed) == edits
    return out, [(e.rule, e.text) for e in edits]


def _paragraphs(doc: Document) -> list[str]:
    return doc.text.split("\n\n")


def test_wire_story_header_footer_and_related_headlines():
    out, removed = _run(_doc("wire_story.txt"))
    assert removed == [
        ("site_header", "OrbitDaily.net - Your Window On The Skies"),
        ("title_line", "Europe weighs 'decisive year' for its launch industry: Germany"),
        ("dateline", "Geneva, Switzerland, Mar 4 (AFP) Mar 4, 2025"),
        ("advertisement_marker", "ADVERTISEMENT"),
        ("related_headlines", "Space News from OrbitDaily.net"),
        ("related_headlines", "Probe finds water ice near lunar south pole"),
        ("related_headlines", "Astronomers spot the most distant quasar yet"),
        ("related_headlines", "Solar storm lights up skies over Scotland"),
        ("related_headlines", "24/7 Science News Coverage"),
        ("related_headlines", "Bees can count to four, researchers find"),
        ("related_headlines", "Deep sea vents host unknown microbes"),
        ("related_headlines", "Glacier retreat doubles in the Alps since 2000"),
        ("copyright_footer", "All rights reserved. Copyright Agence France-Presse. Sections of the information "
         "displayed on this page (dispatches, photographs, logos) are protected by intellectual property rights "
         "owned by Agence France-Presse."),
    ]
    paragraphs = _paragraphs(out)
    assert paragraphs[0].startswith("Europe faces a decisive year")
    assert "The Shared Budget Question" in paragraphs  # a subheading between paragraphs stays
    assert paragraphs[-1].startswith('"No one wants to be the country')
    assert len(paragraphs) == 6
    assert out.title == "Europe weighs 'decisive year' for its launch industry: Germany"
    assert out.published == datetime(2025, 3, 4, tzinfo=timezone.utc)
    assert out.dateline == "Geneva, Switzerland"
    assert out.publisher == "AFP"
    assert not out.truncated


def test_aggregator_letter_sponsors_metadata_and_paywall():
    out, removed = _run(_doc("aggregator_letter.txt"))
    assert removed == [
        ("site_header", "THE MIDWEST MORNING LEDGER"),
        ("date_line", "Jul 2, 2025 |"),
        ("navigation", "3"),
        ("navigation", "| Fargo,ND"),
        ("sponsor_line", "Sponsor: PLAYBOOKR"),
        ("sponsor_line", "Sponsor: PLAYBOOKR: Sharpen your trivia game! Daily Quiz Coaching."),
        ("navigation", "back"),
        ("navigation", "topic"),
        ("publisher_line", "Le Monde"),
        ("publisher_line", "Le Monde"),
        ("date_line", "12 Mar 2024"),
        ("section_label", "LETTER FROM PARIS"),
        ("image_credit", "Images Le Monde.fr"),
        ("paywall_residue", "You have 62.3% of this article left to read. The rest is for subscribers only."),
    ]
    paragraphs = _paragraphs(out)
    assert len(paragraphs) == 3 and paragraphs[0].startswith("In Paris, the city council")
    assert out.truncated
    # the aggregator's own date (Jul 2, 2025) is not the article's
    assert out.published == datetime(2024, 3, 12, tzinfo=timezone.utc)
    assert out.publisher == "Le Monde"


def test_clean_body_with_subheadings_loses_nothing():
    doc = _doc("clean_with_subheadings.txt")
    out, removed = _run(doc)
    assert removed == []
    assert _paragraphs(out) == [line for line in doc.text.splitlines() if line.strip()]
    assert out.dateline == "Harbor City, Westland"  # from the inline dateline, the text itself stays


def test_fields_already_set_are_not_overwritten():
    published = datetime(2025, 3, 5, 8, 0, tzinfo=timezone.utc)
    out, _ = _run(_doc("wire_story.txt", title="Given title", published=published))
    assert out.title == "Given title" and out.published == published


def test_disabled_rule_keeps_its_lines():
    out, removed = _run(_doc("wire_story.txt"), disabled_rules=["copyright_footer"])
    assert "copyright_footer" not in {rule for rule, _ in removed}
    assert out.text.endswith("owned by Agence France-Presse.")


def test_disabled_stage_is_a_no_op():
    doc = _doc("wire_story.txt")
    out, edits = strip_boilerplate(doc, BoilerplateConfig(enabled=False))
    assert out is doc and edits == []


def test_extracted_html_text_gets_only_high_precision_rules():
    text = "\n".join([
        "Harbour Works",
        "The port authority will dredge the main channel next year, it said on Monday.",
        "Sponsored by Harbour Bank",
        "Share on Facebook",
        "Costs",
        "The work will cost 40 million euros and take eight months.",
        "Sign up for our newsletter",
        "© 2025 Coastal Media Group",
        "Read more",
    ])
    doc = Document(doc_id="h", source_path="h", source_sha256="", content_type="html", text=text)
    out, removed = _run(doc)
    assert removed == [
        ("sponsor_line", "Sponsored by Harbour Bank"),
        ("share_prompt", "Share on Facebook"),
        ("newsletter_prompt", "Sign up for our newsletter"),
        ("copyright_footer", "© 2025 Coastal Media Group"),
    ]
    # short lines are left to the extractor's judgement: no context classifier, no header parsing
    assert _paragraphs(out) == ["Harbour Works",
                                "The port authority will dredge the main channel next year, it said on Monday.",
                                "Costs", "The work will cost 40 million euros and take eight months.", "Read more"]
    assert out.title is None


@pytest.mark.parametrize("line, rule", [
    ("ADVERTISEMENT", "advertisement_marker"),
    ("Advertisement - Continue Reading Below", "advertisement_marker"),
    ("Story continues below advertisement", "advertisement_marker"),
    ("We use cookies to improve your experience on our site.", "cookie_notice"),
    ("Get the Morning Brief newsletter delivered straight to your inbox", "newsletter_prompt"),
    ("Subscribe to continue reading", "paywall_residue"),
    ("Photo: Jane Doe / Getty Images", "image_credit"),
    ("Copyright 2025 The Harbor Times", "copyright_footer"),
    ("Click to share on Twitter (Opens in new window)", "share_prompt"),
])
def test_single_pattern_lines(line, rule):
    text = "\n".join([
        "The council met on Tuesday night to vote on the new budget, which raises spending on roads and parks.",
        line,
        "Members approved it by seven votes to two after a debate that lasted more than three hours.",
    ])
    out, removed = _run(Document(doc_id="p", source_path="p", source_sha256="", text=text))
    assert removed == [(rule, line)]
    assert len(_paragraphs(out)) == 2


def test_paywall_sets_truncated_even_after_html_extraction():
    text = "A long first paragraph of the story that goes on for a while, as stories do.\nYou have 40% of this article left to read. The rest is for subscribers only."
    out, removed = _run(Document(doc_id="t", source_path="t", source_sha256="", content_type="html", text=text))
    assert removed == [("paywall_residue", "You have 40% of this article left to read. The rest is for subscribers only.")]
    assert out.truncated


def test_page_chrome_around_an_article_goes():
    text = "\n".join([
        "Skip to content", "Home", "World", "Business", "Sport", "Sign in", "Search",
        "Bridge reopens after two years of repairs",
        "The old town bridge reopened to traffic on Saturday after two years of repairs that cost the city far more than planned.",
        "Engineers found that the steel supports had rusted much faster than expected, and the work had to be redone twice.",
        "Residents said they were glad to have their shortest route to the station back.",
        "Most popular", "Ten things to do this weekend", "Council tax to rise by 3%", "Local team wins the cup",
        "About us", "Contact", "Privacy policy", "Terms of use",
    ])
    out, removed = _run(Document(doc_id="c", source_path="c", source_sha256="", text=text))
    body = text.splitlines()[8:11]
    headline = "Bridge reopens after two years of repairs"  # without markup, a headline looks like a subheading
    paragraphs = [p for p in _paragraphs(out) if p != headline]
    assert paragraphs == body
    removed_lines = {line for _, line in removed}
    assert set(text.splitlines()) - removed_lines - set(body) <= {headline}
    rules = {line: rule for rule, line in removed}
    assert rules["Skip to content"] == rules["Home"] == "navigation"
    assert rules["Ten things to do this weekend"] == "related_headlines"


def test_a_quoted_paragraph_is_kept_once():
    question = ("I have been trying to get the old garden shed wired for a light and a socket, and the cable from the "
                "house keeps tripping the breaker as soon as it rains.")
    text = "\n".join([
        "Home", "Forums", "Electrical", "Log in", "Register",
        "Shed cable trips the breaker when it rains",
        "greenfinch", "#1", question,
        "Any idea where the water could be getting in before I dig the whole run up again?",
        "sparky_joe", "#2", "greenfinch said:", question,
        "Check the junction box at the house end first: if the gland is not tight, water runs down the cable into it.",
        "Reply", "Share", "Similar threads", "Outdoor socket keeps tripping", "Best cable for a garden office",
        "Contact us", "Terms and rules", "Privacy policy",
    ])
    out, removed = _run(Document(doc_id="q", source_path="q", source_sha256="", text=text))
    assert out.text.count(question) == 1
    assert ("repeated_in_page", question) in removed


def test_empty_and_whitespace_documents_pass_through():
    empty = Document(doc_id="e", source_path="e", source_sha256="", text="")
    out, edits = strip_boilerplate(empty, BoilerplateConfig())
    assert out is empty and edits == []
    blank = Document(doc_id="e", source_path="e", source_sha256="", text="  \n\n ")
    out, edits = strip_boilerplate(blank, BoilerplateConfig())
    assert out.text == "" and edits == []  # later rejected as empty_after_cleaning


def test_scores_are_probabilities_one_per_line():
    lines = ["Home", "A paragraph of ordinary prose that tells the reader what happened and why it matters."]
    scores = body_scores(lines)
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()
    assert scores[1] > scores[0]


@pytest.mark.parametrize("text, expected", [
    ("Feb 13, 2025", datetime(2025, 2, 13, tzinfo=timezone.utc)),
    ("23 Nov 2024", datetime(2024, 11, 23, tzinfo=timezone.utc)),
    ("Published: Thursday, March 6th, 2025", datetime(2025, 3, 6, tzinfo=timezone.utc)),
    ("2024-12-31T10:00:00Z", datetime(2024, 12, 31, tzinfo=timezone.utc)),
    ("no date here", None),
    ("Feb 30, 2025", None),
])
def test_parse_date(text, expected):
    assert parse_date(text) == expected


from hypothesis import given, settings, strategies as st  # noqa: E402

_LINE = st.one_of(
    st.sampled_from(["Home", "ADVERTISEMENT", "Sponsor: ACME", "© 2025 Example", "back", "0", "| Town,ST", "Share",
                     "Feb 13, 2025", "Le Monde", "THE SITE NEWS", "A Subheading Here"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
            max_size=120),
    st.lists(st.sampled_from(["the", "council", "said", "on", "Monday", "that", "it", "would", "vote."]),
             min_size=5, max_size=30).map(" ".join),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_LINE, max_size=40), st.sampled_from(["text", "html"]))
def test_every_line_is_either_kept_or_removed_with_a_rule(lines, content_type):
    doc = Document(doc_id="h", source_path="h", source_sha256="", content_type=content_type, text="\n".join(lines))
    out, edits = strip_boilerplate(doc, BoilerplateConfig(join_fragments=False))
    assert out.reject_reason is None
    original = sorted(line.strip() for line in lines if line.strip())
    kept = [p for p in out.text.split("\n\n") if p] if out.text else []
    assert sorted(kept + [e.text for e in edits]) == original
    assert all(e.rule and e.rule == e.rule.lower() for e in edits)
