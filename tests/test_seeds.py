"""The boilerplate stage on the five real seeds: every chrome line goes with a sensible rule, every body
paragraph and subheading stays. Skipped, with a message, where ../shared/seeds is absent."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from docclean.boilerplate import strip_boilerplate
from docclean.config import BoilerplateConfig, NormalizeConfig
from docclean.document import Document
from docclean.normalize import normalize_text

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"

RELATED = "related_headlines"
# seed prefix -> the chrome lines (after normalization), in order, with the rule expected to remove each
CHROME = {
    "000": [],
    "001": [],
    "002": [],
    "003": [
        ("site_header", "SpaceWar.com - Your World At War"),
        ("title_line", "NATO faces 'moment of truth' on alliance's future: France"),
        ("dateline", "Brussels, Belgium, Feb 13 (AFP) Feb 13, 2025"),
        ("advertisement_marker", "ADVERTISEMENT"),
        (RELATED, "Space News from SpaceDaily.com"),
        (RELATED, "Macron says Europe must become 'space power' again"),
        (RELATED, "NASA raises chance for asteroid to hit moon"),
        (RELATED, "Tidal forces from the Sun may have shaped Mercury's tectonic features"),
        (RELATED, "24/7 Energy News Coverage"),
        (RELATED, "Tesla expected to launch long-discussed robotaxi service"),
        (RELATED, "Israeli army says struck ' inactive nuclear reactor' in Iran's Arak"),
        (RELATED, "New Zealand targets leadership in superconducting space tech with new research alliance"),
        (RELATED, "Military Space News, Nuclear Weapons, Missile Defense"),
        (RELATED, "Trump says US strikes 'obliterated' Iran nuclear sites"),
        (RELATED, "Israelis emerge from shelters to devastation after Iran attacks"),
        (RELATED, "Japan spots Chinese ships near disputed isles for record 216 straight days"),
        (RELATED, "24/7 News Coverage"),
        (RELATED, "NASA scientists find ties between Earth's oxygen and magnetic field"),
        (RELATED, "How did life survive 'Snowball Earth'? In ponds, study suggests"),
        (RELATED, "Arctic warming spurs growth of carbon-soaking peatlands"),
        ("copyright_footer", None),  # the long AFP legal paragraph
    ],
    "004": [
        ("site_header", "THE AMERICA ONE NEWS"),
        ("date_line", "Jun 20, 2025 |"),
        ("navigation", "0"),
        ("navigation", "| Remer,MN"),
        ("sponsor_line", "Sponsor: QWIKET"),
        ("sponsor_line", "Sponsor: QWIKET"),
        ("sponsor_line", "Sponsor: QWIKET: Elevate your fantasy game! Interactive Sports Knowledge."),
        ("sponsor_line", None),
        ("navigation", "back"),
        ("navigation", "topic"),
        ("publisher_line", "Le Monde"),
        ("publisher_line", "Le Monde"),
        ("date_line", "23 Nov 2024"),
        ("section_label", "LETTER FROM BRUSSELS"),
        ("image_credit", "Images Le Monde.fr"),
        ("paywall_residue", "You have 50.51% of this article left to read. The rest is for subscribers only."),
    ],
}


def _seed(prefix: str) -> Document:
    if not SEEDS.is_dir():
        pytest.skip(f"the real seeds are not here ({SEEDS} is absent)")
    path = next(SEEDS.glob(f"{prefix}_*.txt"))
    text, _ = normalize_text(path.read_text(encoding="utf-8"), NormalizeConfig())
    return Document(doc_id=prefix, source_path=path.name, source_sha256="", text=text)


@pytest.mark.parametrize("prefix", sorted(CHROME))
def test_seed_chrome_goes_and_body_stays(prefix):
    doc = _seed(prefix)
    out, edits = strip_boilerplate(doc, BoilerplateConfig())
    removed = [(e.rule, e.text) for e in edits]
    expected = CHROME[prefix]
    assert [rule for rule, _ in removed] == [rule for rule, _ in expected]
    for (_, text), (_, want) in zip(removed, expected):
        if want is not None:
            assert text == want
    lines = [line.strip() for line in doc.text.splitlines() if line.strip()]
    removed_texts = [text for _, text in removed]
    body = [line for line in lines if line not in removed_texts]
    assert out.text.split("\n\n") == body  # every other line, subheadings included, in order


def test_seed_001_subheadings_are_body():
    out, _ = strip_boilerplate(_seed("001"), BoilerplateConfig())
    paragraphs = out.text.split("\n\n")
    for heading in ("The Rutte Doctrine: Charm Offensive", "Paris and Warsaw Push Back", "Ukraine Caught in the Middle",
                    "The 3% Trap", "Brussels Decides More Than You Think"):
        assert heading in paragraphs


def test_seed_003_afp_metadata():
    out, _ = strip_boilerplate(_seed("003"), BoilerplateConfig())
    assert out.title == "NATO faces 'moment of truth' on alliance's future: France"
    assert out.published == datetime(2025, 2, 13, tzinfo=timezone.utc)
    assert out.dateline == "Brussels, Belgium"
    assert out.publisher == "AFP"
    assert out.text.startswith("NATO faces a moment of reckoning")
    assert out.text.endswith('a "widening of the conflict".')
    assert not out.truncated


def test_seed_004_le_monde_letter_truncated_with_its_own_date():
    out, _ = strip_boilerplate(_seed("004"), BoilerplateConfig())
    assert out.truncated
    assert out.published == datetime(2024, 11, 23, tzinfo=timezone.utc)  # not the aggregator's Jun 20, 2025
    assert out.publisher == "Le Monde"
    assert out.text.startswith("In Brussels, the two administrations")
    assert out.text.endswith("A further exercise is planned for Germany in 2025.")


def test_seed_002_inline_dateline():
    out, _ = strip_boilerplate(_seed("002"), BoilerplateConfig())
    assert out.dateline == "Paris, France"
    assert "In-Depth:" in out.text.split("\n\n")
