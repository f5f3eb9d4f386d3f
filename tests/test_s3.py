"""An archive in object storage (s3://), against moto's S3 server on loopback: the same archive as a local
run, reruns that add nothing twice, a publish interrupted half-way (finished by the next run, or undone by
another machine), what a reader sees meanwhile, the lock, `docclean inspect` and `verify`."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from docclean import open_archive, pipeline, remote
from docclean.archive import DOCUMENTS_SCHEMA, RUNS_SCHEMA, Archive, ArchiveError, file_metadata, new_run_id
from docclean.config import load_config

moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed: pip install 'moto[server]' boto3")
boto3 = pytest.importorskip("boto3", reason="boto3 is not installed: pip install 'moto[server]' boto3")


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free loopback port, for this module."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
def bucket_url(s3_endpoint, monkeypatch, tmp_path, request):
    """A fresh bucket; the archive URL at its ``clean`` prefix; the mirror under tmp_path."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DOCCLEAN_CACHE_DIR", str(tmp_path / "cache"))
    bucket = "b-" + request.node.name.lower().replace("_", "-")[:50]
    boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/clean?endpoint_override={s3_endpoint}&scheme=http"


def _keys(url: str) -> set[str]:
    return set(remote.list_files(remote.locate(url)))


def _ids(table: pa.Table) -> list[str]:
    return sorted(table.column("doc_id").to_pylist())


def _all_ids(url: str) -> list[str]:
    return sorted(i for name in ("documents", "duplicates", "rejects") for i in _ids(open_archive(url, name).to_table()))


# ------------------------------------------------------------------------- mechanics on a tiny archive


def _rows(schema: pa.Schema, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{**{f.name: None for f in schema}, **r} for r in rows], schema=schema)


def _commit_run(root: Path, texts: dict[str, str]) -> str:
    """A run of a few documents committed with the archive's own transaction (no cleaning): fast."""
    run_id = new_run_id()
    txn = Archive(root).begin(run_id, file_metadata(run_id, "test", "{}"))
    now = datetime.now(timezone.utc)
    txn.add("documents", _rows(DOCUMENTS_SCHEMA, [{"doc_id": d, "source_path": f"{d}.txt", "source_sha256": d * 2, "text": t,
                                      "run_id": run_id, "pipeline_version": "test", "processed_at": now}
                                     for d, t in texts.items()]))
    txn.add("runs", _rows(RUNS_SCHEMA, [{"run_id": run_id, "documents": len(texts), "inputs": len(texts),
                                           "duplicates": 0, "rejects": 0, "demoted": 0}]))
    txn.commit()
    return run_id


def test_a_published_run_reads_back_and_a_second_session_fetches_nothing(bucket_url):
    with remote.session(bucket_url) as mirror:
        _commit_run(mirror.root, {"a1": "first text", "a2": "second text"})
        plan = mirror.publish()
    assert plan["uploads"][-1].startswith("runs/"), "the runs row is the last file published"
    assert _ids(open_archive(bucket_url).to_table()) == ["a1", "a2"]
    assert not any(k.startswith(("_publish/", "_lock")) for k in _keys(bucket_url)), "no plan or lock left"

    with remote.session(bucket_url) as mirror:
        assert mirror.sync_down() == {"downloaded": 0, "kept": 2, "removed": 0}
        assert mirror.publish() is None


def test_a_reader_sees_nothing_of_a_run_until_its_publish_commits(bucket_url, monkeypatch):
    with remote.session(bucket_url) as mirror:
        _commit_run(mirror.root, {"a1": "first text"})
        mirror.publish()
    real_upload, uploads, seen = remote.Mirror._upload, [], {}

    def upload_then_read(self, rel):
        real_upload(self, rel)
        uploads.append(rel)
        seen[rel] = _ids(open_archive(bucket_url).to_table())

    monkeypatch.setattr(remote.Mirror, "_upload", upload_then_read)
    with remote.session(bucket_url) as mirror:
        _commit_run(mirror.root, {"b1": "third text", "b2": "fourth text"})
        mirror.publish()
    assert uploads[0].startswith("documents/") and uploads[-1].startswith("runs/")
    assert [seen[rel] for rel in uploads] == [["a1"]] * len(uploads), "nothing of the run before its commit point"
    assert _ids(open_archive(bucket_url).to_table()) == ["a1", "b1", "b2"]


def test_verify_repair_finishes_an_interrupted_publish(bucket_url, monkeypatch):
    real_upload = remote.Mirror._upload

    def fail_at_runs_row(self, rel):
        if rel.startswith("runs/"):
            raise OSError("injected")
        real_upload(self, rel)

    monkeypatch.setattr(remote.Mirror, "_upload", fail_at_runs_row)
    with pytest.raises(OSError), remote.session(bucket_url) as mirror:
        _commit_run(mirror.root, {"a1": "first text"})
        mirror.publish()
    monkeypatch.setattr(remote.Mirror, "_upload", real_upload)
    assert open_archive(bucket_url).to_table().num_rows == 0
    assert not remote.verify(bucket_url).sound

    result = remote.verify(bucket_url, repair=True)
    assert result.sound, result.messages
    assert _ids(open_archive(bucket_url).to_table()) == ["a1"]


def test_a_publish_that_failed_before_reaching_the_bucket_is_sent_by_the_next_session(bucket_url, monkeypatch):
    def unreachable(loc, rel, data):
        raise OSError("injected: the endpoint is unreachable")

    with remote.session(bucket_url) as mirror:
        _commit_run(mirror.root, {"a1": "first text"})
        with monkeypatch.context() as patched, pytest.raises(OSError, match="unreachable"):
            patched.setattr(remote, "_put_bytes", unreachable)
            mirror.publish()
    assert (mirror.meta / "pending.json").exists()
    with remote.session(bucket_url) as mirror:
        assert not (mirror.meta / "pending.json").exists()
    assert _ids(open_archive(bucket_url).to_table()) == ["a1"]


def test_the_lock_keeps_a_second_writer_out_and_is_released(bucket_url):
    loc = remote.locate(bucket_url)
    with remote.RemoteLock(loc, settle=0.05):
        with pytest.raises(ArchiveError, match="holds"):
            remote.RemoteLock(loc, timeout=0, settle=0.05).acquire()
    with remote.RemoteLock(loc, timeout=0, settle=0.05):  # released: the next writer gets it at once
        pass
    assert "_lock.json" not in _keys(bucket_url)


def test_an_expired_lock_of_a_dead_writer_is_taken_over(bucket_url):
    loc = remote.locate(bucket_url)
    dead = remote.RemoteLock(loc, ttl=0.01, settle=0.05)
    dead._write()  # written, never refreshed nor released: its writer was killed
    with remote.RemoteLock(loc, timeout=0, settle=0.05) as lock:
        assert lock.holder()["owner"] == lock.owner


def test_open_archive_of_a_missing_prefix_says_so(bucket_url):
    with pytest.raises(ArchiveError, match="no archive"):
        open_archive(bucket_url.replace("/clean?", "/nothing-here?"))


# ------------------------------------------------------------------------- the pipeline, end to end


def _run(corpus: Path, url: str, config=None):
    config = config or load_config()
    return remote.run(url, lambda root: pipeline.run(corpus, root, config), config.archive)


@pytest.mark.slow
def test_s3_archive_equals_a_local_run_and_reruns_add_nothing_twice(corpus, tmp_path, bucket_url):
    local = pipeline.run(corpus, tmp_path / "local", load_config())
    report = _run(corpus, bucket_url)
    assert (report.documents, report.duplicates, report.rejects) == (local.documents, local.duplicates, local.rejects)
    for name in ("documents", "duplicates", "rejects"):
        mine = open_archive(bucket_url, name).to_table().sort_by("doc_id")
        theirs = open_archive(tmp_path / "local", name).to_table().sort_by("doc_id")
        assert _ids(mine) == _ids(theirs)
        assert mine.column("text").to_pylist() == theirs.column("text").to_pylist()

    # New and repeated inputs: only the new one is added.
    (corpus / "web" / "harbour.txt").write_text(
        "The harbour master of Cork said on Monday that cruise ship visits would double next year, after the port "
        "finished dredging its deep-water berth.\n\nLocal traders welcomed the news.\n", encoding="utf-8")
    second = _run(corpus, bucket_url)
    assert second.skipped == local.inputs and second.inputs == local.inputs + 1
    ids = _all_ids(bucket_url)
    assert len(ids) == len(set(ids)) == local.inputs + 1
    assert open_archive(bucket_url, "runs").to_table().num_rows == 2

    result = remote.verify(bucket_url)
    assert result.sound, result.messages


@pytest.mark.slow
def test_an_interrupted_publish_is_finished_by_the_next_run_without_duplicates(corpus, tmp_path, bucket_url, monkeypatch):
    local = pipeline.run(corpus, tmp_path / "local", load_config())
    real_upload, calls = remote.Mirror._upload, []

    def failing_upload(self, rel):
        if rel.startswith("_state/"):  # the data parts are up, the state and the runs row are not
            raise OSError("connection reset by peer (injected)")
        calls.append(rel)
        real_upload(self, rel)

    monkeypatch.setattr(remote.Mirror, "_upload", failing_upload)
    with pytest.raises(OSError, match="injected"):
        _run(corpus, bucket_url)
    keys = _keys(bucket_url)
    assert any(k.startswith("documents/") for k in keys) and not any(k.startswith("runs/") for k in keys)
    assert open_archive(bucket_url).to_table().num_rows == 0, "a reader sees nothing of the half-published run"
    assert "_lock.json" not in keys, "the lock is released when the run fails"
    monkeypatch.setattr(remote.Mirror, "_upload", real_upload)

    verdict = remote.verify(bucket_url)
    assert not verdict.sound and any("interrupted publish" in m for m in verdict.messages)

    second = _run(corpus, bucket_url)  # finishes the publish first, then finds everything archived
    assert second.skipped == local.inputs and second.documents == 0
    assert _ids(open_archive(bucket_url).to_table()) == _ids(open_archive(tmp_path / "local").to_table())
    ids = _all_ids(bucket_url)
    assert len(ids) == len(set(ids)) == local.inputs
    assert not any(k.startswith("_publish/") for k in _keys(bucket_url))
    assert remote.verify(bucket_url).sound


@pytest.mark.slow
def test_another_machine_undoes_an_interrupted_publish_and_cleans_the_documents_again(corpus, tmp_path, bucket_url,
                                                                                       monkeypatch):
    local = pipeline.run(corpus, tmp_path / "local", load_config())
    real_upload, calls = remote.Mirror._upload, []

    def failing_upload(self, rel):
        if len(calls) == 2:
            raise OSError("injected")
        calls.append(rel)
        real_upload(self, rel)

    monkeypatch.setattr(remote.Mirror, "_upload", failing_upload)
    with pytest.raises(OSError):
        _run(corpus, bucket_url)
    monkeypatch.setattr(remote.Mirror, "_upload", real_upload)
    shutil.rmtree(tmp_path / "cache")  # that machine is gone, with its mirror
    monkeypatch.setenv("DOCCLEAN_CACHE_DIR", str(tmp_path / "other-machine"))

    report = _run(corpus, bucket_url)
    assert report.documents == local.documents and report.skipped == 0
    ids = _all_ids(bucket_url)
    assert len(ids) == len(set(ids)) == local.inputs
    assert not any(k.startswith("_publish/") for k in _keys(bucket_url))
    assert remote.verify(bucket_url).sound


@pytest.mark.slow
def test_docclean_run_inspect_show_export_and_verify_with_a_bucket(corpus, bucket_url, capsys):
    from docclean import cli

    assert cli.main(["run", str(corpus), "--out", bucket_url, "--engine", "local"]) == 0
    assert "8 inputs -> 5 documents, 1 duplicates, 2 rejects" in capsys.readouterr().out
    assert cli.main(["inspect", bucket_url]) == 0
    out = capsys.readouterr().out
    assert "documents: 5 " in out and ": 1 runs" in out
    assert cli.main(["export", bucket_url, "--table", "rejects", "--columns", "doc_id,reason"]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["doc_id"] for r in exported) == _ids(open_archive(bucket_url, "rejects").to_table())
    doc_id = _ids(open_archive(bucket_url).to_table())[0]
    assert cli.main(["show", bucket_url, doc_id, "--plain"]) == 0
    assert capsys.readouterr().out.strip() == open_archive(bucket_url).to_table().filter(
        pc.field("doc_id") == doc_id).column("text")[0].as_py().strip()
    assert cli.main(["verify", bucket_url]) == 0
    assert "archive sound" in capsys.readouterr().out


@pytest.mark.slow
def test_a_demotion_replaces_files_in_the_bucket_and_survives_interruptions(tmp_path, bucket_url, monkeypatch):
    """The second run rewrites archived files (a complete copy demotes a paywalled one): overwritten
    manifests, replaced parts, deletions. Interrupted before its commit point it is undone by another
    machine; interrupted during its deletions it is rolled forward; readers see one state or the other."""
    from conftest import write_paywalled_copies

    raw = tmp_path / "raw"
    complete = write_paywalled_copies(raw)
    _run(raw, bucket_url)
    before = {name: _ids(open_archive(bucket_url, name).to_table()) for name in ("documents", "duplicates")}
    first_run_files = {k for k in _keys(bucket_url) if k.startswith(("documents/", "duplicates/"))}
    (raw / "b").mkdir()
    (raw / "b" / "complete.txt").write_text(complete, encoding="utf-8")

    real_upload, real_delete = remote.Mirror._upload, remote._delete

    def fail_at_runs_row(self, rel):
        if rel.startswith("runs/"):
            raise OSError("injected before the commit point")
        real_upload(self, rel)

    monkeypatch.setattr(remote.Mirror, "_upload", fail_at_runs_row)
    with pytest.raises(OSError, match="before the commit point"):
        _run(raw, bucket_url)
    assert {n: _ids(open_archive(bucket_url, n).to_table()) for n in before} == before

    def fail_deleting_parts(loc, rel):
        if rel in first_run_files:  # a file the demotion replaced (the undo deletes only new ones)
            raise OSError("injected during the deletions")
        real_delete(loc, rel)

    monkeypatch.setattr(remote.Mirror, "_upload", real_upload)
    monkeypatch.setattr(remote, "_delete", fail_deleting_parts)
    monkeypatch.setenv("DOCCLEAN_CACHE_DIR", str(tmp_path / "other-machine"))
    with pytest.raises(OSError, match="during the deletions"):
        _run(raw, bucket_url)  # undoes the first machine's publish, demotes again, commits, fails deleting
    docs = open_archive(bucket_url).to_table().to_pylist()
    assert [d["source_path"] for d in docs] == ["b/complete.txt"], "committed: the replaced files are hidden"
    assert sorted(d["source_path"] for d in open_archive(bucket_url, "duplicates").to_table().to_pylist()) == [
        "a/paywalled.txt", "a/paywalled_again.txt"]

    monkeypatch.setattr(remote, "_delete", real_delete)
    monkeypatch.setenv("DOCCLEAN_CACHE_DIR", str(tmp_path / "third-machine"))
    report = _run(raw, bucket_url)  # rolls the deletions forward, then finds everything archived
    assert report.skipped == 3 and report.documents == 0
    ids = _all_ids(bucket_url)
    assert len(ids) == len(set(ids)) == 3
    assert not any(k.startswith("_publish/") for k in _keys(bucket_url))
    result = remote.verify(bucket_url)
    assert result.sound, result.messages
