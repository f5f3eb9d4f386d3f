"""Crash safety: `docclean run --engine local` killed with SIGKILL at seeded random moments (reading,
cleaning, writing Parquet, updating the dedup state, committing), then rerun to completion. After every
kill the archive must be sound, hold no doc_id twice, no partial or temporary file, and end exactly as
an uninterrupted run leaves it.

``make_news_corpus`` (also used by the concurrency tests) writes a few hundred seed-like documents:
plain-text stories with site chrome, syndicated near-copies, paywall cuts, HTML pages and a JSONL file.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from docclean.archive import Archive
from docclean.verify import verify

REPO = Path(__file__).resolve().parents[1]
NB = "\u00a0"

_WORDS = """harbour council minister budget river bridge school railway station market farmers police court
village festival museum hospital airport factory union strike election mayor storm flood drought harvest
fishermen teachers nurses workers residents tourists engineers scientists students drivers owners tenants
road tunnel port canal forest coast valley island mountain district province region capital suburb
plan report study survey contract project scheme proposal reform law rule decision vote review inquiry
prices wages taxes rents fees costs profits losses exports imports stocks reserves funds grants loans
repaired opened closed delayed approved rejected announced criticised welcomed questioned extended reduced
new old local national regional public private small large early late heavy light long short busy quiet""".split()
_SUBJECTS = ["The council", "Local residents", "The minister", "Union leaders", "The regional government",
             "Farmers in the valley", "The port authority", "Engineers", "A spokesperson for the company",
             "The mayor", "Teachers at the school", "Police officers", "Scientists at the university"]
_VERBS = ["said on Monday that", "warned on Tuesday that", "announced on Wednesday that", "told reporters that",
          "confirmed on Thursday that", "argued in a statement that", "insisted on Friday that"]


def _sentence(rng: random.Random) -> str:
    words = rng.sample(_WORDS, rng.randint(9, 16))
    return f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} the {' '.join(words[:4])} would {' '.join(words[4:])}."


def _story(rng: random.Random) -> tuple[str, list[str]]:
    title = " ".join(rng.sample(_WORDS, 6)).capitalize()
    paragraphs = [" ".join(_sentence(rng) for _ in range(rng.randint(2, 3))) for _ in range(rng.randint(4, 7))]
    return title, paragraphs


_SITES = [
    ("CoastalWire.com - News From Every Shore", "All rights reserved. Copyright CoastalWire. Reproduction prohibited."),
    ("THE MORNING HERALD ONLINE", f"Sponsor:{NB} QWIKET:{NB}Elevate your fantasy game! Interactive Sports Knowledge."),
    ("Valley Courier | Local news since 1887", "Subscribe to our newsletter for the latest local stories."),
]


def _text_page(site: int, title: str, date: str, paragraphs: list[str], cut: bool = False) -> str:
    header, footer = _SITES[site]
    lines = [header, title, f"{date} {NB}|{NB}", "back", "topic", *paragraphs]
    if cut:
        lines = lines[: 5 + 2] + ["You have 71.40% of this article left to read. The rest is for subscribers only."]
    else:
        lines += ["", "ADVERTISEMENT", "", footer]
    return "\n".join(lines) + "\n"


def _html_page(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title} | Rail Desk</title>"
            f"<meta property='og:title' content='{title}'></head><body><nav><a href='/'>Home</a> "
            f"<a href='/news'>News</a></nav><div class='share'>Share on Facebook</div><article><h1>{title}</h1>"
            f"{body}</article><footer>&copy; 2025 Rail Desk. All rights reserved.</footer></body></html>")


def make_news_corpus(root: Path, stories: int = 110, seed: int = 7, part: int | None = None) -> int:
    """Write the corpus under ``root``; returns the number of inputs written. ``part=1`` writes only the
    first batch of files (paywall cuts among them), ``part=2`` the rest (with the full stories the cuts
    came from), ``None`` both."""
    rng = random.Random(seed)
    written = 0

    def put(rel: str, text: str, in_part: int) -> None:
        nonlocal written
        if part is None or part == in_part:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written += 1

    records = []
    for i in range(stories):
        title, paragraphs = _story(rng)
        date = f"Apr {1 + i % 28}, 2025"
        in_part = 1 if i % 2 == 0 else 2
        put(f"wire/story-{i:03d}.txt", _text_page(0, title, date, paragraphs), 2 if i % 6 == 1 else in_part)
        if i % 3 == 0:  # syndicated copy with other chrome and one sentence rewritten
            copy = list(paragraphs)
            copy[1] = _sentence(rng)
            put(f"herald/story-{i:03d}.txt", _text_page(1, title, date, copy), in_part)
        if i % 6 == 1:  # a paywall cut archived first; the full story arrives later (a demotion)
            put(f"courier/cut-{i:03d}.txt", _text_page(2, title, date, paragraphs, cut=True), 1)
        if i % 5 == 0:
            put(f"web/story-{i:03d}.html", _html_page(title, paragraphs), in_part)
        if i % 4 == 3:
            records.append((1 if i % 8 == 3 else 2, {"url": f"https://feed.example/{i}", "title": title, "published": "2025-04-10",
                                      "text": "\n\n".join(paragraphs)}))
    for p in (1, 2):
        lines = [json.dumps(r) for rp, r in records if rp == p]
        if part is None or part == p:
            path = root / f"feed/records-{p}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            written += len(lines)
    put("web/empty.txt", "", 1)
    put("web/blank.txt", "  \n\n ", 2)
    return written


# --------------------------------------------------------------------------------------------------
# Running and killing the CLI
# --------------------------------------------------------------------------------------------------

CONFIG_TOML = "[run]\nbatch_size = 40\n"


def frozen_code(where: Path) -> Path:
    """A copy of the package: `python -m docclean.cli` run from ``where`` imports it before the installed
    one, so every run of a long test uses the same code even while the checkout is being edited."""
    shutil.copytree(REPO / "docclean", where / "docclean", ignore=shutil.ignore_patterns("__pycache__"))
    return where


def cli(*args: str, code: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "docclean.cli", *args], cwd=code, capture_output=True, text=True,
                          timeout=timeout)


def start_run(raw: Path, out: Path, config: Path, code: Path = REPO) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "docclean.cli", "run", str(raw), "--out", str(out),
                             "--engine", "local", "--config", str(config)],
                            cwd=code, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_to_completion(raw: Path, out: Path, config: Path, code: Path = REPO) -> str:
    done = cli("run", str(raw), "--out", str(out), "--engine", "local", "--config", str(config), code=code)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _txn_marker(out: Path, phase: str) -> bool:
    txn = out / "_txn"
    if not txn.is_dir():
        return False
    for run in txn.iterdir():
        if phase == "reading" and (run / "work" / "batches").is_dir():
            return True
        if phase == "cleaning" and (run / "work" / "batches" / "a-00000.parquet").exists():
            return True
        if phase == "finalizing" and (run / "work" / "batches" / "b-00000.parquet").exists():
            return True
        if phase == "writing_parquet" and (run / "files" / "documents").is_dir():
            return True
        if phase == "dedup_state" and (run / "files" / "_state").is_dir():
            return True
        if phase == "commit" and (run / "COMMIT.json").exists():
            return True
    return False


PHASES = ("reading", "cleaning", "finalizing", "writing_parquet", "dedup_state", "commit")


def timeline(raw: Path, out: Path, config: Path, code: Path = REPO) -> dict[str, float]:
    """An uninterrupted run, watched: seconds from start at which each phase's marker first appeared."""
    seen: dict[str, float] = {}
    t0 = time.monotonic()
    proc = start_run(raw, out, config, code)
    while proc.poll() is None:
        now = time.monotonic() - t0
        for phase in PHASES:
            if phase not in seen and _txn_marker(out, phase):
                seen[phase] = now
        time.sleep(0.002)
    seen["end"] = time.monotonic() - t0
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 0, err[-3000:]
    return seen


@dataclass
class Kill:
    phase: str
    delay: float
    landed: str = ""  # what the archive showed after the kill
    finished_first: bool = False


def kill_at(raw: Path, out: Path, config: Path, kill: Kill, code: Path = REPO, limit: float = 300) -> None:
    proc = start_run(raw, out, config, code)
    t0 = time.monotonic()
    try:
        while not _txn_marker(out, kill.phase):
            if proc.poll() is not None or time.monotonic() - t0 > limit:
                kill.finished_first = True
                return
            time.sleep(0.001)
        time.sleep(kill.delay)
        if proc.poll() is not None:
            kill.finished_first = True
            return
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    txns = [p for p in (out / "_txn").iterdir()] if (out / "_txn").is_dir() else []
    if any((p / "COMMIT.json").exists() for p in txns):
        kill.landed = "after_journal"
    elif txns:
        kill.landed = f"before_journal:{kill.phase}"
    else:
        kill.landed = "after_commit"


# --------------------------------------------------------------------------------------------------
# What an archive holds, and what it must not
# --------------------------------------------------------------------------------------------------


def contents(out: Path) -> dict[str, dict]:
    archive = Archive(out)
    docs = archive.table("documents", columns=["doc_id", "text", "title", "truncated"]).to_pylist()
    dups = archive.table("duplicates", columns=["doc_id", "duplicate_of"]).to_pylist()
    rejects = archive.table("rejects", columns=["doc_id", "reason"]).to_pylist()
    return {
        "documents": {r["doc_id"]: (r["text"], r["title"], r["truncated"]) for r in docs},
        "duplicates": {r["doc_id"]: r["duplicate_of"] for r in dups},
        "rejects": {r["doc_id"]: r["reason"] for r in rejects},
    }


def leftovers(out: Path) -> list[str]:
    bad = []
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if path.name.endswith(".tmp") or rel.startswith("_txn/") or path.name.startswith("."):
            bad.append(rel)
    return bad


def assert_sound_and_equal(out: Path, reference: dict[str, dict], code: Path = REPO) -> tuple[int, int]:
    """(doc_ids checked, doc_ids lost) once the archive is proven sound and equal to the reference."""
    done = cli("verify", str(out), code=code)
    assert done.returncode == 0 and "archive sound" in done.stdout, done.stdout + done.stderr
    assert leftovers(out) == []
    got = contents(out)
    expected_ids = {i for table in reference.values() for i in table}
    lost = len(expected_ids - {i for table in got.values() for i in table})
    assert lost == 0, f"{lost} documents lost"
    ids = [i for table in got.values() for i in table]
    assert len(ids) == len(set(ids)), "a doc_id is archived twice"
    for table in ("documents", "duplicates", "rejects"):
        assert got[table] == reference[table], f"{table} differ from the uninterrupted run"
    for path in Archive(out).files("documents") + Archive(out).files("duplicates"):
        pq.read_table(path)  # every file readable in full
    return len(expected_ids), lost


@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    code = frozen_code(base / "code")
    raw = base / "raw"
    config = base / "docclean.toml"
    config.write_text(CONFIG_TOML)
    part1 = make_news_corpus(raw, part=1)
    base_archive = base / "base"
    run_to_completion(raw, base_archive, config, code)
    part2 = make_news_corpus(raw, part=2)
    ref_fresh, ref_incremental = base / "ref_fresh", base / "ref_incremental"
    shutil.copytree(base_archive, ref_incremental)
    times = timeline(raw, ref_fresh, config, code)
    run_to_completion(raw, ref_incremental, config, code)
    return {"raw": raw, "config": config, "inputs": part1 + part2, "base": base_archive, "times": times,
            "reference": {"fresh": contents(ref_fresh), "incremental": contents(ref_incremental)},
            "tmp": base, "code": code}


def test_the_news_corpus_is_what_the_crash_tests_need(tmp_path):
    n = make_news_corpus(tmp_path / "raw")
    assert 200 <= n <= 400
    assert n == make_news_corpus(tmp_path / "a", part=1) + make_news_corpus(tmp_path / "b", part=2)
    assert (tmp_path / "raw" / "courier").is_dir() and (tmp_path / "raw" / "herald").is_dir()


@pytest.mark.slow
def test_reference_runs_dedup_and_demote(crash_setup):
    ref = crash_setup["reference"]
    assert ref["fresh"]["documents"] and ref["fresh"]["duplicates"]
    assert ref["fresh"]["documents"].keys() == ref["incremental"]["documents"].keys()
    total = sum(len(t) for t in ref["fresh"].values())
    assert total == crash_setup["inputs"]
    runs = Archive(crash_setup["tmp"] / "ref_incremental").table("runs").to_pylist()
    assert sum(r["demoted"] for r in runs) > 0  # the incremental reference exercises file rewrites
    # The comparison after each kill means something only if an uninterrupted run is deterministic.
    again = crash_setup["tmp"] / "ref_again"
    run_to_completion(crash_setup["raw"], again, crash_setup["config"], crash_setup["code"])
    assert contents(again) == ref["fresh"]
    shutil.rmtree(again)


KILLS = 20


@pytest.mark.slow
def test_sigkill_at_twenty_random_moments_loses_nothing(crash_setup):
    raw, config, times, code = crash_setup["raw"], crash_setup["config"], crash_setup["times"], crash_setup["code"]
    rng = random.Random(20250814)
    # Each phase's window in the uninterrupted run; a kill waits for the phase's marker, then a random
    # share of that window.
    order = [p for p in PHASES if p in times] + ["end"]
    windows = {p: max(0.0, times[order[i + 1]] - times[p]) for i, p in enumerate(order[:-1])}
    kills = []
    for i in range(KILLS):
        phase = PHASES[i % len(PHASES)]
        window = windows.get(phase, 0.0)
        kills.append(Kill(phase, rng.uniform(0, 0.9 * window) if phase != "commit" else rng.uniform(0, 0.003)))

    survived = checked = lost = 0
    for i, kill in enumerate(kills):
        mode = "fresh" if i % 2 == 0 else "incremental"
        out = crash_setup["tmp"] / f"trial-{i:02d}"
        for attempt in range(4):
            if mode == "incremental":
                shutil.copytree(crash_setup["base"], out)
            kill_at(raw, out, config, kill, code)
            if not kill.finished_first or attempt == 3:
                break
            # The run was quicker than the timeline measured (another load on the machine then): aim earlier.
            shutil.rmtree(out)
            kill.delay /= 4
            kill.finished_first = False
        if i % 4 == 1 and kill.landed.startswith(("before", "after_journal")):
            # `docclean verify` sees the interrupted run; --repair finishes or drops it.
            seen = cli("verify", str(out), code=code)
            assert seen.returncode == 1 and "interrupted runs" in seen.stdout, seen.stdout
            repaired = cli("verify", "--repair", str(out), code=code)
            assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        run_to_completion(raw, out, config, code)
        n, missing = assert_sound_and_equal(out, crash_setup["reference"][mode], code)
        checked, lost = checked + n, lost + missing
        survived += not kill.finished_first
        shutil.rmtree(out)

    landed = {}
    for k in kills:
        key = "finished before the kill" if k.finished_first else k.landed
        landed[key] = landed.get(key, 0) + 1
    print(f"\ninputs {crash_setup['inputs']} per run; phase timeline {json.dumps({k: round(v, 2) for k, v in times.items()})}")
    print(f"kills {len(kills)}: survived {survived}, landed {json.dumps(landed, sort_keys=True)}; "
          f"crashes 0, documents lost {lost} of {checked} checked")
    assert survived >= KILLS - 2  # a kill aimed at the last milliseconds may come after the run ended
    assert sum(k.landed.startswith("before_journal") for k in kills) >= 10
