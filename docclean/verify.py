"""`docclean verify`: is an archive sound? Every Parquet file readable, no doc_id archived twice, the runs
table consistent with what the tables hold, no interrupted run or temporary file left behind."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from .archive import SCHEMAS, Archive, temporary_files


@dataclass
class VerifyResult:
    sound: bool = True
    messages: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def problem(self, msg: str) -> None:
        self.sound = False
        self.messages.append(f"PROBLEM: {msg}")


def _files_named_in(manifest) -> list[str]:
    if isinstance(manifest, dict):
        return [name for value in manifest.values() for name in _files_named_in(value)]
    if isinstance(manifest, list):
        return [name for value in manifest for name in _files_named_in(value)]
    return [manifest] if isinstance(manifest, str) and manifest.endswith(".parquet") else []


def _check_state_manifests(state: Path, result: VerifyResult) -> None:
    """What later runs learn from (dedup signatures, chrome line counts) is listed in a manifest per state
    folder: every part it lists must be there and readable, or later runs would miss copies."""
    for manifest_path in sorted(state.glob("*/manifest.json")) if state.exists() else []:
        rel = manifest_path.relative_to(state.parent).as_posix()
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            result.problem(f"{rel} is unreadable: {exc}")
            continue
        for name in _files_named_in(manifest):
            part = manifest_path.parent / name
            try:
                pq.read_metadata(part)
            except Exception as exc:  # missing or truncated part
                result.problem(f"{rel} lists {name}, which is missing or unreadable: {type(exc).__name__}")


def verify(root: Path, repair: bool = False) -> VerifyResult:
    archive = Archive(root)
    result = VerifyResult()
    if not archive.root.exists():
        result.problem(f"no archive at {root}")
        return result
    if repair:
        with archive.lock(timeout=60):
            done = archive.recover()
        result.messages.append(f"repair: {done}")

    pending = sorted(p.name for p in archive.txn_dir.iterdir()) if archive.txn_dir.exists() else []
    if pending:
        result.problem(f"interrupted runs not yet recovered: {', '.join(pending)} (run `docclean verify --repair`)")
    leftovers = temporary_files(archive.root)
    if leftovers:
        folders = sorted({p.parent.relative_to(archive.root).as_posix() + "/" for p in leftovers})
        result.problem(f"{len(leftovers)} temporary files in {', '.join(folders)} (run `docclean verify --repair`)")
    if not pending:
        _check_state_manifests(archive.root / "_state", result)

    seen: Counter = Counter()
    for name in ("documents", "duplicates", "rejects", "runs"):
        rows = 0
        for path in archive.files(name):
            try:
                table = pq.read_table(path)
            except Exception as exc:  # any unreadable file makes the archive unsound
                result.problem(f"{path.relative_to(archive.root)} is unreadable: {exc}")
                continue
            missing = set(SCHEMAS[name].names) - set(table.column_names)
            if missing:
                result.problem(f"{path.relative_to(archive.root)} lacks columns {sorted(missing)}")
            rows += table.num_rows
            if name != "runs":
                seen.update(table.column("doc_id").to_pylist())
        result.counts[name] = rows
    twice = [d for d, n in seen.items() if n > 1]
    if twice:
        result.problem(f"{len(twice)} doc_ids archived more than once, e.g. {twice[:3]}")

    if archive.files("runs") and not pending:
        runs = archive.table("runs", columns=["documents", "duplicates", "rejects", "demoted"])
        expected = sum(runs.column("documents").to_pylist()) - sum(runs.column("demoted").to_pylist())
        if expected != result.counts.get("documents", 0):
            result.problem(f"runs table says {expected} kept documents, documents/ holds {result.counts.get('documents', 0)}")
        if sum(runs.column("rejects").to_pylist()) != result.counts.get("rejects", 0):
            result.problem("runs table and rejects/ disagree on the number of rejects")
    result.messages.insert(0, "counts: " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))
    return result
