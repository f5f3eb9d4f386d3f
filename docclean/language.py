"""Language: langdetect on a bounded prefix of the cleaned text, made deterministic.

langdetect samples n-grams at random; with its factory seed fixed, the same text always gets the same
answer. docclean runs langdetect's own algorithm, reimplemented for speed with answers identical to the
last bit (tests/test_speed_paths.py compares them): n-grams per word cached, and the random trials of a
whole batch of texts advanced together as numpy rows (see `_trials`). A prefix of about a thousand characters is as accurate as the full text on news and costs a
fraction (the full text was two thirds of the pipeline's time when measured). Documents in a language the
configuration does not keep become rejects with reason ``language_filtered``.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import threading

import numpy as np

from langdetect import DetectorFactory, detector_factory
from langdetect.detector import Detector
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.utils.ngram import NGram

from .config import LanguageConfig, cache_dir
from .document import Document, StageResult

UNDETERMINED = "und"
_lock = threading.Lock()


class _ProfileTable(dict):
    """langdetect's n-gram -> [probability per language] table, as one numpy matrix.

    langdetect's own loader builds all 87,598 rows as lists of 55 Python floats: 1.3 s and ~200 MB in
    every process (the CLI and each pool worker). The profiles hold only 184k non-zero entries, so the
    same probabilities (langdetect's arithmetic: count / n-grams of that length) are written into a float64
    matrix with a few vectorized assignments (~40 MB). Every n-gram is a key of the dict (``index`` gives
    its row), so langdetect's many ``in`` tests stay at dict speed; a lookup gives the row as a list."""

    def __init__(self, keys: list[str], matrix: np.ndarray):
        super().__init__(dict.fromkeys(keys))
        self.index = dict(zip(keys, range(len(keys))))
        self.matrix = matrix

    @classmethod
    def from_profiles(cls, profiles: list[dict]) -> "_ProfileTable":
        keys = list(dict.fromkeys(w for p in profiles for w in p["freq"]))
        index = dict(zip(keys, range(len(keys))))
        matrix = np.zeros((len(keys), len(profiles)))
        for column, profile in enumerate(profiles):
            # as DetectorFactory.add_profile: 1.0 * count / n_words[length - 1]; other lengths stay zero
            words = [w for w in profile["freq"] if 1 <= len(w) <= 3]
            counts = np.array([profile["freq"][w] for w in words], dtype=np.float64)
            totals = np.array(profile["n_words"], dtype=np.float64)[[len(w) - 1 for w in words]]
            matrix[[index[w] for w in words], column] = counts / totals
        return cls(keys, matrix)

    def __getitem__(self, word: str) -> list[float]:
        return self.matrix[self.index[word]].tolist()

    def numbers(self, words: list[str]) -> list[int]:
        """Row numbers in ``matrix`` of ``words`` (repeats included)."""
        index = self.index
        return [index[w] for w in words]


class _Normalized(dict):
    """str.translate table: code point -> NGram.normalize(character), computed on first sight."""

    def __missing__(self, code: int) -> str:
        self[code] = c = NGram.normalize(chr(code))
        return c


_MULTIPLE_SPACES = re.compile(" {2,}")
_LATIN = re.compile("[A-z]")  # langdetect's 'A' <= ch <= 'z'
# langdetect means "at or above U+0300 and not Latin Extended Additional", but compares the block number
# with a block name, so every character from U+0300 on counts; as langdetect does.
_NON_LATIN = re.compile("[\u0300-\U0010ffff]")


class _Detector(Detector):
    """langdetect's Detector, several times faster with the same answers to the last bit.

    * n-grams: the same n-grams in the same order (so the seeded sampling picks the same ones). The
      original calls methods per character (NGram.add_char, NGram.normalize); here the text is normalized
      with one str.translate, and the n-grams of each word (they depend on that word only: the n-gram
      window restarts at every space) are computed once per process and reused.
    * trials: the same random draws and the same floating-point operations in the same order, on numpy
      rows instead of Python lists (see `_detect_block`).
    """

    _translation = _Normalized()
    # word -> (its n-grams, those the space after it emits, the same two as row numbers of the table)
    _word_ngrams: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...], tuple[int, ...]]] = {}
    _WORD_CACHE_LIMIT = 200_000

    def append(self, text: str) -> None:
        # As Detector.append, whose per-character loop only collapses runs of spaces.
        text = self.URL_RE.sub(" ", text)
        text = self.MAIL_RE.sub(" ", text)
        text = NGram.normalize_vi(text)
        self.text += _MULTIPLE_SPACES.sub(" ", text[: self.max_text_length])

    def cleaning_text(self) -> None:
        # As Detector.cleaning_text (drop Latin letters from a text mostly in another script), with
        # regular expressions for its per-character loops.
        text = self.text
        latin = len(_LATIN.findall(text))
        if latin * 2 >= len(text) - latin:  # not even every other character could be non-Latin
            return
        if latin * 2 < len(_NON_LATIN.findall(text)):
            self.text = _LATIN.sub("", text)

    def _words(self) -> tuple[list[str], list[tuple]]:
        """The text's words (split at spaces after normalization) and each one's cached n-grams."""
        words = self.text.translate(self._translation).split(" ")
        cache = self._word_ngrams
        if len(cache) > self._WORD_CACHE_LIMIT:
            cache.clear()
        entries = []
        for word in words:
            if word:
                entry = cache.get(word)
                if entry is None:
                    entry = cache[word] = self._ngrams_of_word(word)
                entries.append(entry)
        return words, entries

    def _extract_ngrams(self) -> list[str]:
        return self._collect(0)

    def _ngram_rows(self) -> np.ndarray:
        """The n-grams of `_extract_ngrams` as row numbers of the table's matrix."""
        return np.array(self._collect(2), dtype=np.intp)

    def _collect(self, first: int) -> list:
        words, entries = self._words()
        result: list = []
        extend = result.extend
        for entry in entries:
            extend(entry[first])
            extend(entry[first + 1])
        if words[-1]:  # the text does not end with a space: its last word has no trailing n-grams
            del result[len(result) - len(entries[-1][first + 1]):]
        return result

    def _ngrams_of_word(self, word: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...], tuple[int, ...]]:
        """NGram.add_char and Detector._extract_ngrams over one word that follows a space: the n-grams
        ending at each of its characters (its 1-gram, then 2-gram, then 3-gram; the window starts at
        the space before it), then those the space after it emits."""
        known = self.word_lang_prob_map
        padded = f" {word} "
        out: list[str] = []
        append = out.append
        previous_upper = False
        for j in range(1, len(padded) - 1):
            c = padded[j]
            upper = c.isupper()
            if upper and previous_upper:  # langdetect skips the rest of an upper-case run ("NATO")
                continue
            previous_upper = upper
            if c in known:
                append(c)
            if padded[j - 1 : j + 1] in known:
                append(padded[j - 1 : j + 1])
            if j >= 2 and padded[j - 2 : j + 1] in known:
                append(padded[j - 2 : j + 1])
        trailing = [g for g in (padded[-2:], padded[-3:]) if g in known]
        return tuple(out), tuple(trailing), tuple(known.numbers(out)), tuple(known.numbers(trailing))

    def _detect_block(self) -> None:
        """Detector._detect_block with each run of updates between two convergence checks done on numpy
        rows: per language, ``prob *= weight + row`` for each drawn n-gram in draw order (numpy's
        multiply.reduce along the first axis multiplies row after row), then the sum in order
        (add.accumulate, as Python 3.11's sum of floats) and the division. Every operation is the same
        IEEE double operation as in the original, so the probabilities are identical."""
        if self.prior_map is not None:
            return super()._detect_block()
        self.cleaning_text()
        numbers = self._ngram_rows()
        if not len(numbers):
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        rows = self.word_lang_prob_map.matrix[numbers]
        n_langs = len(self.langlist)
        n = len(numbers)
        langprob = np.zeros(n_langs)
        rnd = self.random
        rnd.seed(self.seed)
        randbelow = rnd._randbelow  # what random.choice(ngrams) draws: ngrams[randbelow(len(ngrams))]
        updates = np.empty((6, n_langs))  # row 0: the probabilities; rows 1..5: the next factors
        for _ in range(self.n_trial):
            updates[0] = 1.0 / n_langs
            alpha = self.alpha + rnd.gauss(0.0, 1.0) * self.ALPHA_WIDTH
            weight = alpha / self.BASE_FREQ
            # The original checks convergence after update i = 0, 5, 10...: one update, then runs of five.
            i, run = 0, 1
            while True:
                factors = updates[1 : run + 1]
                np.take(rows, [randbelow(n) for _ in range(run)], axis=0, out=factors)
                factors += weight
                prob = np.multiply.reduce(updates[: run + 1], axis=0)
                np.divide(prob, np.add.accumulate(prob)[-1], out=updates[0])
                if updates[0].max() > self.CONV_THRESHOLD or i >= self.ITERATION_LIMIT:
                    break
                i += 5
                run = 5
            langprob += updates[0] / self.n_trial
        self.langprob = langprob.tolist()


class _Factory(DetectorFactory):
    def _create_detector(self) -> Detector:
        return _Detector(self)


def _profile_files() -> list[str]:
    # langdetect's profiles, in its own order (os.listdir, as DetectorFactory.load_profile reads them).
    folder = detector_factory.PROFILES_DIRECTORY
    paths = (os.path.join(folder, name) for name in os.listdir(folder) if not name.startswith("."))
    return [path for path in paths if os.path.isfile(path)]


def _cache_file(paths: list[str]) -> str | None:
    """Where this process may find the profile table built by an earlier one: named after the profiles'
    names, sizes and times, so another langdetect install never reads a stale table."""
    import hashlib

    base = cache_dir()
    stamp = hashlib.blake2b(digest_size=8)
    for path in paths:
        st = os.stat(path)
        stamp.update(f"{os.path.basename(path)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return os.path.join(base, f"langdetect-profiles-v{_CACHE_FORMAT}-{stamp.hexdigest()}.npz")


_CACHE_FORMAT = 1


def _load_table(paths: list[str]) -> tuple[list[str], _ProfileTable]:
    """(language names, profile table). Parsing the 55 JSON profiles and building the table cost ~0.45 s
    in every process (the CLI and each pool worker); the built table, cached on disk, loads in ~0.05 s.
    The cache is an optimization only: any trouble with it and the table is built from the profiles."""
    cache = None
    try:
        cache = _cache_file(paths)
        with np.load(cache, allow_pickle=False) as saved:
            rows, columns, values = saved["rows"], saved["columns"], saved["values"]
            matrix = np.zeros((int(saved["shape"][0]), int(saved["shape"][1])))
            matrix[rows, columns] = values
            return saved["languages"].tolist(), _ProfileTable(saved["keys"].tolist(), matrix)
    except Exception:  # missing, unreadable, truncated (BadZipFile), another format: build it again
        pass
    profiles = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            profiles.append(json.load(fh))
    languages = [p["name"] for p in profiles]
    table = _ProfileTable.from_profiles(profiles)
    if cache is not None:
        try:
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            rows, columns = np.nonzero(table.matrix)
            tmp = f"{cache}.{os.getpid()}.tmp.npz"
            np.savez(tmp, languages=np.array(languages), keys=np.array(list(table)), rows=rows, columns=columns,
                     values=table.matrix[rows, columns], shape=np.array(table.matrix.shape))
            os.replace(tmp, cache)  # whole or absent: a reader never sees half a file
        except OSError:
            pass
    return languages, table


def _factory() -> DetectorFactory:
    if detector_factory._factory is None:
        factory = _Factory()
        factory.langlist, factory.word_lang_prob_map = _load_table(_profile_files())
        detector_factory._factory = factory
    return detector_factory._factory


def _prefix(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit]


def detect_language(text: str, config: LanguageConfig) -> tuple[str, float]:
    """(ISO 639-1 code, probability); ``("und", 0.0)`` when the text is too short or has no letters."""
    return detect_languages([text], config)[0]


def detect_languages(texts: list[str], config: LanguageConfig) -> list[tuple[str, float]]:
    """`detect_language` of each text, the same answers; the random trials of all texts run together."""
    with _lock:  # the factory is a module global
        factory = _factory()
    detector = _Detector(factory)
    detector.seed = config.seed
    results: list[tuple[str, float]] = [(UNDETERMINED, 0.0)] * len(texts)
    samples = [(i, _prefix(text, config.prefix_chars)) for i, text in enumerate(texts)]
    samples = [(i, sample) for i, sample in samples if sum(map(str.isalpha, sample)) >= config.min_chars]
    if config.seed is None or len(samples) <= 2:
        # Unseeded (langdetect's own random stream), or too few texts to gain from running them together.
        for i, sample in samples:
            detector.text, detector.langprob = "", None
            detector.append(sample)
            try:
                results[i] = _best(detector.get_probabilities())
            except LangDetectException:  # "No features in text."
                pass
        return results
    todo: list[tuple[int, np.ndarray]] = []
    for i, sample in samples:
        detector.text = ""
        detector.append(sample)
        detector.cleaning_text()
        rows = detector._ngram_rows()
        if len(rows):  # else langdetect raises "No features in text."
            todo.append((i, rows))
    if todo:
        probabilities = _trials(factory, [rows for _, rows in todo], config.seed)
        for (i, _), probs in zip(todo, probabilities):
            results[i] = _best(detector._sort_probability(probs))
    return results


def _best(languages: list) -> tuple[str, float]:
    if not languages:
        return UNDETERMINED, 0.0
    best = languages[0]
    # langdetect names Chinese zh-cn / zh-tw; the archive keeps plain ISO 639-1 codes.
    return best.lang.split("-")[0], round(float(best.prob), 4)


# --------------------------------------------------------------------------------------------------
# langdetect's random trials for many texts at once
# --------------------------------------------------------------------------------------------------
#
# Detector._detect_block reseeds its random generator for every text, so with a fixed seed every text
# draws from the same stream of 32-bit outputs of random.Random(seed): trial after trial, a gauss() for the
# smoothing (two random() calls, four outputs, on every other trial: gauss caches its second value) then
# random.choice(ngrams) until the probabilities converge, each choice taking one output (top bits, with
# rejection, as Random._randbelow). Which n-grams a text draws is therefore known before its arithmetic,
# and the arithmetic of all texts (55 floats each) can advance together as numpy rows, one run of updates
# between two convergence checks at a time. Every operation is langdetect's, in its order (product in
# draw order, sum left to right as Python 3.11's sum, division), so the probabilities are identical.


class _WordStream:
    """The 32-bit outputs of random.Random(seed), in order, generated as far as asked."""

    _streams: dict[int, "_WordStream"] = {}

    def __init__(self, seed: int):
        self._rng = random.Random(seed)
        self.words = np.empty(0, dtype=np.uint32)

    @classmethod
    def of(cls, seed: int) -> "_WordStream":
        with _lock:
            stream = cls._streams.get(seed)
            if stream is None:
                stream = cls._streams[seed] = cls(seed)
        return stream

    def upto(self, end: int) -> np.ndarray:
        if len(self.words) < end:
            with _lock:  # two threads extending at once would append outputs out of order
                if len(self.words) < end:
                    more = max(end - len(self.words), 1 << 16)
                    fresh = self._rng.getrandbits(32 * more).to_bytes(4 * more, "little")  # outputs in order
                    self.words = np.concatenate([self.words, np.frombuffer(fresh, dtype="<u4")])
        return self.words

    def random(self, at: int) -> float:
        """random.Random.random() from the outputs at ``at`` and ``at + 1``."""
        a, b = int(self.words[at]) >> 5, int(self.words[at + 1]) >> 6
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0)

    def gauss_pair(self, at: int) -> tuple[float, float]:
        """random.Random.gauss(0.0, 1.0) from the outputs at ``at``..``at + 3``, and the value it caches."""
        self.upto(at + 4)
        x2pi = self.random(at) * (2.0 * math.pi)
        g2rad = math.sqrt(-2.0 * math.log(1.0 - self.random(at + 2)))
        return 0.0 + math.cos(x2pi) * g2rad * 1.0, math.sin(x2pi) * g2rad

    def choices(self, at: int, n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``count`` results of Random._randbelow(n) from output ``at`` on, and for each the
        number of outputs used up to and including it."""
        shift = np.uint32(32 - n.bit_length())
        length = 2 * count + 64  # at least half the outputs are accepted
        while True:
            candidates = self.upto(at + length)[at : at + length] >> shift
            accepted = np.flatnonzero(candidates < n)
            if len(accepted) >= count:
                accepted = accepted[:count]
                return candidates[accepted].astype(np.intp), accepted + 1
            length *= 2


def _trials(factory, row_lists: list[np.ndarray], seed: int) -> list[list[float]]:
    """Detector._detect_block's language probabilities for each text, given as the row numbers of its
    n-grams (`_Detector._ngram_rows`, never empty)."""
    d = Detector  # langdetect's constants
    n_trial, limit, converged = 7, d.ITERATION_LIMIT, d.CONV_THRESHOLD
    table = factory.word_lang_prob_map
    matrix = table.matrix
    n_langs = len(factory.langlist)
    n_texts = len(row_lists)
    stream = _WordStream.of(seed)
    rows = row_lists
    offsets = [0] * n_texts
    cached_gauss: list[float | None] = [None] * n_texts
    langprob = np.zeros((n_texts, n_langs))
    picks = np.empty((n_texts, limit + 1), dtype=np.intp)  # row number of each update's n-gram
    for _ in range(n_trial):
        weights = np.empty((n_texts, 1))
        used = []
        for t in range(n_texts):
            z = cached_gauss[t]
            cached_gauss[t] = None
            if z is None:
                z, cached_gauss[t] = stream.gauss_pair(offsets[t])
                offsets[t] += 4
            alpha = d.ALPHA_DEFAULT + z * d.ALPHA_WIDTH
            weights[t, 0] = alpha / d.BASE_FREQ
            positions, consumed = stream.choices(offsets[t], len(rows[t]), limit + 1)
            picks[t] = rows[t][positions]
            used.append(consumed)
        prob = np.full((n_texts, n_langs), 1.0 / n_langs)
        updates = np.zeros(n_texts, dtype=np.intp)  # how many updates each text's trial made
        active = np.arange(n_texts)
        i, first, run = 0, 0, 1  # the original checks convergence after update i = 0, 5, 10...
        while active.size:
            p = prob[active]
            w = weights[active]
            for column in range(first, first + run):
                p *= w + matrix[picks[active, column]]
            np.divide(p, np.add.accumulate(p, axis=1)[:, -1:], out=p)
            prob[active] = p
            done = p.max(axis=1) > converged
            if i >= limit:
                done[:] = True
            updates[active[done]] = i + 1
            active = active[~done]
            first += run
            i += 5
            run = 5
        langprob += prob / n_trial
        for t in range(n_texts):
            offsets[t] += int(used[t][updates[t] - 1])
    return langprob.tolist()


def detect(doc: Document, config: LanguageConfig) -> StageResult:
    return detect_many([doc], config)[0], []


def detect_many(docs: list[Document], config: LanguageConfig) -> list[Document]:
    """`detect` over a batch of documents (the trials of all texts run together; same answers)."""
    out = []
    for doc, (lang, score) in zip(docs, detect_languages([d.text for d in docs], config)):
        doc = doc.replace(language=lang, language_score=score)
        if config.keep and lang not in config.keep:
            doc = doc.reject("language_filtered", f"detected {lang} (p={score:.2f}); configured to keep {', '.join(config.keep)}")
        out.append(doc)
    return out
