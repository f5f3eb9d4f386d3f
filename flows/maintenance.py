"""Maintenance: compact the many small Parquet files that hourly runs leave into fewer, larger ones.

Each run adds a few files per table (often a handful of rows each); after weeks of hourly runs a reader
opens thousands of files for a few thousand rows. Compaction rewrites runs of small files of one table
into files of up to ``target_rows`` rows. Every row is kept exactly as it was (its own ``run_id``,
``processed_at`` and provenance columns); only the files change. It goes through the archive's
transaction: the new files and the deletions of the old ones are one journal, committed atomically under
the archive lock, so a reader or a crash never sees a row twice or lose one (a crash mid-commit is
finished by the next run or `docclean verify --repair`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from docclean import __version__
from docclean.archive import META_PREFIX, SCHEMAS, Archive, ArchiveError, file_metadata, new_run_id
from docclean.config import load_config

COMPACTED_TABLES = ("documents", "duplicates", "rejects", "runs")


@dataclass
class TableCompaction:
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    rewritten: list[str] = field(default_factory=list)


@dataclass
class CompactionReport:
    compaction_id: str
    archive: str
    dry_run: bool
    tables: dict[str, TableCompaction] = field(default_factory=dict)

    @property
    def files_removed(self) -> int:
        return sum(t.files_before - t.files_after for t in self.tables.values())

    def to_dict(self) -> dict:
        return asdict(self) | {"files_removed": self.files_removed}


def plan_groups(row_counts: list[tuple[str, int]], target_rows: int) -> list[list[str]]:
    """Consecutive small files (fewer than ``target_rows`` rows) grouped so that each group holds at most
    ``target_rows`` rows; only groups of two files or more are worth rewriting. Files stay in name order
    (run ids sort by time), so a compacted file holds neighbouring runs."""
    groups: list[list[str]] = []
    current: list[str] = []
    rows = 0
    for rel, n in row_counts:
        if n >= target_rows:
            continue
        if current and rows + n > target_rows:
            groups.append(current)
            current, rows = [], 0
        current.append(rel)
        rows += n
    if current:
        groups.append(current)
    return [g for g in groups if len(g) >= 2]


def compact_archive(archive_root: str | Path, target_rows: int = 100_000, dry_run: bool = False,
                    config_path: str | None = None, log=lambda msg: None) -> CompactionReport:
    """Compact each table of the archive at ``archive_root``; see the module docstring."""
    config = load_config(config_path)
    archive = Archive(archive_root)
    if not archive.root.is_dir():
        raise ArchiveError(f"no archive at {archive_root}")
    compaction_id = new_run_id()
    result = CompactionReport(compaction_id=compaction_id, archive=str(archive.root), dry_run=dry_run)
    with archive.lock(on_wait=lambda: log(f"waiting for a run to release {archive.root}/_lock")):
        recovered = archive.recover()
        if any(recovered.values()):
            log(f"recovered from an interrupted run first: {recovered}")
        txn = None
        try:
            for name in COMPACTED_TABLES:
                files = archive.files(name)
                counts = [(f"{name}/{p.name}", pq.ParquetFile(p).metadata.num_rows) for p in files]
                groups = plan_groups(counts, target_rows)
                stats = TableCompaction(files_before=len(files), files_after=len(files), rows=sum(n for _, n in counts))
                result.tables[name] = stats
                if name == "runs":
                    groups = groups[:1] if groups else []  # a transaction stages one runs file
                for group in groups:
                    if dry_run:
                        stats.files_after -= len(group) - 1
                        stats.rewritten += group
                        continue
                    if txn is None:
                        txn = archive.begin(compaction_id, {}, compression=config.archive.compression,
                                            compression_level=config.archive.compression_level,
                                            row_group_size=config.archive.row_group_size)
                    _compact_group(archive, txn, name, group)
                    stats.files_after -= len(group) - 1
                    stats.rewritten += group
                if groups:
                    log(f"{name}: {stats.files_before} files -> {stats.files_after} ({stats.rows} rows)")
            if txn is not None:
                txn.commit()
            if not dry_run and archive.state_dir.is_dir():
                # The learned state gains parts run by run (signatures, line counts): merge them too.
                from docclean import chrome, dedup

                dedup.compact(archive.state_dir)
                chrome.compact(archive.state_dir)
                log("state: dedup signatures and chrome line counts merged")
        except BaseException:
            if txn is not None:
                txn.abort()
            raise
    return result


def _compact_group(archive: Archive, txn, name: str, group: list[str]) -> None:
    tables, metas = [], []
    for rel in group:
        path = archive.root / rel
        metas.append(pq.read_schema(path).metadata or {})
        tables.append(pq.read_table(path, schema=SCHEMAS[name]))
    combined = pa.concat_tables(tables)
    if combined.num_rows != sum(t.num_rows for t in tables):  # never lose a row
        raise ArchiveError(f"compaction of {group} would change the row count; nothing written")
    # The compacted file carries the configuration of the newest run it holds (every row keeps its own
    # run_id; the runs table keeps each run's configuration) and names the files it replaces.
    newest = metas[-1]
    txn.metadata = file_metadata(
        txn.run_id, __version__, newest.get(META_PREFIX + b"config", b"{}").decode()
    ) | {
        META_PREFIX + b"compacted_from": json.dumps(group).encode(),
        META_PREFIX + b"source_runs": json.dumps(sorted({r for r in combined.column("run_id").to_pylist()})).encode(),
    }
    txn.replace_file(group[0], combined)
    for rel in group[1:]:
        txn.replace_file(rel, None)


@flow(name="docclean-maintenance", log_prints=False, validate_parameters=True)
def compact_flow(archive: str = "clean", target_rows: int = 100_000, dry_run: bool = False,
                 config_path: str | None = None) -> dict:
    """Compact the small Parquet files of the archive at `archive` (documents, duplicates, rejects, runs)."""
    logger = get_run_logger()
    result = compact_archive(archive, target_rows=target_rows, dry_run=dry_run, config_path=config_path,
                             log=logger.info)
    lines = [f"# docclean compaction `{result.compaction_id}`{' (dry run)' if dry_run else ''}", "",
             f"Archive `{result.archive}`: {result.files_removed} files fewer.", "",
             "| table | files before | files after | rows |", "|---|---:|---:|---:|"]
    lines += [f"| {n} | {t.files_before} | {t.files_after} | {t.rows} |" for n, t in result.tables.items()]
    create_markdown_artifact(markdown="\n".join(lines), key="docclean-compaction",
                             description=f"docclean compaction {result.compaction_id}")
    return result.to_dict()
