"""A reusable local Prefect API for `docclean run`, so a small run is not dominated by server start-up.

Prefect's own temporary server starts a new API process for every run: measured here at 7 s warm and
15-36 s cold, longer than cleaning the sample takes. Instead, the first `docclean run` starts one local API
(loopback only, UI and background services off, Prefect's SQLite database in PREFECT_HOME) and later runs
reuse it. It stops by itself after `idle_timeout` seconds without a run (15 minutes by default), or with
`docclean server stop`. When PREFECT_API_URL is set, docclean uses that server and starts nothing.

This module imports no Prefect at top level: `ensure_server` must run before Prefect reads its settings.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

DEFAULT_IDLE_TIMEOUT = 900.0
STARTUP_TIMEOUT = 180.0

# Settings for the local API process: no UI, no background services, no telemetry (no network here).
SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()


def _state_file() -> Path:
    return prefect_home() / "docclean-server.json"


def _heartbeat_file() -> Path:
    return prefect_home() / "docclean-server.last-used"


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_state() -> dict | None:
    try:
        state = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return None
    if _pid_alive(state.get("pid", -1)) and _healthy(state["url"]):
        return state
    return None


def touch() -> None:
    hb = _heartbeat_file()
    hb.parent.mkdir(parents=True, exist_ok=True)
    hb.touch()


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment, else from the active Prefect profile (`prefect config set`)."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    import tomllib

    try:
        with open(prefect_home() / "profiles.toml", "rb") as fh:
            profiles = tomllib.load(fh)
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    return profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL") or None


def ensure_server(idle_timeout: float = DEFAULT_IDLE_TIMEOUT, log=print, wait: bool = True):
    """The API URL to use: the configured one if any, else a running local server, else a new one.

    With ``wait=False`` it returns ``(url, ready)`` as soon as a new server is launched, with
    PREFECT_API_URL already set, so the caller can import Prefect and its flow while the server boots;
    ``ready()`` then waits until it answers. Either way two runs starting at once share one server."""
    ready = lambda: None  # noqa: E731
    configured = configured_api_url()
    if configured:
        return configured if wait else (configured, ready)
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    lock = open(home / "docclean-server.lock", "a+")
    fcntl.flock(lock, fcntl.LOCK_EX)
    state = read_state()
    if state is None:
        proc, url = _launch(idle_timeout, log)

        def ready() -> None:
            try:
                _wait_until_healthy(proc, url)
            finally:
                lock.close()
    else:
        url = state["url"]
        lock.close()
    touch()
    os.environ["PREFECT_API_URL"] = url
    if wait:
        ready()
        return url
    return url, ready


def _launch(idle_timeout: float, log) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log(f"starting a local Prefect API on {url} (reused by later runs; stops after {idle_timeout:.0f} s idle)")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(SERVER_ENV)
    with open(_log_path(), "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.server", "serve", "--port", str(port), "--idle-timeout", str(idle_timeout)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True,
            cwd=str(Path(__file__).resolve().parent.parent),
        )
    return proc, url


def _log_path() -> Path:
    return prefect_home() / "docclean-server.log"


def _wait_until_healthy(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the local Prefect API exited with code {proc.returncode}; see {_log_path()}")
        if _healthy(url, timeout=1.0):
            state = {"pid": proc.pid, "port": int(url.rsplit(":", 1)[1].split("/")[0]), "url": url,
                     "started_at": time.time()}
            _state_file().write_text(json.dumps(state))
            return
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the local Prefect API did not answer within {STARTUP_TIMEOUT:.0f} s; see {_log_path()}")


def stop() -> bool:
    try:
        state = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return False
    _state_file().unlink(missing_ok=True)
    if _pid_alive(state["pid"]):
        os.kill(state["pid"], signal.SIGTERM)
        return True
    return False


def serve(port: int, idle_timeout: float) -> None:
    """The server process itself: Prefect's API app under uvicorn, exiting once idle."""
    import uvicorn
    from prefect.server.api.server import create_app

    app = create_app(ephemeral=True, final=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    touch()

    def watchdog() -> None:
        while not server.should_exit:
            time.sleep(min(5.0, idle_timeout / 4))
            try:
                idle = time.time() - _heartbeat_file().stat().st_mtime
            except OSError:
                idle = idle_timeout + 1
            if idle > idle_timeout:
                server.should_exit = True

    threading.Thread(target=watchdog, daemon=True).start()
    server.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.server")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT)
    args = parser.parse_args(argv)
    serve(args.port, args.idle_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
