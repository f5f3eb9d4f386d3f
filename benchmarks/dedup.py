"""Deduplication benchmarks.

``python -m benchmarks.dedup quality``   the near-duplicate set of ``benchmarks/neardup_set.py``: pairwise
    precision/recall of docclean (chrome step + MinHash/LSH + verification) beside plain datasketch
    MinHashLSH at 0.8 on 5-word shingles (on the scraped text, and on the chrome-stripped text).
``python -m benchmarks.dedup minhash``   datasketch vs rensa: signatures/s and Jaccard estimation error.
``python -m benchmarks.dedup scale --docs 100000 [--baseline]``   time and memory of fingerprint + plan
    over synthetic documents (8-40 corpus sentences recombined; 5% are near copies of a recent one), in
    runs of ``--run-size`` documents against the growing persisted index (texts in an on-disk store, as
    the archive would be), or (``--baseline``) of a plain datasketch MinHash + MinHashLSH loop. The
    machine is shared: CPU seconds are the comparable figure.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks import neardup_set
from docclean import chrome, dedup
from docclean.config import ChromeConfig, DedupConfig
from docclean.document import Document


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _documents(items: list[neardup_set.Item]) -> list[Document]:
    return [
        Document(doc_id=it.doc_id, source_path=f"{it.site}/{it.doc_id}.txt", source_sha256=it.doc_id, text=it.text,
                 url=f"https://{it.site}/{it.doc_id}", truncated=it.truncated, published=it.published)
        for it in items
    ]


def strip_chrome(docs: list[Document], config: ChromeConfig, state_dir: Path | None = None) -> tuple[list[Document], int]:
    import pyarrow as pa

    lines = pa.concat_tables([chrome.line_keys(d, config) for d in docs])
    chrome_set = chrome.plan(lines, state_dir, config)
    out, removed = [], 0
    for d in docs:
        new, edits = chrome.strip_repeated_lines(d, chrome_set, config)
        removed += len(edits)
        out.append(new.replace(reject_reason=None, reject_detail=None) if new.rejected else new)
    return out, removed


def docclean_clusters(docs: list[Document], config: DedupConfig, state_dir: Path | None = None):
    texts = {d.doc_id: d.text for d in docs}
    table = dedup.candidates_table((d, dedup.fingerprint(d.text, config)) for d in docs)
    plan = dedup.plan(table, state_dir, config, lambda ids: {i: texts[i] for i in ids})
    groups: dict[str, list[str]] = {}
    for row in plan.duplicates.to_pylist():
        groups.setdefault(row["duplicate_of"], [row["duplicate_of"]]).append(row["doc_id"])
    return list(groups.values()), plan


def _shingle_bytes(text: str, n: int = 5) -> list[bytes]:
    return [s.encode() for s in set(dedup.shingles(dedup.words(text), n))]


def datasketch_clusters(texts: dict[str, str], threshold: float = 0.8, num_perm: int = 128) -> list[list[str]]:
    """The standard recipe: MinHash of word 5-grams, MinHashLSH at ``threshold``, union of the hits."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    parent = {d: d for d in texts}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for doc_id, text in texts.items():
        m = MinHash(num_perm=num_perm)
        m.update_batch(_shingle_bytes(text))
        for other in lsh.query(m):
            parent[find(doc_id)] = find(other)
        lsh.insert(doc_id, m)
    groups: dict[str, list[str]] = {}
    for d in texts:
        groups.setdefault(find(d), []).append(d)
    return [g for g in groups.values() if len(g) > 1]


def quality(args) -> None:
    from benchmarks.corpus import load_pages, split

    items = neardup_set.build_set(seed=args.seed, pages=split(load_pages(), args.part))
    truth = neardup_set.true_pairs(items)
    docs = _documents(items)
    print(f"set: {len(items)} documents, {len({i.story for i in items})} stories, {len(truth)} duplicate pairs")
    kinds = {it.doc_id: it.kind for it in items}

    def report(name: str, clusters: list[list[str]], seconds: float) -> None:
        predicted = neardup_set.cluster_pairs(clusters)
        p, r = neardup_set.pairwise_scores(predicted, truth)
        print(f"{name:<46} precision {p:.4f}  recall {r:.4f}  ({len(predicted)} pairs, {seconds:.1f} s)")
        if args.verbose:
            missed: dict[str, int] = {}
            for a, b in truth - predicted:
                kind = kinds[b] if kinds[a] in ("original", "unrelated") else kinds[a]
                missed[kind] = missed.get(kind, 0) + 1
            print(f"    missed by kind: {missed}; false pairs: {sorted(predicted - truth)[:8]}")

    t = time.perf_counter()
    report("datasketch MinHashLSH 0.8 (scraped text)", datasketch_clusters({d.doc_id: d.text for d in docs}), time.perf_counter() - t)
    t = time.perf_counter()
    stripped, removed = strip_chrome(docs, ChromeConfig())
    chrome_seconds = time.perf_counter() - t
    print(f"chrome step: {removed} repeated lines removed in {chrome_seconds:.1f} s")
    t = time.perf_counter()
    report("datasketch MinHashLSH 0.8 (chrome stripped)", datasketch_clusters({d.doc_id: d.text for d in stripped}), time.perf_counter() - t)
    t = time.perf_counter()
    report("datasketch MinHashLSH 0.5 (chrome stripped)", datasketch_clusters({d.doc_id: d.text for d in stripped}, 0.5), time.perf_counter() - t)
    config = DedupConfig()
    t = time.perf_counter()
    clusters, _ = docclean_clusters(docs, config)
    report("docclean dedup alone (scraped text)", clusters, time.perf_counter() - t)
    t = time.perf_counter()
    clusters, plan = docclean_clusters(stripped, config)
    report("docclean chrome + dedup", clusters, time.perf_counter() - t + chrome_seconds)
    print(f"    plan stats: {plan.stats}")


def minhash(args) -> None:
    """Signatures/s and mean absolute error of the Jaccard estimate, same shingles, same num_perm."""
    from datasketch import MinHash
    from rensa import RMinHash

    items = neardup_set.build_set(seed=args.seed)[: args.docs]
    shingle_sets = [set(dedup.shingles(dedup.words(it.text), 3)) for it in items]
    by_story: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_story.setdefault(it.story, []).append(i)
    pairs = [(g[0], g[j]) for g in by_story.values() for j in range(1, len(g))]
    rng = random.Random(0)
    pairs += [(rng.randrange(len(items)), rng.randrange(len(items))) for _ in range(len(pairs))]
    exact = [len(shingle_sets[a] & shingle_sets[b]) / max(1, len(shingle_sets[a] | shingle_sets[b])) for a, b in pairs]

    def run(name, make, estimate):
        t = time.process_time()  # CPU seconds: the machine is shared
        sigs = [make(s) for s in shingle_sets]
        seconds = time.process_time() - t
        err = np.mean([abs(estimate(sigs[a], sigs[b]) - e) for (a, b), e in zip(pairs, exact)])
        words = sum(len(s) for s in shingle_sets)
        print(f"{name:<28} {len(sigs) / seconds:8.0f} docs/cpu-s  {words / seconds / 1e6:6.2f} M shingles/cpu-s  "
              f"mean |J error| {err:.4f} over {len(pairs)} pairs")

    for num_perm in (128,):
        def ds_make(s, num_perm=num_perm):
            m = MinHash(num_perm=num_perm)
            m.update_batch([x.encode() for x in s])
            return m

        def rensa_make(s, num_perm=num_perm):
            m = RMinHash(num_perm=num_perm, seed=1)
            m.update(list(s))
            return m

        run(f"datasketch MinHash({num_perm})", ds_make, lambda a, b: a.jaccard(b))
        run(f"rensa RMinHash({num_perm})", rensa_make, lambda a, b: a.jaccard(b))


# ---------------------------------------------------------------------------------------------- scale


def _synthetic_texts(n: int, seed: int, sentences: list[str]):
    """``n`` documents of 8-40 corpus sentences; 5% are near copies (edited) of an earlier document."""
    rng = random.Random(seed)
    recent: list[str] = []
    for i in range(n):
        if recent and rng.random() < 0.05:
            words = rng.choice(recent).split(" ")
            for _ in range(max(1, len(words) // 20)):
                words[rng.randrange(len(words))] = rng.choice(words)
            text = " ".join(words)
        else:
            text = " ".join(rng.choice(sentences) for _ in range(rng.randint(8, 40)))
        recent.append(text)
        if len(recent) > 2000:
            recent.pop(0)
        yield f"doc{i:08d}", text


def _sentences() -> list[str]:
    from benchmarks.corpus import load_pages

    out = []
    for p in load_pages():
        out.extend(s for s in neardup_set._SENTENCE_END.split(p.body.replace("\n", " ")) if len(s.split()) >= 5)
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


class _TextStore:
    """Stands in for staging + archive: cleaned texts on disk (sqlite), so that process memory shows
    what deduplication holds, not the corpus."""

    def __init__(self, path: Path):
        import sqlite3

        self.db = sqlite3.connect(path)
        self.db.execute("create table texts (doc_id text primary key, text text)")

    def add(self, rows: list[tuple[str, str]]) -> None:
        self.db.executemany("insert into texts values (?, ?)", rows)
        self.db.commit()

    def fetch(self, doc_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(doc_ids), 500):
            chunk = doc_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(self.db.execute(f"select doc_id, text from texts where doc_id in ({marks})", chunk))
        return out


def scale(args) -> None:
    sentences = _sentences()
    config = DedupConfig()
    t0, c0 = time.perf_counter(), time.process_time()
    rss0 = _rss_mb()
    print(f"baseline RSS after loading the corpus sentences: {rss0:.0f} MB")
    if args.baseline:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=0.8, num_perm=128)
        found = 0
        for k, (doc_id, text) in enumerate(_synthetic_texts(args.docs, args.seed, sentences), 1):
            m = MinHash(num_perm=128)
            m.update_batch(_shingle_bytes(text))
            found += bool(lsh.query(m))
            lsh.insert(doc_id, m)
            if k % args.run_size == 0:
                print(f"  datasketch loop {k:>8} docs  {time.perf_counter() - t0:7.1f} s wall, "
                      f"{time.process_time() - c0:7.1f} s cpu, RSS {_rss_mb():6.0f} MB (+{_rss_mb() - rss0:.0f})", flush=True)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"datasketch loop: {args.docs} docs in {wall:.1f} s wall / {cpu:.1f} s cpu ({args.docs / cpu:.0f} docs per cpu-s), "
              f"{found} with a near copy; RSS {_rss_mb():.0f} MB, peak {_peak_rss_mb():.0f} MB")
        return

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        store = _TextStore(state / "texts.sqlite")
        fp_cpu = plan_cpu = 0.0
        duplicates = 0
        batch: list[tuple[Document, dedup.Fingerprint]] = []
        texts: list[tuple[str, str]] = []
        docs_done = 0

        def flush():
            nonlocal plan_cpu, duplicates, batch, texts
            store.add(texts)
            table = dedup.candidates_table(batch)
            batch, texts = [], []
            c = time.process_time()
            plan = dedup.plan(table, state, config, store.fetch)
            plan.save_state(state)
            plan_cpu += time.process_time() - c
            duplicates += plan.duplicates.num_rows
            index_mb = sum(f.stat().st_size for f in (state / "dedup").glob("*.parquet")) / 2**20
            print(f"  run ending at {docs_done:>8} docs: {plan.stats['candidate_pairs']:>6} candidate pairs, "
                  f"{plan.stats['duplicates']:>5} dups, {plan.stats['archived_matched']:>5} archived matched; "
                  f"index on disk {index_mb:6.1f} MB; RSS {_rss_mb():6.0f} MB (+{_rss_mb() - rss0:.0f}), "
                  f"peak {_peak_rss_mb():.0f} MB, arrow pool peak {pa.default_memory_pool().max_memory() / 2**20:.0f} MB", flush=True)

        for doc_id, text in _synthetic_texts(args.docs, args.seed, sentences):
            c = time.process_time()
            fp = dedup.fingerprint(text, config)
            fp_cpu += time.process_time() - c
            texts.append((doc_id, text))
            batch.append((Document(doc_id=doc_id, source_path=doc_id, source_sha256=doc_id, text=text), fp))
            docs_done += 1
            if len(batch) >= args.run_size:
                flush()
        if batch:
            flush()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"docclean: {args.docs} docs in {wall:.1f} s wall / {cpu:.1f} s cpu ({args.docs / cpu:.0f} docs per cpu-s); "
              f"fingerprint {fp_cpu:.1f} cpu-s ({args.docs / fp_cpu:.0f} docs/s), plan+save {plan_cpu:.1f} cpu-s; "
              f"{duplicates} duplicates; RSS {_rss_mb():.0f} MB, peak {_peak_rss_mb():.0f} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--part", choices=["train", "test", "all"], default="all", help="corpus pages the set is built from")
    q.add_argument("-v", "--verbose", action="store_true")
    m = sub.add_parser("minhash")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--docs", type=int, default=1500)
    s = sub.add_parser("scale")
    s.add_argument("--docs", type=int, default=100_000)
    s.add_argument("--run-size", type=int, default=20_000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--baseline", action="store_true", help="the plain datasketch loop instead of docclean")
    args = parser.parse_args(argv)
    {"quality": quality, "minhash": minhash, "scale": scale}[args.command](args)


if __name__ == "__main__":
    main()
