"""Deployments: prefect.yaml, `docclean serve`, the compaction flow, and an end-to-end run through a real
Prefect server, work pool and worker (slow; CI runs it with `pytest -m slow`)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from docclean import open_archive, pipeline
from docclean.archive import Archive
from docclean.config import load_config
from docclean.verify import verify

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _prefect_yaml() -> dict:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())


def _deployment(name: str) -> dict:
    return next(d for d in _prefect_yaml()["deployments"] if d["name"] == name)


# ------------------------------------------------------------------------------------------ prefect.yaml


def test_prefect_yaml_deploys_the_cleaning_flow_hourly_on_a_process_pool():
    config = _prefect_yaml()
    hourly = _deployment("hourly")
    assert hourly["entrypoint"] == "flows/clean.py:clean_flow"
    assert set(hourly["parameters"]) == {"input", "output", "config_path", "workers"}
    (schedule,) = hourly["schedules"]
    assert schedule["cron"] == "0 * * * *" and schedule["timezone"]
    assert hourly["work_pool"]["name"] == "docclean"
    (pull,) = config["pull"]
    assert "prefect.deployments.steps.set_working_directory" in pull


@pytest.mark.slow  # imports Prefect (seconds)
def test_entrypoints_and_parameters_match_the_flows():
    from prefect.flows import load_flow_from_entrypoint

    for deployment in _prefect_yaml()["deployments"]:
        path, _, _ = deployment["entrypoint"].partition(":")
        assert (REPO / path).is_file()
        flow = load_flow_from_entrypoint(str(REPO / deployment["entrypoint"]))
        # Every parameter given in prefect.yaml is one the flow takes (Prefect would reject the run).
        flow.validate_parameters(deployment["parameters"])


def test_serve_uses_the_schedule_of_prefect_yaml():
    from docclean import cli

    (schedule,) = _deployment("hourly")["schedules"]
    assert (cli.SERVE_CRON, cli.SERVE_TIMEZONE) == (schedule["cron"], schedule["timezone"])
    args = cli.build_parser().parse_args(["serve", "incoming", "--out", "archive"])
    assert (args.raw, args.out, args.cron, args.timezone) == (Path("incoming"), Path("archive"), "0 * * * *", "UTC")


@pytest.mark.slow  # imports Prefect (seconds)
def test_serve_builds_a_scheduled_deployment_of_the_cleaning_flow():
    from docclean import cli

    deployment = cli.serve_deployment(cli.build_parser().parse_args(["serve", "raw", "--out", "clean"]))
    assert deployment.entrypoint.endswith("clean_flow") or deployment.flow_name == "docclean"
    assert deployment.parameters == {"input": "raw", "output": "clean", "config_path": None, "workers": None}
    two = cli.serve_deployment(cli.build_parser().parse_args(["serve", "raw", "--workers", "2"]))
    assert two.parameters["workers"] == 2
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "0 * * * *" and schedule.schedule.timezone == "UTC"


# ------------------------------------------------------------------------------------------ compaction


@pytest.mark.slow  # imports Prefect (seconds)
def test_compaction_keeps_every_row_and_its_provenance(corpus, tmp_path):
    from flows.maintenance import compact_archive

    out = tmp_path / "clean"
    config = load_config(run={"batch_size": 2})  # several small files per table, as hourly runs leave
    pipeline.run(corpus, out, config)
    (corpus / "web" / "late.txt").write_text(
        "The town council approved a new budget for school repairs on Thursday evening after a long debate.\n"
        "Most of the money will go to roofs and heating systems in the oldest primary schools.\n", encoding="utf-8")
    pipeline.run(corpus, out, config)
    archive = Archive(out)
    before = {name: archive.table(name).sort_by("doc_id" if name != "runs" else "run_id") for name in
              ("documents", "duplicates", "rejects", "runs")}
    files_before = {name: len(archive.files(name)) for name in before}
    assert files_before["documents"] >= 3 and files_before["runs"] == 2

    dry = compact_archive(out, dry_run=True)
    assert {name: len(archive.files(name)) for name in before} == files_before  # a dry run writes nothing
    result = compact_archive(out)
    assert dry.files_removed == result.files_removed > 0

    for name, table in before.items():
        assert len(archive.files(name)) <= 1
        after = archive.table(name).sort_by("doc_id" if name != "runs" else "run_id")
        assert after.equals(table), f"{name} changed"  # every row and column, run_id and provenance included
    meta = pq.read_schema(archive.files("documents")[0]).metadata
    assert json.loads(meta[b"docclean.compacted_from"]) and len(json.loads(meta[b"docclean.source_runs"])) == 2
    check = verify(out)
    assert check.sound, check.messages
    # A later run still sees every compacted document as archived.
    again = pipeline.run(corpus, out, config)
    assert again.skipped == again.inputs and again.documents == 0


@pytest.mark.slow  # imports Prefect (seconds)
def test_compaction_leaves_big_files_alone():
    from flows.maintenance import plan_groups

    counts = [("documents/a", 10), ("documents/b", 500), ("documents/c", 20), ("documents/d", 30), ("documents/e", 90)]
    assert plan_groups(counts, target_rows=100) == [["documents/a", "documents/c", "documents/d"]]
    assert plan_groups([("documents/a", 10)], target_rows=100) == []


# ------------------------------------------------------------------------------------------ end to end


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop a process we started and everything it started (its own session), politely then by force."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture
def prefect_env(tmp_path):
    """A real Prefect server on a loopback port, with its own PREFECT_HOME (SQLite), stopped afterwards."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",   # the worker polls every 2 s instead of 10
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    })
    log = open(tmp_path / "server.log", "wb")
    # With its scheduler: the test checks that the schedules of prefect.yaml produce runs (then pauses them).
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
                               "--no-ui", "--analytics-off"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)
    started: list[subprocess.Popen] = [server]
    try:
        deadline = time.monotonic() + 240  # 10-30 s on a loaded 2-core machine; far more is a failure
        while not _healthy(api):
            if server.poll() is not None:
                pytest.fail(f"prefect server exited with {server.returncode}:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server did not answer in time:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield env, started
    finally:
        for proc in reversed(started):  # worker first, server last
            _stop(proc)
        log.close()


def _prefect(env: dict, *args: str, timeout: float = 300) -> str:
    done = subprocess.run([str(BIN / "prefect"), "--no-prompt", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _api(api: str, method: str, path: str, body=None):
    request = urllib.request.Request(f"{api}{path}", method=method, headers={"Content-Type": "application/json"},
                                     data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request, timeout=30) as resp:
        data = resp.read()
    return json.loads(data) if data else None


def _check_schedules_then_pause_them(api: str, tmp_path: Path) -> None:
    """The server's scheduler turns each deployment's cron into scheduled runs (hourly: on the hour, UTC).
    Then the schedules are paused, which deletes those runs: none may start while the test runs."""
    from datetime import datetime, timezone

    for name, minute in (("docclean/hourly", 0), ("docclean-maintenance/compact-daily", 30)):
        deployment = _api(api, "GET", f"/deployments/name/{name}")
        (schedule,) = deployment["schedules"]
        assert schedule["schedule"]["timezone"] == "UTC" and schedule["active"]
        deadline = time.monotonic() + 120
        while True:
            runs = _api(api, "POST", "/flow_runs/filter", {
                "deployments": {"id": {"any_": [deployment["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})
            if runs:
                break
            assert time.monotonic() < deadline, (
                f"the scheduler made no runs of {name}:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        starts = [datetime.fromisoformat(r["expected_start_time"]) for r in runs]
        assert all(t.minute == minute and t.second == 0 and t > datetime.now(timezone.utc) for t in starts), starts
        _api(api, "PATCH", f"/deployments/{deployment['id']}/schedules/{schedule['id']}", {"active": False})
        left = _api(api, "POST", "/flow_runs/filter", {
            "deployments": {"id": {"any_": [deployment["id"]]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})
        assert left == []


@pytest.mark.slow
def test_deployments_and_serve_run_through_a_real_server(prefect_env, corpus, tmp_path):
    env, started = prefect_env
    out = tmp_path / "clean"
    _prefect(env, "work-pool", "create", "docclean", "--type", "process")
    deployed = _prefect(env, "deploy", "--all")
    assert "docclean/hourly" in deployed and "docclean-maintenance/compact-daily" in deployed
    _check_schedules_then_pause_them(env["PREFECT_API_URL"], tmp_path)

    worker_log = open(tmp_path / "worker.log", "wb")
    started.append(subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "docclean", "--limit", "1"],
                                    cwd=tmp_path, env=env, stdout=worker_log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True))
    worker_log.close()
    try:
        ran = _prefect(env, "deployment", "run", "docclean/hourly", "--param", f"input={corpus}",
                       "--param", f"output={out}", "--watch", "--watch-timeout", "600", "--watch-interval", "2",
                       timeout=660)
        assert re.search(r"COMPLETED", ran, re.I), ran
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n--- worker log ---\n"
                             f"{(tmp_path / 'worker.log').read_text(errors='replace')[-4000:]}") from None
    worker_output = (tmp_path / "worker.log").read_text(errors="replace")
    assert (out / "documents").is_dir(), f"no archive written; worker log:\n{worker_output[-4000:]}"

    docs = open_archive(out).to_table(columns=["source_path", "run_id", "title"])
    assert docs.num_rows == 5, worker_output[-4000:]
    assert "wire/fishermen.txt" in docs.column("source_path").to_pylist()
    (run_id,) = set(docs.column("run_id").to_pylist())
    assert (out / "reports" / f"{run_id}.html").is_file()
    assert verify(out).sound

    # The maintenance deployment runs on the same pool and keeps the archive whole.
    _prefect(env, "deployment", "run", "docclean-maintenance/compact-daily", "--param", f"archive={out}",
             "--watch", "--watch-timeout", "300", "--watch-interval", "2", timeout=360)
    assert open_archive(out).count_rows() == 5 and verify(out).sound

    # The one-process path: `docclean serve` registers the same flow on the same schedule and runs it.
    served_out = tmp_path / "served"
    serve_log = open(tmp_path / "serve.log", "wb")
    serving = subprocess.Popen([str(BIN / "docclean"), "serve", str(corpus), "--out", str(served_out), "--run-now"],
                               cwd=tmp_path, env=env, stdout=serve_log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    started.append(serving)
    serve_log.close()
    deadline = time.monotonic() + 600
    while not list((served_out / "reports").glob("*.html")):
        assert serving.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")[-4000:]
        assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text(errors="replace")[-4000:]
        time.sleep(1)
    assert open_archive(served_out).count_rows() == 5
    _stop(serving)
    assert serving.returncode is not None
