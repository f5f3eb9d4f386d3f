"""Cross-document chrome: lines and short paragraphs that recur across many documents of one site
(slogans, sponsor lines, newsletter prompts, related-link headings) are removed with the rule
``repeated_line``.

Three steps, so the counting can run once over a whole run (and remember earlier runs):

- ``line_keys(doc, config)`` (per document, phase A): one row per distinct line: ``site``, ``line_hash``
  (uint64 of the line, case-folded, digits folded, whitespace collapsed), ``doc_id``, whether the line
  is short enough to be chrome (``countable``) and long enough to identify the story (``long``).
- ``plan(lines, state_dir, config)`` (once per run): documents of a site are first grouped into
  *stories*: two documents whose sets of long lines overlap like copies do (Jaccard >= 0.5, or one
  contained >= 80% in the other and in no other story) are copies of one story; different stories
  that share a template each bring their own body lines and stay apart. A line is chrome when it
  occurs in at least ``min_documents`` different stories of its site, counting this run and the
  persisted rows of earlier runs. So the same story scraped three times, or cut by a paywall, never
  turns its own body into chrome, and a quotation two articles share is one line in two stories.
  Grouping is pyarrow's, partitioned by site hash so memory is bounded by a partition.
- ``ChromeSet.save_state(state_dir)`` (when the run commits) persists, under ``state_dir/chrome``, the
  chrome lines learned (``chrome-*.parquet``: once chrome, always chrome) and the rows of the lines that
  are not chrome yet (``lines-*.parquet``, with each document's story). A later run reads the first
  for its own line hashes, and the second only for its lines not known as chrome: mostly body lines,
  whose only earlier matches are copies, so what is read follows the run's size, not the archive's.
- ``strip_repeated_lines(doc, chrome_set, config)`` (per document, phase B).
"""

from __future__ import annotations

import functools
import json
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .config import ChromeConfig
from .dedup import hash64, scan
from .document import Document, Removal, StageResult

STAGE = "chrome"
RULE = "repeated_line"
STATE_FOLDER = "chrome"
MANIFEST = "manifest.json"
ROWS_PER_PARTITION = 250_000

_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"\d+")
# a quotation: four words or more between quotation marks (see has_quotation)
_QUOTE_OPEN = re.compile(r"[\"“”«»„‘’]")
_QUOTE_CLOSE = re.compile(r"[\"“”«»„]")
_STARTS_WITH_WORD = re.compile(r"\s*\w")


def has_quotation(line: str) -> bool:
    r"""Four words or more between an opening mark and the next closing one, the first word right after
    the opening mark (and spaces). The same lines as the regex
    ``["“”«»„‘’]\s*\w+(?:[^\w"“”«»„]+\w+){3,}[^"“”«»„]*["“”«»„]``, which backtracked for
    milliseconds on a long line with an apostrophe and no closing mark."""
    for opening in _QUOTE_OPEN.finditer(line):
        start = opening.end()
        closing = _QUOTE_CLOSE.search(line, start)
        if closing is None:
            return False  # no closing mark after this one, so none after any later one
        inside = line[start : closing.start()]
        if _STARTS_WITH_WORD.match(inside) and len(_WORD.findall(inside)) >= 4:
            return True
    return False


def site_key(doc: Document) -> str:
    """Publisher, else URL host (without ``www.``), else the top folder of ``source_path``."""
    if doc.publisher and doc.publisher.strip():
        return " ".join(doc.publisher.split()).casefold()
    if doc.url:
        host = (urlsplit(doc.url).hostname or "").casefold()
        if host:
            return host[4:] if host.startswith("www.") else host
    parts = doc.source_path.split("#", 1)[0].replace("\\", "/").strip("/").split("/")
    return parts[0] if len(parts) > 1 else ""


def line_key(line: str) -> str:
    """What makes two lines the same line: case, digits (dates, counters) and spacing don't count."""
    return _DIGITS.sub("0", " ".join(unicodedata.normalize("NFKC", line).casefold().split()))


_ANY_DIGIT = re.compile(r"\d")
_ODD_SPACE = re.compile(r"[^\S ]")  # the whitespace str.split() splits on, but " "
# the ASCII whitespace that str.split() splits on besides " " (and "\n", never inside a line)
_ASCII_ODD_SPACES = b"\t\x0b\x0c\r\x1c\x1d\x1e\x1f"
_ASCII_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")


def _fast_line_key(line: str) -> str:
    """``line_key(line)``, bit for bit, cheaper on the usual line. ASCII (most lines): NFKC leaves it as
    it is and casefold is lower, so it is worked on as bytes: spaces split and joined only when there is
    a run of spaces or an edge space, each run of digits turned to one "0" by ``translate`` and
    ``replace``; a tab or another odd space takes ``line_key``. Other lines: splitting and digit
    replacing only when needed; a printable string holds no space but " " (``str.isprintable`` is
    False for every other ``str.isspace`` character), the search settles the rest."""
    if not line.isascii():
        key = unicodedata.normalize("NFKC", line).casefold()
        if ("  " in key or key.startswith(" ") or key.endswith(" ")
                or (not key.isprintable() and _ODD_SPACE.search(key) is not None)):
            key = " ".join(key.split())
        return _DIGITS.sub("0", key) if _ANY_DIGIT.search(key) is not None else key
    raw = line.encode("ascii")
    if len(raw.translate(None, _ASCII_ODD_SPACES)) != len(raw):
        return line_key(line)  # bytes.split() doesn't split on \x1c-\x1f as str.split() does
    raw = raw.lower()
    if b"  " in raw or raw.startswith(b" ") or raw.endswith(b" "):
        raw = b" ".join(raw.split())
    raw = raw.translate(_ASCII_DIGITS_TO_ZERO)
    while b"00" in raw:  # a run of digits is one "0"
        raw = raw.replace(b"00", b"0")
    return raw.decode("ascii")


@functools.lru_cache(maxsize=16)
def _at_least_words(n: int) -> re.Pattern:
    """Matches (from the start) a line of at least ``n`` words (``\\w+`` runs), in one pass that stops
    at the n-th word: no list of words as ``findall`` builds, no backtracking (possessive)."""
    return re.compile(rf"(?:\W*+\w++){{{n}}}")


def _word_marks_table() -> bytes:
    table = bytearray(b" " * 256)  # ASCII non-word characters and the first byte of a non-ASCII one
    for byte in b"0123456789_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
        table[byte] = ord("w")
    return bytes(table)


# A line's UTF-8 translated to one byte per character (continuation bytes deleted): b"w" for an ASCII
# word character, b" " for anything else. Its runs of b"w" are the ASCII line's words (``\w+`` on
# ASCII is [0-9A-Za-z_]), counted by two C calls instead of a regex building a list of words.
_WORD_MARKS = _word_marks_table()
_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))


_SCHEMA = pa.schema(
    [
        ("site", pa.string()),
        ("site_hash", pa.uint64()),  # partitions the counting: sites never share a line
        ("line_hash", pa.uint64()),
        ("doc_id", pa.string()),
        ("countable", pa.bool_()),  # short enough to be chrome
        ("quoted", pa.bool_()),  # holds a quotation: needs more stories to be chrome
        ("long", pa.bool_()),  # long enough to tell which story the document tells
        ("doc_long_lines", pa.int32()),  # the document's distinct long lines
    ]
)
_STATE_SCHEMA = _SCHEMA.append(pa.field("story", pa.uint64()))
LINES_SCHEMA = _SCHEMA


def line_keys(doc: Document, config: ChromeConfig | None = None) -> pa.Table:
    """The rows this document contributes to the run's line counts (an empty table when it has none):
    one per distinct line that could be chrome or that identifies the story. Schema: ``LINES_SCHEMA``;
    stage the table as it is, ``plan`` needs every column."""
    return line_keys_and_hashes(doc, config)[0]


def line_keys_and_hashes(doc: Document, config: ChromeConfig | None = None) -> tuple[pa.Table, list[int]]:
    """``line_keys``, and the hash of each line of the text (0 for a line that can never be chrome): give
    them back to ``strip_repeated_lines`` so that it doesn't normalize and hash every line a second time."""
    config = config or ChromeConfig()
    if doc.rejected or not doc.text:
        return _SCHEMA.empty_table(), []
    site = site_key(doc)
    rows: dict[int, tuple[bool, bool, bool]] = {}
    per_line: list[int] = []
    max_words, min_story = config.max_line_words, config.story_min_words
    # n words take at least 2n - 1 characters: a line shorter than this can't have too many words
    always_short = 2 * max_words + 1
    is_long = _at_least_words(min_story).match if min_story >= 1 else None
    too_many = _at_least_words(max_words + 1).match
    for line in doc.text.split("\n"):
        if not line and min_story >= 1:  # (with story_min_words 0, even an empty line is "long")
            per_line.append(0)
            continue
        raw = line.encode("utf-8", "surrogatepass")
        marks = raw.translate(_WORD_MARKS, _UTF8_CONTINUATION)
        ascii_words = marks.count(b" w") + marks.startswith(b"w")
        # Each non-ASCII character (one byte or more beyond the first) may be a word of its own or join
        # two ASCII runs into one word: the count is within ``spare`` of the ASCII runs.
        spare = len(raw) - len(line)
        if min_story <= ascii_words - spare and ascii_words + spare <= max_words and ascii_words > spare:
            countable = long = True  # the usual body or heading line
        elif not spare:  # ASCII: the runs are the words
            countable = 0 < ascii_words <= max_words
            long = ascii_words >= min_story
        elif is_long is not None and is_long(line):
            long = True
            countable = len(line) < always_short or too_many(line) is None
        else:
            n_words = len(_WORD.findall(line))
            countable = 0 < n_words <= max_words
            long = n_words >= min_story
        if not (long or countable):
            per_line.append(0)
            continue
        h = hash64(_fast_line_key(line))
        per_line.append(h if countable else 0)
        # a quotation needs an opening and a later closing mark; '"' is the only ASCII one
        quoted = line.count('"') >= 2 and has_quotation(line) if line.isascii() else has_quotation(line)
        rows[h] = (countable, long, quoted)
    if not rows:
        return _SCHEMA.empty_table(), per_line
    hashes = sorted(rows)
    n = len(hashes)
    n_long = sum(1 for v in rows.values() if v[1])
    return pa.table(
        {
            "site": [site] * n,
            "site_hash": [hash64(site)] * n,
            "line_hash": hashes,
            "doc_id": [doc.doc_id] * n,
            "countable": [rows[h][0] for h in hashes],
            "quoted": [rows[h][2] for h in hashes],
            "long": [rows[h][1] for h in hashes],
            "doc_long_lines": [n_long] * n,
        },
        schema=_SCHEMA,
    ), per_line


# ---------------------------------------------------------------------------------------------- the plan


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


_CHROME_SCHEMA = pa.schema([("site", pa.string()), ("site_hash", pa.uint64()), ("line_hash", pa.uint64())])


@dataclass
class ChromeSet:
    """The (site, line_hash) pairs that are chrome in this run, and what to persist for later runs."""

    pairs: frozenset[tuple[str, int]]
    observations: pa.Table | None = field(default=None, repr=False)  # this run's non-chrome rows, with stories
    learned: pa.Table | None = field(default=None, repr=False)  # chrome lines first decided in this run
    # the same rows, spilled to Parquet files by partition (``plan(..., spill_dir=...)``): memory stays flat
    observation_files: tuple[str, ...] = field(default=(), repr=False)

    def __len__(self) -> int:
        return len(self.pairs)

    def __contains__(self, item: tuple[str, int]) -> bool:
        return item in self.pairs

    def is_chrome(self, site: str, line: str) -> bool:
        return (site, hash64(line_key(line))) in self.pairs

    def save_state(self, state_dir: Path) -> None:
        """Append this run's rows and newly learned chrome lines to the persisted state: atomic parts,
        then an atomic manifest (parts a crash leaves unlisted are ignored)."""
        root = Path(state_dir) / STATE_FOLDER
        root.mkdir(parents=True, exist_ok=True)
        manifest = _read_manifest(root)
        stamp = f"{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        for kind, table, keys in (
            ("parts", self.observations, ["site_hash", "line_hash"]),
            ("chrome", self.learned, ["site_hash", "line_hash"]),
        ):
            if table is None or table.num_rows == 0:
                continue
            name = f"{'lines' if kind == 'parts' else 'chrome'}-{stamp}.parquet"
            _atomic_write_table(table.sort_by([(k, "ascending") for k in keys]), root / name)
            manifest.setdefault(kind, []).append(name)
        for k, path in enumerate(self.observation_files):  # written sorted, beside the state: moved, not copied
            name = f"lines-{stamp}-{k:05d}.parquet"
            os.replace(path, root / name)
            manifest.setdefault("parts", []).append(name)
        tmp = root / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        os.replace(tmp, root / MANIFEST)


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"version": 2, "parts": [], "chrome": []}


def _as_dataset(lines: ds.Dataset | pa.Table) -> ds.Dataset:
    return lines if isinstance(lines, ds.Dataset) else ds.dataset(lines)


def _partition_filter(partitions: int, part: int):
    """Rows of one site-hash partition (a site's lines and stories are all in one partition)."""
    if partitions == 1:
        return None
    width = pa.scalar(-(-(2**64) // partitions), pa.uint64())
    return pc.equal(pc.divide(pc.field("site_hash"), width), part)


class _UnionFind(dict):
    def find(self, x):
        root = x
        while self.get(root, root) != root:
            root = self[root]
        while x != root:  # path compression
            self[x], x = root, self.get(x, x)
        return root

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # an earlier run's story id wins, so a story keeps its id across runs
            keep = min(ra, rb, key=lambda r: (not r.startswith("story:"), r))
            self[rb if keep == ra else ra] = keep


def _stories(rows: pa.Table, past: pa.Table, max_copies: int) -> dict[str, int]:
    """Which story each new document tells. Two documents of a site are one story when their sets of
    long lines overlap like copies do: Jaccard >= 0.5, or the smaller set contained >= 80% in the
    other (a paywall cut) and in no other story. Different stories sharing a template stay apart, since
    each brings its own body lines. A long line found in more than ``max_copies`` documents links its
    documents as a chain rather than all pairs (a big site's template lines would cost n^2)."""
    columns = ["site_hash", "line_hash", "doc_id", "doc_long_lines"]
    long_rows = pa.concat_tables([rows.filter(rows["long"]).select(columns), past.filter(past["long"]).select(columns)])
    uf = _UnionFind()
    for doc_id, story in zip(past["doc_id"].to_pylist(), past["story"].to_pylist()):
        uf.union(doc_id, f"story:{story}")
    if long_rows.num_rows:
        groups = long_rows.group_by(["site_hash", "line_hash"], use_threads=False).aggregate([("doc_id", "distinct")])
        groups = groups.filter(pc.greater(pc.list_value_length(groups["doc_id_distinct"]), 1))
        shared: dict[tuple[str, str], int] = {}
        for docs in groups["doc_id_distinct"].to_pylist():
            docs.sort()
            if len(docs) <= max_copies:
                pairs = ((a, b) for i, a in enumerate(docs) for b in docs[i + 1 :])
            else:
                pairs = zip(docs, docs[1:])
            for pair in pairs:
                shared[pair] = shared.get(pair, 0) + 1
        if shared:
            n_long = dict(zip(long_rows["doc_id"].to_pylist(), long_rows["doc_long_lines"].to_pylist()))
            contained_in: dict[str, list[str]] = {}
            for (a, b), count in shared.items():
                na, nb = n_long[a], n_long[b]
                if count >= 0.5 * (na + nb - count):
                    uf.union(a, b)
                elif count >= 0.8 * min(na, nb):
                    small, large = (a, b) if na <= nb else (b, a)
                    contained_in.setdefault(small, []).append(large)
            # A cut copy is contained in one story; a short page that is mostly template is "contained"
            # in every story of its site, and must not chain them all into one.
            for small, larges in contained_in.items():
                if len({uf.find(x) for x in larges}) == 1:
                    uf.union(small, larges[0])
    story: dict[str, int] = {}
    for doc_id in pc.unique(rows["doc_id"]).to_pylist():
        root = uf.find(doc_id)
        story[doc_id] = int(root[6:]) if root.startswith("story:") else hash64(root)
    return story


def plan(lines: ds.Dataset | pa.Table, state_dir: Path | None, config: ChromeConfig,
         spill_dir: Path | None = None) -> ChromeSet:
    """The chrome lines of this run. ``lines``: the rows of ``line_keys`` for every document of the run.

    A line is chrome when it was seen in at least ``min_documents`` different stories of its site,
    in this run or in earlier runs' persisted rows; once learned, it stays chrome. Earlier rows are
    read only for this run's lines not already known as chrome (mostly body lines, whose only matches
    are copies), so what is read follows the run's size, not the archive's. With ``spill_dir``, the rows
    to persist are written there partition by partition instead of held until the commit."""
    dataset = _as_dataset(lines)
    past_files: list[str] = []
    known_files: list[str] = []
    if state_dir is not None:
        root = Path(state_dir) / STATE_FOLDER
        manifest = _read_manifest(root)
        past_files = [str(root / p) for p in manifest["parts"]]
        known_files = [str(root / p) for p in manifest.get("chrome", [])]

    partitions = max(1, -(-dataset.count_rows() // ROWS_PER_PARTITION))
    chrome: set[tuple[str, int]] = set()
    observations: list[pa.Table] = []
    spilled: list[str] = []
    learned: list[pa.Table] = []
    for part in range(partitions):
        rows = dataset.to_table(columns=_SCHEMA.names, filter=_partition_filter(partitions, part)).cast(_SCHEMA)
        if not rows.num_rows:
            continue
        line_hashes = pc.unique(rows["line_hash"])
        known = _CHROME_SCHEMA.empty_table()
        if known_files:
            known = scan(known_files, _CHROME_SCHEMA, pc.field("line_hash").isin(line_hashes))
            known = known.join(rows.select(["site", "line_hash"]).group_by(["site", "line_hash"]).aggregate([]),
                               ["site", "line_hash"], join_type="inner")
        past = _STATE_SCHEMA.empty_table()
        if past_files:
            open_lines = pc.filter(line_hashes, pc.invert(pc.is_in(line_hashes, known["line_hash"])))
            past = scan(past_files, _STATE_SCHEMA, pc.field("line_hash").isin(open_lines))
            past = past.filter(pc.is_in(past["site_hash"], pc.unique(rows["site_hash"])))
        story = _stories(rows, past, config.max_story_copies)
        rows = rows.append_column("story", pa.array([story[d] for d in rows["doc_id"].to_pylist()], pa.uint64()))
        counted = pa.concat_tables([rows.filter(rows["countable"]), past.filter(past["countable"])])
        counts = counted.group_by(["site", "line_hash"], use_threads=False).aggregate(
            [("story", "count_distinct"), ("quoted", "any")]
        )
        # Different articles quote the same people: a line holding a quotation needs more stories.
        needed = pc.if_else(counts["quoted_any"], max(config.quoted_min_documents, config.min_documents), config.min_documents)
        hits = counts.filter(pc.greater_equal(counts["story_count_distinct"], needed))
        hits = hits.select(["site", "line_hash"]).join(known.select(["site", "line_hash"]), ["site", "line_hash"], join_type="left anti")
        hits = hits.append_column("site_hash", pa.array([hash64(x) for x in hits["site"].to_pylist()], pa.uint64()))
        learned.append(hits.select(_CHROME_SCHEMA.names).cast(_CHROME_SCHEMA))
        decided = pa.concat_tables([known.select(["site", "line_hash"]), hits.select(["site", "line_hash"])])
        chrome.update(zip(decided["site"].to_pylist(), decided["line_hash"].to_pylist()))
        # rows of chrome lines are never needed again: the decision is persisted instead
        kept = rows.join(decided, ["site", "line_hash"], join_type="left anti").select(_STATE_SCHEMA.names)
        if spill_dir is None:
            observations.append(kept)
        elif kept.num_rows:
            path = Path(spill_dir) / f"chrome-observations-{part:05d}.parquet"
            _atomic_write_table(kept.sort_by([("site_hash", "ascending"), ("line_hash", "ascending")]), path)
            spilled.append(str(path))
    return ChromeSet(
        pairs=frozenset(chrome),
        observations=pa.concat_tables(observations) if observations else None,
        learned=pa.concat_tables(learned) if learned else None,
        observation_files=tuple(spilled),
    )


def compact(state_dir: Path) -> None:
    """Merge the persisted parts into one ``lines`` and one ``chrome`` file, dropping the rows of lines
    learned as chrome since they were written. Streams batches; run it between runs (run lock held)."""
    root = Path(state_dir) / STATE_FOLDER
    manifest = _read_manifest(root)
    if len(manifest["parts"]) + len(manifest.get("chrome", [])) <= 2:
        return
    stamp = f"{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}-compact"
    known = _CHROME_SCHEMA.empty_table()
    new_manifest = {"version": 2, "parts": [], "chrome": []}
    if manifest.get("chrome"):
        known = scan([str(root / p) for p in manifest["chrome"]], _CHROME_SCHEMA, None)
        known = known.group_by(_CHROME_SCHEMA.names).aggregate([])
        _atomic_write_table(known.cast(_CHROME_SCHEMA), root / f"chrome-{stamp}.parquet")
        new_manifest["chrome"].append(f"chrome-{stamp}.parquet")
    if manifest["parts"]:
        name = f"lines-{stamp}.parquet"
        tmp = root / f".{name}.{uuid.uuid4().hex}.tmp"
        files = [str(root / p) for p in manifest["parts"]]
        with pq.ParquetWriter(tmp, _STATE_SCHEMA, compression="zstd") as writer:
            for batch in ds.dataset(files, format="parquet", schema=_STATE_SCHEMA).to_batches(batch_size=262_144):
                table = pa.Table.from_batches([batch], schema=_STATE_SCHEMA)
                if known.num_rows:
                    table = table.join(known.select(["site", "line_hash"]), ["site", "line_hash"], join_type="left anti")
                writer.write_table(table.select(_STATE_SCHEMA.names).cast(_STATE_SCHEMA))
        os.replace(tmp, root / name)
        new_manifest["parts"].append(name)
    tmp = root / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(new_manifest, indent=1), encoding="utf-8")
    os.replace(tmp, root / MANIFEST)
    for name in [*manifest["parts"], *manifest.get("chrome", [])]:
        (root / name).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- the stage


def strip_repeated_lines(doc: Document, chrome_set: ChromeSet, config: ChromeConfig,
                         line_hashes: list[int] | None = None) -> StageResult:
    """Remove the lines of the document that are chrome of its site. ``line_hashes``: the second value of
    ``line_keys_and_hashes`` for this very text, if at hand (else each line is hashed here)."""
    if not config.enabled or doc.rejected or not doc.text or not chrome_set.pairs:
        return doc, []
    site = site_key(doc)
    kept: list[str] = []
    edits: list[Removal] = []
    lines = doc.text.split("\n")
    if line_hashes is None or len(line_hashes) != len(lines):
        line_hashes = line_keys_and_hashes(doc, config)[1]  # the same lines as the run counted
    pairs = chrome_set.pairs
    for line, h in zip(lines, line_hashes):
        if h and (site, h) in pairs:
            edits.append(Removal(rule=RULE, text=line, stage=STAGE))
        elif line or not kept or kept[-1]:  # at most one blank line in a row: a removal leaves no gap
            kept.append(line)
    if not edits:
        return doc, []
    text = "\n".join(kept).strip("\n")
    new = doc.with_edits(edits, text=text)
    if not text.strip():
        new = new.reject("empty_after_cleaning", "every line was chrome repeated across the site")
    return new, list(edits)
