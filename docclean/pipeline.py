"""The pipeline as plain functions over batches, with no Prefect in it (flows/ composes these).

A run goes through four steps; only the two global ones need to see all documents, and they see only
small columns (line hashes, signatures), so batches can run in other processes or on other machines:

1. ``process_batch``   per batch: read -> normalize -> extract -> boilerplate -> repair; staged to Parquet.
2. ``plan_chrome``      global: lines that recur across documents of one site (this run and earlier ones).
3. ``finalize_batch``  per batch: strip those lines, detect language, fingerprint for dedup; staged.
4. ``plan_dedup``      global: clusters of copies (the shingles it verifies are computed per batch file).
5. ``split_batch``     per batch: kept documents and duplicates staged as the batch's archive parts.
6. ``commit_run``      global: demotions, the accounting, the state; one atomic commit of every table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import threading
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__
from .archive import DOCUMENTS_SCHEMA, DUPLICATES_SCHEMA, REJECTS_SCHEMA, RUNS_SCHEMA, Archive, file_metadata
from .config import Config
from .document import Document, Edit, StageStats

PIPELINE_VERSION = __version__
# Per-stage timers count this thread's CPU time: on a machine shared with other work, wall time charged
# every stage for the time it waited for a core (the batch's own ``seconds`` stay wall time).
_stage_clock = time.thread_time
MAX_REJECT_RAW_BYTES = 32 * 1024 * 1024  # raw bytes kept in a reject row; the source path and sha256 always


class AccountingError(RuntimeError):
    """Inputs != documents + duplicates + rejects + skipped: a document would have been lost."""


class DocumentTimeout(BaseException):
    """Raised by the per-document time limit. A BaseException, so that no stage's `except Exception`
    can swallow it and go on working on the document that ran out of time."""


# --------------------------------------------------------------------------------------------------
# Per-document chain
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _time_limit(seconds: float):
    """SIGALRM-based limit; only possible on the main thread (elsewhere the limit is not enforced)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise DocumentTimeout()

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Stages:
    """The per-document stages, resolved once per process (some load tables or models)."""

    config: Config
    repair_model: object | None = None
    stats: dict[str, StageStats] = field(default_factory=dict)

    def chain(self) -> list[tuple[str, Callable[[Document], tuple[Document, list[Edit]]]]]:
        from . import boilerplate, extract, normalize, repair

        c = self.config
        # Extract first: it passes text through untouched, and HTML is normalized once it is text.
        steps = [
            ("extract", lambda d: extract.extract(d, c.extract)),
            ("normalize", lambda d: normalize.normalize(d, c.normalize)),
        ]
        if c.boilerplate.enabled:
            steps.append(("boilerplate", lambda d: boilerplate.strip_boilerplate(d, c.boilerplate)))
        if c.repair.mode != "off":
            steps.append(("repair", lambda d: repair.repair(d, c.repair, self.repair_model)))
        return steps

    def run(self, doc: Document, steps=None) -> Document:
        for name, fn in steps or self.chain():
            if doc.rejected:
                break
            stats = self.stats.setdefault(name, StageStats())
            t0 = _stage_clock()
            try:
                doc, edits = fn(doc)
            except DocumentTimeout:
                raise
            except Exception as exc:  # a bug or a pathological input in one stage rejects one document
                doc = doc.reject("stage_error", f"{name}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
                edits = []
            stats.seconds += _stage_clock() - t0
            stats.documents += 1
            stats.count(edits)
            if doc.rejected:
                stats.rejected += 1
        return doc


def clean_document(doc: Document, config: Config | None = None, stages: Stages | None = None) -> Document:
    """Run every per-document stage (normalize, extract, boilerplate, repair, language) on one document.

    The cross-document steps (repeated-line chrome, dedup) need a corpus and run in the batch functions."""
    from . import language

    stages = stages or Stages(config or Config())
    doc = stages.run(doc)
    if not doc.rejected:
        doc, _ = language.detect(doc, stages.config.language)
    return doc


# --------------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------------


def _removals(doc: Document) -> list[dict]:
    return [{"rule": r.rule, "text": r.text, "stage": r.stage} for r in doc.removed]


def document_row(doc: Document, run_id: str, now: datetime) -> dict:
    return {
        "doc_id": doc.doc_id,
        "source_path": doc.source_path,
        "source_sha256": doc.source_sha256,
        "source_mtime": doc.source_mtime,
        "url": doc.url,
        "title": doc.title,
        "published": doc.published,
        "author": doc.author,
        "publisher": doc.publisher,
        "dateline": doc.dateline,
        "language": doc.language,
        "language_score": doc.language_score,
        "text": doc.text,
        "chars": len(doc.text),
        "truncated": doc.truncated,
        "content_type": doc.content_type,
        "encoding": doc.encoding,
        "removed": _removals(doc),
        "repairs": [asdict(r) for r in doc.repairs],
        "fixes": [{"rule": f.rule, "detail": f.detail, "stage": f.stage} for f in doc.fixes],
        "duplicate_of": doc.duplicate_of,
        "run_id": run_id,
        "pipeline_version": PIPELINE_VERSION,
        "processed_at": now,
    }


def reject_row(doc: Document, run_id: str, now: datetime) -> dict:
    raw = doc.raw or b""
    if not raw and (doc.text or doc.html):
        raw = (doc.html or doc.text).encode("utf-8", "surrogatepass")
    return {
        "doc_id": doc.doc_id,
        "source_path": doc.source_path,
        "source_sha256": doc.source_sha256,
        "source_mtime": doc.source_mtime,
        "url": doc.url,
        "reason": doc.reject_reason or "unknown",
        "detail": doc.reject_detail,
        "language": doc.language,
        "content_type": doc.content_type,
        "encoding": doc.encoding,
        "raw": raw[:MAX_REJECT_RAW_BYTES],
        "raw_size": len(raw),
        "raw_truncated": len(raw) > MAX_REJECT_RAW_BYTES,
        "text": doc.text or None,
        "removed": _removals(doc),
        "run_id": run_id,
        "pipeline_version": PIPELINE_VERSION,
        "processed_at": now,
    }


def _doc_from_row(row: dict) -> Document:
    from .document import Fix, Removal, Repair

    return Document(
        doc_id=row["doc_id"], source_path=row["source_path"], source_sha256=row["source_sha256"],
        source_mtime=row["source_mtime"], content_type=row["content_type"] or "text", encoding=row["encoding"],
        text=row["text"] or "", url=row["url"], title=row["title"], published=row["published"],
        author=row["author"], publisher=row["publisher"], dateline=row["dateline"], language=row["language"],
        language_score=row["language_score"], truncated=bool(row["truncated"]),
        # positional: keyword construction of hundreds of removals per page was most of this function
        removed=tuple(Removal(r["rule"], r["text"], r["stage"]) for r in row["removed"] or ()),
        repairs=tuple(Repair(**r) for r in row["repairs"] or ()),
        fixes=tuple(Fix(f["rule"], f["detail"], f["stage"]) for f in row["fixes"] or ()),
    )


# Staged rows carry what the global steps need, next to the document columns.
STAGE_A_SCHEMA = DOCUMENTS_SCHEMA.append(pa.field("site", pa.string())).append(
    pa.field("line_hashes", pa.list_(pa.uint64()))  # chrome's hash of each line, for finalize_batch's strip
)
STAGE_B_SCHEMA = STAGE_A_SCHEMA.append(pa.field("text_hash", pa.uint64())).append(
    pa.field("minhash", pa.list_(pa.uint32()))
)


# --------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------


@dataclass
class BatchSummary:
    batch: int
    inputs: int = 0
    staged: int = 0
    rejects: int = 0
    skipped: int = 0
    bytes_read: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    removals_by_rule: dict[str, int] = field(default_factory=dict)
    repairs_by_rule: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    entries_not_documents: dict[str, int] = field(default_factory=dict)
    chars_before: int = 0
    chars_after: int = 0
    truncated: int = 0
    seconds: float = 0.0

    def merge_stats(self, stats: dict[str, StageStats]) -> None:
        for name, s in stats.items():
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + s.seconds


def plan_batches(sources: list, batch_size: int) -> list[list]:
    """Group files into batches of about ``batch_size`` documents. A container (jsonl, warc) counts by its
    size against the average document, so one big file doesn't make one giant batch of small ones."""
    batches: list[list] = []
    current: list = []
    weight = 0.0
    for src in sources:
        name = src.rel.lower()
        w = max(1.0, src.size / 8192) if any(s in name for s in (".jsonl", ".warc")) else 1.0
        if current and weight + w > batch_size:
            batches.append(current)
            current, weight = [], 0.0
        current.append(src)
        weight += w
    if current:
        batches.append(current)
    return batches


def known_ids_by_batch(archive: Archive, batches: list[list]) -> tuple[list[set[str]], int]:
    """The archived doc_ids each batch may meet again, and how many are archived in all.

    A document's id hashes its path and bytes, so only ids archived from the batch's own files (or their
    container entries, ``path#n``) can recur in it. Each batch gets those, not the archive's whole id set:
    a million ids pickled to every batch task would cost more than the batch's work."""
    batch_of = {src.rel: i for i, batch in enumerate(batches) for src in batch}
    per_batch: list[set[str]] = [set() for _ in batches]
    total = 0
    for name in ("documents", "duplicates", "rejects"):
        if not archive.files(name):
            continue
        table = archive.table(name, columns=["doc_id", "source_path"])
        total += table.num_rows
        for doc_id, path in zip(table["doc_id"].to_pylist(), table["source_path"].to_pylist()):
            i = batch_of.get(path)
            if i is None and "#" in path:
                i = batch_of.get(path.rsplit("#", 1)[0])
            if i is not None:
                per_batch[i].add(doc_id)
    return per_batch, total


def _write_stage(table_rows: list[dict], schema: pa.Schema, path: Path) -> None:
    table = pa.Table.from_pylist(table_rows, schema=schema)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=1)
    tmp.replace(path)


def process_batch(input_root: str | Path, sources: list, config: Config, work_dir: str | Path, batch: int,
                  run_id: str, known_ids: set[str] | None = None, state_dir: str | Path | None = None) -> BatchSummary:
    """Step 1 for one batch of source files: read and clean each document, stage the results."""
    from . import chrome, read
    from . import repair as repair_mod

    t_start = time.perf_counter()
    work = Path(work_dir)
    if not work.is_dir():  # the run was killed and recovered meanwhile: never re-create its folder
        raise FileNotFoundError(f"the run's staging folder {work} is gone")
    now = datetime.now(timezone.utc)
    summary = BatchSummary(batch=batch)
    known_ids = known_ids or set()
    root = Path(input_root)

    model = None
    if config.repair.mode != "off":
        model = repair_mod.RepairModel.load(Path(state_dir) if state_dir else None)
        _freeze_long_lived_objects()
    stages = Stages(config, repair_model=model)
    steps = stages.chain()
    # With a repair model, repair waits until the whole batch is learned (evidence from several documents
    # is stronger); every other stage runs as each document is read, so a batch never holds the decoded
    # HTML of all its pages at once (hundreds of 300 KB pages), and a page is parsed while it is in cache.
    first_steps = [s for s in steps if s[0] != "repair"] if model is not None else steps
    docs: list[Document] = []
    read_stats = read.ReadStats()
    for src in sources:
        summary.bytes_read += src.size
        for doc in read.read_source(root, src, config.read, read_stats):
            summary.inputs += 1
            if doc.doc_id in known_ids:
                summary.skipped += 1
                continue
            docs.append(_run_with_limit(stages, doc, first_steps, config))

    # Container entries that are not documents (WARC request records, blank jsonl lines) are counted.
    summary.entries_not_documents = dict(read_stats.skipped)
    if model is not None:
        t_learn = _stage_clock()
        for i, d in enumerate(docs):
            if d.rejected:
                continue
            try:  # learning is per-document work too: under the same time limit
                with _time_limit(config.run.doc_timeout_seconds):
                    model.learn([d.text])
            except DocumentTimeout:
                docs[i] = d.reject("timeout", f"learning repair pairs took longer than {config.run.doc_timeout_seconds:g} s")
        stages.stats.setdefault("repair", StageStats()).seconds += _stage_clock() - t_learn  # learning is repair's cost too
        # This batch's evidence only: commit_run merges every batch's into the archive's pairs.
        evidence = model.learned_evidence()
        tmp = work / f"repair-evidence-{batch:05d}.parquet.tmp"
        pq.write_table(evidence, tmp)
        tmp.replace(work / f"repair-evidence-{batch:05d}.parquet")
        rest = [s for s in steps if s[0] == "repair"]
        docs = [d if d.rejected else _run_with_limit(stages, d, rest, config) for d in docs]

    kept_rows, reject_rows, line_tables = [], [], []
    t_lines = 0.0
    for doc in docs:
        if doc.rejected:
            reject_rows.append(reject_row(doc, run_id, now))
            summary.rejects_by_reason[doc.reject_reason] = summary.rejects_by_reason.get(doc.reject_reason, 0) + 1
            continue
        row = document_row(doc, run_id, now)
        site = chrome.site_key(doc)
        row["site"] = site
        kept_rows.append(row)
        t = _stage_clock()
        lines, row["line_hashes"] = chrome.line_keys_and_hashes(doc, config.chrome)
        line_tables.append(lines)
        t_lines += _stage_clock() - t
    stages.stats.setdefault("chrome", StageStats()).seconds += t_lines
    summary.staged = len(kept_rows)
    summary.rejects = len(reject_rows)
    summary.merge_stats(stages.stats)
    for s in stages.stats.values():
        for rule, n in s.by_rule.items():
            summary.removals_by_rule[rule] = summary.removals_by_rule.get(rule, 0) + n
    _write_stage(kept_rows, STAGE_A_SCHEMA, work / f"a-{batch:05d}.parquet")
    _write_stage(reject_rows, REJECTS_SCHEMA, work / f"rejects-a-{batch:05d}.parquet")
    if line_tables:
        pq.write_table(pa.concat_tables(line_tables), work / f"lines-{batch:05d}.parquet", compression="zstd",
                       compression_level=1)
    summary.seconds = time.perf_counter() - t_start
    return summary


_frozen = False


def _freeze_long_lived_objects() -> None:
    """Once per process, when the stage tables are loaded: move every object alive now out of the cyclic
    garbage collector's sight (gc.freeze). The tables (words, pairs, profiles) are millions of objects that
    live as long as the process, and each full collection scanned them all again (~1 ms a page). Objects
    frozen are still freed by reference counting; only cycles among them would stay, once per process."""
    global _frozen
    if not _frozen:
        import gc

        gc.freeze()
        _frozen = True


def _run_with_limit(stages: Stages, doc: Document, steps, config: Config) -> Document:
    try:
        with _time_limit(config.run.doc_timeout_seconds):
            return stages.run(doc, steps)
    except DocumentTimeout:
        return doc.reject("timeout", f"cleaning took longer than {config.run.doc_timeout_seconds:g} s")


def plan_chrome(work_dir: str | Path, state_dir: Path, config: Config):
    from . import chrome
    import pyarrow.dataset as pds

    files = sorted(str(p) for p in Path(work_dir).glob("lines-*.parquet"))
    if not files:
        return None
    return chrome.plan(pds.dataset(files, format="parquet"), state_dir, config.chrome, spill_dir=Path(work_dir))


def finalize_batch(work_dir: str | Path, batch: int, config: Config, chrome_set=None) -> BatchSummary:
    """Step 3 for one batch: strip cross-document chrome, detect language, fingerprint, stage again."""
    from . import chrome, dedup, language

    work = Path(work_dir)
    summary = BatchSummary(batch=batch)
    t0 = time.perf_counter()
    table = pq.read_table(work / f"a-{batch:05d}.parquet", schema=STAGE_A_SCHEMA)
    now = datetime.now(timezone.utc)
    kept, rejects = [], []
    seconds = Counter()
    rows, docs = table.to_pylist(), []
    for row in rows:
        doc = _doc_from_row(row)
        t = _stage_clock()
        if chrome_set is not None and config.chrome.enabled:
            doc, edits = chrome.strip_repeated_lines(doc, chrome_set, config.chrome, row["line_hashes"])
            for e in edits:
                summary.removals_by_rule[e.rule] = summary.removals_by_rule.get(e.rule, 0) + 1
        seconds["chrome"] += _stage_clock() - t
        if not doc.text.strip():
            doc = doc.reject("empty_after_cleaning", "every line was boilerplate or chrome")
        docs.append(doc)
    # Language for the whole batch at once: langdetect's random trials of all texts advance together.
    t = _stage_clock()
    pending = [i for i, doc in enumerate(docs) if not doc.rejected]
    for i, doc in zip(pending, language.detect_many([docs[i] for i in pending], config.language)):
        docs[i] = doc
    seconds["language"] += _stage_clock() - t
    for row, doc in zip(rows, docs):
        site = row["site"]
        if doc.rejected:
            rejects.append(reject_row(doc, row["run_id"], now))
            summary.rejects_by_reason[doc.reject_reason] = summary.rejects_by_reason.get(doc.reject_reason, 0) + 1
            continue
        t = _stage_clock()
        out = document_row(doc, row["run_id"], row["processed_at"] or now)
        out["site"] = site
        if config.dedup.enabled:
            fp = dedup.fingerprint(doc.text, config.dedup)
            out["text_hash"] = fp.text_hash
            out["minhash"] = fp.minhash.tolist()
        seconds["fingerprint"] += _stage_clock() - t
        kept.append(out)
        summary.languages[doc.language] = summary.languages.get(doc.language, 0) + 1
        summary.chars_after += len(doc.text)
        summary.chars_before += len(doc.text) + sum(len(r.text) + 1 for r in doc.removed)
        summary.truncated += int(doc.truncated)
        for r in doc.repairs:
            key = f"{r.original} -> {r.replacement}"
            summary.repairs_by_rule[key] = summary.repairs_by_rule.get(key, 0) + 1
    _write_stage(kept, STAGE_B_SCHEMA, work / f"b-{batch:05d}.parquet")
    _write_stage(rejects, REJECTS_SCHEMA, work / f"rejects-b-{batch:05d}.parquet")
    summary.staged = len(kept)
    summary.rejects = len(rejects)
    summary.stage_seconds = dict(seconds)
    summary.seconds = time.perf_counter() - t0
    return summary


# --------------------------------------------------------------------------------------------------
# Global dedup and the commit
# --------------------------------------------------------------------------------------------------


def _stage_b_files(work: Path) -> list[Path]:
    return sorted(work.glob("b-*.parquet"))


def make_text_fetcher(archive: Archive, work_dir: Path) -> Callable[[list[str]], dict[str, str]]:
    """Cleaned texts by doc_id, from this run's staged batches and from the archive (for verification).

    Reads each file's doc_id column once, then only the row groups holding a wanted id."""
    import numpy as np

    index: dict[Path, tuple[pa.Array, np.ndarray]] = {}

    def ids_of(path: Path) -> tuple[pa.Array, np.ndarray]:
        if path not in index:
            f = pq.ParquetFile(path)
            ids = f.read(columns=["doc_id"]).column("doc_id").combine_chunks()
            ends = np.cumsum([f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)])
            index[path] = (ids, ends)
        return index[path]

    paths: list[Path] = []

    def fetch(doc_ids: list[str]) -> dict[str, str]:
        wanted = pa.array(sorted(set(doc_ids)), pa.string())
        out: dict[str, str] = {}
        if not paths:  # listed once: nothing is written to either place while dedup plans
            paths.extend(_stage_b_files(work_dir) + archive.files("documents"))
        for path in paths:
            ids, ends = ids_of(path)
            hits = np.flatnonzero(pc.is_in(ids, value_set=wanted).to_numpy(zero_copy_only=False))
            if not len(hits):
                continue
            groups = sorted({int(g) for g in np.searchsorted(ends, hits, side="right")})
            t = pq.ParquetFile(path).read_row_groups(groups, columns=["doc_id", "text"])
            t = t.filter(pc.is_in(t.column("doc_id"), value_set=wanted))
            out.update(zip(t.column("doc_id").to_pylist(), t.column("text").to_pylist()))
            if len(out) >= len(wanted):
                break
        return out

    return fetch


SHINGLE_FILES_PER_CALL = 8  # staged files shingled per call of the mapper: what comes back at once (~20 MB)


def shingle_batch_rows(path: str | Path, rows: list[int], n: int, min_line_words: int) -> list:
    """The dedup plan's verification shingles for some rows of one staged batch file, in a batch worker."""
    from . import dedup

    texts = pq.read_table(path, columns=["text"]).column("text").take(pa.array(rows, pa.int64())).to_pylist()
    return dedup.shingled_texts(texts, n, min_line_words)


def plan_dedup(archive: Archive, work_dir: str | Path, config: Config, map_shingles: "Mapper" = None):
    import numpy as np

    from . import dedup

    work = Path(work_dir)
    cols = ["doc_id", "text_hash", "minhash", "truncated", "chars", "published"]
    files = _stage_b_files(work)
    parts = [pq.read_table(p, columns=cols, schema=STAGE_B_SCHEMA) for p in files]
    candidates = pa.concat_tables(parts) if parts else STAGE_B_SCHEMA.empty_table().select(cols)
    candidates = candidates.rename_columns(["doc_id", "text_hash", "minhash", "truncated", "length", "published"])
    starts = np.cumsum([0] + [p.num_rows for p in parts])  # candidates are the staged files' rows, in order

    def shingle_new(rows: list[int]):
        """(row, shingles) of candidate rows, each staged file's rows shingled by a batch worker."""
        rows = np.asarray(rows, dtype=np.int64)
        in_file = np.searchsorted(starts, rows, side="right") - 1
        tasks = [(k, rows[in_file == k]) for k in np.unique(in_file).tolist()]
        for i in range(0, len(tasks), SHINGLE_FILES_PER_CALL):
            group = tasks[i : i + SHINGLE_FILES_PER_CALL]
            results = (map_shingles or serial_map)(shingle_batch_rows, [
                (files[k], (picked - starts[k]).tolist(), config.dedup.shingle_words, config.dedup.min_line_words)
                for k, picked in group
            ])
            for (_, picked), shingled in zip(group, results):
                yield from zip(picked.tolist(), shingled)

    return dedup.plan(candidates, archive.state_dir, config.dedup, make_text_fetcher(archive, work), shingle_new)


@dataclass
class RunReport:
    run_id: str
    input_root: str
    archive: str
    started_at: datetime
    finished_at: datetime | None = None
    inputs: int = 0
    documents: int = 0
    duplicates: int = 0
    rejects: int = 0
    skipped: int = 0
    demoted: int = 0
    bytes_read: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    removals_by_rule: dict[str, int] = field(default_factory=dict)
    repairs_by_pair: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    entries_not_documents: dict[str, int] = field(default_factory=dict)
    chars_before: int = 0
    chars_after: int = 0
    truncated: int = 0
    top_removed_lines: list[tuple[str, str, int]] = field(default_factory=list)
    recovered: dict[str, int] = field(default_factory=dict)

    def add(self, s: BatchSummary) -> None:
        self.inputs += s.inputs
        self.skipped += s.skipped
        self.bytes_read += s.bytes_read
        self.chars_before += s.chars_before
        self.chars_after += s.chars_after
        self.truncated += s.truncated
        for mine, theirs in (
            (self.rejects_by_reason, s.rejects_by_reason),
            (self.removals_by_rule, s.removals_by_rule),
            (self.repairs_by_pair, s.repairs_by_rule),
            (self.languages, s.languages),
            (self.stage_seconds, s.stage_seconds),
            (self.entries_not_documents, s.entries_not_documents),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v

    @property
    def balanced(self) -> bool:
        return self.inputs == self.documents + self.duplicates + self.rejects + self.skipped

    def to_json(self) -> str:
        d = asdict(self)
        d["started_at"] = self.started_at.isoformat()
        d["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return json.dumps(d, indent=2, sort_keys=True)


def _drop_stage_columns(table: pa.Table) -> pa.Table:
    return table.drop_columns([c for c in ("site", "line_hashes", "text_hash", "minhash") if c in table.column_names])


@dataclass
class BatchSplit:
    """What `split_batch` staged for one batch: the archive parts' moves and their row counts."""

    batch: int
    moves: list[tuple[str, str]] = field(default_factory=list)
    documents: int = 0
    duplicates: int = 0
    rejects: int = 0
    removed_lines: list[tuple[str, str, int]] = field(default_factory=list)  # (rule, text, n), this batch's top


DUPLICATES_PLAN_FILE = "duplicates-plan.parquet"
# Removed lines a batch reports for the run's top ten: a line in the run's top ten is near the top of the
# batches it occurs in, and all batches' lists sit in memory together until the commit (500 at 100k docs).
TOP_REMOVED_PER_BATCH = 100


def split_batch(work_dir: str | Path, batch: int, txn) -> BatchSplit:
    """Step 5 for one batch: split its staged rows into kept documents and duplicates (by the dedup plan)
    and stage its parts of the archive's tables. The heavy Parquet work of the commit, done where the
    batch ran, so that only the moves come back to the run's process."""
    work = Path(work_dir)
    done = work / f"split-{batch:05d}.json"
    if done.exists():  # a retried task whose first attempt finished: its parts are staged already
        d = json.loads(done.read_text())
        return BatchSplit(**{**d, "moves": [tuple(m) for m in d["moves"]],
                             "removed_lines": [tuple(r) for r in d["removed_lines"]]})
    out = BatchSplit(batch=batch)
    table = pq.read_table(work / f"b-{batch:05d}.parquet", schema=STAGE_B_SCHEMA)
    plan_path = work / DUPLICATES_PLAN_FILE
    ids = table.column("doc_id")
    is_dup = pa.array([False] * table.num_rows, pa.bool_())
    dup_info: dict[str, tuple[str, float, str]] = {}
    if plan_path.exists() and table.num_rows:
        plan = pq.read_table(plan_path)
        plan = plan.filter(pc.is_in(plan.column("doc_id"), value_set=ids))
        for r in plan.to_pylist():
            dup_info[r["doc_id"]] = (r["duplicate_of"], r["similarity"], r["method"])
        is_dup = pc.is_in(ids, value_set=plan.column("doc_id"))
    kept = _drop_stage_columns(table.filter(pc.invert(is_dup)))
    dups = _drop_stage_columns(table.filter(is_dup))
    if dups.num_rows:
        info = [dup_info[i] for i in dups.column("doc_id").to_pylist()]
        dups = dups.set_column(dups.schema.get_field_index("duplicate_of"), "duplicate_of", pa.array([i[0] for i in info], pa.string()))
        dups = dups.append_column("similarity", pa.array([i[1] for i in info], pa.float32()))
        dups = dups.append_column("method", pa.array([i[2] for i in info], pa.string()))
    reject_parts = [work / f"rejects-{step}-{batch:05d}.parquet" for step in ("a", "b")]
    rejects = pa.concat_tables([pq.read_table(p, schema=REJECTS_SCHEMA) for p in reject_parts if p.exists()]
                               or [REJECTS_SCHEMA.empty_table()])
    for name, part in (("documents", kept), ("duplicates", dups), ("rejects", rejects)):
        move = txn.stage_batch_part(name, part, batch)
        if move is not None:
            out.moves.append(move)
    out.documents, out.duplicates, out.rejects = kept.num_rows, dups.num_rows, rejects.num_rows
    top: Counter = Counter()
    _count_removed_lines(top, kept.column("removed"))
    out.removed_lines = [(rule, text, n) for (rule, text), n in top.most_common(TOP_REMOVED_PER_BATCH)]
    tmp = done.with_name(done.name + ".tmp")
    tmp.write_text(json.dumps(vars(out)))  # not asdict: it deep-copies thousands of tuples
    tmp.replace(done)
    # The batch's staging files are spent: removed here, in parallel, not by the commit's clean-up.
    for spent in [work / f"{step}-{batch:05d}.parquet" for step in ("a", "b", "lines")] + reject_parts:
        spent.unlink(missing_ok=True)
    return out


def commit_run(archive: Archive, txn, work_dir: str | Path, report: RunReport, config: Config,
               chrome_set=None, dedup_plan=None, repair_model=None, map_split: "Mapper" = None) -> RunReport:
    """Steps 5 and 6: split staged rows into documents and duplicates (batch by batch, with ``map_split``),
    apply demotions, check the accounting, stage the state for later runs, and commit all in one atomic step."""
    work = Path(work_dir)
    if dedup_plan is not None and dedup_plan.duplicates.num_rows:
        pq.write_table(dedup_plan.duplicates.select(["doc_id", "duplicate_of", "similarity", "method"]),
                       work / DUPLICATES_PLAN_FILE)
    batches = sorted(int(p.stem.split("-")[1]) for p in _stage_b_files(work))
    shipped = txn.for_workers()
    splits = (map_split or serial_map)(split_batch, [(work, b, shipped) for b in batches])
    top_removed: Counter = Counter()
    for sp in splits:
        txn.adopt(sp.moves)
        report.documents += sp.documents
        report.duplicates += sp.duplicates
        report.rejects += sp.rejects
        top_removed.update({(rule, text): n for rule, text, n in sp.removed_lines})
        sp.removed_lines = []
        if len(top_removed) > 20_000:  # bounded memory: unique removed lines grow with the run
            top_removed = Counter(dict(top_removed.most_common(5_000)))

    if dedup_plan is not None and dedup_plan.demotions.num_rows:
        report.demoted = _apply_demotions(archive, txn, dedup_plan.demotions, report.run_id)

    report.top_removed_lines = [(rule, text, n) for (rule, text), n in top_removed.most_common(10)]
    if not report.balanced:
        raise AccountingError(
            f"inputs {report.inputs} != documents {report.documents} + duplicates {report.duplicates} "
            f"+ rejects {report.rejects} + already archived {report.skipped}: refusing to commit"
        )

    # State for later runs is written into the transaction too, so it lands with the documents it
    # describes or not at all. The state modules append to their manifests: start from the current ones.
    state_stage = txn.root / "files" / "_state"
    state_stage.mkdir(parents=True, exist_ok=True)
    if archive.state_dir.exists():
        for manifest in archive.state_dir.glob("*/*.json"):
            target = state_stage / manifest.relative_to(archive.state_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(manifest, target)
    if chrome_set is not None:
        chrome_set.save_state(state_stage)
    if dedup_plan is not None:
        dedup_plan.save_state(state_stage)
    if repair_model is not None:
        repair_model.save_pairs(state_stage)
    evidence_files = sorted(work.glob("repair-evidence-*.parquet"))
    if evidence_files:
        from . import repair as repair_mod

        repair_mod.merge_pairs(archive.state_dir, [pq.read_table(p) for p in evidence_files], state_stage)
    for p in sorted(state_stage.rglob("*")):
        if p.is_file() and not p.name.endswith(".tmp"):
            rel = p.relative_to(txn.root / "files").as_posix()
            txn._moves.append((f"_txn/{txn.run_id}/files/{rel}", rel))

    report.finished_at = datetime.now(timezone.utc)
    txn.add("runs", pa.Table.from_pylist([_run_row(report, config)], schema=RUNS_SCHEMA))
    txn.commit()
    return report


def _count_removed_lines(counter: Counter, removed: pa.ChunkedArray) -> None:
    """Count (rule, first 200 characters of the text) of every removal, in row order, from the flattened
    list column: no Python dict per removal (pages have hundreds)."""
    for chunk in removed.chunks:
        flat = chunk.flatten()  # the removals of every row in order; null lists contribute none
        texts = flat.field("text").to_pylist()
        counter.update(zip(flat.field("rule").to_pylist(), [t[:200] for t in texts]))


def _apply_demotions(archive: Archive, txn, demotions: pa.Table, run_id: str) -> int:
    """An archived kept copy for which a better copy arrived becomes a duplicate of it (kept, not lost)."""
    rows = {r["old_doc_id"]: r for r in demotions.to_pylist()}
    moved = 0
    for rel, table in archive.files_containing("documents", rows).items():
        ids = table.column("doc_id").to_pylist()
        mask = pa.array([i in rows for i in ids], pa.bool_())
        demoted = table.filter(mask)
        txn.replace_file(rel, table.filter(pc.invert(mask)))
        info = [rows[i] for i in demoted.column("doc_id").to_pylist()]
        demoted = demoted.set_column(demoted.schema.get_field_index("duplicate_of"), "duplicate_of",
                                     pa.array([r["new_doc_id"] for r in info], pa.string()))
        demoted = demoted.append_column("similarity", pa.array([r["similarity"] for r in info], pa.float32()))
        demoted = demoted.append_column("method", pa.array([r["method"] for r in info], pa.string()))
        txn.add("duplicates", demoted.cast(DUPLICATES_SCHEMA))
        moved += demoted.num_rows
    # Earlier copies that pointed at a demoted document now point at the new kept copy.
    new_for = {old: r["new_doc_id"] for old, r in rows.items()}
    old_ids = pa.array(sorted(new_for), pa.string())
    for path in archive.files("duplicates"):
        table = pq.read_table(path, schema=DUPLICATES_SCHEMA)
        pointing = pc.is_in(table.column("duplicate_of"), value_set=old_ids)
        if pc.any(pointing).as_py():
            repointed = [new_for.get(d, d) for d in table.column("duplicate_of").to_pylist()]
            table = table.set_column(table.schema.get_field_index("duplicate_of"), "duplicate_of",
                                     pa.array(repointed, pa.string()))
            txn.replace_file(f"duplicates/{path.name}", table)
    return moved


def _run_row(report: RunReport, config: Config) -> dict:
    from .archive import SCHEMA_VERSION

    return {
        "run_id": report.run_id,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "input_root": report.input_root,
        "inputs": report.inputs,
        "documents": report.documents,
        "duplicates": report.duplicates,
        "rejects": report.rejects,
        "skipped_already_archived": report.skipped,
        "demoted": report.demoted,
        "removals_by_rule": list(report.removals_by_rule.items()),
        "rejects_by_reason": list(report.rejects_by_reason.items()),
        "languages": list(report.languages.items()),
        "config": config.to_json(),
        "pipeline_version": PIPELINE_VERSION,
        "schema_version": SCHEMA_VERSION,
    }


# --------------------------------------------------------------------------------------------------
# A whole run, with a pluggable way to map batch functions (plain loop here; Prefect tasks in flows/)
# --------------------------------------------------------------------------------------------------

Mapper = Callable[[Callable, list[tuple]], list]


def serial_map(fn: Callable, arg_tuples: list[tuple]) -> list:
    return [fn(*args) for args in arg_tuples]


@contextlib.contextmanager
def process_pool(workers: int):
    """A Mapper that runs batch functions in ``workers`` processes of this machine, results in order.

    This process is one of them: it runs batches itself while ``workers - 1`` spawned processes run the
    others (it would otherwise sit idle), so one process's start-up, not ``workers``, is paid per run, and
    the batches it runs need no pickling. Batches go to whichever process is free next, one at a time.

    spawn (see below), never fork: the caller may hold threads (Prefect's, a heartbeat) and forking those
    is unsafe. A batch runs in its process's main thread, so the per-document time limit (SIGALRM) holds
    everywhere. Each worker loads the stage tables once, on its first batch.
    As with any spawn pool, a script calling this needs an ``if __name__ == "__main__":`` guard."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not forkserver: workers are then children of this process, so they die with it (a forkserver
    # outlives a killed run and keeps its workers alive); and never fork, as the caller may hold threads.
    others = max(1, workers - 1)
    pool = ProcessPoolExecutor(max_workers=others, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with_parent)
    # Submitted from this (main) thread, which then starts the workers: PR_SET_PDEATHSIG fires when the
    # *thread* that started a child exits, and the feeder threads below come and go with every phase.
    for _ in range(others):
        pool.submit(_warm_worker)

    def mapper(fn: Callable, arg_tuples: list[tuple]) -> list:
        results: list = [None] * len(arg_tuples)
        errors: dict[int, BaseException] = {}
        todo = iter(range(len(arg_tuples)))
        lock = threading.Lock()

        def take() -> int | None:
            with lock:
                return None if errors else next(todo, None)

        def feed() -> None:  # one thread per pool process: hands it the next batch when it is free
            while (i := take()) is not None:
                try:
                    results[i] = pool.submit(fn, *arg_tuples[i]).result()
                except BaseException as exc:
                    with lock:
                        errors[i] = exc

        feeders = [threading.Thread(target=feed, name=f"docclean-feed-{k}", daemon=True) for k in range(others)]
        for t in feeders:
            t.start()
        try:
            while (i := take()) is not None:
                results[i] = fn(*arg_tuples[i])
        except BaseException as exc:
            with lock:
                errors[-1] = exc  # stops the feeders handing out more batches
            raise
        finally:
            for t in feeders:
                t.join()
        if errors:
            raise errors[min(errors)]
        return results

    try:
        yield mapper
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _warm_worker() -> None:
    """A worker's first job, while the run's process reads its first batch: the imports and tables."""
    from . import boilerplate, chrome, dedup, extract, language, normalize, read, repair  # noqa: F401

    repair.RepairModel.load(None)


def _die_with_parent() -> None:
    """Pool workers must not outlive a run killed with SIGKILL (they would go on writing into its folder).
    Linux: the kernel kills a worker when its parent, the run's process, dies."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _slim_chrome_set(chrome_set):
    """What finalize_batch needs of the chrome plan: the pairs, not the run's observations (which only
    the commit persists), so that shipping it to another process or machine stays small."""
    if chrome_set is None or chrome_set.observations is None:
        return chrome_set
    return dataclasses.replace(chrome_set, observations=None)


def run(input_root: str | Path, output: str | Path, config: Config | None = None, *,
        map_process: Mapper = serial_map, map_finalize: Mapper = serial_map,
        log: Callable[[str], None] = lambda msg: None, run_id: str | None = None) -> RunReport:
    """Clean every document under ``input_root`` into the archive at ``output``."""
    from . import read
    from .archive import new_run_id

    config = config or Config()
    input_root, archive = Path(input_root), Archive(output)
    if not input_root.is_dir():
        raise FileNotFoundError(f"input folder {input_root} does not exist or is not a folder")
    run_id = run_id or new_run_id()
    report = RunReport(run_id=run_id, input_root=str(input_root.resolve()), archive=str(archive.root),
                       started_at=datetime.now(timezone.utc))
    with archive.lock(on_wait=lambda: log(f"waiting for another run to release {archive.root}/_lock")):
        report.recovered = archive.recover()
        if any(report.recovered.values()):
            log(f"recovered from an interrupted run: {report.recovered}")
        meta = file_metadata(run_id, PIPELINE_VERSION, config.to_json())
        txn = archive.begin(run_id, meta, compression=config.archive.compression,
                            compression_level=config.archive.compression_level,
                            row_group_size=config.archive.row_group_size)
        try:
            with contextlib.ExitStack() as stack:  # holds the process pool when config.run.workers > 1
                work = txn.stage_path("batches")
                work.mkdir(parents=True, exist_ok=True)
                sources = read.discover(input_root, config.read)
                batches = plan_batches(sources, config.run.batch_size)
                known, n_known = known_ids_by_batch(archive, batches)
                log(f"run {run_id}: {len(sources)} files in {len(batches)} batches; {n_known} documents already archived")
                workers = min(config.run.workers, len(batches))
                if workers > 1 and map_process is serial_map and map_finalize is serial_map:
                    map_process = map_finalize = stack.enter_context(process_pool(workers))
                    log(f"run {run_id}: batches run in {workers} processes")
                summaries = map_process(process_batch, [
                    (input_root, b, config, work, i, run_id, known[i], archive.state_dir) for i, b in enumerate(batches)
                ])
                for s in summaries:
                    report.add(s)
                log(f"run {run_id}: batches cleaned; planning chrome")
                chrome_set = plan_chrome(work, archive.state_dir, config) if config.chrome.enabled else None
                log(f"run {run_id}: chrome planned; finishing {len(batches)} batches")
                finals = map_finalize(finalize_batch, [
                    (work, i, config, _slim_chrome_set(chrome_set)) for i in range(len(batches))
                ])
                for s in finals:
                    report.add(s)
                log(f"run {run_id}: planning dedup")
                dedup_plan = plan_dedup(archive, work, config, map_finalize) if config.dedup.enabled else None
                if dedup_plan is not None:
                    log(f"run {run_id}: dedup planned: {dedup_plan.stats}")
                commit_run(archive, txn, work, report, config, chrome_set, dedup_plan, map_split=map_finalize)
                log(f"run {run_id}: committed")
        except BaseException:
            txn.abort()
            raise
    from .report import try_write_run_report  # CLEAN/reports/<run_id>.html; a failure is logged, not raised
    try_write_run_report(archive.root, report, log)
    log(f"run {run_id}: {report.inputs} inputs -> {report.documents} documents, {report.duplicates} duplicates, "
        f"{report.rejects} rejects, {report.skipped} already archived")
    return report
