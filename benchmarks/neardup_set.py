"""A near-duplicate evaluation set built from extraction-dev: real article bodies, real page chrome, and
the kinds of copies scraped news is full of.

Construction (deterministic for a given seed):

1. **Stories.** Every page of the corpus whose ground-truth body has at least 50 words is one story
   (articles, but also forum threads, product and documentation pages: they are the "many unrelated
   articles"). The corpus itself holds a few copies (one page crawled twice, a 404 page or a manual
   page under two URLs): pages with the same URL, and pages whose ground-truth bodies are copies by
   an exact measure (word 5-gram Jaccard >= 0.5, or >= 80% of the smaller body's 5-grams in the
   other), are one story.
   Articles with at least 150 words are *originals* that get copies.
2. **Chrome.** Each page's plain-text rendering (``corpus.render_plain_text``: every visible text node
   on its own line) minus the lines that belong to its body is that page's chrome. A site's header is
   the first 4-25 of those lines and its footer the last 4-25, so every document looks like a scraped
   page with menus, sponsor lines and footers around the story.
3. **Sites.** A third of the stories stay on their own page's site (its own chrome, the only document
   of that site: chrome cannot be learned there and stays in the text); the others are spread over 30
   *home sites*, and copies go to 25 *syndicator sites*, each using the chrome of another corpus page.
4. **Copies.** 60% of the originals get 1-3 copies, each of one kind:

   - ``syndicated``: the body on a syndicator site (chrome swap), sometimes with a lead-in line;
   - ``paywall``: the opening 20-70% of the body (cut at a sentence), then a paywall notice; marked
     truncated for half of them (the other half must be found by containment alone);
   - ``edited``: 10% of word positions edited (a word replaced, deleted, or followed by an inserted
     one): by difflib, 7.6% of the original words are gone;
   - ``spun``: words and pieces of words swapped by near-synonyms (``said`` -> ``stated``, ``tell`` ->
     ``notify`` inside ``intelligence``, as spinner-damaged seed 002 shows): 9% of the words change;
   - ``spun_paywall`` and ``edited_syndicated``: two of the above at once.
5. **Truth.** The original and its copies are one cluster; every other pair is a non-duplicate. Scores
   are pairwise: precision and recall over the pairs of documents put in one cluster.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from benchmarks.corpus import Page, load_pages, render_plain_text

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

PAYWALL_NOTICES = [
    "You have 50.51% of this article left to read. The rest is for subscribers only.",
    "Subscribe to continue reading this article.",
    "This article is for subscribers. Already a subscriber? Log in",
    "To read the full story, start your free trial today.",
]
LEAD_INS = ["(AFP) -", "Syndicated from our partners.", "This story first appeared elsewhere.", "Updated"]

# What spinners do: swap a word (or a piece of a word) for a near-synonym, meaning be damned.
SYNONYMS = {
    "said": "stated", "says": "states", "big": "huge", "tell": "notify", "end": "conclude", "need": "necessary",
    "make": "build", "use": "utilize", "show": "display", "help": "assist", "get": "obtain", "new": "fresh",
    "high": "excessive", "start": "begin", "buy": "purchase", "small": "little", "important": "vital",
    "people": "individuals", "many": "numerous", "also": "moreover", "because": "since", "about": "regarding",
    "very": "extremely", "good": "beneficial", "bad": "poor", "large": "sizable", "often": "frequently",
    "however": "nevertheless", "main": "principal", "part": "portion", "way": "method", "time": "period",
    "year": "yr", "company": "firm", "country": "nation", "city": "metropolis", "government": "administration",
    "money": "funds", "world": "globe", "home": "residence", "work": "labor", "job": "occupation",
    "car": "vehicle", "child": "youngster", "children": "youngsters", "week": "wk", "month": "mo",
    "problem": "issue", "result": "outcome", "change": "alter", "find": "discover", "think": "believe",
    "want": "desire", "give": "provide", "take": "seize", "look": "appear", "keep": "retain",
    "like": "such as", "best": "finest", "last": "final", "first": "initial", "great": "excellent",
    "build": "construct", "report": "account", "plan": "scheme", "price": "cost", "area": "region",
    "will": "shall", "can": "could", "more": "extra", "most": "majority", "other": "different",
    "some": "certain", "just": "simply", "only": "solely", "while": "whilst", "before": "prior to",
    "after": "following", "around": "roughly", "made": "created", "used": "utilized",
    "into": "in to", "over": "above", "under": "beneath", "between": "amongst", "through": "via",
    "during": "throughout", "against": "versus", "without": "sans", "within": "inside",
}
IN_WORD = ("tell", "end", "big", "make", "use", "need", "port", "ten")  # swapped inside longer words too
IN_WORD_SWAPS = {"tell": "notify", "end": "conclude", "big": "huge", "make": "build", "use": "utilize",
                 "need": "necessary", "port": "harbor", "ten": "10"}


@dataclass(frozen=True)
class Item:
    doc_id: str
    site: str
    text: str
    story: str  # the truth: documents with one story are duplicates
    kind: str  # original, unrelated, syndicated, paywall, edited, spun, spun_paywall, edited_syndicated
    truncated: bool
    published: datetime


def corpus_stories(pages: list[Page]) -> dict[str, str]:
    """page id -> story id, merging pages whose bodies are copies (exact shingle sets, no sketches)."""
    grams = {p.id: {hash(" ".join(t)) for t in zip(*(_WORD.findall(p.body.lower())[i:] for i in range(5)))} for p in pages}
    postings: dict[int, list[str]] = {}
    for pid, g in grams.items():
        for h in g:
            postings.setdefault(h, []).append(pid)
    parent = {p.id: p.id for p in pages}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for pid, g in grams.items():
        shared: dict[str, int] = {}
        for h in g:
            for other in postings[h]:
                if other > pid:
                    shared[other] = shared.get(other, 0) + 1
        for other, n in shared.items():
            a, b = len(g), len(grams[other])
            if n >= 0.5 * (a + b - n) or n >= 0.8 * min(a, b):
                ra, rb = find(pid), find(other)
                parent[max(ra, rb)] = min(ra, rb)
    by_url: dict[str, str] = {}
    for p in pages:  # one URL crawled twice is one story, however much the page changed
        parts = urlsplit(p.url)
        url = f"{(parts.hostname or '').removeprefix('www.')}{parts.path.rstrip('/')}?{parts.query}".lower()
        if url in by_url:
            ra, rb = find(p.id), find(by_url[url])
            parent[max(ra, rb)] = min(ra, rb)
        by_url.setdefault(url, p.id)
    return {pid: f"s{find(pid)}" for pid in parent}


def _norm(s: str) -> str:
    return " ".join(_WORD.findall(s.lower()))


def page_chrome(page: Page) -> list[str]:
    """The lines of the page's plain-text rendering that are not part of its body."""
    body = _norm(page.body)
    lines, seen = [], set()
    for line in render_plain_text(page.html_bytes()).splitlines():
        n = _norm(line)
        if not n or n in body or n in seen:
            continue
        seen.add(n)
        lines.append(line)
    return lines


def _template(lines: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    if not lines:
        return [], []
    head = lines[: rng.randint(4, 25)]
    foot = lines[-rng.randint(4, 25) :] if len(lines) > len(head) else []
    return head, foot


def _paragraphs(body: str) -> list[str]:
    return [p.strip() for p in body.split("\n") if p.strip()]


def _cut(body: str, rng: random.Random) -> str:
    words_total = len(body.split())
    target = int(words_total * rng.uniform(0.2, 0.7))
    out, count = [], 0
    for para in _paragraphs(body):
        sentences = _SENTENCE_END.split(para)
        kept = []
        for s in sentences:
            if count >= target:
                break
            kept.append(s)
            count += len(s.split())
        if kept:
            out.append(" ".join(kept))
        if count >= target:
            break
    return "\n".join(out)


def _edit(body: str, share: float, rng: random.Random, vocabulary: list[str]) -> str:
    out_paras = []
    for para in _paragraphs(body):
        out = []
        for word in para.split(" "):
            r = rng.random()
            if r < share / 2:
                out.append(rng.choice(vocabulary))  # replaced
            elif r < share * 3 / 4:
                continue  # deleted
            elif r < share:
                out.extend([word, rng.choice(vocabulary)])  # inserted
            else:
                out.append(word)
        out_paras.append(" ".join(out))
    return "\n".join(out_paras)


def _spin(body: str, rng: random.Random, p: float = 0.9) -> str:
    def swap(match: re.Match) -> str:
        word = match.group(0)
        low = word.lower()
        if low in SYNONYMS and rng.random() < p:
            new = SYNONYMS[low]
            return new.capitalize() if word[0].isupper() else new
        for piece in IN_WORD:
            if piece in low and low != piece and rng.random() < p:
                return low.replace(piece, IN_WORD_SWAPS[piece], 1)
        return word

    return "\n".join(re.sub(r"[A-Za-z]+", swap, para) for para in _paragraphs(body))


def _document(head: list[str], body: str, foot: list[str], extra_top: list[str] = (), extra_bottom: list[str] = ()) -> str:
    return "\n".join([*head, *extra_top, *_paragraphs(body), *extra_bottom, *foot])


def build_set(seed: int = 0, pages: list[Page] | None = None) -> list[Item]:
    rng = random.Random(seed)
    pages = pages if pages is not None else load_pages()
    stories = [p for p in pages if len(p.body.split()) >= 50]
    story_of = corpus_stories(stories)
    chrome = {p.id: page_chrome(p) for p in pages}
    vocabulary = sorted({w for p in stories[:200] for w in p.body.split() if w.isalpha() and 3 <= len(w) <= 10})
    templates = [p for p in pages if len(chrome[p.id]) >= 12]
    rng.shuffle(templates)
    home_sites = [(f"home{i}.example", _template(chrome[t.id], rng)) for i, t in enumerate(templates[:30])]
    syndicators = [(f"syndicator{i}.example", _template(chrome[t.id], rng)) for i, t in enumerate(templates[30:55])]
    base = datetime(2025, 6, 1, tzinfo=timezone.utc)

    items: list[Item] = []
    for page in stories:
        story = story_of[page.id]
        published = base + timedelta(days=rng.randint(0, 120))
        if rng.random() < 1 / 3:
            site, (head, foot) = (urlsplit(page.url).hostname or page.id), _template(chrome[page.id], rng)
        else:
            site, (head, foot) = rng.choice(home_sites)
        original = page.page_type == "article" and len(page.body.split()) >= 150
        items.append(Item(f"{page.id}-0", site, _document(head, page.body, foot), story,
                          "original" if original else "unrelated", False, published))
        if not original or rng.random() >= 0.6:
            continue
        for n in range(1, rng.randint(1, 3) + 1):
            kind = rng.choice(["syndicated", "paywall", "edited", "spun", "spun_paywall", "edited_syndicated"])
            body, truncated, top, bottom = page.body, False, [], []
            copy_site, (c_head, c_foot) = rng.choice(syndicators)
            if kind in ("paywall", "edited", "spun", "spun_paywall") and rng.random() < 0.5:
                copy_site, c_head, c_foot = site, head, foot  # the same site publishes a second copy
            if "spun" in kind:
                body = _spin(body, rng)
            if "edited" in kind:
                body = _edit(body, 0.10, rng, vocabulary)
            if "paywall" in kind:
                body = _cut(body, rng)
                bottom = [rng.choice(PAYWALL_NOTICES)]
                truncated = rng.random() < 0.5
            if kind in ("syndicated", "edited_syndicated") and rng.random() < 0.5:
                top = [rng.choice(LEAD_INS)]
            items.append(Item(f"{page.id}-{n}", copy_site, _document(c_head, body, c_foot, top, bottom), story, kind,
                              truncated, published + timedelta(hours=rng.randint(1, 96))))
    rng.shuffle(items)
    return items


def true_pairs(items: list[Item]) -> set[tuple[str, str]]:
    by_story: dict[str, list[str]] = {}
    for it in items:
        by_story.setdefault(it.story, []).append(it.doc_id)
    return {(a, b) if a < b else (b, a) for ids in by_story.values() for i, a in enumerate(ids) for b in ids[i + 1 :]}


def cluster_pairs(clusters: list[list[str]]) -> set[tuple[str, str]]:
    return {(a, b) if a < b else (b, a) for ids in clusters for i, a in enumerate(ids) for b in ids[i + 1 :]}


def pairwise_scores(predicted: set[tuple[str, str]], truth: set[tuple[str, str]]) -> tuple[float, float]:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    return precision, recall


if __name__ == "__main__":
    from collections import Counter

    items = build_set()
    print(f"{len(items)} documents, {len({i.story for i in items})} stories, {len(true_pairs(items))} duplicate pairs")
    print(Counter(i.kind for i in items))
    print(f"{len({i.site for i in items})} sites")
