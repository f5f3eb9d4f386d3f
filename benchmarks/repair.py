"""Evaluate the `repair` stage: a seeded article-spinner simulator, a scorer, and a speed check.

The simulator damages the ground-truth bodies of extraction-dev the way the real spinner (seed 002) did:
it has one dictionary ``original -> substitute`` and applies it to whole words (``make -> build``) and
inside longer words (``intends -> intconcludes``), keeping the case of the first letter.

Keeping it honest (not circular): the simulator's dictionary comes from WordNet synsets and similar-to
links (Debian ``wordnet-base``, read here at run time), while the repairer's shipped table comes from the
Moby thesaurus plus the MyThes thesaurus. MyThes is itself derived from WordNet, so ``--held-out`` also
removes every simulator pair from the repairer's table: what is repaired then is repaired only through
pairs the model learned from the damaged corpus itself (or not at all). Both figures are reported.

Scoring (per token, by offset in the damaged text): precision = repairs that restore the original word /
all repairs; recall split into in-word and whole-word damage; collateral = repairs of tokens the simulator
never touched, per 10,000 such clean tokens. Half the documents are left clean on purpose.

    .venv/bin/python -m benchmarks.repair --part test            # the figures to report
    .venv/bin/python -m benchmarks.repair --part train --limit 200 # while iterating
    .venv/bin/python -m benchmarks.repair --clean-web               # false repairs on undamaged web text
    .venv/bin/python -m benchmarks.repair --part train --why-missed # missed in-word damage, bucketed by cause

``--clean-web`` runs the stage as the pipeline does (learn the whole set, then repair) on 800 documents
of the pipeline benchmark's corpus (400 full-page renderings, 400 news-sized articles, real web text of
every kind: code docs, forums, shops), none of them spun: every repair there is a false one.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from wordfreq import zipf_frequency

from benchmarks.corpus import load_pages, split
from docclean.document import Repair
from docclean.repair import RepairModel, tokenize

WORDNET = Path("/usr/share/wordnet")
_ALPHA = re.compile(r"[a-z]{3,}")
_WORDISH = re.compile(r"[A-Za-z]+")


def wordnet_synonyms(root: Path = WORDNET) -> dict[str, set[str]]:
    """word -> single-word synonyms: same synset, plus adjectives' similar-to synsets."""
    lemmas_by_offset: dict[tuple[str, str], list[str]] = {}
    similar: list[tuple[tuple[str, str], tuple[str, str]]] = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(root / f"data.{pos}", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(" "):
                    continue
                f = line.split(" | ")[0].split()
                offset, ss_type = f[0], f[2]
                key = (offset, "a" if ss_type in "as" else ss_type)
                n = int(f[3], 16)
                lemmas = [re.sub(r"\(.*\)$", "", f[4 + 2 * i]).lower() for i in range(n)]
                lemmas_by_offset[key] = lemmas
                p = 4 + 2 * n
                for k in range(int(f[p])):
                    sym, target, tpos = f[p + 1 + 4 * k], f[p + 2 + 4 * k], f[p + 3 + 4 * k]
                    if sym == "&":
                        similar.append((key, (target, "a" if tpos in "as" else tpos)))
    syn: dict[str, set[str]] = defaultdict(set)
    for lemmas in lemmas_by_offset.values():
        for a in lemmas:
            for b in lemmas:
                if a != b:
                    syn[a].add(b)
    for a_key, b_key in similar:
        for a in lemmas_by_offset.get(a_key, ()):
            for b in lemmas_by_offset.get(b_key, ()):
                syn[a].add(b)
    return syn


def spinner_dictionary(seed: int, size: int = 600) -> dict[str, str]:
    """One substitute for each of ``size`` common words, as a spinner's fixed dictionary would have."""
    rng = random.Random(seed)
    syn = wordnet_synonyms()
    entries = []
    for word in sorted(syn):
        if not _ALPHA.fullmatch(word) or zipf_frequency(word, "en") < 4.3:
            continue
        subs = sorted(s for s in syn[word] if _ALPHA.fullmatch(s) and zipf_frequency(s, "en") >= 3.0 and word not in s)
        if subs:
            entries.append((word, rng.choice(subs)))
    rng.shuffle(entries)
    return dict(entries[:size])


@dataclass(frozen=True)
class Damage:
    offset: int
    damaged: str
    original: str
    kind: str  # inword (a non-word results) | whole (a real word results, whole-word or in-word swap)


def spin(text: str, spinner: dict[str, str], rng: random.Random, p_whole: float, p_inword: float) -> tuple[str, list[Damage]]:
    """Damage ``text``; offsets refer to the damaged text. Only prose words (as the repairer sees them)."""
    inner = sorted((w for w in spinner if len(w) >= 3), key=len, reverse=True)
    out, damages, pos, shift = [], [], 0, 0
    for tok in tokenize(text):
        if tok.skip or not tok.text.isalpha():
            continue
        lower = tok.lower
        new = None
        if lower in spinner:
            if rng.random() < p_whole:
                new, kind = spinner[lower], "whole"
        else:
            for w in inner:
                i = lower.find(w)
                if i >= 0 and rng.random() < p_inword:
                    new, kind = lower[:i] + spinner[w] + lower[i + len(w):], "inword"
                    break
        if new is None:
            continue
        if tok.text[0].isupper():
            new = new[0].upper() + new[1:]
        if kind == "inword" and zipf_frequency(new, "en") >= 2.0:
            kind = "whole"  # the swap made another real word ("clients" -> "guests"): only context can tell
        out.append(text[pos : tok.start])
        damages.append(Damage(tok.start + shift, new, tok.text, kind))
        out.append(new)
        shift += len(new) - len(tok.text)
        pos = tok.end
    out.append(text[pos:])
    return "".join(out), damages


def evaluate(part: str, limit: int | None, seed: int, held_out: bool, verbose: int,
             min_confidence: float = 0.9, calibrate: bool = False, why_missed: bool = False) -> dict:
    pages = split(load_pages(), part)
    if limit:
        pages = pages[:limit]
    spinner = spinner_dictionary(seed)
    rng = random.Random(seed)
    docs = []
    for i, page in enumerate(pages):
        if i % 2 == 0:  # every other document is spun; the rest measure collateral on clean text
            damaged, damages = spin(page.body, spinner, rng, p_whole=0.07, p_inword=0.09)
        else:
            damaged, damages = page.body, []
        docs.append((damaged, damages))

    t0 = time.process_time()
    model = RepairModel.load()
    load_seconds = time.process_time() - t0
    if held_out:
        model.excluded_pairs = frozenset(spinner.items())
    t0 = time.process_time()
    model.learn(d for d, _ in docs)
    learn_seconds = time.process_time() - t0

    counts = Counter()
    calibration: dict[tuple[str, int], tuple[int, int]] = {}
    mistakes = []
    tokens = 0
    decisions: dict[tuple[int, int], Repair | None] = {}  # (document, offset) -> the in-word reading chosen
    if why_missed:
        _record_inword_decisions(model, decisions)
    t0 = time.process_time()
    results = []
    for i, (d, _) in enumerate(docs):
        decisions["document"] = i
        results.append(model.repair_text(d, "flag", min_confidence=0.0 if calibrate else min_confidence))
    repair_seconds = time.process_time() - t0
    for (damaged, damages), (_, repairs) in zip(docs, results):
        by_offset = {d.offset: d for d in damages}
        n_tokens = len(_WORDISH.findall(damaged))
        tokens += n_tokens
        counts["clean_tokens"] += n_tokens - len(damages)
        for d in damages:
            counts[f"damaged_{d.kind}"] += 1
        for r in repairs:
            d = by_offset.get(r.offset)
            if calibrate:
                bucket = (r.rule, min(9, int(r.confidence * 10)))
                ok = d is not None and r.replacement == d.original
                calibration[bucket] = calibration.get(bucket, (0, 0))
                calibration[bucket] = (calibration[bucket][0] + ok, calibration[bucket][1] + 1)
                if r.confidence < min_confidence:
                    continue
            if d is None:
                counts["collateral"] += 1
                mistakes.append(("collateral", r, damaged[max(0, r.offset - 40) : r.offset + 40]))
            elif r.replacement == d.original:
                counts[f"correct_{d.kind}"] += 1
            else:
                counts["wrong"] += 1
                mistakes.append((f"wrong ({d.original})", r, damaged[max(0, r.offset - 40) : r.offset + 40]))
            counts["repairs"] += 1
    correct = counts["correct_inword"] + counts["correct_whole"]
    figures = {
        "documents": len(docs),
        "tokens": tokens,
        "damaged_inword": counts["damaged_inword"],
        "damaged_whole": counts["damaged_whole"],
        "repairs": counts["repairs"],
        "precision": correct / counts["repairs"] if counts["repairs"] else 1.0,
        "recall_inword": counts["correct_inword"] / max(1, counts["damaged_inword"]),
        "recall_whole": counts["correct_whole"] / max(1, counts["damaged_whole"]),
        "collateral_per_10k": 10_000 * counts["collateral"] / max(1, counts["clean_tokens"]),
        "load_seconds": load_seconds,
        "learn_tokens_per_s": tokens / learn_seconds,
        "repair_tokens_per_s": tokens / repair_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    for (rule, b), (ok, n) in sorted(calibration.items()):
        print(f"  calibration {rule} confidence {b / 10:.1f}-{(b + 1) / 10:.1f}: {ok}/{n} correct")
    if why_missed:
        repaired = {(i, r.offset): r for i, (_, reps) in enumerate(results) for r in reps}
        why = Counter()
        for i, (damaged, damages) in enumerate(docs):
            for d in damages:
                r = repaired.get((i, d.offset))
                if d.kind == "inword" and not (r and r.replacement == d.original):
                    why[_miss_reason(model, spinner, d, decisions.get((i, d.offset), False))] += 1
        print(f"  missed in-word damage: {sum(why.values())} of {counts['damaged_inword']}")
        for reason, n in why.most_common():
            print(f"  {n:6d}  {reason}")
    if verbose:
        for kind, r, ctx in mistakes[:verbose]:
            print(f"  {kind}: {r.original} -> {r.replacement} [{r.rule} {r.confidence}]  …{ctx!r}…".replace("\n", " "))
    return figures


def _record_inword_decisions(model: RepairModel, decisions: dict) -> None:
    """Keep the reading each in-word repair attempt chose, repaired or not (for --why-missed only)."""
    attempt = model._repair_inword

    def recorded(tok, *args, **kwargs):
        r = attempt(tok, *args, **kwargs)
        decisions[(decisions["document"], tok.start)] = r
        return r

    model._repair_inword = recorded


def _miss_reason(model: RepairModel, spinner: dict[str, str], d: Damage, decision) -> str:
    """Why an in-word damage was not repaired. ``decision``: the reading the model chose (None: it chose none
    although the word has readings, e.g. a term the text or corpus keeps using), False: never attempted."""
    import docclean.repair as R

    lower, original = d.damaged.lower(), d.original.lower()
    if len(lower) < R.MIN_TOKEN_LEN:
        return "damaged token short (< 5 letters)"
    if model.zipf(lower) >= R.UNKNOWN_ZIPF:
        return "damaged form is a rare word (zipf 1-2)"
    readings = model._readings(lower)
    if not any(c.repaired == original for c in readings):
        floor = getattr(R, "MIN_PROVEN_REPAIRED_ZIPF", R.MIN_REPAIRED_ZIPF)
        if model.zipf(original) < floor:
            return f"original rare (zipf < {floor})"
        if model.zipf(original) < R.MIN_REPAIRED_ZIPF:
            return f"original rare (zipf {floor}-{R.MIN_REPAIRED_ZIPF}), pair not proven"
        pair = next(((w, s) for w, s in spinner.items() if w in original
                     and original.replace(w, s, 1) == lower), None)
        if pair is None or pair[0] not in model.originals_for(pair[1]):
            return "pair not in the thesaurus"
        return "no reading (other)"
    if decision is False:
        return "not attempted (line not English, name-like token)"
    if decision is None:
        return "rejected: term the text/corpus repeats, no other word backs the pair"
    if decision.replacement.lower() != original:
        return "ambiguity: another reading won"
    return "right reading, confidence too low"


def fit_models(part: str = "train", seed: int = 13, margin: float = -0.75) -> None:
    """Fit READING_LOGIT (a conditional logit: the right reading of a damaged word against its other readings)
    and SPUN_LOGIT (is a doubtful reading in a heavily spun text the spinner's damage?) on ``part``, and print
    them. The offset of SPUN_LOGIT is lowered by ``margin`` (negative: raised; see the comment on SPUN_LOGIT)."""
    import numpy as np
    from scipy.optimize import minimize
    from sklearn.linear_model import LogisticRegression

    docs, model = _spun_corpus(part, seed)
    readings: dict[tuple[int, int], list] = {}  # (document, offset) -> [(restored word, features)]
    doubtful: list[tuple[int, int, str, list[float]]] = []
    state = {"document": 0, "token": None}
    features_of, spun_logit, attempt = model._reading_features, model._spun_logit, model._repair_inword

    def recorded_features(c, tok, *args):
        features = features_of(c, tok, *args)
        key = (state["document"], tok.start)
        if state["token"] == key:
            readings[key].append((c.repaired, features))
        return features

    def recorded_attempt(tok, *args, **kwargs):
        key = (state["document"], tok.start)
        state["token"] = key if key not in readings else None
        if state["token"]:
            readings[key] = []
        return attempt(tok, *args, **kwargs)

    def recorded_spun(tok, r, *args):
        doubtful.append((state["document"], tok.start, r.replacement, model._spun_features(tok, r, *args)))
        return spun_logit(tok, r, *args)

    model._reading_features, model._spun_logit, model._repair_inword = recorded_features, recorded_spun, recorded_attempt
    for i, (damaged, _) in enumerate(docs):
        state["document"] = i
        model.repair_text(damaged, "flag")
    originals = {(i, d.offset): d.original for i, (_, damages) in enumerate(docs) for d in damages}

    # READING_LOGIT: softmax over each damaged word's readings (best reading per restored word).
    groups = []  # (features of every reading, which of them restore the original)
    for key, rows in readings.items():
        right = originals.get(key, "").lower()
        if len({word for word, _ in rows}) >= 2 and any(word == right for word, _ in rows):
            groups.append((np.array([f for _, f in rows]), np.array([word == right for word, _ in rows])))
    n_features = groups[0][0].shape[1]

    def loss(w):  # -log P(a reading that restores the original), the readings' probabilities a softmax
        total, grad = 0.01 * w @ w, 0.02 * w
        for x, right in groups:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            p_right = p[right].sum()
            total -= np.log(p_right + 1e-300)
            grad = grad - (p[right] @ x[right]) / p_right + p @ x
        return total, grad

    w = minimize(loss, np.zeros(n_features), jac=True, method="L-BFGS-B").x
    top1 = np.mean([right[np.argmax(x @ w)] for x, right in groups])
    print(f"READING_LOGIT = {tuple(round(float(v), 3) for v in w)}  # top-1 {top1:.3f} of {len(groups)} words with a choice")

    # SPUN_LOGIT: logistic regression on the doubtful readings, cross-validated by document.
    x = np.array([f for *_, f in doubtful])
    y = np.array([originals.get((i, start)) == replacement for i, start, replacement, _ in doubtful])
    folds = np.array([i // 2 % 2 for i, *_ in doubtful])  # every other document is spun
    held_out = np.zeros(len(y))
    for fold in (0, 1):  # by document: a text's readings share its evidence
        part_fit = LogisticRegression(C=1.0, max_iter=2000).fit(x[folds != fold], y[folds != fold])
        held_out[folds == fold] = part_fit.predict_proba(x[folds == fold])[:, 1]
    from docclean import repair as R

    clean = np.array([(i, start) not in originals for i, start, *_ in doubtful])
    current = 1 / (1 + np.exp(-(x @ np.array(R.SPUN_LOGIT[:-1]) + R.SPUN_LOGIT[-1])))
    for name, p in (("now", current), ("cross-validated", held_out)):
        for threshold in (0.8, 0.9, 0.95):
            chosen = p >= threshold
            print(f"  {name} at {threshold}: {int((chosen & y).sum())} right, {int((chosen & ~y).sum())} wrong "
                  f"({int((chosen & clean).sum())} of them on clean words)")
    fitted = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    coefs = [round(float(v), 3) for v in fitted.coef_[0]] + [round(float(fitted.intercept_[0]) - margin, 3)]
    print(f"SPUN_LOGIT = {tuple(coefs)}  # {int(y.sum())} right of {len(y)} doubtful readings")
    for threshold in (0.8, 0.9, 0.95):
        chosen = fitted.predict_proba(x)[:, 1] >= threshold
        print(f"  at {threshold}: {int((chosen & y).sum())} right, {int((chosen & ~y).sum())} wrong")


def fit_swap(part: str = "train", seed: int = 13, margin: float = 0.25, write: bool = False) -> None:
    """Fit the whole-word swap model (is a whole word in a heavily spun text the spinner's swap for an original
    the in-word evidence learned?) on ``part``: a logistic regression over the features of
    RepairModel._learned_swap_features and their pairwise products, cross-validated by document; with ``write``,
    save it to docclean/data/repair_swap_quadratic.tsv.gz (what _learned_swap_logit reads)."""
    import gzip

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    from docclean import repair as R

    docs, model = _spun_corpus(part, seed)
    rows: list[tuple[int, int, str, dict[str, float]]] = []  # (document, offset, original, features)
    state = {"document": 0, "offset": -1}
    swap, features_of = model._repair_learned_swap, model._learned_swap_features

    def recorded_swap(tok, *args):
        state["offset"] = tok.start
        return swap(tok, *args)

    def recorded_features(word, original, *args):
        features = features_of(word, original, *args)
        rows.append((state["document"], state["offset"], original, features))
        return features

    model._repair_learned_swap, model._learned_swap_features = recorded_swap, recorded_features
    for i, (damaged, _) in enumerate(docs):
        state["document"] = i
        model.repair_text(damaged, "flag")
    originals = {(i, d.offset): d.original.lower() for i, (_, damages) in enumerate(docs) for d in damages}
    names = list(R.SWAP_FEATURES)
    x = np.array([[f[n] for n in names] for *_, f in rows])
    y = np.array([originals.get((i, start)) == original for i, start, original, _ in rows])
    clean = np.array([(i, start) not in originals for i, start, *_ in rows])
    tokens = np.array([i * 10**7 + start for i, start, *_ in rows])
    folds = np.array([i // 2 % 2 for i, *_ in rows])  # by document (every other one is spun)

    def quadratic():
        return make_pipeline(PolynomialFeatures(2), StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))

    held_out = np.zeros(len(y))
    for fold in (0, 1):
        fitted = quadratic().fit(x[folds != fold], y[folds != fold])
        held_out[folds == fold] = fitted.decision_function(x[folds == fold]) - margin
    current = np.array([R._swap_logit([f[n] for n in names]) for *_, f in rows])

    def report(name, logit):
        best: dict[int, int] = {}  # each token's likeliest original, as _repair_learned_swap picks it
        for k, t in enumerate(tokens):
            if t not in best or logit[k] > logit[best[t]]:
                best[t] = k
        for threshold in (0.8, 0.9, 0.95):
            chosen = np.array([k for k in best.values() if logit[k] >= np.log(threshold / (1 - threshold))], dtype=int)
            print(f"  {name} at {threshold}: {int(y[chosen].sum())} right, {int((~y[chosen] & ~clean[chosen]).sum())} wrong,"
                  f" {int(clean[chosen].sum())} clean words changed")

    report("now", current)
    report("cross-validated", held_out)
    fitted = quadratic().fit(x, y)
    poly, scaler, logistic = fitted.steps[0][1], fitted.steps[1][1], fitted.steps[2][1]
    # Fold the scaling into the weights: logit = offset + sum of weight x term, a term a feature or a product.
    weights = logistic.coef_[0] / scaler.scale_
    offset = float(logistic.intercept_[0] - (logistic.coef_[0] * scaler.mean_ / scaler.scale_).sum()) - margin
    terms = []
    for powers, weight in zip(poly.powers_, weights):
        factors = [n for n, k in zip(names, powers) for _ in range(k)]
        if factors:
            terms.append(("*".join(factors), float(weight)))
        else:
            offset += float(weight)
    print(f"  {len(terms)} terms, offset {offset:.3f}; {int(y.sum())} swaps of {len(y)} readings")
    if write:
        with gzip.open(R.DATA / R.SWAP_MODEL_FILE, "wt", encoding="utf-8") as fh:
            fh.write(f"offset\t{offset:.6g}\n")
            fh.writelines(f"{term}\t{weight:.6g}\n" for term, weight in terms)
        print(f"  written to {R.DATA / R.SWAP_MODEL_FILE}")

def _spun_corpus(part: str, seed: int) -> tuple[list[tuple[str, list[Damage]]], RepairModel]:
    """The part's documents, every other one spun (as evaluate does), and a model that learned them."""
    pages = split(load_pages(), part)
    spinner = spinner_dictionary(seed)
    rng = random.Random(seed)
    docs = []
    for i, page in enumerate(pages):
        if i % 2 == 0:
            docs.append(spin(page.body, spinner, rng, p_whole=0.07, p_inword=0.09))
        else:
            docs.append((page.body, []))
    model = RepairModel.load()
    model.learn(d for d, _ in docs)
    return docs, model


def pair_context(part: str = "train", seed: int = 13, min_documents: int = 3, min_share: float = 0.2) -> None:
    """Could whole-word pairs be learned from context alone? For every thesaurus pair (original, substitute), count
    the substitute's sightings where both neighbours prefer the original, by two measures: the shipped word-pair
    table (each side's count no lower for the original, together 20 times higher) and the corpus's own word pairs
    (a content-word neighbour seen twice or more with the original and three times as often as with the substitute).
    A pair is promoted when such sightings stand in ``min_documents`` documents and make ``min_share`` of the
    substitute's sightings (the likeliest original per substitute: the spinner's dictionary has one). Prints how
    many promoted pairs are the spinner's, the whole-word damage they cover, and how much of it lies outside the
    pairs the in-word evidence already gives the swap model (_soft_originals)."""
    import math

    from docclean.repair import BIGRAM_FLOOR, FUNCTION_WORDS

    docs, model = _spun_corpus(part, seed)
    model._refresh()
    spinner = set(spinner_dictionary(seed).items())
    inword = {(o, s) for s, originals in model._soft_originals.items() for o in originals}
    damaged = Counter((d.original.lower(), d.damaged.lower()) for _, damages in docs for d in damages if d.kind == "whole")
    tokens = [[t for t in tokenize(text) if not t.skip] for text, _ in docs]
    corpus_pairs = Counter((t.lower, t.next) for doc in tokens for t in doc if t.next)
    sightings: Counter = Counter()
    strong: dict[str, dict[tuple[str, str], list]] = {"table": defaultdict(lambda: [0, set()]),
                                                       "corpus": defaultdict(lambda: [0, set()])}

    def corpus_side(neighbour, restored, seen):
        return neighbour is not None and neighbour not in FUNCTION_WORDS and corpus_pairs[restored] >= 2 \
            and corpus_pairs[restored] >= 3 * corpus_pairs[seen]

    for i, doc in enumerate(tokens):
        for t in doc:
            word, prev, nxt = t.lower, t.prev, t.next
            originals = [o for o in model.originals_for(word) if o not in FUNCTION_WORDS and model.zipf(o) >= 3.0]
            if word in FUNCTION_WORDS or not originals:
                continue
            sightings[word] += 1
            for o in originals:
                hits = []
                if prev and nxt:
                    left = math.log(max(model._bigram(prev, o), BIGRAM_FLOOR) / max(model._bigram(prev, word), BIGRAM_FLOOR))
                    right = math.log(max(model._bigram(o, nxt), BIGRAM_FLOOR) / max(model._bigram(word, nxt), BIGRAM_FLOOR))
                    if left >= 0 and right >= 0 and left + right >= 3:
                        hits.append("table")
                if corpus_side(prev, (prev, o), (prev, word)) or corpus_side(nxt, (o, nxt), (word, nxt)):
                    hits.append("corpus")
                for measure in hits:
                    kept = strong[measure][(o, word)]
                    kept[0] += 1
                    kept[1].add(i)
    print(f"  {sum(damaged.values())} whole-word damages; the in-word evidence's pairs cover "
          f"{sum(n for p, n in damaged.items() if p in inword)}")
    for measure, pairs in strong.items():
        best: dict[str, tuple[float, tuple[str, str]]] = {}
        for (o, sub), (n, documents) in pairs.items():
            share = n / (sightings[sub] + 2)
            if len(documents) >= min_documents and share >= min_share and share > best.get(sub, (0.0,))[0]:
                best[sub] = (share, (o, sub))
        promoted = [pair for _, pair in best.values()]
        right = [p for p in promoted if p in spinner]
        new = [p for p in right if p not in inword]
        print(f"  {measure:>6}: {len(promoted)} pairs promoted, {len(right)} the spinner's, covering "
              f"{sum(damaged[p] for p in right)} damages; outside the in-word pairs: {len(new)} pairs, "
              f"{sum(damaged[p] for p in new)} damages")


def clean_web(limit: int = 400) -> dict:
    from benchmarks.pipeline import corpus
    from docclean.repair import RepairModel

    root = corpus(1000, ("text", "news"))
    files = sorted((root / "text").rglob("*.txt"))[:limit] + sorted((root / "news").rglob("*.txt"))[:limit]
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    model = RepairModel.load(None)
    for text in texts:
        model.learn([text])
    made: Counter = Counter()
    words = 0
    for text in texts:
        words += len(text.split())
        made.update((r.rule, r.original, r.replacement) for r in model.repair_text(text)[1])
    figures = {"documents": len(texts), "words": words, "false_repairs": sum(made.values()),
               "false_repairs_per_10k_words": sum(made.values()) / words * 1e4}
    figures.update({f"  {rule} {a} -> {b}": n for (rule, a, b), n in made.most_common(10)})
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description="Spinner-repair evaluation on extraction-dev ground truth.")
    ap.add_argument("--part", choices=["train", "test", "all"], default="test")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--held-out", action="store_true", help="remove the simulator's pairs from the repairer's table")
    ap.add_argument("--show-mistakes", type=int, default=0)
    ap.add_argument("--min-confidence", type=float, default=0.9)
    ap.add_argument("--calibrate", action="store_true", help="precision by confidence bucket")
    ap.add_argument("--why-missed", action="store_true", help="bucket the missed in-word damage by cause")
    ap.add_argument("--clean-web", action="store_true", help="false repairs on undamaged web text (see above)")
    ap.add_argument("--fit", action="store_true", help="fit READING_LOGIT and SPUN_LOGIT on --part (train only!)")
    ap.add_argument("--fit-swap", action="store_true", help="fit the whole-word swap model on --part (train only!)")
    ap.add_argument("--pair-context", action="store_true",
                    help="how well context alone (word-pair table, corpus word pairs) finds whole-word pairs")
    ap.add_argument("--write", action="store_true", help="with --fit-swap: save the model to docclean/data")
    args = ap.parse_args()
    if args.fit:
        fit_models(args.part, args.seed)
        return
    if args.fit_swap:
        fit_swap(args.part, args.seed, write=args.write)
        return
    if args.pair_context:
        pair_context(args.part, args.seed)
        return
    if args.clean_web:
        for k, v in clean_web().items():
            print(f"{k:>30}: {v:.4f}" if isinstance(v, float) else f"{k:>30}: {v}")
        return
    figures = evaluate(args.part, args.limit, args.seed, args.held_out, args.show_mistakes,
                       args.min_confidence, args.calibrate, args.why_missed)
    for k, v in figures.items():
        print(f"{k:>22}: {v:.4f}" if isinstance(v, float) else f"{k:>22}: {v}")


if __name__ == "__main__":
    main()
