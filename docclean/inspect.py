"""Looking into an archive from a terminal: summaries, one document, raw against cleaned, and exports.

Everything reads the archive through pyarrow, file by file (so a progress bar can follow a long scan),
with the same filters: ``since`` (archived at or after), ``languages`` and ``publisher``.
"""

from __future__ import annotations

import base64
import csv
import difflib
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
import pyarrow.parquet as pq

from .archive import SCHEMAS, Archive, ArchiveError, _check_version

# ------------------------------------------------------------------------------------------ filters


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    languages: tuple[str, ...] = ()
    publisher: str | None = None

    def describe(self) -> str:
        parts = []
        if self.since:
            parts.append(f"archived since {self.since.isoformat(timespec='seconds')}")
        if self.languages:
            parts.append(f"language {'/'.join(self.languages)}")
        if self.publisher:
            parts.append(f"publisher ~ {self.publisher!r}")
        return ", ".join(parts)

    def expression(self, table: str) -> pds.Expression | None:
        """The filter on ``table``; None when nothing applies. Rejects have no publisher, so a publisher
        filter keeps none of them; runs are filtered by their start only."""
        names = SCHEMAS[table].names
        terms = []
        if self.since:
            column = "started_at" if table == "runs" else "processed_at"
            terms.append(pc.field(column) >= pa.scalar(self.since, pa.timestamp("us", tz="UTC")))
        if table != "runs":
            if self.languages:
                terms.append(pc.field("language").isin(list(self.languages)))
            if self.publisher:
                if "publisher" not in names:
                    return pc.scalar(False)
                terms.append(pc.match_substring(pc.field("publisher"), self.publisher, ignore_case=True))
        if not terms:
            return None
        expr = terms[0]
        for t in terms[1:]:
            expr = expr & t
        return expr


_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``2026-01-05``, ``2026-01-05T09:00`` (UTC unless an offset is given), or ``90m``, ``24h``, ``7d``, ``2w`` ago."""
    now = now or datetime.now(timezone.utc)
    m = _RELATIVE.match(value)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return now - timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: n})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            raise ValueError(f"--since {value!r}: expected a date (2026-01-05), a time (2026-01-05T09:00) "
                             "or an age (90m, 24h, 7d, 2w)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------------ reading


def progress(iterable: Iterable, desc: str, total: int | None = None, unit: str = "file"):
    """A progress bar on stderr, shown only on a terminal and only once a step has taken over a second."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, delay=1.0, disable=None, leave=False, file=sys.stderr)


def open_checked(root: str | Path) -> Archive:
    from . import remote

    if remote.is_remote(root):  # s3://: read the bucket directly, published runs only
        return remote.ReadView(root)
    archive = Archive(root)
    if not archive.root.is_dir():
        raise ArchiveError(f"no archive at {root}")
    return archive


def read_table(archive: Archive, name: str, columns: list[str] | None = None, filters: Filters | None = None,
               expression: pds.Expression | None = None) -> pa.Table:
    """Table ``name`` (only ``columns``), filtered, read file by file under a progress bar."""
    schema = SCHEMAS[name]
    columns = columns or schema.names
    files = archive.files(name)
    expr = expression
    if filters is not None:
        f = filters.expression(name)
        expr = f if expr is None else (expr if f is None else expr & f)
    parts = []
    for i, path in enumerate(progress(files, f"reading {name}")):
        if i == 0:
            _check_version(path)
        table = pds.dataset(str(path), schema=schema, format="parquet").to_table(columns=columns, filter=expr)
        if table.num_rows:
            parts.append(table)
    if not parts:
        return pa.schema([schema.field(c) for c in columns]).empty_table()
    return pa.concat_tables(parts)


def find_row(archive: Archive, doc_id: str) -> tuple[str, dict] | None:
    """The archived row of ``doc_id`` (also a unique prefix of at least 6 characters) and its table."""
    for name in ("documents", "duplicates", "rejects"):
        if len(doc_id) < 20 and len(doc_id) >= 6:
            expr = pc.starts_with(pc.field("doc_id"), doc_id)
        else:
            expr = pc.field("doc_id") == doc_id
        t = read_table(archive, name, expression=expr)
        if t.num_rows == 1:
            return name, t.to_pylist()[0]
        if t.num_rows > 1:
            raise ArchiveError(f"{doc_id!r} matches {t.num_rows} documents; give more of the id")
    return None


# ------------------------------------------------------------------------------------------ inspect


def _fmt_counts(counter: Counter | dict, indent: str = "  ", limit: int | None = None) -> str:
    items = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    lines = [f"{indent}{v:>7}  {k}" for k, v in items[:limit]]
    if limit is not None and len(items) > limit:
        lines.append(f"{indent}{sum(v for _, v in items[limit:]):>7}  ({len(items) - limit} others)")
    return "\n".join(lines) or f"{indent}(none)"


def summary(root: str | Path, filters: Filters = Filters(), out: IO[str] | None = None) -> dict:
    """Print a summary of the archive; return the figures (for tests and scripts)."""
    out = out or sys.stdout
    archive = open_checked(root)
    docs = read_table(archive, "documents", ["language", "truncated", "removed", "repairs", "publisher", "chars"], filters)
    dups = read_table(archive, "duplicates", ["method"], filters)
    rejects = read_table(archive, "rejects", ["reason"], filters)
    runs = read_table(archive, "runs", ["run_id", "started_at", "inputs", "documents", "duplicates", "rejects",
                                        "skipped_already_archived"], filters)
    removals, repairs = Counter(), Counter()
    for removed in docs.column("removed").to_pylist():
        removals.update(r["rule"] for r in removed or ())
    for reps in docs.column("repairs").to_pylist():
        repairs.update(f"{r['original']} -> {r['replacement']}" for r in reps or ())
    figures = {
        "runs": runs.num_rows,
        "documents": docs.num_rows,
        "truncated": sum(1 for t in docs.column("truncated").to_pylist() if t),
        "characters": sum(c or 0 for c in docs.column("chars").to_pylist()),
        "duplicates": dups.num_rows,
        "duplicate_methods": dict(Counter(dups.column("method").to_pylist())),
        "rejects": rejects.num_rows,
        "rejects_by_reason": dict(Counter(rejects.column("reason").to_pylist())),
        "languages": dict(Counter(docs.column("language").to_pylist())),
        "publishers": dict(Counter(p or "(unknown)" for p in docs.column("publisher").to_pylist())),
        "removals_by_rule": dict(removals),
        "repairs": dict(repairs),
    }
    p = lambda *a: print(*a, file=out)  # noqa: E731
    described = filters.describe()
    p(f"archive {archive.root}: {figures['runs']} runs" + (f" ({described})" if described else ""))
    p(f"documents: {figures['documents']} ({figures['truncated']} truncated, {figures['characters']} characters)")
    p(f"duplicates: {figures['duplicates']}")
    p(_fmt_counts(figures["duplicate_methods"]))
    p(f"rejects: {figures['rejects']}")
    p(_fmt_counts(figures["rejects_by_reason"]))
    p("languages:")
    p(_fmt_counts(figures["languages"]))
    p("publishers:")
    p(_fmt_counts(figures["publishers"], limit=10))
    p("removals by rule:")
    p(_fmt_counts(removals))
    p("repairs:")
    p(_fmt_counts(repairs, limit=20))
    if runs.num_rows:
        p("latest runs:")
        for r in sorted(runs.to_pylist(), key=lambda r: r["run_id"])[-5:]:
            p(f"  {r['run_id']}  {r['inputs']:>6} in  {r['documents']:>6} kept  {r['duplicates']:>5} dup  "
              f"{r['rejects']:>5} rej  {r['skipped_already_archived']:>6} already archived")
    return figures


# ------------------------------------------------------------------------------------------ show


@dataclass(frozen=True)
class Style:
    red: str = ""
    green: str = ""
    dim: str = ""
    bold: str = ""
    strike: str = ""
    reset: str = ""

    @classmethod
    def for_stream(cls, stream, force: bool | None = None) -> "Style":
        color = force if force is not None else (stream.isatty() and not os.environ.get("NO_COLOR"))
        if not color:
            return cls()
        return cls("\x1b[31m", "\x1b[32m", "\x1b[2m", "\x1b[1m", "\x1b[9m", "\x1b[0m")


def mark_repairs(text: str, repairs: list[dict], style: Style) -> str:
    """The text with each repair shown in place: ``{original->replacement}`` (on a terminal, the original
    struck through in red and the replacement in green). Repairs are found in order of their offsets;
    one that can no longer be found in the cleaned text is left unmarked (listed below the text)."""
    out, cursor = [], 0
    for r in sorted(repairs or (), key=lambda r: r["offset"]):
        for needle in (r["replacement"], r["original"]):  # applied (fix mode) or only flagged
            m = re.compile(r"(?<!\w)" + re.escape(needle) + r"(?!\w)").search(text, cursor) if needle else None
            if m:
                break
        if not m:
            continue
        out.append(text[cursor:m.start()])
        if style.reset:
            out.append(f"{style.red}{style.strike}{r['original']}{style.reset}{style.green}{r['replacement']}{style.reset}")
        else:
            out.append(f"{{{r['original']}->{r['replacement']}}}")
        cursor = m.end()
    out.append(text[cursor:])
    return "".join(out)


def show(root: str | Path, doc_id: str, out: IO[str] | None = None, color: bool | None = None,
         plain: bool = False) -> int:
    out = out or sys.stdout
    archive = open_checked(root)
    found = find_row(archive, doc_id)
    if found is None:
        print(f"no document {doc_id} in {root}", file=sys.stderr)
        return 2
    table_name, row = found
    st = Style.for_stream(out, color)
    p = lambda *a: print(*a, file=out)  # noqa: E731
    if plain:
        p(row.get("text") or "")
        return 0
    p(f"{st.bold}{row['doc_id']}{st.reset} ({table_name}) from {row['source_path']} sha256 {row['source_sha256'][:16]}...")
    for key in ("url", "title", "published", "author", "publisher", "dateline", "language", "language_score",
                "truncated", "duplicate_of", "similarity", "method", "reason", "detail", "run_id"):
        if row.get(key) not in (None, ""):
            p(f"  {key}: {row[key]}")
    p()
    p(mark_repairs(row.get("text") or "", row.get("repairs") or [], st))
    if row.get("removed"):
        p(f"\n{st.bold}removed ({len(row['removed'])}):{st.reset}")
        for r in row["removed"]:
            text = r["text"] if len(r["text"]) <= 300 else r["text"][:299] + "\u2026"
            p(f"  {st.red}- [{r['rule']}]{st.reset} {st.dim}{text}{st.reset}")
    if row.get("repairs"):
        p(f"\n{st.bold}repairs ({len(row['repairs'])}):{st.reset}")
        for r in row["repairs"]:
            p(f"  {st.green}~ [{r['rule']}]{st.reset} {r['original']!r} -> {r['replacement']!r} at {r['offset']} "
              f"(confidence {r['confidence']:.2f})")
    if row.get("fixes"):
        p(f"\n{st.bold}normalization fixes:{st.reset}")
        for f in row["fixes"]:
            p(f"  [{f['rule']}] {f['detail']}")
    return 0


# ------------------------------------------------------------------------------------------ diff


def _input_root(archive: Archive, run_id: str) -> Path | None:
    runs = read_table(archive, "runs", ["input_root", "config"], expression=pc.field("run_id") == run_id)
    if not runs.num_rows:
        return None
    root = Path(runs.column("input_root")[0].as_py())
    if root.is_absolute():
        return root
    # A relative input root was relative to where the run started: here, or next to the archive.
    for base in (Path.cwd(), archive.root.resolve().parent):
        if (base / root).is_dir():
            return base / root
    return root


def _run_config(archive: Archive, run_id: str):
    from .config import Config

    runs = read_table(archive, "runs", ["config"], expression=pc.field("run_id") == run_id)
    try:
        return Config.model_validate_json(runs.column("config")[0].as_py())
    except Exception:  # an older or unreadable configuration: the defaults read files the same way
        return Config()


def raw_source(archive: Archive, row: dict) -> tuple[str | None, str]:
    """The raw text of an archived document, re-read from its source file, and a note on where it came
    from (or why it could not be had)."""
    from . import read

    root = _input_root(archive, row["run_id"])
    if root is None:
        return None, f"run {row['run_id']} is not in the runs table, so its input folder is unknown"
    rel = row["source_path"]
    if not (root / rel).is_file() and "#" in rel:
        rel = rel.rsplit("#", 1)[0]  # record N of a container: path#N
    path = root / rel
    if not path.is_file():
        if row.get("raw"):
            return _decode(row["raw"]), f"{root / row['source_path']} is gone; raw bytes kept with the reject"
        return None, f"the raw source {root / row['source_path']} is no longer there"
    st = path.stat()
    source = read.SourceFile(path=path, rel=rel, size=st.st_size,
                             mtime=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc))
    same_place = None
    for doc in read.read_source(root, source, _run_config(archive, row["run_id"]).read):
        if doc.doc_id == row["doc_id"]:
            return _raw_text(doc), f"{path}"
        if doc.source_path == row["source_path"]:
            same_place = doc
    if same_place is not None:
        return _raw_text(same_place), f"{path} CHANGED since it was archived (sha256 differs); diff against its current content"
    return None, f"{path} no longer holds {row['source_path']}"


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _raw_text(doc) -> str:
    if doc.html:
        return html_to_lines(doc.html)
    if doc.text:
        return doc.text
    return _decode(doc.raw or b"")


def html_to_lines(html: str) -> str:
    """The visible text of a page, one block per line (scripts and styles dropped), to diff against."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return soup.get_text("\n")


def _key(line: str) -> str:
    import ftfy

    return " ".join(ftfy.fix_text(line).split()).casefold()


def diff_lines(raw: str, cleaned: str, removed: list[dict]) -> Iterator[tuple[str, str, str]]:
    """(op, line, rule) for raw against cleaned, blank lines ignored: ``' '`` kept, ``'-'`` only in the
    raw (with the rule that removed it, when known), ``'+'`` only in the cleaned text (repaired or joined)."""
    rule_of: dict[str, str] = {}
    blocks: list[tuple[str, str]] = []  # removed blocks (a DOM container's text) to find a line inside
    for r in removed or ():
        for line in r["text"].splitlines() or [r["text"]]:
            rule_of.setdefault(_key(line), r["rule"])
        blocks.append((_key(r["text"]), r["rule"]))

    def rule_for(key: str) -> str:
        if key in rule_of:
            return rule_of[key]
        return next((rule for block, rule in blocks if key and key in block), "")

    raw_lines = [line for line in raw.splitlines() if line.strip()]
    clean_lines = [line for line in cleaned.splitlines() if line.strip()]
    a, b = [_key(line) for line in raw_lines], [_key(line) for line in clean_lines]
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            for line in clean_lines[j1:j2]:
                yield " ", line, ""
            continue
        for k in range(i1, i2):
            yield "-", raw_lines[k], rule_for(a[k])
        for line in clean_lines[j1:j2]:
            yield "+", line, ""


def diff(root: str | Path, doc_id: str, out: IO[str] | None = None, color: bool | None = None) -> int:
    out = out or sys.stdout
    archive = open_checked(root)
    found = find_row(archive, doc_id)
    if found is None:
        print(f"no document {doc_id} in {root}", file=sys.stderr)
        return 2
    table_name, row = found
    raw, where = raw_source(archive, row)
    st = Style.for_stream(out, color)
    p = lambda *a: print(*a, file=out)  # noqa: E731
    if raw is None:
        p(f"cannot diff {row['doc_id']}: {where}. `docclean show {root} {row['doc_id']}` shows the cleaned text "
          "and every removed line.")
        return 1
    p(f"{st.bold}--- raw     {where}{st.reset}")
    p(f"{st.bold}+++ cleaned {row['doc_id']} ({table_name}){st.reset}")
    for op, line, rule in diff_lines(raw, row.get("text") or "", row.get("removed") or []):
        if op == " ":
            p(f"  {line}")
        elif op == "-":
            tag = f"  {st.dim}[{rule}]{st.reset}" if rule else ""
            p(f"{st.red}- {line}{st.reset}{tag}")
        else:
            p(f"{st.green}+ {line}{st.reset}")
    return 0


# ------------------------------------------------------------------------------------------ export


def _jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def export(root: str | Path, fmt: str, out: IO[str], table: str = "documents", filters: Filters = Filters(),
           columns: list[str] | None = None) -> int:
    """Write ``table`` as JSON Lines or CSV (nested columns as JSON, binary as base64). Returns rows written."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
    archive = open_checked(root)
    schema = SCHEMAS[table]
    columns = columns or schema.names
    unknown = set(columns) - set(schema.names)
    if unknown:
        raise ValueError(f"{table} has no column {', '.join(sorted(unknown))}")
    expr = filters.expression(table)
    files = archive.files(table)
    if files:
        _check_version(files[0])
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore") if fmt == "csv" else None
    if writer:
        writer.writeheader()
    rows = 0
    bar = progress(None, f"exporting {table}", total=total, unit="row")
    try:
        for path in files:
            scanned = pds.dataset(str(path), schema=schema, format="parquet")
            for batch in scanned.to_batches(columns=columns, filter=expr, batch_size=2000):
                for record in batch.to_pylist():
                    record = _jsonable(record)
                    if writer:
                        writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v
                                         for k, v in record.items()})
                    else:
                        out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    rows += 1
            bar.update(pq.ParquetFile(path).metadata.num_rows)
    finally:
        bar.close()
    return rows
