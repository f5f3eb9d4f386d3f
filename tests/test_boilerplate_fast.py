"""The whole-page (numpy) paths of the boilerplate stage against the per-line definitions they replace:
line splitting, navigation lines, line endings, pattern rules, class names and fragment joining; and the
page-level decision (largest-sum span, body/chrome segments, the page's own threshold) against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from docclean import boilerplate as bp

LINES = [
    "Home", "Menu", "| World", "World | Europe |", "12", "2024", "12345", "»", "— —", "Next »", "Read more »",
    "Share on Facebook", "ſhare", "Photo: Getty Images", "Tributes were paid (AFP)", "Flowers at the gate / Reuters",
    "ADVERTISEMENT", "- Advertisement -", "Sign up for our free daily newsletter", "My blog design log",
    "NATO faces a moment of reckoning, France said on Thursday, as allies met in Brussels to discuss the war.",
    "and then the", "continued here.", ", a fragment", "(see below)", "the end of it:", "Why now?”", "ok;",
    "İstanbul’da ΟΔΟΣ ΣΑΣ: une réunion à Genève, 12 000 €, 𝐀𝐁𝐂 2024-01-02 (AFP)", "𝐀 astral start", "x",
    "Our", "partners", "are", "with", "you", "“Quoted", "‘quoted”", "a long line " * 20, "\udcff stray byte",
]


def _reference_navigation(line: str) -> bool:
    return line.lower().strip(" .:") in bp._NAV_WORDS or bp._NAV_CRUMB.match(line) is not None


def _reference_continues(previous: str, line: str) -> bool:
    """Whether ``line`` is the next piece of the same sentence (a scraper puts each link on its own line)."""
    if line.startswith(bp._CLOSING):
        return True
    if bp._TERMINAL.search(previous):
        return False
    if line[0].islower():
        return True
    last = previous.rsplit(None, 1)[-1].lower()
    return last in bp._GLUE_WORDS or previous.endswith((",", "(", "“", "‘", "—", "–"))


def _reference_name(i: int, line: str, first_body: int, last_body: int, n: int) -> str:
    if n <= 2 or bp._NAV_CRUMB.match(line):
        return "navigation"
    if i < first_body:
        return "page_header"
    if i > last_body:
        return "related_headlines" if bp._title_like(line, n) else "page_footer"
    return "inline_chrome"


def _reference_join(lines: list[str], kept: list[int], after_blank: set[int]) -> str:
    paragraphs: list[str] = []
    previous = -2
    for i in kept:
        line = lines[i]
        if paragraphs and i == previous + 1 and i not in after_blank and _reference_continues(lines[previous], line):
            paragraphs[-1] += ("" if line.startswith(bp._CLOSING) else " ") + line
        else:
            paragraphs.append(line)
        previous = i
    return "\n\n".join(paragraphs)


def test_navigation_lines_are_the_per_line_definition():
    page = bp._Page(LINES)
    expected = [i for i, line in enumerate(LINES) if _reference_navigation(line)]
    assert bp._navigation_lines(page).tolist() == expected


def test_line_endings_and_prose_are_the_regexes():
    page = bp._Page(LINES)
    terminal, sentence = page.endings
    assert terminal.tolist() == [bool(bp._TERMINAL.search(line)) for line in LINES]
    assert sentence.tolist() == [bool(bp._SENTENCE_END.search(line)) for line in LINES]
    assert page.prose.tolist() == [bp._is_prose(line) for line in LINES]
    assert page.words.tolist() == [len(bp._WORD.findall(line)) for line in LINES]


@pytest.mark.parametrize("odd", ["", "ſ"])  # a letter re.IGNORECASE equates with "s": every line is tried
def test_whole_page_pattern_rules_equal_asking_every_line(monkeypatch, odd):
    monkeypatch.setattr(bp, "_FEW_LINES", 0)
    lines = LINES + ([f"{odd}hare this article"] if odd else [])
    assert bp._pattern_rules(lines, "\n".join(lines)) == [bp._pattern_rule(line) for line in lines]


def test_class_names_are_the_per_line_definition():
    page = bp._Page(LINES)
    dropped = np.zeros(len(LINES), bool)
    dropped[::2] = True
    first_body, last_body = 5, 30
    expected = [_reference_name(i, LINES[i], first_body, last_body, len(bp._WORD.findall(LINES[i])))
                for i in np.flatnonzero(dropped)]
    assert bp._names_classified(page, dropped, first_body, last_body) == expected


@pytest.mark.parametrize("step", [1, 2, 3])
def test_joined_fragments_equal_the_line_by_line_join(step):
    page = bp._Page(LINES)
    kept = [i for i in range(len(LINES)) if i % step == 0 or i % 5 == 1]
    after_blank = {3, 22, 31}
    assert bp._join_fragments(page, np.array(kept), after_blank) == _reference_join(LINES, kept, after_blank)
    assert bp._join_fragments(page, np.array([], dtype=int), set()) == ""


def test_split_lines_strips_drops_blanks_and_marks_paragraph_breaks():
    lines, after_blank = bp._split_lines("  Title \n\nFirst line\nsecond line\n \n\nThird\n")
    assert lines == ["Title", "First line", "second line", "Third"]
    assert after_blank == {1, 3}
    assert bp._split_lines("one\ntwo") == (["one", "two"], set())


def test_scoring_only_some_rows_gives_their_full_scores():
    lines = LINES * 3
    every = bp.body_scores(lines)
    rows = np.arange(0, len(lines), 4)
    some = bp.body_scores(lines, rows=rows)
    np.testing.assert_array_equal(some[rows], every[rows])


def _reference_runs(prose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = len(prose)
    run_len, between, distance = np.zeros(m), np.zeros(m), np.zeros(m)
    i = 0
    while i < m:
        if prose[i]:
            i += 1
            continue
        j = i
        while j < m and not prose[j]:
            j += 1
        run_len[i:j] = j - i
        between[i:j] = 1.0 if i > 0 and j < m else 0.0
        k = np.arange(i, j)
        before = k - (i - 1) if i > 0 else np.full(j - i, m)
        after = j - k if j < m else np.full(j - i, m)
        distance[i:j] = np.minimum(before, after)
        i = j
    return np.log1p(run_len), between, np.log1p(distance)


@pytest.mark.parametrize("m", [0, 1, 2, 7, 120])
@pytest.mark.parametrize("share", [0.0, 0.2, 0.7, 1.0])
def test_run_features_equal_the_run_by_run_loop(m, share):
    prose = np.random.default_rng(m).random(m) < share
    for fast, slow in zip(bp._run_features(prose), _reference_runs(prose)):
        assert np.array_equal(fast, slow)


@pytest.mark.parametrize("words", [{}, {"the": 1.0, "share": -2.0, "genève": 0.5, "𝐚𝐛𝐜": 0.1, "i̇stanbul’da": 0.3}])
def test_hashed_token_ids_equal_dictionary_look_ups(words):
    lexicon = bp.Lexicon(words, {"read more", "home"})
    page = bp._Page(LINES)
    vocab = lexicon.tables(bp._stopwords())[0]
    expected = [vocab.get(token, 0) for token in bp._WORD.findall(page.low_text)]
    assert lexicon.token_ids(page).tolist() == expected
    assert lexicon.token_ids(bp._Page(["!!", "—"])).tolist() == []


def test_known_chrome_lines_are_found_by_their_words():
    known = {"read more", "e commerce", "home", "world europe"}
    lines = ["Read more »", "Ecommerce", "e-commerce", "E Commerce", "Home", "World | Europe |", "World", "x" * 3]
    lexicon = bp.Lexicon({"home": -2.0}, known)
    page = bp._Page(lines)
    expected = [" ".join(bp._WORD.findall(line.lower())) in known for line in lines]
    assert lexicon.known_lines(page, page.words).tolist() == expected
    assert bp.Lexicon({}, set()).known_lines(page, page.words).tolist() == [False] * len(lines)


def test_a_page_longer_than_the_cached_hash_tables_scores_the_same(monkeypatch):
    lines = ["Share this article", "The minister said on Thursday that the talks would resume in Geneva next week."] * 40
    expected = bp.line_features(lines)
    monkeypatch.setattr(bp, "_CACHED_POWERS", 64)  # every page is now "huge"
    assert np.array_equal(bp.line_features(lines), expected)


def _reference_best_span(values: list[float]) -> float:
    """The largest sum of a contiguous run, every run tried (0 when none is positive)."""
    return max([0.0] + [sum(values[i : j + 1]) for i in range(len(values)) for j in range(i, len(values))])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-50, 50).map(float), max_size=25))  # whole numbers: prefix sums stay exact
def test_best_span_is_the_largest_sum_run(values):
    first, last = bp._best_span(np.array(values, dtype=float))
    best = _reference_best_span(values)
    if last < 0:
        assert best <= 0 and first == len(values)
    else:
        assert sum(values[first : last + 1]) == pytest.approx(best) and best > 0


def _reference_span_columns(x: np.ndarray, p: np.ndarray) -> list[np.ndarray]:
    """The span columns level by level, as first written (one largest-sum search per level)."""
    m = len(p)
    words = np.expm1(x[:, bp.FEATURE_NAMES.index("log_words")])
    idx = np.arange(m)
    total = words.sum() or 1.0
    cols = []
    for level in bp._SPAN_LEVELS:
        values = words * (p - level)
        cum = np.concatenate([[0.0], np.cumsum(values)])
        gain = cum[1:] - np.minimum.accumulate(cum[:-1])
        last = int(np.argmax(gain))
        if gain[last] <= 0:
            cols += [np.zeros(m), np.full(m, math.log1p(m)), np.zeros(m)]
            continue
        first = int(np.argmin(cum[: last + 1]))
        distance = np.where(idx < first, first - idx, np.where(idx > last, idx - last, 0))
        cols += [((idx >= first) & (idx <= last)).astype(float), np.log1p(distance) * np.where(idx < first, -1.0, 1.0),
                 np.full(m, words[first : last + 1].sum() / total)]
    return cols


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.floats(0, 1)), min_size=1, max_size=30))
def test_span_columns_of_all_levels_at_once_are_the_per_level_ones_bit_for_bit(lines):
    x = np.zeros((len(lines), len(bp.FEATURE_NAMES)))
    x[:, bp.FEATURE_NAMES.index("log_words")] = np.log1p([n for n, _ in lines])
    p = np.array([score for _, score in lines])
    fast, reference = bp._span_columns(x, p), _reference_span_columns(x, p)
    assert len(fast) == len(reference)
    for got, expected in zip(fast, reference):
        assert got.tobytes() == expected.tobytes()


def _reference_segments(values: list[float], cost: float) -> float:
    """The best total of any body/chrome labelling (starting and ending as chrome), every labelling tried."""
    best = -float("inf")
    for mask in itertools.product([False, True], repeat=len(values)):
        states = [False, *mask, False]
        changes = sum(a != b for a, b in zip(states, states[1:]))
        best = max(best, sum(v for v, body in zip(values, mask) if body) - cost * changes)
    return best


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-80, 80).map(lambda v: v / 4), max_size=9), st.sampled_from([0.5, 2.0, 10.0]))
def test_segments_are_the_best_labelling(values, cost):
    body = bp._segments(np.array(values, dtype=float), cost)
    states = [False, *body.tolist(), False]
    total = sum(v for v, b in zip(values, body) if b) - cost * sum(a != b for a, b in zip(states, states[1:]))
    assert total == pytest.approx(_reference_segments(values, cost))


def test_page_decision_sets_the_bar_by_how_sure_the_page_is():
    spec = {"precision_weight": 0.6, "lowest": 0.1, "highest": 0.9, "switch_cost": 0.0}
    words = np.full(20, 10)
    open_rows = np.ones(20, bool)
    sure_page = np.array([0.95] * 4 + [0.45] * 4 + [0.02] * 12)  # a doubtful line would lower a high precision
    unsure_page = np.array([0.55] * 4 + [0.45] * 4 + [0.02] * 12)  # it is as good as the rest, and recall counts
    assert (bp._page_decision(sure_page, words, open_rows, spec)[4:8] < 0.5).all()
    assert (bp._page_decision(unsure_page, words, open_rows, spec)[:8] >= 0.5).all()
    assert (bp._page_decision(unsure_page, words, open_rows, spec)[8:] < 0.5).all()
    closed = open_rows.copy()
    closed[:2] = False  # lines a rule removed keep their score
    assert (bp._page_decision(sure_page * closed, words, closed, spec)[:2] == 0).all()


def _classified_with_scores(lines: list[str], scores: list[float], monkeypatch) -> dict[int, str]:
    """_classify's rules for ``lines`` when the model's (page-decided) scores are ``scores``."""
    monkeypatch.setattr(bp, "body_scores", lambda *args, **kwargs: np.array(scores, dtype=float))
    monkeypatch.setattr(bp, "_model", lambda: None)
    rules: dict[int, str] = {}
    bp._classify(bp._Page(lines), rules, [False] * len(lines), bp.BoilerplateConfig())
    return rules


_PROSE = "The council voted on Tuesday to extend the scheme for another two years, its chair told reporters here."


def test_a_related_block_after_the_body_goes_whatever_its_scores(monkeypatch):
    lines = [_PROSE] * 4 + ["More from the newsroom", "Storm closes the ring road", "Mayor backs new tram line"]
    rules = _classified_with_scores(lines, [0.9] * 4 + [0.7] * 3, monkeypatch)
    assert sorted(rules) == [4, 5, 6] and set(rules.values()) == {"related_headlines"}


def test_a_listing_that_says_more_than_its_intro_keeps_its_sure_entries(monkeypatch):
    entries = [f"{n} Easy Weeknight Dinners the Whole Family Will Love" for n in range(10, 22)]
    lines = [_PROSE, *entries, "Load more recipes"]
    scores = [0.9] + [0.8] * 11 + [0.55, 0.3]  # one doubtful entry, one control
    rules = _classified_with_scores(lines, scores, monkeypatch)
    assert sorted(rules) == [12, 13]


def test_structure_features_find_the_markers_that_open_each_post():
    lines = ["Jul 9, 2007", "bphgravity", "Senior Member", "Design and consultation is by far the first.", "Reply",
             "Jul 9, 2007", "mdshunk", "Senior Member", "Took the words right out of my mouth.", "Reply",
             "Jul 9, 2007", "e57", "Senior Member", "Troubleshooting, but that is my own opinion?", "Reply"]
    x = bp.line_features(lines, bp.Lexicon(), [False] * len(lines))
    column = {name: x[:, i] for i, name in enumerate(bp.FEATURE_NAMES)}
    assert column["is_marker"].tolist() == [1, 0, 1, 0, 1] * 3  # dates and lines repeated three times
    assert column["page_date_lines"][0] == pytest.approx(math.log1p(3))
    assert column["since_marker"][3] == pytest.approx(math.log1p(1))
    assert column["to_marker"][3] == pytest.approx(math.log1p(1))
    assert column["ends_question"].tolist()[13] == 1 and column["ends_question"].sum() == 1
    assert column["page_marker_share"].tolist() == pytest.approx([9 / 15] * 15)


@pytest.mark.skipif(bp._model() is None, reason="no trained boilerplate model ships")
def test_a_third_pass_smooths_the_second_ones_scores(monkeypatch):
    """train_boilerplate --passes 3 ships a third stage over the second one's scores of the neighbours."""
    shipped = bp._model()
    lines = ["Home", "World", _PROSE, "Read the full report", _PROSE, "Share on Facebook", "Most read", "About us"]
    two = bp.body_scores(lines)
    monkeypatch.setattr(bp, "_model", lambda: dict(shipped, stage3=shipped["stage2"]))
    three = bp.body_scores(lines)
    x = bp.line_features(lines, shipped["lexicon"], None)
    open_rows = ~bp._decided(bp._Page(lines), x)
    p1 = np.where(open_rows, bp._sigmoid(shipped["stage1"].logit(x)), 0.0)
    p2 = np.where(open_rows, bp._sigmoid(shipped["stage2"].logit(bp.context_features(x, p1))), 0.0)
    expected = bp._sigmoid(shipped["stage2"].logit(bp.context_features(x, p2)))
    assert three.tolist() == pytest.approx(expected.tolist()) and three.tolist() != two.tolist()
