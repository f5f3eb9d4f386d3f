"""A generated corpus of hostile inputs, and the outcome each one must reach at the reader.

``make_hostile_corpus(dir)`` writes the files and returns ``{source_path: outcome}`` where source_path is
what ``Document.source_path`` will be (``path#N`` for record N of a container) and outcome is
``"document"`` or ``"reject:<reason>"``. Entries that are not inputs (hidden files, WARC request and
metadata records, non-HTML responses, blank jsonl lines) are written but absent from the mapping.
``large=True`` adds the 50 MB text file and the single 10 MB line (slow tests only).
Nothing binary is committed: everything is built here from a fixed seed.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
from pathlib import Path

FRENCH = "Le ministre a déclaré à la presse qu'il était très inquiet : « Nous n'avons pas le choix. »\n"
ENGLISH_QUOTES = "The minister said \u201cno\u201d \u2013 the \u20ac5 fee isn\u2019t fair, and left.\n"
GERMAN = "Die Bundesregierung äußerte sich über die Größe des Haushalts; Müller sagte, es gäbe keine Lösung.\n"
RUSSIAN = "Министр обороны Франции заявил, что НАТО переживает момент истины.\n"
JAPANESE = "東京の会議で、防衛大臣は同盟の将来について語った。\n"
ARTICLE = (
    "NATO faces a moment of reckoning on its future, the minister warned on Thursday.\n\n"
    "Allies need to think long-term and beef up their defence industries, he told reporters.\n"
)
HTML_PAGE = (
    "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Allies meet in Brussels</title></head>"
    "<body><nav>Home | World</nav><article><h1>Allies meet in Brussels</h1><p>Defence ministers met on "
    "Thursday to discuss spending.</p><p>The talks will continue next month.</p></article></body></html>"
)


def make_hostile_corpus(dir: Path, large: bool = False) -> dict[str, str]:
    root = Path(dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20250213)
    expected: dict[str, str] = {}

    def put(rel: str, data: bytes, outcome: str | None) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if outcome:
            expected[rel] = outcome
        return path

    # not text at all
    put("binary.bin", rng.randbytes(8192), "reject:binary_content")
    put("random.txt", rng.randbytes(4096), "reject:binary_content")
    put("photo.png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(2000), "reject:binary_content")
    put("report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "reject:binary_content")
    put("controls.txt", b"ok\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f" * 50, "reject:binary_content")
    put("nul_padded.txt", b"Some text" + b"\x00" * 500 + b"more text", "reject:binary_content")
    put("high_byte_noise.txt", bytes(rng.choice((rng.randrange(32, 127), rng.randrange(128, 256))) for _ in range(300)),
        "reject:undecodable_text")
    put("empty.txt", b"", "reject:empty_file")
    put("empty.html", b"", "reject:empty_file")
    put("whitespace.txt", " \n\t\n\u00a0\u200b \r\n   \n".encode(), "reject:whitespace_only")
    put("bom_only.txt", b"\xef\xbb\xbf", "reject:whitespace_only")

    # encodings
    put("utf8.txt", (FRENCH + ENGLISH_QUOTES + RUSSIAN).encode(), "document")
    put("utf8_bom.txt", b"\xef\xbb\xbf" + ARTICLE.encode(), "document")
    put("invalid_utf8.txt", FRENCH.encode() + b"Caf\xc3\xa9 \xff broken \xe2\x82 euro \xc3\xa9t\xc3\xa9\n" + ARTICLE.encode(), "document")
    put("latin1.txt", (FRENCH + GERMAN).encode("latin-1"), "document")
    put("cp1252.txt", (ENGLISH_QUOTES * 3).encode("cp1252"), "document")
    put("cp1251.txt", (RUSSIAN * 3).encode("cp1251"), "document")
    put("shift_jis.txt", (JAPANESE * 3).encode("shift_jis"), "document")
    put("utf16_bom.txt", (FRENCH + ARTICLE).encode("utf-16"), "document")
    put("utf16le_nobom.txt", (FRENCH + ARTICLE).encode("utf-16-le"), "document")
    put("utf16be_nobom.txt", (FRENCH + ARTICLE).encode("utf-16-be"), "document")
    put("mixed_encodings.txt", ARTICLE.encode() + FRENCH.encode() + FRENCH.encode("latin-1") + GERMAN.encode("cp1252"), "document")
    put(
        "latin1_page.html",
        f"<html><head><meta http-equiv='Content-Type' content='text/html; charset=iso-8859-1'></head>"
        f"<body><p>{FRENCH}</p></body></html>".encode("latin-1"),
        "document",
    )

    # gzip
    put("article.txt.gz", gzip.compress(ARTICLE.encode()), "document")
    put("page.html.gz", gzip.compress(HTML_PAGE.encode()), "document")
    whole = gzip.compress((ARTICLE * 200).encode())
    put("truncated.txt.gz", whole[: len(whole) // 2], "reject:truncated_gzip")
    corrupt = bytearray(gzip.compress((ARTICLE * 200).encode(), compresslevel=9))
    for i in range(20, 60):
        corrupt[i] ^= 0x5A
    put("corrupt.txt.gz", bytes(corrupt), "reject:corrupt_gzip")
    put("not_really.html.gz", HTML_PAGE.encode(), "reject:corrupt_gzip")
    put("bomb.txt.gz", _gzip_bomb(100 * 1024 * 1024), "reject:too_large")
    put("empty.txt.gz", gzip.compress(b""), "reject:empty_file")

    # html
    put("unclosed.html", b"<html><body><div><p>Defence ministers met <b>on Thursday <i>to discuss<p>spending", "document")
    put("deep_nesting.html", b"<html><body>" + b"<div>" * 100_000 + b"deep text" + b"</div>" * 10 , "document")
    put("html_named_txt.txt", HTML_PAGE.encode(), "document")
    put("no_extension", ARTICLE.encode(), "document")
    put("notes.md", ("# Notes\n\n" + ARTICLE).encode(), "document")

    # pathological lines
    put("long_line_1mb.txt", b"word " * 200_000 + b"\n", "document")
    put(
        "regex_bait.txt",
        (b"<meta " + b" " * 5000 + b"charset" * 2000 + b"\n" + b"<!--" * 20_000 + b"\n"
         + b"a" * 100_000 + b"!\n" + b"ab" * 50_000 + b"\n" + (b"x " * 50_000) + b"\n"),
        "document",
    )
    put("comment_bait.txt", b"<!---->" * 5000 + b"x", "document")  # nested optional comments: exponential for a naive sniff
    put("meta_bait.html", b"<meta " * 10_000 + b"caf\xe9 \xff", "document")  # not UTF-8: the meta charset scan runs
    put("nested/a/b/c/deep.txt", ARTICLE.encode(), "document")
    put("odd#name.txt", ARTICLE.encode(), "document")

    # jsonl: one bad line is one reject
    lines = [
        json.dumps({"text": ARTICLE, "url": "https://example.org/a", "title": "A", "published": "2025-02-13T10:00:00Z"}),
        json.dumps({"html": HTML_PAGE, "url": "https://example.org/b", "published": "2025-02-13"}),
        '{"text": "unterminated',
        json.dumps({"url": "https://example.org/no-body", "title": "Only a title"}),
        json.dumps(["a", "list"]),
        "[" * 100_000 + "]" * 100_000,
        "",
        json.dumps({"text": " \n\t "}),
        json.dumps({"text": "ok"}, ensure_ascii=False),
        json.dumps({"text": "\u0000\u0001\u0002\u0003" * 20}),
    ]
    raw_lines = [line.encode() for line in lines]
    raw_lines[8] = '{"text": "Le café était fermé à côté."}'.encode("latin-1")
    put("records.jsonl", b"\n".join(raw_lines) + b"\n", None)
    outcomes = ["document", "document", "reject:invalid_jsonl_line", "reject:jsonl_missing_text",
                "reject:invalid_jsonl_line", "reject:invalid_jsonl_line", None, "reject:whitespace_only",
                "document", "reject:binary_content"]
    for n, outcome in enumerate(outcomes, start=1):
        if outcome:
            expected[f"records.jsonl#{n}"] = outcome
    good_member = gzip.compress((lines[0] + "\n" + lines[1] + "\n").encode())
    bad_member = gzip.compress(("\n".join([lines[0]] * 50) + "\n").encode())
    put("truncated.jsonl.gz", good_member + bad_member[: len(bad_member) // 2], None)
    expected.update({"truncated.jsonl.gz#1": "document", "truncated.jsonl.gz#2": "document",
                     "truncated.jsonl.gz#3": "reject:truncated_gzip"})

    # warc: a broken record among good ones, compressed and not
    for name, gz in (("crawl.warc.gz", True), ("crawl.warc", False)):
        put(name, _warc_with_broken_record(gz), None)
        expected.update({f"{name}#3": "document", f"{name}#4": "document", f"{name}#5": "reject:warc_record_error",
                         f"{name}#8": "document", f"{name}#9": "reject:whitespace_only"})

    put("empty.jsonl", b"", "reject:empty_file")
    put("blank_lines.jsonl", b"\n \n\t\n", "reject:empty_container")
    put("not_a_warc.warc", ARTICLE.encode(), None)
    expected["not_a_warc.warc#1"] = "reject:warc_record_error"
    put("only_metadata.warc.gz", _warc_with_broken_record(True, only_warcinfo=True), "reject:empty_container")

    # links, permissions, special files
    for rel, target, outcome in (
        ("link_outside.txt", "/etc/passwd", "reject:symlink_outside_root"),
        ("link_up.txt", "../" * 10 + "etc/hostname", "reject:symlink_outside_root"),
        ("link_dir_outside", "/etc", "reject:symlink_outside_root"),
        ("link_inside.txt", "utf8.txt", "reject:symlink_not_followed"),
        ("link_broken.txt", "does-not-exist.txt", "reject:broken_symlink"),
    ):
        os.symlink(target, root / rel)
        expected[rel] = outcome
    locked = put("unreadable.txt", ARTICLE.encode(), None)
    locked.chmod(0)
    # root reads anyway: then the file is simply a document
    expected["unreadable.txt"] = "document" if os.access(locked, os.R_OK) else "reject:unreadable_file"
    os.mkfifo(root / "a_fifo")
    expected["a_fifo"] = "reject:not_a_regular_file"
    odd_name = os.fsdecode(b"name-\xff.txt")
    put(odd_name, ARTICLE.encode(), None)
    expected["name-\\xff.txt"] = "document"

    # not inputs
    put(".hidden.txt", ARTICLE.encode(), None)
    put(".git/config", b"[core]\n", None)

    if large:
        put_large_text(root / "large_50mb.txt", 50 * 1024 * 1024)
        expected["large_50mb.txt"] = "reject:too_large"
        put("single_line_10mb.txt", b"spam " * (2 * 1024 * 1024), "document")
    return expected


def put_large_text(path: Path, size: int) -> None:
    """A text file of ``size`` bytes written in chunks, never held in memory whole."""
    paragraph = (ARTICLE + FRENCH + ENGLISH_QUOTES).encode()
    block = paragraph * (1024 * 1024 // len(paragraph))
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            chunk = block[: size - written]
            fh.write(chunk)
            written += len(chunk)


def _gzip_bomb(size: int) -> bytes:
    """``size`` bytes of 'A' in ~100 bytes per MiB: one small gzip member, repeated (multi-member gzip)."""
    member = gzip.compress(b"A" * (1024 * 1024), compresslevel=9)
    return member * (size // (1024 * 1024))


def _warc_with_broken_record(gz: bool, only_warcinfo: bool = False) -> bytes:
    """Records: 1 warcinfo, 2 request, 3 HTML response, 4 latin-1 HTML response, 5 garbage,
    6 PNG response, 7 404 response, 8 HTML response, 9 whitespace-only HTML response."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    def record_bytes(make) -> bytes:
        buf = io.BytesIO()
        writer = WARCWriter(buf, gzip=gz)
        writer.write_record(make(writer))
        return buf.getvalue()

    def response(url: str, body: bytes, content_type: str, status: str = "200 OK"):
        def make(writer):
            http = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
            return writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                             warc_headers_dict={"WARC-Date": "2025-02-13T10:00:00Z"})
        return record_bytes(make)

    info = record_bytes(lambda w: w.create_warcinfo_record("crawl.warc", {"software": "hostile.py"}))
    if only_warcinfo:
        return info
    request = record_bytes(lambda w: w.create_warc_record(
        "https://example.org/a", "request", payload=io.BytesIO(b"GET /a HTTP/1.1\r\nHost: example.org\r\n\r\n")))
    garbage = b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: lots\r\n\r\n<html>broken</html>\r\n\r\n"
    if gz:
        garbage = gzip.compress(b"THIS IS NOT A WARC RECORD\r\n" + garbage)
    latin1 = f"<html><body><p>{FRENCH}</p></body></html>".encode("latin-1")
    return b"".join([
        info,
        request,
        response("https://example.org/a", HTML_PAGE.encode(), "text/html; charset=utf-8"),
        response("https://example.org/fr", latin1, "text/html; charset=ISO-8859-1"),
        garbage,
        response("https://example.org/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(200), "image/png"),
        response("https://example.org/missing", b"<html>Not found</html>", "text/html", "404 Not Found"),
        response("https://example.org/b", HTML_PAGE.replace("Brussels", "Paris").encode(), "text/html"),
        response("https://example.org/blank", b"  \n\n  ", "text/html"),
    ])
