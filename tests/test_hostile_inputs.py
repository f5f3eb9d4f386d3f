"""Every hostile input ends, at the reader, as a document or a reject with its specific reason, and
documents + rejects = inputs (the whole-pipeline version lives with the pipeline tests)."""

from __future__ import annotations

import re
from datetime import timezone

import pytest

from docclean.config import ReadConfig
from docclean.read import ReadStats, discover, read_source

try:  # tests/ is a rootdir-relative folder, or a package if someone adds an __init__.py
    from hostile import ARTICLE, ENGLISH_QUOTES, FRENCH, GERMAN, JAPANESE, RUSSIAN, make_hostile_corpus
except ImportError:
    from tests.hostile import ARTICLE, ENGLISH_QUOTES, FRENCH, GERMAN, JAPANESE, RUSSIAN, make_hostile_corpus

CONFIG = ReadConfig()


def read_all(root, config=CONFIG, stats=None):
    return [doc for source in discover(root, config) for doc in read_source(root, source, config, stats)]


def outcome(doc) -> str:
    return f"reject:{doc.reject_reason}" if doc.rejected else "document"


@pytest.fixture(scope="module")
def hostile_read(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "raw"
    expected = make_hostile_corpus(root)
    stats = ReadStats()
    docs = read_all(root, stats=stats)
    return root, expected, docs, stats


@pytest.fixture(scope="module")
def by_path(hostile_read):
    return {doc.source_path: doc for doc in hostile_read[2]}


def test_each_input_ends_with_its_expected_outcome(hostile_read):
    _, expected, docs, _ = hostile_read
    assert {doc.source_path: outcome(doc) for doc in docs} == expected


def test_documents_plus_rejects_equal_inputs(hostile_read):
    _, expected, docs, stats = hostile_read
    paths = [doc.source_path for doc in docs]
    assert len(paths) == len(set(paths)) == len(expected)
    assert stats.documents + stats.rejected == len(expected)
    assert stats.documents == sum(1 for v in expected.values() if v == "document")


def test_skipped_container_entries_are_counted(hostile_read):
    stats = hostile_read[3]
    # two WARCs: warcinfo, request, PNG response and 404 response each; a warcinfo-only WARC; blank lines
    assert stats.skipped == {
        "warc_warcinfo": 3, "warc_request": 2, "warc_non_html_record": 2, "warc_non_2xx_response": 2,
        "jsonl_blank_line": 4,
    }


def test_every_document_carries_its_provenance(hostile_read):
    for doc in hostile_read[2]:
        assert re.fullmatch(r"[0-9a-f]{20}", doc.doc_id), doc.source_path
        assert re.fullmatch(r"[0-9a-f]{64}", doc.source_sha256), doc.source_path
        assert doc.source_mtime is not None and doc.source_mtime.tzinfo == timezone.utc, doc.source_path
        assert len(doc.raw) <= CONFIG.max_reject_raw_bytes or not doc.rejected
        if doc.rejected:
            assert doc.reject_detail, doc.source_path
        else:
            assert (doc.html if doc.content_type == "html" else doc.text).strip(), doc.source_path


def test_reading_twice_gives_the_same_ids(hostile_read):
    root, _, docs, _ = hostile_read
    again = read_all(root)
    assert [(d.source_path, d.doc_id, d.source_sha256) for d in again] == [
        (d.source_path, d.doc_id, d.source_sha256) for d in docs
    ]


@pytest.mark.parametrize(
    "path, expected_text, encoding",
    [
        ("latin1.txt", FRENCH + GERMAN, "cp1252"),
        ("cp1251.txt", RUSSIAN * 3, "cp1251"),
        ("shift_jis.txt", JAPANESE * 3, "cp932"),
        ("utf16_bom.txt", FRENCH + ARTICLE, "utf-16"),
        ("utf16le_nobom.txt", FRENCH + ARTICLE, "utf-16-le"),
        ("utf16be_nobom.txt", FRENCH + ARTICLE, "utf-16-be"),
        ("utf8_bom.txt", ARTICLE, None),
        ("utf8.txt", FRENCH + ENGLISH_QUOTES + RUSSIAN, None),
        ("mixed_encodings.txt", ARTICLE + FRENCH + FRENCH + GERMAN, "utf-8+cp1252"),
        ("article.txt.gz", ARTICLE, None),
    ],
)
def test_legacy_and_unicode_encodings_decode_to_the_right_text(by_path, path, expected_text, encoding):
    doc = by_path[path]
    assert doc.text == expected_text
    assert doc.encoding == encoding


def test_cp1252_punctuation_survives(by_path):
    # charset-normalizer may name cp1250 here; both map these bytes to the same characters
    assert by_path["cp1252.txt"].text == ENGLISH_QUOTES * 3
    assert by_path["cp1252.txt"].encoding in {"cp1252", "cp1250"}


def test_mixed_encodings_and_damage_are_recorded_as_fixes(by_path):
    assert [f.rule for f in by_path["mixed_encodings.txt"].fixes] == ["mixed_encoding_lines"]
    damaged = by_path["invalid_utf8.txt"]
    assert damaged.encoding == "utf-8"
    assert [f.rule for f in damaged.fixes] == ["invalid_utf8_replaced"]
    assert "Café \ufffd broken \ufffd euro été" in damaged.text and FRENCH in damaged.text


def test_html_is_recognised_by_name_by_content_and_by_declared_charset(by_path):
    assert by_path["html_named_txt.txt"].content_type == "html"
    assert by_path["page.html.gz"].content_type == "html"
    assert by_path["deep_nesting.html"].html.count("<div>") == 100_000
    page = by_path["latin1_page.html"]
    assert page.encoding == "cp1252" and FRENCH in page.html
    assert by_path["no_extension"].content_type == "text"


def test_jsonl_fields_and_records(by_path):
    first = by_path["records.jsonl#1"]
    assert (first.url, first.title, first.text) == ("https://example.org/a", "A", ARTICLE)
    assert first.published.isoformat() == "2025-02-13T10:00:00+00:00"
    second = by_path["records.jsonl#2"]
    assert second.content_type == "html" and second.published.tzinfo is not None
    latin = by_path["records.jsonl#9"]
    assert latin.text == "Le café était fermé à côté." and latin.encoding == "cp1252"
    assert by_path["records.jsonl#4"].url == "https://example.org/no-body"  # kept on the reject


def test_warc_records_carry_target_uri_and_date(by_path):
    for name in ("crawl.warc.gz", "crawl.warc"):
        page = by_path[f"{name}#3"]
        assert page.url == "https://example.org/a" and page.content_type == "html"
        assert page.published.isoformat() == "2025-02-13T10:00:00+00:00"
        french = by_path[f"{name}#4"]
        assert french.encoding == "cp1252" and FRENCH in french.html
        assert by_path[f"{name}#5"].raw  # the broken record's bytes are kept


def test_links_are_never_followed_out_of_the_root(by_path):
    for name in ("link_outside.txt", "link_up.txt", "link_dir_outside"):
        doc = by_path[name]
        assert doc.reject_reason == "symlink_outside_root"
        assert b"root:" not in doc.raw  # the link target's name, never its content
    assert by_path["link_outside.txt"].raw == b"/etc/passwd"


def test_gzip_bomb_stops_at_the_limit(by_path):
    bomb = by_path["bomb.txt.gz"]
    assert bomb.reject_reason == "too_large" and "gzip bomb" in bomb.reject_detail
    assert len(bomb.raw) <= CONFIG.max_reject_raw_bytes


@pytest.mark.slow
def test_large_inputs_are_rejected_or_read_whole(tmp_path):
    root = tmp_path / "raw"
    expected = make_hostile_corpus(root, large=True)
    docs = {doc.source_path: doc for doc in read_all(root)}
    assert {path: outcome(doc) for path, doc in docs.items()} == expected
    big = docs["large_50mb.txt"]  # over max_file_bytes (16 MiB): a specific reject, its hash over all bytes
    assert "16777216" in big.reject_detail or "16 MiB" in big.reject_detail or "limit" in big.reject_detail
    assert len(big.raw) <= CONFIG.max_reject_raw_bytes
    assert len(docs["single_line_10mb.txt"].text) == 10 * 1024 * 1024

    # The very same file is read whole when the limit allows it.
    from docclean.config import ReadConfig

    roomy = ReadConfig(max_file_bytes=64 * 1024 * 1024)
    whole = {d.source_path: d for d in read_all(root, roomy)}["large_50mb.txt"]
    assert not whole.rejected and len(whole.raw) == 50 * 1024 * 1024
