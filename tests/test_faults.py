"""Faults of the environment: a full disk, an archive folder that is or becomes unwritable. The run ends
with a clear error, and the archive stays sound with its previous content (or, when the fault struck after
the commit was decided, `docclean verify --repair` completes it). Nothing is lost either way."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docclean import archive as archive_mod
from docclean import pipeline
from docclean.archive import Archive, ArchiveError
from docclean.config import load_config
from docclean.verify import verify

try:
    from conftest import write_corpus
    from test_crash import contents, make_news_corpus
except ImportError:
    from tests.conftest import write_corpus
    from tests.test_crash import contents, make_news_corpus

REPO = Path(__file__).resolve().parents[1]


def snapshot(root: Path) -> dict[str, str]:
    """Every file of an archive and its SHA-256 (the lock file and HTML run reports aside)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "_lock" and "reports" not in p.parts}


@pytest.fixture
def first_run(tmp_path):
    """An archive holding one committed run of the fixture corpus, and a second input folder for more."""
    raw = tmp_path / "raw"
    write_corpus(raw)
    out = tmp_path / "clean"
    pipeline.run(raw, out, load_config())
    more = tmp_path / "more"
    make_news_corpus(more, stories=12)
    return raw, more, out


def _oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


# --------------------------------------------------------------------------------------------------
# Simulated faults at every step of a run, in-process (runs anywhere)
# --------------------------------------------------------------------------------------------------


def _fail_staging(monkeypatch, code):
    real = archive_mod.pq.write_table
    calls = []

    def write_table(table, where, *args, **kwargs):
        calls.append(where)
        if len(calls) == 2:  # the first archive file staged fine, the second hits the fault
            raise _oserror(code)
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(archive_mod.pq, "write_table", write_table)


def _fail_journal(monkeypatch, code):
    def write_bytes_atomic(data, path):
        raise _oserror(code)

    monkeypatch.setattr(archive_mod, "write_bytes_atomic", write_bytes_atomic)


def _fail_second_move(monkeypatch, code):
    real = archive_mod.os.replace
    moves = []

    def replace(src, dst):
        if "/_txn/" in str(src) and "/files/" in str(src) and not str(src).endswith(".tmp"):  # journal moves only
            moves.append(dst)
            if len(moves) == 2:  # the journal is written and one file moved: then the folder turns read-only
                raise _oserror(code)
        return real(src, dst)

    monkeypatch.setattr(archive_mod.os, "replace", replace)


def _fail_batch_stage(monkeypatch, code):
    real = pipeline.pq.write_table

    def write_table(table, where, *args, **kwargs):
        if "a-00000" in str(where):
            raise _oserror(code)
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pipeline.pq, "write_table", write_table)


BEFORE_COMMIT = {"batch_staging": _fail_batch_stage, "archive_staging": _fail_staging, "journal": _fail_journal}


# One fault per step in the default suite; every combination under the slow marker.
_DEFAULT = {("batch_staging", errno.ENOSPC), ("archive_staging", errno.EACCES), ("journal", errno.EROFS)}
_COMBINATIONS = [
    pytest.param(where, code, id=f"{where}-{errno.errorcode[code]}",
                 marks=() if (where, code) in _DEFAULT else pytest.mark.slow)
    for where in sorted(BEFORE_COMMIT) for code in (errno.ENOSPC, errno.EACCES, errno.EROFS)
]


@pytest.mark.parametrize("where, code", _COMBINATIONS)
def test_a_fault_before_the_commit_leaves_the_archive_as_it_was(first_run, monkeypatch, where, code):
    raw, more, out = first_run
    before = snapshot(out)
    BEFORE_COMMIT[where](monkeypatch, code)
    with pytest.raises(OSError) as caught:
        pipeline.run(more, out, load_config())
    assert caught.value.errno == code  # the real cause reaches the user, not a secondary error
    monkeypatch.undo()
    assert snapshot(out) == before
    assert not (out / "_txn").exists() or not any((out / "_txn").iterdir())
    result = verify(out)
    assert result.sound, result.messages
    # and the archive is still usable: the same run succeeds once the fault is gone
    report = pipeline.run(more, out, load_config())
    assert report.balanced and report.documents > 0
    assert verify(out).sound


@pytest.mark.parametrize("code", [errno.EACCES, pytest.param(errno.EROFS, marks=pytest.mark.slow),
                                  pytest.param(errno.ENOSPC, marks=pytest.mark.slow)], ids=["EACCES", "EROFS", "ENOSPC"])
def test_a_fault_after_the_journal_is_completed_by_repair_not_lost(first_run, tmp_path, monkeypatch, code):
    raw, more, out = first_run
    reference = tmp_path / "reference"
    pipeline.run(raw, reference, load_config())
    pipeline.run(more, reference, load_config())

    _fail_second_move(monkeypatch, code)
    with pytest.raises(OSError):
        pipeline.run(more, out, load_config())
    monkeypatch.undo()
    # The run had committed (its journal was written): its staged files must still be there.
    pending = list((out / "_txn").iterdir())
    assert len(pending) == 1 and (pending[0] / "COMMIT.json").exists()
    seen = verify(out)
    assert not seen.sound and any("interrupted runs" in m for m in seen.messages)
    repaired = verify(out, repair=True)
    assert repaired.sound, repaired.messages
    assert contents(out) == contents(reference)


def test_a_fault_after_the_journal_is_completed_by_the_next_run(first_run, tmp_path, monkeypatch):
    raw, more, out = first_run
    _fail_second_move(monkeypatch, errno.EACCES)
    with pytest.raises(OSError):
        pipeline.run(more, out, load_config())
    monkeypatch.undo()
    report = pipeline.run(more, out, load_config())
    assert report.recovered["replayed"] == 1
    assert report.skipped == report.inputs  # everything had been committed by the failed run
    assert verify(out).sound


def test_an_unwritable_archive_folder_is_a_clear_archive_error(tmp_path, monkeypatch):
    real_open = open

    def read_only_open(path, mode="r", *args, **kwargs):
        if str(path).endswith("_lock"):
            raise _oserror(errno.EROFS)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only_open)
    with pytest.raises(ArchiveError, match="cannot write to the archive folder .*Read-only file system"):
        with Archive(tmp_path / "clean").lock():
            pass


def test_verify_finds_a_state_part_that_is_missing(first_run):
    _, _, out = first_run
    parts = sorted((out / "_state" / "dedup").glob("docs-*.parquet"))
    assert parts
    parts[0].unlink()
    result = verify(out)
    assert not result.sound and any("missing or unreadable" in m for m in result.messages)


def test_verify_and_repair_find_temporary_files_in_state_folders(first_run):
    _, _, out = first_run
    (out / "_state" / "dedup" / ".docs-x.parquet.1234abcd.tmp").write_bytes(b"half a file")
    assert not verify(out).sound
    assert verify(out, repair=True).sound
    assert not list((out / "_state").rglob("*.tmp"))


# --------------------------------------------------------------------------------------------------
# Real faults: a small tmpfs that fills up, then is remounted read-only (root only)
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(where: Path, size: str):
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "docclean.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def fill(disk: Path, leave_bytes: int) -> Path:
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave_bytes))
    return filler


@pytest.fixture
def full_disk_run(tmp_path):
    """A first run fits on a 4 MB tmpfs; the disk is then filled to 48 KB and a second run tried."""
    raw = tmp_path / "raw"
    write_corpus(raw)
    more = tmp_path / "more"
    make_news_corpus(more, stories=60)
    with small_disk(tmp_path / "disk", "4m") as disk:
        out = disk / "clean"
        first = cli("run", str(raw), "--out", str(out), "--engine", "local")
        assert first.returncode == 0, first.stderr
        before, before_contents = snapshot(out), contents(out)
        filler = fill(disk, 48 * 1024)
        failed = cli("run", str(more), "--out", str(out), "--engine", "local")
        yield failed, out, before, before_contents, filler, more


@pytest.mark.slow
def test_a_full_disk_ends_the_run_and_keeps_the_archive_intact(full_disk_run):
    failed, out, before, before_contents, filler, more = full_disk_run
    assert failed.returncode != 0
    assert "No space left on device" in failed.stderr
    assert snapshot(out) == before
    assert contents(out) == before_contents
    checked = cli("verify", str(out))
    assert checked.returncode == 0 and "archive sound" in checked.stdout, checked.stdout
    filler.unlink()
    again = cli("run", str(more), "--out", str(out), "--engine", "local")
    assert again.returncode == 0, again.stderr[-2000:]
    assert cli("verify", str(out)).returncode == 0


@pytest.mark.slow
def test_a_read_only_archive_folder_ends_the_run_and_keeps_the_archive_intact(tmp_path):
    raw = tmp_path / "raw"
    write_corpus(raw)
    more = tmp_path / "more"
    make_news_corpus(more, stories=12)
    with small_disk(tmp_path / "disk", "8m") as disk:
        out = disk / "clean"
        assert cli("run", str(raw), "--out", str(out), "--engine", "local").returncode == 0
        before = snapshot(out)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        try:
            failed = cli("run", str(more), "--out", str(out), "--engine", "local")
            assert failed.returncode != 0
            assert "cannot write to the archive folder" in failed.stderr and "Read-only file system" in failed.stderr
            assert snapshot(out) == before
            checked = cli("verify", str(out))
            assert checked.returncode == 0 and "archive sound" in checked.stdout, checked.stdout
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)


@pytest.mark.slow
def test_the_cli_reports_a_full_disk_in_one_clear_line(full_disk_run):
    failed = full_disk_run[0]
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert "No space left on device" in failed.stderr.strip().splitlines()[-1]
