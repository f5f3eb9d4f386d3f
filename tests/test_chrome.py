"""Cross-document chrome: lines repeated across a site's documents are removed as ``repeated_line``,
learned across runs; a story scraped several times and a shared quotation are never chrome."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from docclean import chrome
from docclean.config import ChromeConfig
from docclean.document import Document

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"

HEADER = ["HARBOUR TIMES", "News from the North Sea ports", "Sponsor: ShipTrack Pro: live vessel positions for forwarders and brokers."]
FOOTER = [
    "Sign up for our morning newsletter and never miss a sailing.",
    "Related: More from our Benelux desk",
    "© 2025 Harbour Times Media. All rights reserved.",
]

BODIES = {
    "strike": [
        "Dockworkers at Antwerp-Bruges walked off the job on Tuesday, halting container traffic at Europe's second-largest port.",
        "The unions said the walkout over the pension reform would last at least 48 hours and could spread to Ghent.",
        '"We are not against reform, we are against reform that is written without us," said shop steward Marc Goossens.',
        "Forty-one container ships were waiting at anchor in the North Sea by Tuesday evening.",
    ],
    "dredging": [
        "The Scheldt dredging contract worth 410 million euros was awarded on Monday to a Belgian-Dutch consortium.",
        "Work to deepen the channel to 16 metres will start in the spring and last until the end of 2028.",
        "Environmental groups said they would appeal, citing damage to the salt marshes of the Drowned Land of Saeftinghe.",
    ],
    "hydrogen": [
        "A pilot plant that turns imported ammonia back into hydrogen opened in Zeebrugge on Wednesday.",
        '"We are not against reform, we are against reform that is written without us," said shop steward Marc Goossens.',
        "The operators expect the plant to supply 20,000 tonnes a year to chemical companies in the port by 2030.",
    ],
    "ferry": [
        "The ferry line between Zeebrugge and Hull will add a third daily sailing from June, its operator said.",
        "Freight volumes on the route rose 12 percent last year as hauliers avoided congestion at Calais.",
    ],
}


def _page(doc_id: str, story: str, *, header=HEADER, footer=FOOTER, cut: int | None = None, url=None) -> Document:
    body = BODIES[story][:cut] if cut else BODIES[story]
    text = "\n\n".join([*header, *body, *footer])
    return Document(
        doc_id=doc_id, source_path=f"harbourtimes/{doc_id}.txt", source_sha256=doc_id, text=text,
        url=url or f"https://www.harbourtimes.example/{story}/{doc_id}",
    )


def _lines(docs: list[Document], config: ChromeConfig) -> pa.Table:
    return pa.concat_tables([chrome.line_keys(d, config) for d in docs])


def test_site_key_prefers_publisher_then_host_then_folder():
    doc = Document(doc_id="x", source_path="spacewar/2025/a.txt", source_sha256="x")
    assert chrome.site_key(doc) == "spacewar"
    assert chrome.site_key(doc.replace(url="https://www.SpaceWar.com/reports/a.html")) == "spacewar.com"
    assert chrome.site_key(doc.replace(url="https://www.spacewar.com/a", publisher="Agence France-Presse")) == "agence france-presse"
    assert chrome.site_key(Document(doc_id="y", source_path="a.txt", source_sha256="y")) == ""


def test_lines_repeated_across_different_stories_are_chrome_and_body_lines_stay():
    config = ChromeConfig()
    docs = [_page("d1", "strike"), _page("d2", "dredging"), _page("d3", "hydrogen")]
    chrome_set = chrome.plan(_lines(docs, config), None, config)
    cleaned, edits = chrome.strip_repeated_lines(_page("d4", "ferry"), chrome_set, config)
    assert [e.text for e in edits] == HEADER + FOOTER
    assert {e.rule for e in edits} == {"repeated_line"}
    assert cleaned.text == "\n\n".join(BODIES["ferry"])
    assert cleaned.removed == tuple(edits)
    # the quotation shared by two different articles is kept
    strike, _ = chrome.strip_repeated_lines(docs[0], chrome_set, config)
    assert strike.text == "\n\n".join(BODIES["strike"])


def test_a_story_scraped_several_times_does_not_make_its_body_chrome():
    config = ChromeConfig()
    copies = [_page("s1", "strike"), _page("s2", "strike"), _page("s3", "strike", cut=2), _page("s4", "strike")]
    chrome_set = chrome.plan(_lines(copies, config), None, config)
    cleaned, edits = chrome.strip_repeated_lines(copies[0], chrome_set, config)
    assert cleaned.text == copies[0].text and edits == []


def test_chrome_of_one_site_is_not_removed_from_another():
    config = ChromeConfig()
    docs = [_page("d1", "strike"), _page("d2", "dredging"), _page("d3", "hydrogen")]
    chrome_set = chrome.plan(_lines(docs, config), None, config)
    elsewhere = _page("o1", "ferry", url="https://portnews.example/ferry")
    assert chrome.strip_repeated_lines(elsewhere, chrome_set, config) == (elsewhere, [])


@pytest.mark.parametrize("spill", [False, True], ids=["in_memory", "spilled_to_parquet"])
def test_chrome_learned_in_one_run_is_removed_in_the_next(tmp_path, spill):
    config = ChromeConfig()
    state = tmp_path / "state"
    spill_dir = None
    if spill:  # a big run writes the rows to persist partition by partition instead of holding them
        spill_dir = tmp_path / "spill"
        spill_dir.mkdir()
    run1 = [_page("d1", "strike"), _page("d2", "dredging")]  # two documents: not enough alone
    plan1 = chrome.plan(_lines(run1, config), state, config, spill_dir=spill_dir)
    assert len(plan1) == 0
    assert bool(plan1.observation_files) == spill and (plan1.observations is None) == spill
    plan1.save_state(state)
    run2 = [_page("d3", "hydrogen")]
    plan2 = chrome.plan(_lines(run2, config), state, config, spill_dir=spill_dir)
    cleaned, edits = chrome.strip_repeated_lines(run2[0], plan2, config)
    assert [e.text for e in edits] == HEADER + FOOTER
    plan2.save_state(state)
    # run 3 sees only one new page, from the same site, with yesterday's chrome
    run3 = [_page("d5", "ferry")]
    plan3 = chrome.plan(_lines(run3, config), state, config, spill_dir=spill_dir)
    assert chrome.strip_repeated_lines(run3[0], plan3, config)[0].text == "\n\n".join(BODIES["ferry"])


def test_lines_differing_only_in_dates_count_as_one():
    config = ChromeConfig()
    docs = [
        _page(f"d{i}", story, header=[f"HARBOUR TIMES | Jun {i + 10}, 2025 | Antwerp"])
        for i, story in enumerate(["strike", "dredging", "hydrogen"])
    ]
    chrome_set = chrome.plan(_lines(docs, config), None, config)
    assert chrome_set.is_chrome("harbourtimes.example", "HARBOUR TIMES | Jun 2, 2026 | Antwerp")


def test_a_page_that_is_all_chrome_is_rejected_not_dropped():
    config = ChromeConfig()
    docs = [_page("d1", "strike"), _page("d2", "dredging"), _page("d3", "hydrogen")]
    chrome_set = chrome.plan(_lines(docs, config), None, config)
    empty = Document(doc_id="e", source_path="e", source_sha256="e", url="https://harbourtimes.example/e",
                     text="\n\n".join(HEADER + FOOTER))
    cleaned, edits = chrome.strip_repeated_lines(empty, chrome_set, config)
    assert cleaned.reject_reason == "empty_after_cleaning" and len(edits) == 6


def test_seeds_000_and_001_keep_every_line():
    if not SEEDS.exists():
        pytest.skip(f"{SEEDS} is absent")
    config = ChromeConfig(min_documents=2)  # the strictest setting two documents allow
    docs = [
        Document(doc_id=p.name[:3], source_path=f"seeds/{p.name}", source_sha256=p.name, text=p.read_text(encoding="utf-8"))
        for p in sorted(SEEDS.glob("00[01]_*.txt"))
    ]
    chrome_set = chrome.plan(_lines(docs, config), None, config)
    for doc in docs:
        assert chrome.strip_repeated_lines(doc, chrome_set, config) == (doc, [])


def test_compacted_state_keeps_what_was_learned(tmp_path):
    config = ChromeConfig()
    for run in (["d1", "strike"], ["d2", "dredging"], ["d3", "hydrogen"]):
        chrome.plan(_lines([_page(*run)], config), tmp_path, config).save_state(tmp_path)
    chrome.compact(tmp_path)
    assert len(list((tmp_path / "chrome").glob("*.parquet"))) == 2
    page = _page("d5", "ferry")
    chrome_set = chrome.plan(_lines([page], config), tmp_path, config)
    assert chrome.strip_repeated_lines(page, chrome_set, config)[0].text == "\n\n".join(BODIES["ferry"])


def test_a_quotation_repeated_in_three_articles_of_a_site_stays():
    config = ChromeConfig()
    quote = BODIES["strike"][2]
    docs = [_page("d1", "strike"), _page("d2", "hydrogen"), _page("d3", "dredging"), _page("d4", "ferry")]
    docs[2] = docs[2].replace(text=docs[2].text.replace(BODIES["dredging"][1], quote))
    chrome_set = chrome.plan(_lines(docs, config), None, config)
    assert not chrome_set.is_chrome("harbourtimes.example", quote)
    assert chrome_set.is_chrome("harbourtimes.example", HEADER[2])


def test_plan_reads_staged_parquet_lines(tmp_path):
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    config = ChromeConfig()
    for i, story in enumerate(["strike", "dredging", "hydrogen"]):  # one staging file per batch
        pq.write_table(chrome.line_keys(_page(f"d{i}", story), config), tmp_path / f"lines-{i}.parquet")
    chrome_set = chrome.plan(ds.dataset(tmp_path, format="parquet"), None, config)
    assert all(chrome_set.is_chrome("harbourtimes.example", line) for line in HEADER + FOOTER)
    assert len(chrome_set) == len(HEADER + FOOTER)


def test_quotation_check_matches_the_regex_it_replaced():
    import random
    import re

    old = re.compile(r"[\"“”«»„‘’]\s*\w+(?:[^\w\"“”«»„]+\w+){3,}[^\"“”«»„]*[\"“”«»„]")
    rnd = random.Random(3)
    pieces = ['"', "“", "”", "«", "»", "„", "‘", "’", " ", "word", "a", "Été", "12", "-", ",", "\t", "don’t"]
    lines = ["“We will rebuild the stand before the season,” she said.", "He didn’t say when the works would end",
             "« Nous ne céderons pas », a-t-il dit.", "Sponsor: “Best deals”"]
    lines += ["".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 25))) for _ in range(5000)]
    for line in lines:
        assert chrome.has_quotation(line) == bool(old.search(line)), line


def test_planning_in_many_site_partitions_decides_as_in_one(monkeypatch, tmp_path):
    """A big run is planned a slice of sites at a time (bounded memory): the decisions must not change."""
    config = ChromeConfig()
    docs = []
    for site in ("harbourtimes", "portnews", "scheldtpost", "northseadaily"):
        for i, story in enumerate(("strike", "dredging", "hydrogen", "ferry")):
            doc = _page(f"{site}-{i}", story, url=f"https://{site}.example/{story}")
            docs.append(doc)
    lines = _lines(docs, config)
    one = chrome.plan(lines, None, config)
    monkeypatch.setattr(chrome, "ROWS_PER_PARTITION", 7)  # dozens of partitions for this small run
    many = chrome.plan(lines, None, config, spill_dir=tmp_path)
    assert len(one) > 0 and one.pairs == many.pairs
    assert len(many.observation_files) > 1
    assert sum(pq.read_metadata(p).num_rows for p in many.observation_files) == one.observations.num_rows


# ---------------------------------------------------------------- the fast path computes what line_key defines

TRICKY_LINES = [
    "Breaking: Port of Antwerp-Bruges handled 12,345 TEU on 03/02/2025",
    "Café société: l'été à Saint-Émilion, 2e édition",
    "The ﬁnal ﬂight of the season — oﬃcial ﬁgures",  # ligatures: NFKC opens them
    "Ｔｏｋｙｏ ２０２５ full-width letters and digits １２３",
    "Price:\u00a0120\u00a0€ per tonne\u00a0",  # NBSP: NFKC makes it a space, edge one included
    "İSTANBUL'DA İKİ GÜN: Iğdır ve Işık",  # Turkish dotted and dotless I
    "STRAẞE und Straße: Maße, Größe, FUßBALL",  # German sharp s (casefold: ss)
    "  leading and trailing spaces  ",
    "tab\tseparated\tcolumns\t42",
    "file\x1cseparator\x1dgroup\x1erecord\x1funit",  # split() splits on these, bytes.split() does not
    "vertical\x0btab and form\x0cfeed and\rreturn",
    "invisible\u2063separator and zero\u200bwidth space",
    "ideographic\u3000space and em\u2003space and narrow\u202fno-break",
    "line\u2028separator and paragraph\u2029separator and next\x85line",
    "Arabic-Indic ٣٤٥ and Devanagari १२३ digits, superscript x² and ½ fractions",
    "runs of digits 0 00 007 1000000 9a9 a0b 2025-11-22 10:30",
    "double  spaces   inside    the line",
    "“We are not against reform,” said the steward — ‘not at all’… «vraiment»",
    "Ⅻ roman numeral and ℌ black-letter and ㎞ squared",
    "ΣΊΣΥΦΟΣ ΟΔΥΣΣΕΥΣ: final sigma and tonos",
    "Москва 2024: новости дня",
    "a\u0301 combining acute, e\u0308 diaeresis, \u0301 leading mark",
    "emoji 🚢 ship and flags 🇧🇪 and math 𝐀𝐁𝐂 bold",
    "",
    " ",
    "\t",
    "—",
    "123",
    "ASCII only, no digits",
    "x" * 600,
    "word " * 260,
    "naïve " * 130 + "end",
    # short lines where non-ASCII letters join ASCII runs into fewer words, or are words of their own
    "aéb c", "naïve café", "Straße 12 Maß", "x—y z w", "ö", "ﬁ ﬂ ß", "Мир a b", "a\u0301b c",
]


@pytest.mark.parametrize("line", TRICKY_LINES)
def test_fast_line_key_is_line_key(line):
    assert chrome._fast_line_key(line) == chrome.line_key(line)


def test_fast_line_key_is_line_key_on_generated_lines():
    from hypothesis import given, settings, strategies as st

    alphabet = st.sampled_from(list("aZ_0 9.-\"'\t\x1c\x0b\r\u00a0\u2063\u3000\u2028\x85éÉßẞİıﬁﬂ１２٣²½ΣσςМ\u0301🚢“”«»’"))

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet, max_size=40) | st.text(max_size=40))
    def check(line):
        line = line.replace("\n", " ")
        assert chrome._fast_line_key(line) == chrome.line_key(line)

    check()


def _reference_line_keys_and_hashes(doc: Document, config: ChromeConfig):
    """The plain per-line computation the fast one replaces (one findall, line_key and has_quotation
    per line): the hashes are persisted across runs, so the two must agree bit for bit."""
    from docclean.dedup import hash64

    rows, per_line = {}, []
    for line in doc.text.split("\n"):
        n_words = len(chrome._WORD.findall(line))
        countable = 0 < n_words <= config.max_line_words
        long = n_words >= config.story_min_words
        if not (long or countable):
            per_line.append(0)
            continue
        h = hash64(chrome.line_key(line))
        per_line.append(h if countable else 0)
        rows[h] = (countable, long, chrome.has_quotation(line))
    site = chrome.site_key(doc)
    n_long = sum(1 for v in rows.values() if v[1])
    table = [
        {"site": site, "site_hash": hash64(site), "line_hash": h, "doc_id": doc.doc_id, "countable": rows[h][0],
         "quoted": rows[h][2], "long": rows[h][1], "doc_long_lines": n_long}
        for h in sorted(rows)
    ]
    return table, per_line


def test_word_counting_shortcuts_match_the_plain_computation_on_generated_lines():
    from hypothesis import given, settings, strategies as st

    alphabet = st.sampled_from(list("ab_9 -,\"\t\u00a0\u2063éßﬁ٣²’—“”«»Мö\u0301🚢"))
    configs = [ChromeConfig(max_line_words=5, story_min_words=3), ChromeConfig(max_line_words=3, story_min_words=2)]

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.text(alphabet, max_size=24), max_size=4))
    def check(lines):
        doc = Document(doc_id="g", source_path="gen/g.txt", source_sha256="g", text="\n".join(lines))
        for config in configs:
            table, per_line = chrome.line_keys_and_hashes(doc, config)
            expected = _reference_line_keys_and_hashes(doc, config) if doc.text else ([], [])
            assert (table.to_pylist(), per_line) == expected

    check()


@pytest.mark.parametrize("config", [ChromeConfig(), ChromeConfig(max_line_words=5, story_min_words=3),
                                    ChromeConfig(max_line_words=4, story_min_words=9),
                                    ChromeConfig(story_min_words=0)])
def test_line_keys_and_hashes_match_the_plain_computation(config):
    docs = [_page(f"d{k}", story) for k, story in enumerate(BODIES)]
    docs.append(Document(doc_id="tricky", source_path="tricky/a.txt", source_sha256="t", text="\n".join(TRICKY_LINES)))
    for doc in docs:
        table, per_line = chrome.line_keys_and_hashes(doc, config)
        assert table.schema == chrome.LINES_SCHEMA
        assert (table.to_pylist(), per_line) == _reference_line_keys_and_hashes(doc, config)


def test_strip_collapses_blank_runs_as_the_regex_did():
    """Removing lines never leaves two blank lines in a row: the same text as collapsing ``\\n{3,}`` to
    ``\\n\\n`` on the joined kept lines, then stripping newlines at the ends."""
    import re

    from hypothesis import given, settings, strategies as st

    chrome_line, config = "Sponsored by ShipTrack", ChromeConfig()
    chrome_set = chrome.ChromeSet(pairs=frozenset({("harbour", chrome.hash64(chrome.line_key(chrome_line)))}))

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(["", "", " ", "\r", "Body line one.", chrome_line]), max_size=14))
    def check(lines):
        doc = Document(doc_id="x", source_path="harbour/x.txt", source_sha256="x", text="\n".join(lines))
        new, edits = chrome.strip_repeated_lines(doc, chrome_set, config)
        if chrome_line not in lines or not doc.text:
            assert edits == [] and new is doc
            return
        kept = [line for line in lines if line != chrome_line]
        assert new.text == re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")
        assert new.rejected == (not new.text.strip())

    check()
