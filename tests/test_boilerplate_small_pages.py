"""The shortcuts the boilerplate stage takes on short plain-text pages against the definitions they stand for:
the gated pattern scan (now used on every plain page, however short) against asking every line, the header
parser with the page's word counts against the regexes, line endings against _TERMINAL / _SENTENCE_END, the
hash table's one-probe-then-dict look-up against probing, and the per-line-count caches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from docclean import boilerplate as bp
from docclean.document import Document

# A short scraped news page as the plain-text rendering keeps it: masthead, menu, dateline, body, credits,
# share and newsletter prompts, footer; plus lines that start like an ungated rule ("AP", "Ad", "Share")
# without being one, and lines whose words are not separated by spaces (the word caps' upper bound).
NEWS_PAGE = [
    "EURONEWS.COM", "Home", "World", "Europe | Business |", "Menu", "Advertisement",
    "EU leaders agree on a new defence fund after a long night of talks",
    "Feb 13, 2025",
    "Brussels, Belgium, Feb 13 (AFP) Feb 13, 2025",
    "Apple said on Monday that it would appeal the ruling, which it called a blow to innovation in Europe.",
    "Additionally, the ministers agreed on a timetable for the first payments, officials said on Thursday.",
    "AP Photo/Virginia Mayo", "Photo: Getty Images", "Flowers at the gate / Reuters",
    "Share this article", "Share,on,Facebook,Twitter,LinkedIn,WhatsApp,Reddit,Pinterest,Telegram,Email,Print",
    "Photo:AFP,Getty,Reuters,EPA,Alamy,Shutterstock,iStock,Unsplash,Pexels,Flickr,Wiki",  # 12 words, no space
    "Sign up for our free daily newsletter", "Subscribe to continue reading.",
    "The fund, worth 150 billion euros, will lend to member states for joint purchases of air defence systems.",
    "Article continues below advertisement",
    "“We have no time to lose,” the Commission's president told reporters as the summit ended in the morning.",
    "Read more", "© 2025 Euronews. All rights reserved.", "We use cookies to improve your experience.",
    "Sponsored by Acme", "Ad", "- Advertisement -", "APRIL 2025", "12", "»",
]


def _page_lines(lines: list[str]) -> tuple[list[str], str, bp._Page]:
    text = "\n".join(lines)
    return lines, text, bp._Page(lines, text)


@pytest.mark.parametrize("odd", ["", "ſ"])  # a letter re.IGNORECASE equates with "s": every line is tried
def test_the_gated_scan_of_a_short_page_equals_asking_every_line(odd):
    lines, text, page = _page_lines(NEWS_PAGE + ([f"{odd}hare this article"] if odd else []))
    assert len(lines) < bp._FEW_LINES  # the short page takes the gated scan because it has a _Page
    expected = [bp._pattern_rule(line) for line in lines]
    assert bp._pattern_rules(lines, text, page) == expected
    assert bp._pattern_rules(lines, text) == expected  # no _Page: every line asked
    assert {"advertisement_marker", "image_credit", "share_prompt", "newsletter_prompt", "paywall_residue",
            "copyright_footer", "cookie_notice", "sponsor_line"} <= set(expected)


def test_header_with_the_page_counts_equals_the_regexes():
    doc = Document(doc_id="x", source_path="x", source_sha256="", text="\n".join(NEWS_PAGE))
    lines, _, page = _page_lines(NEWS_PAGE)
    for taken in (set(), {0, 5}):
        assert bp._parse_header(lines, doc, taken, page) == bp._parse_header(lines, doc, taken)
    rules, meta = bp._parse_header(lines, doc, set(), page)
    assert rules[8] == "dateline" and rules[7] == "date_line" and meta["publisher"] == "AFP"


_END_CHARS = list("ab .!?…:;\"'”’»)] ,")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=_END_CHARS, min_size=1, max_size=6).map(str.strip).filter(bool), min_size=1, max_size=8))
def test_line_endings_are_the_regexes(lines):
    terminal, sentence = bp._Page(lines).endings
    assert terminal.tolist() == [bool(bp._TERMINAL.search(line)) for line in lines]
    assert sentence.tolist() == [bool(bp._SENTENCE_END.search(line)) for line in lines]


def _probe_every_slot(table: bp._HashTable, values: np.ndarray) -> np.ndarray:
    """The look-up by linear probing until the value or an empty slot is met."""
    found = []
    mask = (1 << table.bits) - 1
    for value in values.tolist():
        slot = bp._mix(value) >> (64 - table.bits)
        while table.hashes[slot] and int(table.hashes[slot]) != value:
            slot = (slot + 1) & mask
        found.append(int(table.ids[slot]) if int(table.hashes[slot]) == value else 0)
    return np.array(found, dtype=np.intp)


def test_hash_table_look_up_equals_probing():
    rng = np.random.default_rng(7)
    words = {bp._hash_word(f"word{i}"): i for i in range(1, 3000)}  # a full enough table: many collisions
    table = bp._HashTable(words)
    known = np.array(list(words), dtype=np.uint64)
    values = np.concatenate([known, rng.integers(0, 2**63, 5000, dtype=np.uint64)])
    rng.shuffle(values)
    assert np.array_equal(table.get(values), _probe_every_slot(table, values))
    assert table.get(known[:0]).tolist() == []


@pytest.mark.parametrize("m", [0, 1, 2, 7, 40])
def test_cached_line_windows_are_the_clipped_ranges(m):
    idx = np.arange(m)
    for k in (1, 2, 3, 10, 15):
        lo, hi = bp._window(m, k)
        assert np.array_equal(lo, np.clip(idx - k, 0, m)) and np.array_equal(hi, np.clip(idx + k + 1, 0, m))
        assert np.array_equal(bp._window_size(m, k), np.maximum(hi - lo - 1, 1))
        assert not lo.flags.writeable  # shared between pages
    assert np.array_equal(bp._line_index(m), idx)


def test_tree_offsets_follow_the_line_count():
    stage = bp._model()["stage1"] if bp._model() else None
    if stage is None or stage.kind != "trees":
        pytest.skip("no shipped tree model")
    x = bp.line_features(NEWS_PAGE)
    first = stage.logit(x)
    stage.logit(x[:5])  # another line count in between
    assert np.array_equal(stage.logit(x), first)
    assert np.array_equal(stage.logit(x[:5]), first[:5])


_CRUMB_CHARS = list("|/»›>·•-–—: a1٣²x.")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=_CRUMB_CHARS, min_size=1, max_size=7).map(str.strip).filter(bool), min_size=1, max_size=6))
def test_crumb_candidates_hold_every_line_the_crumb_pattern_matches(lines):
    candidates = bp._Page(lines).could_be_crumb.tolist()
    assert all(candidate for line, candidate in zip(lines, candidates) if bp._NAV_CRUMB.match(line))


def test_a_paragraph_opening_with_a_year_or_a_dash_is_no_crumb_candidate():
    lines = ["2025 was the year the fund was agreed, officials said.", "— We have no time to lose, she said.",
             "2025", "| World", "World | Europe |", "—»—", "12345"]
    assert bp._Page(lines).could_be_crumb.tolist() == [False, False, True, True, True, True, False]
    assert [bp._NAV_CRUMB.match(line) is not None for line in lines] == [False, False, True, True, True, True, False]


def _random_trees(rng: np.random.Generator, depth: int, n_trees: int, n_features: int) -> dict:
    """Trained-node arrays of random trees up to ``depth`` (some stop early: a leaf above the last level)."""
    spec = {"kind": "trees", "bias": 0.5, "depth": depth, "roots": [], "feature": [], "threshold": [],
            "left": [], "right": [], "value": []}

    def grow(level: int) -> int:
        node = len(spec["feature"])
        for key in ("feature", "threshold", "left", "right", "value"):
            spec[key].append(-1 if key in ("feature", "left", "right") else 0.0)
        if level < depth and rng.random() < 0.8:
            spec["feature"][node] = int(rng.integers(n_features))
            spec["threshold"][node] = float(rng.random())
            spec["left"][node] = grow(level + 1)
            spec["right"][node] = grow(level + 1)
        else:
            spec["value"][node] = float(rng.normal())
        return node

    spec["roots"] = [grow(0) for _ in range(n_trees)]
    return spec


def _walk(spec: dict, x: np.ndarray) -> np.ndarray:
    total = np.full(len(x), float(spec["bias"]))
    for row in range(len(x)):
        for node in spec["roots"]:
            while spec["left"][node] >= 0:
                node = spec["left"][node] if x[row, spec["feature"][node]] <= spec["threshold"][node] else spec["right"][node]
            total[row] += spec["value"][node]
    return total


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_packed_trees_of_any_depth_score_like_their_nodes(depth):
    rng = np.random.default_rng(depth)
    spec = _random_trees(rng, depth, n_trees=12, n_features=4)
    x = rng.random((40, 4))
    x[:3] = spec["threshold"][0] if spec["feature"][0] >= 0 else 0.5  # lines on a threshold
    np.testing.assert_allclose(bp._Stage(spec).logit(x), _walk(spec, x), rtol=0, atol=1e-12)
