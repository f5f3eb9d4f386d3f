"""The `docclean` command. Imports are lazy so that `docclean --help` and `inspect` start fast."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import load_config

    overrides = {"run": {"workers": args.workers}} if args.workers is not None else {}
    config = load_config(args.config, **overrides)  # validate before starting anything
    if args.cluster and (args.engine == "local" or args.ephemeral):
        # --ephemeral would make every Dask worker start a temporary Prefect server of its own.
        print("--cluster runs through the Prefect flow on a shared Prefect API: it cannot be combined with "
              "--engine local or --ephemeral", file=sys.stderr)
        return 2
    if args.engine == "local":
        from . import pipeline, remote

        log = lambda m: print(m, file=sys.stderr)  # noqa: E731
        if remote.is_remote(args.out):  # the run works on a local mirror, then publishes to the bucket
            report = remote.run(args.out, lambda root: pipeline.run(args.raw, root, config, log=log), config.archive, log)
        else:
            report = pipeline.run(args.raw, args.out, config, log=log)
    else:
        ready = lambda: None  # noqa: E731
        if not args.ephemeral:
            from flows import server

            # A new local API boots while this process imports Prefect and the stages (saves seconds cold).
            _, ready = server.ensure_server(log=lambda m: print(m, file=sys.stderr), wait=False)
        else:  # Prefect reads its settings at import: set this first
            os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        from flows.clean import clean_flow
        from . import boilerplate, chrome, dedup, extract, read, repair  # noqa: F401  (warm, same reason)

        ready()
        if not args.ephemeral:
            if args.cluster:
                from flows import dask_cluster as dask_support

                try:
                    dask_support.check_reachable_api(os.environ["PREFECT_API_URL"], args.cluster)
                except dask_support.ClusterSetupError as exc:
                    print(exc, file=sys.stderr)
                    return 2
        stop = threading.Event()
        if not args.ephemeral and "PREFECT_API_URL" in os.environ:
            from flows import server

            def heartbeat() -> None:  # keeps the reusable local API alive during a long run
                while not stop.wait(30):
                    server.touch()

            threading.Thread(target=heartbeat, daemon=True).start()
        try:
            result = clean_flow(input=str(args.raw), output=str(args.out), config_path=args.config,
                                cluster=args.cluster, workers=args.workers)
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


def _filters(args: argparse.Namespace):
    from .inspect import Filters, parse_since

    languages = tuple(x.strip() for v in (args.language or []) for x in v.split(",") if x.strip())
    return Filters(since=parse_since(args.since) if args.since else None, languages=languages,
                   publisher=args.publisher)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import summary

    summary(args.archive, _filters(args))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from .inspect import show

    return show(args.archive, args.doc_id, color=_color(args), plain=args.plain)


def _cmd_diff(args: argparse.Namespace) -> int:
    from .inspect import diff

    return diff(args.archive, args.doc_id, color=_color(args))


def _cmd_export(args: argparse.Namespace) -> int:
    from .archive import write_bytes_atomic
    from .inspect import export

    fmt = args.format or (Path(args.out).suffix.lstrip(".") if args.out else "jsonl")
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    if args.out is None or str(args.out) == "-":
        rows = export(args.archive, fmt, sys.stdout, args.table, _filters(args), columns)
    else:
        import io

        buffer = io.StringIO(newline="")
        rows = export(args.archive, fmt, buffer, args.table, _filters(args), columns)
        write_bytes_atomic(buffer.getvalue().encode("utf-8"), Path(args.out))  # all or nothing at --out
    print(f"exported {rows} {args.table} rows as {fmt}" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import report_from_archive, write_run_report

    report = report_from_archive(args.archive, args.run_id)
    print(write_run_report(args.archive, report))
    return 0


def _cmd_compact(args: argparse.Namespace) -> int:
    from flows.maintenance import compact_archive

    result = compact_archive(args.archive, target_rows=args.target_rows, dry_run=args.dry_run, config_path=args.config,
                             log=lambda m: print(m, file=sys.stderr))
    for name, t in result.tables.items():
        print(f"{name}: {t.files_before} files -> {t.files_after} ({t.rows} rows)")
    print(f"{'would remove' if args.dry_run else 'removed'} {result.files_removed} files")
    return 0


# `docclean serve` and the `hourly` deployment of prefect.yaml run on the same schedule (a test checks).
SERVE_CRON = "0 * * * *"
SERVE_TIMEZONE = "UTC"


def serve_deployment(args: argparse.Namespace):
    """The deployment `docclean serve` runs: the cleaning flow with these parameters, on the schedule."""
    from prefect.schedules import Cron

    from flows.clean import clean_flow

    return clean_flow.to_deployment(
        name=args.name, parameters={"input": str(args.raw), "output": str(args.out), "config_path": args.config,
                                    "workers": args.workers},
        schedules=[Cron(args.cron, timezone=args.timezone)], concurrency_limit=1,
        description="docclean serve: the cleaning flow on a schedule, in one process",
    )


def _start_prefect_server(log_path: Path):
    """A full Prefect server (API, UI and scheduler: a served schedule needs the scheduler, which the
    reusable local API of `docclean run` does not run) for the life of `docclean serve`."""
    import subprocess
    import urllib.request

    from flows.server import _free_port

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"starting a Prefect server on {url} (UI: http://127.0.0.1:{port}); it stops with this command",
          file=sys.stderr)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with code {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            pass
        time.sleep(0.5)
    _stop_process_group(proc)
    raise RuntimeError(f"prefect server did not answer within 240 s; see {log_path}")


def _stop_process_group(proc) -> None:
    import signal
    import subprocess

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _cmd_serve(args: argparse.Namespace) -> int:
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    from flows.server import prefect_home

    url = get_current_settings().api.url  # PREFECT_API_URL from the environment or the Prefect profile
    server = None
    if not url:
        server, url = _start_prefect_server(prefect_home() / "docclean-serve-server.log")
        os.environ["PREFECT_API_URL"] = url  # for the flow-run processes too
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            from prefect import serve
            from prefect.deployments import run_deployment

            deployment = serve_deployment(args)
            if args.run_now:
                deployment.apply()
                run = run_deployment(f"{deployment.flow_name}/{deployment.name}", timeout=0)
                print(f"started flow run {run.name} ({run.id})", file=sys.stderr)
            serve(deployment)  # blocks; Ctrl-C stops it and pauses the schedule
    finally:
        if server is not None:
            _stop_process_group(server)
    return 0


def _color(args: argparse.Namespace) -> bool | None:
    return {"always": True, "never": False}.get(args.color)


def _cmd_verify(args: argparse.Namespace) -> int:
    from . import remote
    from .verify import verify

    if remote.is_remote(args.archive):
        from .config import load_config

        result = remote.verify(args.archive, repair=args.repair, archive_config=load_config(args.config).archive,
                               log=lambda m: print(m, file=sys.stderr))
    else:
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


def _workers(value: str) -> int:
    """``--workers``: a count, or ``auto`` for the cores this process may run on."""
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of processes or 'auto', got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"at least 1 process, got {count}")
    return count


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="docclean", description="Clean, deduplicate and archive scraped web and news text.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="clean a folder of raw documents into a Parquet archive")
    r.add_argument("raw", nargs="?", default="raw", type=Path, help="input folder (default: raw/)")
    r.add_argument("--out", default="clean", help="archive folder, or s3://bucket/prefix (default: clean/)")
    r.add_argument("--config", default=None, help="TOML configuration file (see README)")
    r.add_argument("--engine", choices=["prefect", "local"], default="prefect",
                   help="prefect (default): a Prefect flow run; local: the same pipeline without Prefect")
    r.add_argument("--ephemeral", action="store_true",
                   help="use Prefect's own temporary server instead of the reusable local API (slower start)")
    r.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="run the batches on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786); "
                   "needs PREFECT_API_URL reachable from the workers and input/archive on shared storage")
    r.add_argument("--workers", type=_workers, default=None, metavar="N|auto",
                   help="processes for batch work on this machine (overrides [run] workers; auto: one per "
                   "usable core)")
    r.set_defaults(func=_cmd_run)

    def add_filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--since", help="only what was archived since: 2026-01-05, 2026-01-05T09:00, or 24h, 7d")
        parser.add_argument("--language", action="append", help="only these languages (repeat, or en,fr)")
        parser.add_argument("--publisher", help="only documents whose publisher contains this (any case)")

    def add_color(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                            help="colour (auto: on a terminal, unless NO_COLOR is set)")

    i = sub.add_parser("inspect", help="summarize an archive")
    i.add_argument("archive", help="archive folder, or s3://bucket/prefix")
    add_filters(i)
    i.set_defaults(func=_cmd_inspect)

    s = sub.add_parser("show", help="one document, with what was removed or repaired and why")
    s.add_argument("archive", help="archive folder, or s3://bucket/prefix")
    s.add_argument("doc_id", help="a doc_id (or a unique prefix of at least 6 characters)")
    s.add_argument("--plain", action="store_true", help="print the cleaned text only, unmarked")
    add_color(s)
    s.set_defaults(func=_cmd_show)

    d = sub.add_parser("diff", help="one document's raw source against its cleaned text")
    d.add_argument("archive", type=Path)
    d.add_argument("doc_id", help="a doc_id (or a unique prefix of at least 6 characters)")
    add_color(d)
    d.set_defaults(func=_cmd_diff)

    e = sub.add_parser("export", help="write a table of the archive as JSON Lines or CSV")
    e.add_argument("archive", help="archive folder, or s3://bucket/prefix")
    e.add_argument("--format", choices=["jsonl", "csv"], default=None,
                   help="jsonl or csv (default: from the --out suffix, else jsonl)")
    e.add_argument("--out", default=None, help="output file (default: standard output)")
    e.add_argument("--table", choices=["documents", "duplicates", "rejects", "runs"], default="documents")
    e.add_argument("--columns", help="comma-separated columns (default: all)")
    add_filters(e)
    e.set_defaults(func=_cmd_export)

    rep = sub.add_parser("report", help="(re)write the HTML report of a run into CLEAN/reports/")
    rep.add_argument("archive", type=Path)
    rep.add_argument("run_id", nargs="?", default=None, help="default: the latest run")
    rep.set_defaults(func=_cmd_report)

    c = sub.add_parser("compact", help="merge small Parquet files of each table into larger ones (keeps every row)")
    c.add_argument("archive", type=Path)
    c.add_argument("--target-rows", type=int, default=100_000, help="rows per compacted file (default: 100000)")
    c.add_argument("--dry-run", action="store_true", help="say what would be merged, change nothing")
    c.add_argument("--config", default=None, help="TOML configuration file (compression settings)")
    c.set_defaults(func=_cmd_compact)

    se = sub.add_parser("serve", help="run the cleaning flow on a schedule in this process (flow.serve)")
    se.add_argument("raw", nargs="?", default="raw", type=Path, help="input folder (default: raw/)")
    se.add_argument("--out", default="clean", type=Path, help="archive folder (default: clean/)")
    se.add_argument("--config", default=None, help="TOML configuration file (see README)")
    se.add_argument("--cron", default=SERVE_CRON, help=f"schedule (default: {SERVE_CRON!r}, hourly, as prefect.yaml)")
    se.add_argument("--timezone", default=SERVE_TIMEZONE, help=f"time zone of the schedule (default: {SERVE_TIMEZONE})")
    se.add_argument("--name", default="serve", help="deployment name (default: serve)")
    se.add_argument("--run-now", action="store_true", help="also start one run right away")
    se.add_argument("--workers", type=_workers, default=None, metavar="N|auto",
                    help="processes for batch work in each run (overrides [run] workers; auto: one per usable core)")
    se.set_defaults(func=_cmd_serve)

    v = sub.add_parser("verify", help="check that an archive is sound (readable, consistent, no leftovers)")
    v.add_argument("archive", help="archive folder, or s3://bucket/prefix")
    v.add_argument("--config", default=None, help="TOML configuration file (s3: cache folder, lock settings)")
    v.add_argument("--repair", action="store_true", help="finish or roll back interrupted runs, drop temp files")
    v.set_defaults(func=_cmd_verify)

    rp = sub.add_parser("repair", help="repair spinner-garbled text from stdin to stdout")
    rp.add_argument("--explain", action="store_true", help="print each repair to stderr")
    rp.set_defaults(func=_cmd_repair)

    sv = sub.add_parser("server", help="the reusable local Prefect API that `docclean run` starts")
    sv.add_argument("action", choices=["status", "start", "stop"])
    sv.set_defaults(func=_cmd_server)
    return p


def _user_error(exc: Exception) -> bool:
    """A wrong argument or a missing/unreadable archive: a one-line message, not a traceback."""
    from .archive import ArchiveError

    return isinstance(exc, (ValueError, FileNotFoundError, NotADirectoryError, ArchiveError))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        from .archive import ArchiveError

        if args.command not in ("run", "verify", "repair", "server") and _user_error(exc):
            print(f"docclean {args.command}: {exc}", file=sys.stderr)  # a wrong argument, a missing archive
            return 2
        if args.command == "run" and isinstance(exc, OSError | ArchiveError):
            # A full disk, a folder that became unwritable, a lock held too long: one clear line. The archive
            # is as it was, or complete once the next run replays a committed journal.
            print(f"docclean run: failed, the archive is unchanged or will be completed by the next run: {exc}",
                  file=sys.stderr)
            return 1
        raise


def console_main() -> None:
    """The ``docclean`` command: ``main``, then an exit that skips Python's teardown.

    Teardown frees every object one by one: about a second after a run (the repair tables, Prefect's
    state), longer than cleaning the bundled sample. By then every archive file is written and fsynced,
    and the exit handlers registered after this one (Prefect flushing its logs and events to the API) have
    run, since they run in reverse order of registration."""
    import atexit

    code = [1]

    def exit_now() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe (`docclean export | head`), a closed stream
                pass
        os._exit(code[0])

    atexit.register(exit_now)
    try:
        code[0] = main()
    except SystemExit as exc:  # argparse's --help (0) and usage errors (2)
        code[0] = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        raise
    sys.exit(code[0])


if __name__ == "__main__":
    console_main()
