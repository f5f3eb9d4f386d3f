"""Two runs on one archive at once serialize on its lock and archive nothing twice; the lock of a killed
run never blocks the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docclean import pipeline
from docclean.archive import Archive
from docclean.config import load_config
from docclean.verify import verify

try:
    from test_crash import contents, leftovers, make_news_corpus, start_run
except ImportError:
    from tests.test_crash import contents, leftovers, make_news_corpus, start_run

REPO = Path(__file__).resolve().parents[1]


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _all_doc_ids(out: Path) -> list[str]:
    archive = Archive(out)
    return [i for name in ("documents", "duplicates", "rejects")
            for i in archive.table(name, columns=["doc_id"]).column("doc_id").to_pylist()]


@pytest.fixture(scope="module")
def news(tmp_path_factory):
    base = tmp_path_factory.mktemp("concurrency")
    raw = base / "raw"
    inputs = make_news_corpus(raw, stories=40)
    config = base / "docclean.toml"
    config.write_text("[run]\nbatch_size = 20\n")
    return raw, inputs, config


@pytest.mark.slow
def test_two_runs_at_once_on_the_same_input_serialize_and_archive_once(news, tmp_path):
    raw, inputs, config = news
    out = tmp_path / "clean"
    first, second = start_run(raw, out, config), start_run(raw, out, config)
    results = [_finish(first), _finish(second)]
    for code, _, err in results:
        assert code == 0, err[-3000:]
    # One of them found the lock taken and said so (both start at once; the first to lock wins).
    assert sum("waiting for another run" in err for _, _, err in results) == 1
    ids = _all_doc_ids(out)
    assert len(ids) == len(set(ids)) == inputs
    runs = Archive(out).table("runs").to_pylist()
    assert sorted(r["skipped_already_archived"] for r in runs) == [0, inputs]
    result = verify(out)
    assert result.sound, result.messages


@pytest.mark.slow
def test_two_runs_at_once_on_different_inputs_both_land(tmp_path):
    config = tmp_path / "docclean.toml"
    config.write_text("[run]\nbatch_size = 20\n")
    raw_a, raw_b = tmp_path / "a", tmp_path / "b"
    n_a = make_news_corpus(raw_a, stories=24, seed=1)
    n_b = make_news_corpus(raw_b, stories=24, seed=2)
    out = tmp_path / "clean"
    procs = [start_run(raw_a, out, config), start_run(raw_b, out, config)]
    for proc in procs:
        code, _, err = _finish(proc)
        assert code == 0, err[-3000:]
    ids = _all_doc_ids(out)
    runs = Archive(out).table("runs").to_pylist()
    assert sorted(r["inputs"] for r in runs) == sorted([n_a, n_b])
    # The two folders share two identical files (same relative path, same bytes: same doc_id), which the
    # later run finds already archived.
    assert sorted(r["skipped_already_archived"] for r in runs) == [0, 2]
    assert len(ids) == len(set(ids)) == n_a + n_b - sum(r["skipped_already_archived"] for r in runs) == n_a + n_b - 2
    assert verify(out).sound


def _kill_once_locked(raw: Path, out: Path, config: Path) -> None:
    proc = start_run(raw, out, config)
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob("_txn/*/work/batches/a-00000.parquet")):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.slow
def test_the_lock_of_a_killed_run_does_not_block_the_next(news, tmp_path):
    raw, inputs, config = news
    out = tmp_path / "clean"
    _kill_once_locked(raw, out, config)
    assert (out / "_lock").exists() and list((out / "_txn").iterdir())  # the killed run's traces
    t0 = time.monotonic()
    code, _, err = _finish(start_run(raw, out, config))
    assert code == 0, err[-3000:]
    assert "waiting for another run" not in err
    assert "'rolled_back': 1" in err
    assert len(_all_doc_ids(out)) == inputs
    assert verify(out).sound and leftovers(out) == []
    print(f"run after a killed one: {time.monotonic() - t0:.1f} s, no wait on the lock")


def test_a_lock_file_left_by_a_dead_process_is_not_a_lock(tmp_path):
    out = tmp_path / "clean"
    out.mkdir()
    (out / "_lock").write_text("999999\n")  # the pid of a run that no longer exists
    waited = []
    with Archive(out).lock(timeout=2, on_wait=lambda: waited.append(True)):
        assert (out / "_lock").read_text().strip() == str(os.getpid())
    assert waited == []


def _hold_lock_then_exit(root: str, seconds: float) -> None:
    with Archive(root).lock():
        time.sleep(seconds)


@pytest.mark.slow
def test_a_run_waits_for_the_lock_and_then_proceeds(corpus, tmp_path):
    import multiprocessing

    out = tmp_path / "clean"
    holder = multiprocessing.get_context("spawn").Process(target=_hold_lock_then_exit, args=(str(out), 1.5))
    holder.start()
    deadline = time.monotonic() + 30
    while not (out / "_lock").exists() or (out / "_lock").read_text().strip() != str(holder.pid):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    messages = []
    report = pipeline.run(corpus, out, load_config(), log=messages.append)
    holder.join()
    assert any("waiting for another run" in m for m in messages)
    assert report.balanced and report.documents == 5
    assert verify(out).sound


@pytest.mark.slow
def test_workers_of_a_killed_run_die_with_it(news, tmp_path):
    raw, inputs, config = news
    parallel = tmp_path / "parallel.toml"
    parallel.write_text("[run]\nbatch_size = 10\nworkers = 2\n")
    out = tmp_path / "clean"
    mark = f"{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "DOCCLEAN_TEST_RUN_MARK": mark}  # inherited by every process the run starts
    proc = subprocess.Popen([sys.executable, "-m", "docclean.cli", "run", str(raw), "--out", str(out), "--engine",
                             "local", "--config", str(parallel)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob("_txn/*/work/batches/a-00000.parquet")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    time.sleep(1)
    orphans = _pids_marked(mark)
    try:
        code, _, err = _finish(start_run(raw, out, config))
        assert code == 0, err[-3000:]
        time.sleep(5)  # what an orphan worker would still write lands now
        assert orphans == set()
        assert leftovers(out) == []
    finally:
        for pid in _pids_marked(mark):  # only processes the killed run started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _pids_marked(mark: str) -> set[int]:
    needle = f"DOCCLEAN_TEST_RUN_MARK={mark}".encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids
