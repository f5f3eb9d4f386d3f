"""Batches on a Dask cluster, through prefect-dask's DaskTaskRunner (`docclean run --cluster ADDRESS`).

What runs where:

* the Dask workers run the per-batch steps (`process_batch`, `finalize_batch`): each reads its source files
  and writes its staged Parquet files under the run's staging folder, ``<archive>/_txn/<run>/work/``;
* this process (the flow run) runs the global steps on those staged files (the chrome plan, the dedup plan,
  the commit), so they see every batch whichever machine cleaned it.

A multi-machine cluster therefore needs: the input folder and the archive on storage every worker mounts at
the same absolute path (NFS or similar; paths are made absolute here), the same docclean installed on the
workers, and a Prefect server the workers can reach (``PREFECT_API_URL``).

The trap this module guards against: with no Prefect server configured, every Dask worker starts a
temporary Prefect server of its own, and each task costs about 0.4 s more. So a cluster run requires
PREFECT_API_URL, checks that every worker can reach it, and sets it in the workers' environment.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import urllib.parse
import urllib.request


class ClusterSetupError(RuntimeError):
    """The cluster cannot run docclean's tasks correctly (no reachable Prefect server, no workers)."""


def _is_loopback(host: str | None) -> bool:
    if not host or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            return False


def api_url_from_environment() -> str:
    """The Prefect API every worker must use; an error that says how to get one when there is none."""
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise ClusterSetupError(
            "docclean run --cluster needs a Prefect server that the Dask workers can reach, or every worker "
            "starts a temporary server of its own (about 0.4 s per task). Start one (for example "
            "`prefect server start --host 0.0.0.0`) and set PREFECT_API_URL=http://HOST:4200/api "
            "before running."
        )
    return url


def check_reachable_api(api_url: str, scheduler_address: str | None) -> None:
    """A loopback API serves only workers on this machine: refuse it for a cluster elsewhere."""
    api_host = urllib.parse.urlsplit(api_url).hostname
    if scheduler_address and "://" not in scheduler_address:
        scheduler_address = f"tcp://{scheduler_address}"
    scheduler_host = urllib.parse.urlsplit(scheduler_address).hostname if scheduler_address else None
    if _is_loopback(api_host) and scheduler_host and not _is_loopback(scheduler_host):
        raise ClusterSetupError(
            f"PREFECT_API_URL={api_url} is on this machine's loopback, which the workers of the Dask cluster "
            f"at {scheduler_address} cannot reach. Run a Prefect server on an address they can reach "
            "(`prefect server start --host 0.0.0.0`) and set PREFECT_API_URL to it."
        )


def _worker_setup(api_url: str) -> str:
    # Runs on each Dask worker: later Prefect imports and clients there use the shared server.
    os.environ["PREFECT_API_URL"] = api_url
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=10) as resp:
            return "ok" if resp.status == 200 else f"HTTP {resp.status}"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def prepare_workers(client, api_url: str) -> int:
    """Set PREFECT_API_URL on every worker and check each reaches the server; returns the worker count."""
    results = client.run(_worker_setup, api_url)
    if not results:
        raise ClusterSetupError(f"the Dask cluster at {client.scheduler.address} has no workers")
    failed = {w: r for w, r in results.items() if r != "ok"}
    if failed:
        raise ClusterSetupError(f"Dask workers cannot reach the Prefect API at {api_url}: {failed}")
    return len(results)


def task_runner(address: str):
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)
