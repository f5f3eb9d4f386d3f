"""The fast paths of the boilerplate and extract stages against the plain definitions they replaced: same
features, pattern rules and tree-ensemble scores bit for bit, same nesting depth and text blocks."""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest

from docclean import boilerplate as bp
from docclean import extract as ex

LINES = [
    "Home", "Menu", "World | Europe | Politics", "SpaceWar.com - Your World At War", "Jun 20, 2025 |",
    "Published: 2024-11-23T10:00:00Z", "ADVERTISEMENT", "Sponsor: QWIKET: Elevate your fantasy game!",
    "Share on Facebook", "Photo: Getty Images", "Sign up for our free daily newsletter",
    "We use cookies to improve your experience. By continuing to browse this site you agree.",
    "© 2025 AFP. All rights reserved.", "You have 50.51% of this article left to read. The rest is for subscribers only.",
    "NATO faces a moment of reckoning, France said on Thursday, as allies met in Brussels to discuss the war.",
    "“We are at a turning point,” the minister told reporters — adding that Europe must act.",
    "İstanbul’da ΟΔΟΣ ΣΑΣ: une réunion à Genève, 12 000 €, 𝐀𝐁𝐂 2024-01-02 (AFP)", "x", "42", "a,b,c,d,e",
    "and then the", "continued here.", "Read more »", "— — — — — — — — — — — — one two", "\udcff stray byte",
]


def _reference_local_features(line: str, stop, pattern_hit: bool, lexicon: bp.Lexicon) -> list[float]:
    """The per-line definition of the first 19 local features plus the lexicon statistics."""
    low = line.lower()
    lower = bp._WORD.findall(low)
    found = [lexicon.words[w] for w in lower if w in lexicon.words]
    known = 1.0 if " ".join(lower) in lexicon.lines else 0.0
    lex = (0.0, 0.0, 0.0, 0.0, known) if not found else (
        sum(found) / len(found), min(found), max(found), len(found) / len(lower), known)
    n = len(lower)
    alpha = bp._ALPHA_WORD.findall(line)
    letters = sum(map(len, alpha)) or 1
    return [
        float(n), math.log1p(n), math.log1p(len(line)), 1.0 if bp._SENTENCE_END.search(line) else 0.0,
        1.0 if line.endswith(":") else 0.0, sum(map(stop.__contains__, lower)) / (n or 1),
        sum(1 for w in alpha if w[0].isupper()) / (len(alpha) or 1), sum(map(str.isdigit, line)) / len(line),
        sum(map(str.isupper, line)) / letters, 1.0 if line[0].islower() else 0.0,
        1.0 if line[0] in ",.;:!?)]}’”'\"-–—" else 0.0, sum(map(bp._CHROME_WORDS.__contains__, lower)) / (n or 1),
        1.0 if any(c in line for c in "|»›•·") else 0.0, 1.0 if "." in line and bp._DOMAIN.search(line) else 0.0,
        1.0 if n <= 8 and bp.parse_date(line) else 0.0, (sum(map(len, lower)) / n) if n else 0.0,
        line.count(",") / (n or 1), 1.0 if pattern_hit else 0.0, 1.0 if low.strip(" .:|»›") in bp._NAV_WORDS else 0.0,
        *lex,
    ]


def test_local_columns_equal_the_per_line_definition():
    lexicon = bp.Lexicon({"the": 1.5, "share": -2.0, "menu": -3.25, "brussels": 0.75, "reunion": 0.1}, {"read more"})
    stop = bp._stopwords()
    hits = [i % 3 == 0 for i in range(len(LINES))]
    cols = bp._local_columns(LINES, stop, hits, lexicon)
    fast = np.column_stack([cols[k] for k in list(cols)[:-1]] + [cols["lex"]])
    slow = np.array([_reference_local_features(line, stop, hit, lexicon) for line, hit in zip(LINES, hits)])
    for j in range(slow.shape[1]):
        assert np.array_equal(fast[:, j], slow[:, j]), j
    assert np.array_equal(cols["n_words"], slow[:, 0])


@pytest.mark.parametrize("few", [0, 1_000_000])  # the whole-page path and the per-line one
def test_pattern_rules_equal_asking_every_line(monkeypatch, few):
    monkeypatch.setattr(bp, "_FEW_LINES", few)
    text = "\n".join(LINES)
    assert bp._pattern_rules(LINES, text) == [bp._pattern_rule(line) for line in LINES]
    assert bp._word_counts(text) == [len(bp._WORD.findall(line)) for line in LINES]


def _walk_trained_nodes(spec: dict, x: np.ndarray) -> np.ndarray:
    """The ensemble evaluated node by node, as trained."""
    total = np.full(len(x), float(spec["bias"]))
    for row in range(len(x)):
        for root in spec["roots"]:
            node, steps = root, 0
            while spec["left"][node] >= 0 and steps < spec["depth"]:
                go_left = x[row, spec["feature"][node]] <= spec["threshold"][node]
                node = spec["left"][node] if go_left else spec["right"][node]
                steps += 1
            total[row] += spec["value"][node]
    return total


def test_packed_trees_score_like_the_trained_nodes():
    # two trees of depth 3: one full on the left side, one a bare leaf
    spec = {
        "kind": "trees", "bias": 0.25, "depth": 3, "roots": [0, 7],
        "feature": [0, 1, -1, 2, -1, -1, -1, -1], "threshold": [0.5, 0.2, 0, 0.7, 0, 0, 0, 0],
        "left": [1, 2, -1, 4, -1, -1, -1, -1], "right": [6, 3, -1, 5, -1, -1, -1, -1],
        "value": [0, 0, 1.0, 0, 2.0, 3.0, 4.0, -0.5],
    }
    rng = np.random.default_rng(3)
    x = rng.random((200, 3))
    x[:5] = [[0.5, 0.2, 0.7]] * 5  # on the thresholds
    stage = bp._Stage(spec)
    fast = stage.logit(x)
    slow = _walk_trained_nodes(spec, x)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    assert np.array_equal(fast > 1.0, slow > 1.0)


@pytest.mark.skipif(bp._model() is None, reason="no trained boilerplate model ships")
def test_shipped_model_scores_like_the_trained_nodes():
    import json

    raw = json.loads(bp.MODEL_PATH.read_text(encoding="utf-8"))
    x = bp.line_features(LINES)
    np.testing.assert_allclose(bp._model()["stage1"].logit(x), _walk_trained_nodes(raw["stage1"], x), rtol=0, atol=1e-9)


# --- extract ---------------------------------------------------------------------------------------

_LAZY_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^<>]*?(/?)>")


def _reference_depth(html: str, limit: int) -> int:
    depth = deepest = 0
    for m in _LAZY_TAG.finditer(html):
        closing, name, self_closing = m.groups()
        if closing:
            depth = max(0, depth - 1)
        elif not self_closing and name.lower() not in ex._VOID:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest >= limit:
                    break
    return deepest


def test_nesting_depth_equals_the_lazy_tag_scan():
    rng = random.Random(5)
    pieces = ["<div>", "</div>", "<br>", "<br/>", "<img src=a/>", "<p class='x'>", "</p>", "<", ">", "/", "a", " ",
              "<A HREF=x/>", "</x>", "<a-b>", "<div/ >", "<span data-x=\"1/\">"]
    cases = ["", "<div>" * 40, "</a>" * 3 + "<b><i/>" * 9 + "</b>" * 12]
    cases += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 50))) for _ in range(2000)]
    for html in cases:
        for limit in (3, 10, ex.MAX_DEPTH):
            assert ex.nesting_depth(html, limit) == _reference_depth(html, limit), html


def test_text_blocks_equal_line_by_line_cleaning():
    text = "\n  • first item\n\n\t\n2) second\u00a0 item  \n-   \n• \nplain   line\r\nlast\u2028sep\n   \n"
    expected = [" ".join(ex.BULLET.sub("", line).split()) for line in text.splitlines()]
    assert ex.text_blocks(text) == [line for line in expected if line]
