"""Batches in a process pool (run.workers > 1) give the same archive as one process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pytest

from docclean import pipeline
from docclean.archive import Archive
from docclean.config import load_config

# What differs between two runs by design: when and under which run id a row was written.
RUN_COLUMNS = ("run_id", "processed_at")


def archive_tables(root) -> dict[str, pa.Table]:
    """The archive's rows, without run identity, in a stable order: what two equal runs must share."""
    archive = Archive(root)
    out = {}
    for name in ("documents", "duplicates", "rejects"):
        table = archive.table(name)
        table = table.drop_columns([c for c in RUN_COLUMNS if c in table.column_names])
        out[name] = table.sort_by("doc_id")
    return out


def assert_same_archive(a, b) -> None:
    ta, tb = archive_tables(a), archive_tables(b)
    for name in ta:
        assert ta[name].num_rows == tb[name].num_rows, name
        assert ta[name].to_pylist() == tb[name].to_pylist(), name


@pytest.fixture
def prefect_api(monkeypatch):
    """The reusable local API of `docclean run` (in this test's PREFECT_HOME), stopped afterwards."""
    from flows import server

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    url = server.ensure_server(log=lambda m: None)
    monkeypatch.setenv("PREFECT_API_URL", url)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with temporary_settings({PREFECT_API_URL: url}):
            yield url
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            # Send the last logs and events, and stop Prefect's senders, before the server goes away:
            # left running, they retry a dead server and keep the test process from exiting.
            APILogWorker.drain_all(timeout=10)
            EventsWorker.drain_all(timeout=10)
    finally:
        server.stop()


def _pid(_: int) -> int:
    return os.getpid()


def _square(x: int) -> int:
    return x * x


def _pid_once_both_ran(caller: int, marker: str) -> int:
    """The caller's process waits (bounded) until a pool worker has run a batch too."""
    if os.getpid() == caller:
        deadline = time.monotonic() + 60
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        Path(marker).touch()
    return os.getpid()


def test_process_pool_keeps_the_order_of_its_inputs():
    with pipeline.process_pool(2) as mapper:
        assert mapper(_square, [(i,) for i in range(20)]) == [i * i for i in range(20)]


def test_the_calling_process_runs_batches_beside_its_workers(tmp_path):
    # workers=2 is this process plus one spawned worker: two processes busy, one start-up paid
    marker = str(tmp_path / "worker-ran")
    with pipeline.process_pool(2) as mapper:
        pids = mapper(_pid_once_both_ran, [(os.getpid(), marker)] * 6)
    assert os.getpid() in pids
    assert len(set(pids)) == 2


def test_an_error_in_a_worker_reaches_the_caller():
    with pytest.raises(ZeroDivisionError):
        with pipeline.process_pool(2) as mapper:
            mapper(divmod, [(1, 1), (1, 0)])


@pytest.mark.slow
def test_two_workers_give_the_archive_of_one(corpus, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = pipeline.run(corpus, one, load_config(run={"batch_size": 2, "workers": 1}))
    messages = []
    r2 = pipeline.run(corpus, two, load_config(run={"batch_size": 2, "workers": 2}), log=messages.append)
    assert any("2 processes" in m for m in messages)
    assert (r1.inputs, r1.documents, r1.duplicates, r1.rejects) == (r2.inputs, r2.documents, r2.duplicates, r2.rejects)
    assert r2.balanced
    assert_same_archive(one, two)
    # the persisted state (chrome line counts, dedup signatures) is what the next run learns from
    state = lambda root: sorted(p.relative_to(root).parent.as_posix() for p in (root / "_state").rglob("*.parquet"))
    assert state(one) == state(two)


@pytest.mark.slow
def test_flow_with_two_workers_gives_the_archive_of_one(corpus, tmp_path, prefect_api):
    from flows.clean import clean_flow

    one, two = tmp_path / "one", tmp_path / "two"
    pipeline.run(corpus, one, load_config(run={"batch_size": 2}))
    config_path = tmp_path / "docclean.toml"
    config_path.write_text("[run]\nbatch_size = 2\nworkers = 2\n")
    result = clean_flow(input=str(corpus), output=str(two), config_path=str(config_path))
    assert result["documents"] == 5
    assert_same_archive(one, two)
