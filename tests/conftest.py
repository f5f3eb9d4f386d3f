"""Shared fixtures: a small raw corpus of our own writing, in the style of the real scraped seeds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

# On CI (CI=true) property tests draw the same examples every run, so a red build is reproducible; on a
# developer's machine they explore new ones each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEEDS = SHARED / "seeds"
NB = "\u00a0"

WIRE_STORY = """CoastalWire.com - News From Every Shore
Fishermen block harbour over new quota rules
Brest, France, Apr 9 (AFP) Apr 9, 2025
Hundreds of fishing boats blocked the harbour of Brest on Wednesday in protest against new catch quotas that their unions say will force a third of the fleet out of business within two years.

The quotas, agreed in Brussels last month, cut the allowed catch of sole and hake in the Bay of Biscay by up to 40% to protect stocks that scientists say are close to collapse.

"We are the first to want fish in the sea tomorrow, but nobody asked us how to get there," said Yann Le Goff, who has fished out of Brest for 31 years.

The regional government has promised an emergency fund of 15 million euros, which the unions called a plaster on a broken leg.

The fisheries ministry said it would meet union leaders on Friday and ask the European Commission to phase in the cuts over three years.


ADVERTISEMENT




Ocean News from CoastalWire.com
Storm season starts early in the North Atlantic
Oyster farmers count the cost of a warm winter
New ferry route links Roscoff and Cork

All rights reserved. Copyright Agence France-Presse. Sections of the information displayed on this page (dispatches, photographs, logos) are protected by intellectual property rights owned by Agence France-Presse."""

SYNDICATED_COPY = f"""THE MORNING HERALD ONLINE
Apr 10, 2025 {NB}|{NB}
0
{NB}| Bend,OR
Sponsor:{NB} QWIKET{NB}
Sponsor:{NB} QWIKET:{NB}Elevate your fantasy game! Interactive Sports Knowledge.
back{NB} {NB}
topic
Hundreds of fishing boats blocked the harbour of Brest on Wednesday in protest against new catch quotas that their unions say will force a third of the fleet out of business within two years.
The quotas, agreed in Brussels last month, cut the allowed catch of sole and hake in the Bay of Biscay by up to 40% to protect stocks that scientists say are close to collapse.
"We are the first to want fish in the sea tomorrow, but nobody asked us how to get there," said Yann Le Goff, who has fished out of Brest for 31 years.
The regional government has promised an emergency fund of 15 million euros, which the unions called a plaster on a broken leg.
The fisheries ministry said it would meet union leaders on Friday and ask the European Commission to phase in the cuts over three years.
"""

PAYWALLED = f"""THE MORNING HERALD ONLINE
Mar 1, 2025 {NB}|{NB}
0
Sponsor:{NB} QWIKET{NB}
back{NB} {NB}
topic
Le Soir
Le Soir
26 Feb 2025


LETTER FROM LIEGE

Images Le Soir.be

In Liege, the steelworks that once lit up the valley at night have almost all gone quiet, and the city is trying to decide what the vast sites along the Meuse should become.

Some of the land is polluted deep into the ground, and cleaning it up will cost more than any developer is willing to pay without help from the regional government.

Local residents, many of whom worked in the mills, want parks and housing; the region wants data centres and logistics hubs that bring jobs and taxes.

You have 71.40% of this article left to read. The rest is for subscribers only."""

GERMAN = """Die Stadt Freiburg hat am Montag einen neuen Radweg entlang der Dreisam eröffnet, der die Innenstadt mit den östlichen Stadtteilen verbindet.
Nach Angaben der Stadtverwaltung nutzen schon jetzt täglich mehr als 9000 Menschen die angrenzenden Strecken mit dem Fahrrad.
Die Bauarbeiten dauerten knapp zwei Jahre und kosteten rund 6,5 Millionen Euro, von denen das Land Baden-Württemberg die Hälfte übernahm.
"""

HTML_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Night trains return to the Alps | Rail Desk</title>
<meta property="og:title" content="Night trains return to the Alps">
<meta property="og:site_name" content="Rail Desk">
<meta property="article:published_time" content="2025-05-02T07:00:00+00:00">
<link rel="canonical" href="https://raildesk.example/2025/05/night-trains-alps">
</head><body>
<nav><a href="/">Home</a> <a href="/trains">Trains</a> <a href="/subscribe">Subscribe</a></nav>
<div class="share-buttons"><a href="#">Share on Facebook</a> <a href="#">Tweet</a></div>
<article><h1>Night trains return to the Alps</h1>
<p>A new night train between Amsterdam and Innsbruck will start running in December, the Austrian railway said on Friday, restoring a connection that was dropped more than a decade ago.</p>
<p>The train will leave Amsterdam in the evening and reach the Tyrolean capital the next morning, with sleeper cabins, couchettes and seats, and a stop in Cologne and Munich.</p>
<p>Ticket sales open in October, and prices will start at 49 euros for a seat and 119 euros for a bed in a shared cabin.</p>
</article>
<aside class="related"><h3>Related</h3><ul><li><a href="#">Eurostar adds trains to Cologne</a></li><li><a href="#">Swiss rail sets punctuality record</a></li></ul></aside>
<footer>&copy; 2025 Rail Desk. All rights reserved.</footer></body></html>"""


def write_corpus(root: Path) -> dict[str, str]:
    """Write the fixture corpus; returns {relative path: what it should become}."""
    files = {
        "wire/fishermen.txt": (WIRE_STORY, "document"),
        "web/fishermen_copy.txt": (SYNDICATED_COPY, "duplicate"),
        "web/liege_letter.txt": (PAYWALLED, "document"),
        "web/freiburg_de.txt": (GERMAN, "document"),
        "web/night_trains.html": (HTML_PAGE, "document"),
        "web/empty.txt": ("", "reject"),
    }
    for rel, (text, _) in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    records = [
        {"url": "https://towncrier.example/a", "title": "Bridge reopens after repairs", "published": "2025-06-01",
         "text": "The old stone bridge over the river reopened to traffic on Sunday after eight months of repairs.\n\nEngineers replaced the crumbling parapets and reinforced two of the arches."},
        {"url": "https://towncrier.example/b", "text": "   "},
    ]
    (root / "web" / "crier.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return {rel: outcome for rel, (_, outcome) in files.items()} | {"web/crier.jsonl#1": "document", "web/crier.jsonl#2": "reject"}


def write_paywalled_copies(raw: Path) -> str:
    """Two paywall-cut copies of the wire story under ``raw/a``; returns the complete story, which a later
    run adds (``raw/b/complete.txt``) to demote them."""
    body = [p for p in WIRE_STORY.split("\n\n") if len(p.split()) > 12 and "Copyright" not in p][:5]
    cut = "\n\n".join(body[:3]) + "\n\nYou have 40.00% of this article left to read. The rest is for subscribers only."
    (raw / "a").mkdir(parents=True)
    (raw / "a" / "paywalled.txt").write_text(cut, encoding="utf-8")
    (raw / "a" / "paywalled_again.txt").write_text(cut + "\n", encoding="utf-8")
    return "\n\n".join(body)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    write_corpus(root)
    return root


@pytest.fixture
def seeds() -> Path:
    if not SEEDS.is_dir():
        pytest.skip(f"the real seeds are not here ({SEEDS} is absent)")
    return SEEDS


@pytest.fixture(autouse=True)
def _isolated_prefect_home(tmp_path_factory, monkeypatch):
    # Never touch the user's Prefect database from a test.
    if "PREFECT_HOME" not in os.environ:
        monkeypatch.setenv("PREFECT_HOME", str(tmp_path_factory.getbasetemp() / "prefect-home"))
