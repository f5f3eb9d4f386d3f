"""`docclean run` through Prefect, as a user runs it: the reusable local API, the flow, its artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from docclean.archive import Archive

pytestmark = pytest.mark.slow


def _docclean(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "docclean.cli", *args], env=env, capture_output=True,
                          text=True, timeout=400)


def test_docclean_run_uses_prefect_and_publishes_a_run_report(corpus, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    out = tmp_path / "clean"
    try:
        first = _docclean("run", str(corpus), "--out", str(out), env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        assert "8 inputs -> 5 documents, 1 duplicates, 2 rejects" in first.stdout
        assert Archive(out).table("documents").num_rows == 5

        state = json.loads((tmp_path / "prefect-home" / "docclean-server.json").read_text())
        req = urllib.request.Request(f"{state['url']}/artifacts/filter", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            artifacts = json.loads(resp.read())
        keys = {a["key"] for a in artifacts}
        assert {"docclean-run-report", "docclean-edits-by-rule"} <= keys
        report = next(a for a in artifacts if a["key"] == "docclean-run-report")
        assert "| 8 | 5 | 1 | 2 | 0 |" in report["data"]

        # The second run reuses the same local API and archives nothing twice.
        second = _docclean("run", str(corpus), "--out", str(out), env=env)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "0 documents, 0 duplicates, 0 rejects, 8 already archived" in second.stdout
        assert "starting a local Prefect API" not in second.stderr
    finally:
        _docclean("server", "stop", env=env)
