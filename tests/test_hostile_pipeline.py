"""The whole pipeline on hostile inputs: no crash, every input accounted for with a specific reason, a
per-document time limit, bounded memory, and untrusted input treated as data (no code, no links out of the
root, no network)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from docclean import pipeline
from docclean.archive import Archive
from docclean.config import load_config
from docclean.verify import verify

try:
    from hostile import make_hostile_corpus
except ImportError:
    from tests.hostile import make_hostile_corpus

REPO = Path(__file__).resolve().parents[1]

# Reasons a document the reader accepted may still be rejected for by a later stage: all specific.
LATER_STAGE_REASONS = {"empty_after_cleaning", "no_main_content", "unparsable_html", "language_filtered",
                       "too_large", "html_too_deep"}
# These mean a stage failed or gave up, never a property of the input.
NEVER_REASONS = {"stage_error", "unknown", "read_error", "timeout"}

# Inputs that currently stall a whole run beyond the per-document time limit (known bugs, each checked on
# its own by a strict xfail below); the whole-corpus tests run without them so that they test the rest.
KNOWN_STALLS = {
    # RepairModel.learn is quadratic (or worse) in word length and runs outside the time limit
    "regex_bait.txt": "test_a_very_long_word_does_not_stall_the_batch",
}
# Inputs the time limit currently has to stop (known bugs, strict xfail below): allowed to end as timeout.
KNOWN_TIMEOUTS: dict[str, str] = {}


def archived_outcomes(out: Path) -> dict[str, list[tuple[str, str | None]]]:
    archive = Archive(out)
    seen: dict[str, list[tuple[str, str | None]]] = {}
    for name in ("documents", "duplicates", "rejects"):
        cols = ["source_path", "reason"] if name == "rejects" else ["source_path"]
        for row in archive.table(name, columns=cols).to_pylist():
            seen.setdefault(row["source_path"], []).append((name, row.get("reason")))
    return seen


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "raw"
    expected = make_hostile_corpus(root)
    for name in KNOWN_STALLS:
        (root / name).unlink(missing_ok=True)
        expected.pop(name, None)
    out = root.parent / "clean"
    report = pipeline.run(root, out, load_config(run={"doc_timeout_seconds": 10}))
    return expected, report, out


@pytest.mark.slow
def test_every_hostile_input_ends_once_with_a_specific_outcome(hostile_run):
    expected, report, out = hostile_run
    seen = archived_outcomes(out)
    assert set(seen) == set(expected)
    twice = {path: where for path, where in seen.items() if len(where) > 1}
    assert not twice
    for path, outcome in expected.items():
        (table, reason), = seen[path]
        if outcome.startswith("reject:"):
            # The reader's reason survives the pipeline unchanged.
            assert (table, reason) == ("rejects", outcome.removeprefix("reject:")), path
        elif table == "rejects" and not (path in KNOWN_TIMEOUTS and reason == "timeout"):
            assert reason in LATER_STAGE_REASONS, (path, reason)
            assert reason not in NEVER_REASONS, (path, reason)


@pytest.mark.slow
def test_hostile_run_balances_and_leaves_a_sound_archive(hostile_run):
    expected, report, out = hostile_run
    assert report.balanced
    assert report.inputs == len(expected) == report.documents + report.duplicates + report.rejects
    result = verify(out)
    assert result.sound, result.messages
    runs = Archive(out).table("runs").to_pylist()
    assert runs[0]["inputs"] == len(expected)


@pytest.mark.slow
def test_hostile_rejects_keep_their_raw_bytes(hostile_run):
    _, _, out = hostile_run
    for row in Archive(out).table("rejects", columns=["source_path", "reason", "raw", "raw_size", "source_sha256"]).to_pylist():
        assert re.fullmatch(r"[0-9a-f]{64}", row["source_sha256"]), row["source_path"]
        if row["reason"] not in {"empty_file", "not_a_regular_file", "unreadable_file"}:
            assert row["raw_size"] > 0, row["source_path"]


# The inputs issue 2 names, in the default suite (the whole corpus above is slow).
QUICK = ("binary.bin", "empty.txt", "invalid_utf8.txt", "latin1.txt", "utf16_bom.txt", "truncated.txt.gz",
         "unclosed.html", "whitespace.txt", "records.jsonl", "link_outside.txt")


def test_a_few_hostile_inputs_through_the_whole_pipeline(tmp_path):
    root = tmp_path / "raw"
    expected = make_hostile_corpus(root)
    keep = {path for path in expected if path.split("#")[0] in QUICK}
    for path in sorted(root.rglob("*"), reverse=True):
        rel = path.relative_to(root).as_posix()
        if rel not in QUICK and (path.is_symlink() or path.is_file() or path.is_fifo()):
            path.unlink()
    out = tmp_path / "clean"
    report = pipeline.run(root, out, load_config())
    assert report.balanced and report.inputs == len(keep)
    seen = archived_outcomes(out)
    assert set(seen) == keep
    for path in keep:
        (table, reason), = seen[path]
        if expected[path].startswith("reject:"):
            assert reason == expected[path].removeprefix("reject:"), path
        assert reason not in NEVER_REASONS, (path, reason)
    assert verify(out).sound


# --------------------------------------------------------------------------------------------------
# Per-document time limit
# --------------------------------------------------------------------------------------------------

STALL = "THIS DOCUMENT MAKES A STAGE STALL"


def test_a_stalling_document_is_rejected_as_timeout_and_the_run_goes_on(corpus, tmp_path, monkeypatch):
    from docclean import boilerplate

    real = boilerplate.strip_boilerplate

    def stalls_on_marker(doc, config):
        if STALL in doc.text:
            while True:  # a pure-Python endless loop, as a pathological rule would be
                pass
        return real(doc, config)

    monkeypatch.setattr(boilerplate, "strip_boilerplate", stalls_on_marker)
    (corpus / "stall.txt").write_text(STALL + "\nA perfectly ordinary second line of body text follows here.\n")
    out = tmp_path / "clean"
    report = pipeline.run(corpus, out, load_config(run={"doc_timeout_seconds": 1}))
    assert report.balanced and report.inputs == 9
    seen = archived_outcomes(out)
    assert seen["stall.txt"] == [("rejects", "timeout")]
    assert seen["wire/fishermen.txt"] == [("documents", None)]
    detail = Archive(out).table("rejects").to_pylist()
    stalled = next(r for r in detail if r["source_path"] == "stall.txt")
    assert "1 s" in stalled["detail"] and stalled["raw"].startswith(STALL.encode())


@pytest.mark.slow
def test_deep_nesting_does_not_stall_the_run(tmp_path):
    """resiliparse's main-content search is quadratic in nesting depth and runs in C, where the SIGALRM
    limit never fires (8,000 nested divs: 2.7 s; 100,000: minutes); extract's depth guard must catch it."""
    root = tmp_path / "raw"
    root.mkdir()
    (root / "deep.html").write_bytes(b"<html><body>" + b"<div>" * 40_000 + b"deep text" + b"</div>" * 10)
    (root / "ok.txt").write_text("The harbour reopened on Monday after a week of repairs to the old sea wall.\n")
    done = _run_bounded(root, tmp_path / "clean", doc_timeout=2, wall=30)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'html_too_deep': 1" in done.stdout


def _run_bounded(root: Path, out: Path, doc_timeout: float, wall: float) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        from docclean import pipeline
        from docclean.config import load_config
        r = pipeline.run({str(root)!r}, {str(out)!r}, load_config(run={{"doc_timeout_seconds": {doc_timeout}}}))
        print(r.inputs, r.documents + r.duplicates, r.rejects_by_reason)
    """)
    try:
        return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=wall)
    except subprocess.TimeoutExpired:
        pytest.fail(f"one document stalled the whole run past {wall:g} s despite a {doc_timeout:g} s limit")


@pytest.mark.slow
def test_a_very_long_word_does_not_stall_the_batch(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    (root / "long_word.txt").write_text("The header line of a story.\n" + "ab" * 50_000 + "\n")
    (root / "ok.txt").write_text("The harbour reopened on Monday after a week of repairs to the old sea wall.\n")
    done = _run_bounded(root, tmp_path / "clean", doc_timeout=2, wall=60)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_unclosed_tags_do_not_time_out(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    (root / "meta_bait.html").write_bytes(b"<meta " * 10_000 + b"caf\xe9 \xff")
    done = _run_bounded(root, tmp_path / "clean", doc_timeout=10, wall=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "timeout" not in done.stdout


# --------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------

PEAK_RSS_LIMIT_MB = 2048  # measured: 949-1307 MB with the 50 MB file (text, raw bytes, a copy per stage)


@pytest.mark.slow
def test_peak_memory_stays_bounded_on_large_inputs(tmp_path):
    """The 50 MB text file and the 10 MB single line in one run: peak RSS of the run process."""
    root = tmp_path / "raw"
    expected = make_hostile_corpus(root, large=True)
    for name in KNOWN_STALLS:
        (root / name).unlink(missing_ok=True)
        expected.pop(name, None)
    code = textwrap.dedent(f"""
        import resource
        from docclean import pipeline
        from docclean.config import load_config
        r = pipeline.run({str(root)!r}, {str(tmp_path / 'clean')!r}, load_config(run={{"doc_timeout_seconds": 120}}))
        print(r.inputs, int(r.balanced), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    inputs, balanced, peak_mb = map(int, done.stdout.split()[-3:])
    print(f"peak RSS {peak_mb} MB for {inputs} inputs including a 50 MB file and a 10 MB line")
    assert (inputs, balanced) == (len(expected), 1)
    assert peak_mb < PEAK_RSS_LIMIT_MB


# --------------------------------------------------------------------------------------------------
# Untrusted input is data
# --------------------------------------------------------------------------------------------------

# Loading code from data: never on inputs (and nowhere in the library).
FORBIDDEN = re.compile(r"\b(pickle|marshal|shelve|dill|cloudpickle)\b|\beval\(|\bexec\(|yaml\.load\(|"
                       r"\bcompile\([^)]*['\"]exec|__import__\(|allow_pickle\s*=\s*True")


def test_the_library_never_loads_code_from_data():
    hits = []
    for path in sorted((REPO / "docclean").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if FORBIDDEN.search(code):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_links_out_of_the_input_root_are_never_read(tmp_path):
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("TOP SECRET the password is hunter2 and it must never reach the archive.\n")
    root = tmp_path / "raw"
    (root / "sub").mkdir(parents=True)
    (root / "story.txt").write_text("The library reopened on Saturday after a year of renovation work in town.\n")
    (root / "secret_link.txt").symlink_to(secret)
    (root / "dir_link").symlink_to(secret.parent, target_is_directory=True)
    (root / "sub" / "up_link.txt").symlink_to(Path("..") / ".." / "outside" / "secret.txt")
    out = tmp_path / "clean"
    report = pipeline.run(root, out, load_config())
    assert report.balanced
    archive = Archive(out)
    for name in ("documents", "duplicates", "rejects"):
        for row in archive.table(name).to_pylist():
            for value in row.values():
                if isinstance(value, (str, bytes)):
                    assert b"hunter2" not in (value if isinstance(value, bytes) else value.encode()), (name, row["source_path"])
    reasons = {r["source_path"]: r["reason"] for r in archive.table("rejects").to_pylist()}
    assert reasons == {"secret_link.txt": "symlink_outside_root", "dir_link": "symlink_outside_root",
                       "sub/up_link.txt": "symlink_outside_root"}


REMOTE_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Tide gauges</title>
<link rel="stylesheet" href="https://cdn.tracker.example/site.css">
<link rel="canonical" href="https://coastnews.example/tide-gauges">
<script src="https://cdn.tracker.example/analytics.js"></script>
<meta http-equiv="refresh" content="0; url=https://elsewhere.example/">
<base href="https://assets.example/">
</head><body>
<img src="https://images.example/harbour.jpg" srcset="https://images.example/h2.jpg 2x" alt="harbour">
<iframe src="https://ads.example/frame"></iframe>
<article><h1>New tide gauges for the harbour</h1>
<p>The port authority installed six new tide gauges along the harbour walls this week, replacing
instruments that had been in service since the nineteen seventies.</p>
<p>The readings will be published every ten minutes, and fishermen say the data will help them plan
departures on the narrow channel at low water.</p>
<object data="https://plugins.example/x.swf"></object>
</article></body></html>"""


def test_the_pipeline_never_opens_a_network_connection(tmp_path, monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access from the pipeline is forbidden in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    root = tmp_path / "raw"
    root.mkdir()
    (root / "page.html").write_text(REMOTE_PAGE)
    (root / "records.jsonl").write_text(
        '{"url": "https://coastnews.example/b", "html": ' + json.dumps(REMOTE_PAGE) + "}\n")
    out = tmp_path / "clean"
    report = pipeline.run(root, out, load_config())
    assert attempts == []
    assert report.balanced and report.documents + report.duplicates == 2
    text = Archive(out).table("documents").column("text").to_pylist()[0]
    assert "six new tide gauges" in text
