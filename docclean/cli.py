"""The `docclean` command. Imports are lazy so that `docclean --help` and `inspect` start fast."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import load_config

    config = load_config(args.config)  # validate before starting anything
    if args.engine == "local":
        from . import pipeline

        report = pipeline.run(args.raw, args.out, config, log=lambda m: print(m, file=sys.stderr))
    else:
        if not args.ephemeral:
            from flows import server

            server.ensure_server(log=lambda m: print(m, file=sys.stderr))
        else:
            os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        stop = threading.Event()
        if not args.ephemeral and "PREFECT_API_URL" in os.environ:
            from flows import server

            def heartbeat() -> None:  # keeps the reusable local API alive during a long run
                while not stop.wait(30):
                    server.touch()

            threading.Thread(target=heartbeat, daemon=True).start()
        from flows.clean import clean_flow

        try:
            result = clean_flow(input=str(args.raw), output=str(args.out), config_path=args.config)
        finally:
            stop.set()
        print(
            f"run {result['run_id']}: {result['inputs']} inputs -> {result['documents']} documents, "
            f"{result['duplicates']} duplicates, {result['rejects']} rejects, {result['skipped']} already archived"
        )
        return 0
    print(
        f"run {report.run_id}: {report.inputs} inputs -> {report.documents} documents, {report.duplicates} "
        f"duplicates, {report.rejects} rejects, {report.skipped} already archived"
    )
    return 0


def _fmt_counts(counter: Counter | dict, indent: str = "  ") -> str:
    items = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return "\n".join(f"{indent}{v:>7}  {k}" for k, v in items) or f"{indent}(none)"


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .archive import Archive

    archive = Archive(args.archive)
    if not archive.root.exists():
        print(f"no archive at {args.archive}", file=sys.stderr)
        return 2
    docs = archive.table("documents", columns=["doc_id", "language", "truncated", "removed", "repairs", "publisher", "chars"])
    rejects = archive.table("rejects", columns=["reason"])
    dups = archive.table("duplicates", columns=["method"])
    runs = archive.table("runs", columns=["run_id"])
    removals = Counter()
    for removed in docs.column("removed").to_pylist():
        for r in removed or ():
            removals[r["rule"]] += 1
    repairs = Counter()
    for reps in docs.column("repairs").to_pylist():
        for r in reps or ():
            repairs[f"{r['original']} -> {r['replacement']}"] += 1
    print(f"archive {archive.root}: {runs.num_rows} runs")
    print(f"documents: {docs.num_rows} ({sum(1 for t in docs.column('truncated').to_pylist() if t)} truncated, "
          f"{sum(docs.column('chars').to_pylist() or [0])} characters)")
    print(f"duplicates: {dups.num_rows}")
    print(_fmt_counts(Counter(dups.column("method").to_pylist())))
    print(f"rejects: {rejects.num_rows}")
    print(_fmt_counts(Counter(rejects.column("reason").to_pylist())))
    print("languages:")
    print(_fmt_counts(Counter(docs.column("language").to_pylist())))
    print("removals by rule:")
    print(_fmt_counts(removals))
    print("repairs:")
    print(_fmt_counts(repairs))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    import pyarrow.compute as pc

    from .archive import Archive

    archive = Archive(args.archive)
    for table_name in ("documents", "duplicates", "rejects"):
        ds = archive.dataset(table_name)
        t = ds.to_table(filter=pc.field("doc_id") == args.doc_id)
        if t.num_rows:
            row = t.to_pylist()[0]
            break
    else:
        print(f"no document {args.doc_id} in {args.archive}", file=sys.stderr)
        return 2
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    red, green, dim, bold, reset = ("\x1b[31m", "\x1b[32m", "\x1b[2m", "\x1b[1m", "\x1b[0m") if color else ("",) * 5
    print(f"{bold}{row['doc_id']}{reset} ({table_name}) from {row['source_path']} sha256 {row['source_sha256'][:16]}...")
    for key in ("url", "title", "published", "author", "publisher", "dateline", "language", "language_score",
                "truncated", "duplicate_of", "similarity", "method", "reason", "detail"):
        if row.get(key) not in (None, ""):
            print(f"  {key}: {row[key]}")
    print()
    print(row.get("text") or "")
    if row.get("removed"):
        print(f"\n{bold}removed ({len(row['removed'])}):{reset}")
        for r in row["removed"]:
            print(f"  {red}- [{r['rule']}]{reset} {dim}{r['text'][:300]}{reset}")
    if row.get("repairs"):
        print(f"\n{bold}repairs ({len(row['repairs'])}):{reset}")
        for r in row["repairs"]:
            print(f"  {green}~ [{r['rule']}]{reset} {r['original']!r} -> {r['replacement']!r} at {r['offset']} (confidence {r['confidence']:.2f})")
    if row.get("fixes"):
        print(f"\n{bold}normalization fixes:{reset}")
        for f in row["fixes"]:
            print(f"  [{f['rule']}] {f['detail']}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify

    result = verify(Path(args.archive), repair=args.repair)
    for line in result.messages:
        print(line)
    print("archive sound" if result.sound else "archive NOT sound")
    return 0 if result.sound else 1


def _cmd_repair(args: argparse.Namespace) -> int:
    from . import repair

    argv = ["--explain"] if args.explain else []
    return repair.main(argv)


def _cmd_server(args: argparse.Namespace) -> int:
    from flows import server

    if args.action == "stop":
        print("stopped" if server.stop() else "no local Prefect API was running")
    elif args.action == "start":
        print(server.ensure_server())
    else:
        state = server.read_state()
        print(f"running at {state['url']} (pid {state['pid']})" if state else "not running")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="docclean", description="Clean, deduplicate and archive scraped web and news text.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="clean a folder of raw documents into a Parquet archive")
    r.add_argument("raw", nargs="?", default="raw", type=Path, help="input folder (default: raw/)")
    r.add_argument("--out", default="clean", type=Path, help="archive folder (default: clean/)")
    r.add_argument("--config", default=None, help="TOML configuration file (see README)")
    r.add_argument("--engine", choices=["prefect", "local"], default="prefect",
                   help="prefect (default): a Prefect flow run; local: the same pipeline without Prefect")
    r.add_argument("--ephemeral", action="store_true",
                   help="use Prefect's own temporary server instead of the reusable local API (slower start)")
    r.set_defaults(func=_cmd_run)

    i = sub.add_parser("inspect", help="summarize an archive")
    i.add_argument("archive", type=Path)
    i.set_defaults(func=_cmd_inspect)

    s = sub.add_parser("show", help="one document, with what was removed or repaired and why")
    s.add_argument("archive", type=Path)
    s.add_argument("doc_id")
    s.set_defaults(func=_cmd_show)

    v = sub.add_parser("verify", help="check that an archive is sound (readable, consistent, no leftovers)")
    v.add_argument("archive", type=Path)
    v.add_argument("--repair", action="store_true", help="finish or roll back interrupted runs, drop temp files")
    v.set_defaults(func=_cmd_verify)

    rp = sub.add_parser("repair", help="repair spinner-garbled text from stdin to stdout")
    rp.add_argument("--explain", action="store_true", help="print each repair to stderr")
    rp.set_defaults(func=_cmd_repair)

    sv = sub.add_parser("server", help="the reusable local Prefect API that `docclean run` starts")
    sv.add_argument("action", choices=["status", "start", "stop"])
    sv.set_defaults(func=_cmd_server)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
