"""End-to-end benchmark: docclean vs a plainly written baseline, on a generated corpus of 1k/10k/100k docs.

    .venv/bin/python -m benchmarks.pipeline [--sizes 1000,10000] [--kinds text,html] [--workers 1,2]
                                            [--engines docclean,baseline] [--flow] [--keep]

The corpus (cached under ``$DOCCLEAN_BENCH_DIR``, default /tmp/docclean-bench) is built from the
extraction-dev pages and the project's raw/ folder:

* HTML pages: a real page as it is (its own navigation, asides, footer), with every long ``<p>`` replaced by
  a paragraph made of sentences drawn from the whole corpus's ground-truth bodies (same page language),
  so that each generated page is a new story under a real site's chrome;
* text documents: the page's plain-text rendering with all its chrome (``render_plain_text``), long lines
  replaced the same way (full pages: ~37 KB each);
* news documents: a scraped article as the seeds look, ~5 KB: the first and last few short lines of a page's
  rendering (site name, navigation, footer) around a story of 8-14 paragraphs;
* near-duplicates (15%): the paragraphs of an earlier document under another page's chrome, a third of
  them cut short (paywall);
* the files of raw/ (txt, html), once.

Every measured run is a fresh subprocess, so peak RSS is per run. docclean runs ``pipeline.run`` (the
``--engine local`` path; ``--flow`` adds the Prefect flow on the reusable local API). The baseline is the
first chain one would write: trafilatura on HTML, ftfy's default ``fix_text``, langdetect on the full text,
datasketch MinHash + MinHashLSH over word 3-shingles, pyarrow to one zstd Parquet file.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BENCH_DIR = Path(os.environ.get("DOCCLEAN_BENCH_DIR", "/tmp/docclean-bench"))
CORPUS_VERSION = "1"
BASES_VERSION = "1"

KIND_SHARES = {"text": 0.6, "html": 0.4}  # of a corpus of N documents; news is a set of its own, N documents
DUPLICATE_SHARE = 0.15
FILES_PER_FOLDER = 1000

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_LANG_ATTR = re.compile(rb"<html[^>]*\blang=[\"']?([a-zA-Z]{2})")
_PARAGRAPH = re.compile(r"(<p\b[^>]*>)(.*?)(</p>)", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")


# --------------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------------


class CorpusMaker:
    """Deterministic (seeded) generator of benchmark documents from the extraction-dev pages."""

    def __init__(self, seed: int = 7):
        from benchmarks.corpus import load_pages, render_plain_text

        self.rng = random.Random(seed)
        cache = BENCH_DIR / f"bases-v{BASES_VERSION}.json.gz"
        if cache.exists():
            bases = json.loads(gzip.decompress(cache.read_bytes()))
        else:
            bases = []
            for page in load_pages():
                raw = page.html_bytes()
                html = raw.decode("utf-8", "replace")
                m = _LANG_ATTR.search(raw[:5000])
                sentences = [s.strip() for s in _SENTENCE_END.split(page.body) if len(s.split()) >= 6]
                bases.append({"id": page.id, "lang": m.group(1).decode().lower() if m else "en", "html": html,
                              "text": render_plain_text(raw), "sentences": sentences})
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(gzip.compress(json.dumps(bases).encode(), 3))
        # Templates: pages with at least three long paragraphs (the ones we can give a new story).
        self.html_bases = [b for b in bases if sum(1 for m in _PARAGRAPH.finditer(b["html"]) if _long(m.group(2))) >= 3]
        self.text_bases = [b for b in bases if sum(1 for line in b["text"].split("\n") if _long(line)) >= 3]
        self.pool: dict[str, list[str]] = {}
        for b in bases:
            self.pool.setdefault(b["lang"], []).extend(b["sentences"])

    def paragraphs(self, lang: str, n: int) -> list[str]:
        pool = self.pool.get(lang) or self.pool["en"]
        return [" ".join(self.rng.choice(pool) for _ in range(self.rng.randint(2, 5))) for _ in range(n)]

    def html_page(self, base: dict, story: list[str] | None = None) -> tuple[str, list[str]]:
        slots = [m for m in _PARAGRAPH.finditer(base["html"]) if _long(m.group(2))]
        story = story or self.paragraphs(base["lang"], len(slots))
        out, last = [], 0
        for i, m in enumerate(slots):
            out.append(base["html"][last:m.start(2)])
            out.append(_escape(story[i]) if i < len(story) else "")
            last = m.end(2)
        out.append(base["html"][last:])
        return "".join(out), story

    def text_doc(self, base: dict, story: list[str] | None = None) -> tuple[str, list[str]]:
        lines = base["text"].split("\n")
        slots = [i for i, line in enumerate(lines) if _long(line)]
        story = story or self.paragraphs(base["lang"], len(slots))
        for k, i in enumerate(slots):
            lines[i] = story[k] if k < len(story) else ""
        return "\n".join(line for line in lines if line), story

    def news_doc(self, base: dict, story: list[str] | None = None) -> tuple[str, list[str]]:
        short = [line for line in base["text"].split("\n") if line.strip() and not _long(line)]
        head, tail = short[: self.rng.randint(3, 8)], short[-self.rng.randint(3, 8):]
        story = story or self.paragraphs(base["lang"], self.rng.randint(8, 14))
        return "\n".join(head + story + tail), story

    def build(self, root: Path, size: int) -> dict[str, int]:
        """Write ``size`` documents under root/<kind> for each kind; returns the count per kind."""
        counts = {kind: round(size * share) for kind, share in KIND_SHARES.items()}
        counts["html"] += size - sum(counts.values())
        return self.build_kinds(root, counts)

    def build_kinds(self, root: Path, counts: dict[str, int]) -> dict[str, int]:
        for kind, n in counts.items():
            folder = root / kind
            seeds = _raw_seed_files(kind)
            stories: list[list[str]] = []
            bases = self.html_bases if kind == "html" else self.text_bases
            make = {"text": self.text_doc, "news": self.news_doc, "html": self.html_page}[kind]
            for i in range(n - len(seeds)):
                base = self.rng.choice(bases)
                if stories and self.rng.random() < DUPLICATE_SHARE:
                    story = self.rng.choice(stories)
                    if self.rng.random() < 1 / 3:
                        story = story[: max(1, int(len(story) * 0.6))]
                    body, _ = make(base, story)
                else:
                    body, story = make(base)
                    if len(stories) < 5000:
                        stories.append(story)
                    else:
                        stories[self.rng.randrange(len(stories))] = story
                path = folder / f"{i // FILES_PER_FOLDER:03d}" / f"{i:06d}.{'html' if kind == 'html' else 'txt'}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body, encoding="utf-8")
            for src in seeds:
                dst = folder / "seed" / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        return counts


def _long(fragment: str) -> bool:
    return len(_TAG.sub(" ", fragment).split()) >= 12


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _raw_seed_files(kind: str) -> list[Path]:
    suffixes = {"text": (".txt",), "html": (".html", ".htm")}.get(kind, ())
    return sorted(p for p in (REPO / "raw").rglob("*") if p.is_file() and p.suffix in suffixes)


def corpus(size: int, kinds: tuple[str, ...] = ("text", "html", "news")) -> Path:
    """The benchmark corpus of ``size`` documents, building only the kinds asked for (a 100k corpus of
    full HTML pages is 14 GB). Text and HTML come from one seeded sequence (as first built); news from its own."""
    root = BENCH_DIR / f"corpus-v{CORPUS_VERSION}-{size}"
    if {"text", "html"} & set(kinds) and not (root / "DONE").exists():
        shutil.rmtree(root / "text", ignore_errors=True)
        shutil.rmtree(root / "html", ignore_errors=True)
        t0 = time.perf_counter()
        counts = CorpusMaker().build(root, size)
        (root / "DONE").write_text(json.dumps(counts))
        print(f"# built corpus {root} in {time.perf_counter() - t0:.0f} s: {counts}", flush=True)
    if "news" in kinds and not (root / "news.DONE").exists():
        shutil.rmtree(root / "news", ignore_errors=True)
        t0 = time.perf_counter()
        counts = CorpusMaker(seed=8).build_kinds(root, {"news": size})
        (root / "news.DONE").write_text(json.dumps(counts))
        print(f"# built news documents under {root} in {time.perf_counter() - t0:.0f} s: {counts}", flush=True)
    return root


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------------------------------
# The two engines (each runs in a child process)
# --------------------------------------------------------------------------------------------------


def run_docclean(input_dir: Path, out: Path, workers: int) -> dict:
    from docclean import pipeline
    from docclean.config import load_config

    config = load_config(run={"workers": workers})
    phase_peaks: dict[str, float] = {}  # this process's peak RSS (MB) when each phase begins
    marks: list[tuple[str, float]] = [("start", time.perf_counter())]  # wall clock when each phase ends

    def log(message: str) -> None:
        for phase, marker in (("dedup plan", "planning dedup"), ("commit", "dedup planned")):
            if marker in message:
                phase_peaks[phase] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for phase, marker in PHASE_ENDS:
            if marker in message:
                marks.append((phase, time.perf_counter()))

    report = pipeline.run(input_dir, out, config, log=log)
    marks.append(("report", time.perf_counter()))
    phases = {name: end - start for (_, start), (name, end) in zip(marks, marks[1:])}
    return {"docs": report.inputs, "kept": report.documents, "duplicates": report.duplicates,
            "rejects": report.rejects, "stages": report.stage_seconds, "phase_peaks": phase_peaks,
            "phases": phases}


# (phase, the log line that ends it): the wall-clock timeline of a run, to see what does not run in parallel
PHASE_ENDS = (("discover", "batches;"), ("clean batches", "planning chrome"), ("chrome plan", "chrome planned"), ("finish batches", "planning dedup"),
              ("dedup plan", "dedup planned"), ("commit", "committed"))


def run_flow(input_dir: Path, out: Path, workers: int) -> dict:
    from flows import server

    server.ensure_server(log=lambda m: print(f"# {m}", file=sys.stderr))
    import logging

    logging.getLogger("prefect").setLevel(logging.WARNING)
    config_path = out.parent / f"{out.name}.toml"
    config_path.write_text(f"[run]\nworkers = {workers}\n")
    from flows.clean import clean_flow

    result = clean_flow(input=str(input_dir), output=str(out), config_path=str(config_path))
    return {"docs": result["inputs"], "kept": result["documents"], "duplicates": result["duplicates"],
            "rejects": result["rejects"], "stages": {}}


def run_baseline(input_dir: Path, out: Path, workers: int) -> dict:
    """The chain as one would first write it: no batching, no bounds, every library at its defaults.
    Stage timers in CPU time, as docclean's."""
    import ftfy
    import langdetect
    import pyarrow as pa
    import pyarrow.parquet as pq
    import trafilatura
    from datasketch import MinHash, MinHashLSH

    langdetect.DetectorFactory.seed = 0
    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    stages = dict.fromkeys(["read", "extract", "ftfy", "language", "minhash", "write"], 0.0)
    rows = []
    for path in _files(input_dir):
        t = time.process_time()
        raw = path.read_bytes()
        text = raw.decode("utf-8", "replace")
        stages["read"] += time.process_time() - t
        t = time.process_time()
        if path.suffix in (".html", ".htm"):
            text = trafilatura.extract(text) or ""
        stages["extract"] += time.process_time() - t
        t = time.process_time()
        text = ftfy.fix_text(text)
        stages["ftfy"] += time.process_time() - t
        t = time.process_time()
        try:
            language = langdetect.detect(text)
        except langdetect.LangDetectException:
            language = "und"
        stages["language"] += time.process_time() - t
        t = time.process_time()
        words = text.lower().split()
        shingles = {" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))}
        signature = MinHash(num_perm=128)
        signature.update_batch([s.encode("utf-8") for s in shingles])
        doc_id = str(path.relative_to(input_dir))
        similar = lsh.query(signature)
        if not similar:
            lsh.insert(doc_id, signature)
        stages["minhash"] += time.process_time() - t
        rows.append({"doc_id": doc_id, "text": text, "language": language,
                     "duplicate_of": min(similar) if similar else None})
    t = time.process_time()
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out / "documents.parquet", compression="zstd")
    stages["write"] += time.process_time() - t
    dups = sum(1 for r in rows if r["duplicate_of"])
    return {"docs": len(rows), "kept": len(rows) - dups, "duplicates": dups, "rejects": 0, "stages": stages}


ENGINES = {"docclean": run_docclean, "baseline": run_baseline, "flow": run_flow}


class DescendantWatch:
    """CPU seconds and peak RSS of this process's descendants (pool workers are the forkserver's children,
    which getrusage(RUSAGE_CHILDREN) never sees), sampled twice a second."""

    def __init__(self):
        import threading

        self.cpu: dict[int, float] = {}
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.5):
            for proc in me.children(recursive=True):
                try:
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                    self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
                except psutil.Error:
                    pass

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._thread.join()
        return sum(self.cpu.values()), self.peak_rss / 2**20


def child(engine: str, input_dir: Path, out: Path, workers: int) -> None:
    shutil.rmtree(out, ignore_errors=True)
    size = sum(p.stat().st_size for p in _files(input_dir))
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    watch = DescendantWatch()
    t0 = time.perf_counter()
    result = ENGINES[engine](input_dir, out, workers)
    result["seconds"] = time.perf_counter() - t0
    result["bytes"] = size
    workers_cpu, workers_rss = watch.stop()
    me = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of this process and its workers: the fair per-core figure on a shared machine
    result["cpu_seconds"] = me.ru_utime + me.ru_stime - cpu_before + workers_cpu
    result["peak_rss_mb"] = me.ru_maxrss / 1024
    result["peak_rss_children_mb"] = workers_rss  # the largest single worker
    print("RESULT " + json.dumps(result), flush=True)


def measure(engine: str, input_dir: Path, out: Path, workers: int = 1) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.pipeline", "--child", engine, str(input_dir), str(out), str(workers)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{engine} on {input_dir} failed:\n{proc.stderr[-3000:]}")


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def _line(label: str, r: dict) -> str:
    rate = r["docs"] / r["seconds"]
    per_cpu = r["docs"] / r["cpu_seconds"]
    rss = max(r["peak_rss_mb"], r["peak_rss_children_mb"])
    return (f"{label:<24} {r['docs']:>6} docs  wall {r['seconds']:>7.1f} s {rate:>6.1f} docs/s "
            f"{r['bytes'] / 1e6 / r['seconds']:>5.2f} MB/s | cpu {r['cpu_seconds']:>7.1f} s {per_cpu:>6.1f} docs/cpu-s "
            f"{r['bytes'] / 1e6 / r['cpu_seconds']:>5.2f} MB/cpu-s | peak RSS {rss:>5.0f} MB "
            f"(kept {r['kept']}, dup {r['duplicates']}, rej {r['rejects']})")


def _stages(r: dict) -> str:
    """Per-stage CPU ms per document (docclean's stage timers count CPU time), and the rest of the run's
    CPU time: reading, rows, staging and archive Parquet, the global plans, imports and model loading."""
    docs = max(1, r["docs"])
    total = r["cpu_seconds"] or 1.0
    parts = sorted(r["stages"].items(), key=lambda kv: -kv[1])
    other = r["cpu_seconds"] - sum(r["stages"].values())
    return "    stages (CPU ms/doc): " + ", ".join(
        f"{k} {1000 * v / docs:.1f} ({100 * v / total:.0f}%)" for k, v in parts
    ) + f"; outside the stages {1000 * other / docs:.1f} ({100 * other / total:.0f}%)"


def _memory(r: dict) -> str | None:
    """Where the peak was: the largest worker, and the main process before, during and after the dedup
    plan (whose arrays are the dedup index of the run: signatures, band keys, candidate pairs)."""
    peaks = r.get("phase_peaks") or {}
    if "dedup plan" not in peaks:
        return None
    through_plan = peaks.get("commit", r["peak_rss_mb"])
    # a commit that raised the peak above the plan's is counted: it is not the dedup index
    commit = r["peak_rss_mb"] if r["peak_rss_mb"] > through_plan else 0.0
    outside = max(r["peak_rss_children_mb"], peaks["dedup plan"], commit)
    return (f"    memory (peak RSS, MB): largest worker {r['peak_rss_children_mb']:.0f}; main before the dedup plan "
            f"{peaks['dedup plan']:.0f}, through the plan {through_plan:.0f}, through the commit "
            f"{r['peak_rss_mb']:.0f}; everything but the dedup plan {outside:.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000", help="comma-separated corpus sizes (1000,10000,100000)")
    parser.add_argument("--kinds", default="text,news,html")
    parser.add_argument("--engines", default="docclean,baseline")
    parser.add_argument("--workers", default="1", help="comma-separated worker counts for docclean (e.g. 1,2)")
    parser.add_argument("--flow", action="store_true", help="also run the Prefect flow (workers=1)")
    parser.add_argument("--keep", action="store_true", help="keep the archives under the bench folder")
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "INPUT", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine, input_dir, out, workers = args.child
        child(engine, Path(input_dir), Path(out), int(workers))
        return 0

    print(f"# docclean end-to-end benchmark, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
          f"(machine shared with other work: figures as measured)", flush=True)
    engines = args.engines.split(",") + (["flow"] if args.flow else [])
    worker_counts = [int(w) for w in args.workers.split(",")]
    for size in [int(s) for s in args.sizes.split(",")]:
        root = corpus(size, tuple(args.kinds.split(",")))
        totals: dict[str, dict] = {}
        for kind in args.kinds.split(","):
            results = {}
            for engine in engines:
                for workers in (worker_counts if engine == "docclean" else [1]):
                    label = f"{engine}" + (f" x{workers}" if engine == "docclean" and len(worker_counts) > 1 else "")
                    out = BENCH_DIR / "out" / f"{size}-{kind}-{engine}-{workers}"
                    r = measure(engine, root / kind, out, workers)
                    r["workers"] = workers
                    results[label] = r
                    print(_line(f"{size:>6} {kind:<4} {label}", r), flush=True)
                    if r["stages"]:
                        print(_stages(r), flush=True)
                    if _memory(r):
                        print(_memory(r), flush=True)
                    if r.get("phases"):
                        print("    phases (wall s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items()),
                              flush=True)
                    if not args.keep:
                        shutil.rmtree(out, ignore_errors=True)
                    t = totals.setdefault(label, {"docs": 0, "seconds": 0.0, "cpu_seconds": 0.0})
                    t["docs"] += r["docs"]
                    t["seconds"] += r["seconds"]
                    t["cpu_seconds"] += r["cpu_seconds"]
            base = results.get("baseline")
            for label, r in results.items():
                if base and label != "baseline":
                    wall = base["seconds"] / r["seconds"] * r["docs"] / base["docs"]
                    cpu = base["cpu_seconds"] / r["cpu_seconds"] * r["docs"] / base["docs"]
                    print(f"{size:>6} {kind:<4} {label} / baseline: {wall:.2f}x wall, {cpu:.2f}x cpu", flush=True)
            ones = [r for lbl, r in results.items() if lbl.startswith("docclean") and r["workers"] == 1]
            for lbl, r in results.items():
                if ones and lbl.startswith("docclean") and r["workers"] > 1:
                    print(f"{size:>6} {kind:<4} {lbl} / docclean x1 speed-up: {ones[0]['seconds'] / r['seconds']:.2f}x",
                          flush=True)
        for label, t in totals.items():
            print(f"{size:>6} all  {label:<20} {t['docs'] / t['seconds']:.1f} docs/s wall, "
                  f"{t['docs'] / t['cpu_seconds']:.1f} docs/cpu-s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
