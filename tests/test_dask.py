"""Batches on a Dask cluster through prefect-dask, and the guard against per-worker temporary servers."""

from __future__ import annotations

import pytest

from docclean import pipeline
from docclean.cli import main as cli_main
from docclean.config import load_config
from flows import dask_cluster as dask_support

from test_parallel import assert_same_archive, prefect_api  # noqa: F401 (a fixture); tests/ is on sys.path


def test_a_cluster_run_without_a_prefect_server_is_refused_with_the_way_out(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(dask_support.ClusterSetupError, match="PREFECT_API_URL=http://HOST:4200/api"):
        dask_support.api_url_from_environment()


def test_a_loopback_api_is_refused_for_workers_on_other_machines():
    with pytest.raises(dask_support.ClusterSetupError, match="cannot reach"):
        dask_support.check_reachable_api("http://127.0.0.1:4200/api", "tcp://10.1.2.3:8786")
    with pytest.raises(dask_support.ClusterSetupError, match="cannot reach"):
        dask_support.check_reachable_api("http://localhost:4200/api", "10.1.2.3:8786")  # no scheme
    # same machine, or a server on a routable address: fine
    dask_support.check_reachable_api("http://127.0.0.1:4200/api", "tcp://127.0.0.1:8786")
    dask_support.check_reachable_api("http://10.1.2.4:4200/api", "tcp://10.1.2.3:8786")


def test_cli_refuses_cluster_with_local_engine_or_ephemeral_server(corpus, tmp_path, capsys):
    out = tmp_path / "clean"
    assert cli_main(["run", str(corpus), "--out", str(out), "--engine", "local", "--cluster", "tcp://127.0.0.1:1"]) == 2
    assert cli_main(["run", str(corpus), "--out", str(out), "--ephemeral", "--cluster", "tcp://127.0.0.1:1"]) == 2
    assert "--cluster" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_flow_on_a_local_dask_cluster_gives_the_single_process_archive(corpus, tmp_path, prefect_api):
    from distributed import LocalCluster

    from flows.clean import clean_flow

    config_path = tmp_path / "docclean.toml"
    config_path.write_text("[run]\nbatch_size = 2\n")
    single = tmp_path / "single"
    pipeline.run(corpus, single, load_config(config_path))

    on_cluster = tmp_path / "cluster"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = clean_flow(input=str(corpus), output=str(on_cluster), config_path=str(config_path),
                            cluster=cluster.scheduler_address)
        with cluster.get_client() as client:
            # every worker was pointed at the shared API (no temporary server of its own)
            assert set(client.run(lambda: __import__("os").environ.get("PREFECT_API_URL")).values()) == {prefect_api}
    assert result["inputs"] == 8 and result["documents"] == 5 and result["duplicates"] == 1
    assert_same_archive(single, on_cluster)
