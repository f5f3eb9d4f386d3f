"""The repair stage's fast path (chunk scan, tokens built only where needed) sees a text exactly as
``tokenize`` does: same tokens, same context, same language verdicts, same repairs."""

from __future__ import annotations

from collections import Counter
from itertools import chain
from operator import mul

import pytest

from docclean.repair import (
    ENGLISH_SHARE,
    FUNCTION_WORDS,
    _FOREIGN_FUNCTION_WORDS,
    RepairModel,
    _token_at,
    _token_starts,
    tokenize,
)

# Apostrophes of both kinds, quotes, a URL, code, numbers, inner capitals, a non-ASCII space and word,
# a French line, and spinner damage next to all of them.
TRICKY = (
    "The club intconcludes to rebuild. \u201cIt doesn\u2019t build sense,\u201d said O'Neill's aide; "
    "the  necessary for seats (attconcludeance) rose.\n"
    "See https://example.org/a_b?x=1 or run `plan(rows=3)`; iPhone McDonald hugegest x''y a''b 'tis rock'n'roll.\n"
    "Le club est dans une autonomie strat\u00e9gique pour la saison et les supporters.\n"
    "well-intconcludesed\u00a0spconcludeing \u2019quoted\u2019 end.Of line\tTab ininformigent\n"
    "INTCONCLUDES Intconcludes: the Necessary to the necessary to a necessary for an necessary to"
)


@pytest.fixture(scope="module")
def model() -> RepairModel:
    return RepairModel.load()


def _english_as_tokenize_sees_it(model: RepairModel, tokens) -> bool:
    words = [t.lower for t in tokens if not t.skip]
    if len(words) < 3:
        return True
    known = sum(1 for w in words if model.zipf(w) >= 3.0)
    foreign = sum(1 for w in words if w in _FOREIGN_FUNCTION_WORDS)
    english = sum(1 for w in words if w in FUNCTION_WORDS)
    return known >= ENGLISH_SHARE * len(words) and foreign <= english


def test_token_at_rebuilds_every_token_with_its_context():
    for tok in tokenize(TRICKY):
        assert _token_at(TRICKY, tok.start, tok.text, tok.skip) == tok


def test_token_starts_finds_exactly_the_whole_tokens():
    tokens = tokenize(TRICKY)
    for form in {t.text for t in tokens} | {"y", "b", "s", "Neill", "n", "roll"}:
        assert list(_token_starts(TRICKY, form)) == [t.start for t in tokens if t.text == form]


def test_scan_agrees_with_tokenize_on_language_and_suspects(model):
    for text in (TRICKY, *TRICKY.split("\n"), "", "a b", "Le club est dans une autonomie pour la saison"):
        tokens = tokenize(text)
        scan = model._scan(text)
        assert scan.english == _english_as_tokenize_sees_it(model, tokens)
        suspects = [t for t in tokens if not t.skip and len(t.text) >= 5 and t.text.isalpha()
                    and not t.text.isupper() and model.zipf(t.lower) < 1.0]
        assert model._suspect_tokens(text, scan) == suspects


def test_learning_first_gives_the_same_repairs_as_repairing_alone():
    text = TRICKY * 2
    alone = RepairModel.load().repair_text(text, "flag", 0.0)
    learned = RepairModel.load()
    learned.learn([])  # estimates refreshed, nothing seen: the same state as a fresh model's evidence
    first = learned.repair_text(text, "flag", 0.0)
    assert first == alone
    again = RepairModel.load()
    again.learn([text])
    assert again._scans  # kept for the repair that follows
    assert again.repair_text(text, "flag", 0.0) == again.repair_text(text, "flag", 0.0)
    assert not again._scans


def test_excluding_pairs_changes_the_readings(model):
    held_out = RepairModel.load()
    assert any(c.repaired == "intends" for c in held_out._readings("intconcludes"))
    held_out.excluded_pairs = frozenset({("end", "conclude")})
    assert not any(c.repaired == "intends" for c in held_out._readings("intconcludes"))
    assert any(c.repaired == "intends" for c in model._readings("intconcludes"))  # shared caches untouched


from hypothesis import given, settings, strategies as st  # noqa: E402

_PIECES = st.sampled_from(["a", "b", "Q", "the", "for", "xqzvw", "Xqzvw", "intconcludes", "'", "\u2019", " ", " ",
                           "\n", ".", "\u201c", "(", "-", "7", "/", "\u00e9", "\u00a0", "\t", "iP", "la", "de",
                           "\u212a", "\u0130", "\x1c", ",", "theme"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_fast_path_matches_tokenize_on_any_text(text):
    model = RepairModel.load()
    tokens = tokenize(text)
    for tok in tokens:
        assert _token_at(text, tok.start, tok.text, tok.skip) == tok
    for form in {t.text for t in tokens}:
        assert list(_token_starts(text, form)) == [t.start for t in tokens if t.text == form]
    scan = model._scan(text)
    assert scan.english == _english_as_tokenize_sees_it(model, tokens)
    suspects = [t for t in tokens if not t.skip and len(t.text) >= 5 and t.text.isalpha()
                and not t.text.isupper() and model.zipf(t.lower) < 1.0]
    assert model._suspect_tokens(text, scan) == suspects
    for chunk in text.split():
        assert model._chunk_info(chunk) == model._mixed_chunk_info(chunk)
    from docclean.repair import _TextWords

    plain = _plain_text_words(scan)
    words = _TextWords(text, scan, {"the"})
    for word in list(plain) + ["xqz", "intc"]:
        assert words.count(word) == plain.get(word, 0)
        assert words.forms(word) == min(3, len({w for w in plain if w.startswith(word)} - {"the"}))


# ---- chunk analysis, corpus word counts and text word look-ups: fast paths against the plain definitions ----

_CHUNKS = ["word", "Word", "WORD", "iPhone", "McDonald", "(word),", "'hugegest'", "--spconcludeing--", "(Intconcludes).",
           "x''y", "e.g.", "U.S.", "\"iPhone\"", "(a)", "'tis", "rock'n'roll", "Ab", "...", "-", "(WORDS)", "players'",
           "\u201cword\u201d", "strat\u00e9gique", "27.29", "$79.95", "https://a.b/c", "a_b", "well-known", "don't", "puting"]


def _plain_text_words(scan) -> Counter:
    from docclean.repair import _WORDS

    return Counter(chain.from_iterable(map(mul, map(_WORDS, scan.infos), scan.sightings)))


def test_chunks_of_one_word_are_analysed_as_the_tokenizer_would(model):
    for chunk in _CHUNKS + TRICKY.split():
        assert model._chunk_info(chunk) == model._mixed_chunk_info(chunk), chunk
    fresh = RepairModel.load()
    fresh._chunks.clear()
    chunks = Counter(_CHUNKS + TRICKY.split())
    assert fresh._chunk_infos(chunks) == tuple(model._mixed_chunk_info(c) for c in chunks)


def test_corpus_words_are_the_common_words_of_every_english_text_learned():
    from docclean.repair import _COMMON

    texts = [TRICKY, "The club intends to rebuild the club house. The club!", "Le club est dans une autonomie pour la"]
    model = RepairModel.load()
    model.learn(texts)
    model._refresh()
    expected = Counter()
    for text in texts:
        scan = model._scan(text)
        if scan.english:
            expected.update(chain.from_iterable(map(mul, map(_COMMON, scan.infos), scan.sightings)))
    assert model._corpus_words == expected and expected["club"] == 5


@pytest.mark.parametrize("text", [TRICKY, TRICKY.replace("club", "\u212ablub"), "\u0130stanbul the the-the the", ""])
def test_text_words_found_by_search_are_the_chunks_words(model, text):
    from docclean.repair import _TextWords

    scan = model._scan(text)
    plain = _plain_text_words(scan)
    suspects = {"intconcludes", "the"}
    words = _TextWords(text, scan, suspects)
    for word in sorted(plain) + ["club", "clu", "nec", "ne", "zzz", "th"]:
        assert words.count(word) == plain.get(word, 0), word
        assert words.forms(word) == min(3, len({w for w in plain if w.startswith(word)} - suspects)), word


def test_chunks_analysed_in_a_batch_or_brought_back_from_the_retired_table_are_analysed_as_alone(monkeypatch):
    import docclean.repair as repair_module

    model = RepairModel.load()
    model._chunks.clear()
    monkeypatch.setattr(repair_module, "MAX_KEPT_CHUNKS", 8)  # the table fills after a few chunks and retires
    groups = [["(word),", "word", "Word."], ["'hugegest'", "(Intconcludes).", "spconcludeing"], _CHUNKS,
              ["word", "(word),", "--spconcludeing--", "hugegest"], TRICKY.split(), _CHUNKS[::-1]]
    for group in groups:
        chunks = Counter(group)
        assert model._chunk_infos(chunks) == tuple(model._mixed_chunk_info(c) for c in chunks), group
    assert model._shared.retired_chunks  # the small table did retire its chunks
    assert len(model._chunks) <= 8 + len(set(TRICKY.split())) + len(_CHUNKS)


def _inword_candidates_by_definition(model: RepairModel, word: str) -> list[tuple[str, str, str]]:
    """prefix + original + suffix for every split of ``word`` around a listed substitute, in split order."""
    out = []
    for i in range(len(word)):
        for j in range(i + 3, len(word) + 1):
            substitute = word[i:j]
            if (i, j) == (0, len(word)) or substitute not in model._synonyms:
                continue
            for original in model._synonyms[substitute].split(","):
                repaired = word[:i] + original + word[j:]
                if repaired in model._freq and original not in substitute and substitute not in original:
                    out.append((repaired, original, substitute))
    return out


@pytest.mark.parametrize("word", ["intconcludes", "indepconcludeent", "spconcludeing", "innotifyigence", "hugegest",
                                  "kubilius", "resetting", "attconcludeance", "zzzzz", "bigsetrunend"])
def test_inword_readings_are_every_split_the_thesaurus_and_vocabulary_allow(word):
    model = RepairModel.load()
    model._shared.readings.pop(word, None)
    got = [(c.repaired, c.original, c.substitute) for c in model._inword_candidates(word)]
    assert got == _inword_candidates_by_definition(model, word)
    assert all(c.zipf == model.zipf(c.repaired) for c in model._inword_candidates(word))


def test_in_thesaurus_is_membership_in_the_listed_originals(model):
    for substitute in ["conclude", "notify", "huge", "build", "necessary", "set", "zzzz"]:
        listed = model._synonyms.get(substitute, "")
        for original in listed.split(",")[:50] + ["end", "tell", "big", "make", "need", "", "zzzz"]:
            assert model._in_thesaurus(original, substitute) == (bool(listed) and original in listed.split(","))
