"""The whole pipeline, without Prefect, on the fixture corpus: what ends where, and reruns."""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from docclean import open_archive, pipeline
from docclean.archive import SCHEMA_VERSION, Archive
from docclean.config import load_config
from docclean.verify import verify


def _by_path(table):
    return {r["source_path"]: r for r in table.to_pylist()}


def test_run_sorts_every_input_into_documents_duplicates_or_rejects(corpus, tmp_path):
    out = tmp_path / "clean"
    report = pipeline.run(corpus, out, load_config())
    archive = Archive(out)
    docs = _by_path(archive.table("documents"))
    dups = _by_path(archive.table("duplicates"))
    rejects = _by_path(archive.table("rejects"))

    assert report.balanced and report.inputs == 8
    assert set(docs) == {"wire/fishermen.txt", "web/liege_letter.txt", "web/freiburg_de.txt",
                         "web/night_trains.html", "web/crier.jsonl#1"}
    # The syndicated copy is remembered as a duplicate of the wire story, with its own provenance.
    assert set(dups) == {"web/fishermen_copy.txt"}
    assert dups["web/fishermen_copy.txt"]["duplicate_of"] == docs["wire/fishermen.txt"]["doc_id"]
    assert {r["reason"] for r in rejects.values()} == {"empty_file", "whitespace_only"}
    assert rejects["web/crier.jsonl#2"]["raw"]  # the raw record is kept: nothing is lost


def test_cleaned_text_keeps_the_body_and_records_every_removal(corpus, tmp_path):
    out = tmp_path / "clean"
    pipeline.run(corpus, out, load_config())
    docs = _by_path(Archive(out).table("documents"))
    wire = docs["wire/fishermen.txt"]
    assert wire["text"].startswith("Hundreds of fishing boats blocked the harbour of Brest")
    assert "ADVERTISEMENT" not in wire["text"] and "Copyright" not in wire["text"]
    assert "Oyster farmers count the cost" not in wire["text"]
    rules = {r["rule"] for r in wire["removed"]}
    assert {"advertisement_marker", "copyright_footer", "related_headlines"} <= rules
    removed_text = "\n".join(r["text"] for r in wire["removed"])
    assert "Storm season starts early in the North Atlantic" in removed_text
    assert wire["title"] == "Fishermen block harbour over new quota rules"
    assert wire["published"].date().isoformat() == "2025-04-09"

    letter = docs["web/liege_letter.txt"]
    assert letter["truncated"] is True
    assert letter["published"].date().isoformat() == "2025-02-26"
    assert "subscribers only" not in letter["text"]
    assert letter["text"].startswith("In Liege, the steelworks")

    assert docs["web/freiburg_de.txt"]["language"] == "de"
    html = docs["web/night_trains.html"]
    assert html["title"] == "Night trains return to the Alps"
    assert "Share on Facebook" not in html["text"] and "Eurostar adds trains" not in html["text"]
    assert "Ticket sales open in October" in html["text"]


def test_rerun_archives_nothing_twice(corpus, tmp_path):
    out = tmp_path / "clean"
    first = pipeline.run(corpus, out, load_config())
    second = pipeline.run(corpus, out, load_config())
    assert second.skipped == second.inputs == first.inputs
    assert second.documents == second.duplicates == second.rejects == 0
    result = verify(out)
    assert result.sound, result.messages
    assert result.counts["documents"] == first.documents


def test_a_new_file_in_a_later_run_is_added_alone(corpus, tmp_path):
    out = tmp_path / "clean"
    pipeline.run(corpus, out, load_config())
    (corpus / "web" / "late.txt").write_text(
        "The town council approved a new budget for school repairs on Thursday evening after a long debate.\n"
        "Most of the money will go to roofs and heating systems in the oldest primary schools.\n",
        encoding="utf-8")
    report = pipeline.run(corpus, out, load_config())
    assert (report.documents, report.skipped) == (1, 8)


def test_language_filter_sends_other_languages_to_rejects_with_reason(corpus, tmp_path):
    out = tmp_path / "clean"
    pipeline.run(corpus, out, load_config(language={"keep": ["en"]}))
    rejects = _by_path(Archive(out).table("rejects"))
    assert rejects["web/freiburg_de.txt"]["reason"] == "language_filtered"
    assert "de" in rejects["web/freiburg_de.txt"]["detail"]


def test_files_carry_schema_version_and_effective_configuration(corpus, tmp_path):
    out = tmp_path / "clean"
    pipeline.run(corpus, out, load_config(run={"batch_size": 3}))
    meta = pq.read_schema(Archive(out).files("documents")[0]).metadata
    assert meta[b"docclean.schema_version"].decode() == SCHEMA_VERSION
    assert b'"batch_size": 3' in meta[b"docclean.config"]
    runs = Archive(out).table("runs").to_pylist()
    assert len(runs) == 1 and '"batch_size": 3' in runs[0]["config"]


def test_small_batches_give_the_same_archive_as_one_batch(corpus, tmp_path):
    one = tmp_path / "one"
    many = tmp_path / "many"
    pipeline.run(corpus, one, load_config(run={"batch_size": 500}))
    pipeline.run(corpus, many, load_config(run={"batch_size": 1}))
    cols = ["doc_id", "text", "title", "language", "truncated"]
    a = open_archive(one).to_table(columns=cols).sort_by("doc_id")
    b = open_archive(many).to_table(columns=cols).sort_by("doc_id")
    assert a.equals(b)


def test_open_archive_reads_documents_with_pyarrow(corpus, tmp_path):
    out = tmp_path / "clean"
    pipeline.run(corpus, out, load_config())
    ds = open_archive(out)
    t = ds.to_table(filter=pc.field("language") == "en", columns=["doc_id", "title"])
    assert t.num_rows == 4


def test_missing_input_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pipeline.run(tmp_path / "nope", tmp_path / "clean", load_config())


def test_a_copy_arriving_in_a_later_run_is_a_duplicate_of_the_archived_story(corpus, tmp_path):
    out = tmp_path / "clean"
    copy = corpus / "web" / "fishermen_copy.txt"
    held_back = copy.read_bytes()
    copy.unlink()
    first = pipeline.run(corpus, out, load_config())
    assert first.duplicates == 0
    copy.write_bytes(held_back)
    second = pipeline.run(corpus, out, load_config())
    assert (second.documents, second.duplicates) == (0, 1)
    archive = Archive(out)
    dup = archive.table("duplicates").to_pylist()[0]
    wire = [d for d in archive.table("documents").to_pylist() if d["source_path"] == "wire/fishermen.txt"][0]
    assert dup["duplicate_of"] == wire["doc_id"]
    assert verify(out).sound


def test_a_later_complete_copy_demotes_the_paywalled_one_and_its_copies_follow(tmp_path):
    from conftest import write_paywalled_copies

    raw = tmp_path / "raw"
    complete = write_paywalled_copies(raw)
    out = tmp_path / "clean"
    first = pipeline.run(raw, out, load_config())
    assert (first.documents, first.duplicates) == (1, 1)

    (raw / "b").mkdir()
    (raw / "b" / "complete.txt").write_text(complete, encoding="utf-8")
    second = pipeline.run(raw, out, load_config())
    assert second.demoted == 1

    archive = Archive(out)
    kept = archive.table("documents").to_pylist()
    assert [d["source_path"] for d in kept] == ["b/complete.txt"] and kept[0]["truncated"] is False
    dups = {d["source_path"]: d for d in archive.table("duplicates").to_pylist()}
    assert set(dups) == {"a/paywalled.txt", "a/paywalled_again.txt"}
    assert {d["duplicate_of"] for d in dups.values()} == {kept[0]["doc_id"]}  # nothing points at the demoted one
    assert verify(out).sound


def test_each_batch_is_given_only_the_ids_archived_from_its_own_files(corpus, tmp_path):
    from docclean import read

    out = tmp_path / "clean"
    config = load_config(run={"batch_size": 2})
    first = pipeline.run(corpus, out, config)
    batches = pipeline.plan_batches(read.discover(corpus, config.read), 2)
    assert len(batches) > 3
    known, total = pipeline.known_ids_by_batch(Archive(out), batches)
    assert total == first.inputs
    assert sum(len(ids) for ids in known) == total  # every archived id reaches exactly one batch
    paths = {}
    for name in ("documents", "duplicates", "rejects"):
        t = Archive(out).table(name, columns=["doc_id", "source_path"])
        paths.update(zip(t["doc_id"].to_pylist(), t["source_path"].to_pylist()))
    for batch, ids in zip(batches, known):
        rels = {src.rel for src in batch}
        assert all(paths[i] in rels or paths[i].rsplit("#", 1)[0] in rels for i in ids)
    again = pipeline.run(corpus, out, config)
    assert again.skipped == again.inputs == first.inputs and again.documents == 0


def test_a_batch_extracts_each_page_as_it_is_read(corpus, tmp_path, monkeypatch):
    """A batch of hundreds of 300 KB pages must not hold all their decoded HTML at once: each page goes
    through extraction before the next one is read (repair still waits for the whole batch's evidence)."""
    from docclean import extract, read

    events = []
    real_read, real_extract = read.read_source, extract.extract

    def counting_read(*args, **kwargs):
        for doc in real_read(*args, **kwargs):
            if not doc.rejected:  # an empty or binary file is a reject as it is read: nothing to extract
                events.append(("read", doc.doc_id))
            yield doc

    def counting_extract(doc, config):
        events.append(("extract", doc.doc_id))
        return real_extract(doc, config)

    monkeypatch.setattr(read, "read_source", counting_read)
    monkeypatch.setattr(extract, "extract", counting_extract)
    report = pipeline.run(corpus, tmp_path / "clean", load_config(run={"batch_size": 50, "workers": 1}))
    assert report.inputs >= 5
    reads = [i for i, (kind, _) in enumerate(events) if kind == "read"]
    assert len(reads) >= 5
    # every read is followed at once by the same document's extraction
    assert all(events[i + 1] == ("extract", events[i][1]) for i in reads)
