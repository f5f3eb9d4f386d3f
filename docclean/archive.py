"""Archive: explicit Parquet schemas, atomic commits, a run lock, recovery and verification.

Layout of an archive folder ``CLEAN``::

    documents/part-<run>-<n>.parquet    kept, cleaned documents
    duplicates/part-<run>-<n>.parquet   every other copy of a kept document, pointing at it
    rejects/part-<run>-<n>.parquet      what could not be cleaned or was filtered out, raw bytes and reason
    runs/run-<run>.parquet              one row per committed run: counts, configuration, version
    _state/                             what later runs learn from (dedup signatures, line counts, pairs)
    _txn/<run>/                         a run being written; never read by users

A run writes everything under ``_txn/<run>/`` first. Its commit is one atomic write of a journal
(``COMMIT.json``: which files move where, which are deleted), then the moves. A run killed before the
journal leaves nothing behind (its ``_txn`` folder is dropped on the next run); killed after it, the next
run (or ``docclean verify``) replays the journal. Either way the archive is as it was, or complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

SCHEMA_VERSION = "1.0"
TABLES = ("documents", "duplicates", "rejects", "runs")
META_PREFIX = b"docclean."

_ts = pa.timestamp("us", tz="UTC")

REMOVAL_TYPE = pa.struct([("rule", pa.string()), ("text", pa.string()), ("stage", pa.string())])
REPAIR_TYPE = pa.struct(
    [
        ("rule", pa.string()),
        ("original", pa.string()),
        ("replacement", pa.string()),
        ("offset", pa.int64()),
        ("confidence", pa.float32()),
    ]
)
FIX_TYPE = pa.struct([("rule", pa.string()), ("detail", pa.string()), ("stage", pa.string())])

_PROVENANCE = [
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("source_path", pa.string(), nullable=False),
    pa.field("source_sha256", pa.string(), nullable=False),
    pa.field("source_mtime", _ts),
]

DOCUMENTS_SCHEMA = pa.schema(
    _PROVENANCE
    + [
        pa.field("url", pa.string()),
        pa.field("title", pa.string()),
        pa.field("published", _ts),
        pa.field("author", pa.string()),
        pa.field("publisher", pa.string()),
        pa.field("dateline", pa.string()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
        pa.field("text", pa.string()),
        pa.field("chars", pa.int64()),
        pa.field("truncated", pa.bool_()),
        pa.field("content_type", pa.string()),
        pa.field("encoding", pa.string()),
        pa.field("removed", pa.list_(REMOVAL_TYPE)),
        pa.field("repairs", pa.list_(REPAIR_TYPE)),
        pa.field("fixes", pa.list_(FIX_TYPE)),
        pa.field("duplicate_of", pa.string()),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("pipeline_version", pa.string(), nullable=False),
        pa.field("processed_at", _ts, nullable=False),
    ]
)

# A duplicate keeps everything a document has (nothing is lost) plus why it is one.
DUPLICATES_SCHEMA = DOCUMENTS_SCHEMA.append(pa.field("similarity", pa.float32())).append(
    pa.field("method", pa.string())
)

REJECTS_SCHEMA = pa.schema(
    _PROVENANCE
    + [
        pa.field("url", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("language", pa.string()),
        pa.field("content_type", pa.string()),
        pa.field("encoding", pa.string()),
        pa.field("raw", pa.binary()),
        pa.field("raw_size", pa.int64()),
        pa.field("raw_truncated", pa.bool_()),
        pa.field("text", pa.string()),
        pa.field("removed", pa.list_(REMOVAL_TYPE)),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("pipeline_version", pa.string(), nullable=False),
        pa.field("processed_at", _ts, nullable=False),
    ]
)

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("started_at", _ts),
        pa.field("finished_at", _ts),
        pa.field("input_root", pa.string()),
        pa.field("inputs", pa.int64()),
        pa.field("documents", pa.int64()),
        pa.field("duplicates", pa.int64()),
        pa.field("rejects", pa.int64()),
        pa.field("skipped_already_archived", pa.int64()),
        pa.field("demoted", pa.int64()),
        pa.field("removals_by_rule", pa.map_(pa.string(), pa.int64())),
        pa.field("rejects_by_reason", pa.map_(pa.string(), pa.int64())),
        pa.field("languages", pa.map_(pa.string(), pa.int64())),
        pa.field("config", pa.string()),
        pa.field("pipeline_version", pa.string()),
        pa.field("schema_version", pa.string()),
    ]
)

SCHEMAS = {"documents": DOCUMENTS_SCHEMA, "duplicates": DUPLICATES_SCHEMA, "rejects": REJECTS_SCHEMA, "runs": RUNS_SCHEMA}


class ArchiveError(RuntimeError):
    pass


class SchemaVersionError(ArchiveError):
    pass


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def file_metadata(run_id: str, pipeline_version: str, config_json: str) -> dict[bytes, bytes]:
    return {
        META_PREFIX + b"schema_version": SCHEMA_VERSION.encode(),
        META_PREFIX + b"run_id": run_id.encode(),
        META_PREFIX + b"pipeline_version": pipeline_version.encode(),
        META_PREFIX + b"config": config_json.encode(),
    }


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary name in ``path``'s folder to write; then fsync it and rename it over ``path``,
    so a reader sees all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        # A failure to remove the temporary file (the disk or folder that just failed) must not hide the
        # error that made the write fail; recover() removes what stays behind.
        with contextlib.suppress(OSError):
            tmp.unlink()
    _fsync_dir(path.parent)


def write_parquet_atomic(table: pa.Table, path: Path, metadata: dict[bytes, bytes], compression: str = "zstd",
                         compression_level: int | None = 3, row_group_size: int | None = None) -> None:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    with _atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression=compression, compression_level=compression_level,
                       row_group_size=row_group_size)


def write_bytes_atomic(data: bytes, path: Path) -> None:
    with _atomic_file(path) as tmp:
        tmp.write_bytes(data)


@dataclass
class Transaction:
    """Files staged for one run; nothing is visible in the archive until `commit`."""

    archive: "Archive"
    run_id: str
    metadata: dict[bytes, bytes]
    compression: str = "zstd"
    compression_level: int = 3
    row_group_size: int | None = None
    _moves: list[tuple[str, str]] = field(default_factory=list)  # (staged, final) relative to archive root
    _deletes: list[str] = field(default_factory=list)
    _seq: int = 0

    @property
    def root(self) -> Path:
        return self.archive.txn_dir / self.run_id

    def _stage(self, table: pa.Table, final_rel: str) -> None:
        self._moves.append(self._write_staged(table, final_rel))

    def _write_staged(self, table: pa.Table, final_rel: str) -> tuple[str, str]:
        staged_rel = f"_txn/{self.run_id}/files/{final_rel}"
        write_parquet_atomic(table, self.archive.root / staged_rel, self.metadata, self.compression,
                             self.compression_level, self.row_group_size)
        return staged_rel, final_rel

    def stage_batch_part(self, name: str, table: pa.Table, batch: int) -> tuple[str, str] | None:
        """Write batch ``batch``'s part of table ``name`` into the staging area under a name of its own and
        return its (staged, final) move without recording it: batches stage their parts in other processes
        (or machines), and the run's process `adopt`s the moves, in batch order."""
        if table.num_rows == 0:
            return None
        return self._write_staged(table.cast(SCHEMAS[name]), f"{name}/part-{self.run_id}-b{batch:05d}.parquet")

    def adopt(self, moves: Iterable[tuple[str, str]]) -> None:
        self._moves.extend(moves)

    def for_workers(self) -> "Transaction":
        """A copy to ship to batch workers: the same staging area and write options, none of the moves."""
        return dataclasses.replace(self, _moves=[], _deletes=[])

    def add(self, name: str, table: pa.Table) -> str | None:
        """Stage a new part of table ``name`` (documents, duplicates, rejects, runs)."""
        if table.num_rows == 0 and name != "runs":
            return None
        table = table.cast(SCHEMAS[name])
        self._seq += 1
        rel = f"runs/run-{self.run_id}.parquet" if name == "runs" else f"{name}/part-{self.run_id}-{self._seq:05d}.parquet"
        self._stage(table, rel)
        return rel

    def replace_file(self, existing_rel: str, table: pa.Table | None) -> None:
        """Replace an archived file by a new version (a new name; the old one is deleted on commit)."""
        name = existing_rel.split("/", 1)[0]
        if table is not None and table.num_rows:
            self.add(name, table)
        self._deletes.append(existing_rel)

    def put_state(self, name: str, table: pa.Table) -> None:
        """Stage a new version of a state table under ``_state/`` (signatures, counts, pairs)."""
        self._stage(table, f"_state/{name}.parquet")

    def stage_path(self, name: str) -> Path:
        """A scratch path inside this run's transaction folder (for staging batch outputs)."""
        p = self.root / "work" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def commit(self) -> None:
        journal = {"run_id": self.run_id, "moves": self._moves, "deletes": self._deletes}
        # Runs row last: a run is listed only once everything else it wrote is in place.
        journal["moves"].sort(key=lambda m: m[1].startswith("runs/"))
        write_bytes_atomic(json.dumps(journal).encode(), self.root / "COMMIT.json")
        self.archive._apply_journal(self.root)

    def abort(self) -> None:
        """Drop a run that has not committed. Once its journal is written the run *is* committed, even if
        applying the journal failed (a folder turned read-only, a kill): then the staged files are the only
        copy of its documents, so they stay for `recover` (next run, or `docclean verify --repair`)."""
        if (self.root / "COMMIT.json").exists():
            return
        shutil.rmtree(self.root, ignore_errors=True)


class Archive:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.txn_dir = self.root / "_txn"
        self.state_dir = self.root / "_state"
        self._lock_fh = None

    # -- locking -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, timeout: float = 3600.0, on_wait=None) -> Iterator[None]:
        """One writer at a time. flock is released by the kernel when the holder dies, so a killed run
        never leaves a stale lock behind."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(self.root / "_lock", "a+")
        except OSError as exc:
            raise ArchiveError(f"cannot write to the archive folder {self.root}: {exc.strerror or exc}; "
                               "nothing was changed") from exc
        deadline = time.monotonic() + timeout
        warned = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    fh.close()
                    raise ArchiveError(f"another docclean run holds the lock on {self.root} (waited {timeout:.0f} s)")
                if on_wait and not warned:
                    on_wait()
                    warned = True
                time.sleep(0.2)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    # -- transactions ---------------------------------------------------------------------------------
    def begin(self, run_id: str, metadata: dict[bytes, bytes], **write_options) -> Transaction:
        txn = Transaction(self, run_id, metadata, **write_options)
        txn.root.mkdir(parents=True, exist_ok=True)
        return txn

    def _apply_journal(self, txn_root: Path) -> None:
        journal = json.loads((txn_root / "COMMIT.json").read_text())
        touched: dict[Path, None] = {}  # each folder synced once, after its renames, not once per file
        for staged, final in journal["moves"]:
            src, dst = self.root / staged, self.root / final
            if src.exists():
                if dst.parent not in touched:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
                touched[dst.parent] = None
        for folder in touched:
            _fsync_dir(folder)
        for rel in journal["deletes"]:
            with contextlib.suppress(FileNotFoundError):
                (self.root / rel).unlink()
        shutil.rmtree(txn_root, ignore_errors=True)

    def recover(self) -> dict[str, int]:
        """Finish what a killed run had committed, drop what it had not, remove stray temporary files."""
        done = {"replayed": 0, "rolled_back": 0, "temp_files_removed": 0}
        if self.txn_dir.exists():
            for txn_root in sorted(p for p in self.txn_dir.iterdir() if p.is_dir()):
                if (txn_root / "COMMIT.json").exists():
                    self._apply_journal(txn_root)
                    done["replayed"] += 1
                else:
                    shutil.rmtree(txn_root, ignore_errors=True)
                    done["rolled_back"] += 1
        for tmp in temporary_files(self.root):
            tmp.unlink(missing_ok=True)
            done["temp_files_removed"] += 1
        return done

    # -- reading --------------------------------------------------------------------------------------
    def files(self, name: str) -> list[Path]:
        folder = self.root / name
        return sorted(p for p in folder.glob("*.parquet")) if folder.exists() else []

    def dataset(self, name: str) -> ds.Dataset:
        files = self.files(name)
        if not files:
            return ds.dataset(pa.table({f.name: pa.array([], f.type) for f in SCHEMAS[name]}, schema=SCHEMAS[name]))
        _check_version(files[0])
        return ds.dataset([str(f) for f in files], schema=SCHEMAS[name], format="parquet")

    def table(self, name: str, columns: list[str] | None = None, filter=None) -> pa.Table:
        return self.dataset(name).to_table(columns=columns, filter=filter)

    def files_containing(self, name: str, doc_ids: Iterable[str]) -> dict[str, pa.Table]:
        """The archived files of ``name`` holding any of ``doc_ids``, each as a table (for rewriting)."""
        wanted = pa.array(sorted(set(doc_ids)), pa.string())
        out = {}
        for path in self.files(name):
            ids = pq.read_table(path, columns=["doc_id"]).column("doc_id")
            if pa.compute.any(pa.compute.is_in(ids, value_set=wanted)).as_py():
                out[f"{name}/{path.name}"] = pq.read_table(path, schema=SCHEMAS[name])
        return out

    def state_table(self, name: str) -> pa.Table | None:
        path = self.state_dir / f"{name}.parquet"
        return pq.read_table(path) if path.exists() else None


def temporary_files(root: Path) -> list[Path]:
    """Leftovers of interrupted atomic writes in the archive's tables and state (``_txn`` aside)."""
    found: list[Path] = []
    for name in TABLES + ("_state",):
        folder = Path(root) / name
        if folder.exists():
            found += sorted(folder.rglob(".*.tmp"))
    return found


def _check_version(path: Path | str, filesystem=None) -> None:
    meta = pq.read_schema(path, filesystem=filesystem).metadata or {}
    version = meta.get(META_PREFIX + b"schema_version", b"0.0").decode()
    if int(version.split(".")[0]) > int(SCHEMA_VERSION.split(".")[0]):
        raise SchemaVersionError(
            f"{path} was written with archive schema {version}; this docclean reads {SCHEMA_VERSION.split('.')[0]}.x. "
            "Upgrade docclean to read it."
        )


def open_archive(path: str | Path, table: str = "documents") -> ds.Dataset:
    """The kept documents of an archive (or another of its tables) as a pyarrow dataset.

    ``path`` may be an ``s3://bucket/prefix`` URL (see docclean.remote): the bucket is read directly, and
    only runs whose publishing is complete are seen.
    Refuses files written by a newer major schema version, with a message saying so."""
    from . import remote

    if remote.is_remote(path):
        return remote.open_dataset(path, table)
    archive = Archive(path)
    if not archive.root.exists():
        raise ArchiveError(f"no archive at {path}")
    return archive.dataset(table)
