"""The fast paths give the slow paths' answers exactly: langdetect's own detector (seeded) against
docclean's batched one, text preparation step by step, and the pipeline's batched language stage."""

import random

import pytest
from langdetect.detector import Detector

from docclean import language
from docclean.config import LanguageConfig

ALPHABET = ("aAbBcCeEzZ éÉñÑßœÀÁ\u0219\u021b ДдЖжИи 中文字 ひらがな カタカナ 한국어 عربي ی ’“”—-.,!?0123456789\n\t "
            "ABC ạảấầẩ a\u0301 e\u0323 ")
WORDS = ("the council approved budget après conseil européen über straße ciudad está "
         "москва город 北京 東京 서울 مدينة Việt Nam thành phố NATO EU").split()


def _random_texts(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    texts = ["The Town Council met on Tuesday. NATO and the EU said so. http://example.com/a?b=c mail@example.org",
             "Le Conseil européen s’est réuni à Bruxelles.   Trois  espaces.",
             "東京都は火曜日に新しい予算を承認した。ABC Latin words in a Japanese text, Tokyo.",
             "Thành phố Hồ Chí Minh đã phê duyệt ngân sách mới vào thứ Ba."]
    for _ in range(n):
        if rnd.random() < 0.5:
            texts.append("".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 400))))
        else:
            texts.append(" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 150))))
    return texts


def _langdetect(factory, text: str, seed: int):
    """langdetect's own Detector (the table's rows are langdetect's; see the test below)."""
    detector = Detector(factory)
    detector.seed = seed
    detector.append(text)
    try:
        return [(l.lang, l.prob) for l in detector.get_probabilities()]
    except Exception:
        return None


def test_text_preparation_is_langdetects():
    factory = language._factory()
    for text in _random_texts(3, 400):
        theirs, ours = Detector(factory), language._Detector(factory)
        theirs.append(text)
        ours.append(text)
        assert ours.text == theirs.text
        theirs.cleaning_text()
        ours.cleaning_text()
        assert ours.text == theirs.text
        assert ours._extract_ngrams() == Detector._extract_ngrams(theirs)
        assert ours._ngram_rows().tolist() == factory.word_lang_prob_map.numbers(ours._extract_ngrams())


@pytest.mark.parametrize("seed", [0, 5])
def test_batched_trials_give_langdetects_probabilities_to_the_last_bit(seed):
    factory = language._factory()
    texts = _random_texts(seed + 1, 120)
    ours = language._Detector(factory)
    ours.seed = seed
    rows, expected = [], []
    for text in texts:
        want = _langdetect(factory, text, seed)
        ours.text = ""
        ours.append(text)
        ours.cleaning_text()
        numbers = ours._ngram_rows()
        assert (want is None) == (len(numbers) == 0)
        if want is not None:
            rows.append(numbers)
            expected.append(want)
    got = language._trials(factory, rows, seed)
    sorted_got = [[(l.lang, l.prob) for l in ours._sort_probability(probs)] for probs in got]
    assert sorted_got == expected
    # and the one-text path of the numpy detector
    for text, want in zip([t for t in texts if _langdetect(factory, t, seed) is not None][:30], expected):
        d = language._Detector(factory)
        d.seed = seed
        d.append(text)
        assert [(l.lang, l.prob) for l in d.get_probabilities()] == want


def test_detect_languages_equals_one_at_a_time():
    cfg = LanguageConfig()
    texts = _random_texts(9, 60) + ["", "12 34 !!"]
    assert language.detect_languages(texts, cfg) == [language.detect_language(t, cfg) for t in texts]


@pytest.mark.slow
def test_profile_table_rows_are_langdetects_own():
    """The lazily built rows against langdetect's eagerly loaded factory, answers compared end to end."""
    from langdetect import DetectorFactory
    from langdetect.detector_factory import PROFILES_DIRECTORY

    original = DetectorFactory()
    original.load_profile(PROFILES_DIRECTORY)
    assert original.langlist == language._factory().langlist
    cfg = LanguageConfig()
    texts = [t for t in _random_texts(21, 80)]
    ours = language.detect_languages(texts, cfg)
    for text, got in zip(texts, ours):
        sample = language._prefix(text, cfg.prefix_chars)
        if sum(map(str.isalpha, sample)) < cfg.min_chars:
            assert got == ("und", 0.0)
            continue
        want = _langdetect(original, sample, cfg.seed)
        assert got == (language._best([type("L", (), {"lang": l, "prob": p}) for l, p in want]) if want else ("und", 0.0))


def test_shingles_are_the_n_word_windows():
    from docclean.dedup import shingles

    rnd = random.Random(4)
    for _ in range(500):
        tokens = [rnd.choice(["a", "bb", "ccc", "dé", "e"]) for _ in range(rnd.randint(0, 25))]
        for n in (1, 2, 3, 5):
            windows = [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
            assert shingles(tokens, n) == (windows if len(tokens) > n else [" ".join(tokens)] if tokens else [])


def test_removed_lines_are_counted_as_row_by_row():
    from collections import Counter

    import pyarrow as pa

    from docclean.archive import DOCUMENTS_SCHEMA
    from docclean.pipeline import _count_removed_lines

    rnd = random.Random(2)
    rows = []
    for _ in range(60):
        n = rnd.choice([None, 0, 1, 3, 40])
        rows.append(None if n is None else [
            {"rule": rnd.choice(["nav_line", "share_button"]), "text": rnd.choice(["Menu", "x" * 300, "Sign up é" * 30]),
             "stage": "boilerplate"} for _ in range(n)])
    column = pa.chunked_array([pa.array(rows[:25], DOCUMENTS_SCHEMA.field("removed").type),
                               pa.array(rows[25:], DOCUMENTS_SCHEMA.field("removed").type)])
    expected: Counter = Counter()
    for removed in column.to_pylist():
        for r in removed or ():
            expected[(r["rule"], r["text"][:200])] += 1
    got: Counter = Counter()
    _count_removed_lines(got, column.slice(3))  # a sliced column too: offsets respected
    want: Counter = Counter()
    for removed in column.slice(3).to_pylist():
        for r in removed or ():
            want[(r["rule"], r["text"][:200])] += 1
    assert list(got.items()) == list(want.items())  # same counts, same first-seen order (most_common ties)
    got = Counter()
    _count_removed_lines(got, column)
    assert list(got.items()) == list(expected.items())


def test_threads_detecting_at_once_get_the_same_answers():
    from concurrent.futures import ThreadPoolExecutor

    cfg = LanguageConfig(seed=123)  # a stream no other test has extended yet
    texts = _random_texts(31, 40)
    expected = [language.detect_language(t, LanguageConfig(seed=123)) for t in texts]
    language._WordStream._streams.pop(123, None)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda chunk: language.detect_languages(chunk, cfg), [texts[i::4] for i in range(4)]))
    got = {}
    for i, chunk in enumerate(results):
        for j, r in enumerate(chunk):
            got[i + 4 * j] = r
    assert [got[i] for i in range(len(texts))] == expected
