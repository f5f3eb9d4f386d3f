"""Atomic commits, recovery from a run killed at any point, the lock, and schema versions."""

from __future__ import annotations

import multiprocessing
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from docclean.archive import DOCUMENTS_SCHEMA, Archive, ArchiveError, SchemaVersionError, open_archive
from docclean.verify import verify


def _docs(ids: list[str]) -> pa.Table:
    import datetime as dt

    now = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    rows = [{"doc_id": i, "source_path": f"{i}.txt", "source_sha256": "0" * 64, "text": f"text {i}",
             "run_id": "r", "pipeline_version": "t", "processed_at": now, "removed": [], "repairs": [], "fixes": []}
            for i in ids]
    return pa.Table.from_pylist(rows, schema=DOCUMENTS_SCHEMA)


def test_nothing_is_visible_before_commit_and_everything_after(tmp_path):
    archive = Archive(tmp_path)
    txn = archive.begin("run1", {})
    txn.add("documents", _docs(["a", "b"]))
    assert archive.files("documents") == []
    txn.commit()
    assert archive.table("documents").num_rows == 2
    assert not (tmp_path / "_txn" / "run1").exists()


def test_a_run_killed_before_its_journal_is_rolled_back(tmp_path):
    archive = Archive(tmp_path)
    txn = archive.begin("run1", {})
    txn.add("documents", _docs(["a"]))
    # killed here: no COMMIT.json
    done = Archive(tmp_path).recover()
    assert done["rolled_back"] == 1
    assert archive.files("documents") == []


def test_a_run_killed_during_its_moves_is_replayed(tmp_path, monkeypatch):
    archive = Archive(tmp_path)
    txn = archive.begin("run1", {})
    txn.add("documents", _docs(["a"]))
    txn.add("documents", _docs(["b"]))
    calls = []
    import os as _os

    real_replace = _os.replace

    def die_after_first_move(src, dst):
        if str(dst).endswith(".parquet") and "documents" in str(dst):
            calls.append(dst)
            if len(calls) == 2:
                raise KeyboardInterrupt("killed")
        return real_replace(src, dst)

    monkeypatch.setattr("docclean.archive.os.replace", die_after_first_move)
    with pytest.raises(KeyboardInterrupt):
        txn.commit()
    monkeypatch.setattr("docclean.archive.os.replace", real_replace)
    assert len(archive.files("documents")) == 1  # half done
    assert Archive(tmp_path).recover()["replayed"] == 1
    assert sorted(archive.table("documents").column("doc_id").to_pylist()) == ["a", "b"]


def test_stray_temporary_files_are_found_by_verify_and_removed_by_repair(tmp_path):
    archive = Archive(tmp_path)
    txn = archive.begin("run1", {})
    txn.add("documents", _docs(["a"]))
    txn.commit()
    (tmp_path / "documents" / ".part-x.parquet.1234.tmp").write_bytes(b"partial")
    assert not verify(tmp_path).sound
    assert verify(tmp_path, repair=True).sound


def test_verify_reports_an_unreadable_file(tmp_path):
    archive = Archive(tmp_path)
    txn = archive.begin("run1", {})
    txn.add("documents", _docs(["a"]))
    txn.commit()
    archive.files("documents")[0].write_bytes(b"PAR1 not really")
    result = verify(tmp_path)
    assert not result.sound and any("unreadable" in m for m in result.messages)


def _hold_lock(root, seconds, started):
    with Archive(root).lock():
        started.set()
        time.sleep(seconds)


def test_lock_serializes_writers_and_dies_with_its_holder(tmp_path):
    started = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(tmp_path, 30, started))
    holder.start()
    assert started.wait(10)
    with pytest.raises(ArchiveError, match="holds the lock"):
        with Archive(tmp_path).lock(timeout=0.5):
            pass
    holder.kill()  # SIGKILL: the kernel releases the flock, no stale lock remains
    holder.join()
    with Archive(tmp_path).lock(timeout=5):
        pass


def test_reader_refuses_a_newer_major_schema(tmp_path):
    archive = Archive(tmp_path)
    txn = archive.begin("run1", {b"docclean.schema_version": b"2.0"})
    txn.add("documents", _docs(["a"]))
    txn.commit()
    with pytest.raises(SchemaVersionError, match="schema 2.0"):
        open_archive(tmp_path)
    assert pq.read_table(archive.files("documents")[0]).num_rows == 1  # still plain Parquet underneath
