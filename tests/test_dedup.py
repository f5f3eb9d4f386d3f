"""Deduplication: exact and near copies within a run, across runs through the persisted index, and two
different stories about the same people that must both stay."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from docclean import dedup
from docclean.config import DedupConfig
from docclean.document import Document

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"

STORY = """Dockworkers at the port of Antwerp-Bruges walked off the job on Tuesday morning, halting container traffic at Europe's second-largest port for the first time in nearly two decades.

The strike, called by the ABVV and ACV unions, follows the collapse of talks over a pension reform that would raise the retirement age for port workers from 60 to 65. Union leaders said the government had "ignored every warning" during six months of negotiations.

"We are not against reform, we are against reform that is written without us," said Marc Goossens, a crane operator and shop steward at the Deurganck dock. "A man who has worked nights on the quay for forty years cannot climb a crane at sixty-four."

Port authority figures showed that 41 container ships were waiting at anchor in the North Sea by Tuesday evening, and shipping lines MSC and Maersk warned customers of delays of up to a week. Freight forwarders said perishable cargo, including fruit from South America, was already being diverted to Rotterdam.

Belgian employment minister David Clarinval said the reform was "necessary and fair" and that the door to talks remained open. He declined to say whether the government would delay the vote scheduled for next month.

The port handled 278 million tonnes of cargo last year and employs about 8,500 registered dockworkers under a system that dates from 1972. Economists at KBC estimated that each day of strike costs the Belgian economy between 30 and 50 million euros.

The unions said the walkout would last at least 48 hours and could be extended to the port of Ghent if the government did not return to the table by Friday."""

# The same dispatch syndicated by another site: its own lead-in line, some light editing, a footer.
SYNDICATED = """Antwerp port strike halts container traffic

Dockworkers at the port of Antwerp-Bruges walked off the job on Tuesday, halting container traffic at Europe's second-largest port for the first time in almost two decades.

The strike, called by the ABVV and ACV unions, follows the collapse of talks over a pension reform that would raise the retirement age for port workers from 60 to 65. Union leaders said the government had "ignored every warning" during six months of negotiations.

"We are not against reform, we are against reform that is written without us," said Marc Goossens, a crane operator and shop steward at the Deurganck dock. "A man who has worked nights on the quay for forty years cannot climb a crane at sixty-four."

Port authority figures showed that 41 container ships were waiting at anchor in the North Sea by Tuesday evening, and shipping lines MSC and Maersk warned customers of delays of up to a week. Freight forwarders said perishable cargo, including fruit from South America, was already being diverted to Rotterdam.

Belgian employment minister David Clarinval said the reform was "necessary and fair" and that the door to talks remained open. He declined to say whether the government would delay the vote scheduled for next month.

The port handled 278 million tonnes of cargo last year and employs about 8,500 registered dockworkers under a system that dates from 1972. Economists estimated that each day of strike costs the Belgian economy between 30 and 50 million euros.

The unions said the walkout would last at least 48 hours and could be extended to the port of Ghent if the government did not return to the table by Friday.

Read more: Shipping and logistics coverage from our Benelux desk"""

PAYWALLED = "\n\n".join(STORY.split("\n\n")[:3])

# Same port, same union leader, one shared quotation: a different story, which must stay.
OTHER_STORY = """Antwerp's dockworkers returned to the quays on Thursday after the government agreed to postpone a parliamentary vote on pension reform, ending a 48-hour strike that left dozens of ships waiting off the Belgian coast.

The agreement, reached late on Wednesday after nine hours of talks at the prime minister's office, sets up a working group that will report by the end of March on "arduous jobs" that could keep an earlier retirement age.

"We are not against reform, we are against reform that is written without us," Marc Goossens repeated as he returned to the Deurganck dock, adding that the unions would judge the working group by its results.

Shipping lines said it would take at least ten days to clear the backlog. MSC said it would add two extra calls at Antwerp next week, while several forwarders that had diverted cargo to Rotterdam said they would keep those bookings until the end of the month.

Employers' federation Cepa welcomed the return to work but warned that repeated stoppages were pushing customers towards Dutch and German ports. Traffic at Antwerp-Bruges fell by 3 percent in the first half of the year.

Opposition parties accused the government of backing down under pressure, while the employment minister insisted the reform itself had not been withdrawn and that the retirement age for dockworkers would rise in stages from 2027."""


def _doc(doc_id: str, text: str, truncated: bool = False, day: int = 1) -> Document:
    return Document(
        doc_id=doc_id,
        source_path=f"feeds/{doc_id}.txt",
        source_sha256=doc_id,
        text=text,
        truncated=truncated,
        published=datetime(2025, 3, day, tzinfo=timezone.utc),
    )


def _run(docs: list[Document], state_dir: Path | None, config: DedupConfig, archive: dict[str, str] | None = None):
    texts = {d.doc_id: d.text for d in docs}
    if archive is not None:
        archive.update(texts)
        texts = archive
    table = dedup.candidates_table((d, dedup.fingerprint(d.text, config)) for d in docs)
    return dedup.plan(table, state_dir, config, lambda ids: {i: texts[i] for i in ids if i in texts})


def _pairs(plan) -> dict[str, tuple[str, str]]:
    rows = plan.duplicates.to_pylist()
    return {r["doc_id"]: (r["duplicate_of"], r["method"]) for r in rows}


def test_fingerprint_ignores_case_punctuation_and_spacing():
    config = DedupConfig()
    a = dedup.fingerprint(STORY, config)
    b = dedup.fingerprint(STORY.upper().replace("\n\n", "\n").replace(",", " ,"), config)
    assert a.text_hash == b.text_hash
    assert a.minhash.dtype.kind == "u" and len(a.minhash) == config.num_perm + config.head_num_perm
    assert 0 < a.text_hash < 2**64


def test_copies_cluster_on_the_most_complete_and_a_different_story_stays():
    config = DedupConfig()
    docs = [
        _doc("paywalled", PAYWALLED, truncated=True, day=1),
        _doc("syndicated", SYNDICATED, day=2),
        _doc("story", STORY, day=1),
        _doc("exact", STORY.replace("\n\n", "\n"), day=3),
        _doc("other", OTHER_STORY, day=3),
    ]
    plan = _run(docs, None, config)
    dups = _pairs(plan)
    # the syndicated copy is longer (its own headline and footer), so it is kept
    assert dups == {
        "paywalled": ("syndicated", "containment"),
        "story": ("syndicated", "minhash_jaccard"),
        "exact": ("syndicated", "minhash_jaccard"),
    }
    assert plan.demotions.num_rows == 0
    assert "other" not in dups


def test_exact_copy_is_reported_as_exact():
    config = DedupConfig()
    plan = _run([_doc("a", STORY, day=1), _doc("b", "  " + STORY.replace("\n\n", "\n") + "\n", day=2)], None, config)
    assert _pairs(plan) == {"b": ("a", "exact")}


def test_earliest_then_smallest_id_wins_between_equal_copies():
    config = DedupConfig()
    plan = _run([_doc("z", STORY, day=1), _doc("a", STORY, day=5), _doc("m", STORY, day=1)], None, config)
    assert _pairs(plan) == {"a": ("m", "exact"), "z": ("m", "exact")}


def _spin(text: str, share: float, seed: int) -> str:
    """A crude spinner: swaps words for near-synonyms, sometimes inside longer words."""
    swaps = {"said": "stated", "the": "teh", "that": "which", "would": "could", "government": "administration",
             "talks": "negotiations", "port": "harbour", "strike": "walkout", "days": "dayz", "end": "conclude"}
    rng = random.Random(seed)
    out = []
    for word in text.split(" "):
        if rng.random() < share:
            word = next((word.replace(k, v) for k, v in swaps.items() if k in word), word + "s")
        out.append(word)
    return " ".join(out)


def test_spun_and_edited_copies_match():
    config = DedupConfig()
    docs = [_doc("story", STORY), _doc("spun", _spin(STORY, 0.08, 1), day=2), _doc("other", OTHER_STORY)]
    docs.append(_doc("edited", _spin(OTHER_STORY, 0.08, 2), day=4))
    clusters = {frozenset((k, v[0])) for k, v in _pairs(_run(docs, None, config)).items()}
    assert clusters == {frozenset({"story", "spun"}), frozenset({"other", "edited"})}


def test_a_later_complete_copy_demotes_the_archived_truncated_one(tmp_path):
    config = DedupConfig()
    archive: dict[str, str] = {}
    first = _run([_doc("cut", PAYWALLED, truncated=True), _doc("other", OTHER_STORY)], tmp_path, config, archive)
    assert first.duplicates.num_rows == 0
    first.save_state(tmp_path)
    assert (tmp_path / "dedup" / "manifest.json").exists()

    second = _run([_doc("full", STORY, day=2)], tmp_path, config, archive)
    assert second.duplicates.num_rows == 0
    assert second.demotions.to_pylist() == [
        {"old_doc_id": "cut", "new_doc_id": "full", "similarity": pytest.approx(1.0, abs=0.05), "method": "containment"}
    ]
    second.save_state(tmp_path)

    # a third run: another cut copy now points at the full one, and the demoted one is out of the index
    third = _run([_doc("cut-again", PAYWALLED + "\n\nSubscribe to keep reading.", truncated=True, day=4)], tmp_path, config, archive)
    assert _pairs(third) == {"cut-again": ("full", "containment")}
    assert third.demotions.num_rows == 0


def test_archived_exact_copy_is_found_across_runs(tmp_path):
    config = DedupConfig()
    archive: dict[str, str] = {}
    _run([_doc("old", STORY)], tmp_path, config, archive).save_state(tmp_path)
    plan = _run([_doc("new", STORY, day=9)], tmp_path, config, archive)
    assert _pairs(plan) == {"new": ("old", "exact")}


def test_state_is_not_written_until_save_state(tmp_path):
    config = DedupConfig()
    _run([_doc("a", STORY)], tmp_path, config)
    assert not (tmp_path / "dedup").exists()


def test_index_is_parquet_band_keys(tmp_path):
    config = DedupConfig()
    plan = _run([_doc("a", STORY), _doc("b", OTHER_STORY)], tmp_path, config)
    plan.save_state(tmp_path)
    bands = pq.read_table(next((tmp_path / "dedup").glob("bands-*.parquet")))
    per_doc = config.num_perm // config.lsh_rows + config.head_num_perm // config.lsh_rows
    assert bands.num_rows == 2 * per_doc
    assert str(bands.schema.field("band_key").type) == "uint64"


def test_changed_signature_settings_are_refused(tmp_path):
    _run([_doc("a", STORY)], tmp_path, DedupConfig()).save_state(tmp_path)
    with pytest.raises(ValueError, match="signature index"):
        _run([_doc("b", STORY)], tmp_path, DedupConfig(num_perm=96))


def test_empty_run():
    plan = dedup.plan(dedup.CANDIDATES_SCHEMA.empty_table(), None, DedupConfig(), lambda ids: {})
    assert plan.duplicates.num_rows == 0 and plan.demotions.num_rows == 0


def test_seeds_000_and_001_are_different_stories():
    if not SEEDS.exists():
        pytest.skip(f"{SEEDS} is absent")
    texts = {p.name[:3]: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("00[01]_*.txt"))}
    docs = [_doc(k, v) for k, v in texts.items()]
    plan = _run(docs, None, DedupConfig())
    assert plan.duplicates.num_rows == 0


def test_a_digest_of_two_stories_never_merges_them():
    config = DedupConfig()
    digest = "Today's briefing\n\n" + STORY + "\n\nAlso today\n\n" + OTHER_STORY
    plan = _run([_doc("story", STORY), _doc("other", OTHER_STORY), _doc("digest", digest, day=2)], None, config)
    dups = _pairs(plan)
    # the first story is the digest's opening (it may count as its copy); the second never joins either
    assert "other" not in dups and dups.get("story", ("digest",))[0] == "digest"


def test_a_text_the_store_cannot_return_is_never_merged_by_similarity():
    config = DedupConfig()
    docs = [_doc("story", STORY), _doc("syndicated", SYNDICATED, day=2)]
    table = dedup.candidates_table((d, dedup.fingerprint(d.text, config)) for d in docs)
    plan = dedup.plan(table, None, config, lambda ids: {i: STORY for i in ids if i == "story"})
    assert plan.duplicates.num_rows == 0


def test_compacted_index_answers_the_same(tmp_path):
    config = DedupConfig()
    archive: dict[str, str] = {}
    _run([_doc("cut", PAYWALLED, truncated=True), _doc("other", OTHER_STORY)], tmp_path, config, archive).save_state(tmp_path)
    _run([_doc("full", STORY, day=2)], tmp_path, config, archive).save_state(tmp_path)
    dedup.compact(tmp_path)
    files = sorted(p.name.split("-")[0] for p in (tmp_path / "dedup").glob("*.parquet"))
    assert files == ["bands", "docs"]
    docs = pq.read_table(next((tmp_path / "dedup").glob("docs-*.parquet")))
    assert sorted(docs["doc_id"].to_pylist()) == ["full", "other"]  # the demoted cut copy is gone
    plan = _run([_doc("again", STORY.replace("\n\n", "\n"), day=5)], tmp_path, config, archive)
    assert _pairs(plan) == {"again": ("full", "exact")}


def test_bucket_pairs_by_sorting_equal_grouping_by_key():
    """The sort-based grouping of band keys gives exactly the pairs of a plain dict grouping, including the
    star-and-chain of buckets over ``max_bucket``."""
    import numpy as np

    rng = np.random.default_rng(3)
    # few distinct keys: many buckets of 2-30 rows, one row often in several, and some huge buckets
    keys = rng.integers(0, 400, size=(600, 12)).astype(np.uint64)
    keys[:80, 0] = 7_000  # 80 rows share one key: over max_bucket
    for max_bucket in (50, 1_000):
        buckets: dict[int, set[int]] = {}
        for row in range(keys.shape[0]):
            for key in keys[row].tolist():
                buckets.setdefault(key, set()).add(row)
        expected: set[tuple[int, int]] = set()
        for rows in buckets.values():
            rows = sorted(rows)
            if len(rows) <= max_bucket:
                expected.update((a, b) for i, a in enumerate(rows) for b in rows[i + 1 :])
            else:
                expected.update((rows[0], r) for r in rows[1:])
                expected.update(zip(rows, rows[1:]))
        assert dedup._pairs_within_buckets(keys, max_bucket) == expected
    assert dedup._pairs_within_buckets(np.zeros((0, 12), np.uint64), 50) == set()


def test_band_keys_are_the_same_from_uint32_and_uint64_signatures():
    import numpy as np

    config = DedupConfig()
    sig = np.random.default_rng(5).integers(0, 2**32, size=(20, config.num_perm + config.head_num_perm), dtype=np.uint64)
    assert np.array_equal(dedup.band_keys(sig, config), dedup.band_keys(sig.astype(np.uint32), config))


def test_spilled_shingles_read_back_equal_to_the_computed_ones():
    """Verification reads shingled texts back from the temporary file: the same arrays as computed,
    None where the store has no text, and a node outside the built set still answered (fallback)."""
    import numpy as np

    texts = {
        "a": "Officials in Brussels said on Thursday that the alliance would meet again next week.\nShort line\n" * 5,
        "b": "Le ministre a déclaré jeudi que la réunion aurait lieu la semaine prochaine à Bruxelles.",
        "c": "",
        "e": "Ministers stressed the need for a common answer before the summit opens in The Hague.",
    }
    node_ids = ["a", "b", "c", "d", "e"]  # "d": the fetcher has no text for it
    fetched: list[list[str]] = []

    def fetch(ids):
        fetched.append(list(ids))
        return {i: texts[i] for i in ids if i in texts}

    store = dedup._ShingleStore(fetch, node_ids, (3, 6), batch=2)
    store.build([0, 1, 2, 3])
    for node, doc_id in enumerate(node_ids[:3]):
        expected, got = dedup._shingled(texts[doc_id], 3, 6), store.shingled(node)
        assert np.array_equal(got.hashes, expected.hashes) and got.hashes.dtype == expected.hashes.dtype
        assert np.array_equal(got.first, expected.first) and got.first.dtype == expected.first.dtype
        assert (got.count, got.words) == (expected.count, expected.words)
    assert store.shingled(3) is None
    assert np.array_equal(store.shingled(4).hashes, dedup._shingled(texts["e"], 3, 6).hashes)  # not built: fetched
    assert fetched[:2] == [["a", "b"], ["c", "d"]]  # built in batches, in node order
    store.close()


def test_shingle_hashes_are_the_same_in_every_process():
    # The dedup plan's shingles are computed in batch workers and compared in the run's process: Python's
    # own str hash is salted per process and would make every copy look new.
    import subprocess
    import sys

    words = ["ministers", "stressed", "the", "need", "for", "a", "common", "answer", "Zaventem", "stratégique", "日本"]
    here = dedup.shingle_hashes(words, 3).tolist()
    code = f"from docclean import dedup; print(dedup.shingle_hashes({words!r}, 3).tolist())"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": "12345"}).stdout.strip()
    assert str(here) == there
    assert len(set(here)) == len(words) - 2  # one per 3-word window, none colliding
    assert len(set(dedup.word_hashes(words).tolist())) == len(words)
    assert dedup.word_hashes(["need", "need"])[0] == dedup.word_hashes(["need"])[0]
    assert len(dedup.shingle_hashes(["only", "two"], 3)) == 1 and len(dedup.shingle_hashes([], 3)) == 0


def test_shingles_from_the_workers_are_stored_like_fetched_ones():
    import numpy as np

    texts = ["Officials in Brussels said on Thursday that the alliance would meet again next week.\nMenu\n" * 4,
             "Ministers stressed the need for a common answer before the summit opens in The Hague.", None]
    node_ids = ["a", "b", "c", "archived"]
    asked = []

    def shingle_new(rows):
        asked.append(list(rows))
        return zip(rows, dedup.shingled_texts([texts[r] for r in rows], 3, 6))

    archived = "Earlier copy: ministers stressed the need for a common answer before the summit opened."
    store = dedup._ShingleStore(lambda ids: {"archived": archived}, node_ids, (3, 6), shingle_new=shingle_new, n_new=3)
    store.build([0, 1, 2, 3])
    assert asked == [[0, 1, 2]]  # this run's rows from the workers, the archived one fetched
    for node, text in enumerate(texts[:2] + [None, archived]):
        got = store.shingled(node)
        if text is None:
            assert got is None
            continue
        expected = dedup._shingled(text, 3, 6)
        assert np.array_equal(got.hashes, expected.hashes) and np.array_equal(got.first, expected.first)
    store.close()


# ---------------------------------------------------------------------------------------------- fast tokenizer
# Fingerprints are persisted in the index: the byte tokenizer must give exactly the reference words.

from hypothesis import given, settings, strategies as st  # noqa: E402
from rensa import RMinHash  # noqa: E402

_TRICKY = (
    "Caf\u00e9 cafe\u0301 \u1100\u1161\u11a8 \u30ab\uff9e \u00bd \u2122 Stra\u00dfe \u0130stanbul \u212a\u00e5 "
    "\ufb01ne \u2026 \u2011 \u00a0 \u2028 \u00c9T\u00c9 \u201cquoted\u201d it\u2019s snake_case 42\u00b2 \u0391\u03a3 "
    "\u0645\u0631\u062d\u0628\u0627 \u4e2d\u6587 \U0001F517 \ufe0f \u0301 \r\n\t\x1c"
)


def _reference_fingerprint(text: str, config: DedupConfig) -> tuple:
    """The fingerprint as first written: str words from ``_line_words``, shingles joined by spaces."""
    all_tokens, tokens = dedup._line_words(text, config.min_line_words)
    n = config.shingle_words

    def signature(items, num_perm, seed):
        m = RMinHash(num_perm=num_perm, seed=seed)
        if items:
            m.update(items)
        return list(m.digest())

    sig = signature(dedup.shingles(tokens, n), config.num_perm, config.seed)
    if config.head_words:
        sig += signature(dedup.shingles(tokens[: config.head_words], n), config.head_num_perm, config.seed + 1)
    return dedup.hash64(" ".join(all_tokens)), sig, len(all_tokens)


def _assert_same_words(text: str, min_line_words: int = 6) -> None:
    expected = dedup._line_words(text, min_line_words)
    got = dedup._line_word_bytes(text, min_line_words)
    as_str = tuple([t.decode("utf-8") if isinstance(t, bytes) else t for t in part] for part in got)
    assert as_str == expected


@pytest.mark.parametrize("text", [
    "", "\n\n", "plain ascii words only", STORY, STORY.upper(), _TRICKY, _TRICKY * 3 + STORY,
    "caf\u00e9 \u2019" * 40, "lone \ud800 surrogate " * 20, "combining e\u0301 mark " * 30,
])
def test_byte_tokenizer_gives_the_reference_words(text):
    for min_line_words in (1, 3, 6):
        _assert_same_words(text, min_line_words)
    config = DedupConfig()
    fp = dedup.fingerprint(text, config)
    assert (fp.text_hash, fp.minhash.tolist(), fp.length) == _reference_fingerprint(text, config)


_ALPHABET = st.sampled_from(list(_TRICKY) + list("aZ_9 .,\n") * 4)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=200).map("".join), st.integers(1, 6))
def test_byte_tokenizer_matches_reference_on_any_mix(text, min_line_words):
    _assert_same_words(text, min_line_words)


def test_every_character_image_is_its_normalized_form():
    """Each character the fast path replaces on its own maps to what NFKC + casefold make of it between
    ASCII letters (where a neighbour could combine, the character must send the text to the reference)."""
    import unicodedata

    for code in list(range(0x80, 0x3000)) + list(range(0xFB00, 0xFFF0)):
        c = chr(code)
        image = dedup._char_image(c)
        if image is None:
            continue
        for context in ("a{}b", "{}", "1{}{}_"):
            text = context.format(c, c)
            expected = dedup._WORD.findall(unicodedata.normalize("NFKC", text).casefold())
            assert dedup._line_word_bytes(text, 1)[0] == [w.encode() for w in expected], hex(code)
