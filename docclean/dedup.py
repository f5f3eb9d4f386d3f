"""Deduplication within a run and across runs: exact copies by text hash, near copies by MinHash + LSH,
every candidate verified on the texts before two documents are called one story.

Per document (phase B, any machine): ``fingerprint(text, config)`` gives the hash of the normalized
text and a MinHash signature (rensa's Rust ``RMinHash``: ~20x faster than datasketch's for the same
estimation error, see ``benchmarks/dedup.py``). The signature is two signatures end to end: the whole
text's, then the opening ``head_words`` words' (a paywall cut keeps the opening, so short cut copies
whose whole-text overlap is low still collide there).

Once per run: ``plan(candidates, state_dir, config, fetch_texts)``

1. exact groups by ``text_hash``, against this run and the archive;
2. LSH candidates: each signature is cut into bands of ``lsh_rows`` rows and every band is hashed to
   one uint64 *band key*; documents sharing a band key are candidates. New documents are grouped by
   pyarrow's ``group_by``; the archive's band keys (Parquet under ``state_dir/dedup``) are scanned in
   record batches filtered to this run's keys, so memory follows this run's size, not the archive's;
3. verification on the cleaned texts (``fetch_texts``), in chunks through a bounded cache: word
   3-shingles of the lines of 6+ words (menus, headings and leftover chrome are short lines), Jaccard
   >= 0.4, or containment >= 0.5 of the shorter text for a paywall cut or a copy with other chrome;
   either way the shared text must start in the opening of the longer text (a story that is the second
   half of a digest is not its copy);
4. union-find clusters; the kept copy is the most complete (not truncated, longest, earliest, smallest
   doc_id) and every other member must also verify against it directly (with the weaker ``member_*``
   thresholds: two copies edited apart from one original are further from each other than from it), so
   a chain of partial overlaps never merges two different stories;
5. an archived kept document whose cluster gains a better new copy is *demoted* (it becomes a
   duplicate of the new one; nothing is lost).

``DedupPlan.save_state(state_dir)`` appends this run's kept documents to the index (atomic writes, then
an atomic manifest); the pipeline calls it only when the run commits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from rensa import RMinHash

from .config import DedupConfig
from .document import Document

_WORD = re.compile(r"\w+")
_MASK64 = (1 << 64) - 1
STATE_FOLDER = "dedup"
MANIFEST = "manifest.json"
INDEX_VERSION = 1

DUPLICATES_SCHEMA = pa.schema(
    [("doc_id", pa.string()), ("duplicate_of", pa.string()), ("similarity", pa.float64()), ("method", pa.string())]
)
DEMOTIONS_SCHEMA = pa.schema(
    [("old_doc_id", pa.string()), ("new_doc_id", pa.string()), ("similarity", pa.float64()), ("method", pa.string())]
)
_DOCS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("text_hash", pa.uint64()),
        ("truncated", pa.bool_()),
        ("length", pa.int64()),
        ("published", pa.timestamp("us", tz="UTC")),
    ]
)
_BANDS_SCHEMA = pa.schema([("band_key", pa.uint64()), ("doc_id", pa.string())])
_REMOVED_SCHEMA = pa.schema([("doc_id", pa.string())])


# ---------------------------------------------------------------------------------------------- per document


@dataclass(frozen=True, slots=True)
class Fingerprint:
    text_hash: int  # uint64 of the normalized text
    minhash: np.ndarray  # uint32: whole-text signature (num_perm) then opening signature (head_num_perm)
    length: int = 0  # words in the normalized text


def words(text: str) -> list[str]:
    """The normalized word sequence every comparison works on: NFKC, case-folded, ``\\w+`` tokens (so
    punctuation, quotes, whitespace and line breaks never make two copies differ)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def hash64(data: str | bytes) -> int:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def shingles(tokens: list[str], n: int) -> list[str]:
    if len(tokens) <= n:
        return [" ".join(tokens)] if tokens else []
    # the n-word windows as zipped shifted lists: no slice per shingle
    return list(map(" ".join, zip(*(tokens[k:] for k in range(n)))))


def _minhash(items: list[str], num_perm: int, seed: int) -> np.ndarray:
    m = RMinHash(num_perm=num_perm, seed=seed)
    if items:
        m.update(items)
    return np.asarray(m.digest(), dtype=np.uint32)


def _line_words(text: str, min_line_words: int) -> tuple[list[str], list[str]]:
    """(all words, the words near-duplicate comparison looks at): those of lines with at least
    ``min_line_words`` words. Menus, headings, bylines, share buttons and other chrome the chrome step
    could not learn are short lines; paragraphs are not. A text with too little left this way is
    compared whole."""
    normalized = unicodedata.normalize("NFKC", text).casefold()
    if min_line_words <= 1:
        tokens = _WORD.findall(normalized)
        return tokens, tokens
    all_words: list[str] = []
    kept: list[str] = []
    for line in normalized.split("\n"):
        line_words = _WORD.findall(line)
        all_words.extend(line_words)
        if len(line_words) >= min_line_words:
            kept.extend(line_words)
    return all_words, kept if len(kept) >= max(50, len(all_words) // 3) else all_words


def body_words(text: str, min_line_words: int) -> list[str]:
    return _line_words(text, min_line_words)[1]


# The fingerprint's fast tokenizer works on UTF-8 bytes and gives exactly ``_line_words``' words (as
# bytes: rensa and blake2b hash a str as its UTF-8 bytes, so every value is the same). NFKC and casefold
# cost ~15 ns a character and \w+ matching more; but a character that neither combines with its
# neighbours nor changes under NFKC + casefold needs neither, and scraped text is almost all such
# characters (ASCII, curly quotes, dashes, accented letters). NFKC is local between such characters, so
# each distinct other character is replaced by its own normalized form; a text holding one that may
# combine with a neighbour (a combining mark, a Hangul jamo) takes the reference path.
_ASCII_BYTES = bytes(range(128))
# ASCII non-word bytes become spaces, line breaks stay; bytes of multi-byte characters are kept.
_WORD_BYTES = bytes(
    b if b >= 128 or b == 10 or chr(b).isalnum() or b == 95 else 32 for b in range(256)
)
_char_images: dict[str, str | None] = {}
_composition_seconds: frozenset[str] | None = None


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"  # exactly re's \w for str patterns (checked over all code points)


def _second_characters() -> frozenset[str]:
    """Characters that compose with a preceding one under NFC (the second of a canonical pair)."""
    global _composition_seconds
    if _composition_seconds is None:
        seconds = {chr(c) for c in range(0x1161, 0x1176)} | {chr(c) for c in range(0x11A8, 0x11C3)}  # Hangul V, T
        for c in range(0x80, 0x30000):
            d = unicodedata.decomposition(chr(c))
            if d and not d.startswith("<"):
                parts = d.split()
                if len(parts) == 2:
                    seconds.add(chr(int(parts[1], 16)))
        _composition_seconds = frozenset(seconds)
    return _composition_seconds


def _char_image(c: str) -> str | None:
    """What ``c`` stands for in the normalized text, non-word characters as spaces; None when ``c`` may
    combine with a neighbour under NFKC (the whole text must then be normalized)."""
    if c in _char_images:
        return _char_images[c]
    image: str | None = None
    seconds = _second_characters()
    decomposed = unicodedata.normalize("NFKD", c)
    if not (unicodedata.combining(c) or c in seconds or unicodedata.combining(decomposed[0]) or decomposed[0] in seconds):
        folded = unicodedata.normalize("NFKC", c).casefold()
        if "\n" not in folded:
            mapped = "".join(ch if _is_word_char(ch) else " " for ch in folded)
            # a word character of the image must be final: no later replacement may touch it
            if all(ch == c or ch.isascii() or _char_image(ch) == ch for ch in mapped):
                image = mapped
    _char_images[c] = image
    return image


def _normalized_word_bytes(text: str) -> bytes | None:
    """``text`` NFKC-normalized and case-folded as UTF-8, every non-word character but line breaks a
    space; None when only the reference path can say (a combining character, a lone surrogate)."""
    if text.isascii():
        return text.encode("ascii").lower().translate(_WORD_BYTES)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    replaced = text
    for c in set(data.translate(None, _ASCII_BYTES).decode("utf-8")):
        image = _char_image(c)
        if image is None:
            return None
        if image != c:  # str.replace: ~10x faster than bytes.replace of a multi-byte sequence
            replaced = replaced.replace(c, image)
    if replaced is not text:
        data = replaced.encode("utf-8")
    # lower(): ASCII letters only, multi-byte sequences hold no byte below 0x80
    return data.lower().translate(_WORD_BYTES)


def _line_word_bytes(text: str, min_line_words: int) -> tuple[list, list]:
    """``_line_words`` as UTF-8 bytes tokens (str tokens from the reference path when it must run)."""
    data = _normalized_word_bytes(text)
    if data is None:
        return _line_words(text, min_line_words)
    if min_line_words <= 1:
        tokens = data.split()
        return tokens, tokens
    all_words: list[bytes] = []
    kept: list[bytes] = []
    for line in data.split(b"\n"):
        line_words = line.split()
        all_words += line_words
        if len(line_words) >= min_line_words:
            kept += line_words
    return all_words, kept if len(kept) >= max(50, len(all_words) // 3) else all_words


def _join(tokens: list) -> bytes:
    return b" ".join(tokens) if tokens and isinstance(tokens[0], bytes) else " ".join(tokens).encode("utf-8", "surrogatepass")


def _shingle_items(tokens: list, n: int) -> list:
    """``shingles`` of bytes tokens as bytes (str tokens from the reference path: ``shingles``)."""
    if not tokens or not isinstance(tokens[0], bytes):
        return shingles(tokens, n)
    if len(tokens) <= n:
        return [b" ".join(tokens)]
    return list(map(b" ".join, zip(*(tokens[k:] for k in range(n)))))


def fingerprint(text: str, config: DedupConfig) -> Fingerprint:
    all_tokens, tokens = _line_word_bytes(text, config.min_line_words)
    n = config.shingle_words
    whole = _minhash(_shingle_items(tokens, n), config.num_perm, config.seed)
    parts = [whole]
    if config.head_words:
        parts.append(_minhash(_shingle_items(tokens[: config.head_words], n), config.head_num_perm, config.seed + 1))
    return Fingerprint(text_hash=hash64(_join(all_tokens)), minhash=np.concatenate(parts), length=len(all_tokens))


# ---------------------------------------------------------------------------------------------- band keys


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, vectorized (uint64 arithmetic wraps)."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def band_keys(signatures: np.ndarray, config: DedupConfig) -> np.ndarray:
    """(n, bands) uint64: one key per LSH band, salted by the band's position so that equal values in
    different bands never collide. Bands of the opening signature follow those of the whole text."""
    signatures = np.asarray(signatures)
    if signatures.ndim == 1:
        signatures = signatures[None, :]
    r = config.lsh_rows
    blocks = [(0, config.num_perm)]
    if config.head_words:
        blocks.append((config.num_perm, config.num_perm + config.head_num_perm))
    keys = []
    band_no = 0
    for start, stop in blocks:
        bands = (stop - start) // r
        sig = signatures[:, start : start + bands * r].reshape(len(signatures), bands, r)
        h = np.broadcast_to(
            _mix64(np.arange(band_no, band_no + bands, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)),
            (len(signatures), bands),
        ).copy()
        for j in range(r):  # one row of the band at a time, widened to 64 bits only here
            h = _mix64(h ^ sig[:, :, j].astype(np.uint64))
        keys.append(h)
        band_no += bands
    return np.concatenate(keys, axis=1) if keys else np.zeros((len(signatures), 0), np.uint64)


# ---------------------------------------------------------------------------------------------- verification


@dataclass(slots=True)
class _Shingled:
    hashes: np.ndarray  # sorted distinct shingle hashes (int64)
    first: np.ndarray  # the first position of each, aligned with ``hashes``
    count: int  # number of shingles
    words: int


def _shingled(text: str, n: int, min_line_words: int = 1) -> _Shingled:
    tokens = body_words(text, min_line_words)
    hashes, first = np.unique(shingle_hashes(tokens, n).view(np.int64), return_index=True)
    return _Shingled(hashes, first, max(len(tokens) - n + 1, 1), len(tokens))


_BYTE_BASE = np.uint64(0x100000001B3)  # FNV's prime: the base of the per-word polynomial hash
_WORD_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd: the base that chains a shingle's word hashes
_powers = np.ones(1, dtype=np.uint64)


def _byte_powers(n: int) -> np.ndarray:
    """_BYTE_BASE ** 0 .. n-1 (mod 2**64), grown on demand and kept."""
    global _powers
    if len(_powers) < n:
        _powers = np.concatenate(([np.uint64(1)], np.cumprod(np.full(n - 1, _BYTE_BASE, dtype=np.uint64))))
    return _powers


def word_hashes(tokens: list[str]) -> np.ndarray:
    """A 64-bit hash of each word, the same in every process (Python's ``hash`` of a str is salted per
    process, and shingles are hashed in the batch workers too). Vectorized: one encode for all the words,
    then a polynomial over each word's bytes, then splitmix64's finalizer with the word's length."""
    if not tokens:
        return np.zeros(0, dtype=np.uint64)
    data = np.frombuffer("\x00".join(tokens).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    if not data.size or len(data) != int(lengths.sum()) + len(tokens) - 1:  # non-ASCII: count bytes instead
        ends = np.flatnonzero(np.append(data, 0) == 0)
        lengths = np.diff(np.concatenate(([-1], ends))) - 1
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    spans = lengths + 1  # each word's bytes and the separator after it (a zero byte adds nothing)
    position = np.arange(int(spans.sum()), dtype=np.int64) - np.repeat(starts, spans)
    padded = np.append(data, np.uint8(0)).astype(np.uint64)
    sums = np.add.reduceat(padded * _byte_powers(int(position.max()) + 1)[position], starts)
    return _mix64(sums ^ lengths.astype(np.uint64))


def shingle_hashes(tokens: list[str], n: int) -> np.ndarray:
    """A 64-bit hash of each ``n``-word shingle (one for a text of ``n`` words or fewer; none for none)."""
    words = word_hashes(tokens)
    if len(words) <= n:
        if not len(words):
            return words
        h = np.zeros(1, dtype=np.uint64)  # an array: its arithmetic wraps silently, a scalar's warns
        for w in words:
            h = h * _WORD_BASE + w
        return _mix64(h)
    count = len(words) - n + 1
    h = words[:count].copy()
    for k in range(1, n):
        h = h * _WORD_BASE + words[k : k + count]
    return _mix64(h)


def verify(a: _Shingled, b: _Shingled, config: DedupConfig, member: bool = False) -> tuple[float, str] | None:
    """(similarity, method) when the two texts are one story, else None. ``member``: the weaker test a
    document already linked to a cluster by verified pairs must pass against the cluster's kept copy
    (two copies edited apart from one original are further from each other than from it)."""
    jaccard_threshold = config.member_jaccard_threshold if member else config.jaccard_threshold
    containment_threshold = config.member_containment_threshold if member else config.containment_threshold
    if not len(a.hashes) or not len(b.hashes):
        return None
    small, large = (a, b) if len(a.hashes) <= len(b.hashes) else (b, a)
    _, _, in_large = np.intersect1d(small.hashes, large.hashes, assume_unique=True, return_indices=True)
    inter = len(in_large)
    if not inter:
        return None
    # Where the shared text starts in the longer text: copies (cut, edited, with other chrome) match
    # from its opening; a story that is the second half of a digest matches from its middle.
    if np.quantile(large.first[in_large], 0.1, method="lower") > config.max_containment_offset * large.count:
        return None
    jaccard = inter / (len(small.hashes) + len(large.hashes) - inter)
    containment = inter / len(small.hashes)
    similar = jaccard >= jaccard_threshold
    contained = containment >= containment_threshold and small.words >= config.min_containment_words
    # a much shorter copy (a paywall cut) is reported as contained even when it is also similar
    if contained and (not similar or len(small.hashes) < 0.8 * len(large.hashes)):
        return containment, "containment"
    return (jaccard, "minhash_jaccard") if similar else None


# ---------------------------------------------------------------------------------------------- the index


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=262_144)  # scans decode one group at a time
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_write_batches(tables, schema: pa.Schema, path: Path) -> None:
    """Like ``_atomic_write_table`` for a table that arrives in pieces (one row group each)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for table in tables:
            writer.write_table(table, row_group_size=262_144)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_write_json(data: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def scan(files: list[str], schema: pa.Schema, predicate) -> pa.Table:
    """The rows of Parquet ``files`` matching ``predicate``, read batch by batch with little readahead:
    only matching rows accumulate, so memory follows the answer, not the files."""
    scanner = ds.dataset(files, format="parquet", schema=schema).scanner(
        filter=predicate, batch_size=65_536, batch_readahead=1, fragment_readahead=1, use_threads=False
    )
    return scanner.to_table()


class SignatureIndex:
    """The persisted index of every archived kept document: ``docs-*.parquet`` (doc_id, text_hash,
    truncated, length, published), ``bands-*.parquet`` (band_key, doc_id) and ``removed-*.parquet``
    (kept documents later demoted). Only the parts listed in ``manifest.json`` count, so a crash
    between two writes leaves the index as it was."""

    def __init__(self, state_dir: Path | None):
        self.root = Path(state_dir) / STATE_FOLDER if state_dir is not None else None
        self.manifest = {"version": INDEX_VERSION, "parts": [], "config": None}
        if self.root is not None and (self.root / MANIFEST).exists():
            self.manifest = json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))

    def _files(self, kind: str) -> list[str]:
        return [str(self.root / p[kind]) for p in self.manifest["parts"] if p.get(kind)]

    def _scan(self, kind: str, schema: pa.Schema, column: str, values: pa.Array) -> pa.Table:
        files = self._files(kind)
        if not files or len(values) == 0:
            return schema.empty_table()
        return scan(files, schema, pc.field(column).isin(values))

    def removed(self) -> set[str]:
        files = self._files("removed")
        if not files:
            return set()
        return set(ds.dataset(files, format="parquet", schema=_REMOVED_SCHEMA).to_table()["doc_id"].to_pylist())

    def docs_by_hash(self, hashes: pa.Array) -> pa.Table:
        return self._scan("docs", _DOCS_SCHEMA, "text_hash", hashes)

    def docs_by_id(self, doc_ids: pa.Array) -> pa.Table:
        return self._scan("docs", _DOCS_SCHEMA, "doc_id", doc_ids)

    def bands_matching(self, keys: pa.Array) -> pa.Table:
        return self._scan("bands", _BANDS_SCHEMA, "band_key", keys)

    def check_config(self, config: DedupConfig) -> None:
        signature_settings = _signature_settings(config)
        stored = self.manifest.get("config")
        if stored and stored != signature_settings:
            raise ValueError(
                f"the signature index in {self.root} was built with {stored}, not {signature_settings}: "
                "band keys would never match; rebuild the index or keep the settings"
            )


def _signature_settings(config: DedupConfig) -> dict:
    keys = ("num_perm", "lsh_rows", "head_words", "head_num_perm", "shingle_words", "min_line_words", "seed")
    # rensa versions its hashing: a new algorithm would make every stored band key unmatchable
    return {**{k: getattr(config, k) for k in keys}, "minhash": f"rensa.RMinHash/{RMinHash.ALGORITHM_VERSION}"}


# ---------------------------------------------------------------------------------------------- the plan


@dataclass
class DedupPlan:
    duplicates: pa.Table  # doc_id, duplicate_of, similarity, method
    demotions: pa.Table  # old_doc_id, new_doc_id, similarity, method
    new_kept: pa.Table = field(repr=False, default_factory=_DOCS_SCHEMA.empty_table)
    # the kept documents' band keys, (n_kept, bands), row i belonging to new_kept's doc i: held as one
    # matrix, not as a (band_key, doc_id) table, which at 100k documents was 5.3M strings (~230 MB)
    new_band_keys: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0), np.uint64))
    config: DedupConfig | None = field(repr=False, default=None)
    stats: dict = field(default_factory=dict)

    def _sorted_bands(self, rows_per_chunk: int = 262_144):
        """(band_key, doc_id) tables sorted by band key (ties in row order), chunk by chunk."""
        n, bands = self.new_band_keys.shape
        flat = self.new_band_keys.reshape(-1)
        order = np.argsort(flat, kind="stable")
        ids = self.new_kept.column("doc_id").combine_chunks() if n else pa.array([], pa.string())
        for start in range(0, len(order), rows_per_chunk):
            chunk = order[start : start + rows_per_chunk]
            yield pa.table({"band_key": pa.array(flat[chunk], pa.uint64()), "doc_id": ids.take(pa.array(chunk // bands))},
                           schema=_BANDS_SCHEMA)

    @property
    def new_bands(self) -> pa.Table:
        """This run's band index rows as one table (for inspection; save_state streams them)."""
        parts = list(self._sorted_bands())
        return pa.concat_tables(parts) if parts else _BANDS_SCHEMA.empty_table()

    def save_state(self, state_dir: Path) -> None:
        """Append this run's kept documents (and demotions) to the persisted index, atomically."""
        index = SignatureIndex(state_dir)
        index.root.mkdir(parents=True, exist_ok=True)
        if self.config is not None:
            index.check_config(self.config)
        part_id = f"{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        part: dict = {"id": part_id}
        if self.new_kept.num_rows:
            _atomic_write_table(self.new_kept, index.root / f"docs-{part_id}.parquet")
            _atomic_write_batches(self._sorted_bands(), _BANDS_SCHEMA, index.root / f"bands-{part_id}.parquet")
            part["docs"], part["bands"] = f"docs-{part_id}.parquet", f"bands-{part_id}.parquet"
        if self.demotions.num_rows:
            removed = pa.table({"doc_id": self.demotions["old_doc_id"]}, schema=_REMOVED_SCHEMA)
            _atomic_write_table(removed, index.root / f"removed-{part_id}.parquet")
            part["removed"] = f"removed-{part_id}.parquet"
        manifest = dict(index.manifest)
        manifest["parts"] = list(manifest["parts"]) + [part]
        if self.config is not None:
            manifest["config"] = _signature_settings(self.config)
        _atomic_write_json(manifest, index.root / MANIFEST)


def compact(state_dir: Path) -> None:
    """Merge the index's parts into one docs and one bands file, dropping demoted documents; streams
    record batches, so it runs in bounded memory. Run it between runs (under the run lock): parts add
    up, one per committed run, and every scan opens them all."""
    index = SignatureIndex(state_dir)
    if index.root is None or len(index.manifest["parts"]) <= 1:
        return
    removed = pa.array(sorted(index.removed()), pa.string())
    part_id = f"{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}-compact"
    part: dict = {"id": part_id}
    for kind, schema in (("docs", _DOCS_SCHEMA), ("bands", _BANDS_SCHEMA)):
        files = index._files(kind)
        if not files:
            continue
        name = f"{kind}-{part_id}.parquet"
        tmp = index.root / f".{name}.{uuid.uuid4().hex}.tmp"
        keep = pc.invert(pc.field("doc_id").isin(removed))
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in ds.dataset(files, format="parquet", schema=schema).to_batches(filter=keep, batch_size=262_144):
                writer.write_batch(batch)
        os.replace(tmp, index.root / name)
        part[kind] = name
    old = [index.root / p[k] for p in index.manifest["parts"] for k in ("docs", "bands", "removed") if p.get(k)]
    manifest = dict(index.manifest, parts=[part])
    _atomic_write_json(manifest, index.root / MANIFEST)
    for path in old:  # only once the new manifest no longer lists them
        path.unlink(missing_ok=True)


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


_FAR_FUTURE = np.iinfo(np.int64).max


def _signature_matrix(column: pa.ChunkedArray | pa.Array, width: int) -> np.ndarray:
    """(n, width) uint32: at 100k documents a uint64 copy alone was 150 MB."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    matrix = np.empty(len(column) * width, dtype=np.uint32)
    at = 0
    for chunk in chunks:  # chunk by chunk into one array: no combined copy of the whole column
        values = np.asarray(pc.list_flatten(chunk).to_numpy(zero_copy_only=False))
        if at + len(values) > len(matrix):
            at += len(values)
            break
        matrix[at : at + len(values)] = values
        at += len(values)
    if at != len(matrix):
        raise ValueError(f"minhash signatures must have {width} values each (num_perm + head_num_perm of this config)")
    return matrix.reshape(-1, width)


def _pairs_within_buckets(keys: np.ndarray, max_bucket: int) -> set[tuple[int, int]]:
    """Candidate pairs among this run's documents: rows sharing a band key.

    Keys are sorted, not hashed into groups: at 100k documents x 63 bands a hash aggregation with row
    lists peaked at ~800 MB; a sort of the flat keys needs the keys and one index array."""
    n, bands = keys.shape
    if not n or not bands:
        return set()
    flat = keys.reshape(-1)
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    # positions equal to the next one: few (shared keys), unlike the millions of distinct keys
    same_as_next = np.flatnonzero(ordered[1:] == ordered[:-1])
    del ordered
    # consecutive positions form one run of a key: run [s, e] of ``same_as_next`` covers order[s : e + 2]
    breaks = np.flatnonzero(np.diff(same_as_next) != 1) + 1
    run_starts = same_as_next[np.r_[0, breaks]] if len(same_as_next) else same_as_next
    run_ends = same_as_next[np.r_[breaks - 1, len(same_as_next) - 1]] + 2 if len(same_as_next) else same_as_next
    pairs: set[tuple[int, int]] = set()
    for start, end in zip(run_starts.tolist(), run_ends.tolist()):
        rows = sorted(set((order[start:end] // bands).tolist()))
        if len(rows) < 2:
            continue
        if len(rows) <= max_bucket:
            pairs.update((rows[i], rows[j]) for i in range(len(rows)) for j in range(i + 1, len(rows)))
        else:  # a huge bucket (templated texts): a star and a chain, verified, instead of k^2 pairs
            pairs.update((rows[0], r) for r in rows[1:])
            pairs.update((rows[i], rows[i + 1]) for i in range(len(rows) - 1))
    return pairs


def shingled_texts(texts: list[str | None], n: int, min_line_words: int) -> list[_Shingled | None]:
    """What verification compares, for a list of texts (None for a missing one): a batch worker's share
    of the dedup plan (the hashes are the same in every process)."""
    return [None if t is None else _shingled(t, n, min_line_words) for t in texts]


ShingleSource = Callable[[list[int]], Iterable[tuple[int, "_Shingled | None"]]]


def plan(
    candidates: pa.Table,
    state_dir: Path | None,
    config: DedupConfig,
    fetch_texts: Callable[[list[str]], dict[str, str]],
    shingle_new: ShingleSource | None = None,
) -> DedupPlan:
    """Decide which of this run's documents are copies, of each other or of archived ones.

    ``candidates``: doc_id, text_hash (uint64), minhash (list of uint), truncated, length (the body's
    size, in words or characters but always the same unit: the longest copy is kept), published.
    ``fetch_texts(doc_ids)`` returns cleaned texts (new and archived) for verification; a document
    whose text it doesn't return is never merged by near-duplicate verification (exact still works).
    ``shingle_new(rows)``, if given, yields (row, shingled) for rows of ``candidates`` (sorted), computed
    where it likes (in the batch workers): most of the plan's work, otherwise done here."""
    index = SignatureIndex(state_dir)
    index.check_config(config)
    n_new = candidates.num_rows
    width = config.num_perm + (config.head_num_perm if config.head_words else 0)
    new_ids: list[str] = candidates["doc_id"].to_pylist()
    new_row = {d: i for i, d in enumerate(new_ids)}

    # Nodes: this run's documents first (0..n_new-1), then archived kept documents met on the way.
    node_ids: list[str] = list(new_ids)
    truncated = [bool(x) for x in candidates["truncated"].fill_null(False).to_pylist()]
    length = [int(x or 0) for x in candidates["length"].to_pylist()]
    published = _timestamps(candidates["published"])
    text_hashes: list[int] = candidates["text_hash"].cast(pa.uint64()).to_pylist()
    node_of: dict[str, int] = dict(new_row)

    removed = index.removed()

    def archived_node(row: dict) -> int | None:
        doc_id = row["doc_id"]
        if doc_id in removed:
            return None
        if doc_id in node_of:
            return node_of[doc_id]
        node_of[doc_id] = len(node_ids)
        node_ids.append(doc_id)
        truncated.append(bool(row["truncated"]))
        length.append(int(row["length"] or 0))
        published.append(_ts_int(row["published"]))
        text_hashes.append(row["text_hash"])
        return node_of[doc_id]

    edges: dict[tuple[int, int], tuple[float, str]] = {}

    def add_edge(a: int, b: int, sim: float, method: str) -> None:
        if text_hashes[a] == text_hashes[b]:
            sim, method = 1.0, "exact"
        if a != b:
            edges[(min(a, b), max(a, b))] = (sim, method)

    # 1. exact copies: same normalized text
    hashes = candidates["text_hash"].cast(pa.uint64())
    first_with_hash: dict[int, int] = {}
    for i, h in enumerate(hashes.to_pylist()):
        if h in first_with_hash:
            add_edge(first_with_hash[h], i, 1.0, "exact")
        else:
            first_with_hash[h] = i
    for row in index.docs_by_hash(pc.unique(hashes)).to_pylist():
        node = archived_node(row)
        if node is not None and node >= n_new:
            add_edge(first_with_hash[row["text_hash"]], node, 1.0, "exact")

    # 2. LSH candidates
    signatures = _signature_matrix(candidates["minhash"], width)
    keys = band_keys(signatures, config) if n_new else np.zeros((0, 0), np.uint64)
    pairs = _pairs_within_buckets(keys, config.max_bucket) if n_new else set()
    archived_pairs: set[tuple[int, str]] = set()
    if n_new and len(index.manifest["parts"]):
        key_rows = pa.table({"band_key": keys.reshape(-1), "row": np.repeat(np.arange(n_new), keys.shape[1])})
        matches = index.bands_matching(pc.unique(key_rows["band_key"]))
        if matches.num_rows:
            joined = matches.join(key_rows, "band_key", join_type="inner")
            archived_pairs = set(zip(joined["row"].to_pylist(), joined["doc_id"].to_pylist()))
    archived_ids = sorted({d for _, d in archived_pairs if d not in node_of and d not in removed})
    if archived_ids:
        for row in index.docs_by_id(pa.array(archived_ids, pa.string())).to_pylist():
            archived_node(row)
    for row, doc_id in archived_pairs:
        if doc_id in node_of and node_of[doc_id] != row:
            a, b = row, node_of[doc_id]
            pairs.add((min(a, b), max(a, b)))

    # 3. verification on the texts
    to_verify = sorted(p for p in pairs if p not in edges)
    texts = _ShingleStore(fetch_texts, node_ids, (config.shingle_words, config.min_line_words),
                          shingle_new=shingle_new, n_new=n_new)
    texts.build(sorted({node for pair in to_verify for node in pair}))

    verified = 0
    for a, b in to_verify:
        sa, sb = texts.shingled(a), texts.shingled(b)
        if sa is None or sb is None:
            continue
        result = verify(sa, sb, config)
        if result is not None:
            add_edge(a, b, *result)
            verified += 1

    # 4. clusters, kept copy, direct verification against it
    duplicates: list[tuple[str, str, float, str]] = []
    demotions: list[tuple[str, str, float, str]] = []
    uf = _UnionFind(len(node_ids))
    for a, b in edges:
        uf.union(a, b)
    clusters: dict[int, list[int]] = {}
    for node in range(len(node_ids)):
        clusters.setdefault(uf.find(node), []).append(node)

    def rank(node: int):
        return (truncated[node], -length[node], published[node], node_ids[node])

    pending = [members for members in clusters.values() if len(members) > 1]
    while pending:
        members = sorted(pending.pop(), key=rank)
        kept = members[0]
        leftovers = []
        for m in members[1:]:
            edge = edges.get((min(m, kept), max(m, kept)))
            if edge is None and text_hashes[m] == text_hashes[kept]:
                edge = (1.0, "exact")
            if edge is None:
                sk, sm = texts.shingled(kept), texts.shingled(m)
                result = verify(sk, sm, config, member=True) if sk is not None and sm is not None else None
                if result is not None:
                    edge = result
            if edge is None:
                leftovers.append(m)
            elif m < n_new:
                duplicates.append((node_ids[m], node_ids[kept], float(edge[0]), edge[1]))
            elif kept < n_new:
                demotions.append((node_ids[m], node_ids[kept], float(edge[0]), edge[1]))
            # else: two archived kept documents stay as they were (the archive already judged them)
        if len(leftovers) > 1:
            sub = _UnionFind(len(node_ids))
            left = set(leftovers)
            for a, b in edges:
                if a in left and b in left:
                    sub.union(a, b)
            groups: dict[int, list[int]] = {}
            for m in leftovers:
                groups.setdefault(sub.find(m), []).append(m)
            pending.extend(g for g in groups.values() if len(g) > 1)

    texts.close()
    duplicate_ids = {d[0] for d in duplicates}
    kept_rows = [i for i in range(n_new) if new_ids[i] not in duplicate_ids]
    kept_table = candidates.select(["doc_id", "text_hash", "truncated", "length", "published"]).take(pa.array(kept_rows, pa.int64()))
    kept_table = kept_table.cast(_DOCS_SCHEMA)
    kept_keys = keys[kept_rows] if n_new else np.zeros((0, 0), np.uint64)
    stats = {
        "documents": n_new,
        "candidate_pairs": len(pairs),
        "verified_pairs": verified,
        "exact_pairs": sum(1 for e in edges.values() if e[1] == "exact"),
        "duplicates": len(duplicates),
        "demotions": len(demotions),
        "archived_matched": len(node_ids) - n_new,
    }
    return DedupPlan(
        duplicates=pa.Table.from_pylist(
            [dict(zip(DUPLICATES_SCHEMA.names, d)) for d in duplicates], schema=DUPLICATES_SCHEMA
        ),
        demotions=pa.Table.from_pylist([dict(zip(DEMOTIONS_SCHEMA.names, d)) for d in demotions], schema=DEMOTIONS_SCHEMA),
        new_kept=kept_table,
        new_band_keys=kept_keys,
        config=config,
        stats=stats,
    )


class _ShingleStore:
    """Shingled texts of the documents to verify, each computed once and spilled to a temporary file:
    verification reads two small arrays per pair and memory stays flat. (An LRU of texts re-fetched and
    re-shingled the texts of random pairs over and over: 280 CPU-s for the 170k candidate pairs of
    100k news documents.) Disk: 12 bytes per distinct shingle, freed when the plan is done."""

    _NOT_STORED, _NO_TEXT = -2, -1

    def __init__(self, fetch_texts, node_ids: list[str], n: tuple[int, int], batch: int = 2048,
                 shingle_new: ShingleSource | None = None, n_new: int = 0):
        self.fetch_texts, self.node_ids, self.n, self.batch = fetch_texts, node_ids, n, batch
        self.shingle_new, self.n_new = shingle_new, n_new
        self.offset = np.full(len(node_ids), self._NOT_STORED, dtype=np.int64)
        self.distinct = np.zeros(len(node_ids), dtype=np.int64)
        self.count = np.zeros(len(node_ids), dtype=np.int64)
        self.words = np.zeros(len(node_ids), dtype=np.int64)
        self.file = None
        self.fallback = _TextCache(fetch_texts, node_ids, n, capacity=256)  # nodes met only after build

    def build(self, nodes: list[int]) -> None:
        """Fetch and shingle ``nodes`` in order (this run's documents are numbered in file order, so a
        batch of them reads a few files), batch by batch."""
        if not nodes:
            return
        self.file = tempfile.TemporaryFile(prefix="docclean-shingles-")
        self._size = 0
        if self.shingle_new is not None:
            for x, s in self.shingle_new([x for x in nodes if x < self.n_new]):
                self._store(x, s)
            nodes = [x for x in nodes if x >= self.n_new]
        for i in range(0, len(nodes), self.batch):
            part = nodes[i : i + self.batch]
            texts = _fetch(self.fetch_texts, {self.node_ids[x] for x in part})
            for x in part:
                text = texts.get(self.node_ids[x])
                self._store(x, None if text is None else _shingled(text, *self.n))
        self.file.flush()

    def _store(self, x: int, s: _Shingled | None) -> None:
        if s is None:
            self.offset[x] = self._NO_TEXT
            return
        data = s.hashes.astype(np.int64).tobytes() + s.first.astype(np.int32).tobytes()
        self.file.write(data)
        self.offset[x], self.distinct[x], self.count[x], self.words[x] = self._size, len(s.hashes), s.count, s.words
        self._size += len(data)

    def shingled(self, node: int) -> _Shingled | None:
        offset = int(self.offset[node])
        if offset == self._NOT_STORED:
            return self.fallback.shingled(node)
        if offset == self._NO_TEXT:
            return None
        k = int(self.distinct[node])
        raw = os.pread(self.file.fileno(), 12 * k, offset)
        hashes = np.frombuffer(raw, dtype=np.int64, count=k)
        first = np.frombuffer(raw, dtype=np.int32, count=k, offset=8 * k).astype(np.int64)
        return _Shingled(hashes, first, int(self.count[node]), int(self.words[node]))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class _TextCache:
    """Shingled texts of the nodes, fetched in bulk and kept in a bounded LRU: verification memory
    follows ``capacity``, not the number of candidate pairs."""

    def __init__(self, fetch_texts, node_ids: list[str], n: tuple[int, int], capacity: int = 4096):
        self.fetch_texts, self.node_ids, self.n, self.capacity = fetch_texts, node_ids, n, capacity
        self.cache: OrderedDict[int, _Shingled | None] = OrderedDict()

    def prefetch(self, nodes: set[int]) -> None:
        nodes = {x for x in nodes if x not in self.cache}
        texts = _fetch(self.fetch_texts, {self.node_ids[x] for x in nodes})
        for x in nodes:
            text = texts.get(self.node_ids[x])
            self.cache[x] = _shingled(text, *self.n) if text is not None else None
        while len(self.cache) > max(self.capacity, len(nodes)):
            self.cache.popitem(last=False)

    def shingled(self, node: int) -> _Shingled | None:
        if node not in self.cache:
            self.prefetch({node})
        self.cache.move_to_end(node)
        return self.cache[node]


def _fetch(fetch_texts: Callable[[list[str]], dict[str, str]], doc_ids: set[str]) -> dict[str, str]:
    if not doc_ids:
        return {}
    return dict(fetch_texts(sorted(doc_ids)) or {})


def _ts_int(value) -> int:
    if value is None:
        return _FAR_FUTURE
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000)
    return int(value)


def _timestamps(column) -> list[int]:
    if pa.types.is_timestamp(column.type):
        values = column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64()).to_pylist()
    else:
        values = column.to_pylist()
    return [_FAR_FUTURE if v is None else _ts_int(v) for v in values]


CANDIDATES_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("text_hash", pa.uint64()),
        ("minhash", pa.list_(pa.uint32())),
        ("truncated", pa.bool_()),
        ("length", pa.int64()),
        ("published", pa.timestamp("us", tz="UTC")),
    ]
)


def candidates_table(rows: Iterable[tuple[Document, Fingerprint]]) -> pa.Table:
    """The ``plan`` input for (document, fingerprint) pairs; ``length`` is the cleaned text's words."""
    rows = list(rows)
    if not rows:
        return CANDIDATES_SCHEMA.empty_table()
    signatures = np.stack([fp.minhash for _, fp in rows]).astype(np.uint32)
    width = signatures.shape[1]
    offsets = pa.array(np.arange(0, (len(rows) + 1) * width, width, dtype=np.int32))
    return pa.table(
        {
            "doc_id": pa.array([doc.doc_id for doc, _ in rows], pa.string()),
            "text_hash": pa.array([fp.text_hash for _, fp in rows], pa.uint64()),
            "minhash": pa.ListArray.from_arrays(offsets, pa.array(signatures.reshape(-1), pa.uint32())),
            "truncated": pa.array([doc.truncated for doc, _ in rows], pa.bool_()),
            "length": pa.array([fp.length for _, fp in rows], pa.int64()),
            "published": pa.array([doc.published for doc, _ in rows], pa.timestamp("us", tz="UTC")),
        },
        schema=CANDIDATES_SCHEMA,
    )
