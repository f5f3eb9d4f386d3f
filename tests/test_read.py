"""The read stage: discovery, formats, limits, encodings, and that nothing escapes read_source."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docclean import read as read_module
from docclean.config import ReadConfig
from docclean.read import SourceFile, ReadStats, decode_bytes, discover, doc_id_for, read_source

ARTICLE = (
    "Brussels, Belgium, Feb 13 (AFP) Feb 13, 2025\n"
    "NATO faces a moment of reckoning on its future, France's defence minister warned on Thursday.\n\n"
    "\"It's a crucial moment of truth,\" the minister told reporters ahead of a NATO meeting.\n"
)


def read_one(root: Path, rel: str, config: ReadConfig | None = None, stats: ReadStats | None = None):
    config = config or ReadConfig()
    (source,) = [s for s in discover(root, config) if s.rel == rel]
    return list(read_source(root, source, config, stats))


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------- ids, discovery


def test_doc_id_is_stable_hex_and_depends_on_path_and_content():
    sha = hashlib.sha256(b"x").hexdigest()
    assert doc_id_for("a.txt", sha) == doc_id_for("a.txt", sha)
    assert len(doc_id_for("a.txt", sha)) == 20 and int(doc_id_for("a.txt", sha), 16) >= 0
    assert doc_id_for("b.txt", sha) != doc_id_for("a.txt", sha)
    assert doc_id_for("a.txt", hashlib.sha256(b"y").hexdigest()) != doc_id_for("a.txt", sha)


def test_discover_walks_recursively_sorted_and_skips_hidden(tmp_path):
    for rel in ("b.txt", "a/z.txt", "a/b/c.html", ".git/HEAD", "a/.cache/x.txt", ".hidden.txt"):
        write(tmp_path, rel, b"text\n")
    sources = discover(tmp_path, ReadConfig())
    assert [s.rel for s in sources] == ["a/b/c.html", "a/z.txt", "b.txt"]
    assert all(isinstance(s, SourceFile) and s.size == 5 and s.mtime.tzinfo for s in sources)


def test_discover_lists_links_but_never_walks_into_them(tmp_path):
    outside = tmp_path / "outside"
    write(outside, "secret.txt", b"secret\n")
    root = tmp_path / "raw"
    write(root, "a.txt", ARTICLE.encode())
    os.symlink(outside, root / "linked_dir")
    assert [s.rel for s in discover(root, ReadConfig())] == ["a.txt", "linked_dir"]
    (doc,) = read_one(root, "linked_dir")
    assert doc.reject_reason == "symlink_outside_root" and b"secret" not in doc.raw


def test_discover_refuses_a_root_that_is_not_a_folder(tmp_path):
    with pytest.raises(NotADirectoryError):
        discover(tmp_path / "missing", ReadConfig())


# --------------------------------------------------------------------------------------------- documents


def test_plain_text_document_has_full_provenance(tmp_path):
    path = write(tmp_path, "news/003.txt", ARTICLE.encode())
    (doc,) = read_one(tmp_path, "news/003.txt")
    sha = hashlib.sha256(ARTICLE.encode()).hexdigest()
    assert (doc.source_path, doc.source_sha256, doc.doc_id) == ("news/003.txt", sha, doc_id_for("news/003.txt", sha))
    assert doc.text == ARTICLE and doc.raw == ARTICLE.encode() and doc.content_type == "text"
    assert doc.encoding is None and not doc.rejected and doc.html is None
    assert doc.source_mtime.timestamp() == pytest.approx(path.stat().st_mtime)


def test_multi_member_gzip_is_read_whole_and_hashed_decompressed(tmp_path):
    write(tmp_path, "a.txt.gz", gzip.compress(ARTICLE[:50].encode()) + gzip.compress(ARTICLE[50:].encode()))
    (doc,) = read_one(tmp_path, "a.txt.gz")
    assert doc.text == ARTICLE
    assert doc.source_sha256 == hashlib.sha256(ARTICLE.encode()).hexdigest()  # same text, same hash as unzipped


def test_jsonl_prefers_html_and_normalises_dates(tmp_path):
    lines = [
        {"html": "<p>Body</p>", "text": "Body", "url": " https://x.org/1 ", "published": "2025-02-13 10:00"},
        {"text": ARTICLE, "published": "yesterday", "title": 42},
    ]
    write(tmp_path, "feed.jsonl", "\r\n".join(json.dumps(x) for x in lines).encode())
    first, second = read_one(tmp_path, "feed.jsonl")
    assert first.content_type == "html" and first.html == "<p>Body</p>" and first.text == ""
    assert first.url == "https://x.org/1" and first.published.isoformat() == "2025-02-13T10:00:00+00:00"
    assert second.text == ARTICLE and second.published is None and second.title is None
    assert second.source_path == "feed.jsonl#2"
    assert second.raw == json.dumps(lines[1]).encode()


def test_jsonl_line_too_long_is_one_reject_and_reading_goes_on(tmp_path):
    config = ReadConfig(max_record_bytes=1000, max_reject_raw_bytes=100)
    long_line = json.dumps({"text": "x" * 5000})
    write(tmp_path, "f.jsonl.gz", gzip.compress(f'{long_line}\n{json.dumps({"text": ARTICLE})}\n'.encode()))
    long_doc, good = read_one(tmp_path, "f.jsonl.gz", config)
    assert long_doc.reject_reason == "too_large" and len(long_doc.raw) == 100
    assert long_doc.source_sha256 == hashlib.sha256(long_line.encode()).hexdigest()
    assert good.text == ARTICLE and good.source_path == "f.jsonl.gz#2"


def test_utf8_bom_on_first_jsonl_line_is_ignored(tmp_path):
    write(tmp_path, "bom.jsonl", b"\xef\xbb\xbf" + json.dumps({"text": ARTICLE}).encode() + b"\n")
    (doc,) = read_one(tmp_path, "bom.jsonl")
    assert doc.text == ARTICLE


# --------------------------------------------------------------------------------------------- limits


def test_too_large_file_keeps_a_capped_prefix_and_the_full_hash(tmp_path):
    data = ARTICLE.encode() * 100
    write(tmp_path, "big.txt", data)
    (doc,) = read_one(tmp_path, "big.txt", ReadConfig(max_file_bytes=1000, max_reject_raw_bytes=64))
    assert doc.reject_reason == "too_large"
    assert doc.raw == data[:64] and doc.source_sha256 == hashlib.sha256(data).hexdigest()


def test_gzip_bomb_guard_uses_max_decompressed_bytes(tmp_path):
    write(tmp_path, "bomb.html.gz", gzip.compress(b"<p>" + b"a" * 100_000))
    (doc,) = read_one(tmp_path, "bomb.html.gz", ReadConfig(max_decompressed_bytes=10_000))
    assert doc.reject_reason == "too_large" and "gzip bomb" in doc.reject_detail


def test_warc_record_over_the_limit_is_rejected_and_the_next_is_read(tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for url, body in (("https://x.org/big", b"<p>" + b"a" * 5000 + b"</p>"), ("https://x.org/ok", b"<p>fine</p>")):
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    write(tmp_path, "c.warc.gz", buf.getvalue())
    big, ok = read_one(tmp_path, "c.warc.gz", ReadConfig(max_record_bytes=1000))
    assert (big.source_path, big.reject_reason, big.url) == ("c.warc.gz#1", "too_large", "https://x.org/big")
    assert big.source_sha256 == hashlib.sha256(b"<p>" + b"a" * 5000 + b"</p>").hexdigest()
    assert (ok.source_path, ok.html, ok.url) == ("c.warc.gz#2", "<p>fine</p>", "https://x.org/ok")


# --------------------------------------------------------------------------------------------- links, faults


def test_links_inside_the_root_are_read_only_when_asked(tmp_path):
    write(tmp_path, "a.txt", ARTICLE.encode())
    os.symlink("a.txt", tmp_path / "alias.txt")
    (skipped,) = read_one(tmp_path, "alias.txt")
    assert skipped.reject_reason == "symlink_not_followed" and skipped.raw == b"a.txt"
    (followed,) = read_one(tmp_path, "alias.txt", ReadConfig(follow_symlinks=True))
    assert followed.text == ARTICLE and followed.source_path == "alias.txt"


def test_unreadable_file_is_a_reject(tmp_path, monkeypatch):
    write(tmp_path, "locked.txt", ARTICLE.encode())
    real_open = os.open

    def deny(path, flags, *args, **kwargs):
        if str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(read_module.os, "open", deny)
    (doc,) = read_one(tmp_path, "locked.txt")
    assert doc.reject_reason == "unreadable_file" and "Permission denied" in doc.reject_detail


def test_a_bug_inside_reading_becomes_a_reject_not_an_exception(tmp_path, monkeypatch):
    write(tmp_path, "a.txt", ARTICLE.encode())

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(read_module, "_read_single", explode)
    stats = ReadStats()
    (doc,) = read_one(tmp_path, "a.txt", stats=stats)
    assert doc.reject_reason == "read_error" and "boom" in doc.reject_detail and stats.rejected == 1


def test_file_removed_after_discovery_is_a_reject(tmp_path):
    path = write(tmp_path, "gone.txt", ARTICLE.encode())
    (source,) = discover(tmp_path, ReadConfig())
    path.unlink()
    (doc,) = read_source(tmp_path, source, ReadConfig())
    assert doc.reject_reason in {"broken_symlink", "unreadable_file"}


# --------------------------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    "text, codec",
    [
        ("Le café était fermé à côté de l'hôtel, dit-elle à l'élève.", "latin-1"),
        ("Minister obrony powiedział, że Europa musi się zbroić, żeby przetrwać.", "cp1250"),
        ("Die Größe des Haushalts überraschte Müller nicht.", "cp1252"),
        ("Ελλάδα και Κύπρος συμφώνησαν σε νέα αμυντική συνεργασία.", "cp1253"),
    ],
)
def test_short_legacy_texts_decode_correctly(text, codec):
    assert decode_bytes(text.encode(codec), ReadConfig()).text == text


def test_bytes_no_encoding_explains_are_undecodable_not_guessed():
    noise = b"\x8a\xfc\xfajDoG\xd4\x99W\xfabf|\xfe?82\xd1\xcd\x9f\xb4\x97\xbd7\xc2(3\xe4b\xeb\xfe*^\x84\xb8\xd5'yi"
    with pytest.raises(read_module._Reject) as caught:
        decode_bytes(noise, ReadConfig())
    assert caught.value.reason == "undecodable_text"


def test_declared_charset_is_used_for_html_bytes_that_are_not_utf8(tmp_path):
    page = '<html><head><meta charset="windows-1251"></head><body>Новости</body></html>'
    write(tmp_path, "ru.html", page.encode("cp1251"))
    (doc,) = read_one(tmp_path, "ru.html")
    assert doc.html == page and doc.encoding == "cp1251"


def test_valid_utf8_wins_over_a_wrong_declaration(tmp_path):
    page = '<html><head><meta charset="iso-8859-1"></head><body>Café</body></html>'
    write(tmp_path, "p.html", page.encode())
    (doc,) = read_one(tmp_path, "p.html")
    assert doc.html == page and doc.encoding is None


# --------------------------------------------------------------------------------------------- properties

NAMES = ["a.txt", "a.html", "a.txt.gz", "a.jsonl", "a.jsonl.gz", "a.warc", "a.warc.gz", "noext"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000), name=st.sampled_from(NAMES))
def test_arbitrary_bytes_never_escape_and_every_doc_is_accounted(data, name):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if name.endswith(".gz") and data[:1] == b"g":
            data = gzip.compress(data)  # sometimes well-formed gzip around arbitrary bytes
        write(root, name, data)
        docs = read_one(root, name)
    assert docs  # every input leaves at least one document or reject
    if not name.endswith((".jsonl", ".jsonl.gz", ".warc", ".warc.gz")):
        assert len(docs) == 1 and docs[0].source_path == name
    for doc in docs:
        assert doc.reject_reason != "read_error", doc.reject_detail  # the catch-all means a reader bug
        assert doc.rejected or (doc.html if doc.content_type == "html" else doc.text).strip()
        assert len(doc.source_sha256) == 64


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=500))
def test_arbitrary_unicode_as_utf8_round_trips_or_is_rejected_with_a_reason(text):
    try:
        decoded = decode_bytes(text.encode("utf-8"), ReadConfig())
    except read_module._Reject as reject:
        assert reject.reason in {"empty_file", "whitespace_only", "binary_content"}
    else:
        assert decoded.text == text.removeprefix("\ufeff") and decoded.encoding is None


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(st.text(max_size=80), max_size=8))
def test_jsonl_of_arbitrary_text_fields_gives_one_doc_per_non_blank_line(lines):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(root, "f.jsonl", "\n".join(json.dumps({"text": t}) for t in lines).encode())
        docs = read_one(root, "f.jsonl")
    if not lines:
        assert [(d.source_path, d.reject_reason) for d in docs] == [("f.jsonl", "empty_file")]
    else:
        assert [d.source_path for d in docs] == [f"f.jsonl#{n}" for n in range(1, len(lines) + 1)]


def test_a_container_without_records_still_leaves_a_reject(tmp_path):
    write(tmp_path, "blank.jsonl", b"\n\n  \n")
    (doc,) = read_one(tmp_path, "blank.jsonl")
    assert (doc.source_path, doc.reject_reason) == ("blank.jsonl", "empty_container")
    assert "jsonl_blank_line" in doc.reject_detail and doc.raw == b"\n\n  \n"


def test_a_file_swapped_for_a_link_after_discovery_is_not_followed(tmp_path):
    path = write(tmp_path, "a.txt", ARTICLE.encode())
    (source,) = discover(tmp_path, ReadConfig())
    path.unlink()
    os.symlink("/etc/passwd", path)
    (doc,) = read_source(tmp_path, source, ReadConfig())
    assert doc.reject_reason == "symlink_outside_root" and b"root:" not in doc.raw


def test_a_folder_that_cannot_be_listed_is_a_reject(tmp_path):
    # discover lists such folders (os.walk's onerror); running as root we cannot make one, so build the source
    (tmp_path / "locked").mkdir()
    source = SourceFile(path=tmp_path / "locked", rel="locked", size=0, mtime=discover_mtime(tmp_path))
    (doc,) = read_source(tmp_path, source, ReadConfig())
    assert doc.reject_reason == "unreadable_directory"


def discover_mtime(path: Path):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)


def test_a_file_that_grew_after_its_stat_is_read_whole_up_to_the_limit(tmp_path):
    # A scraper may still be appending while the run reads: the read asks for the size the stat gave
    # (a read of the whole 16 MiB limit allocated that much per file), and must read on when there is more,
    # still refusing more than max_file_bytes.
    from datetime import datetime, timezone

    path = write(tmp_path, "growing.txt", ARTICLE.encode())
    stat_size = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b"Update: the ministers agreed to meet again in March.\n" * 40)
    now = datetime.now(timezone.utc)

    def read_with(config):
        with open(path, "rb") as fh:
            return read_module._read_single(fh, stat_size, "growing.txt", now, False, False, config)

    doc = read_with(ReadConfig())
    assert doc.text.endswith("meet again in March.\n") and doc.text.count("Update:") == 40
    assert doc.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    too_big = read_with(ReadConfig(max_file_bytes=stat_size + 100))
    assert too_big.rejected and too_big.reject_reason == "too_large"
