"""Read stage: turn the files under an input root into `Document`s, one per file or per container record.

``discover(root, config)`` lists the inputs; ``read_source(root, source, config)`` yields the documents of
one of them. Every input ends as a document or as a reject (``doc.reject(reason, detail)``) carrying its
source path, the SHA-256 of its raw bytes and those bytes (the first ``max_reject_raw_bytes`` of them for
huge inputs): nothing is dropped silently and nothing raises out of ``read_source``.

Formats, chosen by name: ``.txt`` and unknown names (sniffed: text, HTML or binary), ``.html``/``.htm``,
``.jsonl``/``.ndjson`` (one document per line), ``.warc``/``.arc`` (HTML response records, via warcio),
and ``.gz`` variants of all of them. Bytes are decoded as UTF-8 when they are valid UTF-8 (``encoding`` is
then None); otherwise through a BOM, a UTF-16 sniff, the HTML/HTTP declared charset or charset-normalizer,
and the encoding used is recorded. Mojibake is left for ftfy in the normalize stage.

Reject reasons: empty_file, whitespace_only, binary_content, undecodable_text, too_large, truncated_gzip,
corrupt_gzip, invalid_jsonl_line, jsonl_missing_text, warc_record_error, empty_container (a jsonl/warc
with no record to read), unreadable_file, unreadable_directory, not_a_regular_file (FIFO, socket, device),
symlink_outside_root, symlink_not_followed, broken_symlink, and read_error (a bug caught at the last line
of defence). Container entries that are not documents (WARC request/metadata/warcinfo records, non-HTML or
non-2xx responses, blank jsonl lines) are not inputs: pass a ``ReadStats`` to count them by kind.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from charset_normalizer import from_bytes

from docclean.config import ReadConfig
from docclean.document import Document, Fix

STAGE = "read"
_CHUNK = 1 << 20
_SAMPLE = 64 * 1024  # bytes looked at when judging binary content
_LEGACY_SAMPLE = 16 * 1024  # bytes of non-UTF-8 lines given to charset-normalizer and the re-ranking


@dataclass(frozen=True)
class SourceFile:
    path: Path  # where to open it (may be a symlink or an unlistable directory: read_source rejects those)
    rel: str  # POSIX path relative to the input root, always valid UTF-8
    size: int
    mtime: datetime


@dataclass
class ReadStats:
    """What reading saw beyond the documents themselves. Container entries that are not inputs (WARC
    request/metadata records, non-HTML or non-2xx responses, blank jsonl lines) are counted here by kind."""

    files: int = 0
    documents: int = 0
    rejected: int = 0
    bytes_read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1


def doc_id_for(source_path: str, sha256: str) -> str:
    """Stable id of a document: the same bytes at the same place always get the same id."""
    key = f"{source_path}\n{sha256}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()[:20]


# --------------------------------------------------------------------------------------------- discovery


def discover(root: Path, config: ReadConfig) -> list[SourceFile]:
    """Every input under ``root``, sorted by relative path. Hidden files and folders (``.git``) are skipped;
    links are listed but never walked into, so ``read_source`` can reject or resolve them inside the root;
    folders that cannot be listed are listed themselves, to be rejected as ``unreadable_directory``."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"input root is not a directory: {root}")
    found: list[SourceFile] = []

    def unlistable(err: OSError) -> None:
        if err.filename and Path(err.filename) != root:
            found.append(_source_file(root, Path(err.filename)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable, followlinks=False):
        here = Path(dirpath)
        walk_into = []
        for name in dirnames:
            if name.startswith("."):
                continue
            if (here / name).is_symlink():
                found.append(_source_file(root, here / name))  # a link to a folder: reported, not walked
            else:
                walk_into.append(name)
        dirnames[:] = walk_into
        found.extend(_source_file(root, here / name) for name in filenames if not name.startswith("."))
    return sorted(found, key=lambda s: s.rel)


def _source_file(root: Path, path: Path) -> SourceFile:
    rel = os.fsencode(path.relative_to(root).as_posix()).decode("utf-8", "backslashreplace")
    try:
        st = path.lstat()
        size, mtime = st.st_size, st.st_mtime
    except OSError:
        size, mtime = 0, 0.0
    return SourceFile(path=path, rel=rel, size=size, mtime=datetime.fromtimestamp(mtime, tz=timezone.utc))


# --------------------------------------------------------------------------------------------- reading


class _Reject(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def read_source(
    root: Path, source: SourceFile, config: ReadConfig, stats: ReadStats | None = None
) -> Iterator[Document]:
    """The documents of one input. Never raises: whatever goes wrong becomes a reject document."""
    stats = stats if stats is not None else ReadStats()
    stats.files += 1
    position = _Position(source.rel)
    try:
        for doc in _read_any(Path(root), source, config, stats, position):
            if doc.rejected:
                stats.rejected += 1
            else:
                stats.documents += 1
            yield doc
    except Exception as err:  # last line of defence: a bug or an I/O error mid-container
        stats.rejected += 1
        yield _reject_doc(
            position.next_path(), b"", None, source.mtime, "read_error", f"{type(err).__name__}: {err}", config
        )


class _Position:
    """Which record of a container is being read, so a late failure is reported at the right path."""

    def __init__(self, rel: str):
        self.rel, self.record, self.container = rel, 0, False

    def next_path(self) -> str:
        return f"{self.rel}#{self.record + 1}" if self.container else self.rel


def _read_any(root: Path, source: SourceFile, config: ReadConfig, stats: ReadStats, pos: _Position):
    path, rel, mtime = source.path, source.rel, source.mtime
    if path.is_symlink():
        resolved = _resolve_link(root, path, config)
        if isinstance(resolved, Document):
            yield resolved.replace(source_mtime=mtime)
            return
        path = resolved
    name = path.name.lower()
    gzipped = name.endswith(".gz")
    inner = name[:-3] if gzipped else name
    try:
        fh, st = _open_regular(path)
    except _Reject as r:
        yield _reject_doc(rel, b"", None, mtime, r.reason, r.detail, config)
        return
    with fh:
        stats.bytes_read += st.st_size
        if inner.endswith((".jsonl", ".ndjson", ".warc", ".arc")):
            pos.container = True
            skipped_before = dict(stats.skipped)
            if inner.endswith((".warc", ".arc")):
                records = _read_warc(fh, rel, mtime, config, stats, pos)
            else:
                records = _read_jsonl(fh, rel, mtime, gzipped, config, stats, pos)
            produced = 0
            for doc in records:
                produced += 1
                yield doc
            if not produced:  # the file itself is an input: it must leave a trace
                yield _empty_container(fh, rel, mtime, st.st_size, skipped_before, stats, config)
        else:
            html = inner.endswith((".html", ".htm", ".xhtml"))
            yield _read_single(fh, st.st_size, rel, mtime, gzipped, html, config)


def _empty_container(fh, rel, mtime, size, skipped_before, stats, config) -> Document:
    skipped = {k: v - skipped_before.get(k, 0) for k, v in stats.skipped.items() if v != skipped_before.get(k, 0)}
    fh.seek(0)
    head, _, sha = _drain(fh, config.max_reject_raw_bytes)
    if size == 0:
        return _reject_doc(rel, head, sha, mtime, "empty_file", "0 bytes", config)
    detail = "no records" + (f"; skipped: {skipped}" if skipped else "")
    return _reject_doc(rel, head, sha, mtime, "empty_container", detail, config)


def _resolve_link(root: Path, link: Path, config: ReadConfig) -> Path | Document:
    """The target of a link that may be read, or a reject. Targets outside the root are never opened."""
    target_text = os.readlink(link)
    raw = os.fsencode(target_text)
    rel = _source_file(root, link).rel
    target = Path(os.path.realpath(link))
    root_real = Path(os.path.realpath(root))
    if not target.exists():
        return _reject_doc(rel, raw, None, None, "broken_symlink", f"link to missing {target_text!r}", config)
    if target != root_real and root_real not in target.parents:
        return _reject_doc(
            rel, raw, None, None, "symlink_outside_root", f"link to {target_text!r} leaves the input root", config
        )
    if target.is_dir() or not config.follow_symlinks:
        return _reject_doc(
            rel, raw, None, None, "symlink_not_followed",
            f"link to {target.relative_to(root_real).as_posix()!r} inside the root, which is read on its own",
            config,
        )
    return target


def _open_regular(path: Path) -> tuple[BinaryIO, os.stat_result]:
    # O_NONBLOCK: opening a FIFO must not hang the run; O_NOFOLLOW: a link swapped in after discovery
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise _Reject("unreadable_directory", "folder cannot be listed") from None
    except OSError as err:
        raise _Reject("unreadable_file", f"{type(err).__name__}: {err.strerror or err}") from None
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise _Reject("unreadable_directory", "folder cannot be listed")
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _Reject("not_a_regular_file", f"file mode {stat.filemode(st.st_mode)} (FIFO, socket or device)")
    return os.fdopen(fd, "rb"), st


# --------------------------------------------------------------------------------------------- one file


def _read_single(
    fh: BinaryIO, size: int, rel: str, mtime: datetime, gzipped: bool, html: bool, config: ReadConfig
) -> Document:
    if size > config.max_file_bytes:
        head, total, sha = _drain(fh, config.max_reject_raw_bytes)
        return _reject_doc(
            rel, head, sha, mtime, "too_large", f"{total} bytes > max_file_bytes {config.max_file_bytes}", config
        )
    # Ask for the size stat gave (plus one byte, to notice growth): a read of the 16 MiB limit allocates
    # that much first, which cost more than reading a 300 KB page.
    want = min(size, config.max_file_bytes) + 1
    stored = fh.read(want)
    if len(stored) == want and want <= config.max_file_bytes:  # grown since the stat: read on to the limit
        stored += fh.read(config.max_file_bytes + 1 - len(stored))
    if len(stored) > config.max_file_bytes:  # the file grew since it was stat'ed
        return _reject_doc(
            rel, stored, None, mtime, "too_large", f"more than max_file_bytes {config.max_file_bytes}", config
        )
    raw = stored
    if gzipped:
        try:
            raw = _gunzip(stored, min(config.max_file_bytes, config.max_decompressed_bytes))
        except _Reject as r:
            return _reject_doc(rel, stored, None, mtime, r.reason, r.detail, config)
    return _document(rel, raw, mtime, html, config)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress every gzip member of ``data``, refusing to produce more than ``limit`` bytes."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        try:
            while True:
                out += inflater.decompress(rest, limit + 1 - len(out))
                if len(out) > limit:
                    raise _Reject("too_large", f"decompresses to more than {limit} bytes (gzip bomb guard)")
                rest = inflater.unconsumed_tail
                if inflater.eof or not rest:
                    break
        except zlib.error as err:
            raise _Reject("corrupt_gzip", f"zlib: {err}") from None
        if not inflater.eof:
            raise _Reject("truncated_gzip", f"gzip stream ends early after {len(out)} bytes")
        rest = inflater.unused_data.lstrip(b"\x00")  # members may be padded with zeros
    return bytes(out)


def _document(
    source_path: str,
    raw: bytes,
    mtime: datetime | None,
    html: bool,
    config: ReadConfig,
    declared: str | None = None,
    **meta,
) -> Document:
    sha = hashlib.sha256(raw).hexdigest()
    try:
        decoded = decode_bytes(raw, config, declared=declared if declared else _meta_charset(raw))
    except _Reject as r:
        return _reject_doc(source_path, raw, sha, mtime, r.reason, r.detail, config, **meta)
    is_html = html or _sniffs_as_html(decoded.text)
    doc = Document(
        doc_id=doc_id_for(source_path, sha),
        source_path=source_path,
        source_sha256=sha,
        raw=raw,
        content_type="html" if is_html else "text",
        source_mtime=mtime,
        encoding=decoded.encoding,
        html=decoded.text if is_html else None,
        text="" if is_html else decoded.text,
        **meta,
    )
    return doc.with_edits(list(decoded.fixes)) if decoded.fixes else doc


def _reject_doc(
    source_path: str,
    raw: bytes,
    sha: str | None,
    mtime: datetime | None,
    reason: str,
    detail: str,
    config: ReadConfig,
    **meta,
) -> Document:
    """A reject keeps the first ``max_reject_raw_bytes`` of its raw bytes; the hash is of all of them."""
    sha = sha or hashlib.sha256(raw).hexdigest()
    if len(raw) > config.max_reject_raw_bytes:
        detail += f" (raw kept: first {config.max_reject_raw_bytes} of {len(raw)} bytes)"
        raw = raw[: config.max_reject_raw_bytes]
    doc = Document(
        doc_id=doc_id_for(source_path, sha), source_path=source_path, source_sha256=sha, raw=raw,
        source_mtime=mtime, **meta,
    )
    return doc.reject(reason, detail)


def _drain(stream, keep: int) -> tuple[bytes, int, str]:
    """Read ``stream`` to its end: its first ``keep`` bytes, its length and its SHA-256."""
    digest, head, total = hashlib.sha256(), bytearray(), 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        total += len(chunk)
        if len(head) < keep:
            head += chunk[: keep - len(head)]
    return bytes(head), total, digest.hexdigest()


# --------------------------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str | None  # None: valid UTF-8
    fixes: tuple[Fix, ...] = ()


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32"),
    (codecs.BOM_UTF8, "utf-8", None),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
)
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"), (b"\xff\xd8\xff", "JPEG image"), (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"), (b"%PDF-", "PDF document"), (b"PK\x03\x04", "ZIP archive (or docx/xlsx/epub)"),
    (b"\x7fELF", "ELF executable"), (b"\x1f\x8b\x08", "gzip data where text was expected"), (b"BZh91AY&SY", "bzip2 data"),
    (b"\xfd7zXZ\x00", "xz data"), (b"7z\xbc\xaf\x27\x1c", "7-zip archive"), (b"(\xb5/\xfd", "zstd data"),
    (b"SQLite format 3\x00", "SQLite database"), (b"\x00asm", "WebAssembly"), (b"OggS", "Ogg media"),
    (b"ID3\x03", "MP3 audio"), (b"ID3\x04", "MP3 audio"), (b"\xd0\xcf\x11\xe0", "OLE document (doc/xls)"),
)
_CONTROL_BYTES = bytes(range(0, 9)) + bytes(range(14, 32)) + b"\x7f"  # not \t \n \v \f \r
_INVISIBLE = " \t\n\r\f\v\u00a0\u200b\u200c\u200d\u2060\ufeff\u3000\u2028\u2029"
_WEB_LATIN1_ALIASES = {"latin_1", "iso8859_1", "ascii"}  # browsers decode these labels as windows-1252


def decode_bytes(raw: bytes, config: ReadConfig, declared: str | None = None) -> Decoded:
    """Text of ``raw``: UTF-8 if valid; else BOM, UTF-16 sniff, declared charset, charset-normalizer.
    Raises ``_Reject`` (empty_file, whitespace_only, binary_content, undecodable_text)."""
    if not raw:
        raise _Reject("empty_file", "0 bytes")
    for magic, kind in _MAGIC:
        if raw.startswith(magic):
            raise _Reject("binary_content", kind)
    for bom, codec, name in _BOMS:
        if raw.startswith(bom):
            body = raw[len(bom):]
            if name is None:  # UTF-8 BOM: drop it, carry on as UTF-8
                raw = body
                if not raw:
                    raise _Reject("whitespace_only", "a UTF-8 byte order mark and nothing else")
                break
            return _checked(_decode_with(body, codec, name), config)
    if b"\x00" in raw[:_SAMPLE]:
        codec = _sniff_utf16(raw)
        if codec:
            return _checked(_decode_with(raw, codec, codec), config)
    try:
        return _checked(Decoded(raw.decode("utf-8"), None), config)
    except UnicodeDecodeError:
        pass
    why = _binary_reason(raw[:_SAMPLE], config)
    if why:
        raise _Reject("binary_content", why)
    if declared:
        try:
            return _checked(Decoded(raw.decode(declared), declared), config)
        except (UnicodeDecodeError, LookupError):
            pass
    return _checked(_decode_legacy_or_mixed(raw), config)


def _decode_with(raw: bytes, codec: str, name: str) -> Decoded:
    text = raw.decode(codec, "replace")
    bad = text.count("\ufffd") - raw.decode(codec, "ignore").count("\ufffd")
    if bad > 0.05 * len(text):  # e.g. binary that happens to open with FF FE
        raise _Reject("binary_content", f"{bad} invalid {name} sequences in {len(text)} characters")
    fixes = (Fix("invalid_bytes_replaced", f"{bad} undecodable {name} sequences -> U+FFFD", STAGE),) if bad else ()
    return Decoded(text, name, fixes)


def _sniff_utf16(raw: bytes) -> str | None:
    """UTF-16 without a BOM: mostly-Latin text has a zero in every other byte."""
    sample = raw[: _SAMPLE & ~1]
    if len(sample) < 32:  # a few bytes with a NUL are as likely UTF-8 with a control character
        return None
    even, odd = sample[0::2], sample[1::2]
    zeros_even, zeros_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if zeros_odd > 0.3 and zeros_even < 0.05:
        return "utf-16-le"
    if zeros_even > 0.3 and zeros_odd < 0.05:
        return "utf-16-be"
    return None


def _binary_reason(sample: bytes, config: ReadConfig) -> str | None:
    if not sample:
        return None
    nul = sample.count(0)
    if nul > max(1, len(sample) // 1000):
        return f"{nul} NUL bytes in the first {len(sample)}"
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if controls / len(sample) > config.binary_control_ratio:
        return f"{controls / len(sample):.0%} control bytes > binary_control_ratio {config.binary_control_ratio}"
    return None


def _checked(decoded: Decoded, config: ReadConfig) -> Decoded:
    """Reject decoded text that is really binary, or holds nothing but whitespace."""
    text = decoded.text
    sample = text[:_SAMPLE]
    as_bytes = sample.encode("utf-8", "surrogatepass")  # control characters are single bytes: fast count
    controls = len(as_bytes) - len(as_bytes.translate(None, _CONTROL_BYTES))
    if sample and (sample.count("\x00") > max(1, len(sample) // 1000) or controls / len(sample) > config.binary_control_ratio):
        raise _Reject("binary_content", f"{controls} control characters in the first {len(sample)} decoded")
    if not text[:4096].strip(_INVISIBLE) and not text.strip(_INVISIBLE):
        raise _Reject("whitespace_only", f"{len(text)} characters, all whitespace or invisible")
    return decoded


def _decode_legacy_or_mixed(raw: bytes) -> Decoded:
    """Bytes that are not valid UTF-8. Line by line: lines that are UTF-8 stay UTF-8; the others are
    either UTF-8 with a few broken sequences (replaced, recorded) or a legacy encoding, guessed by
    charset-normalizer on those lines only, so a file mixing both decodes right on both."""
    lines = raw.splitlines(keepends=True)
    utf8_nonascii, bad = False, []
    for i, line in enumerate(lines):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8_nonascii = True
        except UnicodeDecodeError:
            bad.append(i)
    bad_bytes = b"".join(lines[i] for i in bad)
    as_utf8 = bad_bytes.decode("utf-8", "replace")
    broken = as_utf8.count("\ufffd") - bad_bytes.decode("utf-8", "ignore").count("\ufffd")
    well_formed = sum(1 for ch in as_utf8 if ch > "\x7f") - as_utf8.count("\ufffd")
    if well_formed >= broken:  # mostly valid multi-byte UTF-8: damage, not another encoding
        return Decoded(
            raw.decode("utf-8", "replace"), "utf-8",
            (Fix("invalid_utf8_replaced", f"{broken} invalid UTF-8 sequences -> U+FFFD", STAGE),),
        )
    legacy = _guess_legacy(bad_bytes)
    if legacy is None:
        raise _Reject("undecodable_text", "not UTF-8 and charset-normalizer found no plausible encoding")
    if not utf8_nonascii:
        return _decode_with(raw, legacy, legacy)
    bad_set = set(bad)
    text = "".join(
        line.decode(legacy, "replace") if i in bad_set else line.decode("utf-8") for i, line in enumerate(lines)
    )
    return Decoded(
        text, f"utf-8+{legacy}",
        (Fix("mixed_encoding_lines", f"{len(bad)} of {len(lines)} lines decoded as {legacy}, the rest as UTF-8", STAGE),),
    )


def _guess_legacy(data: bytes) -> str | None:
    """charset-normalizer's candidates, re-ranked by how plausible the decoded words look: on short
    Western texts its first pick is often a DOS/Baltic code page that turns 'café' into 'cafķ'."""
    sample = data[:_LEGACY_SAMPLE]
    candidates = [m.encoding for m in from_bytes(sample, steps=3)]
    names = []
    for name in candidates:
        if name.startswith(("utf_16", "utf_32")):
            continue  # real UTF-16/32 has a BOM or NULs and was caught before; without them this is noise
        if name in _WEB_LATIN1_ALIASES:
            name = "cp1252" if _decodes(data, "cp1252") else "latin_1"
        if name not in names:
            names.append(name)
    if not names:
        return None
    # cp1252 first (the web's legacy default), then charset-normalizer's order; a clean decode ends the search
    names.sort(key=lambda name: name != "cp1252")
    best, best_score = names[0], None
    for name in names[:8]:
        score = _implausible(sample.decode(name, "replace"))
        if score == 0:
            return name
        if best_score is None or score < best_score:
            best, best_score = name, score
    return best


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
        return True
    except (UnicodeDecodeError, LookupError):
        return False


# non-letters that legitimately touch letters in real text: quotes, dashes, marks, spaces, soft hyphen
_TOUCHING_LETTERS_OK = set("\u00a0\u00ad’‘ʼ“”„‚«»‹›·•‐‒–—―…°©®™")


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _implausible(text: str) -> int:
    """Count decoding artefacts in alphabetic scripts: a symbol stuck to a word (powiedzia³, c¶tķ), a
    capital after a small letter inside a word (ķlĶves), C1 controls and replacement characters."""
    bad = 0
    for match in _NON_ASCII.finditer(text):
        i, ch = match.start(), match.group()
        if ch == "\ufffd" or "\x80" <= ch <= "\x9f":
            bad += 1
            continue
        prev = text[i - 1] if i else " "
        nxt = text[i + 1] if i + 1 < len(text) else " "
        if ch >= "\u0800" or prev >= "\u0800" or nxt >= "\u0800":
            continue  # CJK and other scripts write punctuation between letters: no word shapes to judge
        if ch.isalpha():
            bad += ch.isupper() and prev.isalpha() and prev.islower()
        elif ch in "¿¡":
            bad += nxt.isalpha() and nxt.islower()  # ¿Qué, not ¿e (Polish ż in cp1252)
        elif ch in "²³":
            bad += prev.isalpha() and prev not in "mM"  # m², not powiedzia³
        elif ch not in _TOUCHING_LETTERS_OK:
            bad += prev.isalpha() or nxt.isalpha()
    return bad


_META_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s{0,8}=\s{0,8}["']?\s{0,8}([A-Za-z0-9_.:-]{1,40})""", re.I)
_HTML_OPENINGS = ("<!doctype html", "<html", "<head", "<body")


def _meta_charset(raw: bytes) -> str | None:
    """The charset an HTML page declares in its first 4 KB, as a Python codec name (only used when
    the bytes are not valid UTF-8)."""
    match = _META_CHARSET.search(raw[:4096])
    return _codec_name(match.group(1).decode("ascii")) if match else None


def _codec_name(label: str) -> str | None:
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name.startswith(("utf-16", "utf-32")):
        return None  # a page served as bytes cannot be UTF-16 by declaration alone (WHATWG reads it as UTF-8)
    return "cp1252" if name in {"latin-1", "iso8859-1", "ascii"} else name


def _sniffs_as_html(text: str) -> bool:
    """Whether text opens like an HTML page, after an XML declaration and comments. Written without a
    regex: a pattern over nested optional comments backtracks exponentially on '<!---->' * 600."""
    head = text[:4096].lstrip().lower()
    for _ in range(10):
        if head.startswith("<?xml"):
            end = head.find("?>")
        elif head.startswith("<!--"):
            end = head.find("-->")
        else:
            break
        if end < 0:
            return False
        head = head[end + 3 if head.startswith("<!--") else end + 2:].lstrip()
    return head.startswith(_HTML_OPENINGS)


# --------------------------------------------------------------------------------------------- jsonl


def _read_jsonl(fh, rel, mtime, gzipped, config, stats, pos) -> Iterator[Document]:
    stream = gzip.GzipFile(fileobj=fh, mode="rb") if gzipped else fh
    limit = config.max_record_bytes
    while True:
        try:
            line = stream.readline(limit + 1)
        except (EOFError, OSError, zlib.error) as err:
            yield _broken_gzip_tail(fh, pos.next_path(), mtime, err, config)
            return
        if not line:
            return
        pos.record += 1
        path = f"{rel}#{pos.record}"
        if len(line) > limit and not line.endswith(b"\n"):
            try:
                yield _too_long_line(stream, line, path, mtime, config)
            except (EOFError, OSError, zlib.error) as err:
                yield _broken_gzip_tail(fh, path, mtime, err, config)
                return
            continue
        record = line.rstrip(b"\r\n")
        if pos.record == 1 and record.startswith(codecs.BOM_UTF8):
            record = record[len(codecs.BOM_UTF8):]
        if not record.strip():
            stats.skip("jsonl_blank_line")
            continue
        yield _jsonl_document(record, path, mtime, config)


def _too_long_line(stream, head: bytes, path: str, mtime, config: ReadConfig) -> Document:
    digest, total = hashlib.sha256(head), len(head)
    while more := stream.readline(_CHUNK):
        ended = more.endswith(b"\n")
        more = more.rstrip(b"\r\n") if ended else more
        digest.update(more)
        total += len(more)
        if ended:
            break
    return _reject_doc(
        path, head, digest.hexdigest(), mtime, "too_large",
        f"line of {total} bytes > max_record_bytes {config.max_record_bytes}", config,
    )


def _broken_gzip_tail(fh, path: str, mtime, err: BaseException, config: ReadConfig) -> Document:
    """A gzip container that breaks part-way: the records before stand; the rest is one reject that
    keeps the compressed file (capped) and its hash."""
    reason = "truncated_gzip" if isinstance(err, EOFError) else "corrupt_gzip"
    fh.seek(0)
    head, total, sha = _drain(fh, config.max_reject_raw_bytes)
    return _reject_doc(path, head, sha, mtime, reason, f"gzip stream breaks at this record: {err}", config)


def _jsonl_document(record: bytes, path: str, mtime, config: ReadConfig) -> Document:
    sha = hashlib.sha256(record).hexdigest()
    encoding = None
    try:
        line = record.decode("utf-8")
    except UnicodeDecodeError:
        try:
            decoded = decode_bytes(record, config)
        except _Reject as r:
            return _reject_doc(path, record, sha, mtime, "invalid_jsonl_line", f"{r.reason}: {r.detail}", config)
        line, encoding = decoded.text, decoded.encoding
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as err:
        return _reject_doc(path, record, sha, mtime, "invalid_jsonl_line", f"{type(err).__name__}: {err}"[:300], config)
    if not isinstance(obj, dict):
        return _reject_doc(path, record, sha, mtime, "invalid_jsonl_line", f"a JSON {type(obj).__name__}, not an object", config)
    meta = {
        "url": _str_field(obj.get("url")),
        "title": _str_field(obj.get("title")),
        "published": _parse_date(obj.get("published")),
    }
    html, text = obj.get("html"), obj.get("text")
    is_html = isinstance(html, str) and html.strip() != ""
    body = html if is_html else text
    if not isinstance(body, str):
        return _reject_doc(path, record, sha, mtime, "jsonl_missing_text", "no string 'text' or 'html' field", config, **meta)
    try:
        decoded = _checked(Decoded(body, encoding), config)
    except _Reject as r:
        return _reject_doc(path, record, sha, mtime, r.reason, r.detail, config, **meta)
    is_html = is_html or _sniffs_as_html(body)
    return Document(
        doc_id=doc_id_for(path, sha), source_path=path, source_sha256=sha, raw=record,
        content_type="html" if is_html else "text", source_mtime=mtime, encoding=decoded.encoding,
        html=body if is_html else None, text="" if is_html else body, **meta,
    )


def _str_field(value) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _parse_date(value) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------- warc


def _read_warc(fh, rel, mtime, config, stats, pos) -> Iterator[Document]:
    """HTML response records become documents; other records are counted in ``stats.skipped``. A record
    warcio cannot parse becomes a ``warc_record_error`` reject holding its bytes, and reading resumes
    at the next record start found after it (next gzip member, or next ``WARC/1.`` line)."""
    from warcio.archiveiterator import ArchiveIterator

    gzipped = fh.read(2) == b"\x1f\x8b"
    file_size = os.fstat(fh.fileno()).st_size
    known_format = "arc" if rel.lower().removesuffix(".gz").endswith(".arc") else "warc"
    start = 0
    while start is not None:
        fh.seek(start)
        records = ArchiveIterator(fh)
        records.known_format = known_format  # a fresh iterator must not guess ARC for a garbled WARC record
        start = None
        while True:
            record_start = records.offset
            try:
                record = next(records)
            except StopIteration:
                if _unread_tail(fh, record_start, file_size):
                    pos.record += 1
                    yield _warc_span_reject(fh, record_start, None, f"{rel}#{pos.record}", mtime, config,
                                            "truncated or unparseable data at the end of the file")
                return
            except Exception as err:
                start = _next_record_start(fh, record_start, gzipped)
                pos.record += 1
                yield _warc_span_reject(fh, record_start, start, f"{rel}#{pos.record}", mtime, config,
                                        f"unreadable record: {type(err).__name__}: {err}")
                break
            pos.record += 1
            path = f"{rel}#{pos.record}"
            warnings_before = records.err_count
            try:
                doc = _warc_document(record, path, mtime, config)
                records.read_to_end()
            except Exception as err:
                start = _next_record_start(fh, record_start, gzipped)
                yield _warc_span_reject(fh, record_start, start, path, mtime, config,
                                        f"unreadable record: {type(err).__name__}: {err}")
                break
            missing = getattr(record.raw_stream, "limit", 0)
            if records.err_count > warnings_before or missing:
                # fewer bytes than its Content-Length (truncated file), or data after it: not what it says
                why = f"{missing} bytes short of its Content-Length" if missing else "data after its Content-Length"
                yield _warc_span_reject(fh, record_start, records.offset, path, mtime, config, f"record is {why}")
            elif isinstance(doc, str):
                stats.skip(doc)
            else:
                yield doc


def _warc_span_reject(fh, start: int, end: int | None, path: str, mtime, config: ReadConfig, detail: str) -> Document:
    """A reject holding the file bytes from ``start`` to ``end`` (end of file if None), capped. The file
    position is restored: warcio's buffered reader carries on from where it was."""
    resume_at = fh.tell()
    fh.seek(start)
    digest, head, remaining = hashlib.sha256(), bytearray(), (None if end is None else end - start)
    while remaining is None or remaining > 0:
        chunk = fh.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
        if not chunk:
            break
        digest.update(chunk)
        if len(head) < config.max_reject_raw_bytes:
            head += chunk[: config.max_reject_raw_bytes - len(head)]
        if remaining is not None:
            remaining -= len(chunk)
    fh.seek(resume_at)
    detail = f"bytes {start}-{'end' if end is None else end} of the file: {detail}"[:500]
    return _reject_doc(path, bytes(head), digest.hexdigest(), mtime, "warc_record_error", detail, config)


def _unread_tail(fh, offset: int, file_size: int) -> bool:
    """Whether bytes other than padding remain after ``offset`` once warcio stops."""
    if offset >= file_size:
        return False
    resume_at = fh.tell()
    fh.seek(offset)
    tail = fh.read(_CHUNK)
    fh.seek(resume_at)
    return bool(tail.strip(b"\r\n\x00 ")) or file_size - offset > _CHUNK


def _next_record_start(fh, after: int, gzipped: bool) -> int | None:
    """Offset of the first plausible record start after ``after``, or None at end of file."""
    marker = b"\x1f\x8b\x08" if gzipped else b"\nWARC/1."
    skip = 0 if gzipped else 1
    position = after + 1
    tail = b""
    fh.seek(position)
    while chunk := fh.read(_CHUNK):
        window = tail + chunk
        found = window.find(marker)
        if found >= 0:
            return position - len(tail) + found + skip
        tail = window[-(len(marker) - 1):]
        position += len(chunk)
    return None


def _warc_document(record, path: str, mtime, config: ReadConfig) -> Document | str:
    """The document of an HTML response record, or the kind of record skipped (counted by the caller)."""
    if record.rec_type not in ("response", "resource"):
        return f"warc_{record.rec_type}"
    headers = record.http_headers
    if headers is not None:
        status = headers.get_statuscode() or ""
        if not status.startswith("2"):
            return "warc_non_2xx_response"
        content_type = headers.get_header("Content-Type") or ""
    else:
        content_type = record.rec_headers.get_header("Content-Type") or ""
    if "html" not in content_type.lower():
        return "warc_non_html_record"
    url = record.rec_headers.get_header("WARC-Target-URI")
    published = _parse_date(record.rec_headers.get_header("WARC-Date"))
    stream = record.content_stream()
    payload, complete = _read_capped(stream, config.max_record_bytes)
    if not complete:
        head, total, sha = _drain_rest(payload, stream, config)
        return _reject_doc(
            path, head, sha, mtime, "too_large",
            f"payload of {total}+ bytes > max_record_bytes {config.max_record_bytes}", config, url=url,
        )
    declared = None
    match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]{1,40})", content_type, re.I)
    if match:
        declared = _codec_name(match.group(1))
    return _document(path, payload, mtime, True, config, declared=declared, url=url, published=published)


def _read_capped(stream, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` + 1 bytes of ``stream``, and whether that was all of it."""
    out = bytearray()
    while chunk := stream.read(min(_CHUNK, limit + 1 - len(out))):
        out += chunk
        if len(out) > limit:
            return bytes(out), False
    return bytes(out), True


def _drain_rest(head: bytes, stream, config: ReadConfig) -> tuple[bytes, int, str]:
    """First bytes, length and hash of an over-long payload, decompressing at most
    ``max_decompressed_bytes`` of it (a gzip bomb inside a record stops there)."""
    digest, total = hashlib.sha256(head), len(head)
    while total < config.max_decompressed_bytes and (chunk := stream.read(_CHUNK)):
        digest.update(chunk)
        total += len(chunk)
    return head[: config.max_reject_raw_bytes], total, digest.hexdigest()
