"""Repair: undo an "article spinner" that swapped words for synonyms, even inside longer words.

The spinner replaced ``end`` by ``conclude`` everywhere it found it, so ``intends`` became
``intconcludes``; it also swapped whole words (``make sense`` -> ``build sense``). Two repairs:

- ``spinner_inword``: a token that is no English word splits as prefix + X + suffix, where prefix + Y +
  suffix is a frequent word and Y -> X is a substitution a thesaurus allows. The strongest evidence is the
  corpus itself: a spinner uses one dictionary, so a pair that explains several *different* damaged words
  (``end -> conclude``: intends, independent, spending) is almost certainly real. ``RepairModel.learn``
  gathers that evidence and shares each damaged word among its readings by expectation-maximization
  (the pair that explains most other damaged words takes the mass); a reading is also likelier when other
  forms of the original stand intact in the same text (``investors`` next to ``puted``). ``save_pairs``
  keeps the evidence from run to run, with a ``status`` column people can set to ``approved`` /
  ``rejected``; in the pipeline each batch hands on ``learned_evidence()`` and ``merge_pairs`` adds the
  batches' evidence to the archive's pairs when the run commits.
  A text that shows the spinner's hand in three or more different substitutions is "heavily spun": there a
  doubtful reading (below the confidence bar, or a term the text or corpus repeats that no other word backs)
  is judged again by a logistic model fitted on the benchmark's train split (SPUN_LOGIT: its confidence, the
  pair's evidence in other words and in the text, capitals, repeats, the restored word's sightings intact in
  the corpus...). A pair the corpus proves inside PROVEN_EVIDENCE words of other stems also restores words
  rarer than the usual floor (era -> epoch: "delivepochbles" -> "deliverables"), and in a heavily spun text it
  also repairs a rare word of the vocabulary (RARE_SUSPECT_ZIPF: "spliting" -> "renting" when rent -> split is
  proven). Among a damaged word's readings, a conditional logit fitted on the train split chooses
  (READING_LOGIT: the restored word's frequency, its fit with the neighbours' word pairs, how much more often
  than usual the text and the corpus use it intact, the pair's evidence in other damaged words, and whether the
  corpus shows the original swapped for another substitute); the confidence is the reading's softmax share.
- ``spinner_phrase``: a real word in a context where the original fits and it doesn't: ``build sense``
  (word-pair counts say ``make sense``) or ``the necessary for`` (an adjective where a noun must stand),
  or a word whose swap the corpus confirmed inside other words, where the neighbours, the text's own counts
  of both words and the spin rate give high odds of a swap (``you sack actually`` -> ``you can actually``).
  In a heavily spun text, every pair the in-word evidence learned is also scored as a whole-word swap by a
  logistic model over SWAP_FEATURES and their pairwise products, fitted on the benchmark's train split (word pairs
  of the neighbours, the text's counts, the pair's capped evidence, the corpus's use of both words), and so are its
  inflections ("divides" -> "parts") and function words the spinner swapped ("every of the" -> "all of the").
  Only attempted in documents that already show in-word spinner damage: a wrong repair is worse than a
  missed one, and clean text then stays untouched.

Names, URLs, numbers, code and text in another language are never touched: tokens with digits, internal
capitals, non-ASCII letters or URL/code punctuation are skipped, and a text (or line) whose words are
mostly not English is left alone. An in-word repair's confidence is the restored word's share of the
probability among all readings (READING_LOGIT), lowered for what looks like a name (capitalized, or never seen in lower
case), a typo (one edit from a word), a regular coinage (prefix/word + word/suffix: "stockouts") or a
term the text keeps repeating, unless other damaged words vouch for the same substitution.

Speed: no text is tokenized whole. A text is split on whitespace (C speed) and each distinct chunk's
analysis (token counts for the language check, damage suspects, topic words) is looked up in a table shared
by every model of the process; ``learn`` keeps its scan of a text for the ``repair_text`` that follows.
A new chunk that is one plain word (most are), or one word in plain punctuation ("(word),": the word's analysis
serves), skips the tokenizer; the analyses are plain tuples, which the garbage collector stops tracking. A text's
new chunks are analysed together (the bare words of "(word)," in one pass), and a full table is retired one
generation (its chunks still in use come back from there instead of being worked out again).
Token objects (with their neighbours) are built only for suspects whose word has a reading and, in texts
with in-word repairs, for the few words a whole-word repair could touch; readings, typo and coinage checks
are kept per word, and the words a reading asks about are found by searching the text in lower case.
The results are exactly those of tokenizing the whole text (tests/test_repair_fastpath.py).
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import math
import os
import re
import string
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, compress, repeat
from operator import and_, contains, itemgetter, mul, not_
from pathlib import Path
from typing import TYPE_CHECKING, AbstractSet, Iterable, NamedTuple

from wordfreq import get_frequency_dict

from .config import RepairConfig
from .document import Document, Edit, Repair

if TYPE_CHECKING:
    import pyarrow as pa

DATA = Path(__file__).resolve().parent / "data"
PAIRS_FILE = "repair_pairs.parquet"
MAX_EXAMPLES = 50  # damaged words kept per pair in the persisted table (for review and for evidence)

# A token is "not a word" below this Zipf frequency (wordfreq keeps rare names above it, e.g. Zaventem 1.3).
UNKNOWN_ZIPF = 1.0
MIN_REPAIRED_ZIPF = 2.5  # the restored word must be a reasonably common word...
# ...unless the substitution shows inside at least PROVEN_EVIDENCE other damaged words of different stems:
# then a rarer word (deliverables, iterator, codebase; down to busboys, webhooks, upskilling) is restored too
# (the spinner's era -> epoch is proven). On the benchmark's train split a floor of 1.0 instead of 2.0 adds half a
# point of in-word recall with no wrong repair and no false repair on clean web text more.
MIN_PROVEN_REPAIRED_ZIPF = 1.0
PROVEN_EVIDENCE = 3.0
MIN_TOKEN_LEN = 5
# A word of the vocabulary this rare may be damage too ("puting" 1.9, "useing" 1.6): only looked at in a heavily
# spun text, and restored only through a pair the corpus proves (see _proven).
RARE_SUSPECT_ZIPF = 2.0
MIN_SUBSTITUTE_LEN = 3
ENGLISH_SHARE = 0.6  # share of tokens that must be English words for the text to count as English
BIGRAM_FLOOR = 3_000_000  # below the smallest count the word-pair table keeps (6.4M)
BIGRAM_CORPUS_TOKENS = 4e11 / 1e9  # word-pair counts per unit of 10**zipf (Google Books scale)
NEIGHBOUR_FIT_BASE = 1e-3  # a typical P(neighbour | word): fit 1 for an ordinary neighbour
NEIGHBOUR_FIT_CAP = 30.0
IDIOM_MIN_COUNT = 200_000_000  # "make sense" (2.1e8): only the strongest collocations count as idioms
STRONG_DOC_REPAIRS = 3  # in-word repairs that mark a document as heavily spun
# A spinner damages many words of a text: one lone in-word repair in a text this long, with no other
# damaged word in the corpus showing the same substitution, is far more likely a technical word the
# thesaurus happens to explain (unhashable -> "unworkable") than the spinner's work.
LONE_REPAIR_MIN_WORDS = 150
MAX_READINGS_TO_LEARN = 2  # a damaged word with more readings than this vouches for none of them (persisted)
EM_ROUNDS = 8
PRIOR_SMOOTHING = 0.01  # pseudo-count of every listed pair in P(original | substitute)
# The spinner maps a substitute back to one original: expectation-maximization sharpens the prior so that the
# pair with most evidence takes over its substitute's damaged words (train -> prepare over teach -> prepare).
EM_PRIOR_POWER = 2.0
TOPIC_WEIGHT = 3.0  # weight of each intact form of the original word seen in the same text
TOPIC_MAX_FORMS = 3
TOPIC_DOUBT = 0.08
SOME_EVIDENCE = 0.5
STRONG_EVIDENCE = 5.0
CONFIRMED_WORDS = 2.0  # expected damaged words a pair must explain before whole words are checked for it
SWAP_ODDS_OFFSET = 3.0  # calibrated on the train split: log-odds 6 -> confidence 0.95
SPIN_RATE = 0.1  # share of a confirmed pair's original words a spinner swaps: the prior odds of a swap
# Log-odds that a whole word is a spinner's swap for an original the in-word evidence learned: a logistic
# regression on the train split of benchmarks/repair.py (heavily spun texts, cross-validated by document; fitted
# and written by ``--fit-swap --write``) over these features and their pairwise products: the neighbours' word
# pairs, the text's own counts of both words, the pair's in-word evidence (capped at EVIDENCE_CAP words, so that
# the odds do not grow with the size of the corpus) and its share of the substitute's evidence, how many originals
# the thesaurus offers, the evidence that the spinner swaps the original for another substitute, and how much more
# often than their frequency says the corpus uses both words. The products matter: at the same number of clean
# words changed, they find a fifth more swaps than the features alone. The offset holds a margin of 0.25 below the
# fit's (a wrong repair is worse than a missed one). In a heavily spun text the model alone judges the swaps the
# corpus confirmed (it tells them from genuine uses of the word better than PhraseEvidence's odds).
SWAP_FEATURES = ("left", "right", "left_seen", "right_seen", "unigram", "text_counts", "evidence", "evidence_share",
                 "originals", "inword_repairs", "rival", "word_lift", "original_lift")
SWAP_MODEL_FILE = "repair_swap_quadratic.tsv.gz"
EVIDENCE_CAP = 5.0
# Log-odds that a doubtful in-word reading (below the confidence bar, or a held term) in a heavily spun text is
# the spinner's damage: a logistic fit on the train split of benchmarks/repair.py (``--fit``, cross-validated by
# document) over _spun_features, in their order: its confidence, the pair's evidence in other stems and other words,
# the text's other substitutions, capitals, typo / coinage look, repeats, the restored word's frequency, the number
# of readings, the substitute's length, held, the restored word's sightings intact in the corpus, the damaged word's
# sightings, the pair's share of its substitute's evidence, topic and neighbour fit, the original's sightings, the
# reading's share among the readings, the restored word's lift in the text and in the corpus, the text's length.
# Last: the offset, 0.75 above the fit's: almost every doubtful reading it wrongly accepts is a damaged word read
# the wrong way (not a clean word touched), and on train that trades 0.4 points of precision (0.987 -> 0.983) for
# 1.5 points of in-word recall, with no more false repairs on clean web text.
SPUN_LOGIT = (0.701, -0.168, 0.753, 1.264, 0.968, -0.491, 0.953, 0.426, -1.491, 1.27, -0.49, -0.544, 0.702, -0.09, 0.375,
              -0.178, -0.255, 0.178, 0.257, 1.067, 0.625, 0.488, -0.542, -3.628)
# Log-odds of an in-word reading against the damaged word's other readings: a conditional logit (softmax over
# the readings) fitted on the train split of benchmarks/repair.py (``--fit``) over _reading_features, in their
# order: the restored word's Zipf frequency, its neighbour fit, its lift in the text and in the corpus, the
# pair's evidence in other damaged words, the substitute's length, the original's Zipf frequency, and the
# evidence that the spinner swaps the original for *another* substitute (its dictionary has one per word).
# It picks the right reading of 93% of the train split's damaged words with a choice (the former product of
# frequency, pair prior, topic and neighbour fit: 81%).
READING_LOGIT = (1.623, 3.059, 0.98, 0.983, 1.351, -0.147, 0.602, -1.048)
APPROVED_BONUS = math.log(10)  # a pair a person approved
MIN_SWAP_EVIDENCE = 0.1  # weaker in-word evidence never reaches the odds a repair needs: not worth a look

MAX_KEPT_SCANS = 1024  # texts learn() scanned that repair_text() has not asked for yet
# Distinct chunks (and words) whose analysis is kept: about 25 MB; and as many of the generation before (see
# _SharedCaches.retire_chunks), so that a long run does not work out its common chunks again each time the table fills.
MAX_KEPT_CHUNKS = 100_000

_ASCII_LETTERS = frozenset(string.ascii_letters)
# Punctuation around a word that neither makes its chunk non-prose (_NOT_PROSE) nor joins a token (_TOKEN).
_EDGE_PUNCTUATION = ",.;:!?\"'()-"
_APOSTROPHES = frozenset("'\u2019")
# A token between a determiner and "for"/"to", where only a noun can stand ("the need for").
_NOUN_SLOT = re.compile(r"(?<![A-Za-z])(?<![A-Za-z]['\u2019])(?:[Tt][Hh][Ee]|[Aa][Nn]?) ([a-z][A-Za-z]*)"
                        r"(?= (?:[Ff][Oo][Rr]|[Tt][Oo])(?![A-Za-z]|['\u2019][A-Za-z]))")
_CHUNK = re.compile(r"\S+")
_TOKEN = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)*")
_NOT_PROSE = re.compile(r"://|www\.|@|_|[/\\=<>{}\[\]|#$%^*~`]|[A-Za-z]\.[A-Za-z]|\d")
_INNER_CAPITAL = re.compile(r"[a-z][A-Z]")
_SENTENCE_END = re.compile(r"[.!?:\"\u201c\u201d]\s*$")
_DETERMINERS = frozenset("the a an".split())
# Words a spinner leaves alone and whose neighbour statistics say little about a swap.
FUNCTION_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each either few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most my
myself neither no nor not now of off on once only or other our ours ourselves out over own same she should
so some such than that the their theirs them themselves then there these they this those through to too
under until up upon very was we were what when where which while who whom whose why will with would yet you
your yours yourself yourselves one ones may might must shall us via per every many much several another
various least less
""".split())
_FOREIGN_FUNCTION_WORDS = frozenset("""
le la les des du de et est une un en dans pour pas qui que sur avec au aux ce cette il elle ils nous vous sont
el los las y es por con del al lo se una para como pero
der die das und ist nicht ein eine mit den dem zu von auf sich auch des im
il che di non per con della sono gli nel
""".split())
_PREFIXES = frozenset("un re pre dis over under out up down super inter multi non anti co sub semi mis micro mega "
                      "cyber self post mid trans hyper ultra eco".split())
_SUFFIXES = frozenset("s es ed d ing ings er ers or ors ly ness ment ments able ability ible ize ise ized izes ising "
                      "izing ist ists ism ity ful less al ally ation ations ive ship ships wise ware izer izers iser isers ization "
                      "isation ised ising ize ise".split())
_INFLECTIONS = ("s", "es", "ed", "d", "ing", "er", "ers", "ly")
_NOUN_COMPLEMENTS = frozenset("for to".split())  # "the need for", "the need to"


@dataclass(frozen=True, slots=True)
class Token:
    start: int
    end: int
    text: str
    lower: str
    prev: str | None  # the word before, when only a space separates them (context for word pairs)
    next: str | None
    sentence_start: bool
    skip: bool  # inside a URL, code, number or other non-prose chunk


def tokenize(text: str) -> list[Token]:
    raw: list[tuple[int, int, str, bool, bool]] = []
    for chunk in _CHUNK.finditer(text):
        c = chunk.group()
        skip = bool(_NOT_PROSE.search(c)) or not c.isascii()
        for m in _TOKEN.finditer(c):
            start = chunk.start() + m.start()
            before = text[max(0, start - 3) : start]
            sentence_start = start == 0 or bool(_SENTENCE_END.search(before)) or "\n" in before
            raw.append((start, chunk.start() + m.end(), m.group(), skip or bool(_INNER_CAPITAL.search(m.group())), sentence_start))
    tokens = []
    for i, (start, end, word, skip, sentence_start) in enumerate(raw):
        prev = raw[i - 1][2].lower() if i and text[raw[i - 1][1] : start] == " " else None
        nxt = raw[i + 1][2].lower() if i + 1 < len(raw) and text[end : raw[i + 1][0]] == " " else None
        tokens.append(Token(start, end, word, word.lower(), prev, nxt, sentence_start, skip))
    return tokens


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


_INFLECTION = re.compile(r"(?<=[a-z]{3})(?:ings|ing|ers|er|ed|es|s|ly)$")


def _stem(word: str) -> str:
    """A word without its inflection, so that forms of one word count once as evidence."""
    return _INFLECTION.sub("", word)


def distinct_stems(words) -> int:
    """How many different words (not forms: pretrain, pretrained, pretraining count once) ``words`` holds.

    A spinner's pair shows inside many unrelated words (end -> conclude: intends, independent, spending);
    one technical word in several forms (pretrained, pretraining: tend -> train?) is no such evidence."""
    return len({_stem(w) for w in words})


@dataclass
class PairEvidence:
    words: set[str]  # distinct damaged tokens this pair explains
    occurrences: int = 0
    status: str = "auto"  # auto | approved | rejected


class RepairModel:
    """Vocabulary, thesaurus, word-pair counts, and substitution pairs learned from the corpus."""

    def __init__(self, freq: dict[str, float], synonyms: dict[str, str], bigrams: dict[str, int],
                 adjectives: frozenset[str], nouns: frozenset[str], verbs: frozenset[str]):
        self._freq = freq
        self._synonyms = synonyms  # substitute -> "orig,orig,..." (split lazily: most are never asked for)
        self._bigrams = bigrams
        self._adjectives = adjectives
        self._nouns = nouns
        self._verbs = verbs  # verbs with no adjective sense: "build", "make"
        self.pairs: dict[tuple[str, str], PairEvidence] = {}  # (original, substitute) -> evidence
        self._learned: dict[tuple[str, str], PairEvidence] = {}  # what learn() saw, without the loaded state
        self._learned_by_substitute: dict[str, set[str]] = defaultdict(set)  # only pairs outside the thesaurus
        self._confirmed_by_substitute: dict[str, set[str]] = {}
        self._stem_sightings: Counter = Counter()
        self._corpus_words: Counter = Counter()  # sightings of common words in the texts learned
        self._corpus_total = 0  # their sum
        self._suspect_case: dict[str, list[int]] = {}  # suspect word -> [capitalized, lower-case] sightings
        self._suspects: dict[str, list[_Candidate]] = {}  # every distinct suspect word learn() saw -> readings
        self._soft: dict[tuple[str, str], float] = {}  # pair -> distinct damaged words it explains (expected)
        self._soft_by_word: dict[str, dict[tuple[str, str], float]] = {}  # word -> pair -> its share of it
        self._soft_totals: dict[str, float] = {}  # substitute -> sum of its pairs' soft evidence
        self._soft_by_original: dict[str, float] = {}  # original -> sum of its pairs' soft evidence
        self._soft_stems: dict[tuple[str, str], dict[str, float]] = {}  # pair -> stem of damaged word -> share
        self._soft_originals: dict[str, set[str]] = {}  # substitute -> originals with in-word evidence
        self._originals_count: dict[str, int] = {}
        self._stale = False  # learn() gathered evidence the estimates don't include yet
        # Speed: what a text's whitespace-separated chunks hold depends on the vocabulary alone, so it is
        # worked out once per distinct chunk; learn() keeps its scan of each text for repair_text().
        self._shared = _shared_caches(freq, synonyms)
        self._chunks = self._shared.chunks
        self._scans: dict[str, _Scan] = {}
        self._candidates: dict[str, tuple[_Candidate, ...]] = {}  # in-word readings under the current pairs
        self._originals: dict[str, list[str]] = {}
        self._phrase_words: frozenset[str] | None = None  # confirmed substitutes and their inflections
        self._idiom_next: frozenset[str] | None = None
        self._excluded_pairs: frozenset[tuple[str, str]] = frozenset()

    @property
    def excluded_pairs(self) -> frozenset[tuple[str, str]]:
        """Pairs the model must not use (for held-out evaluation only)."""
        return self._excluded_pairs

    @excluded_pairs.setter
    def excluded_pairs(self, pairs: frozenset[tuple[str, str]]) -> None:
        self._excluded_pairs = frozenset(pairs)
        self._candidates.clear()
        self._originals.clear()
        self._originals_count.clear()

    # ---- loading -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, state_dir: Path | None = None) -> "RepairModel":
        model = cls(get_frequency_dict("en", "best"), *_load_tables())
        if state_dir is not None and (Path(state_dir) / PAIRS_FILE).exists():
            model._load_pairs(Path(state_dir) / PAIRS_FILE)
        return model

    def _load_pairs(self, path: Path) -> None:
        import pyarrow.parquet as pq

        for row in pq.read_table(path).to_pylist():
            self._add_pair(row["original"], row["substitute"], PairEvidence(
                set(row["examples"] or ()), int(row["occurrences"] or 0), row["status"] or "auto"))
        self._index_confirmed()

    def _add_pair(self, original: str, substitute: str, evidence: PairEvidence) -> PairEvidence:
        self.pairs[(original, substitute)] = evidence
        if not self._in_thesaurus(original, substitute) and original not in self._learned_by_substitute[substitute]:
            self._learned_by_substitute[substitute].add(original)
            self._candidates.clear()  # a new pair may explain words in new ways
            self._originals.clear()
            self._originals_count.clear()
        return evidence

    def save_pairs(self, state_dir: Path) -> None:
        """Every pair this model knows (loaded and learned) to ``state_dir/repair_pairs.parquet``."""
        _write_pairs(self._pair_rows(self.pairs), Path(state_dir))

    def learned_evidence(self) -> "pa.Table":
        """Only the evidence this model's ``learn`` calls gathered (not what it loaded), in the columns of
        ``repair_pairs.parquet``: one batch's contribution, for ``merge_pairs`` to add to the archive's."""
        return _pairs_table(self._pair_rows(self._learned))

    def _pair_rows(self, pairs: dict[tuple[str, str], PairEvidence]) -> list[dict]:
        return [
            {"original": o, "substitute": s, "distinct_words": len(e.words), "occurrences": e.occurrences,
             "in_thesaurus": self._in_thesaurus(o, s), "status": e.status, "examples": sorted(e.words)[:MAX_EXAMPLES]}
            for (o, s), e in sorted(pairs.items(), key=lambda kv: (-len(kv[1].words), kv[0]))
        ]

    # ---- lookups -------------------------------------------------------------------------------------
    def zipf(self, word: str) -> float:
        f = self._freq.get(word)
        return math.log10(f) + 9 if f else 0.0

    def originals_for(self, substitute: str) -> list[str]:
        """The words ``substitute`` may stand for (do not modify the list)."""
        if self._pure():
            originals = self._shared.originals.get(substitute)
            if originals is None:
                listed = self._synonyms.get(substitute)
                originals = _bounded(self._shared.originals)[substitute] = listed.split(",") if listed else []
            return originals
        originals = self._originals.get(substitute)
        if originals is None:
            originals = _bounded(self._originals)[substitute] = self._originals_now(substitute)
        return originals

    def _pure(self) -> bool:
        """Only the shipped thesaurus says what a substitute may stand for (what the shared caches hold)."""
        return not self._learned_by_substitute and not self._excluded_pairs

    def _originals_now(self, substitute: str) -> list[str]:
        listed = self._synonyms.get(substitute)
        out = listed.split(",") if listed else []
        for o in sorted(self._learned_by_substitute.get(substitute, ())):  # sets iterate by hash: sort
            if o not in out:
                out.append(o)
        if self.excluded_pairs:
            out = [o for o in out if (o, substitute) not in self.excluded_pairs]
        return out

    def _n_originals(self, substitute: str) -> int:
        n = self._originals_count.get(substitute)
        if n is None:
            n = self._originals_count[substitute] = len(self.originals_for(substitute))
        return n

    def _in_thesaurus(self, original: str, substitute: str) -> bool:
        listed = self._shared.listed.get(substitute)
        if listed is None:  # the thesaurus's line split once per process, not at every question
            line = self._synonyms.get(substitute)
            listed = _bounded(self._shared.listed)[substitute] = frozenset(line.split(",")) if line else frozenset()
        return original in listed

    def _bigram(self, w1: str | None, w2: str | None) -> int | None:
        if w1 is None or w2 is None:
            return None
        return self._bigrams.get(f"{w1} {w2}", 0)

    # ---- learning ------------------------------------------------------------------------------------
    def learn(self, texts: Iterable[str]) -> None:
        """Count, for each substitution pair, the distinct damaged words it explains across ``texts``."""
        for text in texts:
            scan = self._scan(text)
            if len(self._scans) >= MAX_KEPT_SCANS:
                del self._scans[next(iter(self._scans))]
            self._scans[text] = scan  # repair_text() of the same text needs it again
            if not scan.english:
                continue
            # What the corpus uses intact (see _spun_logit): each chunk's common words, as often as it stands.
            self._count_common(scan)
            self._corpus_total += scan.common_words
            # Suspect words in order of first appearance (the estimates add up in that order).
            for chunk, seen in scan.suspect_chunks:
                for _, word in _SUSPECTS(self._chunks.get(chunk) or self._chunk_info(chunk)):
                    self._learn_word(word, seen)
        self._stale = True  # estimated once before the next repair, not after every document learned

    def _learn_word(self, word: str, seen: int) -> None:
        """``seen`` sightings of the suspect ``word`` (as written) vouch for the pairs that explain it."""
        lower = word.lower()
        case = self._suspect_case.setdefault(lower, [0, 0])
        case[0 if word[:1].isupper() else 1] += seen
        if lower not in self._suspects:
            self._suspects[lower] = self._inword_candidates(lower)
        cands = [c for c in self._suspects[lower] if c.zipf >= 3.0]
        if len({c.repaired for c in cands}) > MAX_READINGS_TO_LEARN:
            return  # too many readings to vouch for any of them
        for cand in cands:
            ev = self.pairs.get((cand.original, cand.substitute)) or self._add_pair(
                cand.original, cand.substitute, PairEvidence(set()))
            ev.words.add(lower)
            ev.occurrences += seen
            mine = self._learned.get((cand.original, cand.substitute))
            if mine is None:
                mine = self._learned[(cand.original, cand.substitute)] = PairEvidence(set())
            mine.words.add(lower)
            mine.occurrences += seen

    def _count_common(self, scan: "_Scan") -> None:
        """Add the sightings of the scanned text's common words (_ChunkInfo.common) to _corpus_words."""
        commons = list(map(_COMMON, scan.infos))
        counted = self._corpus_words
        counted.update(chain.from_iterable(commons))  # once per distinct chunk, at C speed
        for common, seen in compress(zip(commons, scan.sightings), map(_MORE_THAN_ONCE, scan.sightings)):
            for word in common:  # the other sightings of the chunks that stand more than once
                counted[word] += seen - 1

    def _refresh(self) -> None:
        if self._stale:
            # sightings of each suspect word's forms across the corpus: a term recurs (pretrained, pretraining)
            self._stem_sightings = Counter()
            for word, case in self._suspect_case.items():
                self._stem_sightings[_stem(word)] += sum(case)
            self._index_confirmed()
            self._estimate_pairs()
            self._stale = False

    def _estimate_pairs(self) -> None:
        """Share each suspect word among its readings, in proportion to word frequency and to how many
        *other* suspect words the same substitution explains, and repeat (expectation-maximization): a
        spinner uses one dictionary, so the right pair gathers the evidence of all its damaged words
        (prepare -> train explains "prepareing", "prepareed", "prepareer"; prepare -> build only the first)."""
        base: dict[tuple[str, str], float] = {}
        for pair, ev in self.pairs.items():  # words persisted from earlier runs count in full
            if ev.status != "rejected":
                outside = len(ev.words.difference(self._suspects))
                if outside:
                    base[pair] = float(outside)
        usable = {w: [c for c in cands if self._usable(c, w)] for w, cands in self._suspects.items()}
        soft, by_word = dict(base), {}
        for _ in range(EM_ROUNDS):
            totals = self._substitute_totals(soft)
            new = dict(base)
            for word, cands in usable.items():
                if not cands:
                    continue
                mine = by_word.get(word, {})
                weights: dict[tuple[str, str], float] = {}
                for c in cands:
                    pair = (c.original, c.substitute)
                    prior = self._pair_prior(pair, soft, totals, mine, EM_PRIOR_POWER)
                    weights[pair] = max(weights.get(pair, 0.0), 10 ** c.zipf * prior)
                total = sum(weights.values())
                mine = by_word[word] = {pair: w / total for pair, w in weights.items()}
                for pair, share in mine.items():
                    new[pair] = new.get(pair, 0.0) + share
            soft = new
        self._soft, self._soft_by_word = soft, by_word
        by_stem: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for word, shares in by_word.items():  # forms of one word (pretrained, pretraining) count once
            stem = _stem(word)
            for pair, share in shares.items():
                kept = by_stem[pair]
                kept[stem] = max(kept.get(stem, 0.0), share)
        self._soft_stems = dict(by_stem)
        soft_originals: dict[str, set[str]] = defaultdict(set)
        for (o, sub), n in soft.items():
            if n > MIN_SWAP_EVIDENCE and self.pairs.get((o, sub), PairEvidence(set())).status != "rejected":
                soft_originals[sub].add(o)
        self._soft_originals = dict(soft_originals)
        self._soft_totals = self._substitute_totals(soft)
        by_original: dict[str, float] = defaultdict(float)
        for (o, _), n in soft.items():
            by_original[o] += n
        self._soft_by_original = dict(by_original)
        for pair, n in soft.items():  # pairs the corpus shows inside several words vouch for whole words too
            ev = self.pairs.get(pair, PairEvidence(set()))
            if n >= CONFIRMED_WORDS and ev.status != "rejected" and distinct_stems(ev.words) >= 2:
                self._confirmed_by_substitute.setdefault(pair[1], set()).add(pair[0])
        self._phrase_words = None

    @staticmethod
    def _substitute_totals(soft: dict[tuple[str, str], float]) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for (_, sub), n in soft.items():
            totals[sub] += n
        return totals

    def _pair_prior(self, pair: tuple[str, str], soft: dict, totals: dict, mine: dict, power: float = 1.0) -> float:
        """P(original | substitute) from the other suspect words: a spinner's dictionary maps each
        substitute back to one original, so the pair that explains most of them takes most of the mass."""
        sub = pair[1]
        n = max(0.0, soft.get(pair, 0.0) - mine.get(pair, 0.0))
        total = max(0.0, totals.get(sub, 0.0) - sum(v for p, v in mine.items() if p[1] == sub))
        k = max(1, self._n_originals(sub))
        return ((n + PRIOR_SMOOTHING) / (total + PRIOR_SMOOTHING * k) * k) ** power  # x k: 1 for every pair without evidence

    def _usable(self, c: "_Candidate", word: str) -> bool:
        if c.zipf < MIN_REPAIRED_ZIPF:
            return False  # a rare restored word never vouches for its pair: only proven pairs restore it
        ev = self.pairs.get((c.original, c.substitute))
        if ev is not None and ev.status == "rejected":
            return False
        if self._in_thesaurus(c.original, c.substitute) or (ev is not None and ev.status == "approved"):
            return True
        # a pair no thesaurus knows needs the corpus: two other words, not two forms of one
        return ev is not None and len({_stem(w) for w in ev.words} - {_stem(word)}) >= 2

    # ---- repairing -----------------------------------------------------------------------------------
    def repair_text(self, text: str, mode: str = "fix", min_confidence: float = 0.9,
                    language: str | None = None, whole_words: bool = True) -> tuple[str, list[Repair]]:
        """Repairs with confidence >= ``min_confidence``; applied to the text when ``mode == "fix"``."""
        if mode == "off" or not text or (language not in (None, "en", "und")):
            return text, []
        self._refresh()
        scan = self._scans.pop(text, None) or self._scan(text)
        if not scan.english:
            return text, []
        repairs: list[Repair] = []
        line_verdicts: dict[int, bool] = {}
        suspect_words = {word.lower() for chunk, _ in scan.suspect_chunks
                         for _, word in _SUSPECTS(self._chunks.get(chunk) or self._chunk_info(chunk))}
        readable = {w for w in suspect_words if self._readings(w)}
        if not readable:
            return text, []  # no in-word repair possible, so no whole-word repair either
        # A suspect with no reading is never repaired and only counts for the topic words below, where
        # it can matter only if it starts like an original word: where the others stand is moot.
        prefixes = tuple({c.original for w in readable for c in self._readings(w)})
        relevant = {w for w in suspect_words if w in readable or w.startswith(prefixes)}
        suspects = [t for t in self._suspect_tokens(text, scan, relevant) if self._line_is_english(text, t, line_verdicts)]
        lowercase_seen = {t.lower for t in suspects if not t.text[:1].isupper()}
        repeats = Counter(t.lower for t in suspects)
        doc_words = _TextWords(text, scan, repeats.keys())  # its other words (see _topic_support, _reading_features)
        evidence: list[_Reading] = []  # of each repair made
        held: list[tuple[Token, bool]] = []  # terms the text or corpus keeps using, that no other word backs
        doubtful: list[tuple[Token, Repair, _Reading, bool]] = []  # readings below min_confidence (, held)
        for tok in suspects:
            # A form seen several times and never in lower case is a name (Tastewise), not a slip.
            capitalized_only = tok.lower not in lowercase_seen and (
                self._capitalized_only(tok.lower) or repeats[tok.lower] > 1)
            r = self._repair_inword(tok, capitalized_only, repeats[tok.lower], doc_words, evidence, held)
            if r and r.confidence >= min_confidence:
                repairs.append(r)
            elif r:
                doubtful.append((tok, r, evidence.pop(), False))
        if len(repairs) == 1 and evidence[0].others < SOME_EVIDENCE and len(text.split()) >= LONE_REPAIR_MIN_WORDS:
            repairs = []
        if repairs and len({e.pair for e in evidence}) >= STRONG_DOC_REPAIRS:
            # The text shows the spinner's hand in several different substitutions: a recurring damaged word
            # here may be the spinner's habit (every "focused" became "concentrateed"), not a term of the trade...
            for tok, capitalized_only in held:
                r = self._repair_inword(tok, capitalized_only, repeats[tok.lower], doc_words, evidence, spun_text=True)
                if r:
                    doubtful.append((tok, r, evidence.pop(), True))
            # ...and a doubtful reading is judged again by what a spun text's damaged words look like (SPUN_LOGIT).
            made = [(e.word, e.pair) for e in evidence]
            for tok, r, reading, was_held in doubtful:
                support = len({pair for word, pair in made if word != reading.word})
                odds = self._spun_logit(tok, r, reading, support, was_held, repeats[tok.lower], doc_words)
                confidence = 1 / (1 + math.exp(-max(-50.0, min(50.0, odds))))
                if confidence >= min_confidence:
                    repairs.append(Repair(r.rule, r.original, r.replacement, r.offset, round(min(0.99, confidence), 3)))
            # ...and a rare word of the vocabulary ("puting", "useing") is the spinner's too where a pair the corpus
            # proves inside other words reads it confidently as a common one ("investing").
            for tok in self._suspect_tokens(text, scan, rare=True):
                if self._line_is_english(text, tok, line_verdicts):
                    reading: list[_Reading] = []
                    r = self._repair_inword(tok, False, 1, doc_words, reading, spun_text=True)
                    if r and r.confidence >= min_confidence and self._proven(reading[0].pair, tok.lower):
                        repairs.append(r)
            repairs.sort(key=lambda r: r.offset)
        if repairs and whole_words:  # the document shows the spinner's hand: whole words are worth a look too
            repaired_at = {r.offset for r in repairs}
            heavily_spun = len(repairs) >= STRONG_DOC_REPAIRS
            words = _TOKEN.findall(text)
            doc_counts = Counter(map(str.lower, words))
            for tok in self._phrase_suspects(text, words, doc_counts, heavily_spun):
                if tok.start not in repaired_at and not tok.skip:
                    r = self._repair_phrase(tok, heavily_spun, doc_counts, len(repaired_at))
                    if r and r.confidence >= min_confidence:
                        repairs.append(r)
            repairs.sort(key=lambda r: r.offset)
        if mode != "fix" or not repairs:
            return text, repairs
        parts, pos = [], 0
        for r in repairs:
            parts.append(text[pos : r.offset])
            parts.append(r.replacement)
            pos = r.offset + len(r.original)
        parts.append(text[pos:])
        return "".join(parts), repairs

    # ---- scanning: what a text holds, at the speed of str.split and set operations ---------------------
    def _scan(self, text: str) -> "_Scan":
        """Is the text English, and which of its chunks hold a word that may be spinner damage."""
        # Distinct chunks in the order each is first seen (Counter keeps it); str.split and \S agree on
        # whitespace, so these are the chunks of _CHUNK.
        counts = Counter(text.split())
        infos = self._chunk_infos(counts)
        tokens, prose, known, english, foreign, common = _unpack(sum(map(mul, counts.values(), map(_COUNTS, infos))))
        suspect_chunks = tuple(compress(counts.items(), map(_SUSPECTS, infos)))
        return _Scan(_looks_english(prose, known, english, foreign), infos, tuple(counts.values()), suspect_chunks,
                     common, tokens)

    def _rare_chunks(self, text: str, scan: "_Scan") -> tuple[tuple[str, int], ...]:
        """(chunk, sightings) of the chunks that hold a rare word (_ChunkInfo.rare), in order of first appearance:
        asked for in heavily spun texts only, so not worked out by every scan."""
        if not any(map(_RARE, scan.infos)):
            return ()
        counts = Counter(text.split())
        return tuple(compress(counts.items(), map(_RARE, self._chunk_infos(counts))))

    def _chunk_infos(self, chunks: Counter) -> tuple["_ChunkInfo", ...]:
        """The analysis of each of the distinct ``chunks``."""
        known = self._chunks
        infos = list(map(known.get, chunks))  # one look-up per chunk (the table is large: each costs)
        if None not in infos:
            return tuple(infos)
        new = list(compress(chunks, map(not_, infos)))  # an analysis is a non-empty tuple
        shared = self._shared
        if len(known) + len(new) > MAX_KEPT_CHUNKS:
            shared.retire_chunks()
        analysed = {}
        if shared.retired_chunks:  # what the table held before it was last emptied: the chunks in use come back
            kept = list(map(shared.retired_chunks.get, new))
            if any(kept):
                analysed.update(compress(zip(new, kept), kept))
                new = list(compress(new, map(not_, kept)))
        plain = list(compress(new, map(str.isascii, new)))
        plain = list(compress(plain, map(str.isalpha, plain)))  # one ASCII word: most new chunks
        analysed.update(zip(plain, self._word_infos(plain)))
        if len(plain) < len(new):
            self._punctuated_infos(list(compress(new, map(not_, map(analysed.__contains__, new)))), analysed)
        known.update(analysed)
        return tuple([analysed[chunk] if info is None else info for chunk, info in zip(chunks, infos)])

    def _punctuated_infos(self, chunks: list[str], analysed: dict[str, "_ChunkInfo"]) -> None:
        """_chunk_info of each of ``chunks`` (none of them one plain word) into ``analysed``, the words that
        stand in plain punctuation ("(word),") worked out together, with their analysis kept for later."""
        known = self._chunks
        cores = list(map(str.strip, chunks, repeat(_EDGE_PUNCTUATION)))
        is_word = list(map(and_, map(str.isalpha, cores), map(str.isascii, cores)))
        missing = [core for core in dict.fromkeys(compress(cores, is_word)) if core not in analysed and core not in known]
        core_infos = dict(zip(missing, self._word_infos(missing)))
        for chunk, core, word in zip(chunks, cores, is_word):
            if not word:
                analysed[chunk] = self._mixed_chunk_info(chunk)
                continue
            info = known.get(core) or analysed.get(core) or core_infos[core]
            if info[1] or info[4]:  # suspects or rare words: their offsets shift past the leading punctuation
                offset = chunk.index(core)
                if offset:
                    counts, suspects, non_prose, words, rare, common = info
                    info = (counts, tuple((o + offset, w) for o, w in suspects), non_prose, words,
                            tuple((o + offset, w) for o, w in rare), common)
            analysed[chunk] = info
        analysed.update(core_infos)  # kept like any chunk's: the bare word stands elsewhere too

    def _chunk_info(self, chunk: str) -> "_ChunkInfo":
        if chunk.isalpha() and chunk.isascii():  # most chunks are one plain word...
            return self._word_info(chunk)
        core = chunk.strip(_EDGE_PUNCTUATION)
        if core.isalpha() and core.isascii():
            # ...or one plain word in punctuation that neither makes it non-prose nor joins a token ("(word),"):
            # the word's analysis, its offsets shifted past the leading punctuation.
            info = self._chunks.get(core) or _bounded(self._chunks).setdefault(core, self._word_info(core))
            offset = chunk.index(core)
            counts, suspects, non_prose, words, rare, common = info
            if offset and (suspects or rare):
                info = (counts, tuple((o + offset, w) for o, w in suspects), non_prose, words,
                        tuple((o + offset, w) for o, w in rare), common)
            return info
        return self._mixed_chunk_info(chunk)

    def _word_info(self, word: str) -> "_ChunkInfo":
        """_mixed_chunk_info of a chunk that is one ASCII word, without the tokenizer."""
        return self._word_infos((word,))[0]

    def _word_infos(self, chunks: Iterable[str]) -> list["_ChunkInfo"]:
        """_word_info of each of ``chunks``, with the tables at hand (this runs for most new chunks)."""
        repairable, freq = self._shared.repairable(), self._freq
        every_word = self._shared.every_word_repairable  # then one look-up tells frequency and repairability
        log10, inner_capital = math.log10, _INNER_CAPITAL.search
        out = []
        for word in chunks:
            lower = word.lower()
            words = (lower,) if len(word) >= 3 else ()
            f = freq.get(lower)
            common = words if words and (f is not None if every_word else lower in repairable) else ()
            if not (word.islower() or word.istitle() or word.isupper()) and inner_capital(word):
                out.append((_WORD_COUNTS[8 * len(common)], (), False, words, (), common))  # iPhone: a name
                continue
            zipf = log10(f) + 9 if f else 0.0
            suspects = rare = ()
            if zipf < RARE_SUSPECT_ZIPF and len(word) >= MIN_TOKEN_LEN and not word.isupper():
                if zipf < UNKNOWN_ZIPF:
                    suspects = ((0, word),)
                else:
                    rare = ((0, word),)
            out.append((_WORD_COUNTS[(zipf >= 3.0) | (lower in FUNCTION_WORDS) << 1 | (lower in _FOREIGN_FUNCTION_WORDS) << 2
                                     | len(common) << 3 | 16], suspects, False, words, rare, common))
        return out

    def _mixed_chunk_info(self, chunk: str) -> "_ChunkInfo":
        if _NOT_PROSE.search(chunk) or not chunk.isascii():  # a URL, number, code...: no prose tokens
            tokens = _TOKEN.findall(chunk)
            words = _topic_words(tokens)
            common = self._common_words(words)
            info = (_pack(len(tokens), 0, 0, 0, 0, len(common)), (), True, words, (), common)
        else:
            tokens = prose = known = english = foreign = 0
            suspects, rare = [], []
            freq = self._freq
            words = []
            # Most chunks are one plain word: no need to run the tokenizer on them.
            found = [(0, chunk)] if chunk.isalpha() else [(m.start(), m.group()) for m in _TOKEN.finditer(chunk)]
            for offset, word in found:
                tokens += 1
                words.append(word)
                if _INNER_CAPITAL.search(word):
                    continue  # iPhone, McDonald: a name
                prose += 1
                lower = word.lower()
                f = freq.get(lower)
                zipf = math.log10(f) + 9 if f else 0.0  # self.zipf(lower), inlined: runs for every new chunk
                known += zipf >= 3.0
                english += lower in FUNCTION_WORDS
                foreign += lower in _FOREIGN_FUNCTION_WORDS
                if len(word) >= MIN_TOKEN_LEN and word.isalpha() and not word.isupper() and zipf < RARE_SUSPECT_ZIPF:
                    (suspects if zipf < UNKNOWN_ZIPF else rare).append((offset, word))
            words = _topic_words(words)
            common = self._common_words(words)
            info = (_pack(tokens, prose, known, english, foreign, len(common)), tuple(suspects), False, words,
                    tuple(rare), common)
        return info

    def _common_words(self, words: tuple[str, ...]) -> tuple[str, ...]:
        """Those of ``words`` common enough to be restored (what _corpus_words counts)."""
        common = tuple(filter(self._shared.repairable().__contains__, words))
        return words if len(common) == len(words) else common

    def _suspect_tokens(self, text: str, scan: "_Scan", only: set[str] | None = None, rare: bool = False) -> list[Token]:
        """Every sighting of a suspect word (of the words ``only``, in lower case), in text order; of a rare
        word (_ChunkInfo.rare) if ``rare``."""
        found = []
        n = len(text)
        for chunk, seen in (self._rare_chunks(text, scan) if rare else scan.suspect_chunks):
            info = self._chunks.get(chunk) or self._chunk_info(chunk)
            suspects = _RARE(info) if rare else _SUSPECTS(info)
            if only is not None:
                suspects = [(offset, word) for offset, word in suspects if word.lower() in only]
                if not suspects:
                    continue
            size = len(chunk)
            pos = text.find(chunk)
            while seen:  # the scan counted the sightings: no search past the last one
                end = pos + size
                if (pos == 0 or text[pos - 1].isspace()) and (end == n or text[end].isspace()):
                    found.extend((pos + offset, word) for offset, word in suspects)
                    seen -= 1
                    pos = text.find(chunk, end)
                else:
                    pos = text.find(chunk, pos + 1)
        found.sort()
        return [_token_at(text, start, word, False) for start, word in found]

    def _phrase_suspects(self, text: str, words: list[str], doc_counts: Counter, heavily_spun: bool) -> list[Token]:
        """The tokens _repair_phrase could repair at all, in text order: substitutes the corpus confirmed (and
        their inflections), an adjective between a determiner and "for"/"to" ("the necessary for"), and in a
        heavily spun text a verb before a word that one of its synonyms forms a top collocation with."""
        starts: dict[int, str] = {}
        confirmed = doc_counts.keys() & self._confirmed_phrase_words()
        if not heavily_spun:
            confirmed -= FUNCTION_WORDS
        idiom_next = doc_counts.keys() & self._idiom_next_words() if heavily_spun else set()
        if confirmed or idiom_next:
            wanted = confirmed | idiom_next
            forms = list(set(words))
            for form in compress(forms, map(wanted.__contains__, map(str.lower, forms))):  # need, Need, NEED
                lower = form.lower()
                for start in _token_starts(text, form):
                    if lower in confirmed:
                        starts[start] = form
                    if lower in idiom_next and start >= 2 and text[start - 1] == " " and text[start - 2] in _ASCII_LETTERS:
                        verb = _last_token_before(text, start - 1)
                        if verb.lower() in self._verbs:
                            starts[start - 1 - len(verb)] = verb
        for m in _NOUN_SLOT.finditer(text):
            if m.group(1).lower() in self._adjectives:
                starts[m.start(1)] = m.group(1)
        tokens = []
        for start, word in sorted(starts.items()):
            chunk = _chunk_around(text, start, start + len(word))
            non_prose = _NON_PROSE(self._chunks.get(chunk) or self._chunk_info(chunk))
            tokens.append(_token_at(text, start, word, non_prose or bool(_INNER_CAPITAL.search(word))))
        return tokens

    def _idiom_next_words(self) -> frozenset[str]:
        """Words after which some verb forms one of the strongest collocations ("make sense")."""
        if self._idiom_next is None:
            self._idiom_next = _idiom_next_words(self._bigrams, self._verbs)
        return self._idiom_next

    def _confirmed_phrase_words(self) -> frozenset[str]:
        if self._phrase_words is None:
            confirmed = self._confirmed_by_substitute
            self._phrase_words = frozenset(confirmed).union(
                (s + e for s in confirmed for e in _INFLECTIONS), self._soft_originals,
                (s + e for s in self._soft_originals for e in _INFLECTIONS))
        return self._phrase_words

    def _line_is_english(self, text: str, tok: Token, verdicts: dict[int, bool]) -> bool:
        """A line in another language inside an English text (a quote, a caption) is left alone."""
        start = text.rfind("\n", 0, tok.start) + 1
        if start not in verdicts:
            end = text.find("\n", tok.end)
            end = len(text) if end < 0 else end
            counts = Counter(text[start:end].split())
            tokens, prose, known, english, foreign, _ = _unpack(
                sum(map(mul, counts.values(), map(_COUNTS, self._chunk_infos(counts)))))
            verdicts[start] = tokens < 6 or _looks_english(prose, known, english, foreign)
        return verdicts[start]

    def _readings(self, word: str) -> tuple["_Candidate", ...]:
        """In-word readings of ``word`` under the pairs known now (kept until the pairs change)."""
        cands = self._candidates.get(word)
        if cands is None:
            cands = _bounded(self._candidates)[word] = self._inword_candidates(word)
        return cands

    def _inword_candidates(self, word: str) -> tuple["_Candidate", ...]:
        """Every prefix + X + suffix reading of ``word`` where prefix + Y + suffix is a common word, Y -> X."""
        pure = self._pure()
        if pure and word in self._shared.readings:
            return self._shared.readings[word]
        out = []
        n = len(word)
        synonyms, learned, repairable = self._synonyms, self._learned_by_substitute, self._shared.repairable()
        for i in range(n):
            for j in range(i + MIN_SUBSTITUTE_LEN, n + 1):
                if i == 0 and j == n:
                    continue
                substitute = word[i:j]
                if substitute not in synonyms and substitute not in learned:
                    continue
                prefix, suffix = word[:i], word[j:]
                # prefix + original + suffix for every original (a substitute may have hundreds): a comprehension
                # with an f-string builds and tests them faster than map() over str.__add__ does
                for original, repaired in [(o, r) for o in self.originals_for(substitute)
                                           if (r := f"{prefix}{o}{suffix}") in repairable]:
                    if original in substitute or substitute in original:
                        continue  # works for work, aching for ache: a spinner swaps for another word
                    out.append(_Candidate(repaired, original, substitute, self.zipf(repaired)))
        out = tuple(out)
        if pure:
            _bounded(self._shared.readings)[word] = out
        return out

    def _word_doubt(self, word: str) -> tuple[bool, bool]:
        """(a typo of a word, a regular coinage): fixed by the vocabulary, so worked out once per word."""
        doubt = self._shared.word_doubts.get(word)
        if doubt is None:
            doubt = _bounded(self._shared.word_doubts)[word] = (self._one_edit_from_word(word), self._word_formed(word))
        return doubt

    def _one_edit_from_word(self, word: str) -> bool:
        letters = "abcdefghijklmnopqrstuvwxyz"
        splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
        edits = (
            [a + b[1:] for a, b in splits if b]
            + [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
            + [a + c + b[1:] for a, b in splits if b for c in letters]
            + [a + c + b for a, b in splits for c in letters]
        )
        # Only the edits that are words at all need their Zipf frequency worked out.
        freq = self._freq
        return any(math.log10(f) + 9 >= 3.0 for f in filter(None, map(freq.get, filter(word.__ne__, edits))))

    def _word_formed(self, word: str) -> bool:
        """Prefix + word, word + word, or word + suffix: how English makes new words."""
        for i in range(2, len(word) - 1):
            head, tail = word[:i], word[i:]
            head_word = (len(head) >= 4 and self.zipf(head) >= 3.0) or (len(head) == 3 and self.zipf(head) >= 4.5)
            if (head_word or head in _PREFIXES) and len(tail) >= (4 if len(head) == 3 else 3) and self.zipf(tail) >= 3.0:
                return True
            if head_word and tail in _SUFFIXES:
                return True
        return False

    def _capitalized_only(self, word: str) -> bool:
        seen = self._suspect_case.get(word)
        return seen is not None and seen[0] >= 2 and seen[1] == 0

    def _evidence(self, cand: "_Candidate", word: str) -> tuple[float, int, str]:
        """(expected number of other suspect words the pair explains, other words that vouched for it
        outright, review status)."""
        pair = (cand.original, cand.substitute)
        ev = self.pairs.get(pair)
        hard = len({_stem(w) for w in ev.words} - {_stem(word)}) if ev is not None else 0
        if word in self._soft_by_word or not self._suspects:
            soft = self._soft.get(pair, 0.0) - self._soft_by_word.get(word, {}).get(pair, 0.0)
        else:  # a word learn() never saw: everything the corpus showed is other words' evidence
            soft = self._soft.get(pair, 0.0)
        if not self._suspects:  # nothing learned in this run: the persisted words are the evidence
            soft = float(hard)
        return max(0.0, soft), hard, ev.status if ev is not None else "auto"

    def _proven(self, pair: tuple[str, str], word: str) -> bool:
        """The corpus shows ``pair`` inside PROVEN_EVIDENCE (expected) damaged words of other stems."""
        stems = self._soft_stems.get(pair)
        if not stems:
            return False
        own = _stem(word)
        return sum(v for stem, v in stems.items() if stem != own) >= PROVEN_EVIDENCE

    def _repair_inword(self, tok: Token, capitalized_only: bool = False, repeats: int = 1,
                       doc_words: list[str] = (), evidence: list["_Reading"] | None = None,
                       held: list[tuple[Token, bool]] | None = None, spun_text: bool = False) -> Repair | None:
        """The most probable restored word; confidence is its share of the probability among readings
        (a softmax of READING_LOGIT), scaled by how plausible a spinner repair it is at all."""
        scores: dict[str, float] = {}  # restored word -> log-odds of its best reading (READING_LOGIT)
        best: tuple[float, _Candidate, float, int, str] | None = None
        for c in self._readings(tok.lower):
            others, vouched, status = self._evidence(c, tok.lower)
            if status == "rejected":
                continue
            if not self._in_thesaurus(c.original, c.substitute) and status != "approved" and vouched < 2:
                continue  # a pair no thesaurus knows needs the corpus to vouch for it
            if c.zipf < MIN_REPAIRED_ZIPF and not self._proven((c.original, c.substitute), tok.lower):
                continue
            score = sum(map(mul, self._reading_features(c, tok, others, doc_words), READING_LOGIT))
            score += APPROVED_BONUS if status == "approved" else 0.0
            if score > scores.get(c.repaired, -math.inf):
                scores[c.repaired] = score
                if best is None or score > best[0]:
                    best = (score, c, others, vouched, status)
        if best is None:
            return None
        score, cand, others, vouched, status = best
        if not spun_text and self._unbacked_term(tok.lower, cand, others, vouched, status, repeats):
            if held is not None:
                held.append((tok, capitalized_only))
            return None
        share = 1.0 / sum(math.exp(max(-50.0, s - score)) for s in scores.values())
        topic = _topic_support(cand, doc_words)
        plausibility = 0.93
        plausibility += 0.05 if cand.zipf >= 3.5 else 0.0
        plausibility += 0.03 if len(cand.substitute) >= 4 else 0.0
        plausibility += 0.05 if others >= SOME_EVIDENCE else 0.0
        if tok.text[:1].isupper() and (not tok.sentence_start or capitalized_only):
            # A name more likely than a damaged word, unless the substitution shows in many other words.
            plausibility -= 0.2 if others < 2 else 0.1 if others < STRONG_EVIDENCE else 0.04
        elif tok.text[:1].isupper() and others < SOME_EVIDENCE:
            plausibility -= 0.12  # a capital at a line's start is a name or a heading as often as not
        # Evidence from other damaged words softens these doubts but never quite removes them.
        doubt = 0.15 if others < 2 else 0.05 if others < STRONG_EVIDENCE else 0.0
        if topic >= 1.0 + 2 * TOPIC_WEIGHT and not tok.text[:1].isupper():
            doubt = min(doubt, TOPIC_DOUBT)  # the original stands intact in the same text: no coinage
        typo, coinage = self._word_doubt(tok.lower)
        if typo:
            plausibility -= doubt  # a typo ("localy", "ppointment"); a spinner's damage is many edits away
        if coinage:
            plausibility -= doubt  # a regular coinage (stockouts, upcharged, explainability), not a slip
        if repeats >= 3:
            # A term the text keeps using (rustc, ebuild) more likely than a slip.
            plausibility -= (0.1 if others < STRONG_EVIDENCE else 0.04) + (0.1 if repeats >= 6 else 0.0)
        conf = max(0.0, min(0.99, share * plausibility))
        if evidence is not None:
            # other damaged words showing this substitution (see LONE_REPAIR_MIN_WORDS)
            evidence.append(_Reading(others, (cand.original, cand.substitute), cand, tok.lower, share))
        return Repair("spinner_inword", tok.text, _match_case(cand.repaired, tok.text), tok.start, round(conf, 3))

    def _reading_features(self, c: "_Candidate", tok: Token, others: float, doc_words: list[str]) -> tuple[float, ...]:
        """What tells the right reading of a damaged word from the others (see READING_LOGIT): the restored
        word's frequency, its fit with the neighbours, how much more often than usual the text and the corpus
        use it intact (a text keeps to its topic: "plants" in a gardening text), the pair's evidence in other
        damaged words, the substitute's length, the original's frequency, and the evidence that the spinner swaps
        the original for another substitute (its dictionary has one substitute per word)."""
        f_repaired = self._freq.get(c.repaired, 1e-9)
        text_words = doc_words if isinstance(doc_words, _TextWords) else _NO_TEXT_WORDS
        return (c.zipf, math.log(self._neighbour_fit(c, tok)),
                math.log((text_words.count(c.repaired) + 0.1) / (text_words.tokens * f_repaired + 0.1)),
                math.log((self._corpus_words.get(c.repaired, 0) + 0.5) / (self._corpus_total * f_repaired + 0.5)),
                math.log(others + 0.1), float(len(c.substitute)), self.zipf(c.original),
                math.log(max(0.0, self._soft_by_original.get(c.original, 0.0) - self._soft.get((c.original, c.substitute), 0.0)) + 0.1))

    def _spun_features(self, tok: Token, r: Repair, reading: "_Reading", support: int, held: bool,
                       repeats: int, doc_words: list[str]) -> list[float]:
        """What tells a damaged word from a name or a term in a heavily spun text (see SPUN_LOGIT)."""
        c = reading.candidate
        own = _stem(reading.word)
        proven = sum(v for stem, v in self._soft_stems.get(reading.pair, {}).items() if stem != own)
        typo, coinage = self._word_doubt(reading.word)
        capital = tok.text[:1].isupper()
        return [math.log(r.confidence + 1e-3), math.log(proven + 0.1), math.log(reading.others + 0.1),
                math.log(1 + support), float(capital and not tok.sentence_start), float(capital and tok.sentence_start),
                float(typo), float(coinage), math.log(max(1, repeats)), c.zipf,
                math.log(max(1, len({x.repaired for x in self._readings(reading.word)}))),
                float(len(c.substitute) >= 4), float(held), math.log(1 + self._corpus_words.get(c.repaired, 0)),
                math.log(1 + sum(self._suspect_case.get(reading.word, (0, 0)))),
                math.log((self._soft.get(reading.pair, 0.0) + 0.1) / (self._soft_totals.get(reading.pair[1], 0.0) + 0.1)),
                math.log(_topic_support(c, doc_words)), math.log(self._neighbour_fit(c, tok)),
                math.log(1 + self._corpus_words.get(reading.pair[0], 0)),
                math.log(reading.share), *self._reading_features(c, tok, reading.others, doc_words)[2:4],
                math.log(1 + getattr(doc_words, "tokens", 0))]

    def _spun_logit(self, tok: Token, r: Repair, reading: "_Reading", support: int, held: bool, repeats: int,
                    doc_words: list[str]) -> float:
        """Log-odds that a doubtful in-word reading in a heavily spun text is the spinner's damage."""
        features = self._spun_features(tok, r, reading, support, held, repeats, doc_words)
        return sum(map(mul, features, SPUN_LOGIT[:-1])) + SPUN_LOGIT[-1]

    def _unbacked_term(self, word: str, cand: "_Candidate", others: float, vouched: int, status: str,
                       repeats: int) -> bool:
        """A term the text or the corpus keeps using (ebuild, mintty) that no other damaged word backs."""
        if vouched >= 2 or status == "approved":
            return False
        return repeats >= 3 or self._stem_sightings.get(_stem(word), 0) >= 4

    def _neighbour_fit(self, cand: "_Candidate", tok: Token) -> float:
        """P(neighbours | restored word) from word-pair counts, relative to a word with no known pairs: the
        pair table only keeps common pairs, so a missing pair counts as the table's floor."""
        fit = 1.0
        expected = 10 ** cand.zipf * BIGRAM_CORPUS_TOKENS
        if not tok.text[:1].isupper() or tok.sentence_start:  # a mid-sentence capital has no pair counts
            for pair in (self._bigram(_contextual(tok.prev), cand.repaired), self._bigram(cand.repaired, _contextual(tok.next))):
                if pair is not None:
                    fit *= min(NEIGHBOUR_FIT_CAP, max(pair, BIGRAM_FLOOR) / max(expected, BIGRAM_FLOOR) / NEIGHBOUR_FIT_BASE)
        return fit

    def _repair_phrase(self, tok: Token, heavily_spun: bool, doc_counts: Counter | None = None,
                       inword_repairs: int = 0) -> Repair | None:
        word = tok.lower
        if tok.text[:1].isupper() and not tok.sentence_start:
            return None  # a capital mid-sentence is a name or a title
        prev, nxt = _contextual(tok.prev), _contextual(tok.next)
        # Only a heavily spun text: a text with one or two in-word repairs is as often a clean text with a
        # technical word the thesaurus happens to explain (hashable -> "workable": then hash -> "work").
        by_logit = self._repair_learned_swap(tok, prev, nxt, doc_counts, inword_repairs) if heavily_spun else None
        if word in FUNCTION_WORDS:
            # the rules never swap a function word back; the spinner's "every" for "all", learned inside
            # other words ("geveryotti"), only where the swap model is sure
            return by_logit
        by_rules = self._repair_phrase_by_rules(tok, prev, nxt, heavily_spun, doc_counts, confirmed_swaps=not heavily_spun)
        if by_logit is None or (by_rules is not None and by_rules.confidence >= by_logit.confidence):
            return by_rules
        return by_logit

    def _repair_learned_swap(self, tok: Token, prev: str | None, nxt: str | None, doc_counts: Counter | None,
                             inword_repairs: int) -> Repair | None:
        """The most likely original among those the in-word evidence learned for this substitute, with the
        probability (see SWAP_FEATURES) that the spinner put the word seen in its place."""
        if doc_counts is None:
            return None
        word = tok.lower
        readings = [(word, "")] + [(word[: -len(e)], e) for e in _INFLECTIONS
                                   if word.endswith(e) and len(word) - len(e) >= 3]
        best = None
        for substitute, ending in readings:  # "divides" for "parts" when part -> divide is learned
            for original in sorted(self._soft_originals.get(substitute, ())):  # sorted: ties go one way
                if (original in FUNCTION_WORDS and not self._confirmed(original, substitute)) or \
                        self.zipf(original + ending) < 3.0:
                    continue
                logit = self._learned_swap_logit(word, original + ending, prev, nxt, doc_counts, inword_repairs,
                                                 (original, substitute))
                if best is None or logit > best[0]:
                    best = (logit, original + ending)
        if best is None:
            return None
        confidence = 1 / (1 + math.exp(-min(50.0, max(-50.0, best[0]))))
        return Repair("spinner_phrase", tok.text, _match_case(best[1], tok.text), tok.start, round(min(0.99, confidence), 3))

    def _learned_swap_logit(self, word: str, original: str, prev: str | None, nxt: str | None,
                            doc_counts: Counter, inword_repairs: int, pair: tuple[str, str] | None = None) -> float:
        features = self._learned_swap_features(word, original, prev, nxt, doc_counts, inword_repairs, pair)
        return _swap_logit([features[name] for name in SWAP_FEATURES])

    def _learned_swap_features(self, word: str, original: str, prev: str | None, nxt: str | None,
                               doc_counts: Counter, inword_repairs: int, pair: tuple[str, str] | None = None
                               ) -> dict[str, float]:
        """The features the whole-word swap model weighs (by name, see SWAP_FEATURES)."""
        pair = pair or (original, word)
        evidence = self._soft.get(pair, 0.0)
        left_seen, right_seen = self._bigram(prev, word) or 0, self._bigram(word, nxt) or 0
        left = math.log(max(self._bigram(prev, original) or 0, BIGRAM_FLOOR) / max(left_seen, BIGRAM_FLOOR)) if prev else 0.0
        right = math.log(max(self._bigram(original, nxt) or 0, BIGRAM_FLOOR) / max(right_seen, BIGRAM_FLOOR)) if nxt else 0.0
        return {
            "left": left, "right": right, "left_seen": float(left_seen > 0), "right_seen": float(right_seen > 0),
            "unigram": math.log(self._freq.get(original, 1e-9) / self._freq.get(word, 1e-9)),
            "text_counts": math.log((doc_counts[original] + 1) / max(1, doc_counts[word])),
            "evidence": math.log(min(EVIDENCE_CAP, evidence) + 0.1),
            "evidence_share": math.log((evidence + 0.1) / (self._soft_totals.get(pair[1], 0.0) + 0.1)),
            "originals": math.log(max(1, self._n_originals(pair[1]))),
            "inword_repairs": math.log(max(1, inword_repairs)),
            # the spinner's dictionary has one substitute per word: evidence that it swaps the original for another
            "rival": math.log(max(0.0, self._soft_by_original.get(pair[0], 0.0) - evidence) + 0.1),
            # a substitute the spinner puts in many places stands in the corpus more often than its frequency says
            "word_lift": self._corpus_lift(word), "original_lift": self._corpus_lift(original),
        }

    def _corpus_lift(self, word: str) -> float:
        """log(sightings of ``word`` intact in the corpus learned / what its frequency predicts)."""
        return math.log((self._corpus_words.get(word, 0) + 0.5) / (self._corpus_total * self._freq.get(word, 1e-9) + 0.5))

    def _repair_phrase_by_rules(self, tok: Token, prev: str | None, nxt: str | None, heavily_spun: bool,
                                doc_counts: Counter | None, confirmed_swaps: bool = True) -> Repair | None:
        """The noun-slot and idiom rules, and (``confirmed_swaps``) the odds of a swap the corpus confirmed
        (in a heavily spun text the swap model judges those: it tells swaps from genuine uses better)."""
        word = tok.lower
        # Cheap gates first: only three situations are ever repaired (see PhraseEvidence.confidence).
        noun_slot = prev in _DETERMINERS and nxt in _NOUN_COMPLEMENTS and word in self._adjectives
        idiom = heavily_spun and prev is not None and nxt is not None and nxt not in FUNCTION_WORDS \
            and word in self._verbs and self._bigram(word, nxt) == 0
        confirmed = (self._confirmed_by_substitute.get(word, ()) or self._confirmed_inflected(word)) if confirmed_swaps else ()
        if not (noun_slot or idiom or confirmed):
            return None
        # Sorted: a tie between originals must go the same way in every process (set order follows hashes).
        originals = self.originals_for(word) if (noun_slot or idiom) else sorted(confirmed)
        best: PhraseEvidence | None = None
        rivals = 0.0  # the swap odds of every confirmed original: "whatever" may stand for "any" or "some"
        for original in originals:
            if (original in FUNCTION_WORDS and original not in confirmed) or self.zipf(original) < 3.0:
                continue  # a function word is only restored where the corpus shows the spinner swapping it
            if original not in confirmed and not (noun_slot and original in self._nouns) and not (
                    idiom and original in self._verbs and self._bigrams.get(f"{original} {nxt}", 0) >= IDIOM_MIN_COUNT):
                continue  # could be neither a noun in the slot nor the idiom's verb: no evidence can make it fit
            ev = self._phrase_evidence(word, prev, nxt, original, noun_slot, idiom, original in confirmed, heavily_spun,
                                       doc_counts)
            if ev.confirmed:
                rivals += math.exp(min(ev.swap_odds, 50.0))
            if ev.confidence > 0 and (best is None or (ev.confidence, ev.swap_odds) > (best.confidence, best.swap_odds)):
                best = ev
        if best is None:
            return None
        confidence = best.confidence
        if best.confirmed and not (best.noun_slot or best.idiom) and rivals:
            confidence *= math.exp(min(best.swap_odds, 50.0)) / rivals
        return Repair("spinner_phrase", tok.text, _match_case(best.original, tok.text), tok.start,
                      round(confidence, 3))

    def _confirmed_inflected(self, word: str) -> set[str]:
        """A confirmed swap under an ending: "sacks" for "cans" when can -> sack is confirmed."""
        if len(word) < 5:
            return set()
        out = set()
        for ending in _INFLECTIONS:
            if word.endswith(ending) and len(word) - len(ending) >= 3:
                for original in self._confirmed_by_substitute.get(word[: -len(ending)], ()):
                    inflected = original + ending
                    if original not in FUNCTION_WORDS and self.zipf(inflected) >= 3.0:
                        out.add(inflected)
        return out

    def _phrase_evidence(self, word: str, prev: str | None, nxt: str | None, original: str,
                         noun_slot: bool, idiom: bool, confirmed: bool, heavily_spun: bool = False,
                         doc_counts: Counter | None = None) -> "PhraseEvidence":
        """How much better ``original`` fits between the neighbours than the word seen, from word pairs."""
        right_seen, right_orig = self._bigram(word, nxt), self._bigram(original, nxt)
        left_seen, left_orig = self._bigram(prev, word), self._bigram(prev, original)
        left = math.log(max(left_orig, BIGRAM_FLOOR) / max(left_seen, BIGRAM_FLOOR)) if prev else 0.0
        right = math.log(max(right_orig, BIGRAM_FLOOR) / max(right_seen, BIGRAM_FLOOR)) if nxt else 0.0
        unigram = math.log(self._freq.get(original, 1e-9) / self._freq.get(word, 1e-9))
        score = left + right - (unigram if prev and nxt else 0.0)
        share = 1.0
        if confirmed and self._soft:  # how much of the substitute's in-word evidence this original has
            rivals = self._confirmed_by_substitute.get(word, ())
            total = sum(self._soft.get((o, word), 0.0) for o in sorted(rivals))
            share = (self._soft.get((original, word), 0.0) + 0.1) / (total + 0.1 * len(rivals)) if total else 1.0
        # Only a heavily spun text lends the spin rate as prior odds; elsewhere a swap must be near certain.
        # The text's own counts: a spun "determine" among twenty intact "see"s is likely, among five other
        # "determine"s and no "see" it is not (the spinner swaps only a share of the original's uses).
        if doc_counts is not None:
            prior = math.log((doc_counts[original] + 1) / max(1, doc_counts[word]))
        else:
            prior = unigram
        swap_odds = left + right + prior + math.log(SPIN_RATE if heavily_spun else SPIN_RATE / 100) + math.log(share)
        return PhraseEvidence(
            original, score, left, right, unigram, swap_odds,
            confirmed=confirmed,
            noun_slot=noun_slot and original in self._nouns and bool(left_orig) and bool(right_orig),
            idiom=idiom and original in self._verbs and right_seen == 0 and (right_orig or 0) >= IDIOM_MIN_COUNT and left >= 2.5,
        )

    def _confirmed(self, original: str, substitute: str) -> bool:
        return original in self._confirmed_by_substitute.get(substitute, ())

    def _index_confirmed(self) -> None:
        """Pairs the corpus shows inside several different words (or that a person approved)."""
        index: dict[str, set[str]] = defaultdict(set)
        for (o, sub), ev in self.pairs.items():
            if ev.status == "approved" or (ev.status != "rejected" and distinct_stems(ev.words) >= 2):
                index[sub].add(o)
        self._confirmed_by_substitute = index
        self._phrase_words = None


@dataclass(frozen=True, slots=True)
class PhraseEvidence:
    original: str
    score: float  # log-odds from word pairs that the original stood here
    left: float
    right: float
    unigram: float  # log(frequency of the original / frequency of the word seen)
    swap_odds: float  # log-odds that a spinner put the word seen in the original's place here
    confirmed: bool  # the corpus shows this substitution inside other words
    noun_slot: bool  # "the necessary for": an adjective alone where a noun must stand
    idiom: bool  # "build sense": the pair never occurs, the original's is a top collocation

    @property
    def confidence(self) -> float:
        if self.left < 0 or self.right < 0:
            return 0.0  # a neighbour prefers the word as it stands
        if self.noun_slot:  # grammar rules the adjective out, so its own frequency is no argument for it
            return 0.95
        if self.idiom:
            return 0.92
        if self.confirmed:
            # Prior odds that a spinner swapped the original here (its swap rate x how much commoner the
            # original is) times the neighbours' likelihood ratio; the old rule is the neighbours alone.
            by_odds = 1 / (1 + math.exp(min(50.0, SWAP_ODDS_OFFSET - self.swap_odds)))
            by_context = min(0.99, 0.8 + 0.03 * self.score) if self.score >= 4.0 else 0.0
            return min(0.99, max(by_odds, by_context))
        return 0.0


def _topic_support(cand: "_Candidate", doc_words: list[str]) -> float:
    """A text keeps to its topic: the restored word, or other forms of the original word (invest:
    investors, investment), standing intact elsewhere in the text make that reading likelier."""
    if isinstance(doc_words, _TextWords):
        return 1.0 + TOPIC_WEIGHT * (doc_words.forms(cand.original) + doc_words.has(cand.repaired))
    if not doc_words:
        return 1.0
    i = bisect.bisect_left(doc_words, cand.original)
    forms = 0
    while i < len(doc_words) and doc_words[i].startswith(cand.original) and forms < TOPIC_MAX_FORMS:
        forms += 1
        i += 1
    exact = cand.repaired in doc_words[bisect.bisect_left(doc_words, cand.repaired):][:1]
    return 1.0 + TOPIC_WEIGHT * (forms + exact)


class _TextWords:
    """A text's words of three letters or more, in lower case (its chunks' _ChunkInfo.words): how often one
    stands in the text, which stand in it besides its suspect words, and the text's number of tokens.

    Speed: worked out only for the words a repair asks about, from the text's scan; most texts ask about none
    or a few, and most words asked about are not in the text at all (a substring search of the text in lower
    case tells). Counting every word of a text costs more than a few look-ups: that is done only past
    EAGER_AFTER words found in the text."""

    EAGER_AFTER = 8

    def __init__(self, text: str = "", scan: _Scan | None = None, suspects: Iterable[str] = ()):
        self._text, self._lower = text, None
        self._infos, self._sightings = (scan.infos, scan.sightings) if scan is not None else ((), ())
        self.tokens = scan.tokens if scan is not None else 0
        self._suspects = frozenset(suspects)
        self._counts: dict[str, int] = {}
        self._all: Counter | None = None
        self._sorted: list[str] | None = None
        self._aligned: bool | None = None

    def _may_hold(self, part: str) -> bool:
        """False if no word of the text holds ``part`` (words are ASCII tokens of the text, in lower case)."""
        if self._lower is None:
            self._lower = self._text.lower()
        return part in self._lower

    def count(self, word: str) -> int:
        """How often ``word`` stands in the text (suspect words too)."""
        if self._all is not None:
            return self._all.get(word, 0)
        n = self._counts.get(word)
        if n is None:
            if not self._may_hold(word):
                return 0
            if self._searchable(word):
                n = self._counts[word] = self._count_in_text(word)
                return n
            if len(self._counts) >= self.EAGER_AFTER:
                self._all = Counter(chain.from_iterable(map(mul, map(_WORDS, self._infos), self._sightings)))
                return self._all.get(word, 0)
            n = self._counts[word] = sum(compress(self._sightings, map(contains, map(_WORDS, self._infos),
                                                                        repeat(word))))
        return n

    def has(self, word: str) -> bool:
        """``word`` stands in the text, and is none of its suspect words."""
        return word not in self._suspects and self.count(word) > 0

    def forms(self, original: str) -> int:
        """How many of the text's words besides its suspects start with ``original`` (at most TOPIC_MAX_FORMS)."""
        if not self._may_hold(original):
            return 0
        if self._searchable(original):
            found = set()
            for start, end in self._tokens_starting(original):
                if end - start >= 3 and self._lower[start:end] not in self._suspects:
                    found.add(self._lower[start:end])
                    if len(found) >= TOPIC_MAX_FORMS:
                        break
            return len(found)
        if self._sorted is None:  # the text's distinct words, sorted once: each look-up is then a bisection
            self._sorted = sorted(set(chain.from_iterable(map(_WORDS, self._infos))))
        words = self._sorted
        i = bisect.bisect_left(words, original)
        found = 0
        while i < len(words) and words[i].startswith(original) and found < TOPIC_MAX_FORMS:
            found += words[i] not in self._suspects
            i += 1
        return found

    # A text in lower case holds exactly its tokens in lower case, where they stood, unless it has one of the two
    # characters whose lower case is (or holds) an ASCII letter: a word is then found by searching the text
    # (C speed) instead of going through its chunks' words (Python speed, per chunk).
    def _searchable(self, word: str) -> bool:
        if self._aligned is None:
            self._aligned = not any(map(self._text.__contains__, _LOWER_TO_ASCII))
        return self._aligned and word.isascii() and word.isalpha()

    def _tokens_starting(self, part: str):
        """(start, end) of each token of the text (as tokenize cuts them, in lower case) that starts with ``part``."""
        lower = self._lower
        pos = lower.find(part)
        while pos >= 0:
            if pos == 0 or (lower[pos - 1] not in _ASCII_LETTERS and not (
                    pos >= 2 and lower[pos - 1] in _APOSTROPHES and lower[pos - 2] in _ASCII_LETTERS)):
                yield pos, _TOKEN.match(lower, pos).end()
            pos = lower.find(part, pos + 1)

    def _count_in_text(self, word: str) -> int:
        """Sightings of the chunks whose words hold ``word`` (a chunk that holds it twice counts once)."""
        if len(word) < 3:
            return 0  # not one of the words: they have three letters or more
        size, lower = len(word), self._lower
        n, last_end = 0, -1
        for start, end in self._tokens_starting(word):
            if end != start + size:
                continue
            if last_end < 0 or _has_space(lower[last_end:start]):
                n += 1  # another chunk
            last_end = end
        return n


_LOWER_TO_ASCII = ("\u0130", "\u212a")  # the only characters besides A-Z whose lower case holds an ASCII letter


def _has_space(text: str) -> bool:
    """``text`` holds whitespace (as str.split sees it)."""
    return any(map(str.isspace, text))


_NO_TEXT_WORDS = _TextWords()


class _SharedCaches:
    """What depends on the vocabulary and the thesaurus alone, worked out once per process: every model built
    on them (the pipeline loads one per batch) shares it. Each table is emptied when it grows too big."""

    def __init__(self, freq: dict[str, float], synonyms: dict[str, str]):
        self.freq, self.synonyms = freq, synonyms
        self.chunks: dict[str, _ChunkInfo] = {}
        self.word_doubts: dict[str, tuple[bool, bool]] = {}  # word -> (one edit from a word, word-formed)
        self.readings: dict[str, tuple[_Candidate, ...]] = {}  # in-word readings from the thesaurus alone
        self.originals: dict[str, list[str]] = {}  # substitute -> the thesaurus's originals
        self.listed: dict[str, frozenset[str]] = {}  # the same, as a set (see RepairModel._in_thesaurus)
        self._repairable: AbstractSet[str] | None = None
        self.every_word_repairable = False  # (set by repairable())
        self.retired_chunks: dict[str, _ChunkInfo] = {}

    def retire_chunks(self) -> None:
        """Empty the chunk table (it is full), keeping its analyses one generation longer: the chunks still in use
        ("the", "said") come back from there instead of being worked out again."""
        self.retired_chunks = dict(self.chunks)
        self.chunks.clear()

    def repairable(self) -> AbstractSet[str]:
        """Words common enough to be what a repair restores (Zipf >= MIN_PROVEN_REPAIRED_ZIPF)."""
        if self._repairable is None:
            rarest = min(self.freq.values(), default=0.0)
            if rarest > 0 and math.log10(rarest) + 9 >= MIN_PROVEN_REPAIRED_ZIPF:
                self._repairable = self.freq.keys()  # every word of the vocabulary (wordfreq's floor is Zipf 1)
                self.every_word_repairable = True
                return self._repairable
            floor = 10 ** (MIN_PROVEN_REPAIRED_ZIPF - 9) * 0.99  # cheap pre-filter; the exact test follows
            self._repairable = frozenset(w for w, f in self.freq.items()
                                         if f >= floor and math.log10(f) + 9 >= MIN_PROVEN_REPAIRED_ZIPF)
        return self._repairable


_SHARED: dict[tuple[int, int], _SharedCaches] = {}
_IDIOM_NEXT: dict[tuple[int, int], tuple[dict, frozenset, frozenset[str]]] = {}


def _idiom_next_words(bigrams: dict[str, int], verbs: frozenset[str]) -> frozenset[str]:
    """Words after which some verb forms one of the strongest collocations ("make sense"), once per tables."""
    kept = _IDIOM_NEXT.get((id(bigrams), id(verbs)))
    if kept is None or kept[0] is not bigrams or kept[1] is not verbs:
        words = frozenset(pair.split(" ")[1] for pair, count in bigrams.items()
                          if count >= IDIOM_MIN_COUNT and pair.split(" ")[0] in verbs).difference(FUNCTION_WORDS)
        kept = _IDIOM_NEXT[(id(bigrams), id(verbs))] = (bigrams, verbs, words)
    return kept[2]


def _shared_caches(freq: dict[str, float], synonyms: dict[str, str]) -> _SharedCaches:
    shared = _SHARED.get((id(freq), id(synonyms)))
    if shared is None or shared.freq is not freq or shared.synonyms is not synonyms:
        shared = _SHARED[(id(freq), id(synonyms))] = _SharedCaches(freq, synonyms)
    return shared


def _bounded(table: dict) -> dict:
    if len(table) >= MAX_KEPT_CHUNKS:
        table.clear()
    return table


# What one whitespace-separated chunk of text holds (see tokenize), as a plain tuple: the garbage collector stops
# tracking a tuple of strings and numbers, so a large table of them costs nothing at each collection (a NamedTuple
# stays tracked: the table made every full collection of a batch's learning several times slower). Its fields:
#   counts: _pack(tokens, prose tokens, known words, English and foreign function words, common words)
#   suspects: (offset in the chunk, token) of words that may be spinner damage
#   non_prose: a URL, number, code...: its tokens are not prose
#   words: its tokens of three letters or more, in lower case (what _topic_support looks up)
#   rare: like suspects, of rare words (RARE_SUSPECT_ZIPF): "puting", "useing"
#   common: those of its words common enough to be restored (_SharedCaches.repairable)
_ChunkInfo = tuple
_COUNTS, _SUSPECTS, _NON_PROSE, _WORDS, _RARE, _COMMON = map(itemgetter, range(6))
_MORE_THAN_ONCE = (1).__lt__  # of a number of sightings


def _topic_words(tokens: list[str]) -> tuple[str, ...]:
    return tuple({t.lower() for t in tokens if len(t) >= 3})


# The six counts of a chunk in one integer, so that a text's are one C-speed sum (each < 2**32: a text of
# four billion tokens is out of the question; 192 bits keep the sum as cheap as it was with five counts).
_COUNT_BITS = 32


def _pack(tokens: int, prose: int, known: int, english: int, foreign: int, common: int = 0) -> int:
    b = _COUNT_BITS
    return tokens | prose << b | known << 2 * b | english << 3 * b | foreign << 4 * b | common << 5 * b


# The counts of a chunk that is one word, by known | English << 1 | foreign << 2 | common << 3 | prose << 4.
_WORD_COUNTS = tuple(_pack(1, k >> 4 & 1, k & 1, k >> 1 & 1, k >> 2 & 1, k >> 3 & 1) for k in range(32))


def _unpack(packed: int) -> list[int]:
    """tokens, prose tokens, known words, English and foreign function words, common words (_ChunkInfo.common)"""
    mask = (1 << _COUNT_BITS) - 1
    return [(packed >> (i * _COUNT_BITS)) & mask for i in range(6)]


class _Scan(NamedTuple):
    english: bool
    infos: tuple[_ChunkInfo, ...]  # of its distinct chunks
    sightings: tuple[int, ...]  # how often each of them stands in the text
    suspect_chunks: tuple[tuple[str, int], ...]  # (chunk, sightings), in order of first appearance
    common_words: int = 0  # sightings of the words of _ChunkInfo.common
    tokens: int = 0  # tokens of the text (as tokenize cuts them)


def _looks_english(prose: int, known: int, english: int, foreign: int) -> bool:
    if prose < 3:
        return True  # too short to judge; each token is still checked on its own
    # English vocabulary covers "de", "la", "die"...: function words tell the languages apart.
    return known >= ENGLISH_SHARE * prose and foreign <= english


def _token_at(text: str, start: int, word: str, skip: bool) -> Token:
    """The Token tokenize(text) makes of ``word`` at ``start``, without tokenizing the whole text."""
    end = start + len(word)
    before = text[max(0, start - 3) : start]
    sentence_start = start == 0 or bool(_SENTENCE_END.search(before)) or "\n" in before
    prev = nxt = None
    if start >= 2 and text[start - 1] == " " and text[start - 2] in _ASCII_LETTERS:
        prev = _last_token_before(text, start - 1).lower()
    if end + 1 < len(text) and text[end] == " " and text[end + 1] in _ASCII_LETTERS:
        nxt = _TOKEN.match(text, end + 1).group().lower()
    return Token(start, end, word, word.lower(), prev, nxt, sentence_start, skip)


def _last_token_before(text: str, end: int) -> str:
    """The token that ends at ``end`` (a letter stands just before it)."""
    chunk_start = end - 1
    while chunk_start > 0 and not text[chunk_start - 1].isspace():
        chunk_start -= 1
    return _TOKEN.findall(text, chunk_start, end)[-1]


def _token_starts(text: str, form: str):
    """Where ``form`` stands in ``text`` as a whole token (as tokenize cuts them)."""
    size = len(form)
    pos = text.find(form)
    while pos >= 0:
        if (pos == 0 or (text[pos - 1] not in _ASCII_LETTERS and not (
                pos >= 2 and text[pos - 1] in _APOSTROPHES and text[pos - 2] in _ASCII_LETTERS))) \
                and _TOKEN.match(text, pos).end() == pos + size:
            yield pos
        pos = text.find(form, pos + 1)


def _chunk_around(text: str, start: int, end: int) -> str:
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end]


def _contextual(word: str | None) -> str | None:
    """A neighbour as the word-pair table spells it: "doesn't" counts as "not"."""
    if word is None:
        return None
    word = word.replace("\u2019", "'")
    if word.endswith("n't"):
        return "not"
    return None if "'" in word else word


@dataclass(frozen=True, slots=True)
class _Candidate:
    repaired: str
    original: str
    substitute: str
    zipf: float


class _Reading(NamedTuple):
    """The reading an in-word repair chose, with what vouched for it."""
    others: float  # expected other damaged words showing the same substitution
    pair: tuple[str, str]
    candidate: _Candidate
    word: str  # the damaged word, in lower case
    share: float = 1.0  # its share of the probability among the word's readings


@lru_cache(maxsize=1)
def _swap_model() -> tuple[float, tuple[float, ...], tuple[tuple[float, ...], ...]]:
    """(offset, weight of each of SWAP_FEATURES, weights of its products with itself and the features after it)."""
    weights: dict[str, float] = {}
    with gzip.open(DATA / SWAP_MODEL_FILE, "rt", encoding="utf-8") as fh:
        for line in fh:
            term, weight = line.rstrip("\n").split("\t")
            weights[term] = float(weight)
    n = len(SWAP_FEATURES)
    linear = tuple(weights.get(name, 0.0) for name in SWAP_FEATURES)
    products = tuple(tuple(weights.get(f"{SWAP_FEATURES[i]}*{SWAP_FEATURES[j]}", 0.0) for j in range(i, n)) for i in range(n))
    return weights.get("offset", 0.0), linear, products


def _swap_logit(values: list[float]) -> float:
    """Log-odds of a whole-word swap from the values of SWAP_FEATURES (a quadratic form, see _swap_model)."""
    offset, linear, products = _swap_model()
    total = offset
    for i, value in enumerate(values):
        if value:
            total += value * (linear[i] + sum(map(mul, products[i], values[i:])))
    return total


@lru_cache(maxsize=1)
def _load_tables() -> tuple[dict[str, str], dict[str, int], frozenset[str], frozenset[str], frozenset[str]]:
    synonyms: dict[str, str] = {}
    with gzip.open(DATA / "repair_synonyms.tsv.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            substitute, originals = line.rstrip("\n").split("\t")
            synonyms[substitute] = originals
    bigrams: dict[str, int] = {}
    with gzip.open(DATA / "repair_bigrams.tsv.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            pair, count = line.rstrip("\n").split("\t")
            bigrams[pair] = int(count)
    adjectives, nouns, verbs = set(), set(), set()
    with gzip.open(DATA / "repair_pos.tsv.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            word, tags = line.rstrip("\n").split("\t")
            if "a" in tags:
                adjectives.add(word)
            if "n" in tags:
                nouns.add(word)
            if "v" in tags and "j" not in tags:
                verbs.add(word)
    return synonyms, bigrams, frozenset(adjectives), frozenset(nouns), frozenset(verbs)


def _pairs_schema():
    import pyarrow as pa

    return pa.schema([("original", pa.string()), ("substitute", pa.string()), ("distinct_words", pa.int32()),
                      ("occurrences", pa.int64()), ("in_thesaurus", pa.bool_()), ("status", pa.string()),
                      ("examples", pa.list_(pa.string()))])


def _pairs_table(rows: list[dict]):
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=_pairs_schema())


def _write_pairs(rows: list[dict], out_dir: Path) -> None:
    """Write atomically: a reader sees the old table or the new one, never half of one."""
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".repair_pairs.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(_pairs_table(rows), tmp)
        os.replace(tmp, out_dir / PAIRS_FILE)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def merge_pairs(state_dir: Path | None, evidence: list, out_dir: Path) -> None:
    """``out_dir/repair_pairs.parquet`` = the pairs persisted in ``state_dir`` (with the status people gave
    them) + each batch's ``learned_evidence()``: damaged words united, occurrences added."""
    import pyarrow.parquet as pq

    merged: dict[tuple[str, str], dict] = {}
    if state_dir is not None and (Path(state_dir) / PAIRS_FILE).exists():
        for row in pq.read_table(Path(state_dir) / PAIRS_FILE).to_pylist():
            row["examples"] = set(row["examples"] or ())
            row["distinct_words"] = max(int(row["distinct_words"] or 0), len(row["examples"]))
            row["occurrences"] = int(row["occurrences"] or 0)
            row["status"] = row["status"] or "auto"
            merged[(row["original"], row["substitute"])] = row
    for table in evidence:
        for row in table.to_pylist():
            words = set(row["examples"] or ())
            old = merged.get((row["original"], row["substitute"]))
            if old is None:
                merged[(row["original"], row["substitute"])] = dict(
                    row, examples=words, distinct_words=max(int(row["distinct_words"] or 0), len(words)),
                    occurrences=int(row["occurrences"] or 0), status=row["status"] or "auto")
                continue
            # Beyond MAX_EXAMPLES the count of distinct words is an estimate: unseen examples count as new.
            old["distinct_words"] += len(words - old["examples"]) + max(0, int(row["distinct_words"] or 0) - len(words))
            old["examples"] |= words
            old["occurrences"] += int(row["occurrences"] or 0)
            old["in_thesaurus"] = bool(old["in_thesaurus"]) or bool(row["in_thesaurus"])
    rows = [dict(r, examples=sorted(r["examples"])[:MAX_EXAMPLES])
            for _, r in sorted(merged.items(), key=lambda kv: (-kv[1]["distinct_words"], kv[0]))]
    _write_pairs(rows, Path(out_dir))


_default_model: RepairModel | None = None


def default_model() -> RepairModel:
    global _default_model
    if _default_model is None:
        _default_model = RepairModel.load()
    return _default_model


def repair(doc: Document, config: RepairConfig, model: RepairModel | None = None) -> tuple[Document, list[Edit]]:
    if config.mode == "off" or not doc.text:
        return doc, []
    model = model or default_model()
    text, repairs = model.repair_text(doc.text, config.mode, config.min_confidence, doc.language, config.whole_words)
    if not repairs:
        return doc, []
    if config.mode == "fix":
        return doc.with_edits(list(repairs), text=text), list(repairs)
    return doc.with_edits(list(repairs)), list(repairs)


def main(argv: list[str] | None = None) -> int:
    """``docclean repair [--explain]``: stdin -> stdout, line for line, learning pairs over all of stdin."""
    ap = argparse.ArgumentParser(prog="docclean repair", description="Undo article-spinner synonym damage.")
    ap.add_argument("--explain", action="store_true", help="print each repair to stderr")
    ap.add_argument("--mode", choices=["fix", "flag"], default="fix")
    ap.add_argument("--min-confidence", type=float, default=RepairConfig().min_confidence)
    ap.add_argument("--state-dir", type=Path, help="read (and update) learned pairs in this folder")
    args = ap.parse_args(argv)
    text = sys.stdin.read()
    model = RepairModel.load(args.state_dir)
    model.learn([text])
    repaired, repairs = model.repair_text(text, args.mode, args.min_confidence)
    sys.stdout.write(repaired)
    if args.explain:
        line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        for r in repairs:
            line = bisect.bisect_right(line_starts, r.offset)
            print(f"line {line}: {r.original} -> {r.replacement}  [{r.rule}, confidence {r.confidence:.2f}]",
                  file=sys.stderr)
    if args.state_dir:
        model.save_pairs(args.state_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
