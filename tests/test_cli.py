"""The people-facing commands: inspect (with filters), show, diff, export, report."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from conftest import write_corpus
from docclean import pipeline
from docclean.cli import main
from docclean.config import load_config
from docclean.inspect import Filters, Style, diff_lines, mark_repairs, parse_since, summary
from docclean.report import report_from_archive, report_path


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """One archive of the fixture corpus, shared by the read-only tests of this module."""
    root = tmp_path_factory.mktemp("cli")
    write_corpus(root / "raw")
    pipeline.run(root / "raw", root / "clean", load_config())
    return root / "clean"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _doc_id(archive: Path, source_path: str, table: str = "documents") -> str:
    from docclean import open_archive

    rows = open_archive(archive, table).to_table(columns=["doc_id", "source_path"]).to_pylist()
    return next(r["doc_id"] for r in rows if r["source_path"] == source_path)


# ------------------------------------------------------------------------------------------ inspect


def test_inspect_summarizes_the_archive(archive, capsys):
    code, out, _ = _run(capsys, "inspect", str(archive))
    assert code == 0
    assert "documents: 5 (1 truncated" in out
    assert "duplicates: 1" in out and "rejects: 2" in out
    assert "advertisement_marker" in out and "latest runs:" in out


def test_inspect_filters_by_language_publisher_and_time(archive):
    de = summary(archive, Filters(languages=("de",)), out=io.StringIO())
    assert de["documents"] == 1 and de["languages"] == {"de": 1}
    en_fr = summary(archive, Filters(languages=("en", "fr")), out=io.StringIO())
    assert en_fr["documents"] == 4
    publisher = summary(archive, Filters(publisher="rail desk"), out=io.StringIO())
    assert publisher["documents"] == 1 and publisher["rejects"] == 0  # rejects have no publisher
    future = summary(archive, Filters(since=parse_since("2999-01-01")), out=io.StringIO())
    assert future["documents"] == future["rejects"] == future["runs"] == 0
    recent = summary(archive, Filters(since=parse_since("1h")), out=io.StringIO())
    assert recent["documents"] == 5 and recent["runs"] == 1


def test_inspect_cli_filters_and_bad_input(archive, capsys):
    code, out, _ = _run(capsys, "inspect", str(archive), "--language", "de", "--since", "7d")
    assert code == 0 and "documents: 1 " in out and "language de" in out
    code, _, err = _run(capsys, "inspect", str(archive), "--since", "last tuesday")
    assert code == 2 and "--since" in err
    code, _, err = _run(capsys, "inspect", str(archive.parent / "nowhere"))
    assert code == 2 and "no archive" in err


def test_parse_since_accepts_dates_times_and_ages():
    from datetime import datetime, timezone

    now = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2026-03-01", now) == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert parse_since("2026-03-01T08:30+01:00", now).hour == 8
    assert parse_since("24h", now) == datetime(2026, 3, 9, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2w", now) == datetime(2026, 2, 24, 12, 0, tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------------ show


def test_show_prints_text_then_removals_with_rules(archive, capsys):
    doc_id = _doc_id(archive, "wire/fishermen.txt")
    code, out, _ = _run(capsys, "show", str(archive), doc_id[:8])  # a unique prefix is enough
    assert code == 0 and "\x1b[" not in out  # no colour when not on a terminal
    text_at, removed_at = out.index("Hundreds of fishing boats"), out.index("removed (")
    assert text_at < removed_at
    assert "- [advertisement_marker] ADVERTISEMENT" in out
    assert "- [related_headlines] " in out


def test_show_colours_on_request_and_plain_prints_only_the_text(archive, capsys):
    doc_id = _doc_id(archive, "wire/fishermen.txt")
    _, coloured, _ = _run(capsys, "show", str(archive), doc_id, "--color", "always")
    assert "\x1b[31m- [advertisement_marker]" in coloured
    _, plain, _ = _run(capsys, "show", str(archive), doc_id, "--plain")
    assert plain.startswith("Hundreds of fishing boats") and "removed (" not in plain


def test_show_finds_duplicates_and_rejects_too(archive, capsys):
    code, out, _ = _run(capsys, "show", str(archive), _doc_id(archive, "web/fishermen_copy.txt", "duplicates"))
    assert code == 0 and "(duplicates)" in out and "duplicate_of:" in out
    code, out, _ = _run(capsys, "show", str(archive), _doc_id(archive, "web/empty.txt", "rejects"))
    assert code == 0 and "reason: empty_file" in out
    code, _, err = _run(capsys, "show", str(archive), "0000000000000000000")
    assert code == 2 and "no document" in err


def test_repairs_are_marked_in_place():
    text = "The ministry said it intends to act. Officials want an independent review."
    repairs = [{"rule": "spinner_inword", "original": "intconcludes", "replacement": "intends", "offset": 21},
               {"rule": "spinner_inword", "original": "indepconcludeent", "replacement": "independent", "offset": 55},
               {"rule": "spinner_phrase", "original": "gone", "replacement": "vanished", "offset": 90}]  # not found
    assert mark_repairs(text, repairs, Style()) == (
        "The ministry said it {intconcludes->intends} to act. Officials want an {indepconcludeent->independent} review.")
    coloured = mark_repairs(text, repairs, Style.for_stream(io.StringIO(), force=True))
    assert "\x1b[9mintconcludes\x1b[0m\x1b[32mintends" in coloured


# ------------------------------------------------------------------------------------------ diff


def test_diff_shows_raw_lines_removed_with_their_rule(archive, capsys):
    code, out, _ = _run(capsys, "diff", str(archive), _doc_id(archive, "wire/fishermen.txt"))
    assert code == 0
    assert "- ADVERTISEMENT  [advertisement_marker]" in out
    assert "- Storm season starts early in the North Atlantic  [related_headlines]" in out
    assert "  Hundreds of fishing boats blocked the harbour" in out  # kept lines are unmarked


def test_diff_of_an_html_page_compares_its_visible_text(archive, capsys):
    code, out, _ = _run(capsys, "diff", str(archive), _doc_id(archive, "web/night_trains.html"))
    assert code == 0
    assert "- Share on Facebook" in out and "  Ticket sales open in October" in out[out.index("+++"):]


def test_diff_says_so_when_the_source_changed_or_is_gone(corpus, tmp_path, capsys):
    out = tmp_path / "clean"
    pipeline.run(corpus, out, load_config())
    doc_id = _doc_id(out, "wire/fishermen.txt")
    (corpus / "wire" / "fishermen.txt").write_text("Completely different text now.\n", encoding="utf-8")
    code, text, _ = _run(capsys, "diff", str(out), doc_id)
    assert code == 0 and "CHANGED since it was archived" in text
    shutil.rmtree(corpus / "wire")
    code, text, _ = _run(capsys, "diff", str(out), doc_id)
    assert code == 1 and "no longer there" in text and "docclean show" in text


def test_diff_lines_matches_despite_normalization():
    raw = "Caf\u00e9\u00a0 society\nSponsor: ACME\n\nBody line stays."
    cleaned = "Café society\nBody line stays."
    ops = list(diff_lines(raw, cleaned, [{"rule": "sponsor_line", "text": "Sponsor: ACME"}]))
    assert ops == [(" ", "Café society", ""), ("-", "Sponsor: ACME", "sponsor_line"), (" ", "Body line stays.", "")]


# ------------------------------------------------------------------------------------------ export


def test_export_jsonl_to_stdout(archive, capsys):
    code, out, err = _run(capsys, "export", str(archive), "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 5 and "exported 5 documents rows" in err
    wire = next(r for r in rows if r["source_path"] == "wire/fishermen.txt")
    assert wire["published"].startswith("2025-04-09") and isinstance(wire["removed"], list)


def test_export_csv_to_a_file_with_filters_and_columns(archive, tmp_path, capsys):
    target = tmp_path / "en.csv"
    code, _, _ = _run(capsys, "export", str(archive), "--out", str(target), "--language", "en",
                      "--columns", "doc_id,source_path,language,removed")
    assert code == 0
    rows = list(csv.DictReader(target.open(encoding="utf-8", newline="")))
    assert len(rows) == 4 and set(rows[0]) == {"doc_id", "source_path", "language", "removed"}
    assert {r["language"] for r in rows} == {"en"}
    assert all(isinstance(json.loads(r["removed"]), list) for r in rows)  # nested columns as JSON


def test_export_rejects_keeps_raw_bytes_as_base64(archive, capsys):
    code, out, _ = _run(capsys, "export", str(archive), "--table", "rejects")
    rows = [json.loads(line) for line in out.splitlines()]
    blank = next(r for r in rows if r["source_path"] == "web/crier.jsonl#2")
    assert b'"text": "   "' in base64.b64decode(blank["raw"])
    code, _, err = _run(capsys, "export", str(archive), "--columns", "doc_id,nope")
    assert code == 2 and "nope" in err


# ------------------------------------------------------------------------------------------ report


def test_report_command_redraws_the_latest_run(archive, capsys):
    from docclean import open_archive

    (run_id,) = open_archive(archive, "runs").to_table(columns=["run_id"]).column("run_id").to_pylist()
    report_path(archive, run_id).unlink()
    code, out, _ = _run(capsys, "report", str(archive))
    assert code == 0 and out.strip() == str(report_path(archive, run_id))
    rebuilt = report_from_archive(archive)
    assert (rebuilt.inputs, rebuilt.documents, rebuilt.duplicates, rebuilt.rejects) == (8, 5, 1, 2)
    assert rebuilt.truncated == 1 and rebuilt.top_removed_lines
    code, _, err = _run(capsys, "report", str(archive), "no-such-run")
    assert code == 2 and "no run" in err


def test_the_command_keeps_its_exit_codes_when_it_skips_teardown(archive, tmp_path):
    """`docclean` ends with os._exit after Python's exit handlers (no teardown): codes and output intact."""
    import subprocess
    import sys

    def cli(*argv):
        return subprocess.run([sys.executable, "-m", "docclean.cli", *argv], capture_output=True, text=True, timeout=120)

    assert cli("--help").returncode == 0
    bad = cli("inspect", str(tmp_path / "nowhere"))
    assert bad.returncode == 2 and "no archive at" in bad.stderr
    assert cli("run", "--no-such-flag").returncode == 2
    shown = cli("export", str(archive), "--format", "jsonl")
    assert shown.returncode == 0
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert rows and all(r["doc_id"] for r in rows)  # every line flushed before the process ended


def test_run_takes_its_process_count_from_the_command_line(capsys):
    import os

    from docclean.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["run", "--workers", "3"]).workers == 3
    assert parse(["run", "--workers", "auto"]).workers == len(os.sched_getaffinity(0))
    assert parse(["run"]).workers is None  # the configuration's [run] workers then
    for bad in ("0", "many"):
        with pytest.raises(SystemExit):
            parse(["run", "--workers", bad])
    assert "--workers" in capsys.readouterr().err


@pytest.mark.slow
def test_run_with_workers_from_the_command_line_records_them(tmp_path, capsys):
    from docclean import open_archive

    write_corpus(tmp_path / "raw")
    config = tmp_path / "docclean.toml"
    config.write_text("[run]\nbatch_size = 3\n")  # several batches, so two processes share them
    code, _, err = _run(capsys, "run", str(tmp_path / "raw"), "--out", str(tmp_path / "clean"), "--engine", "local",
                        "--config", str(config), "--workers", "2")
    assert code == 0 and "batches run in 2 processes" in err
    recorded = open_archive(tmp_path / "clean", "runs").to_table(columns=["config"]).column("config")[0].as_py()
    assert json.loads(recorded)["run"] == {**json.loads(recorded)["run"], "workers": 2, "batch_size": 3}
